-- Docket schema, version 1 (SQLite).

-- Named counters bumped inside write transactions; `ticket_num` never goes back, so a
-- deleted ticket's number is never reused.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('ticket_num', 0);

-- One row per ticket: the whole record as JSON plus the columns that are sorted and ranged.
CREATE TABLE tickets (
    num      INTEGER PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    created  INTEGER NOT NULL,
    modified INTEGER NOT NULL,
    due      INTEGER NOT NULL,
    subject  TEXT NOT NULL COLLATE NOCASE,
    status   TEXT NOT NULL,
    type     TEXT NOT NULL,
    category TEXT NOT NULL,
    data     TEXT NOT NULL
);
CREATE INDEX tickets_created  ON tickets (created, num);
CREATE INDEX tickets_modified ON tickets (modified, num);
CREATE INDEX tickets_due      ON tickets (due, num);
CREATE INDEX tickets_subject  ON tickets (subject, num);
CREATE INDEX tickets_status   ON tickets (status, num);
CREATE INDEX tickets_type     ON tickets (type, num);
CREATE INDEX tickets_category ON tickets (category, num);

-- Keyword search: one row per (field, normalized value) a ticket carries.
CREATE TABLE ticket_keywords (
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    num   INTEGER NOT NULL,
    PRIMARY KEY (field, value, num)
) WITHOUT ROWID;
CREATE INDEX ticket_keywords_num ON ticket_keywords (num);

-- Full-text search over analyzer tokens (already folded and stemmed by docket-query), so the
-- plain ascii tokenizer only splits on spaces. rowid = tickets.num.
CREATE VIRTUAL TABLE ticket_text USING fts5 (
    subject, body, changes,
    tokenize = "ascii tokenchars '_'"
);

-- Small JSON records: users, API keys, sessions, tags, categories, roles, bookkeeping.
CREATE TABLE records (
    kind   TEXT NOT NULL,
    id     TEXT NOT NULL,
    lookup TEXT,
    data   TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX records_lookup ON records (kind, lookup) WHERE lookup IS NOT NULL;
