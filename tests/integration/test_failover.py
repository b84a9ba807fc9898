"""Failover the way production runs it (issue 8): a primary with a synchronous streaming standby,
the daemons on a multi-host conninfo with target_session_attrs=read-write; the primary dies hard
(SIGKILL to all its processes) and the standby is promoted, as Patroni would. Every instance is
back on the new primary within seconds, no committed attempt is lost, no letter is written twice.
"""

import time

from harness import Standby, kill_postgres, multihost_conninfo, wait_for

STEPS = ('{ channel = "email"; after = "0s"; retry = { max = 10; backoff = "1s"; }; },'
         ' { channel = "paper"; after = "1s"; retry = { max = 10; backoff = "1s"; }; }')


def config(conninfo, smtp, spool):
    return f"""
lease = "2s";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{conninfo}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>";
          starttls = "no"; workers = 2; batch = 10; timeout = "10s"; }};
paper: {{ spool = "{spool}"; cutoff = "23:59"; }};
policies = ( {{ name = "default"; kinds = [ "*" ]; steps = ( {STEPS} ); }} );
"""


def add_messages(server, first, n):
    """n unread messages, each for its own recipient r<i>@example.nl (one statement); their ids."""
    with server.connect(user="inbox") as conn:
        conn.execute(
            "INSERT INTO herinnerd.recipients (name, email, postal_address)"
            " SELECT 'R' || i, 'r' || i || '@example.nl', 'Straat ' || i || E'\\n1234 AB Utrecht'"
            " FROM generate_series(%s::int, %s::int) i", (first, first + n - 1))
        rows = conn.execute(
            "INSERT INTO herinnerd.messages (recipient_id, kind, subject, sender, link)"
            " SELECT r.id, 'aanslag', 'Aanslag', 'Belastingdienst', 'https://mijn.overheid.nl/b/1'"
            " FROM herinnerd.recipients r WHERE r.email = ANY(%s) RETURNING id",
            ([f"r{i}@example.nl" for i in range(first, first + n)],)).fetchall()
    return [r[0] for r in rows]


def connected_count(d):
    return d.log().count("database connected and listening")


def test_failover_to_a_promoted_synchronous_standby(pg, smtp, daemon, workdir):
    standby = Standby(workdir / "standby", pg).start()
    try:
        standby.make_synchronous()
        spool = workdir / "spool"
        conninfo = multihost_conninfo([pg, standby])
        ds = [daemon(config(conninfo, smtp, spool)) for _ in range(3)]
        for d in ds:
            d.wait_ready(timeout=20)

        ids = add_messages(pg, 0, 150)
        wait_for(lambda: len(smtp.messages()) >= 40, timeout=30, what="work under way")
        before = {a["id"]: bytes(a["hash"]) for a in pg.attempts()}
        assert before
        connects = [connected_count(d) for d in ds]

        killed_at = time.monotonic()
        kill_postgres(pg)
        time.sleep(1.0)          # the daemons notice, and find no read-write server for a while
        standby.promote()
        promoted_at = time.monotonic()

        # every instance is back, on the new primary, within seconds
        wait_for(lambda: all(connected_count(d) > c for d, c in zip(ds, connects)), timeout=15,
                 what="every daemon reconnected")
        back_after = time.monotonic() - promoted_at
        assert all(d.running for d in ds), [d.returncode for d in ds]
        sessions = standby.query("SELECT count(*) AS n FROM pg_stat_activity"
                                 " WHERE usename = 'herinnerd'")[0]["n"]
        assert sessions >= len(ds), sessions

        # new work after the failover is done there too
        ids += add_messages(standby, 1000, 50)

        def finished():
            return standby.query("SELECT count(*) AS n FROM herinnerd.escalations WHERE"
                                 " message_id = ANY(%s) AND state <> 'active'", ids)[0]["n"] == len(ids)
        wait_for(finished, timeout=120, what="every ladder done on the new primary")

        # nothing committed before the kill is lost, nor changed
        after = {a["id"]: bytes(a["hash"]) for a in standby.attempts()}
        lost = sorted(set(before) - set(after))
        assert not lost, f"attempts lost in the failover: {lost[:20]}"
        assert all(after[i] == h for i, h in before.items())

        # every e-mail that left has its sent or in-doubt row
        rows = standby.query(
            "SELECT r.email FROM herinnerd.attempts a JOIN herinnerd.messages m ON m.id = a.message_id"
            " JOIN herinnerd.recipients r ON r.id = m.recipient_id"
            " WHERE a.channel = 'email' AND a.step = 0 AND a.outcome IN ('sent', 'in-doubt')")
        recorded = {r["email"] for r in rows}
        received = {to for m in smtp.messages() for to in m.envelope_to}
        assert received <= recorded, sorted(received - recorded)[:20]

        # one letter per message, and the spool agrees with the database
        pdfs = sorted(p.name for p in (spool / "pending").glob("*.pdf"))
        assert pdfs == sorted(f"{m}-1.pdf" for m in ids)
        queued = standby.query("SELECT message_id, count(*) AS n FROM herinnerd.attempts"
                               " WHERE channel = 'paper' AND outcome = 'queued'"
                               " GROUP BY message_id")
        assert {q["message_id"] for q in queued} == set(ids)
        assert {q["n"] for q in queued} == {1}
        wait_for(lambda: not list((spool / "tmp").iterdir()), timeout=10, what="tmp empty")
        print(f"failover: killed at 0 s, promoted at {promoted_at - killed_at:.1f} s, every"
              f" daemon back {back_after:.1f} s after the promotion")
        assert back_after < 12
    finally:
        standby.stop()


class HungServer:
    """A TCP port on loopback that takes connections and never answers (the kernel completes the
    handshake; nobody reads): a database host that hangs, e.g. frozen on its storage or behind
    a half-broken network path."""

    def __init__(self):
        import socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def test_a_hung_first_host_is_skipped_after_connect_timeout(pg, smtp, daemon, workdir):
    # libpq ignores connect_timeout in non-blocking connects (PQconnectPoll): the daemon must
    # keep the time itself, or it waits for the hung host forever and never tries the next one
    hung = HungServer()
    try:
        conninfo = multihost_conninfo([hung, pg])
        d = daemon(config(conninfo, smtp, workdir / "spool"))
        started = time.monotonic()
        d.wait_ready(timeout=20)
        assert time.monotonic() - started < 15
        ids = add_messages(pg, 0, 3)
        wait_for(lambda: pg.query("SELECT count(*) AS n FROM herinnerd.escalations WHERE"
                                  " message_id = ANY(%s) AND state = 'done'", ids)[0]["n"] == 3,
                 timeout=30, what="the ladders done")
    finally:
        hung.close()
