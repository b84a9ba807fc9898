/* The engine's SQL, kept apart so the C reads as a state machine. $-parameters are text. */
#ifndef HERINNERD_ENGINE_SQL_H
#define HERINNERD_ENGINE_SQL_H

#include "ledger_sql.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#define ADOPT_BATCH 2000           /* new messages taken per statement */
#define READ_BATCH 1000            /* read events taken per statement */
#define CLAIM_BATCH 500             /* most rows one claim takes per channel */

/* Take a batch of new messages from the queue the inbox's inserts fill (sql/009_outbox.sql) and
 * hold each as an escalation not yet planned (policy ''), under our adoption claim $1 (label $2,
 * lease $3 seconds), in one statement: a crash before the plan leaves the claim to run out, and
 * the next claim plans it. Messages read in the meantime are left out. Several instances share
 * the queue (SKIP LOCKED). Returns what the planner needs, and how many rows were taken.
 * = ANY (ARRAY(...)) deletes by key: as "IN (subquery)" the planner hashed the batch and read
 * the whole queue to find it, so adopting a million took O(n^2). */
#define SQL_ADOPT_TAKE \
    "WITH taken AS (" \
    "  DELETE FROM herinnerd.new_messages q" \
    "   WHERE q.id = ANY (ARRAY(SELECT id FROM herinnerd.new_messages ORDER BY id" \
    "                          LIMIT " STR(ADOPT_BATCH) " FOR UPDATE SKIP LOCKED))" \
    "  RETURNING q.message_id)," \
    " held AS (" \
    "  INSERT INTO herinnerd.escalations (message_id, policy, config_sha256, next_at, state," \
    "                                     channel, claim, lease_owner, lease_until)" \
    "  SELECT m.id, '', '', now() + make_interval(secs => $3::float8), 'active', '', $1, $2," \
    "         now() + make_interval(secs => $3::float8)" \
    "    FROM taken JOIN herinnerd.messages m ON m.id = taken.message_id" \
    "   WHERE m.read_at IS NULL" \
    "  ON CONFLICT (message_id) DO NOTHING" \
    "  RETURNING message_id)" \
    " SELECT m.id, m.kind, extract(epoch FROM m.created_at), extract(epoch FROM m.due_at)," \
    "        extract(epoch FROM now()), (SELECT count(*) FROM taken)" \
    "   FROM held JOIN herinnerd.messages m ON m.id = held.message_id ORDER BY m.id"

/* The plan for escalations held by adoption claim $1: $2 config sha, arrays $3 ids, $4 policies
 * ('' when none applies), $5 first due times, $6 channels of the first steps. A message that
 * cannot be planned is due at once: its claim records why. */
#define SQL_ADOPT_PLAN \
    "UPDATE herinnerd.escalations e" \
    "   SET policy = x.policy, config_sha256 = $2, next_at = to_timestamp(x.t)," \
    "       channel = x.channel, claim = NULL, lease_owner = NULL, lease_until = NULL," \
    "       updated_at = now()" \
    "  FROM unnest($3::bigint[], $4::text[], $5::float8[], $6::text[]) AS x(id, policy, t, channel)" \
    " WHERE e.message_id = x.id AND e.claim = $1"

/* A claim token that holds escalations for planning only: nothing was sent under it. */
#define ADOPT_CLAIM_PREFIX "adopt:"

/* Stop the waiting escalations of messages read since the last time (the queue the inbox's
 * updates fill), each with a `skipped` attempt for the step it stopped, in one statement. A
 * claimed escalation is left to its holder: its claim looks at read_at, and so does the next.
 * $1 instance, $2 chain. Returns the stopped ones, and how many read events were taken. */
#define SQL_MARK_READ \
    "WITH ev AS (" \
    "  DELETE FROM herinnerd.read_messages q" \
    "   WHERE q.id = ANY (ARRAY(SELECT id FROM herinnerd.read_messages ORDER BY id" \
    "                          LIMIT " STR(READ_BATCH) " FOR UPDATE SKIP LOCKED))" \
    "  RETURNING q.message_id)," \
    " o AS (" \
    "  SELECT e.message_id, e.step, e.tries, e.channel, e.config_sha256, m.read_at" \
    "    FROM herinnerd.escalations e JOIN herinnerd.messages m ON m.id = e.message_id" \
    "   WHERE e.message_id IN (SELECT message_id FROM ev)" \
    "     AND e.state = 'active' AND e.claim IS NULL AND m.read_at IS NOT NULL" \
    "   FOR UPDATE OF e SKIP LOCKED)," \
    " stopped AS (" \
    "  UPDATE herinnerd.escalations e SET state = 'read', next_at = NULL, updated_at = now()" \
    "    FROM o WHERE e.message_id = o.message_id RETURNING e.message_id)," \
    " ins AS (" \
    LEDGER_INSERT \
    "  SELECT o.message_id, o.step, o.tries + 1, coalesce(nullif(o.channel, ''), 'unknown')," \
    "         'skipped', 'read at ' || to_char(o.read_at, 'YYYY-MM-DD HH24:MI:SSOF') ||" \
    "         ': step ' || o.step || ' not carried out', NULL, NULL, $1, o.config_sha256," \
    "         $2, NULL, 'read:' || o.message_id || ':' || o.step" \
    "    FROM o ORDER BY o.message_id" \
    "  RETURNING 1)" \
    " SELECT o.message_id, o.step, to_char(o.read_at, 'YYYY-MM-DD HH24:MI:SSOF')," \
    "        (SELECT count(*) FROM stopped), (SELECT count(*) FROM ins), (SELECT count(*) FROM ev)" \
    "   FROM o" \
    " UNION ALL SELECT NULL, NULL, NULL, 0, 0, (SELECT count(*) FROM ev)"

/* Claim due escalations for the claim token $1 (label $2, chain $5, lease $6 seconds), per
 * channel no more than it has room for ($3 channels, $4 rooms). A row still carrying another
 * claim is one whose holder never recorded an outcome before its lease ran out (it died, or
 * lost the database): that becomes an `in-doubt` attempt in the same statement, before the step
 * is tried again. A claimed row keeps next_at at its lease's end. read_at is returned so that a
 * message read before its step is due is never sent; the lane a row came from tells whether
 * that lane was filled (more may be due). */
#define SQL_CLAIM \
    "WITH lanes AS (SELECT * FROM unnest($3::text[], $4::int[]) AS l(channel, room))," \
    " due AS (" \
    "  SELECT d.* FROM lanes, LATERAL (" \
    "    SELECT x.message_id, x.claim AS old_claim, x.lease_owner AS old_owner," \
    "           x.step AS old_step, x.tries AS old_tries, x.config_sha256 AS old_sha," \
    "           x.channel AS old_channel" \
    "      FROM herinnerd.escalations x" \
    /* escalations_due (channel, next_at) only: escalations_next's predicate (next_at IS NOT \
     * NULL, sql/011_scale.sql) does not follow from a row comparison, so the planner cannot \
     * walk it through every lane's due rows to find a lane's few (or none) */ \
    "     WHERE x.state = 'active' AND x.channel = lanes.channel" \
    "       AND (x.channel, x.next_at) <= (lanes.channel, now())" \
    "     ORDER BY x.channel, x.next_at LIMIT lanes.room FOR UPDATE SKIP LOCKED) d)," \
    " doubt AS (" \
    LEDGER_INSERT \
    "  SELECT message_id, old_step, old_tries + 1, coalesce(nullif(old_channel, ''), 'unknown')," \
    "         'in-doubt', 'claim ' || old_claim || ' of instance ' || coalesce(old_owner, '?') ||" \
    "         ' ran out before its outcome was recorded: it may have been delivered', NULL, NULL," \
    "         $2, old_sha, $5, old_claim, 'in-doubt:' || old_claim || ':' || message_id" \
    "    FROM due WHERE old_claim IS NOT NULL AND old_claim NOT LIKE '" ADOPT_CLAIM_PREFIX "%'" \
    "   ORDER BY message_id" \
    "  RETURNING 1)," \
    " upd AS (" \
    "  UPDATE herinnerd.escalations e" \
    "     SET claim = $1, lease_owner = $2," \
    "         lease_until = now() + make_interval(secs => $6::float8)," \
    "         next_at = now() + make_interval(secs => $6::float8), updated_at = now()" \
    /* key lookups: joined with the CTE, the planner may walk the whole primary key in a \
     * merge join (O(escalations) per claim) */ \
    "   WHERE e.message_id = ANY (ARRAY(SELECT message_id FROM due))" \
    "  RETURNING e.message_id, e.policy, e.config_sha256, e.step, e.tries)" \
    /* one key lookup per claimed row: LIMIT 1 keeps the planner from a merge join over \
     * messages_pkey (O(messages) per claim) */ \
    " SELECT upd.message_id, upd.policy, upd.config_sha256, upd.step, upd.tries, mr.*," \
    "        extract(epoch FROM now()), due.old_claim, (SELECT count(*) FROM doubt)," \
    "        due.old_channel" \
    "   FROM upd JOIN due ON due.message_id = upd.message_id, LATERAL (" \
    "     SELECT to_char(m.read_at, 'YYYY-MM-DD HH24:MI:SSOF'), r.name, r.email, r.mobile," \
    "            r.postal_address, r.language, m.sender, m.kind, m.subject, m.link," \
    "            extract(epoch FROM m.created_at), extract(epoch FROM m.due_at)" \
    "       FROM herinnerd.messages m JOIN herinnerd.recipients r ON r.id = m.recipient_id" \
    "      WHERE m.id = upd.message_id LIMIT 1) mr"

/* Claims whose answer the connection lost ($1): the database may have taken rows under them
 * that this process never saw, so it never sent them. Instead of letting them wait out the
 * lease: a send claim lets go of its rows (no in-doubt: nothing went out), an adoption's rows
 * stay held by it and fall due now, so that the next claim plans them (as after a crash). */
#define SQL_RETURN_LOST_CLAIMS \
    "UPDATE herinnerd.escalations" \
    "   SET next_at = now(), updated_at = now()," \
    "       claim = CASE WHEN claim LIKE '" ADOPT_CLAIM_PREFIX "%' THEN claim END," \
    "       lease_owner = CASE WHEN claim LIKE '" ADOPT_CLAIM_PREFIX "%' THEN lease_owner END," \
    "       lease_until = CASE WHEN claim LIKE '" ADOPT_CLAIM_PREFIX "%' THEN lease_until END" \
    " WHERE claim = ANY ($1::text[]) AND state = 'active'"

enum claim_column {
    CLAIM_ID, CLAIM_POLICY, CLAIM_SHA, CLAIM_STEP, CLAIM_TRIES, CLAIM_READ_AT, CLAIM_NAME,
    CLAIM_EMAIL, CLAIM_MOBILE, CLAIM_POSTAL, CLAIM_LANGUAGE, CLAIM_SENDER, CLAIM_KIND,
    CLAIM_SUBJECT, CLAIM_LINK, CLAIM_CREATED, CLAIM_DUE, CLAIM_NOW, CLAIM_OLD_CLAIM,
    CLAIM_DOUBTS, CLAIM_LANE
};

/* One notice per person (a policy's `bundle`). $4 are escalations our claim $1 holds and is about
 * to send, on policies that bundle, with their windows $5 (seconds). Per recipient and channel
 * the lowest unread message id leads; each leader takes, under the same claim (label $2, lease
 * $3 seconds), the recipient's other unread escalations whose current step is on the same
 * channel and due within its window, on policies $6 that bundle, not held by anyone (SKIP
 * LOCKED: whatever is busy goes on its own). Returns the rows taken (the columns of SQL_CLAIM,
 * then the leader and "taken"), and every escalation of $4 with its leader and "held", or
 * "read" with its read_at when it was read after the claim (it drops out of the bundle). */
#define BUNDLE_MAX 99               /* most messages a leader takes */
#define SQL_BUNDLE \
    "WITH held AS (" \
    "  SELECT h.id, h.win, m.recipient_id, e.channel, m.read_at" \
    "    FROM unnest($4::bigint[], $5::float8[]) AS h(id, win)" \
    "    JOIN herinnerd.messages m ON m.id = h.id" \
    "    JOIN herinnerd.escalations e ON e.message_id = h.id AND e.claim = $1)," \
    " leaders AS (" \
    "  SELECT DISTINCT ON (recipient_id, channel) id, win, recipient_id, channel" \
    "    FROM held WHERE read_at IS NULL ORDER BY recipient_id, channel, id)," \
    " more AS (" \
    "  SELECT d.message_id, l.id AS leader FROM leaders l, LATERAL (" \
    "    SELECT x.message_id FROM herinnerd.escalations x" \
    "      JOIN herinnerd.messages m ON m.id = x.message_id" \
    "     WHERE m.recipient_id = l.recipient_id AND m.read_at IS NULL AND x.state = 'active'" \
    "       AND x.channel = l.channel AND x.claim IS NULL AND x.policy = ANY($6::text[])" \
    "       AND x.next_at <= now() + make_interval(secs => l.win)" \
    "     ORDER BY x.next_at, x.message_id LIMIT " STR(BUNDLE_MAX) \
    "       FOR UPDATE OF x SKIP LOCKED) d)," \
    " taken AS (" \
    "  UPDATE herinnerd.escalations e" \
    "     SET claim = $1, lease_owner = $2," \
    "         lease_until = now() + make_interval(secs => $3::float8)," \
    "         next_at = now() + make_interval(secs => $3::float8), updated_at = now()" \
    "    FROM more WHERE e.message_id = more.message_id" \
    "  RETURNING e.message_id, more.leader, e.policy, e.config_sha256, e.step, e.tries)" \
    " SELECT t.message_id, t.policy, t.config_sha256, t.step, t.tries, NULL::text, r.name," \
    "        r.email, r.mobile, r.postal_address, r.language, m.sender, m.kind, m.subject," \
    "        m.link, extract(epoch FROM m.created_at), extract(epoch FROM m.due_at)," \
    "        extract(epoch FROM now()), NULL::text, t.leader, 'taken'" \
    "   FROM taken t JOIN herinnerd.messages m ON m.id = t.message_id" \
    "   JOIN herinnerd.recipients r ON r.id = m.recipient_id" \
    " UNION ALL" \
    " SELECT h.id, NULL, NULL, NULL, NULL, to_char(h.read_at, 'YYYY-MM-DD HH24:MI:SSOF')," \
    "        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL," \
    "        extract(epoch FROM now()), NULL, l.id, CASE WHEN h.read_at IS NULL THEN 'held'" \
    "                                                    ELSE 'read' END" \
    "   FROM held h LEFT JOIN leaders l" \
    "     ON l.recipient_id = h.recipient_id AND l.channel = h.channel"

enum bundle_column { BUNDLE_LEADER = CLAIM_OLD_CLAIM + 1, BUNDLE_ROLE };

/* Keep our claims on work still queued or in flight: $1 claim tokens, $2 lease seconds. */
#define SQL_RENEW \
    "UPDATE herinnerd.escalations" \
    "   SET lease_until = now() + make_interval(secs => $2::float8)," \
    "       next_at = now() + make_interval(secs => $2::float8)" \
    " WHERE claim = ANY($1::text[]) AND state = 'active'"

/* Seconds until the earliest due step: one index lookup (a claimed row is due at its lease's end). */
#define SQL_NEXT_DUE \
    "SELECT extract(epoch FROM (SELECT next_at FROM herinnerd.escalations" \
    "                            WHERE state = 'active' AND next_at IS NOT NULL" \
    "                            ORDER BY next_at LIMIT 1) - now())," \
    "       extract(epoch FROM now())"

#endif
