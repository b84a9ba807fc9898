"""Limits under fire: a flood of idle connections, a daemon out of file descriptors, and
delivery reports while the database is down must neither take the daemon down nor grow it
without bound. Each test is bounded in time (well under 30 s)."""

import http.client
import os
import resource
import select
import socket
import time
from contextlib import contextmanager

from harness import check_config, free_port, wait_for


def config(pg, smtp, port, http_extra="", extra=""):
    return f"""
instance = "limits-test";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>"; starttls = "no"; }};
http: {{ listen = "127.0.0.1:{port}"; {http_extra} }};
{extra}
policies = ( {{ name = "default"; kinds = [ "*" ];
  steps = ( {{ channel = "email"; after = "0s"; }}, {{ channel = "null"; after = "1h"; }} ); }} );
"""


@contextmanager
def nofile(soft):
    """Children started inside inherit this soft RLIMIT_NOFILE."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


@contextmanager
def many_fds(n):
    """Let this process hold n more sockets."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(old[1], max(old[0], n + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


def healthz(port, timeout=3):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        return r.status
    except OSError:
        return None
    finally:
        conn.close()


def open_idle(port, n, timeout=10):
    """n connections that never send a byte; waits (up to timeout) until the TCP handshakes are
    done, i.e. the daemon or its listen backlog took them."""
    poller = select.poll()
    socks, waiting = [], {}
    deadline = time.monotonic() + timeout
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
        waiting[s.fileno()] = s
        poller.register(s, select.POLLOUT)
        # in batches smaller than the listen backlog, so the daemon must keep accepting
        while len(waiting) >= 64 or (i == n - 1 and waiting):
            left = deadline - time.monotonic()
            if left <= 0:
                return socks
            for fd, _ in poller.poll(min(left, 0.5) * 1000):
                poller.unregister(fd)
                del waiting[fd]
    return socks


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def log_lines(d):
    return d.log().count("\n")


def test_healthz_answers_through_a_flood_of_idle_connections(pg, smtp, daemon):
    """1,100 idle connections at the default 1,024 file limit: the daemon keeps a capped number
    of them (closing the oldest idle one for each new one), and /healthz still answers."""
    port = free_port()
    with nofile(1024):
        d = daemon(config(pg, smtp, port))
    d.wait_ready()
    lines_before = log_lines(d)
    with many_fds(1100):
        socks = open_idle(port, 1100)
        try:
            start = time.monotonic()
            for _ in range(5):
                assert healthz(port) == 200
            assert time.monotonic() - start < 10
            assert d.running
            assert fds(d.pid) < 256 + 64, "the connection cap holds"
            assert "at most 256 connections" in d.log()
            assert log_lines(d) - lines_before < 100, "no log flood"
        finally:
            for s in socks:
                s.close()
    assert healthz(port) == 200


def test_configured_cap(pg, smtp, daemon, workdir):
    """http.max_connections = 8: 50 idle connections leave at most 8 open, /healthz answers;
    --check refuses a cap below 4."""
    port = free_port()
    d = daemon(config(pg, smtp, port, http_extra="max_connections = 8;"))
    d.wait_ready()
    base = fds(d.pid)
    socks = open_idle(port, 50)
    try:
        assert healthz(port) == 200
        assert fds(d.pid) <= base + 8 + 1
        assert "closed the oldest idle one" in d.log()
    finally:
        for s in socks:
            s.close()
    rc, err = check_config(config(pg, smtp, port, http_extra="max_connections = 2;"), workdir)
    assert rc != 0 and ":5: 'max_connections' must be between 4 and 65536" in err, err


def test_accept_backs_off_when_out_of_descriptors(pg, smtp, daemon):
    """With no descriptor left (and nothing idle to close), accept() fails: the listener pauses
    and retries with backoff instead of spinning and flooding the log; once descriptors are
    available again it serves /healthz."""
    port = free_port()
    d = daemon(config(pg, smtp, port))
    d.wait_ready()
    assert healthz(port) == 200
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    time.sleep(0.5)                       # let start-up settle (worker threads, LISTEN)
    # A few below what it holds: a descriptor it closes on its own (the /healthz connection
    # above, a worker's socket) must not make room for an accept, or the idle-closing path
    # runs instead of the one under test.
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (fds(d.pid) - 3, hard))
    lines_before, cpu_before = log_lines(d), cpu_seconds(d.pid)
    socks = open_idle(port, 20)
    try:
        time.sleep(4)
        assert d.running, f"exit status {d.returncode}"
        lines = log_lines(d) - lines_before
        cpu = cpu_seconds(d.pid) - cpu_before
        assert "not accepting for" in d.log(), d.log()[-2000:]
        assert lines < 40, f"{lines} log lines in 4 s"
        assert cpu < 1.0, f"{cpu:.2f} s of CPU in 4 s: spinning"
    finally:
        for s in socks:
            s.close()
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (1024, hard))
    # the backoff is at most 2 s: it accepts again soon
    wait_for(lambda: healthz(port, timeout=1) == 200, timeout=10, what="healthz after backoff")


def sms_section(port):
    # the gateway is never reached in this test: only /dlr is
    return f"""sms: {{ url = "http://127.0.0.1:{free_port()}/cgi-bin/sendsms"; username = "u";
        password = "p"; sender = "Overheid"; }};"""


def test_dlr_answers_503_when_it_cannot_queue(pg, smtp, daemon):
    """With the database down, delivery reports queue up to a bound; beyond it /dlr answers 503
    (Kannel retries later) and the daemon's memory stays put."""
    port = free_port()
    d = daemon(config(pg, smtp, port, extra=sms_section(port)))
    d.wait_ready()
    pg.stop()
    wait_for(lambda: healthz(port) == 503, what="healthz 503 without the database")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    codes = {}

    def report(i):
        conn.request("GET", f"/dlr?m={i + 1}&s=0&t=1&k={i:016x}&type=1")
        r = conn.getresponse()
        r.read()
        codes[r.status] = codes.get(r.status, 0) + 1

    for i in range(500):
        report(i)
    rss_before = rss_kb(d.pid)
    for i in range(500, 8000):
        report(i)
    grown = rss_kb(d.pid) - rss_before
    conn.close()
    assert codes.get(503, 0) > 0, codes
    assert codes.get(200, 0) <= 1100, codes
    if not os.environ.get("HERINNERD_SANITIZERS"):   # ASan's quarantine holds freed memory
        assert grown < 4096, f"RSS grew {grown} kB for 7,500 reports"
    assert d.running
    # the database is back: the queue drains and reports are taken again
    pg.start()
    wait_for(lambda: healthz(port) == 200, timeout=20, what="healthz back to 200")

    def taken():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            c.request("GET", "/dlr?m=1&s=0&t=1&k=ffffffffffffffff&type=1")
            return c.getresponse().status == 200
        finally:
            c.close()
    wait_for(taken, timeout=20, what="/dlr takes reports again")


def test_unit_sets_resource_limits():
    """The unit bounds descriptors, memory and threads, each with a comment saying why."""
    top = os.environ.get("HERINNERD_TOP", os.path.join(os.path.dirname(__file__), "..", ".."))
    lines = open(os.path.join(top, "units", "herinnerd.service")).read().splitlines()
    for key in ("LimitNOFILE", "MemoryMax", "TasksMax"):
        at = [i for i, l in enumerate(lines) if l.startswith(key + "=")]
        assert len(at) == 1, f"{key}= set once"
        assert lines[at[0] - 1].startswith("#"), f"a comment above {key}="
    nofile = next(l for l in lines if l.startswith("LimitNOFILE=")).split("=")[1]
    assert int(nofile) >= 4096
