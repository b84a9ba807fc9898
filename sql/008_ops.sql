-- herinnerctl audit export --since/--until reads attempts by time, in time order, through this
-- index: an export of a day costs that day's rows, not a scan of the whole history.
CREATE INDEX attempts_created_at ON herinnerd.attempts (created_at, id);

INSERT INTO herinnerd.schema_version (version) VALUES (8);
