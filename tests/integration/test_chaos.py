"""Chaos (issue 8): three unlabelled instances on one database walk messages up an e-mail -> SMS
-> paper ladder while they are SIGKILLed at random (and restarted at once), PostgreSQL restarts,
their database sessions are terminated, and the SMTP server, the SMS gateway and the spool fail
for a moment. Afterwards every ladder has ended, every e-mail and SMS that left has its `sent` or
`in-doubt` row, every letter exists exactly once (spool, letters table, manifest), the spool has
no temp files and the audit chains verify.

`make check` runs a short form (a few hundred messages, about ten kills). `make check-chaos` runs
the full size: HERINNERD_CHAOS=full (a few thousand messages, at least 50 kills). The sizes can
also be set one by one: HERINNERD_CHAOS_MESSAGES, HERINNERD_CHAOS_KILLS, HERINNERD_CHAOS_SECONDS.
"""

import collections
import csv
import os
import random
import signal
import subprocess
import threading
import time

from harness import IS_ROOT, free_port, herinnerctl, kill_postgres, wait_for

FULL = os.environ.get("HERINNERD_CHAOS") == "full"
MESSAGES = int(os.environ.get("HERINNERD_CHAOS_MESSAGES", 3000 if FULL else 300))
KILLS = int(os.environ.get("HERINNERD_CHAOS_KILLS", 60 if FULL else 10))
SECONDS = float(os.environ.get("HERINNERD_CHAOS_SECONDS", 150 if FULL else 25))
SEED = int(os.environ.get("HERINNERD_CHAOS_SEED", 8))

RETRY = 'retry = { max = 10; backoff = "1s"; };'
STEPS = (f'{{ channel = "email"; after = "0s"; {RETRY} }},'
         f' {{ channel = "sms"; after = "2s"; {RETRY} }},'
         f' {{ channel = "paper"; after = "4s"; {RETRY} }}')


def config(pg, smtp, kannel, spool):
    return f"""
lease = "2s";
timezone = "Europe/Amsterdam";
inbox_url = "https://mijn.overheid.nl";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>";
          starttls = "no"; workers = 2; batch = 10; timeout = "5s"; }};
sms: {{ url = "{kannel.sendsms_url}"; username = "{kannel.username}";
        password = "{kannel.password}"; sender = "Overheid"; timeout = "5s"; }};
paper: {{ spool = "{spool}"; cutoff = "23:59"; }};
http: {{ listen = "127.0.0.1:{free_port()}"; }};
policies = ( {{ name = "default"; kinds = [ "*" ]; steps = ( {STEPS} ); }} );
"""


def add_messages(pg, first, n):
    """n unread messages, message i for its own recipient (r<i>@example.nl, +3161<i:07>), in two
    statements as the inbox would write them; their ids."""
    with pg.connect(user="inbox") as conn:
        conn.execute(
            "INSERT INTO herinnerd.recipients (name, email, mobile, postal_address)"
            " SELECT 'R' || i, 'r' || i || '@example.nl', '+3161' || lpad(i::text, 7, '0'),"
            "        'Straat ' || i || E'\\n1234 AB Utrecht'"
            " FROM generate_series(%s::int, %s::int) i", (first, first + n - 1))
        rows = conn.execute(
            "INSERT INTO herinnerd.messages (recipient_id, kind, subject, sender, link)"
            " SELECT r.id, 'aanslag', 'Aanslag ' || r.name, 'Belastingdienst',"
            "        'https://mijn.overheid.nl/b/' || r.id"
            " FROM herinnerd.recipients r WHERE r.name = ANY(%s) RETURNING id",
            ([f"R{i}" for i in range(first, first + n)],)).fetchall()
    return [r[0] for r in rows]


class ReadOnlySpool:
    """The spool's tmp/ and pending/ refuse new files for a moment: immutable (chattr +i) when we
    are root, who ignores modes; mode 0555 otherwise. `applied` is False when the file system
    has no immutable flag (tmpfs before Linux 6.0): then nothing changes."""

    def __init__(self, spool):
        self.dirs = [spool / "tmp", spool / "pending"]
        self.done = []
        self.applied = True

    def __enter__(self):
        for d in self.dirs:
            if not IS_ROOT:
                os.chmod(d, 0o555)
            elif subprocess.run(["chattr", "+i", str(d)], capture_output=True,
                                timeout=10).returncode != 0:
                self.applied = False
                continue
            self.done.append(d)
        return self

    def __exit__(self, *exc):
        for d in self.done:
            if IS_ROOT:
                subprocess.run(["chattr", "-i", str(d)], check=True, timeout=10)
            else:
                os.chmod(d, 0o755)


class Killer(threading.Thread):
    """SIGKILLs a random daemon every so often and restarts it at once, until stopped."""

    def __init__(self, daemons, interval, rnd):
        super().__init__(name="chaos-killer", daemon=True)
        self.daemons, self.interval, self.rnd = daemons, interval, rnd
        self.kills = 0
        self.error = None
        self.halt = threading.Event()

    def run(self):
        try:
            while not self.halt.wait(self.rnd.uniform(*self.interval)):
                d = self.rnd.choice(self.daemons)
                if d.running:
                    d.signal(signal.SIGKILL)
                    d.wait_exit()
                    self.kills += 1
                d.start()
        except Exception as e:  # reported by the test, not lost in the thread
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(30)


def chaos_events(pg, smtp, kannel, spool, ctl_config, read):
    """The outages, in order, each as (name, action); every action restores what it broke.
    `read` marks some messages read (their ladders stop, their letters are withdrawn)."""
    def smtp_4xx():
        smtp.restart("4xx")
        time.sleep(2)
        smtp.restart("ok")

    def smtp_down():
        smtp.stop()
        time.sleep(2)
        smtp.start()

    def kannel_down():
        kannel.stop_gateway()
        time.sleep(1)
        kannel.start_gateway()

    def spool_read_only():
        with ReadOnlySpool(spool) as ro:
            time.sleep(2)
        return None if ro.applied else "skipped: no immutable flag on this file system"

    def terminate_backends():
        pg.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 " WHERE usename = 'herinnerd' AND pid <> pg_backend_pid()")

    def postgresql_crash():
        kill_postgres(pg)       # every backend at once, no shutdown checkpoint
        time.sleep(0.5)
        pg.start()              # crash recovery

    def handover():             # the print house's cut-off while letters are being written
        out = herinnerctl("paper", "handover", config=ctl_config)
        assert out.returncode == 0, out.stdout + out.stderr

    return [("smtp 4xx", smtp_4xx), ("backends terminated", terminate_backends),
            ("postgresql restart", pg.restart), ("messages read", read),
            ("kannel down", kannel_down), ("spool read-only", spool_read_only),
            ("paper handover", handover), ("postgresql crash", postgresql_crash),
            ("smtp down", smtp_down), ("backends terminated", terminate_backends)]


def test_chaos(pg, smtp, kannel, daemon, workdir):
    rnd = random.Random(SEED)
    spool = workdir / "spool"
    ds = [daemon(config(pg, smtp, kannel, spool)) for _ in range(3)]
    for d in ds:
        d.wait_ready(timeout=20)

    ids = []
    read_ids = set()

    def read():
        """A few messages of every batch so far are read: at every stage of their ladders."""
        chosen = rnd.sample(ids, max(1, len(ids) // 20))
        pg.query("UPDATE herinnerd.messages SET read_at = now() WHERE id = ANY(%s)", chosen)
        read_ids.update(chosen)

    batches = 10
    events = chaos_events(pg, smtp, kannel, spool, ds[0].config_path, read)
    # kills spread so that KILLS of them fit in SECONDS with room to spare
    mean = SECONDS / (KILLS * 1.5)
    killer = Killer(ds, (0.5 * mean, 1.5 * mean), rnd)
    started = time.monotonic()
    killer.start()
    done_events = []
    try:
        for i in range(batches):
            ids += add_messages(pg, i * (MESSAGES // batches), MESSAGES // batches)
            if i < len(events):
                name, action = events[i]
                note = action()
                done_events.append(f"{name} ({note})" if isinstance(note, str) else name)
            time.sleep(max(0.0, started + SECONDS * (i + 1) / batches - time.monotonic()))
        wait_for(lambda: killer.kills >= KILLS or killer.error, timeout=SECONDS,
                 what=f"{KILLS} kills")
    finally:
        killer.stop()
    assert killer.error is None, killer.error
    chaos_seconds = time.monotonic() - started
    for d in ds:
        if not d.running:
            d.start()

    def finished():
        return pg.query("SELECT count(*) AS n FROM herinnerd.escalations WHERE"
                        " message_id = ANY(%s) AND state <> 'active'", ids)[0]["n"] == len(ids)
    wait_for(finished, timeout=120 + MESSAGES / 10, interval=0.5, what="every ladder ended")
    assert all(d.running for d in ds), [d.returncode for d in ds]
    assert killer.kills >= KILLS

    # every ladder ended, every step of it with a recorded outcome, no claim left open
    unread = sorted(set(ids) - read_ids)
    esc = pg.query("SELECT state, count(*) AS n, count(claim) AS claimed FROM herinnerd.escalations"
                   " WHERE message_id = ANY(%s) GROUP BY state", unread)
    assert {e["state"] for e in esc} <= {"done", "failed"}, esc
    assert sum(e["claimed"] for e in esc) == 0, esc
    esc = pg.query("SELECT state, count(*) AS n, count(claim) AS claimed FROM herinnerd.escalations"
                   " WHERE message_id = ANY(%s) GROUP BY state", sorted(read_ids))
    assert {e["state"] for e in esc} <= {"read", "done", "failed"}, esc
    assert sum(e["claimed"] for e in esc) == 0, esc
    steps = pg.query("SELECT message_id, array_agg(DISTINCT step ORDER BY step) AS steps"
                     " FROM herinnerd.attempts WHERE message_id = ANY(%s) GROUP BY message_id",
                     unread)
    incomplete = [s for s in steps if s["steps"] != [0, 1, 2]]
    assert len(steps) == len(unread) and not incomplete, incomplete[:10]

    recorded = collections.defaultdict(set)  # (channel, step) -> recipients with sent/in-doubt
    for r in pg.query("SELECT a.channel, a.step, r.email, r.mobile FROM herinnerd.attempts a"
                      " JOIN herinnerd.messages m ON m.id = a.message_id"
                      " JOIN herinnerd.recipients r ON r.id = m.recipient_id"
                      " WHERE a.message_id = ANY(%s) AND a.outcome IN ('sent', 'in-doubt')", ids):
        recorded[(r["channel"], r["step"])].add(r["email"] if r["channel"] == "email"
                                                else r["mobile"])
    # every e-mail that left has its sent or in-doubt row
    mails = [to for m in smtp.messages() for to in m.envelope_to]
    assert set(mails) <= recorded[("email", 0)], sorted(set(mails) - recorded[("email", 0)])[:20]
    # every SMS that reached the SMSC too (Kannel writes the number without its '+')
    texts = ["+" + s["to"].lstrip("+") for s in kannel.received()]
    assert set(texts) <= recorded[("sms", 1)], sorted(set(texts) - recorded[("sms", 1)])[:20]
    # and every copy: a repeated send is at-least-once after an in-doubt claim, never silent
    rows = collections.Counter()
    details = collections.defaultdict(list)
    for r in pg.query("SELECT a.channel, a.outcome, a.detail, r.email, r.mobile"
                      " FROM herinnerd.attempts a"
                      " JOIN herinnerd.messages m ON m.id = a.message_id"
                      " JOIN herinnerd.recipients r ON r.id = m.recipient_id"
                      " WHERE a.message_id = ANY(%s) AND a.channel IN ('email', 'sms')", ids):
        who = r["email"] if r["channel"] == "email" else r["mobile"]
        details[who].append(f"{r['outcome']}: {r['detail']}")
        rows[who] += r["outcome"] in ("sent", "in-doubt")
    copies = collections.Counter(mails) + collections.Counter(texts)
    silent = {who: (n, details[who]) for who, n in copies.items() if n > rows[who]}
    assert not silent, (len(silent), list(silent.items())[:5])

    # exactly one letter per (message, step): spool, letters table, attempt rows, manifest
    out = herinnerctl("paper", "handover", config=ds[0].config_path)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: not list((spool / "tmp").iterdir()), timeout=10, what="no temp files")
    paper = collections.defaultdict(collections.Counter)  # outcome -> letter name -> rows
    for a in pg.query("SELECT message_id, step, outcome FROM herinnerd.attempts WHERE"
                      " message_id = ANY(%s) AND channel = 'paper'", ids):
        paper[a["outcome"]][f"{a['message_id']}-{a['step']}.pdf"] += 1
    for outcome in ("queued", "handed-over", "withdrawn"):
        assert set(paper[outcome].values()) <= {1}, (outcome, paper[outcome].most_common(3))
    pdfs = sorted(p.name for p in spool.rglob("*.pdf"))
    assert len(pdfs) == len(set(pdfs)), collections.Counter(pdfs).most_common(3)
    odd = sorted(set(pdfs) ^ set(paper["queued"]))
    assert not odd, [(name, [(a["outcome"], a["detail"]) for a in pg.attempts(
        int(name.split("-")[0])) if a["channel"] == "paper"], pg.query(
        "SELECT * FROM herinnerd.letters WHERE message_id = %s", int(name.split("-")[0])))
        for name in odd[:3]]
    assert not list((spool / "pending").glob("*.pdf"))       # all handed over or withdrawn
    where = {p.name: p.parent.parent.name if p.parent.parent != spool else p.parent.name
             for p in spool.rglob("*.pdf")}                   # pending, handed-over, withdrawn
    assert sorted(n for n, w in where.items() if w == "handed-over") == sorted(paper["handed-over"])
    assert sorted(n for n, w in where.items() if w == "withdrawn") == sorted(paper["withdrawn"])
    assert {int(n.split("-")[0]) for n in paper["withdrawn"]} <= read_ids
    letters = pg.query("SELECT message_id, step, state, file FROM herinnerd.letters"
                       " WHERE message_id = ANY(%s)", ids)
    # a letter whose writer was killed before its file existed, its message read before a
    # takeover: 'unwritten', no file, nothing queued, and only for a read message
    unwritten = [x for x in letters if x["state"] == "unwritten"]
    assert all(x["file"] is None and x["message_id"] in read_ids for x in unwritten), unwritten
    assert not {f"{x['message_id']}-{x['step']}.pdf" for x in unwritten} & set(paper["queued"])
    letters = [x for x in letters if x["state"] != "unwritten"]
    assert sorted((f"{x['message_id']}-{x['step']}.pdf", x["state"]) for x in letters) == \
        sorted(where.items())
    names = []
    for path in (spool / "handed-over").glob("*/manifest.csv"):
        with open(path, newline="") as f:
            names += [row[0] for row in list(csv.reader(f))[1:]]  # the letter's name first
    assert sorted(names) == sorted(paper["handed-over"])

    # no fact the database refused (each such line is an attempt without its row)
    refused = [line for d in ds for line in d.log().splitlines() if "database refused it" in line]
    assert not refused, refused[:5]

    verify = herinnerctl("--conninfo", pg.conninfo("auditor"), "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr

    outcomes = pg.query("SELECT channel, outcome, count(*) AS n FROM herinnerd.attempts"
                        " GROUP BY 1, 2 ORDER BY 1, 2")
    print(f"\nchaos: {len(ids)} messages ({len(read_ids)} read), {killer.kills} kills, outages {done_events},"
          f" {chaos_seconds:.0f} s of chaos; {len(mails)} mails, {len(texts)} SMSs,"
          f" {len(pdfs)} letters; " + ", ".join(f"{o['channel']} {o['outcome']} {o['n']}"
                                                for o in outcomes))


class LateReplySmtp:
    """aiosmtpd on loopback that takes each message completely and then answers the end of DATA
    only after `delay` seconds -- the first time per recipient; at once after that. Like an MTA
    that is slow to commit: by the time the client gives up, the mail is already delivered."""

    def __init__(self, delay):
        import asyncio
        import threading as _threading

        from aiosmtpd.controller import Controller

        self.copies = collections.Counter()
        self.lock = _threading.Lock()
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with outer.lock:
                    first = not any(outer.copies[r] for r in envelope.rcpt_tos)
                    outer.copies.update(envelope.rcpt_tos)   # delivered, whatever comes next
                if first:
                    await asyncio.sleep(delay)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def test_a_mail_whose_final_reply_times_out_is_recorded_as_possibly_delivered(pg, daemon):
    with LateReplySmtp(delay=6) as smtp:
        d = daemon(f"""
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "127.0.0.1:{smtp.port}"; from = "MijnOverheid <noreply@example.nl>";
          starttls = "no"; timeout = "2s"; }};
policies = ( {{ name = "default"; kinds = [ "*" ]; steps = (
  {{ channel = "email"; after = "0s"; retry = {{ max = 3; backoff = "1s"; }}; }} ); }} );
""")
        d.wait_ready()
        r = pg.add_recipient("Jan", email="jan@example.nl")
        m = pg.add_message(r)
        wait_for(lambda: pg.escalation(m) and pg.escalation(m)["state"] != "active", timeout=30,
                 what="the ladder ended")
        rows = [(a["outcome"], a["detail"]) for a in pg.attempts(m)]
        # the citizen got two copies; each must have a row that says it may have arrived
        assert smtp.copies["jan@example.nl"] == 2, (smtp.copies, rows)
        assert sum(o in ("sent", "in-doubt") for o, _ in rows) == 2, rows


class LateReplyGateway:
    """A sendsms HTTP gateway on loopback that takes each SMS at once and answers only after
    `delay` seconds -- the first time per number; at once after that (like Kannel under load:
    the SMS is queued for the SMSC whatever the client does next)."""

    def __init__(self, delay):
        import http.server
        import threading as _threading
        import urllib.parse

        self.copies = collections.Counter()
        self.lock = _threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                to = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("to", [""])[0]
                with outer.lock:
                    first = outer.copies[to] == 0
                    outer.copies[to] += 1
                if first:
                    time.sleep(delay)
                body = b"0: Accepted for delivery"
                try:
                    self.send_response(202)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = _threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_an_sms_whose_reply_times_out_is_recorded_as_possibly_sent(pg, daemon):
    with LateReplyGateway(delay=6) as gw:
        d = daemon(f"""
timezone = "Europe/Amsterdam";
inbox_url = "https://mijn.overheid.nl";
database: {{ conninfo = "{pg.conninfo()}"; }};
http: {{ listen = "127.0.0.1:{free_port()}"; }};
sms: {{ url = "http://127.0.0.1:{gw.port}/cgi-bin/sendsms"; username = "u"; password = "p";
        sender = "Overheid"; timeout = "2s"; }};
policies = ( {{ name = "default"; kinds = [ "*" ]; steps = (
  {{ channel = "sms"; after = "0s"; retry = {{ max = 3; backoff = "1s"; }}; }} ); }} );
""")
        d.wait_ready()
        r = pg.add_recipient("Jan", mobile="+31612345678")
        m = pg.add_message(r)
        wait_for(lambda: pg.escalation(m) and pg.escalation(m)["state"] != "active", timeout=30,
                 what="the ladder ended")
        rows = [(a["outcome"], a["detail"]) for a in pg.attempts(m)]
        copies = sum(gw.copies.values())
        assert copies == 2, (gw.copies, rows)
        assert sum(o in ("sent", "in-doubt") for o, _ in rows) == copies, rows


def test_a_letter_left_writing_by_a_dead_claim_is_withdrawn_when_the_message_is_read(
        pg, daemon, workdir):
    """The state a SIGKILL leaves between linking a letter into pending/ and recording it
    (letters row still 'writing' under the dead claim), and then the citizen reads the message
    before another instance takes the step over. The letter must not reach the print house."""
    spool = workdir / "spool"
    d = daemon(f"""
lease = "2s";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
paper: {{ spool = "{spool}"; cutoff = "23:59"; }};
policies = ( {{ name = "default"; kinds = [ "*" ]; steps = (
  {{ channel = "paper"; after = "1h"; }} ); }} );
""")
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", postal_address="Straat 1\n1234 AB Utrecht"))
    wait_for(lambda: pg.escalation(m), timeout=10, what="the message adopted")
    d.signal(signal.SIGKILL)     # the instance that wrote the letter, killed
    d.wait_exit()
    with pg.connect() as conn, conn.transaction():
        conn.execute("UPDATE herinnerd.escalations SET claim = 'dead:1', channel = 'paper',"
                     " next_at = now() - interval '1 s' WHERE message_id = %s", (m,))
        conn.execute("INSERT INTO herinnerd.letters (message_id, step, instance, state, claim)"
                     " VALUES (%s, 0, 'dead', 'writing', 'dead:1')", (m,))
        (spool / "pending" / f"{m}-0.pdf").write_bytes(b"%PDF-1.4 written, never recorded\n")
        conn.execute("UPDATE herinnerd.messages SET read_at = now() WHERE id = %s", (m,))
    d.start()                    # the instance that takes over
    wait_for(lambda: pg.escalation(m)["state"] != "active", timeout=20, what="the ladder ended")
    time.sleep(2)
    out = herinnerctl("paper", "handover", config=d.config_path)
    assert out.returncode == 0, out.stderr
    handed = list((spool / "handed-over").rglob(f"{m}-0.pdf"))
    rows = [(a["outcome"], a["detail"]) for a in pg.attempts(m)]
    letter = pg.query("SELECT state, claim FROM herinnerd.letters WHERE message_id = %s", m)
    assert not handed, (rows, letter)
    assert (spool / "withdrawn" / f"{m}-0.pdf").exists(), (rows, letter)
    assert [o for o, _ in rows] == ["in-doubt", "skipped", "withdrawn"], rows
    assert letter[0]["state"] == "withdrawn", letter


def test_a_takeover_that_finds_the_letter_recorded_already_ends_the_ladder(pg, daemon, workdir):
    """A writer whose claim ran out (a stall, a lost renewal during a database outage) still
    records its letter as `queued` -- a fact -- but cannot move the escalation. The instance
    that took the step over finds the letter in the spool and must end the ladder, not try to
    record a second `queued` row (refused by attempts_paper_once) at every lease, forever."""
    spool = workdir / "spool"
    d = daemon(f"""
lease = "2s";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
paper: {{ spool = "{spool}"; cutoff = "23:59"; }};
policies = ( {{ name = "default"; kinds = [ "*" ]; steps = (
  {{ channel = "paper"; after = "1h"; }} ); }} );
""")
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", postal_address="Straat 1\n1234 AB Utrecht"))
    wait_for(lambda: pg.escalation(m), timeout=10, what="the message adopted")
    d.signal(signal.SIGKILL)
    d.wait_exit()
    path = spool / "pending" / f"{m}-0.pdf"
    with pg.connect() as conn, conn.transaction():
        sha = pg.escalation(m)["config_sha256"]
        conn.execute("UPDATE herinnerd.escalations SET claim = 'new:1', channel = 'paper',"
                     " next_at = now() - interval '1 s' WHERE message_id = %s", (m,))
        conn.execute("INSERT INTO herinnerd.letters (message_id, step, instance, state, claim,"
                     " file) VALUES (%s, 0, 'stale', 'queued', 'stale:1', %s)", (m, str(path)))
        conn.execute("INSERT INTO herinnerd.attempts (chain, message_id, step, try, channel,"
                     " outcome, detail, address, instance, config_sha256, claim, fact)"
                     " VALUES ('test:stale', %s, 0, 1, 'paper', 'queued', 'letter queued',"
                     " %s, 'stale', %s, 'stale:1', %s)", (m, str(path), sha, f"outcome:stale:1:{m}"))
        path.write_bytes(b"%PDF-1.4 written and recorded by the stale writer\n")
    d.start()
    wait_for(lambda: pg.escalation(m)["state"] != "active", timeout=15,
             what="the ladder ended (not retried at every lease)")
    assert pg.escalation(m)["state"] == "done"
    rows = [(a["outcome"], a["claim"]) for a in pg.attempts(m)]
    assert [o for o, _ in rows].count("queued") == 1, rows
    assert "UNRECORDED" not in d.log()
