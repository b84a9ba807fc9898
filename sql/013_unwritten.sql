-- herinnerd schema 13: a letter can be 'unwritten'. An instance claimed a letter ('writing') and
-- died before its file existed; the message was read before another claim took the step over.
-- Nobody will write it, and 'writing' for ever would tell an auditor (and the chaos test) that
-- a letter might still appear. A file that turns up after all (another host's spool) still moves
-- the row on to 'handed-over' or 'withdrawn'.
ALTER TABLE herinnerd.letters DROP CONSTRAINT letters_state_check;
ALTER TABLE herinnerd.letters ADD CONSTRAINT letters_state_check
    CHECK (state IN ('writing', 'queued', 'handed-over', 'withdrawn', 'unwritten'));

INSERT INTO herinnerd.schema_version (version) VALUES (13);
