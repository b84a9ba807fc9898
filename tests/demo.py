#!/usr/bin/python3
"""`make demo`: herinnerd escalating for real, in about a minute.

Starts a private PostgreSQL, an SMTP sink (Postfix's smtp-sink), a Kannel SMS gateway with its
fake SMSC, and a paper spool, all on loopback in a temporary directory; loads a few unread
messages; runs the daemon in the foreground with a fast demo policy (seconds instead of days);
and shows every e-mail, SMS, letter and attempt as it happens, including a message that is read
halfway and stops its ladder. Everything started is stopped at the end.
"""

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zoneinfo
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builddir", default=str(HERE.parent))
    ap.add_argument("--srcdir", default=str(HERE.parent))
    ap.add_argument("--keep", action="store_true", help="keep the demo directory")
    return ap.parse_args()


args = parse_args()
os.environ.setdefault("HERINNERD_TOP", args.srcdir)
os.environ.setdefault("HERINNERD_BUILDDIR", args.builddir)
sys.path.insert(0, str(Path(args.srcdir) / "tests" / "integration"))
from harness import HERINNERCTL, Daemon, Kannel, Postgres, SmtpSink, free_port, herinnerctl  # noqa: E402

BOLD, DIM, GREEN, YELLOW, RED, OFF = ("\033[1m", "\033[2m", "\033[32m", "\033[33m", "\033[31m", "\033[0m") \
    if sys.stdout.isatty() else ("",) * 6


# the daemon's `timezone`: every time the demo shows is in it, with its offset
ZONE = "Europe/Amsterdam"


def clock(t):
    """'16:34:02+01:00': a time of day in ZONE, with the offset."""
    return t.astimezone(zoneinfo.ZoneInfo(ZONE)).isoformat(timespec="seconds")[11:]


def say(text):
    print(f"{BOLD}==> {text}{OFF}", flush=True)


def config(pg, smtp, kannel, spool, http_port):
    return f"""
instance = "demo";
timezone = "{ZONE}";
inbox_url = "https://mijn.overheid.nl/berichtenbox";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@mijn.overheid.nl>";
          starttls = "no"; workers = 2; }};
sms: {{ url = "{kannel.sendsms_url}"; username = "{kannel.username}"; password = "{kannel.password}";
        sender = "Overheid"; }};
paper: {{ spool = "{spool}"; cutoff = "23:59"; }};
http: {{ listen = "127.0.0.1:{http_port}"; }};
policies = (
  {{ name = "demo"; kinds = [ "*" ];
     steps = (
       {{ channel = "email"; after = "0s"; }},
       {{ channel = "email"; after = "6s"; template = "reminder"; }},
       {{ channel = "sms";   after = "12s"; template = "reminder"; }},
       {{ channel = "paper"; after = "18s"; }}
     ); }}
);
"""


def show_attempt(a, names):
    colour = GREEN if a["outcome"] in ("sent", "delivered", "queued", "handed-over") else \
        YELLOW if a["outcome"] in ("skipped", "temporary-failure", "withdrawn") else RED
    to = f" -> {a['address']}" if a["address"] else ""
    print(f"  {DIM}{clock(a['created_at'])}{OFF} {names[a['message_id']]:<22} step {a['step']} "
          f"{a['channel']:<5} {colour}{a['outcome']:<17}{OFF} {a['detail']}{to}", flush=True)


def main():
    root = Path(tempfile.mkdtemp(prefix="herinnerd-demo-"))
    os.chmod(root, 0o777)
    started = []
    try:
        say(f"Starting PostgreSQL, smtp-sink, Kannel and a paper spool in {root}")
        pg = Postgres(root)
        pg.start()
        started.append(pg)
        smtp = SmtpSink(root)
        smtp.start()
        started.append(smtp)
        kannel = Kannel(root / "kannel")
        kannel.start()
        started.append(kannel)
        spool = root / "spool"

        say("Loading unread messages")
        people = [
            ("Jan de Vriës", "jan@example.nl", "+31612345678", "Kerkstraat 1\n1234 AB Ĳsselstein",
             "Aanslag inkomstenbelasting 2025", "Belastingdienst"),
            ("Fatima el Amrani", "fatima@example.nl", "+31687654321", "Dorpsweg 7\n4321 BA Utrecht",
             "Uw parkeervergunning", "Gemeente Utrecht"),
            ("Kees Zonder-Mail", None, "+31611122233", "Havenstraat 12\n3011 AA Rotterdam",
             "Beschikking zorgtoeslag", "Dienst Toeslagen"),
        ]
        names = {}
        for name, mail, mobile, postal, subject, sender in people:
            r = pg.add_recipient(name, email=mail, mobile=mobile, postal_address=postal)
            m = pg.add_message(r, subject=subject, sender=sender,
                               link=f"https://mijn.overheid.nl/berichtenbox/{r}")
            names[m] = name
            print(f"  message {m}: {sender} -> {name}: {subject!r}")

        say("Starting herinnerd (foreground; its log is in " + str(root / "daemon" / "daemon.log") + ")")
        d = Daemon(root / "daemon", config(pg, smtp, kannel, spool, free_port()))
        d.start()
        started.append(d)
        d.wait_ready(timeout=20)
        print(f"  READY=1, {d.wait_notify('STATUS=Connected')}")

        say("Watching the ladders: e-mail at 0 s, reminder at 6 s, SMS at 12 s, letter at 18 s"
            f" (times in {ZONE})")
        seen, mails_seen, sms_seen, read_done = 0, 0, 0, False
        reader = next(m for m, n in names.items() if n.startswith("Fatima"))
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            for a in pg.attempts()[seen:]:
                show_attempt(a, names)
                seen += 1
            for msg in smtp.messages()[mails_seen:]:
                print(f"    {DIM}e-mail to {msg['To']}: Subject: {msg['Subject']}{OFF}")
                mails_seen += 1
            for sms in kannel.received()[sms_seen:]:
                print(f"    {DIM}SMS to {sms['to']}: {sms['text']}{OFF}")
                sms_seen += 1
            if not read_done and mails_seen >= 2:
                time.sleep(1)
                pg.mark_read(reader)
                read_done = True
                say(f"{names[reader]} reads message {reader}: her ladder stops")
            states = {r["state"] for r in pg.query("SELECT state FROM herinnerd.escalations")}
            if read_done and states and "active" not in states and seen == len(pg.attempts()):
                break
            time.sleep(0.3)

        letters = sorted((spool / "pending").glob("*.pdf")) if (spool / "pending").exists() else []
        for letter in letters:
            text = subprocess.run(["pdftotext", str(letter), "-"], capture_output=True, text=True).stdout
            say(f"Letter {letter.name} in the spool; the envelope window reads:")
            for line in text.splitlines()[:12]:
                if line.strip():
                    print(f"    {line}")
        if letters:
            say("Cut-off forced now: herinnerctl paper handover")
            print(herinnerctl("paper", "handover", config=d.config_path).stdout, end="")
            for a in pg.attempts()[seen:]:
                show_attempt(a, names)

        say("What a help desk sees: herinnerctl status")
        for m in names:
            print(herinnerctl("status", m, config=d.config_path).stdout, end="")
        say("Stopping herinnerd (SIGTERM: finish in-flight sends, then exit)")
        d.sigterm()
        print(f"  exit status {d.wait_exit()}")
    finally:
        for thing in reversed(started):
            thing.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
