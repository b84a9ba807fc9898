-- Adoption and read stops cost what is new, never the history (issue 7). Statement-level
-- triggers put new unread messages and newly read ones into two small queues; the daemons
-- consume them with DELETE ... RETURNING under SKIP LOCKED, so several instances share the work.
-- NOTIFY carries no payload and is sent once per statement (identical notifications in one
-- transaction are folded into one): a million-row insert wakes each daemon once.

CREATE TABLE herinnerd.new_messages (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id bigint NOT NULL
);
CREATE TABLE herinnerd.read_messages (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id bigint NOT NULL
);

-- SECURITY DEFINER: the inbox's role writes messages, not herinnerd's queues
CREATE FUNCTION herinnerd.queue_new_messages() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, herinnerd AS $$
BEGIN
    INSERT INTO herinnerd.new_messages (message_id)
        SELECT n.id FROM inserted n WHERE n.read_at IS NULL ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('herinnerd_message', 'new');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION herinnerd.queue_read_messages() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, herinnerd AS $$
BEGIN
    INSERT INTO herinnerd.read_messages (message_id)
        SELECT n.id FROM updated n JOIN previous o ON o.id = n.id
         WHERE n.read_at IS NOT NULL AND o.read_at IS NULL ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('herinnerd_message', 'read');
    END IF;
    RETURN NULL;
END $$;

-- the per-row notifications ('new:<id>', 'read:<id>') are replaced by these
DROP TRIGGER messages_notify_insert ON herinnerd.messages;
DROP TRIGGER messages_notify_read ON herinnerd.messages;
DROP FUNCTION herinnerd.notify_message();

CREATE TRIGGER messages_queue_new AFTER INSERT ON herinnerd.messages
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION herinnerd.queue_new_messages();
CREATE TRIGGER messages_queue_read AFTER UPDATE ON herinnerd.messages
    REFERENCING OLD TABLE AS previous NEW TABLE AS updated
    FOR EACH STATEMENT EXECUTE FUNCTION herinnerd.queue_read_messages();

-- what the old adoption would still have found: unread messages without an escalation
INSERT INTO herinnerd.new_messages (message_id)
    SELECT m.id FROM herinnerd.messages m
     WHERE m.read_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM herinnerd.escalations e WHERE e.message_id = m.id)
     ORDER BY m.id;

-- DELETE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) needs UPDATE for the row locks
GRANT SELECT, UPDATE, DELETE ON herinnerd.new_messages, herinnerd.read_messages TO herinnerd_daemon;
GRANT SELECT ON herinnerd.new_messages, herinnerd.read_messages TO herinnerd_auditor;

INSERT INTO herinnerd.schema_version (version) VALUES (9);
