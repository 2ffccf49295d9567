-- An Organization's audit entries by target type, newest first: a filter
-- on a rare target type reads its own entries instead of walking the log.

-- +goose Up
CREATE INDEX audit_log_organization_target ON audit_log (organization_id, target_type, created_at);

-- +goose Down
DROP INDEX audit_log_organization_target;
