"""The loopback HTTP listener: /healthz follows the database, /metrics speaks Prometheus, and
bad requests get a 4xx, never a crash."""

import http.client
import socket
import urllib.error
import urllib.request

from harness import free_port, wait_for


def config(pg, smtp, port):
    return f"""
instance = "http-test";
database: {{ conninfo = "{pg.conninfo()}"; }};
email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>"; starttls = "no"; }};
http: {{ listen = "127.0.0.1:{port}"; }};
policies = ( {{ name = "default"; kinds = [ "*" ];
  steps = ( {{ channel = "email"; after = "0s"; }}, {{ channel = "null"; after = "1h"; }} ); }} );
"""


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_healthz_follows_the_database(pg, smtp, daemon):
    port = free_port()
    d = daemon(config(pg, smtp, port))
    d.wait_ready()
    assert get(port, "/healthz") == (200, "ok\n")
    pg.stop()
    wait_for(lambda: get(port, "/healthz")[0] == 503, what="healthz 503 without the database")
    pg.start()
    wait_for(lambda: get(port, "/healthz")[0] == 200, timeout=20, what="healthz back to 200")


def test_metrics(pg, smtp, daemon):
    port = free_port()
    d = daemon(config(pg, smtp, port))
    d.wait_ready()
    r = pg.add_recipient("Jan", email="jan@example.nl")
    pg.add_message(r)
    pg.add_message(pg.add_recipient("Geen Mail"))
    wait_for(lambda: len(pg.attempts()) == 2, what="two attempts")
    status, text = get(port, "/metrics")
    assert status == 200
    lines = text.splitlines()
    assert 'herinnerd_attempts_total{channel="email",outcome="sent"} 1' in lines
    assert 'herinnerd_attempts_total{channel="email",outcome="skipped"} 1' in lines
    # escalations by state were counted over the whole table on every scrape (issue 7): gone
    assert not any(l.startswith("herinnerd_escalations{") for l in lines)
    assert "herinnerd_ready 1" in lines and "herinnerd_in_flight_sends 0" in lines
    assert "herinnerd_due_backlog 0" in lines
    assert "herinnerd_database_up 1" in lines
    assert any(l.startswith('herinnerd_send_latency_seconds_bucket{channel="email",le="+Inf"} 2')
               for l in lines)
    assert "# TYPE herinnerd_send_latency_seconds histogram" in lines
    assert "herinnerd_oldest_due_age_seconds 0.000" in lines


def test_bad_requests_get_4xx_and_the_daemon_lives(pg, smtp, daemon):
    port = free_port()
    d = daemon(config(pg, smtp, port))
    d.wait_ready()
    assert get(port, "/nothing-here")[0] == 404
    assert get(port, "/dlr")[0] in (400, 404)
    # garbage on the socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\r\n")
        s.settimeout(5)
        try:
            reply = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            reply = b""
        assert reply == b"" or reply.startswith(b"HTTP/1.1 4")
    # an oversized header
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.putrequest("GET", "/metrics")
    conn.putheader("X-Big", "x" * 100000)
    try:
        conn.endheaders()
        status = conn.getresponse().status
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        status = 400
    assert 400 <= status < 500
    conn.close()
    # a method we do not serve
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("DELETE", "/metrics")
    assert 400 <= conn.getresponse().status < 500
    conn.close()
    assert d.running
    assert get(port, "/healthz")[0] == 200
