"""One reminder per person (a policy's `bundle`): a citizen with several unread messages whose
steps on one channel fall due within the window gets one e-mail / SMS naming them all; every
message keeps its own attempt row (sharing the notice's external id) and its own ladder. Read
messages drop out; without `bundle` nothing changes. Policies use seconds and minutes."""

import datetime
import os
import re
import signal
import subprocess
import time
from zoneinfo import ZoneInfo

import pytest

from harness import Daemon, free_port, herinnerctl, wait_for

ZONE = ZoneInfo("Europe/Amsterdam")

SUBJECTS = ["Aanslag inkomstenbelasting 2025", "Parkeervergunning", "Waterschapsbelasting"]
SENDERS = ["Belastingdienst", "Gemeente Súdwest-Fryslân", "Waterschap Aa en Maas"]


def config(pg, smtp=None, kannel=None, http_port=None, steps=None, bundle='"1h"'):
    steps = steps or ['{ channel = "email"; after = "0s"; }', '{ channel = "null"; after = "0s"; }']
    email = (f'email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>";'
             ' starttls = "no"; workers = 2; timeout = "10s"; };') if smtp else ""
    sms = (f'http: {{ listen = "127.0.0.1:{http_port}"; }};\n'
           f'sms: {{ url = "{kannel.sendsms_url}"; username = "{kannel.username}";'
           f' password = "{kannel.password}"; sender = "Overheid"; timeout = "5s"; }};'
           ) if kannel else ""
    return f"""
instance = "bundle-test";
timezone = "Europe/Amsterdam";
inbox_url = "https://mijn.overheid.nl";
database: {{ conninfo = "{pg.conninfo()}"; }};
{email}
{sms}
policies = (
  {{ name = "default"; kinds = [ "*" ]; {f"bundle = {bundle};" if bundle else ""}
     steps = ( {", ".join(steps)} ); }}
);
"""


def pdf_text(path):
    return subprocess.run(["pdftotext", "-q", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True, timeout=30).stdout


def three_messages(pg, recipient, created=(None, None, None)):
    return [pg.add_message(recipient, subject=s, sender=f, created_at=c)
            for s, f, c in zip(SUBJECTS, SENDERS, created)]


def first_attempts(pg, ids, channel):
    def found():
        rows = [next((a for a in pg.attempts(m) if a["channel"] == channel), None) for m in ids]
        return all(rows) and rows
    return wait_for(found, 15, what=f"a {channel} attempt for each of {ids}")


def test_three_unread_messages_one_email(pg, smtp, daemon):
    r = pg.add_recipient("Jan de Vries", email="jan@example.nl")
    other = pg.add_recipient("Piet", email="piet@example.nl")
    ids = three_messages(pg, r)
    alone = pg.add_message(other, subject="Huurtoeslag", sender="Toeslagen")
    d = daemon(config(pg, smtp))
    d.wait_ready()

    rows = first_attempts(pg, ids + [alone], "email")
    time.sleep(1)               # nothing else follows
    mails = smtp.messages()
    assert len(mails) == 2, [m["Subject"] for m in mails]
    mail = next(m for m in mails if m.envelope_to == ["jan@example.nl"])
    assert mail["Subject"] == "3 nieuwe berichten in uw Berichtenbox"
    body = mail.get_content()
    for sender, subject in zip(SENDERS, SUBJECTS):
        assert f"- {sender}: {subject}" in body
    assert "https://mijn.overheid.nl\n" in body     # the inbox, not one message's link
    # one attempt row each, all sharing the notice's Message-ID, each ladder on its own
    for row in rows[:3]:
        assert (row["step"], row["try"], row["outcome"]) == (0, 1, "sent")
        assert row["external_id"] == mail["Message-ID"]
        assert row["address"] == "jan@example.nl"
        assert "one notice about 3 messages" in row["detail"]
    for m in ids:
        wait_for(lambda: pg.escalation(m)["state"] == "done", what=f"ladder of {m} done")
    # the other citizen's single message: the wording of one
    single = next(m for m in mails if m.envelope_to == ["piet@example.nl"])
    assert single["Subject"] == "Nieuw bericht van Toeslagen: Huurtoeslag"
    assert rows[3]["external_id"] == single["Message-ID"]
    assert "one notice" not in rows[3]["detail"]


def test_steps_due_within_the_window_join_and_a_read_message_drops_out(pg, smtp, daemon):
    """The first step is due in a few seconds; the others within the 45-minute window join it,
    one due later stays for its own time, and one read meanwhile is not named."""
    r = pg.add_recipient("Jan de Vries", email="jan@example.nl")
    minutes = lambda n: datetime.timedelta(minutes=n)
    d = daemon(config(pg, smtp, steps=['{ channel = "email"; after = "1h"; }'], bundle='"45m"'))
    d.wait_ready()
    lead = pg.add_message(r, subject=SUBJECTS[0], sender=SENDERS[0],
                          created_at=-(minutes(60) - datetime.timedelta(seconds=4)))
    soon = pg.add_message(r, subject=SUBJECTS[1], sender=SENDERS[1], created_at=-minutes(50))
    later = pg.add_message(r, subject=SUBJECTS[2], sender=SENDERS[2], created_at=-minutes(20))
    read = pg.add_message(r, subject="Gelezen bericht", sender="DUO", created_at=-minutes(40))
    far = pg.add_message(r, subject="Te laat", sender="CJIB", created_at=minutes(0))
    for m in (lead, soon, later, read, far):
        wait_for(lambda: (pg.escalation(m) or {}).get("policy") == "default",
                 what=f"message {m} planned")
    pg.mark_read(read)
    wait_for(lambda: pg.escalation(read)["state"] == "read", what="read message stopped")

    mail = smtp.wait_messages(1, timeout=20)[0]
    body = mail.get_content()
    assert mail["Subject"] == "3 nieuwe berichten in uw Berichtenbox"
    for sender, subject in zip(SENDERS, SUBJECTS):
        assert f"- {sender}: {subject}" in body
    assert "Gelezen bericht" not in body and "CJIB" not in body
    rows = first_attempts(pg, [lead, soon, later], "email")
    assert {row["external_id"] for row in rows} == {mail["Message-ID"]}
    # each ladder moves on by itself: the policy has one step, so each is done
    for m in (lead, soon, later):
        wait_for(lambda: pg.escalation(m)["state"] == "done", what=f"ladder of {m} done")
    # the one outside the window waits for its own time, with no attempt yet
    assert pg.escalation(far)["state"] == "active" and pg.attempts(far) == []
    assert [a["outcome"] for a in pg.attempts(read)] == ["skipped"]
    time.sleep(1)
    assert len(smtp.messages()) == 1


def test_without_bundle_each_message_has_its_own_email(pg, smtp, daemon):
    r = pg.add_recipient("Jan de Vries", email="jan@example.nl")
    ids = three_messages(pg, r)
    d = daemon(config(pg, smtp, bundle=None))
    d.wait_ready()
    rows = first_attempts(pg, ids, "email")
    mails = smtp.wait_messages(3)
    assert sorted(m["Subject"] for m in mails) == sorted(
        f"Nieuw bericht van {f}: {s}" for f, s in zip(SENDERS, SUBJECTS))
    assert len({row["external_id"] for row in rows}) == 3


def test_three_unread_messages_one_sms(pg, kannel, daemon):
    port = free_port()
    r = pg.add_recipient("Jan de Vries", mobile="+31612345678")
    ids = three_messages(pg, r)
    d = daemon(config(pg, kannel=kannel, http_port=port,
                      steps=['{ channel = "sms"; after = "0s"; }']))
    d.wait_ready()
    rows = first_attempts(pg, ids, "sms")
    time.sleep(2)
    got = kannel.wait_received(1)
    assert len(got) == 1, got
    assert got[0]["text"].startswith("MijnOverheid: u heeft 3 nieuwe berichten in uw Berichtenbox.")
    assert got[0]["parts"] == 1
    assert len({row["external_id"] for row in rows}) == 1
    assert all(row["outcome"] == "sent" for row in rows)
    # the delivery reports name the leader; every message the SMS named gets them
    for m in ids:
        wait_for(lambda: {a["outcome"] for a in pg.attempts(m)} == {"sent", "accepted",
                                                                     "delivered"},
                 what=f"both reports for message {m}")
        reports = [a for a in pg.attempts(m) if a["outcome"] != "sent"]
        assert {a["external_id"] for a in reports} == {rows[0]["external_id"]}
        assert len(reports) == 2


# ---- paper: one letter, and still never a second letter for any (message, step) ----

def paper_config(pg, spool, bundle='"1h"', cutoff=None):
    cutoff = cutoff or (datetime.datetime.now(ZONE) + datetime.timedelta(hours=12)).strftime("%H:%M")
    return f"""
instance = "bundle-test";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
paper: {{ spool = "{spool}"; cutoff = "{cutoff}"; }};
policies = (
  {{ name = "default"; kinds = [ "*" ]; {f"bundle = {bundle};" if bundle else ""}
     steps = ( {{ channel = "paper"; after = "0s"; retry = {{ max = 5; backoff = "1s"; }}; }} ); }}
);
"""


def letter_rows(pg, ids):
    return {r["message_id"]: r for r in pg.query(
        "SELECT * FROM herinnerd.letters WHERE message_id = ANY(%s)", list(ids))}


def test_three_unread_messages_one_letter(pg, daemon, workdir):
    spool = workdir / "spool"
    r = pg.add_recipient("Jan de Vries", postal_address="Kerkstraat 1\n1234 AB IJsselstein")
    ids = three_messages(pg, r)
    d = daemon(paper_config(pg, spool))
    d.wait_ready()
    rows = first_attempts(pg, ids, "paper")
    lead = min(ids)
    pdf = spool / "pending" / f"{lead}-0.pdf"
    assert sorted(str(p.relative_to(spool)) for p in spool.rglob("*.pdf")) == [
        f"pending/{lead}-0.pdf"]
    text = " ".join(pdf_text(pdf).split())
    assert "staan 3 berichten die u nog niet hebt gelezen" in text
    for sender, subject in zip(SENDERS, SUBJECTS):
        assert f"- {sender}: {subject}" in text
    for row in rows:
        assert (row["outcome"], row["address"]) == ("queued", str(pdf))
        assert "one notice about 3 messages" in row["detail"]
    # every message has its letter row: the same file, the others pointing at the leader's
    letters = letter_rows(pg, ids)
    assert {(m, l["state"], l["file"], l["leader"]) for m, l in letters.items()} == {
        (m, "queued", str(pdf), None if m == lead else lead) for m in ids}

    # a step tried again (a replay, a takeover) finds its letter: no second one
    member = max(ids)
    pg.query("UPDATE herinnerd.escalations SET state = 'active', step = 0, tries = 0,"
             " next_at = now(), channel = 'paper' WHERE message_id = %s", member)
    pg.add_message(pg.add_recipient("Piet", postal_address="Dorpsstraat 2\n1234 AB Ergens"))
    wait_for(lambda: re.search(rf"message {member} step 0 try 1 paper to {re.escape(str(pdf))}:"
                               r" queued \(letter already in the spool\)", d.log()),
             what="the replayed step finds the letter")
    wait_for(lambda: pg.escalation(member)["state"] == "done", what="ladder done again")
    # a letter is queued once (attempts_paper_once): no second row, no second file
    assert [a["outcome"] for a in pg.attempts(member)] == ["queued"]
    assert list(spool.rglob(f"*{member}-0.pdf")) == []


def test_a_letter_naming_several_messages_goes_until_all_are_read(pg, daemon, workdir):
    spool = workdir / "spool"
    r = pg.add_recipient("Jan de Vries", postal_address="Kerkstraat 1\n1234 AB IJsselstein")
    ids = three_messages(pg, r)
    d = daemon(paper_config(pg, spool))
    d.wait_ready()
    first_attempts(pg, ids, "paper")
    lead = min(ids)
    pg.mark_read(lead)
    pg.mark_read(ids[1])
    time.sleep(1.5)
    assert (spool / "pending" / f"{lead}-0.pdf").exists()  # still wanted for the third
    pg.mark_read(ids[2])
    wait_for(lambda: (spool / "withdrawn" / f"{lead}-0.pdf").exists(), what="letter withdrawn")
    wait_for(lambda: {l["state"] for l in letter_rows(pg, ids).values()} == {"withdrawn"},
             what="every letter row withdrawn")
    # each message has the withdrawal on record, the same file
    for m in ids:
        rows = wait_for(lambda: [a for a in pg.attempts(m) if a["outcome"] == "withdrawn"],
                        what=f"withdrawn attempt of {m}")
        assert len(rows) == 1
        assert rows[0]["address"] == str(spool / "withdrawn" / f"{lead}-0.pdf")


def test_handover_moves_every_row_of_a_bundled_letter(pg, daemon, workdir):
    spool = workdir / "spool"
    r = pg.add_recipient("Jan de Vries", postal_address="Kerkstraat 1\n1234 AB IJsselstein")
    ids = three_messages(pg, r)
    d = daemon(paper_config(pg, spool))
    d.wait_ready()
    first_attempts(pg, ids, "paper")
    out = herinnerctl("paper", "handover", config=d.config_path)
    assert out.returncode == 0, out.stderr
    assert "1 letters handed over, 1 recorded" in out.stdout
    assert {l["state"] for l in letter_rows(pg, ids).values()} == {"handed-over"}
    for m in ids:
        assert [a["outcome"] for a in pg.attempts(m)] == ["queued", "handed-over"]


def test_the_daemon_hands_over_a_bundled_letter_at_the_cutoff(pg, daemon, workdir):
    spool = workdir / "spool"
    r = pg.add_recipient("Jan de Vries", postal_address="Kerkstraat 1\n1234 AB IJsselstein")
    ids = three_messages(pg, r)
    # the next whole minute, at least 10 s away: the letter is queued well before it
    at = datetime.datetime.now(ZONE) + datetime.timedelta(seconds=70)
    d = daemon(paper_config(pg, spool, cutoff=at.strftime("%H:%M")))
    d.wait_ready()
    first_attempts(pg, ids, "paper")
    for m in ids:
        wait_for(lambda: [a["outcome"] for a in pg.attempts(m)] == ["queued", "handed-over"],
                 timeout=90, what=f"handed-over attempt of {m}")
    wait_for(lambda: {l["state"] for l in letter_rows(pg, ids).values()} == {"handed-over"},
             what="every letter row handed over")


def test_without_bundle_each_message_has_its_own_letter(pg, daemon, workdir):
    spool = workdir / "spool"
    r = pg.add_recipient("Jan de Vries", postal_address="Kerkstraat 1\n1234 AB IJsselstein")
    ids = three_messages(pg, r)
    d = daemon(paper_config(pg, spool, bundle=None))
    d.wait_ready()
    first_attempts(pg, ids, "paper")
    assert sorted(p.name for p in spool.rglob("*.pdf")) == sorted(f"{m}-0.pdf" for m in ids)


def test_a_bounce_of_a_bundled_email_fails_every_message_it_named(pg, smtp, daemon, workdir):
    from test_bounce import bounce
    conf = workdir / "bounce.conf"
    conf.write_text(f"""
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@gemeente.example>";
         starttls = "no"; return_path = "bounces+{{token}}@gemeente.example"; }};
policies = ( {{ name = "default"; kinds = [ "*" ]; bundle = "1h";
  steps = ( {{ channel = "email"; after = "0s"; }}, {{ channel = "null"; after = "1h"; }} ); }} );
""")
    r = pg.add_recipient("Jan", email="jan@example.nl")
    ids = three_messages(pg, r)
    d = daemon(conf.read_text())
    d.wait_ready()
    rows = first_attempts(pg, ids, "email")
    external = rows[0]["external_id"]
    token = re.fullmatch(r"<herinnerd\.([0-9a-f]{32})@gemeente\.example>", external)[1]
    out = bounce(conf, "postfix-failed.eml", token, f"bounces+{token}@gemeente.example")
    assert out.returncode == 0, out.stderr
    for m in ids:
        assert f"message {m} step 0: permanent-failure" in out.stdout
        failure = [a for a in pg.attempts(m) if a["outcome"] == "permanent-failure"]
        assert len(failure) == 1 and failure[0]["external_id"] == external
        # each ladder moves on now, not in an hour
        wait_for(lambda: any(a["step"] == 1 for a in pg.attempts(m)),
                 what=f"step 1 of {m} brought forward")
    again = bounce(conf, "postfix-failed.eml", token, f"bounces+{token}@gemeente.example")
    assert again.returncode == 0 and again.stdout.count("recorded already") == 3, again.stdout


@pytest.mark.skipif(not os.environ.get("HERINNERD_VALGRIND"),
                    reason="make check-valgrind runs this (HERINNERD_VALGRIND=1)")
def test_bundles_under_memcheck(pg, smtp, kannel, workdir):
    """Every channel's bundle (with its reports, withdrawal and hand-over) leaks nothing."""
    from test_memcheck import config as memcheck_config, valgrind_wrapper
    port = free_port()
    (workdir / "daemon1").mkdir()
    wrapper, log = valgrind_wrapper(workdir)
    text = memcheck_config(pg, smtp, kannel, workdir, port, policy_extra=' bundle = "1h";')
    r = pg.add_recipient("Jan", email="jan@example.nl", mobile="+31612345678",
                         postal_address="Kerkstraat 1\n1234 AB IJsselstein")
    ids = three_messages(pg, r)
    other = pg.add_recipient("Piet", postal_address="Dorpsstraat 2\n1234 AB Ergens",
                             email="piet@example.nl")
    pair = [pg.add_message(other), pg.add_message(other)]
    d = Daemon(workdir / "daemon1", text, binary=wrapper)
    try:
        d.start()
        d.wait_ready(timeout=90)
        wait_for(lambda: all((pg.escalation(m) or {}).get("state") == "done" for m in ids), timeout=180,
                 what="the ladders to finish")
        wait_for(lambda: all(any(a["outcome"] == "delivered" for a in pg.attempts(m))
                             for m in ids), timeout=60, what="the SMS delivery reports")
        for channel in ("email", "sms", "paper"):
            rows = first_attempts(pg, ids, channel)
            assert all("one notice about 3 messages" in a["detail"] for a in rows), rows
        first_attempts(pg, pair, "paper")
        for m in pair:
            pg.mark_read(m)
        wait_for(lambda: all(any(a["outcome"] == "withdrawn" for a in pg.attempts(m))
                             for m in pair), timeout=60, what="the letter withdrawn")
        out = herinnerctl("paper", "handover", config=d.config_path)
        assert out.returncode == 0, out.stderr
        d.signal(signal.SIGTERM)
        status = d.wait_exit(timeout=120)
    finally:
        d.stop(timeout=120)
    report = log.read_text()
    assert status == 0, f"exit status {status}; valgrind:\n{report[-6000:]}"
    assert "ERROR SUMMARY: 0 errors" in report, report[-6000:]


def test_explain_says_a_policy_bundles(pg, smtp, workdir):
    conf = workdir / "explain.conf"
    conf.write_text(config(pg, smtp, bundle='"2d"'))
    out = herinnerctl("explain", "brief", config=conf)
    assert out.returncode == 0, out.stderr
    assert ("one notice per person: the recipient's other unread messages whose steps on the "
            "same channel fall due within 2d go in the same e-mail, SMS or letter.") in out.stdout
    conf.write_text(config(pg, smtp, bundle=None))
    assert "one notice per person" not in herinnerctl("explain", "brief", config=conf).stdout


def test_a_bundle_whose_sender_died_is_in_doubt_for_each_and_sent_again(pg, daemon):
    """SIGKILL while the one e-mail of a bundle is on its way: when the claim runs out, another
    process records in-doubt for every message it named and sends them again, together."""
    from test_claims import SlowSmtp
    with SlowSmtp(3.0) as smtp:
        text = config(pg, smtp).replace('instance = "bundle-test";', 'lease = "2s";')
        r = pg.add_recipient("Jan de Vries", email="jan@example.nl")
        ids = three_messages(pg, r)
        a = daemon(text)
        a.wait_ready()
        wait_for(lambda: all((pg.escalation(m) or {}).get("claim") for m in ids),
                 what="the bundle claimed")
        time.sleep(1)                     # the mail is on its way
        a.signal(signal.SIGKILL)
        a.wait_exit(10)
        b = daemon(text)
        b.wait_ready()
        for m in ids:
            wait_for(lambda: (pg.escalation(m) or {}).get("state") == "done", timeout=30,
                     what=f"ladder of {m} done")
        sent = []
        for m in ids:
            outcomes = [x["outcome"] for x in pg.attempts(m) if x["step"] == 0]
            assert outcomes == ["in-doubt", "sent"], (m, outcomes)
            sent += [x for x in pg.attempts(m) if x["outcome"] == "sent" and x["step"] == 0]
        assert len({x["external_id"] for x in sent}) == 1
        assert all("one notice about 3 messages" in x["detail"] for x in sent)
