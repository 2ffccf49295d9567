-- Objects created through the model gateway at its default upstream
-- (files, batch jobs, agents, conversations, libraries and their
-- documents, voices, fine-tuned models), each owned by the Workspace whose
-- key created it: every Workspace reaches the upstream with the same key,
-- so this table is what keeps one Workspace from another's objects.

-- +goose Up
CREATE TABLE gateway_objects (
    kind TEXT NOT NULL,
    upstream_id TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, upstream_id)
);
CREATE INDEX gateway_objects_workspace ON gateway_objects (organization_id, workspace_id, kind);

-- +goose Down
DROP TABLE gateway_objects;
