-- Model allow lists of Workspaces and of Workspace API keys: a JSON array
-- of model names; NULL is no list (every model), [] allows no model. A
-- key may call the models both its Workspace's list and its own allow.

-- +goose Up
ALTER TABLE workspaces ADD COLUMN allowed_models TEXT;
ALTER TABLE api_keys ADD COLUMN allowed_models TEXT;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN allowed_models;
ALTER TABLE workspaces DROP COLUMN allowed_models;
