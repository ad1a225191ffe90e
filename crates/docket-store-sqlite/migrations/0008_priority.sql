-- Docket schema, version 8 (SQLite): ticket priorities (`sort_by=priority`).
-- A ticket's priority is a member of its JSON record (`data`); its rank is the position of
-- that level in the configured list (`tickets.priorities`, lowest first). The configured
-- list lives in `priority_levels` (level id -> rank, plus '' -> the default's rank), which
-- the store rewrites when it opens with another configuration, recomputing every ticket's
-- rank then (priority.rs). Writes compute the rank from this table in the same statement,
-- so the write path needs no configuration. NULL means "written before this migration":
-- such rows get the configured default priority (record and keyword) and their rank when
-- the store opens, found through the index below.
ALTER TABLE tickets ADD COLUMN priority_rank INTEGER;
CREATE INDEX tickets_priority_rank ON tickets (priority_rank, num);
CREATE TABLE priority_levels (
    id   TEXT PRIMARY KEY,
    rank INTEGER NOT NULL
) WITHOUT ROWID;
