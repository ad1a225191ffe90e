-- Docket schema, version 10 (SQLite): the change feed (docket-core/src/feed.rs).
-- One row per committed ticket event, written by the kernel in the transaction of the
-- change. `position` is AUTOINCREMENT so a position is never handed out twice, even after
-- the newest rows were pruned; the one writer makes position order commit order.
-- (Version 8 and 9 are other features' migrations; the numbers of both stores stay in step.)
CREATE TABLE ticket_feed (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Epoch seconds of the write: what retention prunes by.
    at INTEGER NOT NULL,
    -- The ticket's category (before a delete): who may see the event.
    category TEXT NOT NULL,
    -- The event as JSON (FeedEntry without the category).
    data TEXT NOT NULL
);
CREATE INDEX ticket_feed_at ON ticket_feed (at);

-- The highest position pruned so far: a cursor below it may have missed events.
CREATE TABLE ticket_feed_horizon (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL
);
INSERT INTO ticket_feed_horizon (id, pruned_through) VALUES (1, 0);
