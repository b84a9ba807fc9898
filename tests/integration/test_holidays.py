"""Public holidays: business_days steps pass over them, and `herinnerctl explain --created` says so."""

import datetime
import zoneinfo

from harness import herinnerctl, wait_for

ZONE = "Europe/Amsterdam"


def config(conninfo, smtp_address, extra=""):
    return f"""
timezone = "{ZONE}";
database: {{ conninfo = "{conninfo}"; }};
email: {{ server = "{smtp_address}"; from = "MijnOverheid <noreply@example.nl>"; starttls = "no"; }};
{extra}
policies = ( {{ name = "default"; kinds = [ "*" ];
  steps = (
    {{ channel = "email"; after = "0s"; business_days = true; }},
    {{ channel = "email"; after = "3d"; business_days = true; }}
  ); }} );
"""


def test_explain_shows_a_deferral_past_koningsdag(workdir):
    conf = workdir / "holidays.conf"
    conf.write_text(config("dbname=inbox", "127.0.0.1:25",
                           'holidays = [ "2027-12-31" ];\n'
                           'holiday_options = { good_friday = true; };'))
    # Saturday 24 April 2027 + 3 days = Tuesday 27 April, Koningsdag
    r = herinnerctl("explain", "brief", "--created", "2027-04-24 09:30", config=conf)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()

    def line_with(*needles):
        found = [line for line in lines if all(n in line for n in needles)]
        assert found, f"no line with {needles} in:\n{r.stdout}"

    line_with("2027-04-26 09:30", "deferred from Sat 24 Apr 09:30 (Sat 24 Apr weekend, Sun 25 Apr weekend)")
    line_with("2027-04-28 09:30", "deferred from Tue 27 Apr 09:30 (Tue 27 Apr Koningsdag)")
    # Goede Vrijdag (an option) and Pasen; a date of the config's own, New Year and a weekend
    r = herinnerctl("explain", "brief", "--created", "2027-03-23 10:00", config=conf)
    lines = r.stdout.splitlines()
    line_with("2027-03-30 10:00", "(Fri 26 Mar Goede Vrijdag, Sat 27 Mar weekend, "
              "Sun 28 Mar Eerste Paasdag, Mon 29 Mar Tweede Paasdag)")
    r = herinnerctl("explain", "brief", "--created", "2027-12-28 10:00", config=conf)
    lines = r.stdout.splitlines()
    line_with("2028-01-03 10:00", "deferred from Fri 31 Dec 10:00 (Fri 31 Dec holiday (config), "
              "Sat 01 Jan Nieuwjaarsdag, Sun 02 Jan weekend)")
    r = herinnerctl("explain", "brief", "--created", "27-04-2027", config=conf)
    assert r.returncode == 2 and "27-04-2027" in r.stderr


def test_the_daemon_defers_a_step_on_a_configured_holiday(pg, smtp, daemon, workdir):
    today = datetime.datetime.now(zoneinfo.ZoneInfo(ZONE)).date()
    d = daemon(config(pg.conninfo(), smtp.address, f'holidays = [ "{today.isoformat()}" ];'))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"))
    wait_for(lambda: pg.escalation(m), what="the message adopted")
    planned = pg.escalation(m)["next_at"].astimezone(zoneinfo.ZoneInfo(ZONE))
    assert planned.date() > today, planned
    assert planned.date().weekday() < 5
    assert not pg.attempts(m)
