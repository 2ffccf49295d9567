-- SCIM 2.0 provisioning: bearer tokens per Organization, the state each
-- Organization's identity provider last pushed (users, groups, group
-- members), deactivated memberships, and Mistral's SCIM sync runs.

-- +goose Up

-- Secrets are stored only as the hex SHA-256 of the whole token.
CREATE TABLE scim_tokens (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX scim_tokens_organization ON scim_tokens (organization_id, created_at);

-- A deactivated member keeps their memberships, roles, keys and history,
-- but has no access until reactivated.
ALTER TABLE organization_members ADD COLUMN deactivated_at BIGINT;

-- The users the identity provider provisioned, as it last described them.
CREATE TABLE scim_users (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    user_name TEXT NOT NULL,
    user_name_lower TEXT NOT NULL,
    external_id TEXT,
    display_name TEXT NOT NULL DEFAULT '',
    given_name TEXT NOT NULL DEFAULT '',
    family_name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (organization_id, user_name_lower);
CREATE INDEX scim_users_external_id ON scim_users (organization_id, external_id);
CREATE INDEX scim_users_order ON scim_users (organization_id, created_at, user_id);

-- The groups the identity provider provisioned; each is an externally
-- managed user group with the same id while it exists.
CREATE TABLE scim_groups (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    group_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    display_name_lower TEXT NOT NULL,
    external_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, group_id)
);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (organization_id, display_name_lower);
CREATE INDEX scim_groups_order ON scim_groups (organization_id, created_at, group_id);

CREATE TABLE scim_group_members (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);

-- Mistral's on-demand SCIM sync runs. At most one run per Organization is
-- PENDING or RUNNING; a running one renews heartbeat_at, so that a run its
-- process abandoned is recognised and failed.
CREATE TABLE scim_sync_runs (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'SUCCESS', 'SKIPPED', 'FAILED')),
    dry_run BOOLEAN NOT NULL,
    sync_config TEXT,
    summary TEXT,
    error_message TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    heartbeat_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX scim_sync_runs_active ON scim_sync_runs (organization_id) WHERE status IN ('PENDING', 'RUNNING');
CREATE INDEX scim_sync_runs_organization ON scim_sync_runs (organization_id, created_at);

-- +goose Down
DROP TABLE scim_sync_runs;
DROP TABLE scim_group_members;
DROP TABLE scim_groups;
DROP TABLE scim_users;
ALTER TABLE organization_members DROP COLUMN deactivated_at;
DROP TABLE scim_tokens;
