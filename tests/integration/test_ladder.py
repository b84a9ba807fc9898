"""The whole ladder on one message: e-mail, then SMS through a real Kannel, then a paper letter;
and quiet hours that defer an SMS instead of dropping it."""

import datetime
import subprocess
import zoneinfo

from harness import free_port, wait_for

ZONE = "Europe/Amsterdam"


def config(pg, smtp, kannel, workdir, sms_step='{ channel = "sms"; after = "2s"; }'):
    return f"""
instance = "ladder";
timezone = "{ZONE}";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>"; starttls = "no"; }};
sms: {{ url = "{kannel.sendsms_url}"; username = "{kannel.username}"; password = "{kannel.password}";
        sender = "Overheid"; }};
paper: {{ spool = "{workdir}/spool"; cutoff = "23:59"; }};
http: {{ listen = "127.0.0.1:{free_port()}"; }};
policies = ( {{ name = "default"; kinds = [ "*" ];
  steps = (
    {{ channel = "email"; after = "0s"; }},
    {sms_step},
    {{ channel = "paper"; after = "4s"; }}
  ); }} );
"""


def test_email_then_sms_then_paper(pg, smtp, kannel, daemon, workdir):
    d = daemon(config(pg, smtp, kannel, workdir))
    d.wait_ready()
    r = pg.add_recipient("Jan de Vriës", email="jan@example.nl", mobile="+31612345678",
                         postal_address="Kerkstraat 1\n1234 AB Ĳsselstein")
    m = pg.add_message(r, subject="Aanslag inkomstenbelasting 2025")
    wait_for(lambda: pg.escalation(m) and pg.escalation(m)["state"] == "done", timeout=30,
             what="the ladder to finish")
    steps = [(a["step"], a["channel"], a["outcome"]) for a in pg.attempts(m)
             if a["outcome"] in ("sent", "queued")]
    assert steps == [(0, "email", "sent"), (1, "sms", "sent"), (2, "paper", "queued")]
    assert smtp.wait_messages(1)[0]["Subject"].endswith("Aanslag inkomstenbelasting 2025")
    sms = kannel.wait_received(1)[0]
    assert sms["to"].lstrip("+").endswith("31612345678")
    letter = workdir / "spool" / "pending" / f"{m}-2.pdf"
    text = subprocess.run(["pdftotext", str(letter), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Kerkstraat 1" in text and "Ĳsselstein" in text


def test_reading_stops_the_ladder_between_channels(pg, smtp, kannel, daemon, workdir):
    d = daemon(config(pg, smtp, kannel, workdir, sms_step='{ channel = "sms"; after = "3s"; }'))
    d.wait_ready()
    r = pg.add_recipient("Jan", email="jan@example.nl", mobile="+31612345678",
                         postal_address="Kerkstraat 1\n1234 AB Utrecht")
    m = pg.add_message(r)
    smtp.wait_messages(1)
    pg.mark_read(m)
    wait_for(lambda: pg.escalation(m)["state"] == "read", what="stopped by reading")
    # past the SMS and letter times: nothing more
    wait_for(lambda: pg.query("SELECT now() > created_at + interval '6 seconds' AS past"
                              " FROM herinnerd.messages WHERE id = %s", m)[0]["past"],
             timeout=15, what="time to pass")
    # the e-mail, then the stop on record for the SMS step it stopped (issue 6)
    assert [(a["channel"], a["outcome"]) for a in pg.attempts(m)] == [("email", "sent"),
                                                                        ("sms", "skipped")]
    assert pg.attempts(m)[1]["detail"].startswith("read at ")
    assert kannel.received() == []
    assert not (workdir / "spool" / "pending" / f"{m}-2.pdf").exists()


def test_quiet_hours_defer_an_sms_to_their_end(pg, smtp, kannel, daemon, workdir):
    now = datetime.datetime.now(zoneinfo.ZoneInfo(ZONE))
    start = (now - datetime.timedelta(minutes=2)).strftime("%H:%M")
    end_dt = (now + datetime.timedelta(minutes=3)).replace(second=0, microsecond=0)
    end = end_dt.strftime("%H:%M")
    d = daemon(config(pg, smtp, kannel, workdir,
                      sms_step=f'{{ channel = "sms"; after = "0s"; quiet_hours = "{start}-{end}"; }}'))
    d.wait_ready()
    r = pg.add_recipient("Jan", email="jan@example.nl", mobile="+31612345678")
    m = pg.add_message(r)
    smtp.wait_messages(1)
    esc = wait_for(lambda: (e := pg.escalation(m)) and e["step"] == 1 and e, what="on the SMS step")
    assert esc["state"] == "active"
    planned = esc["next_at"].astimezone(zoneinfo.ZoneInfo(ZONE))
    assert planned.strftime("%H:%M") == end          # deferred to the end, not dropped
    assert planned > now
    assert kannel.received() == []
    assert [a["channel"] for a in pg.attempts(m)] == ["email"]
