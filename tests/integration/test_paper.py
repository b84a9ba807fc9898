"""The paper channel end to end: a real PostgreSQL, the built daemon and herinnerctl, the spool
on disk (DESIGN.md section 8). The letter must never be sent twice: the tests below crash,
break and double the daemon and count files and attempt rows."""

import csv
import datetime
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from harness import herinnerctl, wait_for

ZONE = ZoneInfo("Europe/Amsterdam")
ADDRESS = "Kerkstraat 1\n1234 AB IJsselstein"


def far_cutoff():
    """A cut-off twelve hours from now: the daemon's own timer never fires during a test."""
    t = datetime.datetime.now(ZONE) + datetime.timedelta(hours=12)
    return t.strftime("%H:%M")


def today():
    return datetime.datetime.now(ZONE).strftime("%Y-%m-%d")


def config(pg, spool, instance="test-1", steps=None, cutoff=None, lease="5m", paper_extra=""):
    steps = steps or ['{ channel = "paper"; after = "0s"; retry = { max = 5; backoff = "1s"; }; }']
    return f"""
instance = "{instance}";
lease = "{lease}";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
paper: {{ spool = "{spool}"; cutoff = "{cutoff or far_cutoff()}"; {paper_extra} }};
policies = (
  {{ name = "default"; kinds = [ "*" ]; steps = ( {", ".join(steps)} ); }}
);
"""


def paper_attempts(pg, message_id, outcome=None):
    return [a for a in pg.attempts(message_id)
            if a["channel"] == "paper" and (outcome is None or a["outcome"] == outcome)]


def wait_outcome(pg, message_id, outcome, n=1, timeout=20):
    return wait_for(lambda: len(paper_attempts(pg, message_id, outcome)) >= n
                    and paper_attempts(pg, message_id, outcome),
                    timeout, what=f"{n} {outcome} attempts for message {message_id}")


def pdf_text(path):
    return subprocess.run(["pdftotext", "-q", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True, timeout=30).stdout


def letters(spool):
    """Every letter file in the spool (any place), as paths relative to the spool."""
    return sorted(str(p.relative_to(spool)) for p in Path(spool).rglob("*.pdf"))


def done(pg, *ms):
    """Every escalation of ms has finished its ladder."""
    return all((pg.escalation(m) or {}).get("state") == "done" for m in ms)


def start(daemon, pg, spool, **kw):
    d = daemon(config(pg, spool, **kw))
    d.wait_ready()
    return d


def test_letter_is_queued_with_address_and_subject(pg, daemon, workdir):
    spool = workdir / "spool"
    start(daemon, pg, spool)
    r = pg.add_recipient("Jan de Vriës", postal_address=ADDRESS)
    m = pg.add_message(r, subject="Aanslag inkomstenbelasting 2025", sender="Belastingdienst")

    queued = wait_outcome(pg, m, "queued")[0]
    pdf = spool / "pending" / f"{m}-0.pdf"
    assert queued["address"] == str(pdf)
    assert queued["detail"].startswith("letter queued for the cut-off at ")
    assert queued["instance"] == "test-1"
    text = pdf_text(pdf)
    for needle in ("Jan de Vriës", "Kerkstraat 1", "1234 AB IJsselstein",
                   "Aanslag inkomstenbelasting 2025", "Belastingdienst"):
        assert needle in text
    assert letters(spool) == [f"pending/{m}-0.pdf"]
    assert os.listdir(spool / "tmp") == []
    row = pg.query("SELECT state, file FROM herinnerd.letters WHERE message_id = %s", m)[0]
    assert (row["state"], row["file"]) == ("queued", str(pdf))
    wait_for(lambda: done(pg, m), what="ladder done")


def test_read_before_the_cutoff_withdraws_the_letter(pg, daemon, workdir):
    spool = workdir / "spool"
    start(daemon, pg, spool)
    m = pg.add_message(pg.add_recipient("Jan", postal_address=ADDRESS))
    wait_outcome(pg, m, "queued")

    pg.mark_read(m)
    withdrawn = wait_outcome(pg, m, "withdrawn")[0]
    assert withdrawn["detail"].startswith("read at ")
    assert withdrawn["address"] == str(spool / "withdrawn" / f"{m}-0.pdf")
    assert letters(spool) == [f"withdrawn/{m}-0.pdf"]
    state = pg.query("SELECT state FROM herinnerd.letters WHERE message_id = %s", m)[0]["state"]
    assert state == "withdrawn"


def test_a_letter_whose_writer_died_before_writing_is_settled_when_read(pg, daemon, workdir):
    """An instance claimed a letter (row 'writing') and died before its file existed; the
    message is read before anyone took the step over. Seen in the chaos run: the row stayed
    'writing' for ever. Now it says 'unwritten', and no letter is in the spool."""
    spool = workdir / "spool"
    d = start(daemon, pg, spool, steps=['{ channel = "paper"; after = "30d"; }'])
    m = pg.add_message(pg.add_recipient("Jan", postal_address=ADDRESS))
    wait_for(lambda: pg.escalation(m), 20, what="the escalation")
    # the dead writer's row: a claim no escalation holds any more
    pg.query("INSERT INTO herinnerd.letters (message_id, step, instance, state, claim)"
             " VALUES (%s, 0, 'gone', 'writing', 'gone.1')", m)

    pg.mark_read(m)
    wait_for(lambda: pg.query("SELECT state FROM herinnerd.letters WHERE message_id = %s",
                              m)[0]["state"] != "writing", 20, what="the letter row to settle")
    row = pg.query("SELECT state, file FROM herinnerd.letters WHERE message_id = %s", m)[0]
    assert row == {"state": "unwritten", "file": None}
    assert letters(spool) == []
    assert not paper_attempts(pg, m, "withdrawn")     # nothing was withdrawn: nothing existed
    assert "never written" in d.log()


def test_handover_by_herinnerctl_while_the_daemon_runs(pg, daemon, workdir):
    spool = workdir / "spool"
    d = start(daemon, pg, spool)
    r = pg.add_recipient("Jan", postal_address=ADDRESS)
    ms = [pg.add_message(r) for _ in range(3)]
    for m in ms:
        wait_outcome(pg, m, "queued")

    out = herinnerctl("paper", "handover", config=d.config_path)
    assert out.returncode == 0, out.stderr
    assert "3 letters handed over, 3 recorded" in out.stdout
    day = spool / "handed-over" / today()
    assert letters(spool) == sorted(f"handed-over/{today()}/{m}-0.pdf" for m in ms)
    with open(day / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(row["message_id"]) for row in rows) == sorted(ms)
    for m in ms:
        (h,) = paper_attempts(pg, m, "handed-over")
        (q,) = paper_attempts(pg, m, "queued")
        assert h["detail"] == f"handed over to the print house on {today()}"
        assert h["address"] == str(day / f"{m}-0.pdf")
        assert (h["try"], h["config_sha256"]) == (q["try"], q["config_sha256"])

    manifest = (day / "manifest.csv").read_bytes()
    count = len(pg.attempts())
    again = herinnerctl("paper", "handover", config=d.config_path)
    assert again.returncode == 0, again.stderr
    assert "0 letters handed over" in again.stdout
    assert len(pg.attempts()) == count
    assert (day / "manifest.csv").read_bytes() == manifest

    # read after the hand-over: too late to withdraw, and nothing is recorded as withdrawn
    pg.mark_read(ms[0])
    time.sleep(1)
    assert paper_attempts(pg, ms[0], "withdrawn") == []
    assert (day / f"{ms[0]}-0.pdf").exists()


def test_the_daemon_hands_over_at_the_cutoff(pg, daemon, workdir):
    spool = workdir / "spool"
    # the next whole minute, at least 10 s away: the letter is queued well before it
    at = datetime.datetime.now(ZONE) + datetime.timedelta(seconds=70)
    at = at.replace(second=0, microsecond=0)
    d = start(daemon, pg, spool, cutoff=at.strftime("%H:%M"))
    m = pg.add_message(pg.add_recipient("Jan", postal_address=ADDRESS))
    wait_outcome(pg, m, "queued")
    assert (spool / "pending" / f"{m}-0.pdf").exists()

    (h,) = wait_outcome(pg, m, "handed-over", timeout=90)
    day = at.strftime("%Y-%m-%d")
    assert h["address"] == str(spool / "handed-over" / day / f"{m}-0.pdf")
    assert h["detail"] == f"handed over to the print house on {day}"
    assert letters(spool) == [f"handed-over/{day}/{m}-0.pdf"]
    assert (spool / "handed-over" / day / "manifest.csv").read_text().count(f"{m}-0.pdf") == 1
    # and the timer is armed for the next day
    d.wait_log("1 letters handed over to the print house")
    assert d.log().count("paper: next cut-off at") == 2


def test_no_postal_address_is_a_permanent_failure(pg, daemon, workdir):
    spool = workdir / "spool"
    start(daemon, pg, spool)
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    (a,) = wait_outcome(pg, m, "permanent-failure")
    assert a["detail"] == "no postal address"

    # an address the envelope window cannot show is refused too, with the reason
    long = "\n".join(f"Regel {i}" for i in range(14))
    m2 = pg.add_message(pg.add_recipient("Piet", postal_address=long))
    (b,) = wait_outcome(pg, m2, "permanent-failure")
    assert "does not fit the envelope window" in b["detail"]
    assert letters(spool) == []
    assert os.listdir(spool / "tmp") == []


def test_unwritable_spool_is_retried_and_queued_once(pg, daemon, workdir):
    spool = workdir / "spool"
    d = start(daemon, pg, spool)
    # tests run as root, so permissions would not stop us: a file where pending/ should be does
    pending = spool / "pending"
    os.rmdir(pending)
    pending.write_text("not a directory\n")

    m = pg.add_message(pg.add_recipient("Jan", postal_address=ADDRESS))
    (t,) = wait_outcome(pg, m, "temporary-failure")
    assert "Not a directory" in t["detail"]
    assert paper_attempts(pg, m, "queued") == []
    assert os.listdir(spool / "tmp") == []

    pending.unlink()
    pending.mkdir()
    wait_outcome(pg, m, "queued", timeout=30)
    wait_for(lambda: done(pg, m), what="ladder done")
    assert len(paper_attempts(pg, m, "queued")) == 1
    assert letters(spool) == [f"pending/{m}-0.pdf"]
    assert d.running


def test_sigkill_while_writing_leaves_one_letter_each(pg, daemon, workdir):
    spool = workdir / "spool"
    r = pg.add_recipient("Jan", postal_address=ADDRESS)
    ms = [pg.add_message(r, subject=f"Bericht {i}") for i in range(40)]
    # a restart takes over only claims that ran out (issue 6): a short lease keeps this quick
    d = daemon(config(pg, spool, lease="2s"))
    # killed as soon as the first letter is there: the others are being written or waiting
    wait_for(lambda: any((spool / "pending").glob("*.pdf")) if (spool / "pending").exists()
             else False, timeout=20, interval=0.005, what="the first letter")
    d.signal(signal.SIGKILL)
    assert d.wait_exit() == -signal.SIGKILL
    before = len(letters(spool))
    assert before < len(ms), "every letter was written before the kill: the test proves nothing"

    d.start()
    d.wait_ready()
    wait_for(lambda: done(pg, *ms), timeout=60,
             what="all ladders done after the restart")
    assert letters(spool) == sorted(f"pending/{m}-0.pdf" for m in ms)
    for m in ms:
        assert len(paper_attempts(pg, m, "queued")) == 1, paper_attempts(pg, m)
    # what the killed process had claimed and not recorded is on record as in-doubt
    assert paper_attempts(pg, None, "in-doubt")
    states = pg.query("SELECT state, count(*) FROM herinnerd.letters GROUP BY state")
    assert [(s["state"], s["count"]) for s in states] == [("queued", len(ms))]
    assert os.listdir(spool / "tmp") == []


def test_two_instances_share_the_work_and_write_each_letter_once(pg, daemon, workdir):
    spool = workdir / "spool"
    a = daemon(config(pg, spool, instance="a"))
    b = daemon(config(pg, spool, instance="b"))
    a.wait_ready()
    b.wait_ready()
    r = pg.add_recipient("Jan", postal_address=ADDRESS)
    ms = [pg.add_message(r, subject=f"Bericht {i}") for i in range(20)]
    wait_for(lambda: done(pg, *ms), timeout=60,
             what="all ladders done")

    assert letters(spool) == sorted(f"pending/{m}-0.pdf" for m in ms)
    queued = [a for a in pg.attempts() if a["outcome"] == "queued"]
    assert sorted(q["message_id"] for q in queued) == sorted(ms)
    rows = pg.query("SELECT instance, state FROM herinnerd.letters")
    assert len(rows) == 20 and {row["state"] for row in rows} == {"queued"}
    assert {q["instance"] for q in queued} <= {"a", "b"}
    assert os.listdir(spool / "tmp") == []


# The field's case: five valid lines, one of 68 characters. It ended the ladder with "does not fit
# the envelope window (6 lines)"; the cause was width.
LONG_LINE = "Koninklijke Nederlandse Akademie van Wetenschappen, afdeling Archief"
LONG_ADDRESS = f"T.a.v. Financiële Administratie\n{LONG_LINE}\nPostbus 19121\n1000 GC Amsterdam\nNederland"


def test_a_long_address_line_wraps_the_name_once_and_a_contact_line(pg, daemon, workdir):
    assert len(LONG_LINE) == 68
    spool = workdir / "spool"
    start(daemon, pg, spool, paper_extra='contact = "Vragen? Bel 14 058 (werkdagen 8.00-17.00 uur).";')
    m = pg.add_message(pg.add_recipient("KNAW", postal_address=LONG_ADDRESS))
    queued = wait_outcome(pg, m, "queued")[0]
    text = pdf_text(queued["address"])
    assert "Koninklijke Nederlandse Akademie" in text and "afdeling Archief" in text
    assert "1000 GC Amsterdam" in text
    assert "Vragen? Bel 14 058 (werkdagen 8.00-17.00 uur)." in text
    wait_for(lambda: done(pg, m), what="ladder done")

    # the address starts with the name: printed once
    r = pg.add_recipient("Jan de Vriës", postal_address="Jan de Vriës\n" + ADDRESS)
    m2 = pg.add_message(r)
    text = pdf_text(wait_outcome(pg, m2, "queued")[0]["address"])
    assert text.count("Jan de Vriës") == 1


def test_an_address_that_cannot_fit_is_refused_naming_the_line(pg, daemon, workdir):
    spool = workdir / "spool"
    start(daemon, pg, spool)
    m = pg.add_message(pg.add_recipient("Jan", postal_address="Kerkstraat 1\n"
                                        "Wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww\n1234 AB Utrecht"))
    failed = wait_for(lambda: [a for a in paper_attempts(pg, m) if a["outcome"] == "permanent-failure"],
                      what="a refusal")[0]
    assert "postal address line 2 (" in failed["detail"] and "mm wide" in failed["detail"]
    assert letters(spool) == []


def test_manifest_has_country_and_pages(pg, daemon, workdir):
    spool = workdir / "spool"
    d = start(daemon, pg, spool)
    home = pg.add_message(pg.add_recipient("Jan", postal_address=ADDRESS))
    abroad = pg.add_message(pg.add_recipient("Jan Peeters",
                                             postal_address="Wetstraat 16\n1000 Brussel\nBELGIË"))
    for m in (home, abroad):
        wait_outcome(pg, m, "queued")
    out = herinnerctl("paper", "handover", config=d.config_path)
    assert out.returncode == 0, out.stderr
    with open(spool / "handed-over" / today() / "manifest.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = {int(row[1]): row for row in reader}
    # appended at the end: readers of the first five columns keep working
    assert header == ["file", "message_id", "step", "sha256", "bytes", "country", "pages"]
    assert rows[home][5:] == ["NL", "1"]
    assert rows[abroad][5:] == ["BE", "1"]
    for row in rows.values():
        pages = subprocess.run(["pdfinfo", str(spool / "handed-over" / today() / row[0])],
                               capture_output=True, text=True, check=True).stdout
        assert re.search(rf"^Pages:\s+{row[6]}$", pages, re.M), pages
