/* The engine's SQL, kept apart so the C reads as a state machine. $-parameters are text. */
#ifndef HERINNERD_ENGINE_SQL_H
#define HERINNERD_ENGINE_SQL_H

#include "ledger_sql.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define ADOPT_BATCH 500
#define CLAIM_BATCH 200             /* most rows one claim takes per channel */

/* Unread messages nobody has adopted yet. */
#define SQL_ADOPT_FIND \
    "SELECT m.id, m.kind, extract(epoch FROM m.created_at), extract(epoch FROM m.due_at)," \
    "       extract(epoch FROM now())" \
    "  FROM herinnerd.messages m" \
    " WHERE m.read_at IS NULL" \
    "   AND NOT EXISTS (SELECT 1 FROM herinnerd.escalations e WHERE e.message_id = m.id)" \
    " ORDER BY m.id LIMIT " STR(ADOPT_BATCH)

/* $1 ids, $2 policies ('' when none applies), $3 config sha, $4 first due times, $5 channels of
 * the first steps. A message that cannot be planned is due at once: its claim records why.
 * Another instance may adopt the same message at the same time: the first insert wins. */
#define SQL_ADOPT_INSERT \
    "INSERT INTO herinnerd.escalations (message_id, policy, config_sha256, next_at, state, channel)" \
    " SELECT x.id, x.policy, $3, to_timestamp(x.t), 'active', x.channel" \
    "   FROM unnest($1::bigint[], $2::text[], $4::float8[], $5::text[]) AS x(id, policy, t, channel)" \
    " ON CONFLICT (message_id) DO NOTHING"

/* Stop the waiting escalations of read messages ($1 = id, or NULL for all) with a `skipped`
 * attempt for the step they stopped, in one statement. A claimed escalation is left to its
 * holder: its claim looks at read_at, and so does the next one.
 * $2 instance, $3 chain. */
#define SQL_MARK_READ \
    "WITH o AS (" \
    "  SELECT e.message_id, e.step, e.tries, e.channel, e.config_sha256, m.read_at" \
    "    FROM herinnerd.escalations e JOIN herinnerd.messages m ON m.id = e.message_id" \
    "   WHERE e.state = 'active' AND e.claim IS NULL AND m.read_at IS NOT NULL" \
    "     AND ($1::bigint IS NULL OR e.message_id = $1::bigint)" \
    "   FOR UPDATE OF e SKIP LOCKED)," \
    " stopped AS (" \
    "  UPDATE herinnerd.escalations e SET state = 'read', next_at = NULL, updated_at = now()" \
    "    FROM o WHERE e.message_id = o.message_id RETURNING e.message_id)," \
    " ins AS (" \
    LEDGER_INSERT \
    "  SELECT o.message_id, o.step, o.tries + 1, coalesce(nullif(o.channel, ''), 'unknown')," \
    "         'skipped', 'read at ' || to_char(o.read_at, 'YYYY-MM-DD HH24:MI:SSOF') ||" \
    "         ': step ' || o.step || ' not carried out', NULL, NULL, $2, o.config_sha256," \
    "         $3, NULL, 'read:' || o.message_id || ':' || o.step" \
    "    FROM o ORDER BY o.message_id" \
    "  RETURNING 1)" \
    " SELECT o.message_id, o.step, to_char(o.read_at, 'YYYY-MM-DD HH24:MI:SSOF')," \
    "        (SELECT count(*) FROM stopped), (SELECT count(*) FROM ins)" \
    "   FROM o"

/* Claim due escalations for the claim token $1 (label $2, chain $5, lease $6 seconds), per
 * channel no more than it has room for ($3 channels, $4 rooms). A row still carrying another
 * claim is one whose holder never recorded an outcome before its lease ran out (it died, or
 * lost the database): that becomes an `in-doubt` attempt in the same statement, before the step
 * is tried again. A claimed row keeps next_at at its lease's end. read_at is returned so that a
 * message read before its step is due is never sent. */
#define SQL_CLAIM \
    "WITH lanes AS (SELECT * FROM unnest($3::text[], $4::int[]) AS l(channel, room))," \
    " due AS (" \
    "  SELECT d.* FROM lanes, LATERAL (" \
    "    SELECT x.message_id, x.claim AS old_claim, x.lease_owner AS old_owner," \
    "           x.step AS old_step, x.tries AS old_tries, x.config_sha256 AS old_sha," \
    "           x.channel AS old_channel" \
    "      FROM herinnerd.escalations x" \
    "     WHERE x.state = 'active' AND x.channel = lanes.channel AND x.next_at <= now()" \
    "     ORDER BY x.next_at LIMIT lanes.room FOR UPDATE SKIP LOCKED) d)," \
    " doubt AS (" \
    LEDGER_INSERT \
    "  SELECT message_id, old_step, old_tries + 1, coalesce(nullif(old_channel, ''), 'unknown')," \
    "         'in-doubt', 'claim ' || old_claim || ' of instance ' || coalesce(old_owner, '?') ||" \
    "         ' ran out before its outcome was recorded: it may have been delivered', NULL, NULL," \
    "         $2, old_sha, $5, old_claim, 'in-doubt:' || old_claim || ':' || message_id" \
    "    FROM due WHERE old_claim IS NOT NULL ORDER BY message_id" \
    "  RETURNING 1)" \
    " UPDATE herinnerd.escalations e" \
    "    SET claim = $1, lease_owner = $2," \
    "        lease_until = now() + make_interval(secs => $6::float8)," \
    "        next_at = now() + make_interval(secs => $6::float8), updated_at = now()" \
    "   FROM due, herinnerd.messages m, herinnerd.recipients r" \
    "  WHERE e.message_id = due.message_id AND m.id = e.message_id AND r.id = m.recipient_id" \
    " RETURNING e.message_id, e.policy, e.config_sha256, e.step, e.tries," \
    "           to_char(m.read_at, 'YYYY-MM-DD HH24:MI:SSOF'), r.name, r.email, r.mobile," \
    "           r.postal_address, r.language, m.sender, m.kind, m.subject, m.link," \
    "           extract(epoch FROM m.created_at), extract(epoch FROM m.due_at)," \
    "           extract(epoch FROM now()), due.old_claim, (SELECT count(*) FROM doubt)"

enum claim_column {
    CLAIM_ID, CLAIM_POLICY, CLAIM_SHA, CLAIM_STEP, CLAIM_TRIES, CLAIM_READ_AT, CLAIM_NAME,
    CLAIM_EMAIL, CLAIM_MOBILE, CLAIM_POSTAL, CLAIM_LANGUAGE, CLAIM_SENDER, CLAIM_KIND,
    CLAIM_SUBJECT, CLAIM_LINK, CLAIM_CREATED, CLAIM_DUE, CLAIM_NOW, CLAIM_OLD_CLAIM
};

/* Keep our claims on work still queued or in flight: $1 claim tokens, $2 lease seconds. */
#define SQL_RENEW \
    "UPDATE herinnerd.escalations" \
    "   SET lease_until = now() + make_interval(secs => $2::float8)," \
    "       next_at = now() + make_interval(secs => $2::float8)" \
    " WHERE claim = ANY($1::text[]) AND state = 'active'"

/* Seconds until the earliest due step: one index lookup (a claimed row is due at its lease's end). */
#define SQL_NEXT_DUE \
    "SELECT extract(epoch FROM (SELECT next_at FROM herinnerd.escalations" \
    "                            WHERE state = 'active' ORDER BY next_at LIMIT 1) - now())," \
    "       extract(epoch FROM now())"

#endif
