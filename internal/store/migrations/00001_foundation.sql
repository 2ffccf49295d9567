-- The foundation: Enterprise Accounts, Organizations, their default
-- Workspaces and first members, Admin API and Backoffice keys, and the
-- audit log. Times are BIGINT microseconds since the Unix epoch (UTC).

-- +goose Up

-- One row once the database has been initialised; its primary key makes a
-- second, concurrent bootstrap fail instead of creating a second account.
CREATE TABLE steward_bootstrap (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    enterprise_account_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE enterprise_accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    enterprise_account_id TEXT NOT NULL REFERENCES enterprise_accounts (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX organizations_enterprise_account ON organizations (enterprise_account_id);

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    is_default BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    archived_at BIGINT
);
CREATE UNIQUE INDEX workspaces_one_default ON workspaces (organization_id) WHERE is_default;
CREATE INDEX workspaces_organization ON workspaces (organization_id, name);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL UNIQUE,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

CREATE TABLE organization_members (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user ON organization_members (user_id);

-- Roles are stored by UUID: the static UUIDs of Mistral's document for the
-- built-in roles, generated ones for custom roles.
CREATE TABLE organization_member_roles (
    organization_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    PRIMARY KEY (organization_id, user_id, role_id),
    FOREIGN KEY (organization_id, user_id) REFERENCES organization_members (organization_id, user_id) ON DELETE CASCADE
);

CREATE TABLE workspace_members (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_user ON workspace_members (user_id);

CREATE TABLE workspace_member_roles (
    workspace_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id, role_id),
    FOREIGN KEY (workspace_id, user_id) REFERENCES workspace_members (workspace_id, user_id) ON DELETE CASCADE
);

CREATE TABLE enterprise_account_members (
    enterprise_account_id TEXT NOT NULL REFERENCES enterprise_accounts (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (enterprise_account_id, user_id)
);

-- Secrets are stored only as the hex SHA-256 of the whole key.
CREATE TABLE admin_api_keys (
    id TEXT PRIMARY KEY,
    enterprise_account_id TEXT NOT NULL REFERENCES enterprise_accounts (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX admin_api_keys_organization ON admin_api_keys (organization_id);

CREATE TABLE backoffice_keys (
    id TEXT PRIMARY KEY,
    enterprise_account_id TEXT NOT NULL REFERENCES enterprise_accounts (id),
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);

-- The audit log is a hash chain per scope (an Organization, or an Enterprise
-- Account for changes that belong to no Organization). audit_chains holds
-- each chain's head; updating it serialises writers of one chain on both
-- engines.
CREATE TABLE audit_chains (
    scope TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL
);

CREATE TABLE audit_log (
    log_id AUTO_ID,
    scope TEXT NOT NULL,
    seq BIGINT NOT NULL,
    enterprise_account_id TEXT,
    organization_id TEXT,
    workspace_id TEXT,
    created_at BIGINT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_user_id TEXT,
    actor_metadata TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_metadata TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_metadata TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (scope, seq)
);
CREATE INDEX audit_log_organization_time ON audit_log (organization_id, created_at, log_id);
CREATE INDEX audit_log_organization_event ON audit_log (organization_id, event_type, created_at);
CREATE INDEX audit_log_organization_actor ON audit_log (organization_id, actor_user_id, created_at);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE audit_chains;
DROP TABLE backoffice_keys;
DROP TABLE admin_api_keys;
DROP TABLE enterprise_account_members;
DROP TABLE workspace_member_roles;
DROP TABLE workspace_members;
DROP TABLE organization_member_roles;
DROP TABLE organization_members;
DROP TABLE users;
DROP TABLE workspaces;
DROP TABLE organizations;
DROP TABLE enterprise_accounts;
DROP TABLE steward_bootstrap;
