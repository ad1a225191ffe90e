-- The `compact` search row of each ticket, kept ready (issue 15: a compact search page read
-- 3-4 KB of stored JSON per row to send ~350 bytes of it). The same form as
-- docket_core::compact_json: the stored JSON without `body`, with `changes` as its number of
-- entries; only for tickets that read the same to every reader (nothing
-- docket_core::service::needs_presenting looks for). The store writes it with each ticket
-- write (compact_rows.rs); this fills it for the tickets already stored, with the same SQL
-- as compact_rows::refill_all.
CREATE TABLE ticket_compact (
    num INTEGER PRIMARY KEY,
    row TEXT NOT NULL
);

INSERT INTO ticket_compact (num, row)
SELECT num,
       CASE WHEN json_type(data, '$.changes') = 'array'
            THEN json_set(json_remove(data, '$.body'), '$.changes', json_array_length(data, '$.changes'))
            ELSE json_remove(data, '$.body') END
FROM tickets
WHERE instr(data, '"relations":') = 0
  AND instr(data, '"internal":true') = 0
  AND instr(data, '"key":"relation"') = 0;
