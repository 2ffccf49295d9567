-- Product analytics: the events that chat and coding products report (and
-- the gateway's chat completions), and the rollups that Mistral's five
-- analytics reports read. Rollups are kept by the transaction that inserts
-- the raw events, counting only the events that were new.
--
-- level is the bucket size: 0 an hour, 1 six hours, 2 a day, 3 four days,
-- 4 sixteen days, 5 sixty-four days, each aligned to the Unix epoch, so that
-- any window is a handful of buckets (see analytics.Levels). Buckets start
-- at bucket_start, in microseconds like every other time.
--
-- Columns named like users, agents and conversations hold distinct-count
-- sketches (analytics.Sketch): exact sets of 64-bit hashes up to 128
-- members, HyperLogLog registers beyond. SQLite stores a BYTEA column as a
-- BLOB.

-- +goose Up

-- id is the reporter's idempotency id, unique per Organization and user:
-- a retried event is ignored, and nobody can suppress another user's
-- events by claiming their ids. detail is the event as accepted (JSON).
CREATE TABLE analytics_events (
    organization_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    type TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (organization_id, user_id, id)
);
CREATE INDEX analytics_events_time ON analytics_events (organization_id, occurred_at);

-- Chat messages per user (levels 0-5): by_user_stats.
CREATE TABLE analytics_chat_users (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    messages BIGINT NOT NULL,
    files BIGINT NOT NULL,
    images BIGINT NOT NULL,
    spreadsheets BIGINT NOT NULL,
    agent_messages BIGINT NOT NULL,
    last_message_at BIGINT NOT NULL,
    conversations BYTEA NOT NULL,
    agents BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, user_id)
);

-- Chat messages to agents per agent (levels 0-5): by_agent_stats.
CREATE TABLE analytics_chat_agents (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    messages BIGINT NOT NULL,
    files BIGINT NOT NULL,
    images BIGINT NOT NULL,
    spreadsheets BIGINT NOT NULL,
    last_message_at BIGINT NOT NULL,
    conversations BYTEA NOT NULL,
    users BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, agent_id)
);

-- Chat messages of the Organization (levels 0-2): by_time_stats.
CREATE TABLE analytics_chat_time (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    files BIGINT NOT NULL,
    images BIGINT NOT NULL,
    spreadsheets BIGINT NOT NULL,
    agent_messages BIGINT NOT NULL,
    conversations BYTEA NOT NULL,
    users BYTEA NOT NULL,
    agents BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start)
);

-- Coding sessions per Workspace and client kind (levels 0-2).
CREATE TABLE analytics_code_sessions (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    workspace_id TEXT NOT NULL,
    client TEXT NOT NULL,
    sessions BIGINT NOT NULL,
    prompts BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    users BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, workspace_id, client)
);

-- Coding tokens per Workspace and model (levels 0-2).
CREATE TABLE analytics_code_tokens (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    workspace_id TEXT NOT NULL,
    model TEXT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, workspace_id, model)
);

-- Coding tool calls per Workspace and tool (levels 0-2).
CREATE TABLE analytics_code_tools (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    workspace_id TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    total BIGINT NOT NULL,
    status_success BIGINT NOT NULL,
    status_failure BIGINT NOT NULL,
    status_skipped BIGINT NOT NULL,
    approval_ask BIGINT NOT NULL,
    approval_always BIGINT NOT NULL,
    approval_never BIGINT NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, workspace_id, tool_name)
);

-- Next-edit suggestions per Workspace (levels 0-2).
CREATE TABLE analytics_next_edits (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    workspace_id TEXT NOT NULL,
    total BIGINT NOT NULL,
    outcome_accepted BIGINT NOT NULL,
    outcome_rejected BIGINT NOT NULL,
    outcome_timeout BIGINT NOT NULL,
    outcome_aborted BIGINT NOT NULL,
    outcome_dismissed BIGINT NOT NULL,
    force_generated_true BIGINT NOT NULL,
    force_generated_false BIGINT NOT NULL,
    surface_widget BIGINT NOT NULL,
    surface_ghost_text BIGINT NOT NULL,
    lines_inserted BIGINT NOT NULL,
    lines_deleted BIGINT NOT NULL,
    lines_unchanged BIGINT NOT NULL,
    users BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, workspace_id)
);

-- +goose Down
DROP TABLE analytics_next_edits;
DROP TABLE analytics_code_tools;
DROP TABLE analytics_code_tokens;
DROP TABLE analytics_code_sessions;
DROP TABLE analytics_chat_time;
DROP TABLE analytics_chat_agents;
DROP TABLE analytics_chat_users;
DROP TABLE analytics_events;
