-- Workspaces in full, user groups (nested, assigned to Workspaces, holding
-- an Organization role).

-- +goose Up
ALTER TABLE workspaces ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN icon TEXT NOT NULL DEFAULT '';
-- member_count counts direct members, kept by every change of membership.
ALTER TABLE workspaces ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;
UPDATE workspaces SET member_count = (SELECT COUNT(*) FROM workspace_members m WHERE m.workspace_id = workspaces.id);
-- Names are unique, ignoring case, among an Organization's active Workspaces.
CREATE UNIQUE INDEX workspaces_active_name ON workspaces (organization_id, lower(name)) WHERE archived_at IS NULL;
CREATE INDEX workspaces_order ON workspaces (organization_id, created_at, id);

CREATE TABLE user_groups (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    description TEXT,
    target_type TEXT CHECK (target_type IN ('W', 'O')),
    -- A group may hold one Organization role, which its members gain.
    organization_role_id TEXT,
    -- Groups provisioned by an identity provider (SCIM): their name and
    -- members change only through it.
    externally_managed BOOLEAN NOT NULL DEFAULT FALSE,
    external_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX user_groups_name ON user_groups (organization_id, lower(name));
CREATE INDEX user_groups_order ON user_groups (organization_id, created_at, id);

CREATE TABLE user_group_members (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX user_group_members_user ON user_group_members (user_id);

-- A child group's members count as members of its parents.
CREATE TABLE user_group_nesting (
    parent_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    child_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_id),
    CHECK (parent_id <> child_id)
);
CREATE INDEX user_group_nesting_child ON user_group_nesting (child_id);

CREATE TABLE group_workspace_assignments (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, workspace_id)
);
CREATE INDEX group_workspace_assignments_workspace ON group_workspace_assignments (workspace_id);

CREATE TABLE group_workspace_roles (
    group_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    PRIMARY KEY (group_id, workspace_id, role_id),
    FOREIGN KEY (group_id, workspace_id) REFERENCES group_workspace_assignments (group_id, workspace_id) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE group_workspace_roles;
DROP TABLE group_workspace_assignments;
DROP TABLE user_group_nesting;
DROP TABLE user_group_members;
DROP TABLE user_groups;
DROP INDEX workspaces_order;
DROP INDEX workspaces_active_name;
ALTER TABLE workspaces DROP COLUMN member_count;
ALTER TABLE workspaces DROP COLUMN icon;
ALTER TABLE workspaces DROP COLUMN description;
