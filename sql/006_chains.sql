-- The audit trail without forks (DESIGN.md §9): every writer appends to its own hash chain,
-- checkpoints commit to the heads of all chains, and the outcomes 'accepted' and 'in-doubt' (§3).
--
-- Before this file there was one chain over all attempts in id order, serialised by an advisory
-- lock held until commit. Ids were drawn before the lock and the predecessor was "the highest
-- visible id", so two overlapping writers forked it; the lock serialised every insert of every
-- instance; the '|'-joined digest let a '|' move between fields; nothing anchored the head.
--
-- Now:
-- - attempts.chain names the writer's chain, attempts.seq counts 1, 2, 3 ... within it, and
--   prev_hash is the hash of the previous row of the same chain. The BEFORE INSERT trigger locks
--   only that chain's row in herinnerd.chains, so writers of different chains never wait for
--   each other.
-- - The trigger alone decides id, seq, created_at, prev_hash and hash: whatever a writer puts
--   there (OVERRIDING SYSTEM VALUE included) is overwritten.
-- - The digest (v2) is length-prefixed, field by field: no byte can move between fields.
-- - attempts.fact names the fact a row records (de-duplication key, unique). A row whose fact is
--   recorded already is skipped by the trigger (INSERT reports 0 rows) and the chain is left
--   alone. Writers must use a plain INSERT, never ON CONFLICT: ON CONFLICT runs the BEFORE
--   trigger for a row it then discards (harmless for the chain, which is read back from
--   attempts, but it wastes an id). Two concurrent writers of the same fact: the second gets
--   unique_violation (23505) when the first commits; it retries and is then skipped.
-- - Rows written before this file keep their hashes: chain 'legacy', seq in id order, verified
--   with the v1 digest (herinnerd.attempt_digest_input_v1). Nobody appends to 'legacy' again.
-- - herinnerd.write_checkpoint(written_by) stores and returns one line that commits to
--   (chain, seq, hash) of every chain head; auditors keep those lines outside the database.

-- 1. The new columns; existing rows become the chain 'legacy', numbered in id order.
ALTER TABLE herinnerd.attempts
    ADD COLUMN chain text,            -- the writer's chain
    ADD COLUMN seq   bigint,          -- 1, 2, 3 ... within the chain
    ADD COLUMN claim text,            -- claim token the attempt was made under; NULL for follow-ups
    ADD COLUMN fact  text;            -- de-duplication key naming the fact; NULL = none

-- One statement, so the guard is never left switched off, even when psql runs this file
-- without a transaction.
DO $$
BEGIN
    ALTER TABLE herinnerd.attempts DISABLE TRIGGER attempts_no_update;
    UPDATE herinnerd.attempts a SET chain = 'legacy', seq = o.n
      FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM herinnerd.attempts) o
     WHERE a.id = o.id;
    ALTER TABLE herinnerd.attempts ENABLE TRIGGER attempts_no_update;
END $$;

ALTER TABLE herinnerd.attempts
    ALTER COLUMN chain SET NOT NULL,
    ALTER COLUMN seq SET NOT NULL,
    ADD CONSTRAINT attempts_chain_seq UNIQUE (chain, seq),
    ADD CONSTRAINT attempts_seq_check CHECK (seq >= 1),
    ADD CONSTRAINT attempts_fact_key UNIQUE (fact),
    DROP CONSTRAINT attempts_outcome_check,
    ADD CONSTRAINT attempts_outcome_check CHECK (outcome IN ('sent', 'accepted', 'delivered',
        'temporary-failure', 'permanent-failure', 'skipped', 'queued', 'withdrawn',
        'handed-over', 'in-doubt'));

-- 2. Ids come from the trigger only: the identity (which OVERRIDING SYSTEM VALUE bypasses) makes
-- way for a sequence that only the trigger's owner may draw from.
ALTER TABLE herinnerd.attempts ALTER COLUMN id DROP IDENTITY;
CREATE SEQUENCE herinnerd.attempt_ids AS bigint OWNED BY herinnerd.attempts.id;
DO $$
BEGIN
    PERFORM setval('herinnerd.attempt_ids', coalesce(max(id), 0) + 1, false) FROM herinnerd.attempts;
END $$;

-- 3. One row per chain: the lock its writers take, and its head (seq 0: nothing committed yet).
-- Kept by the triggers; nobody else writes here.
CREATE TABLE herinnerd.chains (
    chain      text PRIMARY KEY,
    seq        bigint NOT NULL DEFAULT 0,
    head       bytea,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO herinnerd.chains (chain, seq, head)
SELECT chain, seq, hash FROM herinnerd.attempts WHERE chain = 'legacy' ORDER BY seq DESC LIMIT 1;

-- 4. The digests. v1 is what rows before this file were hashed with; v2 is for every new row.
CREATE FUNCTION herinnerd.attempt_digest_input_v1(a herinnerd.attempts) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT coalesce(a.prev_hash, '\x'::bytea) || convert_to(concat_ws('|',
        a.id, a.message_id, a.step, a.try, a.channel, a.outcome, a.detail,
        coalesce(a.address, ''), coalesce(a.external_id, ''),
        to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        a.instance, a.config_sha256), 'UTF8')
$$;

-- One field of the v2 digest: 'N' for NULL, else 'S' <length in bytes> ':' <the UTF-8 bytes>.
CREATE FUNCTION herinnerd.digest_field(v text) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN v IS NULL THEN '\x4e'::bytea
           ELSE convert_to('S' || octet_length(convert_to(v, 'UTF8')) || ':', 'UTF8')
                || convert_to(v, 'UTF8') END
$$;

-- herinnerctl audit verify recomputes this in C (daemon/ctl/ctl_chain.c): keep the two equal.
CREATE FUNCTION herinnerd.attempt_digest_input_v2(a herinnerd.attempts) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to('herinnerd-attempt-v2', 'UTF8') || coalesce(a.prev_hash, '\x'::bytea)
        || herinnerd.digest_field(a.chain) || herinnerd.digest_field(a.seq::text)
        || herinnerd.digest_field(a.id::text) || herinnerd.digest_field(a.message_id::text)
        || herinnerd.digest_field(a.step::text) || herinnerd.digest_field(a.try::text)
        || herinnerd.digest_field(a.channel) || herinnerd.digest_field(a.outcome)
        || herinnerd.digest_field(a.detail) || herinnerd.digest_field(a.address)
        || herinnerd.digest_field(a.external_id)
        || herinnerd.digest_field(to_char(a.created_at AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || herinnerd.digest_field(a.instance) || herinnerd.digest_field(a.config_sha256)
        || herinnerd.digest_field(a.claim) || herinnerd.digest_field(a.fact)
$$;

-- The contract's name keeps working for every row: sha256(attempt_digest_input(a)) = a.hash.
CREATE OR REPLACE FUNCTION herinnerd.attempt_digest_input(a herinnerd.attempts) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN a.chain = 'legacy' THEN herinnerd.attempt_digest_input_v1(a)
           ELSE herinnerd.attempt_digest_input_v2(a) END
$$;

-- 5. The chain triggers. SECURITY DEFINER: the writer needs no rights on chains or attempt_ids.
DROP TRIGGER attempts_chain ON herinnerd.attempts;
DROP FUNCTION herinnerd.attempts_chain();

CREATE FUNCTION herinnerd.attempts_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    head_seq  bigint;
    head_hash bytea;
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

    -- only writers of this chain wait here (until the holder commits)
    PERFORM 1 FROM herinnerd.chains WHERE chain = NEW.chain FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO herinnerd.chains (chain) VALUES (NEW.chain) ON CONFLICT DO NOTHING;
        PERFORM 1 FROM herinnerd.chains WHERE chain = NEW.chain FOR UPDATE;
    END IF;
    -- the head as stored (not chains.head): a row an earlier ON CONFLICT discarded is no head
    SELECT seq, hash INTO head_seq, head_hash
      FROM herinnerd.attempts WHERE chain = NEW.chain ORDER BY seq DESC LIMIT 1;

    NEW.id := nextval('herinnerd.attempt_ids');
    NEW.seq := coalesce(head_seq, 0) + 1;
    NEW.prev_hash := head_hash;
    NEW.created_at := clock_timestamp();
    NEW.hash := sha256(herinnerd.attempt_digest_input_v2(NEW));
    RETURN NEW;
END $$;

-- Once the rows are really in (not those ON CONFLICT discarded): move the chains' heads. Once
-- per statement, not per row: a row updated again and again within one transaction leaves a
-- chain of versions that every later update walks (a 10,000-row INSERT took minutes).
CREATE FUNCTION herinnerd.attempts_chain_head() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE herinnerd.chains c SET seq = n.seq, head = n.hash
      FROM (SELECT DISTINCT ON (chain) chain, seq, hash FROM new_rows
             ORDER BY chain, seq DESC) n
     WHERE c.chain = n.chain AND c.seq < n.seq;
    RETURN NULL;
END $$;

CREATE TRIGGER attempts_chain BEFORE INSERT ON herinnerd.attempts
    FOR EACH ROW EXECUTE FUNCTION herinnerd.attempts_chain();
CREATE TRIGGER attempts_chain_head AFTER INSERT ON herinnerd.attempts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION herinnerd.attempts_chain_head();

-- 6. Checkpoints: one line per checkpoint, committing to every chain head.
--   herinnerd-checkpoint-v1 id=<n> at=<UTC time> by=<pct> chains=<n>[ <pct chain>=<seq>:<hex hash>]...
-- Chains in byte order; <pct> is percent-encoding of the UTF-8 bytes, every byte outside
-- A-Z a-z 0-9 - . _ ~ : @ written as %XX (so no space, '=' or '%' stays literal).
CREATE TABLE herinnerd.checkpoints (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    written_by text NOT NULL,
    chains     int NOT NULL,                 -- how many chain heads the line commits to
    line       text NOT NULL
);

CREATE FUNCTION herinnerd.pct_encode(s text) RETURNS text
LANGUAGE sql STABLE STRICT AS $$
    SELECT coalesce(string_agg(CASE WHEN b BETWEEN 48 AND 57 OR b BETWEEN 65 AND 90
                                         OR b BETWEEN 97 AND 122 OR b IN (45, 46, 95, 126, 58, 64)
                                    THEN chr(b) ELSE '%' || upper(lpad(to_hex(b), 2, '0')) END,
                               '' ORDER BY i), '')
      FROM (SELECT i, get_byte(u, i) AS b
              FROM (SELECT convert_to(s, 'UTF8') AS u) x,
                   generate_series(0, octet_length(u) - 1) i) y
$$;

CREATE FUNCTION herinnerd.write_checkpoint(written_by text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cp_id bigint := nextval(pg_get_serial_sequence('herinnerd.checkpoints', 'id'));
    at    timestamptz := clock_timestamp();
    who   text := coalesce(nullif(written_by, ''), session_user);
    n     int;
    heads text;
    line  text;
BEGIN
    -- committed heads only (MVCC): each is a row that exists for good
    SELECT count(*),
           coalesce(string_agg(' ' || herinnerd.pct_encode(c.chain) || '=' || c.seq || ':'
                               || encode(c.head, 'hex'), '' ORDER BY c.chain COLLATE "C"), '')
      INTO n, heads
      FROM herinnerd.chains c WHERE c.seq > 0;
    line := 'herinnerd-checkpoint-v1 id=' || cp_id
            || ' at=' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            || ' by=' || herinnerd.pct_encode(who) || ' chains=' || n || heads;
    INSERT INTO herinnerd.checkpoints (id, created_at, written_by, chains, line)
        OVERRIDING SYSTEM VALUE VALUES (cp_id, at, who, n, line);
    RETURN line;
END $$;

-- Checkpoints stay as written, too: the attempts' guard (002), now naming the table it guards.
CREATE OR REPLACE FUNCTION herinnerd.attempts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE OR DELETE ON herinnerd.checkpoints
    FOR EACH ROW EXECUTE FUNCTION herinnerd.attempts_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON herinnerd.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION herinnerd.attempts_append_only();

-- 7. Rights: writers reach chains and checkpoints only through the functions above.
REVOKE ALL ON FUNCTION herinnerd.attempts_chain(), herinnerd.attempts_chain_head(),
    herinnerd.write_checkpoint(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION herinnerd.write_checkpoint(text) TO herinnerd_daemon;
GRANT SELECT ON herinnerd.chains, herinnerd.checkpoints TO herinnerd_auditor;

INSERT INTO herinnerd.schema_version (version) VALUES (6);
