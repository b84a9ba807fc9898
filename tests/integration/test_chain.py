"""The audit trail (DESIGN.md section 9, sql/006_chains.sql): one hash chain per writer, no global
lock, an unambiguous digest, ids only from the trigger, checkpoints that anchor the heads, and
`herinnerctl audit verify [--checkpoints FILE]` that catches removal and rewriting, also by a
superuser who switches the triggers off."""

import re
import subprocess
import threading

import psycopg
import pytest

from harness import TOP, herinnerctl, wait_for


def wait_until_blocked(pg, conn):
    """Until conn's statement waits for a lock (it is then really behind the other writer)."""
    pid = conn.info.backend_pid
    wait_for(lambda: pg.query("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                              pid)[0]["wait_event_type"] == "Lock", timeout=10,
             what=f"backend {pid} waiting for a lock")


def add_attempt(conn, message_id, step=0, outcome="sent", detail="", chain=None, fact=None,
                address=None):
    """Insert one attempt; its id, or None when the trigger skipped it (fact recorded)."""
    row = conn.execute(
        "INSERT INTO herinnerd.attempts (chain, message_id, step, channel, outcome, detail,"
        " address, instance, config_sha256, fact)"
        " VALUES (%s, %s, %s, 'email', %s, %s, %s, 'test', 'abc', %s) RETURNING id",
        (chain, message_id, step, outcome, detail, address, fact)).fetchone()
    return row[0] if row else None


@pytest.fixture
def message(pg):
    return pg.add_message(pg.add_recipient("J. Jansen", email="j.jansen@example.nl"))


def ctl(pg, *args, user="auditor", dbname="inbox"):
    return herinnerctl("--conninfo", pg.conninfo(user, dbname), *args)


def verify(pg, *args, dbname="inbox"):
    r = ctl(pg, "audit", "verify", *args, dbname=dbname)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return r


def checkpoint(pg, workdir, dbname="inbox", name="checkpoints.txt"):
    """`herinnerctl audit checkpoint` as the daemon role; the line, appended to workdir/name."""
    r = ctl(pg, "audit", "checkpoint", user="herinnerd", dbname=dbname)
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith("herinnerd-checkpoint-v1 ") and "\n" not in line
    path = workdir / name
    with open(path, "a") as f:
        f.write(line + "\n")
    return line, path


def chain_rows(pg, chain):
    return pg.query("SELECT * FROM herinnerd.attempts WHERE chain = %s ORDER BY seq", chain)


def as_superuser(pg, *statements):
    """Run statements as `postgres` with the append-only guard switched off, as someone with
    full power over the database would to rewrite history."""
    with pg.connect() as conn:
        with conn.transaction():
            conn.execute("ALTER TABLE herinnerd.attempts DISABLE TRIGGER USER")
            for s in statements:
                conn.execute(s)
            conn.execute("ALTER TABLE herinnerd.attempts ENABLE TRIGGER USER")


def test_each_writer_appends_to_its_own_chain(pg, message):
    with pg.connect("herinnerd") as a, pg.connect("herinnerd") as b:
        ids = [add_attempt(a, message, 0), add_attempt(b, message, 1), add_attempt(a, message, 2)]
    rows = {r["id"]: r for r in pg.attempts()}
    ca, cb = rows[ids[0]]["chain"], rows[ids[1]]["chain"]
    assert ca != cb and ca == rows[ids[2]]["chain"] and ca.startswith("db:herinnerd:")
    assert [rows[i]["seq"] for i in ids] == [1, 1, 2]
    assert rows[ids[0]]["prev_hash"] is None and rows[ids[1]]["prev_hash"] is None
    assert rows[ids[2]]["prev_hash"] == rows[ids[0]]["hash"]
    r = verify(pg)
    assert r.returncode == 0 and "3 attempts in 2 chains checked" in r.stdout, r.stdout


def test_concurrent_writers_do_not_fork_or_wait_for_each_other(pg, message):
    """Two instances with transactions open at the same time, committing in the other order
    (the old code's fork), and a third writer that must not wait for either (no global lock)."""
    with pg.connect("herinnerd") as a, pg.connect("herinnerd") as b, \
            pg.connect("herinnerd") as c:
        a.execute("BEGIN")
        b.execute("BEGIN")
        for i in range(5):
            add_attempt(a, message, i, chain="instance-a")
            add_attempt(b, message, i, chain="instance-b")
        c.execute("SET statement_timeout = '3s'")
        add_attempt(c, message, 9, chain="instance-c")     # not blocked by a or b
        b.execute("COMMIT")
        a.execute("COMMIT")
    for chain in ("instance-a", "instance-b"):
        rows = chain_rows(pg, chain)
        assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
        assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    r = verify(pg)
    assert r.returncode == 0 and "11 attempts in 3 chains checked, 0 problems" in r.stdout, \
        r.stdout


def test_two_sessions_on_one_chain_take_turns(pg, message):
    """Writers that share a chain name wait for each other on that chain's row only, and the
    later one links to the earlier one's committed row."""
    with pg.connect("herinnerd") as a, pg.connect("herinnerd") as b:
        a.execute("BEGIN")
        add_attempt(a, message, 0, chain="shared")
        done = []
        t = threading.Thread(target=lambda: done.append(add_attempt(b, message, 1, chain="shared")))
        t.start()
        wait_until_blocked(pg, b)                # waits for a's transaction
        a.execute("COMMIT")
        t.join(10)
        assert done
    assert [r["seq"] for r in chain_rows(pg, "shared")] == [1, 2]
    assert verify(pg).returncode == 0


def test_a_fact_is_recorded_once(pg, message):
    with pg.connect("herinnerd") as a, pg.connect("herinnerd") as b:
        first = add_attempt(a, message, 0, chain="w", fact="claim-1:sent")
        assert first is not None
        assert add_attempt(b, message, 0, chain="v", fact="claim-1:sent") is None   # skipped
        assert pg.query("SELECT seq FROM herinnerd.chains WHERE chain = 'v'") == []
        # two writers of one fact at the same time: the second gets unique_violation at the
        # first's commit, and a retry is skipped
        a.execute("BEGIN")
        add_attempt(a, message, 1, chain="w", fact="claim-2:sent")
        errors = []

        def second():
            try:
                add_attempt(b, message, 1, chain="v", fact="claim-2:sent")
            except psycopg.errors.UniqueViolation as e:
                errors.append(e)
        t = threading.Thread(target=second)
        t.start()
        wait_until_blocked(pg, b)
        a.execute("COMMIT")
        t.join(10)
        assert len(errors) == 1
        assert add_attempt(b, message, 1, chain="v", fact="claim-2:sent") is None
        add_attempt(b, message, 2, chain="v", fact="claim-3:sent")
    assert pg.query("SELECT count(*) AS n FROM herinnerd.attempts WHERE fact IS NOT NULL")[0]["n"] == 3
    assert [r["seq"] for r in chain_rows(pg, "v")] == [1]
    assert verify(pg).returncode == 0


def test_on_conflict_leaves_no_gap(pg, message):
    """Today's writers still say ON CONFLICT DO NOTHING: a row it discards after the trigger ran
    must not become a chain head (the head is read back from attempts)."""
    with pg.connect("herinnerd") as conn:
        for _ in range(2):
            conn.execute(
                "INSERT INTO herinnerd.attempts (chain, message_id, step, channel, outcome,"
                " instance, config_sha256) VALUES ('p', %s, 3, 'paper', 'queued', 'x', 'y')"
                " ON CONFLICT DO NOTHING", (message,))
        add_attempt(conn, message, 4, chain="p")
    assert [r["seq"] for r in chain_rows(pg, "p")] == [1, 2]
    assert verify(pg).returncode == 0


def test_a_forged_head_fails_the_statement(pg, message):
    """The rows after a statement's first take the chain's head from a setting (sql/011_scale.sql)
    that anyone may set. Before the rows count, the statement's trigger checks them against the
    stored head: a forged head fails the statement and leaves the chain as it was."""
    with pg.connect("herinnerd") as conn:
        add_attempt(conn, message, 0, chain="f")
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
            # set before the first row's trigger runs; the rows after it go on from that row
            conn.execute(
                "INSERT INTO herinnerd.attempts (chain, message_id, step, channel, outcome,"
                " instance, config_sha256) SELECT 'f', %s, g, 'null', 'sent', 'x', 'y'"
                "   FROM generate_series(1, 3) g"
                "  WHERE g > 1 OR set_config('herinnerd.chain_head',"
                "                            '5:' || repeat('00', 32) || ':f', true) <> ''",
                (message,))
        add_attempt(conn, message, 9, chain="f")
    assert [r["seq"] for r in chain_rows(pg, "f")] == [1, 2]
    assert verify(pg).returncode == 0


def test_on_conflict_in_the_middle_of_a_statement_fails_it(pg, message):
    """A row ON CONFLICT discards after its trigger ran would leave the rows after it linked to
    nothing: the statement fails instead, and nothing of it is written."""
    with pg.connect("herinnerd") as conn:
        insert = ("INSERT INTO herinnerd.attempts (chain, message_id, step, channel, outcome,"
                  " instance, config_sha256) VALUES ('q', %(m)s, 1, 'paper', 'sent', 'x', 'y'),"
                  " ('q', %(m)s, 3, 'paper', 'queued', 'x', 'y'),"
                  " ('q', %(m)s, 4, 'paper', 'sent', 'x', 'y') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO herinnerd.attempts (chain, message_id, step, channel, outcome,"
                     " instance, config_sha256) VALUES ('q', %s, 3, 'paper', 'queued', 'x', 'y')",
                     (message,))
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
            conn.execute(insert, {"m": message})
    assert [r["seq"] for r in chain_rows(pg, "q")] == [1]
    assert verify(pg).returncode == 0


def test_the_daemon_role_cannot_choose_ids_or_fields_of_the_chain(pg, message):
    with pg.connect("herinnerd") as conn:
        honest = add_attempt(conn, message, 0, chain="d")
        row = conn.execute(
            "INSERT INTO herinnerd.attempts (id, chain, seq, message_id, step, channel, outcome,"
            " instance, config_sha256, created_at, prev_hash, hash) OVERRIDING SYSTEM VALUE"
            " VALUES (424242, 'd', 77, %s, 1, 'email', 'sent', 'x', 'y',"
            "         '2000-01-01', '\\x00', '\\x00') RETURNING id, seq, created_at",
            (message,)).fetchone()
        assert row[0] == honest + 1 and row[1] == 2 and row[2].year > 2000
        for sql in ("SELECT * FROM herinnerd.chains",
                    "UPDATE herinnerd.chains SET seq = 0",
                    "SELECT nextval('herinnerd.attempt_ids')",
                    "INSERT INTO herinnerd.checkpoints (written_by, chains, line)"
                    " VALUES ('x', 0, 'x')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        with pytest.raises(psycopg.errors.CheckViolation):
            add_attempt(conn, message, 2, chain="legacy")
    assert verify(pg).returncode == 0


def test_a_bar_moved_between_fields_changes_the_hash(pg, message):
    """v1 joined fields with '|': 'a|b' + 'c' and 'a' + 'b|c' hashed alike. v2 does not."""
    rows = pg.query(
        "SELECT herinnerd.attempt_digest_input_v1(r) AS v1,"
        "       herinnerd.attempt_digest_input_v2(r) AS v2"
        "  FROM (SELECT jsonb_populate_record(NULL::herinnerd.attempts, jsonb_build_object("
        "                 'id', 1, 'message_id', 1, 'step', 0, 'try', 1, 'channel', 'email',"
        "                 'outcome', 'sent', 'detail', d, 'address', ad,"
        "                 'created_at', '2026-01-01T00:00:00Z', 'instance', 'i',"
        "                 'config_sha256', 'c', 'chain', 'w', 'seq', 1)) AS r"
        "          FROM (VALUES (1, 'a|b', 'c'), (2, 'a', 'b|c')) v(n, d, ad) ORDER BY n) x")
    assert rows[0]["v1"] == rows[1]["v1"]
    assert rows[0]["v2"] != rows[1]["v2"]
    # and the rewrite is caught
    with pg.connect("herinnerd") as conn:
        add_attempt(conn, message, 0, detail="550 user|unknown", address="a@example.nl",
                    chain="bar")
    as_superuser(pg, "UPDATE herinnerd.attempts SET detail = '550 user',"
                     " address = 'unknown|a@example.nl' WHERE chain = 'bar'")
    r = verify(pg)
    assert r.returncode == 1
    assert "chain bar seq 1" in r.stdout and "hash does not match" in r.stdout, r.stdout


def test_a_changed_row_is_named(pg, message):
    with pg.connect("herinnerd") as conn:
        for i in range(4):
            add_attempt(conn, message, i, chain="x")
    as_superuser(pg, "UPDATE herinnerd.attempts SET outcome = 'delivered'"
                     " WHERE chain = 'x' AND seq = 3")
    r = verify(pg)
    assert r.returncode == 1
    first = r.stdout.splitlines()[0]
    assert first.startswith("chain x seq 3 (attempt ") and "hash does not match" in first


def test_tail_deletion_after_a_checkpoint_is_caught(pg, message, workdir):
    with pg.connect("herinnerd") as conn:
        for i in range(5):
            add_attempt(conn, message, i, chain="tail")
    line, path = checkpoint(pg, workdir)
    assert " tail=5:" in line and " chains=1 " in line
    assert verify(pg, "--checkpoints", path).returncode == 0

    as_superuser(pg, "DELETE FROM herinnerd.attempts WHERE chain = 'tail' AND seq >= 4")
    r = verify(pg)
    assert r.returncode == 1 and "herinnerd.chains has its head at seq 5, the rows end at seq 3" \
        in r.stdout, r.stdout

    # a careful superuser also moves herinnerd.chains back: only the checkpoint knows
    with pg.connect() as conn:
        conn.execute("UPDATE herinnerd.chains c SET seq = 3, head = a.hash FROM herinnerd.attempts a"
                     " WHERE c.chain = 'tail' AND a.chain = 'tail' AND a.seq = 3")
    assert verify(pg).returncode == 0
    r = verify(pg, "--checkpoints", path)
    assert r.returncode == 1
    assert re.search(r"chain tail: ends at seq 3, but checkpoint \d+ \(line 1\) covers seq 5: "
                     r"rows removed", r.stdout), r.stdout


def test_a_removed_chain_is_caught(pg, message, workdir):
    with pg.connect("herinnerd") as conn:
        add_attempt(conn, message, 0, chain="gone")
        add_attempt(conn, message, 0, chain="stays")
    _, path = checkpoint(pg, workdir)
    as_superuser(pg, "DELETE FROM herinnerd.attempts WHERE chain = 'gone'")
    with pg.connect() as conn:
        conn.execute("DELETE FROM herinnerd.chains WHERE chain = 'gone'")
    assert verify(pg).returncode == 0
    r = verify(pg, "--checkpoints", path)
    assert r.returncode == 1 and "chain gone: checkpoint" in r.stdout and "no rows" in r.stdout


REHASH = """
DO $$
DECLARE r herinnerd.attempts; prev bytea;
BEGIN
    FOR r IN SELECT * FROM herinnerd.attempts WHERE chain = 'x' ORDER BY seq LOOP
        r.prev_hash := prev;
        r.hash := sha256(herinnerd.attempt_digest_input_v2(r));
        UPDATE herinnerd.attempts SET prev_hash = r.prev_hash, hash = r.hash WHERE id = r.id;
        prev := r.hash;
    END LOOP;
    UPDATE herinnerd.chains SET head = prev WHERE chain = 'x';
END $$"""


def test_a_full_rehash_by_a_superuser_is_caught_with_checkpoints(pg, message, workdir):
    with pg.connect("herinnerd") as conn:
        for i in range(3):
            add_attempt(conn, message, i, chain="x")
        _, path = checkpoint(pg, workdir)
        for i in range(3, 6):
            add_attempt(conn, message, i, chain="x")
        checkpoint(pg, workdir)
        add_attempt(conn, message, 9, chain="x")
    assert verify(pg, "--checkpoints", path).returncode == 0

    # rewrite seq 5 and rehash the whole chain: consistent in itself
    as_superuser(pg, "UPDATE herinnerd.attempts SET outcome = 'permanent-failure',"
                     " detail = 'no such user' WHERE chain = 'x' AND seq = 5", REHASH)
    r = verify(pg)
    assert r.returncode == 0, r.stdout       # nothing inside the database can tell
    r = verify(pg, "--checkpoints", path)
    assert r.returncode == 1
    assert re.search(r"chain x seq 6 \(attempt \d+\): rewritten: checkpoint \d+ \(line 2\)"
                     r".*rows 4 to 6 were rewritten", r.stdout), r.stdout


def test_checkpoint_lines_encode_any_chain_name(pg, message, workdir):
    names = ["a b", "x=y", "100%", "ünï", "c:d@e"]
    with pg.connect("herinnerd") as conn:
        for n in names:
            add_attempt(conn, message, 0, chain=n)
    line, path = checkpoint(pg, workdir)
    assert " a%20b=1:" in line and " x%3Dy=1:" in line and " 100%25=1:" in line
    assert " %C3%BCn%C3%AF=1:" in line and " c:d@e=1:" in line
    # lines as the journal shows them (with a prefix) are read too
    with open(path, "a") as f:
        f.write("Dec 02 10:00:00 host herinnerd[1]: " + line + "\n# a comment\n\n")
    r = verify(pg, "--checkpoints", path)
    assert r.returncode == 0 and "against 2 checkpoints (10 heads)" in r.stdout, r.stdout
    # a line cut short is refused, not half-used
    bad = workdir / "bad.txt"
    bad.write_text(line.rsplit(" ", 1)[0] + "\n")
    r = ctl(pg, "audit", "verify", "--checkpoints", bad)
    assert r.returncode == 2 and "cut short" in r.stderr


def test_checkpoints_are_stored_and_append_only(pg, message, workdir):
    line, _ = checkpoint(pg, workdir)
    rows = pg.query("SELECT * FROM herinnerd.checkpoints")
    assert len(rows) == 1 and rows[0]["line"] == line and rows[0]["written_by"].startswith(
        "herinnerctl:")
    assert f"id={rows[0]['id']} " in line
    with pg.connect("auditor") as conn:
        assert conn.execute("SELECT count(*) FROM herinnerd.checkpoints").fetchone()[0] == 1
        conn.execute("SELECT * FROM herinnerd.chains").fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT herinnerd.write_checkpoint('auditor')")
    with pg.connect() as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM herinnerd.checkpoints")


def test_verify_streams_many_rows_across_fetches(pg, message):
    with pg.connect("herinnerd") as conn:
        for chain in ("m1", "m2", "m3"):
            conn.execute(
                "INSERT INTO herinnerd.attempts (chain, message_id, step, channel, outcome,"
                " instance, config_sha256) SELECT %s, %s, g, 'null', 'sent', 'x', 'y'"
                "   FROM generate_series(1, 1100) g", (chain, message))
    r = verify(pg)
    assert r.returncode == 0 and "3300 attempts in 3 chains checked, 0 problems" in r.stdout


def psql(pg, dbname, path):
    r = subprocess.run([str(pg.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                        "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", dbname, "-f",
                        str(path)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def old_database(pg, dbname):
    """A database as sql/001-005 built it, with one message; the message's id."""
    pg.create_database(dbname)
    for f in sorted((TOP / "sql").glob("*.sql")):
        if int(f.name[:3]) <= 5:
            psql(pg, dbname, f)
    with pg.connect(dbname=dbname) as conn:
        rid = conn.execute("INSERT INTO herinnerd.recipients (name) VALUES ('x') RETURNING id"
                           ).fetchone()[0]
        return conn.execute("INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject)"
                            " VALUES (%s, 's', 'k', 'subj') RETURNING id", (rid,)).fetchone()[0]


def upgrade(pg, dbname):
    """Apply the schema files after 005, as an upgrade does."""
    for f in sorted((TOP / "sql").glob("*.sql")):
        if int(f.name[:3]) > 5:
            psql(pg, dbname, f)


def test_upgrade_keeps_every_row_and_verifies(pg, workdir):
    """A database built by sql/001-005 with attempts in it: 006 keeps them (chain 'legacy', old
    hashes), new rows start their own chains, and verify is clean before and after."""
    mid = old_database(pg, "old")
    with pg.connect("herinnerd", dbname="old") as conn:
        for i in range(4):
            conn.execute("INSERT INTO herinnerd.attempts (message_id, step, channel, outcome,"
                         " detail, address, instance, config_sha256)"
                         " VALUES (%s, %s, 'email', 'sent', 'a|b', NULL, 'old', 'c')", (mid, i))
    with pg.connect(dbname="old") as conn:
        before = conn.execute("SELECT id, hash, prev_hash, created_at FROM herinnerd.attempts"
                              " ORDER BY id").fetchall()
    upgrade(pg, "old")
    with pg.connect(dbname="old") as conn:
        after = conn.execute("SELECT id, hash, prev_hash, created_at FROM herinnerd.attempts"
                             " ORDER BY id").fetchall()
        legacy = conn.execute("SELECT chain, seq FROM herinnerd.attempts ORDER BY id").fetchall()
        assert conn.execute("SELECT max(version) FROM herinnerd.schema_version").fetchone()[0] >= 6
        # the guard is back on
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM herinnerd.attempts")
    assert after == before
    assert legacy == [("legacy", 1), ("legacy", 2), ("legacy", 3), ("legacy", 4)]
    r = verify(pg, dbname="old")
    assert r.returncode == 0 and "4 attempts in 1 chains checked, 0 problems" in r.stdout, r.stdout

    with pg.connect("herinnerd", dbname="old") as conn:
        new = add_attempt(conn, mid, 5, outcome="in-doubt", chain="new")
        add_attempt(conn, mid, 6, outcome="accepted", chain="new")
    assert new > before[-1][0]
    line, path = checkpoint(pg, workdir, dbname="old")
    assert " legacy=4:" + before[-1][1].hex() in line
    r = verify(pg, "--checkpoints", path, dbname="old")
    assert r.returncode == 0 and "6 attempts in 2 chains checked" in r.stdout, r.stdout

    # the legacy rows are checked with their own (v1) digest
    with pg.connect(dbname="old") as conn:
        with conn.transaction():
            conn.execute("ALTER TABLE herinnerd.attempts DISABLE TRIGGER USER")
            conn.execute("UPDATE herinnerd.attempts SET detail = 'a' , instance = 'b|old'"
                         " WHERE chain = 'legacy' AND seq = 2")
            conn.execute("ALTER TABLE herinnerd.attempts ENABLE TRIGGER USER")
    r = verify(pg, dbname="old")
    assert r.returncode == 1
    assert "chain legacy seq 2" in r.stdout and "hash does not match" in r.stdout, r.stdout


def test_the_daemon_writes_and_logs_checkpoints(pg, daemon, workdir):
    """audit.checkpoint: the daemon anchors the chains on a timer and logs each line, so the
    log itself can be handed to verify --checkpoints."""
    d = daemon(f"""
instance = "cp-test";
database: {{ conninfo = "{pg.conninfo()}"; }};
audit: {{ checkpoint = "1s"; }};
policies = ( {{ name = "default"; kinds = [ "*" ];
               steps = ( {{ channel = "null"; after = "0s"; }} ); }} );
""")
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan"))
    wait_for(lambda: pg.attempts(m), what="an attempt")
    wait_for(lambda: pg.query("SELECT 1 FROM herinnerd.checkpoints WHERE chains > 0"
                              "   AND written_by = 'cp-test'"), timeout=10,
             what="a checkpoint with the daemon's chain")
    d.wait_log("herinnerd-checkpoint-v1 ")
    d.stop()
    r = verify(pg, "--checkpoints", d.logfile)
    assert r.returncode == 0 and "0 problems" in r.stdout, r.stdout
    assert re.search(r"against [1-9]\d* checkpoints", r.stdout)


def test_upgrade_of_a_forked_legacy_chain(pg):
    """What overlapping writers left under the old code: row 2 (id drawn first, lock taken
    last) links to row 3, rows 3 and 4 both to what was then the highest id. verify notes the
    fork and stays clean; a row that links to nothing is still a problem."""
    mid = old_database(pg, "forked")
    with pg.connect(dbname="forked") as conn:
        ins = ("INSERT INTO herinnerd.attempts (id, message_id, step, channel, outcome, instance,"
               " config_sha256, prev_hash) OVERRIDING SYSTEM VALUE"
               " VALUES (%s, %s, %s, 'email', 'sent', 'old', 'c',"
               "         (SELECT hash FROM herinnerd.attempts WHERE id = %s))")
        seal = ("UPDATE herinnerd.attempts a SET hash = sha256(herinnerd.attempt_digest_input(a))"
                " WHERE id = %s")
        with conn.transaction():
            conn.execute("ALTER TABLE herinnerd.attempts DISABLE TRIGGER USER")
            for id_, prev in ((1, None), (3, 1), (2, 3), (4, 3)):
                conn.execute(ins, (id_, mid, id_, prev))
                conn.execute(seal, (id_,))
            conn.execute("ALTER TABLE herinnerd.attempts ENABLE TRIGGER USER")
            conn.execute("SELECT setval(pg_get_serial_sequence('herinnerd.attempts', 'id'), 4)")
    upgrade(pg, "forked")
    r = verify(pg, dbname="forked")
    assert r.returncode == 0 and "4 attempts in 1 chains checked, 0 problems" in r.stdout, r.stdout
    assert "note: 2 rows of chain legacy" in r.stdout

    with pg.connect(dbname="forked") as conn:
        with conn.transaction():
            conn.execute("ALTER TABLE herinnerd.attempts DISABLE TRIGGER USER")
            conn.execute("UPDATE herinnerd.attempts SET prev_hash = sha256('nothing')"
                         " WHERE id = 3")
            conn.execute(seal, (3,))
            conn.execute("ALTER TABLE herinnerd.attempts ENABLE TRIGGER USER")
    r = verify(pg, dbname="forked")
    assert r.returncode == 1 and "chain legacy seq 3 (attempt 3): prev_hash is not" in r.stdout, \
        r.stdout
