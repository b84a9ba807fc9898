"""The foundation end to end: an unread row becomes an e-mail and an attempt row, with a real
PostgreSQL, a real SMTP server (smtp-sink) and the built daemon. Policies use seconds."""

import datetime
import os
import re
import signal
import socket

import pytest

from harness import check_config, wait_for


def config(pg, smtp, steps=None, extra="", instance="test-1", policy_extra=""):
    steps = steps or [
        '{ channel = "email"; after = "0s"; retry = { max = 5; backoff = "1s"; }; }',
        '{ channel = "null"; after = "0s"; }',
    ]
    return f"""
instance = "{instance}";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>";
          starttls = "no"; workers = 2; timeout = "10s"; }};
{extra}
policies = (
  {{ name = "default"; kinds = [ "*" ]; {policy_extra}
     steps = ( {", ".join(steps)} ); }}
);
"""


def outcomes(pg, message_id):
    return [(a["step"], a["channel"], a["outcome"]) for a in pg.attempts(message_id)]


def wait_attempts(pg, message_id, n, timeout=15):
    return wait_for(lambda: len(pg.attempts(message_id)) >= n and pg.attempts(message_id),
                    timeout, what=f"{n} attempts for message {message_id}")


def test_unread_message_is_emailed_with_its_subject_and_recorded(pg, smtp, daemon):
    d = daemon(config(pg, smtp))
    d.wait_ready()
    r = pg.add_recipient("Jan de Vriës", email="jan@example.nl")
    m = pg.add_message(r, subject="Aanslag inkomstenbelasting 2025 – ë ĳ", sender="Belastingdienst",
                       link="https://mijn.overheid.nl/berichtenbox/42")
    mail = smtp.wait_messages(1)[0]
    assert mail["Subject"] == "Nieuw bericht van Belastingdienst: Aanslag inkomstenbelasting 2025 – ë ĳ"
    assert mail.envelope_to == ["jan@example.nl"]
    assert mail.envelope_from == "noreply@example.nl"
    assert "Jan de Vriës" in str(mail["To"])
    body = mail.get_content()
    assert "https://mijn.overheid.nl/berichtenbox/42" in body
    assert "Belastingdienst" in body
    # unique per attempt (random), the stable (message, step) in a header of its own
    assert re.fullmatch(r"<herinnerd\.[0-9a-f]{32}@example\.nl>", mail["Message-ID"])
    assert mail["X-Herinnerd-Message"] == f"{m}-0"

    attempts = wait_attempts(pg, m, 2)
    first = attempts[0]
    assert (first["step"], first["try"], first["channel"], first["outcome"]) == (0, 1, "email", "sent")
    assert first["address"] == "jan@example.nl"
    assert first["detail"].startswith("250")
    assert first["instance"] == "test-1"
    assert len(first["config_sha256"]) == 64
    assert first["external_id"] == mail["Message-ID"]
    wait_for(lambda: pg.escalation(m)["state"] == "done", what="ladder done")


def test_hidden_subject_stays_out_of_the_mail(pg, smtp, daemon):
    d = daemon(config(pg, smtp, policy_extra="hide_subject = true;"))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"), subject="Naheffing geheim")
    mail = smtp.wait_messages(1)[0]
    assert "geheim" not in mail["Subject"]
    assert "geheim" not in mail.get_content()
    wait_attempts(pg, m, 1)


def test_crlf_in_the_subject_cannot_inject_headers(pg, smtp, daemon):
    d = daemon(config(pg, smtp))
    d.wait_ready()
    pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"),
                   subject="Hallo\r\nBcc: victim@example.org\r\n\r\nInjected body")
    mail = smtp.wait_messages(1)[0]
    assert mail["Bcc"] is None
    assert mail.envelope_to == ["jan@example.nl"]
    # the subject is quoted on one line of the body, never as lines of its own
    assert "Injected body" not in [line.strip() for line in mail.get_content().splitlines()]


def test_read_before_due_sends_nothing(pg, smtp, daemon):
    d = daemon(config(pg, smtp, steps=['{ channel = "email"; after = "4s"; }']))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    wait_for(lambda: pg.escalation(m), what="adopted")
    pg.mark_read(m)
    wait_for(lambda: pg.escalation(m)["state"] == "read", timeout=5, what="escalation stopped")
    d.wait_log(f"message {m} read at")
    # past the step's due time, still nothing
    wait_for(lambda: pg.query("SELECT now() > created_at + interval '5 seconds' AS past"
                              " FROM herinnerd.messages WHERE id = %s", m)[0]["past"],
             timeout=10, what="due time passed")
    assert smtp.messages() == []
    # the stop itself is on record (issue 6): a `skipped` attempt for the step it stopped
    rows = pg.attempts(m)
    assert [(a["step"], a["outcome"]) for a in rows] == [(0, "skipped")]
    assert rows[0]["detail"].startswith("read at ")


def test_soft_failure_is_retried_until_it_succeeds(pg, smtp, daemon):
    smtp.restart("4xx")
    d = daemon(config(pg, smtp))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    first = wait_attempts(pg, m, 1)[0]
    assert first["outcome"] == "temporary-failure"
    assert first["detail"].startswith("450")
    assert pg.escalation(m)["step"] == 0
    smtp.restart("ok")
    smtp.wait_messages(1, timeout=20)
    attempts = wait_for(lambda: [a for a in pg.attempts(m) if a["outcome"] == "sent"
                                 and a["channel"] == "email"] and pg.attempts(m),
                        timeout=20, what="sent after retry")
    email_tries = [(a["try"], a["outcome"]) for a in attempts if a["channel"] == "email"]
    assert email_tries[0] == (1, "temporary-failure")
    assert email_tries[-1][1] == "sent"
    assert [t for t, _ in email_tries] == list(range(1, len(email_tries) + 1))


def test_connection_refused_is_a_temporary_failure(pg, smtp, daemon):
    smtp.stop()
    d = daemon(config(pg, smtp))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    first = wait_attempts(pg, m, 1)[0]
    assert first["outcome"] == "temporary-failure"
    assert "failed" in first["detail"]


def test_hard_failure_is_permanent_and_moves_on(pg, smtp, daemon):
    smtp.restart("5xx")
    d = daemon(config(pg, smtp))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    attempts = wait_attempts(pg, m, 2)
    assert attempts[0]["outcome"] == "permanent-failure"
    assert attempts[0]["detail"].startswith("550")
    assert (attempts[1]["step"], attempts[1]["channel"]) == (1, "null")
    assert len([a for a in attempts if a["channel"] == "email"]) == 1


def test_missing_address_is_skipped_and_the_next_step_follows(pg, smtp, daemon):
    d = daemon(config(pg, smtp))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Zonder Adres", email=None))
    attempts = wait_attempts(pg, m, 2)
    assert (attempts[0]["channel"], attempts[0]["outcome"], attempts[0]["detail"]) == \
        ("email", "skipped", "no e-mail address")
    assert attempts[1]["channel"] == "null"
    assert smtp.messages() == []


def test_started_late_catches_up_on_old_messages(pg, smtp, daemon):
    r = pg.add_recipient("Jan", email="jan@example.nl")
    old = [pg.add_message(r, created_at=-datetime.timedelta(days=d)) for d in (1, 2, 30)]
    read = pg.add_message(r, created_at=-datetime.timedelta(days=3))
    pg.mark_read(read)
    d = daemon(config(pg, smtp))
    d.wait_ready()
    smtp.wait_messages(3)
    for m in old:
        wait_for(lambda: any(a["outcome"] == "sent" and a["channel"] == "email"
                             for a in pg.attempts(m)), what=f"message {m} sent")
    assert pg.attempts(read) == []
    assert pg.escalation(read) is None


def test_postgres_restart_mid_run_loses_nothing(pg, smtp, daemon):
    d = daemon(config(pg, smtp, steps=[
        '{ channel = "email"; after = "0s"; }',
        '{ channel = "email"; after = "3s"; template = "reminder"; }']))
    d.wait_ready()
    r = pg.add_recipient("Jan", email="jan@example.nl")
    m1 = pg.add_message(r)
    wait_attempts(pg, m1, 1)
    pg.restart()              # the reminder of m1 falls due around here
    d.wait_log("database connected and listening", since=0)
    m2 = pg.add_message(r)
    wait_for(lambda: len(pg.attempts(m1)) == 2 and len(pg.attempts(m2)) == 2, timeout=30,
             what="both ladders complete after the restart")
    for m in (m1, m2):
        assert [(a["step"], a["outcome"]) for a in pg.attempts(m)] == [(0, "sent"), (1, "sent")]
        assert pg.escalation(m)["state"] == "done"
    assert len(smtp.messages()) == 4
    assert "database connection lost" in d.log()


def test_two_instances_share_the_work_without_double_sends(pg, smtp, daemon):
    a = daemon(config(pg, smtp, instance="a"))
    b = daemon(config(pg, smtp, instance="b"))
    a.wait_ready()
    b.wait_ready()
    r = pg.add_recipient("Jan", email="jan@example.nl")
    ids = [pg.add_message(r, subject=f"bericht {i}") for i in range(40)]
    wait_for(lambda: len([x for x in pg.attempts() if x["channel"] == "email"]) >= 40, timeout=30,
             what="40 e-mails recorded")
    sent = [x for x in pg.attempts() if x["channel"] == "email"]
    assert sorted(x["message_id"] for x in sent) == sorted(ids)
    assert len(smtp.wait_messages(40)) == 40


def test_ready_status_and_graceful_stop(pg, smtp, daemon):
    d = daemon(config(pg, smtp))
    d.wait_ready()
    d.wait_notify("STATUS=Connected")
    mark = len(d.notifications)
    d.sigterm()
    d.wait_notify("STOPPING=1", since=mark)
    assert d.wait_exit() == 0


def test_not_ready_until_the_database_is_there(pg, smtp, daemon):
    pg.stop()
    d = daemon(config(pg, smtp))
    d.wait_log("database connection lost or refused")
    assert not any("READY=1" in n for n in d.notifications)
    pg.start()
    d.wait_ready(timeout=20)


BROKEN = {
    "syntax": ("policies = ( { name = ", "syntax error"),
    "unknown key": ('database: { conninfo = "dbname=x"; };\nfoo = 1;\n', "unknown key 'foo'"),
    "unknown channel": ('database: { conninfo = "dbname=x"; };\npolicies = ( { name = "d"; steps = ( '
                        '{ channel = "pigeon"; after = "0s"; } ); } );\n', "unknown channel"),
    "bad duration": ('database: { conninfo = "dbname=x"; };\npolicies = ( { name = "d"; steps = ( '
                     '{ channel = "null"; after = "soon"; } ); } );\n', "must be a duration"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_check_reports_file_and_line(workdir, kind):
    text, what = BROKEN[kind]
    rc, err = check_config(text, workdir)
    assert rc != 0
    path = os.path.join(workdir, "check.conf")
    assert err.startswith(f"{path}:"), err
    line = err.split(":")[1]
    assert line.isdigit() and int(line) >= 1, err
    assert what in err


def test_check_accepts_the_shipped_config(workdir):
    # as shipped: --check does not read the password file (the service's credential)
    with open(os.path.join(os.environ.get("HERINNERD_TOP", "."), "conf", "herinnerd.conf")) as f:
        text = f.read()
    rc, err = check_config(text, workdir)
    assert rc == 0, err


def test_sighup_with_a_broken_file_keeps_the_old_config(pg, smtp, daemon):
    d = daemon(config(pg, smtp))
    d.wait_ready()
    good = d.config_path.read_text()
    d.config_path.write_text(good + "\nthis is not libconfig\n")
    mark = len(d.notifications)
    d.sighup()
    d.wait_notify("RELOADING=1", since=mark)
    d.wait_log("reload refused")
    d.wait_notify("READY=1", since=mark)
    assert d.running
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    smtp.wait_messages(1)
    wait_attempts(pg, m, 1)

    # a good new file is taken
    d.config_path.write_text(good.replace("workers = 2;", "workers = 2; batch = 10;"))
    d.sighup()
    d.wait_log("configuration reloaded")


class AuthServer:
    """A real SMTP server that requires AUTH (aiosmtpd on loopback, in this process)."""

    def __init__(self, user, password):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append(envelope)
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login.decode(), auth_data.password.decode()) == (user, password)
            return AuthResult(success=ok)

        from harness import free_port
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     authenticator=authenticator, auth_required=True,
                                     auth_require_tls=False)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def auth_config(pg, port, password):
    return f"""
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "127.0.0.1:{port}"; from = "MijnOverheid <noreply@example.nl>";
          starttls = "no"; username = "herinnerd"; password = "{password}"; timeout = "5s"; }};
policies = ( {{ name = "default"; kinds = [ "*" ];
  steps = ( {{ channel = "email"; after = "0s"; retry = {{ max = 3; backoff = "1s"; }}; }} ); }} );
"""


# loopback test server: plain AUTH without TLS is what we want to exercise here
NO_TLS_WARNING = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@NO_TLS_WARNING
def test_smtp_auth_with_the_right_password(pg, daemon):
    with AuthServer("herinnerd", "s3cret") as server:
        d = daemon(auth_config(pg, server.port, "s3cret"))
        d.wait_ready()
        m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
        first = wait_attempts(pg, m, 1)[0]
        assert first["outcome"] == "sent", first["detail"]
        assert server.messages[0].rcpt_tos == ["jan@example.nl"]


@NO_TLS_WARNING
def test_smtp_auth_refused_is_temporary(pg, daemon):
    with AuthServer("herinnerd", "s3cret") as server:
        d = daemon(auth_config(pg, server.port, "wrong"))
        d.wait_ready()
        m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
        # after the refused AUTH the session stalls until email.timeout
        first = wait_attempts(pg, m, 1, timeout=30)[0]
        assert first["outcome"] == "temporary-failure"
        assert server.messages == []


def test_starttls_required_but_not_offered_twice_without_a_crash(pg, smtp, daemon):
    # libesmtp once crashed on a second session with STARTTLS required (upstream issue 30)
    text = config(pg, smtp).replace('starttls = "no"', 'starttls = "required"')
    d = daemon(text)
    d.wait_ready()
    r = pg.add_recipient("Jan", email="jan@example.nl")
    m1 = pg.add_message(r)
    first = wait_attempts(pg, m1, 1)[0]
    m2 = pg.add_message(r)
    second = wait_attempts(pg, m2, 1)[0]
    assert (first["outcome"], second["outcome"]) == ("temporary-failure", "temporary-failure")
    wait_for(lambda: len(pg.attempts(m1)) >= 2, what="a retry of the first")
    assert d.running
    assert smtp.messages() == []


def test_watchdog_pings_while_the_loop_turns(pg, smtp, daemon):
    d = daemon(config(pg, smtp), env={"WATCHDOG_USEC": "400000"})
    d.wait_ready()
    first = len(d.notifications)
    d.wait_notify("WATCHDOG=1", since=first)
    second = len(d.notifications)
    d.wait_notify("WATCHDOG=1", since=second)


def test_a_restart_with_a_changed_file_keeps_running_ladders_on_their_policy(pg, smtp, daemon):
    steps_a = ['{ channel = "email"; after = "0s"; }',
               '{ channel = "email"; after = "4s"; template = "reminder"; }']
    d = daemon(config(pg, smtp, steps=steps_a))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    wait_attempts(pg, m, 1)
    d.sigterm()
    assert d.wait_exit() == 0
    # the admin changes the ladder: new escalations get null steps
    steps_b = ['{ channel = "null"; after = "0s"; }', '{ channel = "null"; after = "4s"; }']
    d2 = daemon(config(pg, smtp, steps=steps_b))
    d2.wait_ready()
    d2.wait_log("keep its policies")
    n = pg.add_message(pg.add_recipient("Piet", email="piet@example.nl"))
    wait_for(lambda: pg.escalation(m)["state"] == "done" and pg.escalation(n)["state"] == "done",
             timeout=20, what="both ladders done")
    assert [a["channel"] for a in pg.attempts(m)] == ["email", "email"]
    assert [a["channel"] for a in pg.attempts(n)] == ["null", "null"]
    shas = {r["sha256"] for r in pg.query("SELECT sha256 FROM herinnerd.configs")}
    assert {pg.attempts(m)[0]["config_sha256"], pg.attempts(n)[0]["config_sha256"]} <= shas
    assert len(shas) == 2


def test_postgres_restart_under_load_loses_and_repeats_nothing(pg, smtp, daemon):
    d = daemon(config(pg, smtp, steps=['{ channel = "null"; after = "0s"; }',
                                       '{ channel = "null"; after = "1s"; }']))
    d.wait_ready()
    r = pg.add_recipient("Load")
    with pg.connect(user="inbox") as conn:
        conn.execute("INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject)"
                     " SELECT %s, 'S', 'k', 'm ' || g FROM generate_series(1, 5000) g", (r,))
    wait_for(lambda: pg.query("SELECT count(*) AS n FROM herinnerd.attempts")[0]["n"] > 1000,
             interval=0.01, what="outcomes being written")
    pg.restart()              # while outcomes are being written
    wait_for(lambda: pg.query("SELECT count(*) AS n FROM herinnerd.escalations"
                              " WHERE state = 'done'")[0]["n"] == 5000,
             timeout=120, what="all 5000 ladders done")
    per_message = pg.query("SELECT message_id, array_agg(step ORDER BY step) AS steps"
                           "  FROM herinnerd.attempts GROUP BY message_id")
    assert len(per_message) == 5000
    assert all(r["steps"] == [0, 1] for r in per_message)
    assert "database connection lost" in d.log()
    assert "UNRECORDED" not in d.log()


def test_message_ids_are_not_reused_by_a_re_created_database(pg, smtp, daemon):
    """A re-created database starts its ids again: message 1 step 0 is mailed a second time. Large
    providers drop mail whose Message-ID they have seen, so the second one must have a new id."""
    d = daemon(config(pg, smtp))
    d.wait_ready()
    m1 = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    first = smtp.wait_messages(1)[0]
    d.stop()
    with pg.connect(dbname="postgres") as conn:
        conn.execute("DROP DATABASE inbox")
    pg.create_database("inbox")
    pg.apply_schema("inbox")
    d = daemon(config(pg, smtp))
    d.wait_ready()
    m2 = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    assert m2 == m1
    second = smtp.wait_messages(2)[1]
    assert first["X-Herinnerd-Message"] == second["X-Herinnerd-Message"] == f"{m1}-0"
    assert first["Message-ID"] != second["Message-ID"]


def test_every_try_has_its_own_message_id(pg, smtp, daemon):
    smtp.restart(mode="4xx")
    d = daemon(config(pg, smtp))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    wait_for(lambda: len([a for a in pg.attempts(m) if a["outcome"] == "temporary-failure"]) >= 2,
             what="two soft failures")
    ids = [a["external_id"] for a in pg.attempts(m) if a["outcome"] == "temporary-failure"]
    assert all(re.fullmatch(r"<herinnerd\.[0-9a-f]{32}@example\.nl>", i) for i in ids), ids
    assert len(set(ids)) == len(ids)


def test_ehlo_says_email_helo_or_the_host_name(pg, smtp, daemon):
    d = daemon(config(pg, smtp))
    d.wait_ready()
    pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    assert smtp.wait_messages(1)[0].helo == socket.gethostname()
    d.stop()
    d = daemon(config(pg, smtp).replace('starttls = "no";', 'starttls = "no"; helo = "mail.gemeente.example";'))
    d.wait_ready()
    pg.add_message(pg.add_recipient("Piet", email="piet@example.nl"))
    assert smtp.wait_messages(2)[1].helo == "mail.gemeente.example"
