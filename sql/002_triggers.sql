-- Notifications for the daemon, the audit hash chain, and the append-only guard.

-- NOTIFY herinnerd_message with payload 'new:<id>' or 'read:<id>'.
CREATE FUNCTION herinnerd.notify_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('herinnerd_message', 'new:' || NEW.id);
    ELSIF NEW.read_at IS NOT NULL AND OLD.read_at IS NULL THEN
        PERFORM pg_notify('herinnerd_message', 'read:' || NEW.id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER messages_notify_insert AFTER INSERT ON herinnerd.messages
    FOR EACH ROW EXECUTE FUNCTION herinnerd.notify_message();
CREATE TRIGGER messages_notify_read AFTER UPDATE OF read_at ON herinnerd.messages
    FOR EACH ROW EXECUTE FUNCTION herinnerd.notify_message();

-- The canonical text of an attempt that the hash covers; herinnerctl audit verify recomputes it.
CREATE FUNCTION herinnerd.attempt_digest_input(a herinnerd.attempts) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(a.prev_hash, '\x'::bytea) || convert_to(concat_ws('|',
        a.id, a.message_id, a.step, a.try, a.channel, a.outcome, a.detail,
        coalesce(a.address, ''), coalesce(a.external_id, ''),
        to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        a.instance, a.config_sha256), 'UTF8')
$$;

-- Chain each new attempt to the previous one. The advisory lock serialises writers (also across
-- instances) until commit, so the chain has no forks.
CREATE FUNCTION herinnerd.attempts_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('herinnerd.attempts'));
    SELECT hash INTO NEW.prev_hash FROM herinnerd.attempts ORDER BY id DESC LIMIT 1;
    NEW.created_at := clock_timestamp();
    NEW.hash := sha256(herinnerd.attempt_digest_input(NEW));
    RETURN NEW;
END $$;

CREATE TRIGGER attempts_chain BEFORE INSERT ON herinnerd.attempts
    FOR EACH ROW EXECUTE FUNCTION herinnerd.attempts_chain();

-- History is never rewritten: refuse UPDATE, DELETE and TRUNCATE for everyone.
CREATE FUNCTION herinnerd.attempts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'herinnerd.attempts is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER attempts_no_update BEFORE UPDATE OR DELETE ON herinnerd.attempts
    FOR EACH ROW EXECUTE FUNCTION herinnerd.attempts_append_only();
CREATE TRIGGER attempts_no_truncate BEFORE TRUNCATE ON herinnerd.attempts
    FOR EACH STATEMENT EXECUTE FUNCTION herinnerd.attempts_append_only();

INSERT INTO herinnerd.schema_version (version) VALUES (2);
