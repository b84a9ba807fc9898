"""Fenced claims and one ledger (issue 6): slow servers, several processes, SIGKILLs, bad rows
and shutdowns never produce a send without an attempt row, nor a second letter."""

import asyncio
import random
import re
import signal
import threading
import time

import pytest

from harness import free_port, wait_for


def config(pg, smtp_address, instance=None, lease="5m", workers=2, batch=10, steps=None,
           spool=None, kinds='"*"', extra="", policy="default"):
    steps = steps or ['{ channel = "email"; after = "0s"; }']
    label = f'instance = "{instance}";' if instance else ""
    paper = f'paper: {{ spool = "{spool}"; cutoff = "23:59"; }};' if spool else ""
    return f"""
{label}
lease = "{lease}";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{smtp_address}"; from = "MijnOverheid <noreply@example.nl>";
          starttls = "no"; workers = {workers}; batch = {batch}; timeout = "30s"; }};
{paper}
{extra}
policies = ( {{ name = "{policy}"; kinds = [ {kinds} ]; steps = ( {", ".join(steps)} ); }} );
"""


class SlowSmtp:
    """A real SMTP server on loopback (aiosmtpd) that takes DELAY seconds per message and
    remembers every recipient it accepted."""

    def __init__(self, delay):
        from aiosmtpd.controller import Controller

        self.received = []
        self.lock = threading.Lock()
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                await asyncio.sleep(delay)
                with outer.lock:
                    outer.received.extend(envelope.rcpt_tos)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def count(self):
        with self.lock:
            return len(self.received)

    def per_recipient(self):
        with self.lock:
            counts = {}
            for r in self.received:
                counts[r] = counts.get(r, 0) + 1
            return counts

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def messages(pg, n, prefix="r"):
    """N unread messages, each for its own recipient (address = r<i>@example.nl)."""
    ids = []
    for i in range(n):
        r = pg.add_recipient(f"R{i}", email=f"{prefix}{i}@example.nl",
                             postal_address=f"Straat {i}\n1234 AB Utrecht")
        ids.append(pg.add_message(r))
    return ids


def finished(pg, ids):
    rows = pg.query("SELECT count(*) AS n FROM herinnerd.escalations"
                    " WHERE message_id = ANY(%s) AND state <> 'active'", ids)
    return rows[0]["n"] == len(ids)


def email_rows(pg, outcome):
    return pg.query("SELECT a.message_id, a.step, r.email FROM herinnerd.attempts a"
                    " JOIN herinnerd.messages m ON m.id = a.message_id"
                    " JOIN herinnerd.recipients r ON r.id = m.recipient_id"
                    " WHERE a.channel = 'email' AND a.outcome = %s", outcome)


def test_slow_smtp_with_a_short_lease_sends_each_mail_once_and_records_it(pg, daemon):
    # 1 s per mail, one worker, a 2 s lease: jobs wait far longer than the lease in the queue
    with SlowSmtp(1.0) as smtp:
        d = daemon(config(pg, smtp.address, lease="2s", workers=1, batch=1))
        d.wait_ready()
        ids = messages(pg, 8)
        wait_for(lambda: finished(pg, ids), timeout=60, what="every ladder done")
        sent = email_rows(pg, "sent")
        assert smtp.count() == len(sent) == len(ids)
        assert set(smtp.per_recipient().values()) == {1}, smtp.per_recipient()
        assert not [a for a in pg.attempts() if a["outcome"] == "in-doubt"]


def test_two_processes_with_the_same_label_never_touch_each_others_claims(pg, daemon):
    with SlowSmtp(0.2) as smtp:
        a = daemon(config(pg, smtp.address, instance="same", workers=1, batch=1))
        b = daemon(config(pg, smtp.address, instance="same", workers=1, batch=1))
        a.wait_ready()
        b.wait_ready()
        ids = messages(pg, 30)
        # b restarts while a holds claims: before fencing, b "took back its own leases" (a's)
        wait_for(lambda: smtp.count() >= 3, timeout=20, what="sends under way")
        b.stop()
        b.start()
        b.wait_ready()
        wait_for(lambda: finished(pg, ids), timeout=60, what="every ladder done")
        assert set(smtp.per_recipient().values()) == {1}, smtp.per_recipient()
        assert smtp.count() == len(email_rows(pg, "sent")) == len(ids)


def test_sigkill_storm_over_three_unlabelled_instances(pg, daemon, workdir):
    spool = workdir / "spool"
    steps = ['{ channel = "email"; after = "0s"; }', '{ channel = "paper"; after = "0s"; }']
    rnd = random.Random(6)
    with SlowSmtp(0.01) as smtp:
        ds = [daemon(config(pg, smtp.address, lease="2s", workers=2, batch=5, steps=steps,
                            spool=spool)) for _ in range(3)]
        for d in ds:
            d.wait_ready()
        ids = messages(pg, 150)
        deadline = time.monotonic() + 12
        kills = 0
        while time.monotonic() < deadline:
            time.sleep(rnd.uniform(0.2, 0.6))
            d = rnd.choice(ds)
            if d.running:
                d.signal(signal.SIGKILL)
                d.wait_exit()
                kills += 1
            d.start()
        for d in ds:
            if not d.running:
                d.start()
        wait_for(lambda: finished(pg, ids), timeout=120, what="every ladder done")
        assert kills >= 10

        # every e-mail that left has a sent or in-doubt row for its (message, step)
        recorded = {r["email"] for r in email_rows(pg, "sent") + email_rows(pg, "in-doubt")}
        received = set(smtp.per_recipient())
        assert received <= recorded, sorted(received - recorded)
        # exactly one letter per (message, step), no temp files left
        pdfs = sorted(p.name for p in (spool / "pending").glob("*.pdf"))
        assert pdfs == sorted(f"{m}-1.pdf" for m in ids)
        queued = pg.query("SELECT message_id, count(*) AS n FROM herinnerd.attempts"
                          " WHERE channel = 'paper' AND outcome = 'queued' GROUP BY message_id")
        assert {q["message_id"] for q in queued} == set(ids)
        assert {q["n"] for q in queued} == {1}
        wait_for(lambda: not list((spool / "tmp").iterdir()), timeout=10, what="tmp empty")


def test_bad_rows_are_isolated(pg, daemon):
    with SlowSmtp(0) as smtp:
        # no "default" policy and no "*": a kind nobody configured has no policy
        d = daemon(config(pg, smtp.address, kinds='"aanslag"', policy="aanslag"))
        d.wait_ready()
        r = pg.add_recipient("Jan", email="jan@example.nl")
        infinite = pg.add_message(r, created_at="infinity")
        far = pg.add_message(r, created_at="3026-01-01 00:00+00")
        nopolicy = pg.add_message(r, kind="onbekend")
        good = [pg.add_message(r) for _ in range(3)]
        wait_for(lambda: finished(pg, good + [infinite, far, nopolicy]), timeout=20,
                 what="every ladder ended")
        for m in good:
            assert pg.escalation(m)["state"] == "done"
        for m, why in ((infinite, "created_at is out of range"), (far, "created_at is out of range"),
                       (nopolicy, "no policy applies to messages of kind 'onbekend'")):
            assert pg.escalation(m)["state"] == "failed"
            rows = pg.attempts(m)
            assert [a["outcome"] for a in rows] == ["skipped"], rows
            assert why in rows[0]["detail"]
        assert smtp.count() == 3


def test_shutdown_with_the_database_down_is_logged_nonzero_and_in_doubt_after(pg, daemon):
    with SlowSmtp(2.0) as smtp:
        cfg = config(pg, smtp.address, lease="2s", workers=1, batch=1)
        d = daemon(cfg)
        d.wait_ready()
        m = messages(pg, 1)[0]
        d.wait_log("adopting 1 unread messages")
        time.sleep(0.5)                   # the mail is on its way
        pg.stop()
        wait_for(lambda: smtp.count() == 1, timeout=10, what="the mail delivered")
        d.sigterm()
        d.wait_log("stopping")
        time.sleep(0.5)
        d.sigterm()                       # no patience for the drain
        assert d.wait_exit(20) != 0
        assert re.search(rf"UNRECORDED attempt .*message {m} step 0 email", d.log()), d.log()

        pg.start()
        d.start()
        d.wait_ready()
        wait_for(lambda: [a for a in pg.attempts(m) if a["outcome"] == "in-doubt"], timeout=20,
                 what="the in-doubt row")
        doubt = [a for a in pg.attempts(m) if a["outcome"] == "in-doubt"][0]
        assert "may have been delivered" in doubt["detail"]
        assert doubt["step"] == 0
