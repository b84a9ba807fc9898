#!/usr/bin/python3
"""`make bench`: throughput of the engine (null channel) and of the e-mail path (smtp-sink).

Loads N unread messages into a private PostgreSQL, starts herinnerd, and measures how long it
takes until every escalation has finished and every attempt is recorded. Speed is measured here,
never asserted in tests."""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--builddir", default=str(HERE.parent))
ap.add_argument("--srcdir", default=str(HERE.parent))
ap.add_argument("--messages", type=int, default=20000, help="messages for the null-channel run")
ap.add_argument("--mails", type=int, default=2000, help="messages for the e-mail run")
args = ap.parse_args()
os.environ.setdefault("HERINNERD_TOP", args.srcdir)
os.environ.setdefault("HERINNERD_BUILDDIR", args.builddir)
sys.path.insert(0, str(Path(args.srcdir) / "tests" / "integration"))
from harness import Daemon, Postgres, SmtpSink, wait_for  # noqa: E402


def run(label, n, steps, smtp=None):
    root = Path(tempfile.mkdtemp(prefix="herinnerd-bench-"))
    os.chmod(root, 0o777)
    pg = Postgres(root)
    pg.start()
    d = None
    try:
        with pg.connect() as conn:
            conn.execute("INSERT INTO herinnerd.recipients (name, email) VALUES ('Bench', 'bench@example.nl')")
            conn.execute("INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject)"
                         " SELECT 1, 'Bench', 'bench', 'message ' || g FROM generate_series(1, %s) g", (n,))
        email = (f'email: {{ server = "{smtp.address}"; from = "B <b@example.nl>"; starttls = "no"; '
                 f'workers = 4; batch = 50; }};') if smtp else ""
        d = Daemon(root / "daemon", f"""
database: {{ conninfo = "{pg.conninfo()}"; }};
{email}
policies = ( {{ name = "bench"; kinds = [ "*" ]; steps = ( {steps} ); }} );
""")
        start = time.monotonic()
        d.start()
        d.wait_ready(timeout=30)
        wait_for(lambda: pg.query("SELECT count(*) AS n FROM herinnerd.escalations"
                                  " WHERE state = 'done'")[0]["n"] >= n,
                 timeout=600, interval=0.2, what="all escalations done")
        took = time.monotonic() - start
        attempts = pg.query("SELECT count(*) AS n FROM herinnerd.attempts")[0]["n"]
        print(f"{label}: {n} messages, {attempts} attempts in {took:.2f}s "
              f"= {n / took:.0f} messages/s", flush=True)
    finally:
        if d:
            d.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


run("engine (null channel)", args.messages, '{ channel = "null"; after = "0s"; }')
root = Path(tempfile.mkdtemp(prefix="herinnerd-bench-smtp-"))
os.chmod(root, 0o777)
sink = SmtpSink(root)
sink.start()
try:
    run("e-mail (smtp-sink)", args.mails, '{ channel = "email"; after = "0s"; }', smtp=sink)
finally:
    sink.stop()
    shutil.rmtree(root, ignore_errors=True)
