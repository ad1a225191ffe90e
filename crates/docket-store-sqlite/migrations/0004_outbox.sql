-- Docket schema, version 4 (SQLite): the notification outbox.
-- Rows are written in the transaction of the ticket change that causes them and delivered
-- by a worker: claimed with a lease (`claimed_until`), marked `sent_at` once the SMTP server
-- or webhook endpoint accepted them. A row with `sent_at` set is never delivered again.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,            -- email | webhook
    kind TEXT NOT NULL,               -- new | updated | overdue | webhook event name
    ticket TEXT NOT NULL,
    grp TEXT NOT NULL,                -- rows of one group go out as one message
    target TEXT NOT NULL DEFAULT '',  -- webhook URL
    payload TEXT NOT NULL,
    created INTEGER NOT NULL,
    not_before INTEGER NOT NULL,      -- debounce / retry backoff
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_until INTEGER,
    sent_at INTEGER,
    last_error TEXT,
    unique_key TEXT UNIQUE            -- overdue reminders: one per ticket and day, ever
);
CREATE INDEX outbox_due ON outbox (not_before) WHERE sent_at IS NULL;
CREATE INDEX outbox_grp ON outbox (grp) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (channel, sent_at) WHERE sent_at IS NOT NULL;
