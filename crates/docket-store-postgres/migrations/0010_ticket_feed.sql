-- Docket schema, version 10 (PostgreSQL): the change feed (docket-core/src/feed.rs).
-- One row per committed ticket event, written by the kernel in the transaction of the
-- change. Positions come from a sequence, but only while holding the feed's advisory lock
-- (feed.rs: `pg_advisory_xact_lock(4, 0)`, taken as the transaction's last step and held
-- to its commit), so they are drawn in commit order: a reader that saw position P never
-- later finds a lower position committed. Rolled-back draws leave gaps, which is fine.
-- (Version 8 and 9 are other features' migrations; the numbers of both stores stay in step.)
CREATE SEQUENCE ticket_feed_position;

CREATE TABLE ticket_feed (
    position BIGINT PRIMARY KEY,
    -- Epoch seconds of the write: what retention prunes by.
    at BIGINT NOT NULL,
    -- The ticket's category (before a delete): who may see the event.
    category TEXT NOT NULL,
    -- The event as JSON text (FeedEntry without the category), sent as it is.
    data TEXT NOT NULL
);
CREATE INDEX ticket_feed_at ON ticket_feed (at);

-- The highest position pruned so far: a cursor below it may have missed events.
CREATE TABLE ticket_feed_horizon (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through BIGINT NOT NULL
);
INSERT INTO ticket_feed_horizon (id, pruned_through) VALUES (1, 0);
