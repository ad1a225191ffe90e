-- Docket schema, version 7 (PostgreSQL): record events for the credential cache.
-- Each node keeps API keys and sessions it has checked in memory (docket-core
-- service/auth_cache.rs). A write that can change what a credential may do sends a NOTIFY on
-- channel `docket_records` whose payload is the record kind, so every node (the writer's
-- own included) forgets its cached credentials: any insert, update or delete of a user, API
-- key or role, an update of a session, and the delete of a session that has not expired
-- (a logout; the sweeper's purge of expired sessions changes nothing a node would accept).
-- A new session is not announced: nothing cached depends on it.
-- As with ticket events (0005), PostgreSQL delivers at COMMIT, only if the transaction
-- commits, and folds identical payloads of one transaction into one.
CREATE FUNCTION docket_record_event() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.kind = 'session' AND OLD.expires IS NOT NULL
           AND OLD.expires <= extract(epoch FROM now()) THEN
            RETURN NULL;
        END IF;
        PERFORM pg_notify('docket_records', OLD.kind);
    ELSE
        IF TG_OP = 'INSERT' AND NEW.kind = 'session' THEN
            RETURN NULL;
        END IF;
        PERFORM pg_notify('docket_records', NEW.kind);
    END IF;
    RETURN NULL;
END
$$;

-- The WHEN clauses keep the frequent kinds (login failures, idempotency keys, files, jobs)
-- from calling the function at all.
CREATE TRIGGER records_notify_write
    AFTER INSERT OR UPDATE ON records
    FOR EACH ROW WHEN (NEW.kind IN ('user', 'api_key', 'role', 'session'))
    EXECUTE FUNCTION docket_record_event();
CREATE TRIGGER records_notify_delete
    AFTER DELETE ON records
    FOR EACH ROW WHEN (OLD.kind IN ('user', 'api_key', 'role', 'session'))
    EXECUTE FUNCTION docket_record_event();
