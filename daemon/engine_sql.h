/* The engine's SQL, kept apart so the C reads as a state machine. $-parameters are text. */
#ifndef HERINNERD_ENGINE_SQL_H
#define HERINNERD_ENGINE_SQL_H

#define STR_(x) #x
#define STR(x) STR_(x)

#define ADOPT_BATCH 500
#define CLAIM_BATCH 100
#define LEASE_SECONDS "300"         /* longer than any send may take (SMTP/SMS timeouts) */

/* Unread messages nobody has adopted yet. */
#define SQL_ADOPT_FIND \
    "SELECT m.id, m.kind, extract(epoch FROM m.created_at), extract(epoch FROM m.due_at)," \
    "       extract(epoch FROM now())" \
    "  FROM herinnerd.messages m" \
    " WHERE m.read_at IS NULL" \
    "   AND NOT EXISTS (SELECT 1 FROM herinnerd.escalations e WHERE e.message_id = m.id)" \
    " ORDER BY m.id LIMIT " STR(ADOPT_BATCH)

/* $1 ids, $2 policies, $3 config sha, $4 first due times (NULL: no policy -> failed).
 * Another instance may adopt the same message at the same time: the first insert wins. */
#define SQL_ADOPT_INSERT \
    "INSERT INTO herinnerd.escalations (message_id, policy, config_sha256, next_at, state)" \
    " SELECT x.id, x.policy, $3, to_timestamp(x.t)," \
    "        CASE WHEN x.t IS NULL THEN 'failed' ELSE 'active' END" \
    "   FROM unnest($1::bigint[], $2::text[], $4::float8[]) AS x(id, policy, t)" \
    " ON CONFLICT (message_id) DO NOTHING"

/* Leases held under our instance name are from our previous life: take them back at start. */
#define SQL_RELEASE_OWN_LEASES \
    "UPDATE herinnerd.escalations SET lease_owner = NULL, lease_until = NULL" \
    " WHERE lease_owner = $1 AND state = 'active'"

/* Stop escalations of messages that have been read ($1 = id, or NULL for all). Leases are left
 * alone so that a send already under way still gets its outcome recorded. */
#define SQL_MARK_READ \
    "UPDATE herinnerd.escalations e SET state = 'read', next_at = NULL, updated_at = now()" \
    "  FROM herinnerd.messages m" \
    " WHERE m.id = e.message_id AND e.state = 'active' AND m.read_at IS NOT NULL" \
    "   AND ($1::bigint IS NULL OR e.message_id = $1::bigint)" \
    " RETURNING e.message_id, e.step, to_char(m.read_at, 'YYYY-MM-DD HH24:MI:SSOF')"

/* Claim due escalations: $1 instance, $2 batch size, $3 lease seconds. read_at is checked in
 * the same statement, so a message read before its step is due is never sent. */
#define SQL_CLAIM \
    "WITH due AS (" \
    "  SELECT message_id FROM herinnerd.escalations" \
    "   WHERE state = 'active' AND next_at <= now()" \
    "     AND (lease_until IS NULL OR lease_until < now())" \
    "   ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED)" \
    " UPDATE herinnerd.escalations e" \
    "    SET lease_owner = CASE WHEN m.read_at IS NULL THEN $1 END," \
    "        lease_until = CASE WHEN m.read_at IS NULL" \
    "                      THEN now() + make_interval(secs => $3::float8) END," \
    "        state = CASE WHEN m.read_at IS NULL THEN 'active' ELSE 'read' END," \
    "        next_at = CASE WHEN m.read_at IS NULL THEN e.next_at END," \
    "        updated_at = now()" \
    "   FROM due, herinnerd.messages m, herinnerd.recipients r" \
    "  WHERE e.message_id = due.message_id AND m.id = e.message_id AND r.id = m.recipient_id" \
    " RETURNING e.message_id, e.policy, e.config_sha256, e.step, e.tries," \
    "           m.read_at IS NOT NULL, r.name, r.email, r.mobile, r.postal_address, r.language," \
    "           m.sender, m.kind, m.subject, m.link, extract(epoch FROM m.created_at)," \
    "           extract(epoch FROM m.due_at), extract(epoch FROM now())"

enum claim_column {
    CLAIM_ID, CLAIM_POLICY, CLAIM_SHA, CLAIM_STEP, CLAIM_TRIES, CLAIM_IS_READ, CLAIM_NAME,
    CLAIM_EMAIL, CLAIM_MOBILE, CLAIM_POSTAL, CLAIM_LANGUAGE, CLAIM_SENDER, CLAIM_KIND,
    CLAIM_SUBJECT, CLAIM_LINK, CLAIM_CREATED, CLAIM_DUE, CLAIM_NOW
};

/* Seconds until the earliest due step (ours, or a lease of another instance running out). */
#define SQL_NEXT_DUE \
    "SELECT extract(epoch FROM least(" \
    "  (SELECT next_at FROM herinnerd.escalations" \
    "    WHERE state = 'active' AND lease_until IS NULL ORDER BY next_at LIMIT 1)," \
    "  (SELECT min(lease_until) FROM herinnerd.escalations" \
    "    WHERE state = 'active' AND lease_until IS NOT NULL)) - now())," \
    "  extract(epoch FROM now())"

/* Record outcomes and advance their escalations, a batch in one statement. $1 instance; then
 * arrays, one element per outcome: $2 message, $3 step, $4 tries before this one, $5 new step,
 * $6 new tries, $7 new next_at (epoch or NULL), $8 new state, $9 channel, $10 outcome,
 * $11 detail, $12 address, $13 external id, $14 config sha.
 * Idempotent, so it can be replayed after a lost connection: an attempt is written once per
 * (message, step, try, instance, outcome), and an escalation moves only while we hold it.
 * Returns per outcome whether the escalation moved. */
#define RECORD_BATCH 200
#define SQL_RECORD \
    "WITH r AS (" \
    "  SELECT * FROM unnest($2::bigint[], $3::int[], $4::int[], $5::int[], $6::int[]," \
    "                       $7::float8[], $8::text[], $9::text[], $10::text[], $11::text[]," \
    "                       $12::text[], $13::text[], $14::text[])" \
    "    WITH ORDINALITY AS r(message_id, step, tries, nstep, ntries, nat, nstate, channel," \
    "                         outcome, detail, address, external_id, config_sha256, n))," \
    " upd AS (" \
    "  UPDATE herinnerd.escalations e" \
    "     SET step = r.nstep, tries = r.ntries," \
    "         next_at = CASE WHEN e.state = 'read' THEN NULL ELSE to_timestamp(r.nat) END," \
    "         state = CASE WHEN e.state = 'read' THEN 'read' ELSE r.nstate END," \
    "         lease_owner = NULL, lease_until = NULL, updated_at = now()" \
    "    FROM r" \
    "   WHERE e.message_id = r.message_id AND e.step = r.step AND e.tries = r.tries" \
    "     AND e.lease_owner = $1" \
    "  RETURNING e.message_id)," \
    " ins AS (" \
    "  INSERT INTO herinnerd.attempts (message_id, step, try, channel, outcome, detail, address," \
    "                                  external_id, instance, config_sha256)" \
    "  SELECT r.message_id, r.step, r.tries + 1, r.channel, r.outcome, r.detail, r.address," \
    "         r.external_id, $1, r.config_sha256" \
    "    FROM r" \
    "   WHERE NOT EXISTS (SELECT 1 FROM herinnerd.attempts a" \
    "                      WHERE a.message_id = r.message_id AND a.step = r.step" \
    "                        AND a.try = r.tries + 1 AND a.instance = $1" \
    "                        AND a.outcome = r.outcome)" \
    "   ORDER BY r.n" \
    "  ON CONFLICT DO NOTHING" \
    "  RETURNING id)" \
    " SELECT r.message_id, EXISTS (SELECT 1 FROM upd WHERE upd.message_id = r.message_id)," \
    "        (SELECT count(*) FROM ins)" \
    "   FROM r ORDER BY r.n"

/* A follow-up (delivery report, hand-over, withdrawal): attempt only, written once per
 * (message, step, try, outcome, detail).
 * $1 message, $2 step, $3 try, $4 instance, $5 channel, $6 outcome, $7 detail, $8 address,
 * $9 external id, $10 config sha. */
#define SQL_FOLLOWUP \
    "INSERT INTO herinnerd.attempts (message_id, step, try, channel, outcome, detail, address," \
    "                                external_id, instance, config_sha256)" \
    " SELECT $1, $2, $3, $5, $6, $7, $8, $9, $4, $10" \
    "  WHERE NOT EXISTS (SELECT 1 FROM herinnerd.attempts a" \
    "                     WHERE a.message_id = $1 AND a.step = $2 AND a.try = $3" \
    "                       AND a.outcome = $6 AND a.detail = $7)"

#endif
