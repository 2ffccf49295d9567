-- Units besides tokens: a usage event records the pages an OCR request had
-- read and the seconds of audio a transcription had heard, which its cost
-- was priced at; an intent its reserved pages, which a process that dies
-- leaves for its event. Existing events and intents used none.

-- +goose Up
ALTER TABLE usage_events ADD COLUMN pages BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN audio_seconds BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_intents ADD COLUMN pages BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_intents ADD COLUMN audio_seconds BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE usage_intents DROP COLUMN audio_seconds;
ALTER TABLE usage_intents DROP COLUMN pages;
ALTER TABLE usage_events DROP COLUMN audio_seconds;
ALTER TABLE usage_events DROP COLUMN pages;
