-- Docket schema, version 5 (SQLite): ticket events need no schema here.
-- One process owns a SQLite database, so its writer publishes ticket events itself after
-- each COMMIT (writer.rs). This file keeps the version numbers of both stores in step: the
-- PostgreSQL store's 0005 adds the NOTIFY trigger that carries events between nodes.
SELECT 1;
