"""herinnerctl: the admin's, auditor's and help desk's view."""

import csv
import io
import json

from harness import TOP, herinnerctl, wait_for


def write_config(workdir, pg, smtp, user="herinnerd"):
    path = workdir / "ctl.conf"
    path.write_text(f"""
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo(user)}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>"; starttls = "no"; }};
policies = (
  {{ name = "default"; kinds = [ "*" ];
     steps = ( {{ channel = "email"; after = "0s"; }}, {{ channel = "null"; after = "2d"; }} ); }},
  {{ name = "tax"; kinds = [ "aanslag" ]; hide_subject = true;
     steps = ( {{ channel = "email"; after = "0s"; }} ); }}
);
""")
    return path


def test_explain_shows_the_ladder_for_a_kind(pg, smtp, workdir):
    conf = write_config(workdir, pg, smtp)
    r = herinnerctl("explain", "aanslag", config=conf)
    assert r.returncode == 0, r.stderr
    assert "policy 'tax'" in r.stdout and "subject hidden" in r.stdout
    r = herinnerctl("explain", "brief", config=conf)
    assert "policy 'default'" in r.stdout and "2d after arrival" in r.stdout


def test_status_and_audit_after_a_send(pg, smtp, daemon, workdir):
    conf = write_config(workdir, pg, smtp)
    d = daemon(conf.read_text())
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"), kind="brief",
                       subject="Uw vergunning")
    wait_for(lambda: pg.attempts(m), what="an attempt")
    r = herinnerctl("status", m, config=conf)
    assert r.returncode == 0, r.stderr
    assert "Uw vergunning" in r.stdout and "unread" in r.stdout
    assert "email sent" in " ".join(r.stdout.split()) and "jan@example.nl" in r.stdout
    assert "+01" in r.stdout           # shown in the configured zone

    auditor = write_config(workdir, pg, smtp, user="auditor")
    r = herinnerctl("audit", "export", "--format", "csv", config=auditor)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["message_id"], x["channel"], x["outcome"]) for x in rows] == [(str(m), "email", "sent")]
    assert len(rows[0]["hash"]) == 64
    r = herinnerctl("audit", "export", "--format", "json", "--since", "2000-01-01", config=auditor)
    assert json.loads(r.stdout)[0]["outcome"] == "sent"    # one JSON array (was JSON Lines)
    r = herinnerctl("audit", "export", "--until", "2000-01-01", config=auditor)
    assert r.stdout.count("\n") == 1   # only the header
    r = herinnerctl("audit", "verify", config=auditor)
    assert r.returncode == 0 and "0 problems" in r.stdout, r.stdout + r.stderr


def test_audit_verify_finds_a_forged_row(pg, smtp, workdir):
    conf = write_config(workdir, pg, smtp, user="auditor")
    r = pg.add_recipient("Jan")
    m = pg.add_message(r)
    with pg.connect() as conn:
        conn.execute("INSERT INTO herinnerd.attempts (message_id, step, channel, outcome, instance,"
                     " config_sha256) VALUES (%s, 0, 'email', 'sent', 'x', 'y')", (m,))
        # someone with the power to switch triggers off rewrites history...
        conn.execute("ALTER TABLE herinnerd.attempts DISABLE TRIGGER attempts_no_update")
        conn.execute("UPDATE herinnerd.attempts SET outcome = 'delivered'")
        conn.execute("ALTER TABLE herinnerd.attempts ENABLE TRIGGER attempts_no_update")
    r = herinnerctl("audit", "verify", config=conf)
    assert r.returncode == 1
    assert "hash does not match" in r.stdout


def test_db_init_applies_once(pg, smtp, workdir):
    pg.create_database("fresh")
    conf = workdir / "init.conf"
    conf.write_text(f'database: {{ conninfo = "{pg.conninfo("postgres", "fresh")}"; }};\n'
                    'policies = ( { name = "d"; steps = ( { channel = "null"; after = "0s"; } ); } );\n')
    env_sql = str(TOP / "sql")
    r = herinnerctl("db", "init", "--sqldir", env_sql, config=conf)
    assert r.returncode == 0, r.stderr
    assert "applied 001_schema.sql" in r.stdout
    r = herinnerctl("db", "init", "--sqldir", env_sql, config=conf)
    assert r.returncode == 0 and "nothing to do" in r.stdout
