/* The paper channel's SQL, shared by the daemon (paper.c) and `herinnerctl paper handover`.
 * The database arbitrates "one letter per (message, step)" across instances (DESIGN.md §5):
 * herinnerd.letters holds the intent, the spool only the files. $-parameters are text. */
#ifndef HERINNERD_PAPER_SQL_H
#define HERINNERD_PAPER_SQL_H

/* Claim the letter before rendering it: $1 message, $2 step, $3 instance (a label), $4 the
 * escalation's claim token, which we hold. A row comes back when we may go on: our own claim,
 * a claim that has lost its escalation (its process died or its lease ran out: the lease is the
 * only timeout), or a letter that exists already (state queued/handed-over/withdrawn, file set;
 * returned unchanged). No row: another live claim is writing it right now. */
#define PAPER_INTENT_TAKE \
    " ON CONFLICT (message_id, step) DO UPDATE" \
    "   SET instance = CASE WHEN letters.state = 'writing' THEN EXCLUDED.instance" \
    "                       ELSE letters.instance END," \
    "       claim = CASE WHEN letters.state = 'writing' THEN EXCLUDED.claim ELSE letters.claim END," \
    "       leader = CASE WHEN letters.state = 'writing' THEN EXCLUDED.leader" \
    "                     ELSE letters.leader END," \
    "       leader_step = CASE WHEN letters.state = 'writing' THEN EXCLUDED.leader_step" \
    "                          ELSE letters.leader_step END," \
    "       updated_at = CASE WHEN letters.state = 'writing' THEN now()" \
    "                         ELSE letters.updated_at END" \
    " WHERE letters.state <> 'writing' OR letters.claim = EXCLUDED.claim" \
    "    OR NOT EXISTS (SELECT 1 FROM herinnerd.escalations e" \
    "                    WHERE e.message_id = letters.message_id AND e.claim = letters.claim)"
#define SQL_PAPER_INTENT \
    "INSERT INTO herinnerd.letters (message_id, step, instance, state, claim)" \
    " VALUES ($1, $2, $3, 'writing', $4)" \
    PAPER_INTENT_TAKE \
    " RETURNING state, file"

/* One letter naming several messages (a policy's bundle) is written under its leader's
 * (message, step); every other message it names has a row of its own that points there
 * (leader, leader_step), so that no retry or takeover prints any of them again. After the
 * leader's SQL_PAPER_INTENT: the same for the members, $1 ids, $2 steps, $3 instance, $4 claim,
 * $5 leader, $6 leader's step. Returns message_id, state, file for the rows we may go on with
 * (state 'writing': ours to name in the letter; otherwise its letter exists already). */
#define SQL_PAPER_INTENT_MEMBERS \
    "INSERT INTO herinnerd.letters (message_id, step, instance, state, claim, leader, leader_step)" \
    " SELECT x.id, x.step, $3, 'writing', $4, $5, $6" \
    "   FROM unnest($1::bigint[], $2::int[]) AS x(id, step)" \
    PAPER_INTENT_TAKE \
    " RETURNING message_id, state, file"

/* The file is in pending/: $1 message, $2 step, $3 path, $4 our claim. Only the claim writing
 * the letter marks it queued (also when it was settled as 'unwritten' while we were slow: the
 * file exists after all, and the read withdraws it); a letter handed over or withdrawn in the
 * meantime (herinnerctl between our link() and this) keeps its state. Returns the state, the
 * file, whether the message has been read (then it is withdrawn at once), and whether the
 * letter row was ours. */
#define SQL_PAPER_QUEUED \
    "WITH members AS (" \
    "  UPDATE herinnerd.letters SET state = 'queued', file = $3, updated_at = now()" \
    "   WHERE leader = $1 AND leader_step = $2 AND claim = $4" \
    "     AND state IN ('writing', 'unwritten'))" \
    "UPDATE herinnerd.letters l" \
    "   SET state = CASE WHEN l.state IN ('writing', 'unwritten') AND l.claim = $4 THEN 'queued'" \
    "                    ELSE l.state END," \
    "       file = CASE WHEN l.state IN ('writing', 'unwritten') AND l.claim = $4 THEN $3" \
    "                   ELSE l.file END," \
    "       updated_at = now()" \
    "  FROM herinnerd.messages m" \
    " WHERE l.message_id = $1 AND l.step = $2 AND m.id = l.message_id" \
    " RETURNING l.state, coalesce(l.file, $3), m.read_at IS NOT NULL, l.claim = $4"

/* Rendering failed: give up our claim on the letter so that the next claim may write it
 * ($1, $2, $3 our claim). */
#define SQL_PAPER_RELEASE \
    "UPDATE herinnerd.letters SET claim = NULL, updated_at = now()" \
    " WHERE ((message_id = $1 AND step = $2) OR (leader = $1 AND leader_step = $2))" \
    "   AND claim = $3 AND state = 'writing'"

/* Letters waiting for the cut-off whose message has been read: $1 message id, or NULL for all.
 * A letter naming several messages (written under the first one's id) only when all are read.
 * Also letters still 'writing' under a claim that no longer holds their escalation: the writer
 * died after linking the file, before recording it, so the file may be in pending/. */
#define SQL_PAPER_TO_WITHDRAW \
    "SELECT l.message_id, l.step, to_char(m.read_at, 'YYYY-MM-DD HH24:MI:SSOF')" \
    "  FROM herinnerd.letters l JOIN herinnerd.messages m ON m.id = l.message_id" \
    " WHERE ($1::bigint IS NULL" \
    /* the message's own letter, or the one naming it (a bundle: written under its leader) */ \
    "        OR l.message_id = ANY (ARRAY[$1::bigint] ||" \
    "                               ARRAY(SELECT b.leader FROM herinnerd.letters b" \
    "                                      WHERE b.message_id = $1::bigint" \
    "                                        AND b.leader IS NOT NULL)))" \
    "   AND l.leader IS NULL" \
    "   AND (l.state = 'queued' OR (l.state = 'writing' AND NOT EXISTS (" \
    "          SELECT 1 FROM herinnerd.escalations e" \
    "           WHERE e.message_id = l.message_id AND e.claim = l.claim)))" \
    "   AND m.read_at IS NOT NULL" \
    /* a letter naming several messages goes unless every one of them is read */ \
    "   AND NOT EXISTS (SELECT 1 FROM herinnerd.letters b" \
    "                     JOIN herinnerd.messages bm ON bm.id = b.message_id" \
    "                    WHERE b.leader = l.message_id AND b.leader_step = l.step" \
    "                      AND b.claim IS NOT DISTINCT FROM l.claim AND bm.read_at IS NULL)"

/* The file moved on (handed-over or withdrawn), after the ledger recorded it: the letter's
 * state follows, and so do the rows of the other messages it names. $1 message, $2 step,
 * $3 state ('handed-over' | 'withdrawn'), $4 the file's new path. Idempotent: replays after a
 * lost connection, the daemon and herinnerctl side by side. */
#define SQL_PAPER_MOVED \
    "UPDATE herinnerd.letters SET state = $3, file = $4, updated_at = now()" \
    " WHERE ((message_id = $1 AND step = $2) OR (leader = $1 AND leader_step = $2))" \
    "   AND state IN ('writing', 'queued', 'unwritten')"

/* A letter of a read message whose writer died before its file existed: SQL_PAPER_TO_WITHDRAW
 * found it 'writing' under a claim no escalation holds, and the spool has no such file. Nobody
 * will write it (the escalation stopped at the read), so the row says so instead of 'writing'
 * for ever; the rows of the other messages it names follow. $1 message, $2 step. A file that
 * turns up after all (another host's spool) still moves it (SQL_PAPER_MOVED). */
#define SQL_PAPER_UNWRITTEN \
    "WITH dead AS (" \
    "  SELECT l.claim FROM herinnerd.letters l JOIN herinnerd.messages m ON m.id = l.message_id" \
    "   WHERE l.message_id = $1 AND l.step = $2 AND l.state = 'writing' AND m.read_at IS NOT NULL" \
    "     AND NOT EXISTS (SELECT 1 FROM herinnerd.escalations e" \
    "                      WHERE e.message_id = l.message_id AND e.claim = l.claim))" \
    "UPDATE herinnerd.letters SET state = 'unwritten', updated_at = now()" \
    " WHERE ((message_id = $1 AND step = $2) OR (leader = $1 AND leader_step = $2))" \
    "   AND state = 'writing' AND EXISTS (SELECT 1 FROM dead)" \
    "   AND claim IS NOT DISTINCT FROM (SELECT claim FROM dead)" \
    " RETURNING message_id"

/* The other messages a letter names (a bundle): $1 its message, $2 its step. Their moves are
 * recorded as attempts of their own too, before SQL_PAPER_MOVED moves their rows. */
#define SQL_PAPER_MEMBERS \
    "SELECT message_id, step FROM herinnerd.letters" \
    " WHERE leader = $1 AND leader_step = $2 AND state IN ('writing', 'queued', 'unwritten')" \
    " ORDER BY message_id"

/* The fact of a move, as the ledger writes it: one per (message, step, outcome). */
#define PAPER_MOVE_FACT "paper:%" PRId64 ":%d:%s"

/* Letters the database still thinks are waiting in pending/: after a restart the spool may know
 * better (moved, then a crash before the move was recorded). With read_at for the detail. */
#define SQL_PAPER_UNSETTLED \
    "SELECT l.message_id, l.step, coalesce(to_char(m.read_at, 'YYYY-MM-DD HH24:MI:SSOF'), '')" \
    "  FROM herinnerd.letters l JOIN herinnerd.messages m ON m.id = l.message_id" \
    " WHERE l.state = 'queued' AND l.leader IS NULL"

#endif
