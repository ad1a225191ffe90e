-- Docket schema, version 1 (PostgreSQL). The same data as the SQLite store's migrations
-- 0001-0004, in one file. Every column that is sorted or compared as text and whose order
-- is observable uses COLLATE "C" (byte order, as SQLite's BINARY collation), whatever the
-- database's default collation is.

-- Ticket numbers. Taken with nextval() inside the create transaction (after checking that
-- the id is free, so a normal create leaves no gap). A sequence never goes back, so a
-- deleted ticket's number is never reused, and concurrent creates from several server
-- processes always get distinct numbers. CACHE 1: no process holds numbers in memory.
CREATE SEQUENCE ticket_num_seq AS BIGINT MINVALUE 1 START WITH 1 CACHE 1 NO CYCLE;

-- One row per ticket: the whole record as JSON text (as the SQLite store keeps it), the
-- columns that are sorted and ranged, and the search index of the ticket in the same row,
-- so the record and its index are always written by one statement.
CREATE TABLE tickets (
    num          BIGINT PRIMARY KEY,
    id           TEXT COLLATE "C" NOT NULL UNIQUE,
    created      BIGINT NOT NULL,
    modified     BIGINT NOT NULL,
    due          BIGINT NOT NULL,
    subject      TEXT NOT NULL,
    -- The subject sort key: the subject's UTF-8 bytes with ASCII A-Z folded to a-z, which
    -- is exactly SQLite's COLLATE NOCASE (compared bytewise, shorter prefix first). Split
    -- into its first 1024 bytes (indexed; a btree entry must stay under ~2.7 kB) and the
    -- rest (empty for nearly every subject); ordering by (key, rest) orders by the whole.
    subject_key  BYTEA NOT NULL,
    subject_rest BYTEA NOT NULL DEFAULT '',
    status       TEXT COLLATE "C" NOT NULL,
    type         TEXT COLLATE "C" NOT NULL,
    category     TEXT COLLATE "C" NOT NULL,
    -- The record's `dedupe_key` (NULL when empty), as SQLite's generated column.
    dedupe_key   TEXT COLLATE "C",
    data         TEXT NOT NULL,
    -- Keyword search: `field:value` entries (docket_query::KeywordField name and the
    -- normalized value; see keywords.rs for the rare values stored hashed).
    keywords     TEXT[] NOT NULL DEFAULT '{}',
    -- Full-text search over the analyzer's tokens, with positions (1-based token index).
    -- PostgreSQL keeps positions only up to 16383 and 256 positions per lexeme, and a
    -- tsvector under 1 MB; a field beyond those limits is stored as its token text in
    -- `*_raw` instead (its tsvector left empty) and matched by substring, so results stay
    -- exact. See index.rs.
    subject_tsv  TSVECTOR NOT NULL DEFAULT '',
    body_tsv     TSVECTOR NOT NULL DEFAULT '',
    changes_tsv  TSVECTOR NOT NULL DEFAULT '',
    subject_raw  TEXT,
    body_raw     TEXT,
    changes_raw  TEXT
);
CREATE INDEX tickets_created  ON tickets (created, num);
CREATE INDEX tickets_modified ON tickets (modified, num);
CREATE INDEX tickets_due      ON tickets (due, num);
CREATE INDEX tickets_subject  ON tickets (subject_key, num);
CREATE INDEX tickets_status   ON tickets (status, num);
CREATE INDEX tickets_type     ON tickets (type, num);
CREATE INDEX tickets_category ON tickets (category, num);
CREATE INDEX tickets_dedupe_key ON tickets (dedupe_key, num) WHERE dedupe_key IS NOT NULL;
CREATE INDEX tickets_keywords ON tickets USING GIN (keywords);
CREATE INDEX tickets_subject_tsv ON tickets USING GIN (subject_tsv);
CREATE INDEX tickets_body_tsv    ON tickets USING GIN (body_tsv);
CREATE INDEX tickets_changes_tsv ON tickets USING GIN (changes_tsv);
-- The (rare) rows matched by substring: a search OR-s them to the tsvector match.
CREATE INDEX tickets_subject_raw ON tickets (num) WHERE subject_raw IS NOT NULL;
CREATE INDEX tickets_body_raw    ON tickets (num) WHERE body_raw IS NOT NULL;
CREATE INDEX tickets_changes_raw ON tickets (num) WHERE changes_raw IS NOT NULL;

-- Whether every needle occurs in the haystack (the substring match of `*_raw` columns,
-- whose tokens are space separated with a space at both ends; needles are ` tok ` or a
-- ` whole phrase `).
CREATE FUNCTION docket_has_all(hay TEXT, needles TEXT[]) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT coalesce(bool_and(strpos(hay, n) > 0), TRUE) FROM unnest(needles) AS n $$;

-- Small JSON records: users, API keys, sessions, tags, categories, roles, files, jobs,
-- alerts, idempotency keys, bookkeeping. `data` is the JSON text (not JSONB: JSONB and even
-- json field access reject a "\u0000" escape anywhere in the document, which upstream job
-- records may well carry). The two fields the store looks records up by are extracted by
-- the store on every write, with SQLite json_extract's meaning:
--   expires: a JSON number (true/false as 1/0), else NULL;
--   ticket:  a JSON string, else NULL.
-- `seq` orders ties the way SQLite's rowid does (insertion order; a replaced row is new).
CREATE TABLE records (
    kind    TEXT COLLATE "C" NOT NULL,
    id      TEXT COLLATE "C" NOT NULL,
    lookup  TEXT COLLATE "C",
    data    TEXT NOT NULL,
    expires DOUBLE PRECISION,
    ticket  TEXT COLLATE "C",
    seq     BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX records_lookup ON records (kind, lookup) WHERE lookup IS NOT NULL;
CREATE INDEX records_expires ON records (kind, expires, seq) WHERE expires IS NOT NULL;
CREATE INDEX records_ticket ON records (kind, ticket) WHERE ticket IS NOT NULL;

-- The notification outbox (SQLite migration 0004). Rows are written in the transaction of
-- the ticket change that causes them and delivered by a worker: claimed with a lease
-- (`claimed_until`), marked `sent_at` once the SMTP server or webhook endpoint accepted
-- them. A row with `sent_at` set is never delivered again. Ids are never reused.
CREATE TABLE outbox (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    channel TEXT COLLATE "C" NOT NULL,             -- email | webhook
    kind TEXT COLLATE "C" NOT NULL,                -- new | updated | overdue | webhook event
    ticket TEXT COLLATE "C" NOT NULL,
    grp TEXT COLLATE "C" NOT NULL,                 -- rows of one group go out as one message
    target TEXT NOT NULL DEFAULT '',               -- webhook URL
    payload TEXT NOT NULL,
    created BIGINT NOT NULL,
    not_before BIGINT NOT NULL,                    -- debounce / retry backoff
    attempts BIGINT NOT NULL DEFAULT 0,
    claimed_until BIGINT,
    sent_at BIGINT,
    last_error TEXT,
    unique_key TEXT COLLATE "C" UNIQUE             -- overdue reminders: one per ticket and day
);
CREATE INDEX outbox_due ON outbox (not_before) WHERE sent_at IS NULL;
CREATE INDEX outbox_grp ON outbox (grp) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (channel, sent_at) WHERE sent_at IS NOT NULL;

-- API key request counts in one-second windows, shared by every node so a key's
-- `max_per_sec` holds across them: one row per key, the current window and its count.
-- UNLOGGED: rate counts need no crash safety (nor replication).
CREATE UNLOGGED TABLE request_counts (
    key    TEXT COLLATE "C" PRIMARY KEY,
    second BIGINT NOT NULL,
    n      BIGINT NOT NULL
);
