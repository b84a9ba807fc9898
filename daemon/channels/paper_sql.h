/* The paper channel's SQL, shared by the daemon (paper.c) and `herinnerctl paper handover`.
 * The database arbitrates "one letter per (message, step)" across instances (DESIGN.md §5):
 * herinnerd.letters holds the intent, the spool only the files. $-parameters are text. */
#ifndef HERINNERD_PAPER_SQL_H
#define HERINNERD_PAPER_SQL_H

/* A stale 'writing' claim (its instance died mid-render) may be taken over after this. */
#define PAPER_WRITING_TIMEOUT "10 minutes"

/* Claim the letter before rendering it: $1 message, $2 step, $3 instance.
 * A row comes back when we may go on: our own claim (a retry, or our previous life before a
 * restart), a stale claim of another instance, or a letter that exists already (any instance:
 * state queued/handed-over/withdrawn, file set; such a row is returned unchanged). No row: another
 * instance is writing it right now. */
#define SQL_PAPER_INTENT \
    "INSERT INTO herinnerd.letters (message_id, step, instance, state)" \
    " VALUES ($1, $2, $3, 'writing')" \
    " ON CONFLICT (message_id, step) DO UPDATE" \
    "   SET instance = CASE WHEN letters.state = 'writing' THEN EXCLUDED.instance" \
    "                       ELSE letters.instance END," \
    "       updated_at = CASE WHEN letters.state = 'writing' THEN now()" \
    "                         ELSE letters.updated_at END" \
    " WHERE letters.state <> 'writing' OR letters.instance = EXCLUDED.instance" \
    "    OR letters.updated_at < now() - interval '" PAPER_WRITING_TIMEOUT "'" \
    " RETURNING state, file"

/* The file is in pending/: $1 message, $2 step, $3 path. A letter handed over or withdrawn in
 * the meantime (herinnerctl between our link() and this) keeps its state. Returns the state,
 * the file, and whether the message has been read (then it is withdrawn at once). */
#define SQL_PAPER_QUEUED \
    "UPDATE herinnerd.letters l" \
    "   SET state = CASE WHEN l.state = 'writing' THEN 'queued' ELSE l.state END," \
    "       file = CASE WHEN l.state = 'writing' THEN $3 ELSE l.file END, updated_at = now()" \
    "  FROM herinnerd.messages m" \
    " WHERE l.message_id = $1 AND l.step = $2 AND m.id = l.message_id" \
    " RETURNING l.state, l.file, m.read_at IS NOT NULL"

/* Rendering failed: give up our claim so that any instance may retry ($1, $2, $3 instance). */
#define SQL_PAPER_RELEASE \
    "UPDATE herinnerd.letters SET updated_at = '-infinity'" \
    " WHERE message_id = $1 AND step = $2 AND instance = $3 AND state = 'writing'"

/* Letters waiting for the cut-off whose message has been read: $1 message id, or NULL for all. */
#define SQL_PAPER_TO_WITHDRAW \
    "SELECT l.message_id, l.step, to_char(m.read_at, 'YYYY-MM-DD HH24:MI:SSOF')" \
    "  FROM herinnerd.letters l JOIN herinnerd.messages m ON m.id = l.message_id" \
    " WHERE l.state = 'queued' AND m.read_at IS NOT NULL" \
    "   AND ($1::bigint IS NULL OR l.message_id = $1::bigint)"

/* The file moved on (handed-over or withdrawn): the attempt and the letter's state in one
 * statement. $1 message, $2 step, $3 instance, $4 outcome ('handed-over' | 'withdrawn'),
 * $5 detail, $6 the file's new path.
 * try and config_sha256 come from the `queued` attempt (the escalation's sha if that is not
 * recorded yet). Idempotent, for replays after a lost connection and for the daemon and
 * herinnerctl working side by side: at most one attempt per (message, step, outcome), also
 * enforced by the unique index attempts_paper_once. Returns (letters updated, attempts added). */
#define SQL_PAPER_MOVED \
    "WITH upd AS (" \
    "  UPDATE herinnerd.letters SET state = $4, file = $6, updated_at = now()" \
    "   WHERE message_id = $1 AND step = $2 AND state IN ('writing', 'queued')" \
    "  RETURNING 1)," \
    " q AS (" \
    "  SELECT try, config_sha256 FROM herinnerd.attempts" \
    "   WHERE message_id = $1 AND step = $2 AND channel = 'paper' AND outcome = 'queued'" \
    "   ORDER BY id LIMIT 1)," \
    " ins AS (" \
    "  INSERT INTO herinnerd.attempts (message_id, step, try, channel, outcome, detail, address," \
    "                                  instance, config_sha256)" \
    "  SELECT $1, $2, coalesce(q.try, e.tries + 1), 'paper', $4, $5, $6, $3," \
    "         coalesce(q.config_sha256, e.config_sha256)" \
    "    FROM herinnerd.escalations e LEFT JOIN q ON true" \
    "   WHERE e.message_id = $1" \
    "     AND NOT EXISTS (SELECT 1 FROM herinnerd.attempts a" \
    "                      WHERE a.message_id = $1 AND a.step = $2 AND a.channel = 'paper'" \
    "                        AND a.outcome = $4)" \
    "  ON CONFLICT DO NOTHING" \
    "  RETURNING id)" \
    " SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM ins)"

/* Letters the database still thinks are waiting in pending/: after a restart the spool may know
 * better (moved, then a crash before the move was recorded). With read_at for the detail. */
#define SQL_PAPER_UNSETTLED \
    "SELECT l.message_id, l.step, coalesce(to_char(m.read_at, 'YYYY-MM-DD HH24:MI:SSOF'), '')" \
    "  FROM herinnerd.letters l JOIN herinnerd.messages m ON m.id = l.message_id" \
    " WHERE l.state = 'queued'"

#endif
