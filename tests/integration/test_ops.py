"""For operators: schema versions (db upgrade/status, a daemon that waits for the right schema),
exports an auditor can open, /metrics that cost no table scan, and the alert rules and dashboard
in conf/."""

import csv
import io
import json
import re
import os
import shutil
import subprocess
import time

import pytest

from harness import TOP, free_port, herinnerctl, wait_for

SQL = TOP / "sql"
# the schema as herinnerd 0.1 created it: upgrades from there must keep every row
TODAYS_SCHEMA = 5


def sql_files():
    return sorted(SQL.glob("[0-9][0-9][0-9]_*.sql"))


def schema_version_define():
    text = (TOP / "daemon" / "schema_version.h").read_text()
    return int(re.search(r"^#define SCHEMA_VERSION (\d+)$", text, re.M).group(1))


def sql_subset(workdir, upto):
    """A directory with the schema files numbered up to `upto`: an older herinnerd's sql/."""
    d = workdir / f"sql-upto-{upto}"
    d.mkdir()
    for f in sql_files():
        if int(f.name[:3]) <= upto:
            shutil.copy(f, d)
    return d


def previous_version():
    """The number of the schema file before the last: a database one upgrade behind."""
    return int(sql_files()[-2].name[:3])


def ctl_as(pg, dbname, *args, user="postgres"):
    return herinnerctl("--conninfo", pg.conninfo(user, dbname), *args)


# ---- schema versions ---------------------------------------------------------------------------

def test_schema_version_comes_from_one_place():
    numbers = [int(f.name[:3]) for f in sql_files()]
    assert numbers == sorted(set(numbers)) and numbers[0] == 1, "sql/ files: 001, 002, ... once each"
    assert schema_version_define() == numbers[-1], \
        "daemon/schema_version.h SCHEMA_VERSION must be the highest sql/NNN file"
    makefile = (TOP / "Makefile.am").read_text()
    for f in sql_files():
        assert f"sql/{f.name}" in makefile, f"{f.name} is not installed (Makefile.am dist_sql_DATA)"
    for f in sql_files():     # each file records itself, also when applied by psql
        assert re.search(rf"INSERT INTO herinnerd\.schema_version \(version\) VALUES \({int(f.name[:3])}\)",
                         f.read_text()), f.name


def table_rows(pg, dbname, columns):
    """{table: [row tuples over its old columns, ordered]} for the tables in `columns`."""
    out = {}
    with pg.connect(dbname=dbname) as conn:
        for table, cols in columns.items():
            collist = ", ".join(f'"{c}"' for c in cols)
            out[table] = conn.execute(
                f"SELECT {collist} FROM herinnerd.{table} ORDER BY {collist}").fetchall()
    return out


def test_upgrade_from_todays_schema_keeps_every_row(pg, workdir):
    pg.create_database("old")
    r = ctl_as(pg, "old", "db", "upgrade", "--sqldir", sql_subset(workdir, TODAYS_SCHEMA))
    # an older sql/ than this herinnerd needs is applied, but said to be not enough
    assert ("schema at version %d" % TODAYS_SCHEMA) in r.stdout, r.stdout + r.stderr
    assert r.returncode == (0 if schema_version_define() == TODAYS_SCHEMA else 1)
    with pg.connect(dbname="old") as conn:
        rid = conn.execute("INSERT INTO herinnerd.recipients (name, email, postal_address)"
                           " VALUES ('Jan', 'jan@example.nl', 'Straat 1\n1234 AB Stad')"
                           " RETURNING id").fetchone()[0]
        ids = [conn.execute("INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject,"
                            " due_at, read_at) VALUES (%s, 'Belastingdienst', 'aanslag', %s,"
                            " now() + interval '30 days', %s) RETURNING id",
                            (rid, f"Aanslag {i}", None if i % 2 else "2026-11-01 10:00+01")
                            ).fetchone()[0] for i in range(4)]
        conn.execute("INSERT INTO herinnerd.configs (sha256, body, first_loaded_by)"
                     " VALUES ('abc', 'policies = ();', 'old')")
        for i, m in enumerate(ids):
            conn.execute("INSERT INTO herinnerd.escalations (message_id, policy, config_sha256,"
                         " step, next_at, state) VALUES (%s, 'default', 'abc', %s, now(), %s)",
                         (m, i % 2, "active" if i % 2 else "read"))
            for step in range(2):
                conn.execute("INSERT INTO herinnerd.attempts (message_id, step, channel, outcome,"
                             " detail, address, instance, config_sha256) VALUES"
                             " (%s, %s, 'email', 'sent', '', 'jan@example.nl', 'old', 'abc')",
                             (m, step))
        conn.execute("INSERT INTO herinnerd.letters (message_id, step, instance, state, file)"
                     " VALUES (%s, 1, 'old', 'queued', 'pending/x.pdf')", (ids[0],))
        columns = {}
        for table, column in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'herinnerd' AND table_name <> 'schema_version'"
                "   AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'herinnerd')"
                " ORDER BY table_name, ordinal_position"):
            columns.setdefault(table, []).append(column)
    before = table_rows(pg, "old", columns)
    assert len(before["attempts"]) == 8 and len(before["letters"]) == 1

    r = ctl_as(pg, "old", "db", "status", "--sqldir", SQL)
    assert f"this herinnerd needs version {schema_version_define()}" in r.stdout
    if schema_version_define() > TODAYS_SCHEMA:
        assert r.returncode == 1 and "run herinnerctl db upgrade" in r.stdout, r.stdout
    r = ctl_as(pg, "old", "db", "upgrade", "--sqldir", SQL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"schema at version {schema_version_define()}" in r.stdout
    assert table_rows(pg, "old", columns) == before
    r = ctl_as(pg, "old", "db", "status", "--sqldir", SQL)
    assert r.returncode == 0 and "up to date" in r.stdout, r.stdout + r.stderr
    versions = [row[0] for row in pg.connect(dbname="old").execute(
        "SELECT version FROM herinnerd.schema_version ORDER BY 1")]
    assert versions == [int(f.name[:3]) for f in sql_files()]
    # idempotent
    r = ctl_as(pg, "old", "db", "upgrade", "--sqldir", SQL)
    assert r.returncode == 0 and "nothing to do" in r.stdout and "applied" not in r.stdout
    # and the audit chain still verifies
    r = ctl_as(pg, "old", "audit", "verify", user="auditor")
    assert r.returncode == 0, r.stdout + r.stderr


def test_db_status_on_an_empty_database(pg):
    pg.create_database("empty")
    r = ctl_as(pg, "empty", "db", "status", "--sqldir", SQL)
    assert r.returncode == 1
    assert "no herinnerd schema" in r.stdout and "run herinnerctl db upgrade" in r.stdout
    assert "ERROR" not in r.stdout + r.stderr
    # the other commands say the same, not "relation ... does not exist"
    for args in (["status", "1"], ["audit", "export"]):
        r = ctl_as(pg, "empty", *args)
        assert r.returncode == 1, args
        assert "no herinnerd schema: run herinnerctl db upgrade" in r.stderr, args
        assert "ERROR" not in r.stderr and "relation" not in r.stderr, args


def test_db_upgrade_stops_at_a_broken_file_and_resumes(pg, workdir):
    pg.create_database("broken")
    d = sql_subset(workdir, schema_version_define())
    last = sorted(d.iterdir())[-1]
    good = last.read_text()
    last.write_text(good + "\nSELECT no_such_function();\n")
    r = ctl_as(pg, "broken", "db", "upgrade", "--sqldir", d)
    assert r.returncode == 1 and f"{last.name} not applied" in r.stderr
    with pg.connect(dbname="broken") as conn:
        have = [row[0] for row in conn.execute("SELECT version FROM herinnerd.schema_version")]
    assert max(have) == previous_version()      # the broken one rolled back whole
    last.write_text(good)
    r = ctl_as(pg, "broken", "db", "upgrade", "--sqldir", d)
    assert r.returncode == 0 and f"applied {last.name}" in r.stdout, r.stdout + r.stderr


def http_get(port, path):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def daemon_config(pg, port, dbname="inbox", extra=""):
    return f"""
instance = "ops-test";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo('herinnerd', dbname)}"; }};
http: {{ listen = "127.0.0.1:{port}"; }};
{extra}
policies = ( {{ name = "default"; kinds = [ "*" ];
  steps = ( {{ channel = "null"; after = "0s"; }}, {{ channel = "null"; after = "1h"; }} ); }} );
"""


def test_daemon_is_not_ready_until_the_schema_is_upgraded(pg, daemon, workdir):
    pg.create_database("bare")
    port = free_port()
    d = daemon(daemon_config(pg, port, "bare"))
    d.wait_log("run herinnerctl db upgrade", timeout=10)
    assert "no herinnerd schema" in d.log()
    status, text = http_get(port, "/healthz")
    assert status == 503 and "run herinnerctl db upgrade" in text
    d.wait_notify("STATUS=the database has no herinnerd schema")
    assert not any("READY=1" in n for n in d.notifications)

    # an older schema: still not ready, and it says which version it found
    if schema_version_define() > 1:
        older = previous_version()
        ctl_as(pg, "bare", "db", "upgrade", "--sqldir", sql_subset(workdir, older))
        d.wait_log(f"schema is at version {older}, this herinnerd needs", timeout=15)
        assert http_get(port, "/healthz")[0] == 503
        assert not any("READY=1" in n for n in d.notifications)

    r = ctl_as(pg, "bare", "db", "upgrade", "--sqldir", SQL)
    assert r.returncode == 0, r.stdout + r.stderr
    with pg.connect(dbname="bare") as conn:   # the login roles exist cluster-wide
        rid = conn.execute("INSERT INTO herinnerd.recipients (name) VALUES ('Jan') RETURNING id"
                           ).fetchone()[0]
        m = conn.execute("INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject)"
                         " VALUES (%s, 'x', 'y', 'z') RETURNING id", (rid,)).fetchone()[0]
    d.wait_ready(timeout=15)        # without a restart
    assert http_get(port, "/healthz") == (200, "ok\n")
    with pg.connect(dbname="bare") as conn:
        wait_for(lambda: conn.execute("SELECT count(*) FROM herinnerd.attempts WHERE message_id"
                                      " = %s", (m,)).fetchone()[0] == 1, what="the first attempt")


# ---- /metrics: counters and index lookups, never a table scan ----------------------------------

def plans_logged(pg, marker):
    """The plans auto_explain logged for statements containing marker (pg.log entries)."""
    text = pg.logfile.read_text(errors="replace")
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", text)
    return [e for e in entries if "plan:" in e and marker in e]


def test_a_scrape_scans_no_table(pg, daemon):
    rows = 20000
    with pg.connect() as conn:
        # the daemon's sessions log every plan (auto_explain), to see what a scrape costs
        conn.execute("ALTER ROLE herinnerd SET session_preload_libraries = 'auto_explain'")
        conn.execute("ALTER ROLE herinnerd SET auto_explain.log_min_duration = 0")
        conn.execute("ALTER TABLE herinnerd.messages DISABLE TRIGGER USER")
        rid = conn.execute("INSERT INTO herinnerd.recipients (name) VALUES ('Jan') RETURNING id"
                           ).fetchone()[0]
        conn.execute("INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject)"
                     " SELECT %s, 'x', 'y', 'z' FROM generate_series(1, %s)", (rid, rows))
        conn.execute("ALTER TABLE herinnerd.messages ENABLE TRIGGER USER")
        # a long history: most finished, a tenth still active (not yet due), a few due now
        conn.execute("INSERT INTO herinnerd.escalations (message_id, policy, config_sha256, state,"
                     " next_at) SELECT id, 'default', 'test',"
                     " CASE WHEN id % 10 = 0 THEN 'active' ELSE 'done' END,"
                     " CASE WHEN id % 10 = 0 THEN now() + interval '1 day' END"
                     " FROM herinnerd.messages")
        conn.execute("ANALYZE herinnerd.escalations")
    port = free_port()
    d = daemon(daemon_config(pg, port))
    d.wait_ready()
    status, text = http_get(port, "/metrics")
    assert status == 200
    lines = text.splitlines()
    assert "herinnerd_due_backlog 0" in lines
    assert "herinnerd_oldest_due_age_seconds 0.000" in lines
    plans = wait_for(lambda: plans_logged(pg, "herinnerd metrics"), what="the scrape's plan")
    assert not any("Seq Scan" in p for p in plans), plans
    assert any(re.search(r"Index (Only )?Scan (Backward )?using \w+ on escalations", p)
               for p in plans), plans

    # Due work shows up in the gauges. Nothing tells the daemon that these rows became due (its
    # timer waits a day), and a transaction holds them (claims SKIP LOCKED rows) while we look.
    # First the start-up claim round must be over (its next-due lookup comes last), or a slow
    # daemon (a sanitizer build) claims them between our update and our lock.
    wait_for(lambda: plans_logged(pg, "ORDER BY next_at LIMIT 1) - now()"),
             what="the start-up claim round")
    with pg.connect() as conn:
        due = [r[0] for r in conn.execute(
            "UPDATE herinnerd.escalations SET next_at = now() - interval '90 seconds'"
            " WHERE message_id IN (SELECT message_id FROM herinnerd.escalations"
            "  WHERE state = 'active' ORDER BY message_id LIMIT 3) RETURNING message_id")]
    with pg.connect() as holder:
        holder.autocommit = False
        holder.execute("SELECT 1 FROM herinnerd.escalations WHERE message_id = ANY(%s) FOR UPDATE",
                       (due,))
        status, text = http_get(port, "/metrics")
        holder.rollback()
    lines = text.splitlines()
    assert "herinnerd_due_backlog 3" in lines, text
    age = float(next(l for l in lines if l.startswith("herinnerd_oldest_due_age_seconds ")).split()[1])
    assert 90 <= age < 120
    assert not any("Seq Scan" in p for p in plans_logged(pg, "herinnerd metrics"))


def test_metric_names_follow_prometheus_conventions(pg, daemon):
    port = free_port()
    d = daemon(daemon_config(pg, port))
    d.wait_ready()
    status, text = http_get(port, "/metrics")
    assert status == 200
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert types, text
    for name, kind in types.items():
        assert name.startswith("herinnerd_"), name
        assert re.fullmatch(r"[a-z_]+", name), name
        if kind == "counter":
            assert name.endswith("_total"), name
        else:
            assert not name.endswith("_total"), name
        # base units only
        assert not re.search(r"_(milliseconds|ms|minutes|hours|days|bytes_kb)($|_)", name), name
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"[a-z_]+", line).group(0)
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            assert family in types, f"{line!r} has no # TYPE"
    for name in ("herinnerd_attempts_total", "herinnerd_letters_without_address_total",
                 "herinnerd_due_backlog", "herinnerd_oldest_due_age_seconds",
                 "herinnerd_send_latency_seconds", "herinnerd_ready"):
        assert name in types, name


# ---- alert rules and dashboard (conf/) ---------------------------------------------------------

ALERTS = TOP / "conf" / "herinnerd-alerts.yml"
DASHBOARD = TOP / "conf" / "herinnerd-dashboard.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(not PROMTOOL, reason="no promtool (Debian package prometheus)")


def exported_metric_names():
    """Metric families herinnerd exports (from metrics.c, where /metrics is written)."""
    src = (TOP / "daemon" / "metrics.c").read_text()
    return set(re.findall(r'"(herinnerd_[a-z_]+)', src))


def used_metric_names(expr):
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in re.findall(r"herinnerd_[a-z_]+", expr)}


def dashboard_exprs():
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_alert_rules_parse_and_cover_what_operators_watch():
    yaml = pytest.importorskip("yaml")
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    exprs = " ".join(r["expr"] for r in alerts)
    for metric in ("herinnerd_due_backlog", "herinnerd_oldest_due_age_seconds",
                   'outcome="in-doubt"', "herinnerd_letters_without_address_total",
                   "sum by (channel)", "temporary-failure|permanent-failure"):
        assert metric in exprs, metric
    exported = exported_metric_names()
    for r in alerts:
        assert used_metric_names(r["expr"]) <= exported, r["alert"]
        assert r["annotations"]["summary"] and r["labels"]["severity"]


def test_dashboard_is_json_and_covers_what_operators_watch():
    # times on the dashboard in the zone of the example configuration, as everywhere else
    zone = re.search(r'^timezone = "([^"]+)";', (TOP / "conf" / "herinnerd.conf").read_text(), re.M)
    assert json.loads(DASHBOARD.read_text())["timezone"] == (zone.group(1) if zone else "browser")
    exprs = dashboard_exprs()
    joined = " ".join(exprs)
    for metric in ("herinnerd_due_backlog", "herinnerd_oldest_due_age_seconds",
                   'outcome="in-doubt"', "herinnerd_letters_without_address_total",
                   "temporary-failure|permanent-failure"):
        assert metric in joined, metric
    assert re.search(r"by \(channel[,)]", joined)
    exported = exported_metric_names()
    for e in exprs:
        assert used_metric_names(e) <= exported, e


@needs_promtool
def test_alert_rules_pass_promtool_and_fire_when_they_should():
    r = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([PROMTOOL, "test", "rules", "alerts_test.yml"], capture_output=True,
                       text=True, timeout=60, cwd=TOP / "tests" / "integration")
    assert r.returncode == 0, r.stdout + r.stderr


@needs_promtool
def test_dashboard_queries_are_valid_promql(workdir):
    # promtool has no query checker: each query becomes a recording rule, which it parses
    rules = workdir / "dashboard-queries.yml"
    rules.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(dashboard_exprs())]}]}))
    r = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- audit export --------------------------------------------------------------------------------

NASTY_SENDER = '=HYPERLINK("http://evil.example/","klik hier")'
NASTY_DETAIL = 'regel één, "twee"\nregel drie'


def auditor_config(workdir, pg, zone="Europe/Amsterdam"):
    path = workdir / "auditor.conf"
    path.write_text(f'timezone = "{zone}";\n'
                    f'database: {{ conninfo = "{pg.conninfo("auditor")}"; }};\n'
                    'policies = ( { name = "d"; steps = ( { channel = "null"; after = "0s"; } ); } );\n')
    return path


def add_attempts(pg, n, sender="Belastingdienst", detail="", created_at=None):
    """n attempts on one new message (as postgres, straight into the table)."""
    rid = pg.add_recipient("Jan", email="jan@example.nl")
    m = pg.add_message(rid, sender=sender, created_at=created_at)
    with pg.connect() as conn:
        conn.execute("INSERT INTO herinnerd.attempts (message_id, step, channel, outcome, detail,"
                     " address, instance, config_sha256) SELECT %s, g %% 4, 'email', 'sent', %s,"
                     " 'jan@example.nl', 'test', 'abc' FROM generate_series(1, %s) g",
                     (m, detail, n))
    return m


def test_csv_export_is_rfc4180_and_safe_for_spreadsheets(pg, workdir):
    conf = auditor_config(workdir, pg)
    add_attempts(pg, 1, sender=NASTY_SENDER, detail=NASTY_DETAIL)
    add_attempts(pg, 1, sender="+31 20 1234567", detail="-1 @home\tx")
    r = subprocess.run([str(__import__("harness").HERINNERCTL), "-c", str(conf), "audit", "export",
                        "--format", "csv"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    data = r.stdout.decode("utf-8")
    assert not data.startswith("\ufeff")
    # every line ends in CRLF; the only bare LF is the one inside the quoted detail
    assert data.endswith("\r\n") and data.count("\n") == data.count("\r\n") + 1
    rows = list(csv.reader(io.StringIO(data, newline="")))
    assert rows[0][:4] == ["id", "created_at", "message_id", "sender"]
    body = [dict(zip(rows[0], row)) for row in rows[1:]]
    assert body[0]["sender"] == "'" + NASTY_SENDER          # shown as text, not run
    assert body[0]["detail"] == NASTY_DETAIL                   # quoted, not neutralised
    assert body[1]["sender"] == "'+31 20 1234567" and body[1]["detail"] == "'-1 @home\tx"
    assert not any(v.startswith(("=", "+", "-", "@", "\t")) for row in rows for v in row)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0[12]:00", body[0]["created_at"])

    r = herinnerctl("audit", "export", "--bom", config=conf)
    assert r.returncode == 0 and r.stdout.startswith("\ufeffid,created_at,")
    r = herinnerctl("audit", "export", "--format", "json", "--bom", config=conf)
    assert r.returncode == 2 and "CSV only" in r.stderr


def test_json_export_is_one_array_and_jsonl_is_lines(pg, workdir):
    conf = auditor_config(workdir, pg)
    r = herinnerctl("audit", "export", "--format", "json", config=conf)
    assert r.returncode == 0 and json.loads(r.stdout) == []
    add_attempts(pg, 3, sender=NASTY_SENDER, detail=NASTY_DETAIL)
    r = herinnerctl("audit", "export", "--format", "json", config=conf)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 3 and rows[0]["sender"] == NASTY_SENDER and rows[0]["detail"] == NASTY_DETAIL
    assert isinstance(rows[0]["id"], int) and rows[0]["outcome"] == "sent" and len(rows[0]["hash"]) == 64
    r = herinnerctl("audit", "export", "--format", "jsonl", config=conf)
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and [json.loads(l) for l in lines] == rows
    r = herinnerctl("audit", "export", "--format", "xml", config=conf)
    assert r.returncode == 2 and "csv, json" in r.stderr


def test_export_answers_bad_times_in_words(pg, workdir):
    conf = auditor_config(workdir, pg)
    for args in (["--since", "gisteren"], ["--until", "2026-13-45"],
                 ["--since", "'; DROP TABLE x; --"]):
        r = herinnerctl("audit", "export", *args, config=conf)
        assert r.returncode == 2, args
        assert f"{args[0]} '{args[1]}' is not a date or time" in r.stderr
        assert "ERROR" not in r.stderr and "timestamp" not in r.stderr and "syntax" not in r.stderr


def max_rss_kb(argv):
    """Run argv (output discarded); (exit status, its peak resident set in kB)."""
    import os
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, usage.ru_maxrss


def test_export_streams_in_constant_memory_and_uses_the_time_index(pg, workdir):
    from harness import HERINNERCTL
    conf = auditor_config(workdir, pg)
    with pg.connect() as conn:
        conn.execute("ALTER ROLE auditor SET session_preload_libraries = 'auto_explain'")
        conn.execute("ALTER ROLE auditor SET auto_explain.log_min_duration = 0")
    add_attempts(pg, 1000, detail="x" * 500)
    sizes = {}
    for fmt in ("csv", "json"):
        rc, sizes[fmt, "small"] = max_rss_kb([HERINNERCTL, "-c", conf, "audit", "export", "--format", fmt])
        assert rc == 0
    add_attempts(pg, 25000, detail="x" * 500)       # 25 times as much, some 14 MB of export
    for fmt in ("csv", "json"):
        rc, sizes[fmt, "large"] = max_rss_kb([HERINNERCTL, "-c", conf, "audit", "export", "--format", fmt])
        assert rc == 0
        # 14 MB read into memory would show; ASan's quarantine holds some freed memory
        bound = 8000 if os.environ.get("HERINNERD_SANITIZERS") else 3000
        assert sizes[fmt, "large"] - sizes[fmt, "small"] < bound, sizes   # kB

    with pg.connect() as conn:
        conn.execute("ANALYZE herinnerd.attempts")
    r = herinnerctl("audit", "export", "--format", "jsonl", "--since", "2000-01-01",
                    "--until", "2000-01-02", config=conf)
    assert r.returncode == 0 and r.stdout == ""
    plans = wait_for(lambda: plans_logged(pg, "DECLARE export"), what="the export's plan")
    assert any("attempts_created_at" in p for p in plans), plans
    assert not any("Seq Scan on attempts" in p for p in plans), plans


# ---- status and explain: one time zone, escaped text, answers in words --------------------------

def test_status_escapes_control_characters(pg, workdir):
    conf = auditor_config(workdir, pg)
    m = add_attempts(pg, 1, sender="\x1b[31mRood\x1b[0m", detail="eerste\nregel\x1b]0;titel\x07\u202eexe.pdf")
    with pg.connect() as conn:
        conn.execute("UPDATE herinnerd.messages SET subject = E'Twee\\r\\nregels\\u009b2J' WHERE id = %s",
                     (m,))
    r = herinnerctl("status", m, config=conf)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]", out), repr(out)
    assert "\\x1b[31mRood\\x1b[0m" in out
    assert "eerste\\nregel\\x1b]0;titel\\x07\\u202eexe.pdf" in out
    assert "Twee\\r\\nregels\\u009b2J" in out
    assert len(out.splitlines()) == 5      # message, arrived, not adopted, one attempt, zone


def test_status_answers_a_bad_id_in_words(workdir):
    conf = workdir / "nodb.conf"      # checked before connecting: no database needed
    conf.write_text('database: { conninfo = "host=/nonexistent dbname=none"; };\n'
                    'policies = ( { name = "d"; steps = ( { channel = "null"; after = "0s"; } ); } );\n')
    for arg in ("abc", "-5", "0", "12abc", "99999999999999999999999", "1; DROP"):
        r = herinnerctl("status", arg, config=conf)
        assert r.returncode == 2, arg
        assert f"'{arg}' is not a message id" in r.stderr
        assert "ERROR" not in r.stderr and "bigint" not in r.stderr and "syntax" not in r.stderr


def test_status_of_a_message_that_does_not_exist(pg, workdir):
    r = herinnerctl("status", "424242", config=auditor_config(workdir, pg))
    assert r.returncode == 1 and "there is no message 424242" in r.stderr


def test_status_shows_the_configured_zone_also_with_conninfo(pg, workdir):
    import datetime
    m = add_attempts(pg, 1)
    conf = auditor_config(workdir, pg, zone="Asia/Kolkata")      # +05:30: not the host's
    for args in ([], ["--conninfo", pg.conninfo("auditor")]):
        r = herinnerctl(*args, "status", m, config=conf)
        assert r.returncode == 0, r.stderr
        stamps = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d([+-]\d\d(?::\d\d)?)", r.stdout)
        assert len(stamps) == 2 and set(stamps) == {"+05:30"}, r.stdout
        assert "(times in Asia/Kolkata)" in r.stdout
    # no config at all: the host's zone, still with its offset
    host = datetime.datetime.now().astimezone().strftime("%z")
    host = host[:3] + (":" + host[3:] if host[3:] != "00" else "")
    r = herinnerctl("-c", workdir / "none.conf", "--conninfo", pg.conninfo("auditor"), "status", m)
    assert r.returncode == 0, r.stderr
    assert set(re.findall(r"\d\d:\d\d:\d\d([+-]\d\d(?::\d\d)?)", r.stdout)) == {host}, r.stdout


def test_explain_shows_each_step_time_in_the_configured_zone(workdir):
    conf = workdir / "explain.conf"
    conf.write_text('timezone = "Europe/Amsterdam";\n'
                    'database: { conninfo = "dbname=none"; };\n'
                    'policies = ( { name = "d"; kinds = [ "*" ]; steps = (\n'
                    '  { channel = "null"; after = "0s"; },\n'
                    '  { channel = "null"; after = "3d"; quiet_hours = "21:00-08:00"; business_days = true; },\n'
                    '  { channel = "null"; before_due = "10d"; } ); } );\n')
    r = herinnerctl("explain", "aanslag", "--created", "2026-10-23 22:30", "--due", "2026-11-20",
                    config=conf)
    assert r.returncode == 0, r.stderr
    assert "Fri 2026-10-23 22:30+02" in r.stdout           # summer time
    assert "Tue 2026-10-27 08:00+01" in r.stdout           # Monday evening is quiet; winter time
    assert "Tue 2026-11-10 00:00+01" in r.stdout
    assert "times in Europe/Amsterdam" in r.stdout
    r = herinnerctl("explain", "aanslag", "--created", "gisteren", config=conf)
    assert r.returncode == 2 and "--created 'gisteren' is not a date or time" in r.stderr
    r = herinnerctl("explain", "aanslag", "--due", "2026-02-30", config=conf)
    assert r.returncode == 2 and "--due '2026-02-30' is not a date or time" in r.stderr
    r = herinnerctl("explain", "\x1b[2Jkind", config=conf)
    assert "\x1b" not in r.stdout and "\\x1b[2Jkind" in r.stdout


def test_daemon_formats_times_in_its_zone(pg, daemon):
    port = free_port()
    d = daemon(daemon_config(pg, port))
    d.wait_ready()
    d.write_config(daemon_config(pg, port).replace('"Europe/Amsterdam"', '"Asia/Kolkata"'))
    d.sighup()          # a reload that changes the zone changes it for the database too
    d.wait_log("configuration reloaded")
    m = pg.add_message(pg.add_recipient("Jan"))
    wait_for(lambda: pg.attempts(m), what="the first attempt")
    pg.mark_read(m)
    text = d.wait_log(f"message {m} read at ")
    assert re.search(rf"message {m} read at \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\+05:30", text), text
