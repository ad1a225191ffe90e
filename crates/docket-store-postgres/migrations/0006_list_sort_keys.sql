-- Docket schema, version 6 (PostgreSQL): sorting by assignees and tags.
-- A ticket's key is its alphabetically first assignee / tag, normalized as keywords are
-- (docket_core::search_doc::list_sort_key), '' for an empty list: ASCII text, compared in
-- byte order (COLLATE "C") as the SQLite store compares it. The store computes it in Rust
-- whenever it writes a ticket row. NULL means "not computed yet": rows written before this
-- migration get their keys when a node connects (tickets::backfill_sort_keys), found
-- through these same indexes.
ALTER TABLE tickets ADD COLUMN assignee_key TEXT COLLATE "C";
ALTER TABLE tickets ADD COLUMN tag_key TEXT COLLATE "C";
CREATE INDEX tickets_assignee_key ON tickets (assignee_key, num);
CREATE INDEX tickets_tag_key      ON tickets (tag_key, num);
