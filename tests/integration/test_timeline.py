"""Track and trace: herinnerd.message_timeline for auditors and help desks, herinnerd.sender_timeline
for a sender's portal (its own sender's messages only), and herinnerctl status rendering the same."""

import psycopg
import pytest

from harness import herinnerctl, wait_for


def ladder_config(workdir, pg, smtp, user="herinnerd"):
    path = workdir / f"timeline-{user}.conf"
    path.write_text(f"""
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo(user)}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>"; starttls = "no"; }};
policies = ( {{ name = "default"; kinds = [ "*" ];
  steps = ( {{ channel = "email"; after = "0s"; }}, {{ channel = "null"; after = "2d"; }} ); }} );
""")
    return path


def timeline(pg, user, view, message_id):
    with pg.connect(user) as conn:
        cur = conn.execute(f"SELECT * FROM herinnerd.{view} WHERE message_id = %s"
                           " ORDER BY at, attempt_id NULLS FIRST", (message_id,))
        cols = [c.name for c in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]


def test_timeline_tells_what_happened_and_what_comes_next(pg, smtp, daemon, workdir):
    conf = ladder_config(workdir, pg, smtp)
    d = daemon(conf.read_text())
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"), kind="brief",
                       subject="Uw vergunning", sender="Gemeente Súdwest-Fryslân")
    wait_for(lambda: (pg.escalation(m) or {}).get("step") == 1, what="the e-mail step done")
    rows = timeline(pg, "auditor", "message_timeline", m)
    assert [r["event"] for r in rows] == ["arrived", "attempt"]
    sent = rows[1]
    assert (sent["step"], sent["channel"], sent["outcome"], sent["address"]) == \
        (0, "email", "sent", "jan@example.nl")
    for r in rows:          # every row says what happens next, and when
        assert r["sender"] == "Gemeente Súdwest-Fryslân" and r["subject"] == "Uw vergunning"
        assert (r["escalation"], r["next_step"], r["next_channel"]) == ("active", 1, "null")
        assert r["next_at"] is not None
    assert 2 * 86400 - 60 < (rows[0]["next_at"] - rows[0]["at"]).total_seconds() <= 2 * 86400 + 60

    r = herinnerctl("status", m, config=conf)       # the help desk sees the same rows
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "Uw vergunning" in lines[0] and "Gemeente Súdwest-Fryslân" in lines[0]
    assert lines[1].endswith("arrived")
    assert "email sent" in " ".join(lines[2].split()) and "jan@example.nl" in lines[2]
    assert "unread; policy 'default': next step 1 (null) at " in lines[3]
    assert lines[3].endswith("+01") or lines[3].endswith("+02")

    pg.mark_read(m)
    wait_for(lambda: pg.escalation(m)["state"] == "read", what="the ladder stopped")
    rows = timeline(pg, "auditor", "message_timeline", m)
    assert rows[-1]["event"] == "read" or rows[-2]["event"] == "read"
    assert all(r["escalation"] == "read" and r["next_at"] is None for r in rows)
    r = herinnerctl("status", m, config=conf)
    assert "  read; policy 'default': read" in r.stdout


def test_a_senders_portal_sees_only_its_own_messages(pg, workdir):
    rid = pg.add_recipient("Jan", email="jan@example.nl")
    ours = pg.add_message(rid, sender="Gemeente Súdwest-Fryslân", subject="Parkeervergunning")
    theirs = pg.add_message(rid, sender="Belastingdienst", subject="Aanslag 2025")
    with pg.connect() as conn:
        conn.execute("CREATE ROLE portal LOGIN IN ROLE herinnerd_sender")
        conn.execute("CREATE ROLE stranger LOGIN IN ROLE herinnerd_sender")
        conn.execute("INSERT INTO herinnerd.sender_logins VALUES ('portal', 'Gemeente Súdwest-Fryslân')")
        for m in (ours, theirs):
            conn.execute("INSERT INTO herinnerd.attempts (message_id, step, channel, outcome, detail,"
                         " address, instance, config_sha256) VALUES (%s, 0, 'email', 'sent', '250 ok',"
                         " 'jan@example.nl', 'test', 'abc')", (m,))
    with pg.connect("portal") as conn:
        rows = conn.execute("SELECT message_id, event, sender FROM herinnerd.sender_timeline"
                            " ORDER BY at").fetchall()
    assert {r[0] for r in rows} == {ours}
    assert [r[1] for r in rows] == ["arrived", "attempt"]
    assert timeline(pg, "portal", "sender_timeline", theirs) == []
    assert timeline(pg, "stranger", "sender_timeline", ours) == []      # no mapping: nothing
    # the tables and the unfiltered view stay closed to a portal
    for table in ("message_timeline", "messages", "attempts", "recipients", "sender_logins"):
        with pg.connect("portal") as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM herinnerd.{table}")
    # a leaky function in the portal's WHERE clause sees only the rows it may see
    with pg.connect() as conn:
        conn.execute("CREATE FUNCTION public.peek(text) RETURNS boolean LANGUAGE plpgsql"
                     " COST 0.0000001 AS $$ BEGIN RAISE NOTICE 'saw %', $1; RETURN true; END $$")
    seen = []
    with pg.connect("portal") as conn:
        conn.add_notice_handler(lambda n: seen.append(n.message_primary))
        conn.execute("SELECT * FROM herinnerd.sender_timeline WHERE public.peek(sender)").fetchall()
    assert seen and all("Belastingdienst" not in s for s in seen), seen
