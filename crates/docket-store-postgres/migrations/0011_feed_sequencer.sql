-- Docket schema, version 11 (PostgreSQL only): feed positions are assigned after commit.
--
-- Until now a ticket write drew its feed position under `pg_advisory_xact_lock(4, 0)` and
-- held that lock through its COMMIT, so ticket writes of every node committed one at a time.
-- Now a write inserts its feed row WITHOUT a position; `seq` records insertion order. A
-- sequencing step (feed.rs) — run by readers, one at a time under the same advisory lock —
-- gives committed unpositioned rows the next positions from `ticket_feed_position`, in
-- `seq` order. Only committed rows are ever positioned, each step above every earlier one,
-- so readers still never skip or repeat an event (the reasoning is in feed.rs).
--
-- Rows written before this keep their positions. A node still running the previous
-- version keeps drawing from the same sequence under the same lock, so both kinds of rows
-- are numbered consistently while nodes are upgraded one by one.
--
-- `seq` must keep the identity's default CACHE 1: per-ticket order relies on a later
-- insert (made after the earlier write committed) always getting a larger `seq`.

ALTER TABLE ticket_feed DROP CONSTRAINT ticket_feed_pkey;
ALTER TABLE ticket_feed ALTER COLUMN position DROP NOT NULL;
-- Unique still, and the readers' `position > $1 ORDER BY position` index (NULLs allowed).
CREATE UNIQUE INDEX ticket_feed_position_unique ON ticket_feed (position);

-- Existing rows are numbered in whatever order the table is scanned: they have positions.
ALTER TABLE ticket_feed ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
-- What the sequencing step looks for: small, since rows leave it once positioned.
CREATE INDEX ticket_feed_unpositioned ON ticket_feed (seq) WHERE position IS NULL;
