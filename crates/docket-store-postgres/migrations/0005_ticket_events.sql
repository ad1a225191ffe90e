-- Docket schema, version 5 (PostgreSQL): ticket events for live updates.
-- (0001 holds what the SQLite store has in 0001-0004; numbers continue in step with it.)
-- Every committed ticket write sends a NOTIFY on channel `docket_tickets` with a small JSON
-- payload {"id", "num", "kind": created|updated|deleted, "modified"}. PostgreSQL delivers a
-- notification at COMMIT and only if the transaction commits, in commit order, to every
-- session listening — so each node's listener (events.rs) hears the writes of all nodes,
-- its own included.
--
-- Not announced: updates that leave `data` alone (a reindex rewrites only index columns),
-- and transactions that set `docket.ticket_events` to 'off' (bulk import, exact copies).
-- A payload must stay under 8000 bytes; an id too long for that (only a bulk-loaded record
-- could have one) is sent as null and the listener looks it up by number.
CREATE FUNCTION docket_ticket_event() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    t_id TEXT;
    t_num BIGINT;
    t_kind TEXT;
    t_modified BIGINT;
    payload TEXT;
BEGIN
    IF current_setting('docket.ticket_events', true) = 'off' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        t_id := OLD.id;
        t_num := OLD.num;
        t_kind := 'deleted';
        t_modified := floor(extract(epoch FROM now()))::BIGINT;
    ELSE
        t_id := NEW.id;
        t_num := NEW.num;
        t_kind := CASE TG_OP WHEN 'INSERT' THEN 'created' ELSE 'updated' END;
        t_modified := NEW.modified;
    END IF;
    IF octet_length(t_id) > 1000 THEN
        t_id := NULL;
    END IF;
    payload := json_build_object('id', t_id, 'num', t_num, 'kind', t_kind,
                                 'modified', t_modified)::TEXT;
    PERFORM pg_notify('docket_tickets', payload);
    RETURN NULL;
END
$$;

CREATE TRIGGER tickets_notify
    AFTER INSERT OR UPDATE OF data OR DELETE ON tickets
    FOR EACH ROW EXECUTE FUNCTION docket_ticket_event();
