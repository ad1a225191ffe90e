-- Docket schema, version 6 (SQLite): sorting by assignees and tags.
-- A ticket's key is its alphabetically first assignee / tag, normalized as keywords are
-- (docket_core::search_doc::list_sort_key), '' for an empty list. The store computes it in
-- Rust whenever it writes a ticket row (the folding is the analyzer's, not SQL's). NULL
-- means "not computed yet": rows written before this migration get their keys when the
-- store opens (tickets::backfill_sort_keys), found through these same indexes.
ALTER TABLE tickets ADD COLUMN assignee_key TEXT;
ALTER TABLE tickets ADD COLUMN tag_key TEXT;
CREATE INDEX tickets_assignee_key ON tickets (assignee_key, num);
CREATE INDEX tickets_tag_key      ON tickets (tag_key, num);
