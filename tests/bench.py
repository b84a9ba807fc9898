#!/usr/bin/python3
"""`make bench`: herinnerd against its peers and its targets (issue 7), one table, one run.

Every phase gets its own PostgreSQL (and smtp-sink / Kannel) from the integration harness, on
this machine, one after the other. Sizes scale with --scale (1.0 = the issue's sizes; 0.02 runs
in a few minutes). Speed is measured here, never asserted in tests. Phases: adopt (adoption of
unread-not-due messages, then idle transactions/s, CPU and RSS with them pending, then null
decisions/s on a part of them made due), latency (due->attempt at a steady rate, read->stopped),
email (herinnerd and Postfix's smtp-source into one smtp-sink), sms (Kannel's fake SMSC), paper
(letters rendered into the spool)."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--builddir", default=str(HERE.parent))
ap.add_argument("--srcdir", default=str(HERE.parent))
ap.add_argument("--scale", type=float, default=1.0,
                help="fraction of the issue's sizes (1.0: 100,000 decisions, 1,000,000 adopted...)")
ap.add_argument("--phases", default="adopt,latency,email,sms,paper",
                help="comma-separated subset of: adopt,latency,email,sms,paper")
ap.add_argument("--rate", type=int, default=1000, help="due messages per second in the latency phase")
ap.add_argument("--adopt-timeout", type=float, default=1800,
                help="give adoption this long (s); the table then shows how far it got")
ap.add_argument("--log-statements", action="store_true",
                help="PostgreSQL logs every statement of the daemon's role, with its duration (pg.log)")
ap.add_argument("--explain", type=float, metavar="MS",
                help="auto_explain (ANALYZE, BUFFERS) every daemon statement slower than MS into pg.log")
ap.add_argument("--decisions", type=int, help="due messages for the decisions row (default: scaled)")
ap.add_argument("--out", help="also write the table (markdown) to this file")
args = ap.parse_args()
os.environ.setdefault("HERINNERD_TOP", args.srcdir)
os.environ.setdefault("HERINNERD_BUILDDIR", args.builddir)
sys.path.insert(0, str(Path(args.srcdir) / "tests" / "integration"))
from harness import (IS_ROOT, SMTP_SINK, Daemon, Kannel, Postgres, _spawn,  # noqa: E402
                     _terminate, free_port, port_listening, wait_for)


def size(full, least):
    return max(least, int(full * args.scale))


SIZES = {
    "adopt": size(1_000_000, 2000),
    "decisions": args.decisions or size(100_000, 1000),
    "mails": size(20_000, 500),
    "sms": size(2_000, 200),
    "letters": size(1_000, 50),
    "latency_s": max(10.0, 30 * args.scale),
    "reads": size(1_000, 100),
    "idle_s": max(20.0, 60 * args.scale),
}
ROWS = []      # (what, figure, target, note)
HZ = os.sysconf("SC_CLK_TCK")


def row(what, figure, target="", note=""):
    ROWS.append((what, figure, target, note))
    print(f"  {what}: {figure}" + (f"  (target {target})" if target else "") +
          (f"  {note}" if note else ""), flush=True)


# ---- machinery ----

class Phase:
    """A directory, a PostgreSQL, daemons; everything stopped and removed at the end."""

    def __init__(self, name):
        self.name = name
        self.root = Path(tempfile.mkdtemp(prefix=f"herinnerd-bench-{name}-"))
        os.chmod(self.root, 0o777)
        self.pg = Postgres(self.root)
        self.daemons = []
        self.procs = []

    def __enter__(self):
        print(f"[{time.strftime('%H:%M:%S')}] {self.name}", flush=True)
        self.pg.start()
        with self.pg.connect() as conn:
            conn.execute("INSERT INTO herinnerd.recipients (name, email, mobile, postal_address)"
                         " VALUES ('Bench', 'bench@example.nl', '+31612345678',"
                         " E'Kerkstraat 1\\n1234 AB IJsselstein')")
            if args.log_statements:
                conn.execute("ALTER ROLE herinnerd SET log_min_duration_statement = 0")
            if args.explain is not None:
                for setting in ("session_preload_libraries = 'auto_explain'",
                                f"auto_explain.log_min_duration = '{args.explain}ms'",
                                "auto_explain.log_analyze = on", "auto_explain.log_buffers = on"):
                    conn.execute(f"ALTER ROLE herinnerd SET {setting}")
        return self

    def __exit__(self, *exc):
        for d in reversed(self.daemons):
            d.stop()
        _terminate(self.procs)
        self.pg.stop()
        if not os.environ.get("HERINNERD_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            print(f"kept {self.root}")
        return False

    def daemon(self, steps, extra=""):
        d = Daemon(self.root / f"daemon{len(self.daemons) + 1}", f"""
instance = "bench";
timezone = "Europe/Amsterdam";
lease = "5m";
database: {{ conninfo = "{self.pg.conninfo()}"; }};
{extra}
policies = ( {{ name = "bench"; kinds = [ "*" ]; steps = ( {steps} ); }} );
""")
        self.daemons.append(d)
        return d

    def one(self, sql, *params):
        with self.pg.connect() as conn:
            return conn.execute(sql, params).fetchone()[0]

    def insert(self, n, chunk=50_000, subject="bench"):
        """N messages, CHUNK per transaction, as the inbox would put them in."""
        with self.pg.connect() as conn:
            done = 0
            while done < n:
                k = min(chunk, n - done)
                conn.execute("INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject, link)"
                             " SELECT 1, 'Belastingdienst', 'aanslag', %s || ' ' || g,"
                             " 'https://mijn.overheid.nl/berichtenbox/' || g"
                             " FROM generate_series(1, %s) g", (subject, k))
                done += k

    def wait_count(self, sql, n, timeout, what):
        """Poll SQL (a count) until it reaches N; the seconds it took, or None on timeout."""
        start = time.monotonic()
        with self.pg.connect() as conn:
            while True:
                got = conn.execute(sql).fetchone()[0]
                if got >= n:
                    return time.monotonic() - start, got
                if time.monotonic() - start > timeout:
                    print(f"  {what}: {got} of {n} after {timeout:.0f}s", flush=True)
                    return None, got
                time.sleep(0.05 if n < 5000 else 0.5)

    def due_now(self, n):
        """Make the first N waiting escalations due (the daemon is stopped: nobody holds them)."""
        with self.pg.connect() as conn:
            conn.execute("UPDATE herinnerd.escalations SET next_at = now() WHERE message_id IN"
                         " (SELECT message_id FROM herinnerd.escalations WHERE state = 'active'"
                         "  ORDER BY message_id LIMIT %s)", (n,))
            conn.execute("VACUUM ANALYZE herinnerd.escalations")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def rss_mb(pid, key="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def backend_cpu(pg):
    """CPU seconds of this PostgreSQL's backends (the postmaster's children) so far."""
    total = 0.0
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pg.proc.pid:
                    total += cpu_seconds(p.name)
            except (OSError, ValueError, IndexError):
                pass
    return total


# ---- phases ----

def phase_adopt():
    n, dn = SIZES["adopt"], SIZES["decisions"]
    with Phase("adopt") as ph:
        d = ph.daemon('{ channel = "null"; after = "30d"; }')
        d.start()
        d.wait_ready(timeout=30)
        start = time.monotonic()
        ins = threading.Thread(target=ph.insert, args=(n,))
        ins.start()
        took, got = ph.wait_count("SELECT count(*) FROM herinnerd.escalations", n,
                                  args.adopt_timeout, "adoption")
        ins.join()
        if took is None:
            row(f"adopt {n:,} unread-not-due", f"{got:,} in {args.adopt_timeout:.0f} s "
                f"({got / args.adopt_timeout:,.0f}/s)", "≤ 60 s",
                "did not finish; the rest planned by SQL for the rows below")
            # idle must mean idle: plan the rest as adoption would have, and start afresh
            d.stop()
            with ph.pg.connect() as conn:
                conn.execute("INSERT INTO herinnerd.escalations (message_id, policy, config_sha256,"
                             " next_at, state, channel) SELECT m.id, e.policy, e.config_sha256,"
                             " now() + interval '30 days', 'active', e.channel"
                             " FROM herinnerd.messages m,"
                             " (SELECT * FROM herinnerd.escalations LIMIT 1) e"
                             " WHERE NOT EXISTS (SELECT 1 FROM herinnerd.escalations x"
                             "                   WHERE x.message_id = m.id)")
            got = n
            d = ph.daemon('{ channel = "null"; after = "30d"; }')
            d.start()
            d.wait_ready(timeout=60)
        else:
            took = time.monotonic() - start
            row(f"adopt {n:,} unread-not-due", f"{took:.1f} s ({n / took:,.0f}/s)", "≤ 60 s",
                "insert in 50,000-row transactions while the daemon runs")

        # idle with everything pending: what does the daemon cost when nothing is due? Vacuumed
        # first, as autovacuum would have by then: its transactions count in pg_stat_database
        with ph.pg.connect() as conn:
            conn.execute("VACUUM ANALYZE herinnerd.messages")
            conn.execute("VACUUM ANALYZE herinnerd.escalations")
            conn.execute("VACUUM ANALYZE herinnerd.new_messages")   # the outbox adoption emptied
        # an idle backend reports the transactions it ran before up to 10 s later
        # (PGSTAT_IDLE_INTERVAL): wait for that, or adoption's last rounds count as idle
        time.sleep(11)
        pid = d.pid
        with ph.pg.connect() as conn:
            conn.execute("SET stats_fetch_consistency = none")
            q = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'inbox'"
            x0, c0, t0 = conn.execute(q).fetchone()[0], cpu_seconds(pid), time.monotonic()
            time.sleep(SIZES["idle_s"])
            time.sleep(1.5)     # backends report their counts at most once a second
            x1, c1, t1 = conn.execute(q).fetchone()[0], cpu_seconds(pid), time.monotonic()
        own = 1                  # our second SELECT
        secs = t1 - t0
        xacts = max(0, x1 - x0 - own)
        row(f"idle, {got:,} pending: transactions", f"{xacts} in {secs:.0f} s "
            f"({xacts / secs * 10:.2f} per 10 s)", "≤ 1 per 10 s")
        row(f"idle, {got:,} pending: daemon CPU", f"{(c1 - c0) / secs * 100:.2f} %")
        row(f"idle, {got:,} pending: daemon RSS", f"{rss_mb(pid):.1f} MB (peak {rss_mb(pid, 'VmHWM'):.1f} MB)",
            "< 32 MB")

        # decisions: a part of them due at once, the rest still pending around them
        d.stop()
        ph.due_now(dn)
        d2 = ph.daemon('{ channel = "null"; after = "30d"; }')
        c_pg = backend_cpu(ph.pg)
        start = time.monotonic()
        d2.start()
        took, got = ph.wait_count("SELECT count(*) FROM herinnerd.attempts", dn, 1200, "decisions")
        if took is None:
            row(f"null decisions ({dn:,} due)", f"{got:,} in 1200 s", "≥ 20,000/s", "did not finish")
        else:
            pgcpu = backend_cpu(ph.pg) - c_pg
            row(f"null decisions ({dn:,} due)", f"{dn / took:,.0f}/s ({took:.1f} s)", "≥ 20,000/s",
                f"daemon CPU {cpu_seconds(d2.pid):.1f} s, PostgreSQL CPU {pgcpu:.1f} s; "
                f"{n - dn:,} pending around them")


def phase_latency():
    rate, secs = args.rate, SIZES["latency_s"]
    with Phase("latency") as ph:
        # due 2 s after arrival; the second step waits, so a read can stop it
        d = ph.daemon('{ channel = "null"; after = "2s"; }, { channel = "null"; after = "1h"; }')
        d.start()
        d.wait_ready(timeout=30)
        total = int(rate * secs)
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        with ph.pg.connect() as conn:
            start = time.monotonic()
            sent = 0
            while sent < total:
                k = min(per_tick, total - sent)
                conn.execute("INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject)"
                             " SELECT 1, 'Belastingdienst', 'aanslag', 'latency' FROM generate_series(1, %s)",
                             (k,))
                sent += k
                ahead = start + sent / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            fed = time.monotonic() - start
        ph.wait_count("SELECT count(*) FROM herinnerd.attempts WHERE step = 0", total, 120,
                      "latency attempts")
        p50, p99, mx = ph.pg.query(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l) AS p50,"
            "       percentile_cont(0.99) WITHIN GROUP (ORDER BY l) AS p99, max(l) AS mx FROM ("
            " SELECT extract(epoch FROM a.created_at - (m.created_at + interval '2 seconds')) * 1000 AS l"
            "   FROM herinnerd.attempts a JOIN herinnerd.messages m ON m.id = a.message_id"
            "  WHERE a.step = 0) x")[0].values()
        row(f"due→attempt at {total / fed:,.0f} due/s ({total:,} over {fed:.0f} s)",
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (max {mx:.0f} ms)", "p99 < 100 ms")

        # read -> stopped, one read at a time, every 20 ms
        reads = min(SIZES["reads"], total)
        ids = [r["id"] for r in ph.pg.query(
            "SELECT message_id AS id FROM herinnerd.escalations WHERE state = 'active' AND step = 1"
            " ORDER BY message_id LIMIT %s", reads)]
        with ph.pg.connect() as conn:
            for i in ids:
                conn.execute("UPDATE herinnerd.messages SET read_at = now() WHERE id = %s", (i,))
                time.sleep(0.02)
        ph.wait_count("SELECT count(*) FROM herinnerd.attempts WHERE outcome = 'skipped'",
                      len(ids), 60, "read stops")
        p50, p99, mx = ph.pg.query(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l) AS p50,"
            "       percentile_cont(0.99) WITHIN GROUP (ORDER BY l) AS p99, max(l) AS mx FROM ("
            " SELECT extract(epoch FROM a.created_at - m.read_at) * 1000 AS l"
            "   FROM herinnerd.attempts a JOIN herinnerd.messages m ON m.id = a.message_id"
            "  WHERE a.outcome = 'skipped') x")[0].values()
        row(f"read→stopped ({len(ids):,} reads, 50/s)", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms "
            f"(max {mx:.0f} ms)", "p99 < 50 ms")


def smtp_sink(ph):
    """A plain smtp-sink (no dumps): the same sink for herinnerd and for smtp-source."""
    port = free_port()
    argv = [SMTP_SINK] + (["-u", "nobody"] if IS_ROOT else []) + [f"127.0.0.1:{port}", "256"]
    proc = _spawn(argv, ph.root / "smtp-sink.log")
    ph.procs.append(proc)
    wait_for(lambda: port_listening(port), timeout=10, what="smtp-sink")
    return port


def phase_email():
    n = SIZES["mails"]
    with Phase("email") as ph:
        port = smtp_sink(ph)
        steps = '{ channel = "email"; after = "30d"; }'
        extra = (f'email: {{ server = "127.0.0.1:{port}"; from = "Bench <noreply@example.nl>"; '
                 f'starttls = "no"; workers = 4; batch = 50; }};')
        d = ph.daemon(steps, extra)
        d.start()
        d.wait_ready(timeout=30)
        ph.insert(n)
        ph.wait_count("SELECT count(*) FROM herinnerd.escalations", n, 600, "adoption")
        d.stop()
        ph.due_now(n)
        d2 = ph.daemon(steps, extra)
        start = time.monotonic()
        d2.start()
        took, got = ph.wait_count("SELECT count(*) FROM herinnerd.attempts", n, 1200, "e-mails")
        mine = n / took if took else got / 1200
        # the same number of messages of about the same size, with herinnerd's parallelism
        size_b = 1500
        start = time.monotonic()
        subprocess.run(["smtp-source", "-s", "4", "-m", str(n), "-l", str(size_b),
                        "-f", "noreply@example.nl", "-t", "bench@example.nl", f"127.0.0.1:{port}"],
                       check=True, timeout=1200, stdout=subprocess.DEVNULL)
        theirs = n / (time.monotonic() - start)
        row(f"e-mail into smtp-sink ({n:,})", f"{mine:,.0f}/s vs smtp-source {theirs:,.0f}/s "
            f"= {mine / theirs * 100:.0f} %", "≥ 50 %", "4 workers, 4 smtp-source sessions")


def phase_sms():
    n = SIZES["sms"]
    with Phase("sms") as ph:
        kannel = Kannel(ph.root)
        kannel.start()
        ph.procs.extend(p for p in (kannel.bearerbox, kannel.smsbox, kannel.fakesmsc) if p)
        try:
            http = free_port()
            steps = '{ channel = "sms"; after = "30d"; }'
            extra = (f'inbox_url = "https://mijn.overheid.nl";\nhttp: {{ listen = "127.0.0.1:{http}"; }};\n'
                     f'sms: {{ url = "{kannel.sendsms_url}"; username = "{kannel.username}"; '
                     f'password = "{kannel.password}"; sender = "Overheid"; timeout = "10s"; }};')
            d = ph.daemon(steps, extra)
            d.start()
            d.wait_ready(timeout=30)
            ph.insert(n)
            ph.wait_count("SELECT count(*) FROM herinnerd.escalations", n, 600, "adoption")
            d.stop()
            ph.due_now(n)
            d2 = ph.daemon(steps, extra)
            d2.start()
            took, got = ph.wait_count("SELECT count(*) FROM herinnerd.escalations WHERE state <> 'active'",
                                      n, 1200, "SMS")
            row(f"SMS through Kannel's fake SMSC ({n:,})",
                f"{n / took:,.0f}/s" if took else f"{got:,} in 1200 s")
        finally:
            kannel.stop()


def phase_paper():
    n = SIZES["letters"]
    with Phase("paper") as ph:
        spool = ph.root / "spool"
        spool.mkdir()
        os.chmod(spool, 0o777)
        cutoff = time.strftime("%H:%M", time.localtime(time.time() + 12 * 3600))
        steps = '{ channel = "paper"; after = "30d"; }'
        extra = f'paper: {{ spool = "{spool}"; cutoff = "{cutoff}"; }};'
        d = ph.daemon(steps, extra)
        d.start()
        d.wait_ready(timeout=30)
        ph.insert(n)
        ph.wait_count("SELECT count(*) FROM herinnerd.escalations", n, 600, "adoption")
        d.stop()
        ph.due_now(n)
        d2 = ph.daemon(steps, extra)
        d2.start()
        took, got = ph.wait_count("SELECT count(*) FROM herinnerd.attempts WHERE outcome = 'queued'",
                                  n, 1200, "letters")
        row(f"letters rendered into the spool ({n:,})", f"{n / took:,.1f}/s" if took else f"{got:,} in 1200 s")


PHASES = {"adopt": phase_adopt, "latency": phase_latency, "email": phase_email, "sms": phase_sms,
          "paper": phase_paper}


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    pgv = subprocess.run([str(Postgres(tempfile.gettempdir()).bindir / "postgres"), "--version"],
                         capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} CPUs ({cpu}), {pgv}"


started = time.monotonic()
print(f"herinnerd bench, scale {args.scale}: {SIZES}", flush=True)
for name in args.phases.split(","):
    try:
        PHASES[name]()
    except Exception as e:     # one broken phase must not lose the others' figures
        traceback.print_exc()
        row(name, f"failed: {e}")

lines = [f"`make bench BENCH_ARGS='--scale {args.scale:g}'` on {machine()}, "
         f"{time.strftime('%Y-%m-%d')}, {(time.monotonic() - started) / 60:.0f} min:", "",
         "| measure | herinnerd | target | note |", "|---|---|---|---|"]
lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in ROWS]
print("\n" + "\n".join(lines))
if args.out:
    Path(args.out).write_text("\n".join(lines) + "\n")
