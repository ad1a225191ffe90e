-- Docket schema, version 2 (SQLite): lookups of file bookkeeping records.
-- Every stored ticket file has a `records` row of kind 'file' (id = file id, lookup = path,
-- data = {…FileRef, expires, pending}); the sweeper reads them by `expires`, ticket deletion
-- by `ticket`. Session records also carry `expires`, so their purge uses the first index too.
CREATE INDEX records_expires ON records (kind, json_extract(data, '$.expires'));
CREATE INDEX records_ticket ON records (kind, json_extract(data, '$.ticket'));
