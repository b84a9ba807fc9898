"""The configuration as the daemon lives with it: a reload is all or nothing, and @include'd
files are part of what is hashed and stored. Real PostgreSQL and smtp-sink."""

import os

from harness import SmtpSink, check_config, wait_for


def config(pg, server, extra="", steps='{ channel = "email"; after = "0s"; }'):
    return f"""
instance = "config-test";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{server}"; from = "MijnOverheid <noreply@example.nl>";
          starttls = "no"; workers = 1; timeout = "10s"; }};
{extra}
policies = ( {{ name = "default"; kinds = [ "*" ]; steps = ( {steps} ); }} );
"""


SMS_GROUP = ('sms: {{ url = "{url}"; username = "u"; password = "p"; sender = "Overheid"; '
             'dlr_base = "http://127.0.0.1:9"; }};')


def mail_to(pg, name):
    return pg.add_message(pg.add_recipient(name, email=f"{name.lower()}@example.nl"))


def refused_reload_keeps_everything(pg, smtp, daemon, workdir, broken_extra, steps=None):
    """Start on `smtp`, reload a file that names a second server but is broken by broken_extra:
    the reload is refused and the next mail still goes to `smtp`; then a good file with the
    second server is taken (so the test could see a difference)."""
    second = SmtpSink(workdir / "second-smtp").start()
    try:
        good_extra = SMS_GROUP.format(url="http://127.0.0.1:13013/cgi-bin/sendsms")
        d = daemon(config(pg, smtp.address, extra=good_extra))
        d.wait_ready()
        mail_to(pg, "Anna")
        smtp.wait_messages(1)

        mark, since = len(d.log()), len(d.notifications)
        d.write_config(config(pg, second.address, extra=broken_extra,
                              **({"steps": steps} if steps else {})))
        d.sighup()
        d.wait_log("reload refused", since=mark)
        d.wait_notify("READY=1", since=since)
        assert "configuration reloaded" not in d.log()[mark:]

        m = mail_to(pg, "Bram")
        smtp.wait_messages(2)
        wait_for(lambda: [a for a in pg.attempts(m) if a["outcome"] == "sent"], timeout=10,
                 what="the second mail recorded as sent")
        assert second.messages() == [], "a refused reload moved mail to the new server"

        # the same server change in a good file is taken at once
        mark = len(d.log())
        d.write_config(config(pg, second.address, extra=good_extra))
        d.sighup()
        d.wait_log("configuration reloaded", since=mark)
        mail_to(pg, "Cees")
        second.wait_messages(1)
        assert len(smtp.messages()) == 2
    finally:
        second.stop()


def test_reload_refused_for_a_bad_sms_url_keeps_the_old_smtp_server(pg, smtp, daemon, workdir):
    refused_reload_keeps_everything(pg, smtp, daemon, workdir,
                                    SMS_GROUP.format(url="http://"))


def test_reload_refused_by_a_channel_keeps_the_other_channels(pg, smtp, daemon, workdir):
    # valid as a file, refused only when applied: the paper channel is not running (a new
    # channel takes a restart), and the e-mail channel had already been asked first
    spool = workdir / "spool"
    refused_reload_keeps_everything(
        pg, smtp, daemon, workdir,
        SMS_GROUP.format(url="http://127.0.0.1:13013/cgi-bin/sendsms")
        + f'\npaper: {{ spool = "{spool}"; }};',
        steps='{ channel = "email"; after = "0s"; }, { channel = "paper"; after = "1d"; }')


def test_an_edit_in_an_included_file_is_a_new_stored_configuration(pg, smtp, daemon, workdir):
    included = workdir / "policies.conf"
    included.write_text('policies = ( { name = "default"; kinds = [ "*" ];\n'
                        '  steps = ( { channel = "email"; after = "0s"; } ); } );\n')
    main = config(pg, smtp.address).split("policies = (")[0] + f'@include "{included}"\n'
    d = daemon(main)
    d.wait_ready()
    wait_for(lambda: pg.query("SELECT sha256 FROM herinnerd.configs"), timeout=10,
             what="the configuration stored")
    first = pg.query("SELECT sha256, body FROM herinnerd.configs")
    assert len(first) == 1
    assert 'after = "0s"' in first[0]["body"]
    assert f'# @include "{included}"' in first[0]["body"]

    included.write_text(included.read_text().replace('after = "0s"', 'after = "1s"'))
    mark = len(d.log())
    d.sighup()
    d.wait_log("configuration reloaded", since=mark)
    assert "configuration unchanged" not in d.log()[mark:]
    rows = wait_for(lambda: len(pg.query("SELECT 1 FROM herinnerd.configs")) == 2
                    and pg.query("SELECT sha256, body FROM herinnerd.configs"), timeout=10,
                    what="the new configuration stored")
    new = [r for r in rows if r["sha256"] != first[0]["sha256"]][0]
    assert 'after = "1s"' in new["body"]
    m = mail_to(pg, "Dirk")
    wait_for(lambda: [a for a in pg.attempts(m) if a["outcome"] == "sent"], timeout=10,
             what="a mail under the new configuration")
    assert pg.attempts(m)[0]["config_sha256"] == new["sha256"]


def test_check_names_the_included_file_and_its_line(workdir, herinnerd_binary):
    with open(os.path.join(workdir, "policies.conf"), "w") as f:
        f.write('\n\npolicies = ( { name = "d"; steps = ( { channel = "pigeon"; after = "0s"; } ); } );\n')
    rc, err = check_config('database: { conninfo = "dbname=x"; };\n@include "policies.conf"\n',
                           workdir)
    assert rc != 0
    # named as the @include gives it (read from the main file's directory)
    assert err.startswith("policies.conf:3: unknown channel 'pigeon'"), err
