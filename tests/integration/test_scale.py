"""Slow work never blocks claims, and every daemon connection has timeouts, keepalives and a
host name resolved off the loop (issue 7)."""

import os
import subprocess
import threading
import time

from harness import free_port, wait_for

# Test hooks, installed as postgres. Adopting a message with the subject 'slow' waits (inside
# the daemon's adoption statement) until the test inserts a row into hook_release; every
# adoption and every attempt row notes the session's settings in hook_log (committed with them).
HOOKS = """
CREATE TABLE public.hook_log (what text, statement_timeout text, lock_timeout text, app text,
                              pid int, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE public.hook_release (x int);
CREATE FUNCTION public.note_session() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO public.hook_log (what, statement_timeout, lock_timeout, app, pid)
    VALUES (TG_TABLE_NAME, current_setting('statement_timeout'), current_setting('lock_timeout'),
            current_setting('application_name'), pg_backend_pid());
    IF TG_TABLE_NAME = 'escalations'
       AND (SELECT subject FROM herinnerd.messages WHERE id = NEW.message_id) = 'slow' THEN
        FOR i IN 1..400 LOOP    -- 20 s at most, well inside statement_timeout
            EXIT WHEN EXISTS (SELECT 1 FROM public.hook_release);
            PERFORM pg_sleep(0.05);
        END LOOP;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER note_session BEFORE INSERT ON herinnerd.escalations
    FOR EACH ROW EXECUTE FUNCTION public.note_session();
CREATE TRIGGER note_session AFTER INSERT ON herinnerd.attempts
    FOR EACH ROW EXECUTE FUNCTION public.note_session();
"""


def install_hooks(pg):
    with pg.connect() as conn:
        conn.execute(HOOKS)


def config(conninfo, port, after="0s"):
    return f"""
instance = "scale-test";
timezone = "Europe/Amsterdam";
database: {{ conninfo = "{conninfo}"; }};
http: {{ listen = "127.0.0.1:{port}"; }};
policies = ( {{ name = "default"; kinds = [ "*" ];
  steps = ( {{ channel = "null"; after = "{after}"; }} ); }} );
"""


def http_get(port, path, timeout=5):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sleeping_adoption(pg):
    rows = pg.query("SELECT pid, query_start FROM pg_stat_activity"
                    " WHERE usename = 'herinnerd' AND wait_event = 'PgSleep'")
    return rows[0] if rows else None


def test_slow_work_and_scrapes_do_not_delay_claims(pg, daemon):
    install_hooks(pg)
    port = free_port()
    d = daemon(config(pg.conninfo(), port, after="6s"))
    d.wait_ready()
    rid = pg.add_recipient("Jan", email="jan@example.nl")
    fast = pg.add_message(rid, subject="fast")
    wait_for(lambda: pg.escalation(fast), what="the first message adopted")

    # the next adoption hangs in the database; scrapes queue up behind it
    slow = pg.add_message(rid, subject="slow")
    blocked = wait_for(lambda: sleeping_adoption(pg), what="the adoption of 'slow' waiting")
    scrapes = []

    def scrape():
        scrapes.append(http_get(port, "/metrics", timeout=30))
    threads = [threading.Thread(target=scrape) for _ in range(3)]
    for t in threads:
        t.start()

    # meanwhile the first message falls due, is claimed, decided and recorded
    attempt = wait_for(lambda: pg.attempts(fast), timeout=20, what="the attempt of 'fast'")[0]
    assert sleeping_adoption(pg) is not None, "the adoption was over before the claim"
    assert attempt["created_at"] > blocked["query_start"]
    assert not scrapes, "a scrape was answered while the main connection was busy"

    with pg.connect() as conn:
        conn.execute("INSERT INTO public.hook_release VALUES (1)")
    wait_for(lambda: pg.escalation(slow), what="the 'slow' message adopted")
    for t in threads:
        t.join(30)
    assert [s for s, _ in scrapes] == [200, 200, 200]

    # both connections carry the defaults and the name
    log = pg.query("SELECT * FROM public.hook_log")
    assert {r["what"] for r in log} == {"escalations", "attempts"}
    assert {(r["statement_timeout"], r["lock_timeout"], r["app"]) for r in log} == \
        {("30s", "5s", "herinnerd")}
    main = {r["pid"] for r in log if r["what"] == "escalations"}
    urgent = {r["pid"] for r in log if r["what"] == "attempts"}
    assert main.isdisjoint(urgent)


def test_a_stream_of_new_messages_does_not_hold_back_due_work(pg, daemon):
    """Every adoption batch re-arms the due timer. A re-arm must never push a pending wake-up
    further out: with the back-off after the empty start-up claim (20 ms) set again on each
    batch of a steady stream, the timer never fired, and nothing was claimed until the stream
    stopped (due->attempt p50 3.7 s at 1,000 due/s)."""
    d = daemon(config(pg.conninfo(), free_port(), after="1s"))
    d.wait_ready()
    rid = pg.add_recipient("Jan", email="jan@example.nl")
    first = pg.add_message(rid, subject="first")
    stop = threading.Event()

    def stream():
        with pg.connect("inbox") as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO herinnerd.messages (recipient_id, sender, kind, subject)"
                             " VALUES (%s, 'Belastingdienst', 'aanslag', 'stream')", (rid,))
                time.sleep(0.005)
    t = threading.Thread(target=stream)
    t.start()
    try:
        # claimed while the stream goes on (it runs until the attempt is there)
        attempt = wait_for(lambda: pg.attempts(first), timeout=30,
                           what="the first message's attempt during the stream")[0]
        assert t.is_alive()
    finally:
        stop.set()
        t.join(10)
    assert attempt["outcome"] == "sent"


# getaddrinfo for two test names: slow.herinnerd.test creates GATE.entered, waits while GATE
# exists (20 s at most), then answers as localhost; down.herinnerd.test does not exist.
SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))
        dlsym(RTLD_NEXT, "getaddrinfo");

    if (node && strcmp(node, "down.herinnerd.test") == 0)
        return EAI_NONAME;
    if (node && strcmp(node, "slow.herinnerd.test") == 0) {
        close(open(GATE ".entered", O_CREAT | O_WRONLY, 0644));
        for (int i = 0; i < 400 && access(GATE, F_OK) == 0; i++)
            usleep(50000);
        node = "localhost";
    }
    return real(node, service, hints, res);
}
"""


def build_shim(workdir):
    gate = workdir / "dns-gate"
    gate.write_text("")
    src = workdir / "shim.c"
    src.write_text(SHIM)
    so = workdir / "shim.so"
    subprocess.run(["cc", "-shared", "-fPIC", f'-DGATE="{gate}"', "-o", str(so), str(src), "-ldl"],
                   check=True)
    return so, gate


def keepalive_on(port):
    """Whether every TCP connection from local port PORT has a keepalive timer (ss -o)."""
    out = subprocess.run(["ss", "-tnoH", "state", "established", f"sport = :{port}"],
                         capture_output=True, text=True, check=True).stdout
    return bool(out.strip()) and all("keepalive" in line for line in out.splitlines())


def test_host_names_resolve_off_the_loop_with_keepalives_and_own_options(pg, daemon, workdir):
    install_hooks(pg)
    so, gate = build_shim(workdir)
    port = free_port()
    # two hosts, the first unknown; the operator's own lock_timeout wins over ours
    conninfo = (f"host=down.herinnerd.test,slow.herinnerd.test port={pg.port} dbname=inbox "
                f"user=herinnerd target_session_attrs=read-write options='-c lock_timeout=1s'")
    # (a sanitizer build insists on its runtime coming first; the shim only wraps one call)
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
    d = daemon(config(conninfo, port), env={"LD_PRELOAD": str(so), "ASAN_OPTIONS": asan})

    # while the name is being resolved the loop answers
    wait_for(lambda: (workdir / "dns-gate.entered").exists(), what="the name being resolved")
    for _ in range(3):
        status, text = http_get(port, "/healthz", timeout=3)
        assert status == 503
    assert not pg.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'herinnerd'")

    gate.unlink()
    d.wait_ready(timeout=20)
    assert "could not resolve down.herinnerd.test" in d.log()
    rid = pg.add_recipient("Jan", email="jan@example.nl")
    mid = pg.add_message(rid)
    wait_for(lambda: pg.attempts(mid), what="the attempt")
    log = pg.query("SELECT * FROM public.hook_log")
    assert {(r["statement_timeout"], r["lock_timeout"], r["app"]) for r in log} == \
        {("30s", "1s", "herinnerd")}

    # localhost is ::1 and 127.0.0.1; PostgreSQL listens on the second: all three lanes got there
    sessions = pg.query("SELECT client_addr::text AS addr, client_port FROM pg_stat_activity"
                        " WHERE application_name = 'herinnerd'")
    assert len(sessions) == 3 and {s["addr"] for s in sessions} == {"127.0.0.1/32"}
    for s in sessions:
        wait_for(lambda: keepalive_on(s["client_port"]), what="a keepalive timer")
