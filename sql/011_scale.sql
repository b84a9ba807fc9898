-- The audit chain at a decision rate of thousands a second (issue 7). The per-row trigger of
-- sql/006_chains.sql cost about 37 us a row on an idle machine (97 us under load): for every
-- row it locked the chain's row, looked the head up in attempts, and built the digest from 16
-- calls of digest_field. Now:
-- - The first row of a statement locks the chain and reads its head from attempts as before;
--   the rows after it take the head from the row before them, kept in the transaction-local
--   setting herinnerd.chain_head (cleared by a BEFORE STATEMENT trigger, so a statement never
--   starts from another statement's cached head).
-- - The digest is built in one expression, byte for byte what attempt_digest_input_v2 gives
--   (that function stays the contract, and herinnerctl audit verify recomputes it in C).
-- - A setting is no secret: anyone can set herinnerd.chain_head. So the AFTER STATEMENT trigger
--   checks what the statement really inserted (its transition table) before it moves the
--   heads: per chain, under the chain's row lock, the rows must go on from the stored head
--   (seq + 1, prev_hash = head) and each must link to the one before. Anything else (a forged
--   setting, an ON CONFLICT that discarded a row in the middle of a multi-row statement after
--   its trigger ran) fails the statement, so no committed row is ever off its chain.
-- The same guarantees as before: ids, seq, created_at, prev_hash and hash come from the trigger
-- only; one chain per writer; writers of one chain wait for each other; the daemon's role has
-- no rights on chains, the id sequence or the setting's consumers beyond these functions.

-- One field of the v2 digest, as text ('N', or 'S' <UTF-8 length> ':' <value>): the digest is
-- convert_to(concat of these, 'UTF8'), which equals the concatenation of digest_field's bytes
-- because the prefixes are ASCII. Inlined by the planner.
CREATE OR REPLACE FUNCTION herinnerd.digest_field_text(v text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v IS NULL THEN 'N'
           ELSE 'S' || octet_length(convert_to(v, 'UTF8')) || ':' || v END
$$;

CREATE OR REPLACE FUNCTION herinnerd.attempts_chain_start() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM set_config('herinnerd.chain_head', '', true);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION herinnerd.attempts_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cached    text;
    head_seq  bigint;
    head_hash bytea;
    sep1      int;
    sep2      int;
BEGIN
    -- this fact is recorded already: skip the row, leave the chain alone
    IF NEW.fact IS NOT NULL AND EXISTS (SELECT 1 FROM herinnerd.attempts WHERE fact = NEW.fact) THEN
        RETURN NULL;
    END IF;
    IF NEW.chain IS NULL THEN
        -- a writer that names no chain gets one of its own for this session
        SELECT 'db:' || session_user || ':' || pg_backend_pid() || ':'
               || coalesce(floor(extract(epoch FROM s.backend_start) * 1000000)::bigint, 0)
          INTO NEW.chain
          FROM pg_stat_get_activity(pg_backend_pid()) s;
        NEW.chain := coalesce(NEW.chain, 'db:' || session_user || ':' || pg_backend_pid());
    ELSIF NEW.chain = '' OR NEW.chain = 'legacy' THEN
        RAISE EXCEPTION 'attempts.chain % is not for new rows', quote_literal(NEW.chain)
            USING ERRCODE = 'check_violation';
    END IF;

    -- the head this statement's previous row left: '<seq>:<hex hash>:<chain>'
    cached := current_setting('herinnerd.chain_head', true);
    sep1 := strpos(cached, ':');
    IF sep1 > 0 THEN
        sep2 := sep1 + strpos(substr(cached, sep1 + 1), ':');
    END IF;
    IF sep1 > 0 AND sep2 > sep1 AND substr(cached, sep2 + 1) = NEW.chain THEN
        head_seq := substr(cached, 1, sep1 - 1)::bigint;
        head_hash := decode(substr(cached, sep1 + 1, sep2 - sep1 - 1), 'hex');
    ELSE
        -- only writers of this chain wait here (until the holder commits)
        PERFORM 1 FROM herinnerd.chains WHERE chain = NEW.chain FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO herinnerd.chains (chain) VALUES (NEW.chain) ON CONFLICT DO NOTHING;
            PERFORM 1 FROM herinnerd.chains WHERE chain = NEW.chain FOR UPDATE;
        END IF;
        -- the head as stored (not chains.head): a row an earlier ON CONFLICT discarded is no head
        SELECT seq, hash INTO head_seq, head_hash
          FROM herinnerd.attempts WHERE chain = NEW.chain ORDER BY seq DESC LIMIT 1;
    END IF;

    NEW.id := nextval('herinnerd.attempt_ids');
    NEW.seq := coalesce(head_seq, 0) + 1;
    NEW.prev_hash := head_hash;
    NEW.created_at := clock_timestamp();
    -- = sha256(herinnerd.attempt_digest_input_v2(NEW)), without a call per field
    NEW.hash := sha256('\x686572696e6e6572642d617474656d70742d7632'::bytea   -- 'herinnerd-attempt-v2'
        || coalesce(head_hash, '\x'::bytea)
        || convert_to(herinnerd.digest_field_text(NEW.chain)
                      || herinnerd.digest_field_text(NEW.seq::text)
                      || herinnerd.digest_field_text(NEW.id::text)
                      || herinnerd.digest_field_text(NEW.message_id::text)
                      || herinnerd.digest_field_text(NEW.step::text)
                      || herinnerd.digest_field_text(NEW.try::text)
                      || herinnerd.digest_field_text(NEW.channel)
                      || herinnerd.digest_field_text(NEW.outcome)
                      || herinnerd.digest_field_text(NEW.detail)
                      || herinnerd.digest_field_text(NEW.address)
                      || herinnerd.digest_field_text(NEW.external_id)
                      || herinnerd.digest_field_text(to_char(NEW.created_at AT TIME ZONE 'UTC',
                                                             'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                      || herinnerd.digest_field_text(NEW.instance)
                      || herinnerd.digest_field_text(NEW.config_sha256)
                      || herinnerd.digest_field_text(NEW.claim)
                      || herinnerd.digest_field_text(NEW.fact), 'UTF8'));
    PERFORM set_config('herinnerd.chain_head',
                       NEW.seq || ':' || encode(NEW.hash, 'hex') || ':' || NEW.chain, true);
    RETURN NEW;
END $$;

-- Once the rows are really in: check that each chain goes on from its stored head without a
-- gap or a wrong link (see above), then move the heads. Once per statement.
CREATE OR REPLACE FUNCTION herinnerd.attempts_chain_head() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    -- the chains' rows, locked: a writer that skipped the lock (forged setting) waits here
    PERFORM 1 FROM herinnerd.chains c
     WHERE c.chain IN (SELECT DISTINCT chain FROM new_rows) ORDER BY c.chain FOR UPDATE;
    -- one sort and one pass (a self-join of the transition table, which has no statistics,
    -- became a nested loop: 31 ms for 500 rows)
    SELECT n.chain INTO bad
      FROM (SELECT chain, seq, prev_hash,
                   lag(seq) OVER w AS before_seq, lag(hash) OVER w AS before_hash
              FROM new_rows WINDOW w AS (PARTITION BY chain ORDER BY seq)) n
      LEFT JOIN herinnerd.chains c ON c.chain = n.chain
     WHERE c.chain IS NULL
        OR (n.before_seq IS NULL AND (n.seq <> c.seq + 1 OR n.prev_hash IS DISTINCT FROM c.head))
        OR (n.before_seq IS NOT NULL
            AND (n.seq <> n.before_seq + 1 OR n.prev_hash IS DISTINCT FROM n.before_hash))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'attempts of chain % do not go on from its head (a row was discarded '
                        'after its trigger ran, or the head was forged): nothing written',
                        quote_literal(bad)
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    UPDATE herinnerd.chains c SET seq = n.seq, head = n.hash
      FROM (SELECT DISTINCT ON (chain) chain, seq, hash FROM new_rows
             ORDER BY chain, seq DESC) n
     WHERE c.chain = n.chain AND c.seq < n.seq;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS attempts_chain_start ON herinnerd.attempts;
CREATE TRIGGER attempts_chain_start BEFORE INSERT ON herinnerd.attempts
    FOR EACH STATEMENT EXECUTE FUNCTION herinnerd.attempts_chain_start();

REVOKE ALL ON FUNCTION herinnerd.attempts_chain_start() FROM PUBLIC;

-- A claim's lane takes its due rows from escalations_due (channel, next_at). With next_at
-- alone in escalations_next's way, the planner (channel statistics saying one channel is all
-- there is) walked escalations_next through every due row of every lane, for each lane: 14 ms
-- per empty lane at 100,000 escalations. The claim says (channel, next_at) <= (lane, now()),
-- which implies nothing about "next_at IS NOT NULL": escalations_next stays for "next due"
-- and the metrics' gauges (both say next_at), and is out of the claim's reach.
DROP INDEX herinnerd.escalations_next;
CREATE INDEX escalations_next ON herinnerd.escalations (next_at)
    WHERE state = 'active' AND next_at IS NOT NULL;

INSERT INTO herinnerd.schema_version (version) VALUES (11);
