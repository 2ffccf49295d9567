-- Product analytics: the events that chat and coding products report (and
-- the gateway's chat completions), and the rollups that Mistral's five
-- analytics reports read. Rollups are kept by the transaction that inserts
-- the raw events, counting only the events that were new.
--
-- level is the bucket size: 0 an hour, 1 three hours, 2 twelve hours, 3 a
-- day, then 4 to 9 two, four, eight, sixteen, thirty-two and sixty-four
-- days, each aligned to the Unix epoch, so that any window is a handful of
-- buckets (see analytics.Levels). Buckets start at bucket_start, in
-- microseconds like every other time.
--
-- A rollup row's figures are one BYTEA value, data, which Go reads and
-- writes whole (analytics.table): its counters, then for some tables the
-- time of the last message, each a signed varint, then its distinct-count
-- sketches (analytics.Sketch: exact sets of 64-bit hashes up to 128
-- members, HyperLogLog registers beyond), each after its length as an
-- unsigned varint. A report reads thousands of rows: two columns each cost
-- far less to fetch than a column per figure. The figures each table keeps
-- are listed in its comment. SQLite stores a BYTEA column as a BLOB.
-- The rollup tables' options (a macro, see store/migrate.go) leave room on
-- PostgreSQL's pages for the next version of an updated row.

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

-- Chat messages per user (levels 0-9): by_user_stats. data: messages,
-- files, images, spreadsheets, messages to agents, last message time;
-- conversations, agents.
CREATE TABLE analytics_chat_users (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, user_id)
) ROLLUP_TABLE;

-- Chat messages to agents per agent (levels 0-9): by_agent_stats. data:
-- messages, files, images, spreadsheets, last message time; conversations,
-- users.
CREATE TABLE analytics_chat_agents (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, agent_id)
) ROLLUP_TABLE;

-- Chat messages of the Organization (levels 0-3): by_time_stats. data:
-- messages, files, images, spreadsheets, messages to agents; conversations,
-- users, agents.
CREATE TABLE analytics_chat_time (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start)
) ROLLUP_TABLE;

-- Coding sessions per Workspace and client kind (levels 0-3). data:
-- sessions, prompts, duration in milliseconds; users.
CREATE TABLE analytics_code_sessions (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    workspace_id TEXT NOT NULL,
    client TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, workspace_id, client)
) ROLLUP_TABLE;

-- Coding tokens per Workspace and model (levels 0-3). data: cached, input
-- and output tokens.
CREATE TABLE analytics_code_tokens (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    workspace_id TEXT NOT NULL,
    model TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, workspace_id, model)
) ROLLUP_TABLE;

-- Coding tool calls per Workspace and tool (levels 0-3). data: calls;
-- calls that succeeded, failed, were skipped; asked for approval, always
-- approved, never approved.
CREATE TABLE analytics_code_tools (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    workspace_id TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, workspace_id, tool_name)
) ROLLUP_TABLE;

-- Next-edit suggestions per Workspace (levels 0-3). data: suggestions;
-- accepted, rejected, timed out, aborted, dismissed; force-generated or
-- not; shown in the widget, as ghost text; lines inserted, deleted,
-- unchanged; users.
CREATE TABLE analytics_next_edits (
    organization_id TEXT NOT NULL,
    level SMALLINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    workspace_id TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (organization_id, level, bucket_start, workspace_id)
) ROLLUP_TABLE;

-- +goose Down
DROP TABLE analytics_next_edits;
DROP TABLE analytics_code_tools;
DROP TABLE analytics_code_tokens;
DROP TABLE analytics_code_sessions;
DROP TABLE analytics_chat_time;
DROP TABLE analytics_chat_agents;
DROP TABLE analytics_chat_users;
DROP TABLE analytics_events;
