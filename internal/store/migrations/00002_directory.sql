-- Users, invitations and roles: product seats on memberships, invitations
-- with one-time accept tokens, custom roles, and the outbox that delivers
-- email.

-- +goose Up

-- subscription_types is a JSON array of product seats (CHAT, MISTRAL_CODE, ...).
ALTER TABLE organization_members ADD COLUMN subscription_types TEXT NOT NULL DEFAULT '[]';
-- member_count is kept by every change of membership, so that paging the
-- members of a large Organization does not count them each time.
ALTER TABLE organizations ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;
UPDATE organizations SET member_count = (SELECT COUNT(*) FROM organization_members m WHERE m.organization_id = organizations.id);
CREATE INDEX organization_members_order ON organization_members (organization_id, created_at, user_id);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    -- JSON arrays: Organization role ids, seats, Workspace ids to join.
    role_ids TEXT NOT NULL,
    subscription_types TEXT NOT NULL,
    workspace_ids TEXT NOT NULL,
    seat_automatic_granting BOOLEAN NOT NULL DEFAULT FALSE,
    email_language TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    accepted_user_id TEXT,
    revoked_at BIGINT
);
-- At most one pending invitation per address and Organization.
CREATE UNIQUE INDEX invitations_pending ON invitations (organization_id, email_normalized)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
CREATE INDEX invitations_organization ON invitations (organization_id, created_at, id);

CREATE TABLE custom_roles (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    scope TEXT NOT NULL CHECK (scope IN ('organization', 'workspace')),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- JSON array of permission names.
    permissions TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX custom_roles_name ON custom_roles (organization_id, scope, name);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    language TEXT NOT NULL DEFAULT 'en',
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at BIGINT,
    failed_at BIGINT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE custom_roles;
DROP TABLE invitations;
DROP INDEX organization_members_order;
ALTER TABLE organizations DROP COLUMN member_count;
ALTER TABLE organization_members DROP COLUMN subscription_types;
