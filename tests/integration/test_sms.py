"""The SMS channel end to end: the built daemon, a real PostgreSQL and a real Kannel (bearerbox,
smsbox and the fake SMSC on loopback), delivery reports included. Policies use seconds."""

import http.server
import re
import signal
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import Kannel, free_port, wait_for

SMS_THEN_NULL = [
    '{ channel = "sms"; after = "0s"; retry = { max = 5; backoff = "1s"; }; }',
    '{ channel = "null"; after = "0s"; }',
]
SMS_ONLY = SMS_THEN_NULL[:1]
TOKEN = re.compile(r"^[0-9a-f]{16}$")


def config(pg, kannel, http_port, steps=SMS_THEN_NULL, password=None, sms_extra=""):
    return f"""
instance = "sms-test";
timezone = "Europe/Amsterdam";
inbox_url = "https://mijn.overheid.nl";
database: {{ conninfo = "{pg.conninfo()}"; }};
http: {{ listen = "127.0.0.1:{http_port}"; }};
sms: {{ url = "{kannel.sendsms_url}"; username = "{kannel.username}";
        password = "{password or kannel.password}"; sender = "Overheid"; timeout = "5s";
        {sms_extra} }};
policies = (
  {{ name = "default"; kinds = [ "*" ];
     steps = ( {", ".join(steps)} ); }}
);
"""


def rows(pg, message_id):
    return [(a["step"], a["try"], a["channel"], a["outcome"], a["detail"])
            for a in pg.attempts(message_id)]


def wait_attempt(pg, message_id, pred, what, timeout=20):
    """Wait until some attempt of the message satisfies pred; that attempt."""
    def found():
        return next((a for a in pg.attempts(message_id) if pred(a)), None)
    return wait_for(found, timeout, what=f"{what} (message {message_id})")


def dlr(port, query):
    """GET /dlr?query on the daemon, as Kannel would; the HTTP status."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dlr?{query}", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class DenyingKannel(Kannel):
    """Kannel whose sendsms user may not text numbers starting with +3161111 (or 3161111)."""

    def _write_config(self):
        super()._write_config()
        with open(self.config_path, "a") as f:
            f.write('black-list-regex = "^\\\\+?3161111"\n')


@pytest.fixture
def denying_kannel(workdir):
    gateway = DenyingKannel(workdir)
    try:
        yield gateway.start()
    finally:
        gateway.stop()


class FakeGateway:
    """A stand-in for Kannel's sendsms, for what the real one will not do on demand (HTTP/1.1,
    keep-alive). mode 'early-dlr': call the dlr-url with types 8 and 1 *before* answering 202, as
    a fast SMSC may; 'silent': never answer; 'status': answer STATUS with TEXT.
    `requests` lists (client port, decoded query) per sendsms request."""

    def __init__(self, mode, status=202, text="0: Accepted for delivery"):
        self.mode, self.status, self.text = mode, status, text
        self.requests = []
        self.stopping = threading.Event()
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                gateway.requests.append((self.client_address[1], query))
                if gateway.mode == "silent":
                    gateway.stopping.wait(30)
                    self.close_connection = True
                    return
                if gateway.mode == "early-dlr":
                    for kind in (8, 1):
                        url = query["dlr-url"][0].replace("%d", str(kind))
                        with urllib.request.urlopen(url, timeout=5) as r:
                            assert r.status == 200
                body = gateway.text.encode()
                self.send_response(gateway.status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.sendsms_url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/sendsms"
        self.username, self.password = "tester", "secret"

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_gateway(request):
    gateways = []

    def make(*args, **kwargs):
        gateways.append(FakeGateway(*args, **kwargs))
        return gateways[-1]
    yield make
    for g in gateways:
        g.stop()


def start(daemon, text):
    d = daemon(text)
    d.wait_ready()
    return d


def test_sms_reaches_the_phone_and_both_reports_are_recorded(pg, kannel, daemon):
    port = free_port()
    # link = true: SMS has no link by default (issue 10); this one checks that a link arrives
    start(daemon, config(pg, kannel, port, steps=SMS_ONLY, sms_extra="link = true;"))
    r = pg.add_recipient("J. Jansen", mobile="06-1234 5678")
    m = pg.add_message(r, subject="Naheffing 2025 (vertrouwelijk)", sender="Belastingdienst",
                       link="https://mijn.overheid.nl/berichtenbox/42")

    sms = kannel.wait_received(1)[0]
    assert sms["to"] == "+31612345678"
    assert sms["from"] == "Overheid"
    assert sms["type"] == "text"          # GSM alphabet: 7-bit, 160 characters
    assert sms["text"] == ("MijnOverheid: u heeft een nieuw bericht van Belastingdienst. "
                           "Lees het op https://mijn.overheid.nl/berichtenbox/42")
    assert "Naheffing" not in sms["text"]  # never the subject

    sent = wait_attempt(pg, m, lambda a: a["outcome"] == "sent", "sent")
    assert (sent["step"], sent["try"], sent["channel"]) == (0, 1, "sms")
    assert sent["address"] == "+31612345678"
    assert sent["detail"] == "0: Accepted for delivery"
    assert TOKEN.match(sent["external_id"])
    smsc = wait_attempt(pg, m, lambda a: a["detail"] == "accepted by the SMSC (DLR 8)", "DLR 8")
    phone = wait_attempt(pg, m, lambda a: a["detail"] == "delivered to the phone (DLR 1)", "DLR 1")
    # DLR 8 means the SMSC took it, only DLR 1 that the phone has it (issue 10)
    for report, outcome in ((smsc, "accepted"), (phone, "delivered")):
        assert (report["step"], report["try"], report["channel"], report["outcome"]) == \
            (0, 1, "sms", outcome)
        assert report["external_id"] == sent["external_id"]
        assert report["address"] == "+31612345678"
        assert report["instance"] == sent["instance"] == "sms-test"
        assert report["config_sha256"] == sent["config_sha256"]
    wait_for(lambda: pg.escalation(m)["state"] == "done", what="ladder done")
    assert len(pg.attempts(m)) == 3


def ucs2_concatenated(kannel):
    """The UCS-2 text of a concatenated SMS from the fake SMSC's log, or None while parts are
    missing. Kannel splits a UCS-2 text over 67 characters into parts that fakesmsc prints as
    "FROM TO udh <UDH> data <UTF-16BE>", which harness.Kannel.received() does not take apart."""
    parts = {}
    total = None
    for line in kannel.fakesmsc_log.read_text(errors="replace").splitlines():
        m = re.search(r"Got message \d+: <\S+ \S+ udh (\S+) data (\S*)>$", line)
        if m:
            udh = urllib.parse.unquote_to_bytes(m.group(1))
            assert udh[1:3] == b"\x00\x03"          # concatenation, 8-bit reference
            total = udh[4]
            parts[udh[5]] = urllib.parse.unquote_to_bytes(m.group(2).replace("+", " "))
    if total is None or len(parts) < total:
        return None
    return b"".join(parts[i] for i in sorted(parts)).decode("utf-16-be")


def test_text_outside_the_gsm_alphabet_goes_as_ucs2(pg, kannel, daemon):
    # "Gemeente Súdwest-Fryslân" used to be the example here: it is now transliterated to one
    # GSM-7 part (issue 10, test_text.py). A script GSM-7 cannot spell still goes as UCS-2,
    # here in the two parts sms.max_parts allows.
    port = free_port()
    start(daemon, config(pg, kannel, port, steps=SMS_ONLY, sms_extra="link = true; max_parts = 2;"))
    pg.add_message(pg.add_recipient("Zoë", mobile="+31612345678"),
                   sender="Δήμος Αθηναίων", link="https://x.nl/1")
    text = wait_for(lambda: ucs2_concatenated(kannel), what="a concatenated UCS-2 SMS")
    assert text == ("MijnOverheid: u heeft een nieuw bericht van Δήμος Αθηναίων. "
                    "Lees het op https://x.nl/1")


def test_gateway_down_then_up_is_retried(pg, kannel, daemon):
    port = free_port()
    kannel.stop_gateway()
    start(daemon, config(pg, kannel, port))
    m = pg.add_message(pg.add_recipient("Jan", mobile="+31612345678"))

    failed = wait_attempt(pg, m, lambda a: a["outcome"] == "temporary-failure", "temporary failure")
    assert (failed["step"], failed["channel"]) == (0, "sms")
    assert "SMS gateway 127.0.0.1:" in failed["detail"]
    assert "refused" in failed["detail"]
    assert pg.escalation(m)["step"] == 0        # still on the SMS step, waiting to retry

    kannel.start_gateway()
    sent = wait_attempt(pg, m, lambda a: a["outcome"] == "sent" and a["channel"] == "sms",
                        "sent after the gateway came back", timeout=40)
    assert sent["try"] >= 2
    assert kannel.wait_received(1)[0]["to"] == "+31612345678"
    wait_attempt(pg, m, lambda a: a["detail"] == "delivered to the phone (DLR 1)", "DLR 1")
    # a temporary failure was never escalated past the SMS step
    assert [a for a in pg.attempts(m) if a["channel"] == "null"][0]["step"] == 1
    assert all(a["step"] == 0 for a in pg.attempts(m) if a["channel"] == "sms")


def test_denied_number_fails_permanently_and_the_ladder_moves_on(pg, denying_kannel, daemon):
    port = free_port()
    start(daemon, config(pg, denying_kannel, port))
    m = pg.add_message(pg.add_recipient("Jan", mobile="+31 6 1111 2222"))

    failed = wait_attempt(pg, m, lambda a: a["outcome"] == "permanent-failure", "permanent failure")
    assert (failed["step"], failed["try"], failed["channel"]) == (0, 1, "sms")
    assert failed["detail"] == ("the SMS gateway refused this SMS (HTTP 400: Number(s) has/have "
                                "been denied by white- and/or black-lists.)")
    assert failed["address"] == "+31611112222"
    wait_attempt(pg, m, lambda a: a["channel"] == "null" and a["step"] == 1, "next step")
    wait_for(lambda: pg.escalation(m)["state"] == "done", what="ladder done")
    assert denying_kannel.received() == []
    assert [r[3] for r in rows(pg, m)] == ["permanent-failure", "sent"]


def test_invalid_number_is_skipped(pg, kannel, daemon):
    port = free_port()
    start(daemon, config(pg, kannel, port))
    m = pg.add_message(pg.add_recipient("Jan", mobile="06-1234abcd"))
    skipped = wait_attempt(pg, m, lambda a: a["outcome"] == "skipped", "skipped")
    assert (skipped["step"], skipped["channel"]) == (0, "sms")
    assert skipped["detail"] == "invalid mobile number: contains characters other than digits"
    assert skipped["address"] == "06-1234abcd"
    wait_attempt(pg, m, lambda a: a["channel"] == "null", "next step")
    wait_for(lambda: pg.escalation(m)["state"] == "done", what="ladder done")
    assert kannel.received() == []


def test_wrong_password_is_a_temporary_failure_and_a_reload_fixes_it(pg, kannel, daemon):
    port = free_port()
    d = start(daemon, config(pg, kannel, port, steps=SMS_ONLY, password="wrong"))
    m = pg.add_message(pg.add_recipient("Jan", mobile="+31612345678"))
    failed = wait_attempt(pg, m, lambda a: a["outcome"] == "temporary-failure", "auth failure")
    assert "refused our credentials (HTTP 403: Authorization failed for sendsms)" in failed["detail"]

    since = len(d.notifications)
    d.write_config(config(pg, kannel, port, steps=SMS_ONLY))
    d.sighup()
    d.wait_ready(since=since)
    wait_attempt(pg, m, lambda a: a["outcome"] == "sent", "sent after the reload", timeout=40)
    assert kannel.wait_received(1)[0]["to"] == "+31612345678"


def test_forged_unknown_and_malformed_reports_are_refused(pg, kannel, daemon):
    port = free_port()
    d = start(daemon, config(pg, kannel, port, steps=SMS_ONLY))
    m = pg.add_message(pg.add_recipient("Jan", mobile="+31612345678"))
    sent = wait_attempt(pg, m, lambda a: a["outcome"] == "sent", "sent")
    wait_attempt(pg, m, lambda a: a["detail"] == "delivered to the phone (DLR 1)", "DLR 1")
    token = sent["external_id"]
    before = len(pg.attempts())

    forged = "0123456789abcdef" if token != "0123456789abcdef" else "fedcba9876543210"
    assert dlr(port, f"m={m}&s=0&t=1&k={forged}&type=16") == 200              # wrong token
    assert dlr(port, f"m={m}&s=0&t=2&k={token}&type=16") == 200               # wrong try
    assert dlr(port, f"m={m + 1000}&s=0&t=1&k={token}&type=2") == 200         # unknown message
    assert dlr(port, f"m={m}&s=0&t=1&k={token}&type=16") == 200               # already final
    assert dlr(port, f"m={m}&s=0&t=1&k={token}&type=8") == 200                # repeated
    assert dlr(port, f"m={m}&s=0&t=1&k={token}&type=4") == 200                # buffered: log only
    d.wait_log("no SMS was sent with that token")
    d.wait_log("its fate is already known")
    d.wait_log("buffered by the SMSC (DLR 4)")

    for bad in ("m=1", "m=x&s=0&t=1&k=0123456789abcdef&type=1",
                f"m={m}&s=0&t=1&k={token}&type=%d", f"m={m}&s=0&t=1&k={token}&type=3",
                f"m={m}&s=0&t=1&k={token.upper()}&type=1", "garbage", "m=1&m=1&s=0"):
        assert dlr(port, bad) == 400, bad
    assert dlr(port, "") == 400
    d.wait_log("malformed delivery report refused")

    # give the ignored reports' queries time to have run: the marker query goes after them
    assert dlr(port, f"m={m}&s=0&t=1&k={forged}&type=1") == 200
    wait_for(lambda: d.log().count("no SMS was sent with that token") >= 4, what="queries ran")
    assert len(pg.attempts()) == before
    assert d.running


def test_stop_records_every_sms_it_sent(pg, kannel, daemon):
    port = free_port()
    d = start(daemon, config(pg, kannel, port, steps=SMS_ONLY, sms_extra="max_in_flight = 2;"))
    for i in range(20):
        pg.add_message(pg.add_recipient(f"R{i}", mobile=f"+316123456{i:02d}"))
    kannel.wait_received(1)
    d.signal(signal.SIGTERM)        # while sends are under way
    assert d.wait_exit(30) == 0
    sent = [a for a in pg.attempts() if a["outcome"] == "sent"]
    received = kannel.received()
    assert sent and len(received) >= len(sent)
    # every SMS that went out was recorded (none repeated: each number once)
    wait_for(lambda: len(kannel.received()) == len(sent), timeout=5,
             what=f"the fake SMSC to have all {len(sent)} recorded SMS")
    assert sorted(a["address"] for a in sent) == sorted(r["to"] for r in kannel.received())


def test_reports_before_the_gateways_answer_are_held_back(pg, fake_gateway, daemon):
    gw = fake_gateway("early-dlr")
    port = free_port()
    d = start(daemon, config(pg, gw, port, steps=SMS_ONLY, sms_extra="max_in_flight = 1;"))
    ids = [pg.add_message(pg.add_recipient(f"R{i}", mobile=f"+3161234567{i}")) for i in range(3)]
    for m in ids:
        wait_attempt(pg, m, lambda a: a["detail"] == "delivered to the phone (DLR 1)", "DLR 1")
        assert [r[3:] for r in rows(pg, m)] == [
            ("sent", "0: Accepted for delivery"), ("accepted", "accepted by the SMSC (DLR 8)"),
            ("delivered", "delivered to the phone (DLR 1)")]
    assert "came before the gateway's answer; held until the send is recorded" in d.log()
    # one request at a time, all on one kept-alive connection
    assert len(gw.requests) == 3
    assert len({client_port for client_port, _ in gw.requests}) == 1
    q = gw.requests[0][1]
    assert q["username"] == ["tester"] and q["password"] == ["secret"]
    assert q["from"] == ["Overheid"] and q["charset"] == ["UTF-8"] and q["dlr-mask"] == ["31"]
    assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/dlr\?m=\d+&s=0&t=1&k=[0-9a-f]{{16}}&type=%d",
                        q["dlr-url"][0])


def test_a_silent_gateway_times_out(pg, fake_gateway, daemon):
    gw = fake_gateway("silent")
    port = free_port()
    start(daemon, config(pg, gw, port, sms_extra='timeout = "1s";').replace('timeout = "5s";', ""))
    m = pg.add_message(pg.add_recipient("Jan", mobile="+31612345678"))
    # no answer to a request that may have arrived: in-doubt, never a silent resend (issue 6)
    failed = wait_attempt(pg, m, lambda a: a["outcome"] == "in-doubt", "timeout")
    assert failed["detail"] == (f"SMS gateway 127.0.0.1:{gw.server.server_address[1]}: timed out:"
                                " it may have been sent")


@pytest.mark.parametrize("status,text", [(503, "Temporal failure, try again later."),
                                         (500, "")])
def test_gateway_errors_are_temporary(pg, fake_gateway, daemon, status, text):
    gw = fake_gateway("status", status, text)
    port = free_port()
    start(daemon, config(pg, gw, port))
    m = pg.add_message(pg.add_recipient("Jan", mobile="+31612345678"))
    failed = wait_attempt(pg, m, lambda a: a["outcome"] == "temporary-failure", "failure")
    assert failed["detail"] == f"the SMS gateway answered HTTP {status}: {text or '(no text)'}"
    wait_attempt(pg, m, lambda a: a["try"] == 2, "a retry")
    assert pg.escalation(m)["step"] == 0
