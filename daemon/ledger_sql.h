/* The ledger's SQL: the one shape of an attempt row. Every writer of herinnerd.attempts (the
 * daemon's ledger, its claims and read stops, herinnerctl) inserts exactly these columns. The
 * trigger of sql/006_chains.sql sets id, created_at, seq, prev_hash and hash, and skips a row
 * whose fact is recorded already (two writers racing on one fact: the second gets 23505 and
 * writes again). */
#ifndef HERINNERD_LEDGER_SQL_H
#define HERINNERD_LEDGER_SQL_H

#define LEDGER_INSERT \
    "INSERT INTO herinnerd.attempts (message_id, step, try, channel, outcome, detail, address," \
    " external_id, instance, config_sha256, chain, claim, fact) "

/* A batch of facts, each optionally moving its escalation (fenced by the claim it carries).
 * $1 instance, $2 chain; then one array per column: $3 message, $4 step, $5 try (NULL: that of
 * the latest attempt of this step and channel, else the escalation's next), $6 channel, $7 outcome, $8 detail, $9 address, $10 external id, $11 config
 * sha (NULL: as for try), $12 claim, $13 fact, $14 refers (a report: the external id of
 * the send it names; written only while that send is recorded and its fate is not known yet:
 * no `delivered` or `permanent-failure` for it), $15 new step, $16 new tries, $17 new
 * next_at (epoch), $18 new state (NULL: no move), $19 new channel.
 * One row back per entry, in order: whether the escalation moved, whether the named send is known. */
#define SQL_LEDGER_WRITE \
    "WITH r AS (" \
    "  SELECT * FROM unnest($3::bigint[], $4::int[], $5::int[], $6::text[], $7::text[], $8::text[]," \
    "                       $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]," \
    "                       $14::text[], $15::int[], $16::int[], $17::float8[], $18::text[]," \
    "                       $19::text[])" \
    "    WITH ORDINALITY AS r(message_id, step, try, channel, outcome, detail, address," \
    "                         external_id, sha, claim, fact, refers, nstep, ntries, nat, nstate," \
    "                         nchannel, n))," \
    " upd AS (" \
    "  UPDATE herinnerd.escalations e" \
    "     SET step = r.nstep, tries = r.ntries," \
    "         next_at = CASE WHEN r.nstate = 'active' THEN to_timestamp(r.nat) END," \
    "         state = r.nstate, channel = coalesce(r.nchannel, '')," \
    "         claim = NULL, lease_owner = NULL, lease_until = NULL, updated_at = now()" \
    "    FROM r" \
    /* the ids as an array too: the rows are found by key, not by a merge join on the claim \
     * that compares every entry with every claimed row */ \
    "   WHERE e.message_id = ANY ($3::bigint[])" \
    "     AND r.nstate IS NOT NULL AND e.message_id = r.message_id AND e.claim = r.claim" \
    "  RETURNING e.message_id)," \
    " src AS (" \
    "  SELECT r.*, e.tries AS etries, e.config_sha256 AS esha, s.found, s.stry, s.ssha, s.saddress," \
    "         p.once" \
    "    FROM r LEFT JOIN herinnerd.escalations e ON e.message_id = r.message_id" \
    "    LEFT JOIN LATERAL (" \
    "      SELECT true AS found, a.try AS stry, a.config_sha256 AS ssha, a.address AS saddress" \
    "        FROM herinnerd.attempts a" \
    "       WHERE (r.try IS NULL OR r.refers IS NOT NULL)" \
    "         AND a.message_id = r.message_id AND a.step = r.step AND a.channel = r.channel" \
    "         AND (r.refers IS NULL" \
    "              OR (a.external_id = r.refers AND a.outcome IN ('sent', 'in-doubt')" \
    "                  AND (r.try IS NULL OR a.try = r.try)" \
    "                  AND NOT EXISTS (SELECT 1 FROM herinnerd.attempts f" \
    "                                   WHERE f.message_id = a.message_id AND f.step = a.step" \
    "                                     AND f.external_id = r.refers" \
    "                                     AND f.outcome IN ('delivered', 'permanent-failure'))))" \
    "       ORDER BY a.id DESC LIMIT 1) s ON true" \
    /* a letter's queued/handed-over/withdrawn is recorded once (attempts_paper_once), also when \
     * a writer whose claim ran out recorded it before the takeover: the move still happens. \
     * LIMIT 1 keeps it a key lookup (not a hash of every paper attempt) */ \
    "    LEFT JOIN LATERAL (" \
    "      SELECT true AS once FROM herinnerd.attempts x" \
    "       WHERE r.channel = 'paper' AND r.outcome IN ('queued', 'handed-over', 'withdrawn')" \
    "         AND x.message_id = r.message_id AND x.step = r.step AND x.channel = 'paper'" \
    "         AND x.outcome = r.outcome LIMIT 1) p ON true)," \
    " ins AS (" \
    LEDGER_INSERT \
    "  SELECT message_id, step, coalesce(try, stry, etries + 1, 1), channel, outcome, detail," \
    "         coalesce(address, saddress), external_id, $1, coalesce(sha, ssha, esha, '')," \
    "         $2, claim, fact" \
    "    FROM src WHERE (refers IS NULL OR found)" \
    "     AND once IS NULL" \
    "   ORDER BY n" \
    "  RETURNING 1)" \
    " SELECT EXISTS (SELECT 1 FROM upd WHERE upd.message_id = src.message_id)" \
    "        AND src.nstate IS NOT NULL," \
    "        src.refers IS NULL OR src.found IS NOT NULL," \
    "        (SELECT count(*) FROM ins)" \
    "   FROM src ORDER BY src.n"

#endif
