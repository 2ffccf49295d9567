-- Signing in to the Admin Panel and the Backoffice: passwords, sessions and
-- password reset links. Secrets are stored only as hashes: passwords as
-- argon2id PHC strings, session and reset tokens as their hex SHA-256.

-- +goose Up
CREATE TABLE user_passwords (
    user_id TEXT PRIMARY KEY REFERENCES users (id),
    hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A session is created from a verified identity, whatever verified it
-- (method: 'password' today, an OpenID Connect provider later).
CREATE TABLE web_sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id),
    method TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX password_resets_user ON password_resets (user_id);

-- +goose Down
DROP TABLE password_resets;
DROP TABLE web_sessions;
DROP TABLE user_passwords;
