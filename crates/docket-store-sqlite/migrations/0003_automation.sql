-- Docket schema, version 3 (SQLite): alert-storm deduplication.
-- A ticket's `dedupe_key` lives in its JSON record; this virtual generated column exposes it
-- (no data is rewritten, old tickets read as NULL) and the partial index finds the open
-- ticket of a key inside the create transaction.
ALTER TABLE tickets ADD COLUMN dedupe_key TEXT
    GENERATED ALWAYS AS (json_extract(data, '$.dedupe_key')) VIRTUAL;
CREATE INDEX tickets_dedupe_key ON tickets (dedupe_key, num) WHERE dedupe_key IS NOT NULL;
