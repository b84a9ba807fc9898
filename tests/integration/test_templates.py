"""Wording admins own: a `templates` directory of plain UTF-8 files per template, channel and
language, checked like the configuration (FILE:LINE), reloaded with it, covered by its SHA-256 and
stored with it; the letter renders from the same templates."""

import datetime
import re
import subprocess

from harness import HERINNERCTL, HERINNERD, wait_for
from test_paper import letters, pdf_text

EMAIL_NL = """Subject: {sender} wacht op u: {subject}
Subject-Hidden: {sender} wacht op u

Goedemiddag {name},

{sender} stuurde u op {created} een bericht ({count}):
{messages}
[Betalen kan tot {due_date}.]
[Direct naar het bericht: {link}|Log in op MijnOverheid.]
"""

LETTER_NL = """Subject: {subject} (uw aandacht gevraagd)
Subject-Hidden: Een bericht dat op u wacht

Beste {name},

U hebt een ongelezen bericht van {sender}[, te betalen vóór {due_date}].

{link}

Met groet van de gemeente.
"""


def write_templates(workdir, files):
    d = workdir / "teksten"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


def write_config(workdir, pg, smtp=None, spool=None, steps='{ channel = "email"; after = "0s"; }',
                 templates='templates = "teksten";'):
    path = workdir / "templates.conf"
    email = (f'email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>";'
             ' starttls = "no"; };') if smtp else ""
    paper = f'paper: {{ spool = "{spool}"; cutoff = "23:59"; }};' if spool else ""
    path.write_text(f"""
timezone = "Europe/Amsterdam";
{templates}
database: {{ conninfo = "{pg.conninfo()}"; }};
{email}
{paper}
policies = ( {{ name = "default"; kinds = [ "*" ]; steps = ( {steps} ); }} );
""")
    return path


def check(conf):
    return subprocess.run([str(HERINNERD), "-c", str(conf), "--check"], capture_output=True,
                          text=True, timeout=30)


def test_an_admins_email_wording_is_sent(pg, smtp, daemon, workdir):
    write_templates(workdir, {"notice.email.nl": EMAIL_NL})
    conf = write_config(workdir, pg, smtp)
    d = daemon(conf.read_text().replace('"teksten"', f'"{workdir / "teksten"}"'))
    d.wait_ready()
    due = datetime.datetime(2026, 12, 24, 12, tzinfo=datetime.timezone.utc)
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"), subject="Aanslag 2026",
                       sender="Gemeente Súdwest-Fryslân", due_at=due)
    mail = smtp.wait_messages(1)[0]
    assert mail["Subject"] == "Gemeente Súdwest-Fryslân wacht op u: Aanslag 2026"
    body = mail.get_content()
    assert body.startswith("Goedemiddag Jan,\n")
    assert "een bericht (1):\nGemeente Súdwest-Fryslân: Aanslag 2026\n" in body
    assert "Betalen kan tot 24-12-2026." in body
    assert "Direct naar het bericht: https://mijn.overheid.nl/berichtenbox/1" in body
    # English has no file: the built-in English text
    pg.add_message(pg.add_recipient("Ann", email="ann@example.org", language="en"))
    assert "New message from" in smtp.wait_messages(2)[1]["Subject"]
    assert pg.attempts(m)[0]["outcome"] == "sent"


def test_the_templates_are_part_of_the_configuration(pg, smtp, daemon, workdir):
    tdir = write_templates(workdir, {"notice.email.nl": EMAIL_NL})
    conf = write_config(workdir, pg, smtp)
    r = subprocess.run([str(HERINNERCTL), "-c", str(conf), "check"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    sha1 = re.search(r"sha256 ([0-9a-f]{64})", r.stdout)[1]
    d = daemon(conf.read_text().replace('"teksten"', f'"{tdir}"'))
    d.wait_ready()
    stored = wait_for(lambda: pg.query("SELECT sha256, body FROM herinnerd.configs"),
                      what="the configuration stored")
    assert "#@template notice.email.nl\n#|Subject: {sender} wacht op u: {subject}\n" in stored[0]["body"]

    # an edited sentence is a new configuration: a new hash, stored, used after SIGHUP
    (tdir / "notice.email.nl").write_text(EMAIL_NL.replace("Goedemiddag", "Goedendag"))
    r = subprocess.run([str(HERINNERCTL), "-c", str(conf), "check"], capture_output=True,
                       text=True, timeout=30)
    assert re.search(r"sha256 ([0-9a-f]{64})", r.stdout)[1] != sha1
    mark = len(d.log())
    d.sighup()
    d.wait_log("configuration reloaded", since=mark)
    rows = wait_for(lambda: len(pg.query("SELECT 1 FROM herinnerd.configs")) == 2
                    and pg.query("SELECT sha256, body FROM herinnerd.configs"),
                    what="the new configuration stored")
    assert any("#|Goedendag {name}," in r["body"] for r in rows)
    pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    assert smtp.wait_messages(1)[0].get_content().startswith("Goedendag Jan,")


def test_mistakes_name_the_file_and_line(pg, workdir):
    cases = [
        ({"notice.email.nl": "Subject: Hallo {naam}\n\ntekst\n"}, "notice.email.nl:1: unknown placeholder {naam}"),
        ({"notice.email.nl": "Subject: x\n\nregel\nBeste {voornaam},\n"}, "notice.email.nl:4: unknown placeholder {voornaam}"),
        ({"notice.email.nl": "Subject: over {subject}\n\ntekst\n"}, "notice.email.nl:1: the subject line mentions {subject}"),
        ({"notice.email.nl": "Hallo {name}\n"}, "notice.email.nl:1: expected 'Subject:'"),
        ({"notice.mail.nl": "tekst\n"}, "notice.mail.nl:0: not a template name"),
        ({"notice.sms.nl": b"caf\xe9\n"}, "notice.sms.nl:1: not UTF-8"),
    ]
    for files, expected in cases:
        tdir = workdir / "teksten"
        if tdir.exists():
            for f in tdir.iterdir():
                f.unlink()
        tdir.mkdir(exist_ok=True)
        for name, text in files.items():
            (tdir / name).write_bytes(text if isinstance(text, bytes) else text.encode())
        r = check(write_config(workdir, pg, spool=workdir / "spool"))
        assert r.returncode != 0 and expected in r.stderr, (expected, r.stderr)
        assert str(tdir / next(iter(files))) in r.stderr
    # a step naming a template that exists nowhere, and one that exists only for e-mail
    for f in (workdir / "teksten").iterdir():
        f.unlink()
    (workdir / "teksten" / "betaling.email.nl").write_text("Subject: Betaal\n\nBetaal {link}\n")
    ok = write_config(workdir, pg, spool=workdir / "spool",
                      steps='{ channel = "null"; after = "0s"; template = "betaling"; }')
    assert check(ok).returncode == 0, check(ok).stderr
    bad = write_config(workdir, pg, spool=workdir / "spool",
                       steps='{ channel = "paper"; after = "0s"; template = "betaling"; }')
    r = check(bad)
    assert r.returncode != 0 and f"{bad}:7: unknown template 'betaling' for paper" in r.stderr, r.stderr
    r = check(write_config(workdir, pg, templates='templates = "nergens";'))
    assert r.returncode != 0 and "nergens:0: cannot read the templates directory" in r.stderr


def test_the_letter_renders_from_the_templates(pg, daemon, workdir):
    spool = workdir / "spool"
    tdir = write_templates(workdir, {"final.letter.nl": LETTER_NL})
    conf = write_config(workdir, pg, spool=spool,
                        steps='{ channel = "paper"; after = "0s"; template = "final"; }')
    d = daemon(conf.read_text().replace('"teksten"', f'"{tdir}"'))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan Jansen", postal_address="Dorpsstraat 1\n1234 AB Dorp"),
                       subject="Parkeervergunning", sender="Gemeente Dorp",
                       due_at=datetime.datetime(2026, 12, 24, 12, tzinfo=datetime.timezone.utc))
    wait_for(lambda: any(a["outcome"] == "queued" for a in pg.attempts(m)), timeout=20,
             what="the letter queued")
    text = " ".join(pdf_text(spool / letters(spool)[0]).split())
    assert "Betreft: Parkeervergunning (uw aandacht gevraagd)" in text
    assert "Beste Jan Jansen," in text
    assert "U hebt een ongelezen bericht van Gemeente Dorp, te betalen vóór 24 december 2026." in text
    assert "https://mijn.overheid.nl/berichtenbox/1" in text
    assert "Met groet van de gemeente." in text
    assert "Geachte heer/mevrouw" not in text       # the built-in wording is not used
