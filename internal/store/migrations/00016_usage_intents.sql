-- Usage intents: a model request's reservation, written while its upstream
-- works so that its answer does not wait for a commit after it. The final
-- usage event, of the same id, deletes it in its own transaction; an intent
-- left by a process that died is settled as a usage event at its
-- reservation, marked estimated. The event's id makes a request recorded
-- once, whichever of the two commits first.

-- +goose Up
CREATE TABLE usage_intents (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    model TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost BIGINT NOT NULL,
    currency TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    request_id TEXT NOT NULL,
    product TEXT NOT NULL
);

-- +goose Down
DROP TABLE usage_intents;
