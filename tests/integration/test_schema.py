"""The database contract (DESIGN.md section 3) against the real sql/*.sql: tables, NOTIFY
triggers, the hash chain and append-only guard on attempts, and what each role may do."""

import psycopg
import pytest

from harness import TOP, wait_for

# every numbered file in sql/ records its version
VERSIONS = sorted(int(f.name[:3]) for f in (TOP / "sql").glob("[0-9][0-9][0-9]_*.sql"))


class Listener:
    """LISTEN on a channel; the payloads seen, in order. psycopg delivers notifications to the
    handler whenever the connection talks to the server, so waiting polls with a trivial query."""

    def __init__(self, pg, channel):
        self.payloads = []
        self.conn = pg.connect()
        self.conn.add_notify_handler(lambda n: self.payloads.append(n.payload))
        self.conn.execute(f"LISTEN {channel}")

    def wait(self, payload, timeout=5):
        wait_for(lambda: self.conn.execute("SELECT 1") and payload in self.payloads,
                 timeout, what=f"NOTIFY {payload!r} (got {self.payloads})")

    def close(self):
        self.conn.close()


@pytest.fixture
def listener(pg):
    lst = Listener(pg, "herinnerd_message")
    yield lst
    lst.close()


@pytest.fixture
def message(pg):
    rid = pg.add_recipient("J. Jansen", email="j.jansen@example.nl", mobile="+31612345678",
                           postal_address="Dorpsstraat 1\n1234 AB Ergens")
    return pg.add_message(rid)


def add_attempt(conn, message_id, step=0, outcome="sent", detail=""):
    return conn.execute(
        "INSERT INTO herinnerd.attempts (message_id, step, channel, outcome, detail, instance,"
        " config_sha256) VALUES (%s, %s, 'email', %s, %s, 'test', 'abc') RETURNING id",
        (message_id, step, outcome, detail)).fetchone()[0]


def test_schema_applies_to_empty_database(pg):
    pg.create_database("empty")
    pg.apply_schema("empty")
    with pg.connect(dbname="empty") as conn:
        versions = [r[0] for r in conn.execute(
            "SELECT version FROM herinnerd.schema_version ORDER BY version")]
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'herinnerd'")}
    assert versions == VERSIONS
    assert {"recipients", "messages", "escalations", "attempts", "schema_version"} <= tables


def test_fixture_database_has_schema_and_roles(pg):
    assert [r["version"] for r in pg.query(
        "SELECT version FROM herinnerd.schema_version ORDER BY 1")] == VERSIONS
    for role, group in pg.ROLES:
        assert pg.query("SELECT pg_has_role(%s, %s, 'MEMBER') AS m", role, group)[0]["m"]


def test_wake_ups_carry_no_payload_come_once_per_statement_and_queue_the_ids(pg, listener,
                                                                             message):
    # issue 7: the ids go to two small queues; NOTIFY is a payload-less wake-up per statement
    listener.wait("new")
    pg.mark_read(message)
    listener.wait("read")
    pg.mark_read(message)           # read again: not a new read
    rid = pg.query("SELECT recipient_id FROM herinnerd.messages WHERE id = %s",
                   message)[0]["recipient_id"]
    pg._run("inbox", "INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject)"
                     " SELECT %s, 'Gemeente', 'aanslag', 'Aanslag ' || i"
                     "   FROM generate_series(1, 1000) AS i", (rid,))
    wait_for(lambda: listener.conn.execute("SELECT 1") and len(listener.payloads) >= 3,
             what="the bulk insert's wake-up")
    # notifications arrive in commit order: a second 'read' would be here by now
    assert listener.payloads == ["new", "read", "new"]
    queued = pg.query("SELECT count(*) AS n, min(message_id) AS first FROM herinnerd.new_messages")
    assert (queued[0]["n"], queued[0]["first"]) == (1001, message)
    reads = pg.query("SELECT message_id FROM herinnerd.read_messages")
    assert [r["message_id"] for r in reads] == [message]


def test_attempts_are_hash_chained(pg, message):
    with pg.connect("herinnerd") as conn:
        first = add_attempt(conn, message, 0, "sent")
        second = add_attempt(conn, message, 1, "temporary-failure", "450 4.2.1 try later")
    rows = {r["id"]: r for r in pg.attempts(message)}
    assert rows[first]["prev_hash"] is None  # the first attempt ever
    assert rows[first]["hash"] and rows[second]["hash"]
    assert rows[second]["prev_hash"] == rows[first]["hash"]
    # each hash covers its row as herinnerctl audit verify recomputes it
    assert all(r["ok"] for r in pg.query(
        "SELECT a.hash = sha256(herinnerd.attempt_digest_input(a)) AS ok"
        " FROM herinnerd.attempts a"))


@pytest.mark.parametrize("user", ["herinnerd", "postgres"])
@pytest.mark.parametrize("statement", [
    "UPDATE herinnerd.attempts SET detail = 'rewritten'",
    "DELETE FROM herinnerd.attempts",
    "TRUNCATE herinnerd.attempts",
])
def test_attempts_are_append_only(pg, message, user, statement):
    with pg.connect("herinnerd") as conn:
        add_attempt(conn, message)
    before = pg.attempts()
    with pg.connect(user) as conn:
        # the daemon lacks the privilege; the superuser is stopped by the trigger
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    assert pg.attempts() == before


def test_daemon_role_privileges(pg, message):
    with pg.connect("herinnerd") as conn:
        add_attempt(conn, message)
        conn.execute("INSERT INTO herinnerd.escalations (message_id, policy, config_sha256)"
                     " VALUES (%s, 'default', 'abc')", (message,))
        conn.execute("UPDATE herinnerd.escalations SET step = 1, tries = 0 WHERE message_id = %s",
                     (message,))
        assert conn.execute("SELECT count(*) FROM herinnerd.messages").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE herinnerd.messages SET read_at = now()")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject)"
                         " VALUES (1, 'x', 'x', 'x')")
    assert pg.escalation(message)["step"] == 1
    assert pg.query("SELECT read_at FROM herinnerd.messages")[0]["read_at"] is None


TABLES = ["recipients", "messages", "escalations", "attempts", "schema_version"]


@pytest.mark.parametrize("table", TABLES)
def test_auditor_reads_but_never_writes(pg, message, table):
    with pg.connect("auditor") as conn:
        conn.execute(f"SELECT * FROM herinnerd.{table}").fetchall()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"INSERT INTO herinnerd.{table} DEFAULT VALUES")
