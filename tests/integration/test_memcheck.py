"""make check-valgrind: one full ladder (e-mail, SMS with its delivery reports, paper letter,
hand-over) with the daemon under valgrind memcheck, then a clean stop: no memory error and no
leak of ours (tests/valgrind.supp names only libraries' own allocations).

Skipped unless HERINNERD_VALGRIND=1 (valgrind makes the daemon ~30 times slower)."""

import os
import signal
from pathlib import Path

import pytest

from harness import HERINNERD, Daemon, free_port, herinnerctl, wait_for

pytestmark = pytest.mark.skipif(not os.environ.get("HERINNERD_VALGRIND"),
                                reason="make check-valgrind runs this (HERINNERD_VALGRIND=1)")

TOP = Path(__file__).resolve().parents[2]


def config(pg, smtp, kannel, workdir, port, policy_extra=""):
    return f"""
instance = "memcheck";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>"; starttls = "no"; }};
sms: {{ url = "{kannel.sendsms_url}"; username = "{kannel.username}"; password = "{kannel.password}";
        sender = "Overheid"; }};
paper: {{ spool = "{workdir}/spool"; cutoff = "23:59"; }};
http: {{ listen = "127.0.0.1:{port}"; }};
policies = ( {{ name = "default"; kinds = [ "*" ];{policy_extra}
  steps = (
    {{ channel = "email"; after = "0s"; }},
    {{ channel = "sms"; after = "2s"; }},
    {{ channel = "paper"; after = "4s"; }}
  ); }} );
"""


def valgrind_wrapper(workdir):
    log = workdir / "valgrind.log"
    script = workdir / "herinnerd-valgrind"
    script.write_text(f"""#!/bin/sh
exec valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \\
  --errors-for-leak-kinds=definite,indirect --num-callers=30 --track-origins=yes \\
  --suppressions={TOP}/tests/valgrind.supp --gen-suppressions=all \\
  --log-file={log} {HERINNERD} "$@"
""")
    script.chmod(0o755)
    return script, log


def test_full_ladder_under_memcheck(pg, smtp, kannel, workdir):
    port = free_port()
    (workdir / "daemon1").mkdir()
    wrapper, log = valgrind_wrapper(workdir)
    d = Daemon(workdir / "daemon1", config(pg, smtp, kannel, workdir, port), binary=wrapper)
    try:
        d.start()
        d.wait_ready(timeout=90)
        r = pg.add_recipient("Jan de Vriës", email="jan@example.nl", mobile="+31612345678",
                             postal_address="Kerkstraat 1\n1234 AB Ĳsselstein")
        m = pg.add_message(r, subject="Aanslag inkomstenbelasting 2025")
        # a second message, read after its e-mail: the ladder stops
        m2 = pg.add_message(pg.add_recipient("Piet", email="piet@example.nl"))
        wait_for(lambda: pg.escalation(m) and pg.escalation(m)["state"] == "done", timeout=120,
                 what="the ladder to finish")
        wait_for(lambda: any(a["outcome"] == "delivered" for a in pg.attempts(m)), timeout=60,
                 what="the SMS delivery report")
        pg.mark_read(m2)
        # herinnerctl hands the letter over while the daemon runs
        out = herinnerctl("paper", "handover", config=d.config_path)
        assert out.returncode == 0, out.stderr
        # a reload with a changed file
        d.write_config(config(pg, smtp, kannel, workdir, port) + "# changed\n")
        d.sighup()
        wait_for(lambda: "reload" in d.log(), timeout=60, what="the reload")
        d.signal(signal.SIGTERM)
        status = d.wait_exit(timeout=120)
    finally:
        d.stop(timeout=120)
    report = log.read_text()
    assert status == 0, f"exit status {status}; valgrind:\n{report[-6000:]}"
    assert "ERROR SUMMARY: 0 errors" in report, report[-6000:]
