"""Bounces steer the ladder: each e-mail goes out with its own envelope sender (VERP,
email.return_path), and `herinnerctl bounce` reads a delivery status notification (the Postfix
and Exim samples in tests/dsn/, given the token of a real send) for a Postfix pipe transport."""

import re
import subprocess

from harness import HERINNERCTL, TOP, wait_for

SAMPLE_TOKEN = "0123456789abcdef0123456789abcdef"


def write_config(workdir, pg, smtp, return_path='return_path = "bounces+{token}@gemeente.example";'):
    path = workdir / "bounce.conf"
    path.write_text(f"""
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@gemeente.example>";
         starttls = "no"; {return_path} }};
policies = ( {{ name = "default"; kinds = [ "*" ];
  steps = ( {{ channel = "email"; after = "0s"; }}, {{ channel = "null"; after = "1h"; }} ); }} );
""")
    return path


def bounce(conf, sample, token, *args):
    """herinnerctl bounce ARGS with tests/dsn/SAMPLE, made about the e-mail with TOKEN, on stdin."""
    text = (TOP / "tests" / "dsn" / sample).read_text().replace(SAMPLE_TOKEN, token)
    return subprocess.run([str(HERINNERCTL), "-c", str(conf), "bounce", *args], input=text,
                          capture_output=True, text=True, timeout=60)


def sent_mail(pg, smtp, daemon, workdir, **kw):
    conf = write_config(workdir, pg, smtp, **kw)
    d = daemon(conf.read_text())
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    wait_for(lambda: (pg.escalation(m) or {}).get("step") == 1, what="e-mail sent")
    sent = pg.attempts(m)[0]
    token = re.fullmatch(r"<herinnerd\.([0-9a-f]{32})@gemeente\.example>", sent["external_id"])[1]
    return conf, d, m, sent, token


def test_each_mail_has_its_own_envelope_sender(pg, smtp, daemon, workdir):
    conf, d, m, sent, token = sent_mail(pg, smtp, daemon, workdir)
    mail = smtp.wait_messages(1)[0]
    assert mail.envelope_from == f"bounces+{token}@gemeente.example"
    assert mail["Message-ID"] == sent["external_id"]
    assert mail["From"] == "MijnOverheid <noreply@gemeente.example>"      # unchanged


def test_a_postfix_bounce_fails_the_mail_and_brings_the_next_step_forward(pg, smtp, daemon, workdir):
    conf, d, m, sent, token = sent_mail(pg, smtp, daemon, workdir)
    planned = pg.escalation(m)["next_at"]
    # the pipe transport passes ${recipient}: the VERP address
    r = bounce(conf, "postfix-failed.eml", token, f"bounces+{token}@gemeente.example")
    assert r.returncode == 0, r.stderr
    assert f"message {m} step 0: permanent-failure" in r.stdout
    assert "the next step is due now" in r.stdout
    rows = pg.attempts(m)
    failure = rows[1]
    assert (failure["step"], failure["try"], failure["channel"], failure["outcome"]) == \
        (0, 1, "email", "permanent-failure")
    assert failure["detail"] == ("bounce 5.1.1 (failed): 550 5.1.1 <jan@example.nl>: Recipient "
                                 "address rejected: User unknown in virtual mailbox table")
    assert failure["external_id"] == sent["external_id"]
    assert failure["address"] == "jan@example.nl"
    assert failure["fact"] == f"bounce:{sent['external_id']}:5.1.1"
    # the daemon hears of it and runs step 1 now, not in an hour
    step1 = wait_for(lambda: next((a for a in pg.attempts(m) if a["step"] == 1), None),
                     what="step 1 brought forward")
    assert (planned - step1["created_at"]).total_seconds() > 55 * 60

    # Postfix may deliver the same bounce twice: recorded once
    r = bounce(conf, "postfix-failed.eml", token, f"bounces+{token}@gemeente.example")
    assert r.returncode == 0 and "recorded already" in r.stdout, r.stdout + r.stderr
    assert len([a for a in pg.attempts(m) if a["outcome"] == "permanent-failure"]) == 1


def test_an_exim_bounce_is_found_by_its_envelope(pg, smtp, daemon, workdir):
    conf, d, m, sent, token = sent_mail(pg, smtp, daemon, workdir)
    r = bounce(conf, "exim-failed.eml", token)         # no argument: Envelope-to says it
    assert r.returncode == 0, r.stderr
    failure = pg.attempts(m)[1]
    assert failure["outcome"] == "permanent-failure"
    assert failure["detail"] == ("bounce 5.0.0 (failed): 550 5.1.1 <jan@example.nl>: Recipient "
                                 "address rejected: User unknown")
    wait_for(lambda: any(a["step"] == 1 for a in pg.attempts(m)), what="step 1 brought forward")


def test_an_old_exim_text_bounce_without_return_path(pg, smtp, daemon, workdir):
    # no VERP configured: the returned Message-ID still names the mail
    conf, d, m, sent, token = sent_mail(pg, smtp, daemon, workdir, return_path="")
    assert smtp.wait_messages(1)[0].envelope_from == "noreply@gemeente.example"
    r = bounce(conf, "exim-plain-failed.eml", token)
    assert r.returncode == 0, r.stderr
    failure = pg.attempts(m)[1]
    assert (failure["outcome"], failure["detail"]) == \
        ("permanent-failure", "bounce 5.1.1 (failed): 550 5.1.1 <jan@example.nl>... User unknown")


def test_delay_warnings_are_temporary_and_change_no_plan(pg, smtp, daemon, workdir):
    conf, d, m, sent, token = sent_mail(pg, smtp, daemon, workdir)
    planned = pg.escalation(m)["next_at"]
    for sample, detail in (("postfix-delayed.eml",
                            "bounce 4.2.2 (delayed): 452 4.2.2 <piet@example.org>: Mailbox full"),
                           ("exim-delayed.eml",
                            "bounce 4.0.0 (delayed): 451 4.7.1 Greylisted, please try again later")):
        r = bounce(conf, sample, token)
        assert r.returncode == 0, r.stderr
        assert pg.attempts(m)[-1]["outcome"] == "temporary-failure"
        assert pg.attempts(m)[-1]["detail"] == detail
    assert pg.escalation(m)["next_at"] == planned and pg.escalation(m)["step"] == 1
    # then it fails for good after all: that one counts
    r = bounce(conf, "postfix-failed.eml", token)
    assert r.returncode == 0 and "the next step is due now" in r.stdout, r.stdout + r.stderr


def test_what_a_pipe_transport_is_told(pg, smtp, daemon, workdir):
    conf, d, m, sent, token = sent_mail(pg, smtp, daemon, workdir)
    before = len(pg.attempts())
    r = subprocess.run([str(HERINNERCTL), "-c", str(conf), "bounce"], input="Subject: hallo\n\nhoi\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 65 and "not a delivery status notification" in r.stderr
    r = bounce(conf, "postfix-failed.eml", "fedcba9876543210fedcba9876543210")
    assert r.returncode == 67 and "no e-mail was sent with token" in r.stderr
    # a report of success changes nothing
    text = (TOP / "tests/dsn/postfix-failed.eml").read_text().replace(SAMPLE_TOKEN, token) \
        .replace("Action: failed\nStatus: 5.1.1", "Action: delivered\nStatus: 2.0.0")
    r = subprocess.run([str(HERINNERCTL), "-c", str(conf), "bounce"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "nothing to record" in r.stdout
    assert len(pg.attempts()) == before
    # the database away: Postfix keeps the bounce and tries again
    pg.stop()
    r = bounce(conf, "postfix-failed.eml", token)
    assert r.returncode == 75, r.stdout + r.stderr


def test_a_return_path_without_a_token_is_a_config_error(pg, smtp, workdir):
    from harness import HERINNERD
    for value, why in (('"bounces@gemeente.example"', "must contain {token}"),
                       ('"bounces+{token}"', "with {token} in its local part"),
                       ('"b+{token}{token}@g.example"', "only once")):
        conf = write_config(workdir, pg, smtp, return_path=f"\n  return_path = {value};")
        r = subprocess.run([str(HERINNERD), "-c", str(conf), "--check"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0
        assert f"{conf}:6: 'return_path' " in r.stderr and why in r.stderr, r.stderr
