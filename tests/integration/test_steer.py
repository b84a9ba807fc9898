"""Reports that steer the ladder: a failed SMS delivery report (DLR 2 or 16) brings the next step
forward to now instead of its planned time. The SMSC's reports are made by calling the dlr-url
that the daemon handed the gateway, as Kannel does (its fake SMSC only ever reports success)."""

import datetime
import urllib.request

import pytest

from harness import free_port, wait_for
from test_sms import FakeGateway, config, rows, wait_attempt

SMS_THEN_PAPER_LATER = [
    '{ channel = "sms"; after = "0s"; }',
    '{ channel = "null"; after = "1h"; }',
]


@pytest.fixture
def gateway():
    gw = FakeGateway("status")          # answers 202 "0: Accepted for delivery", reports later
    yield gw
    gw.stop()


def report(gw, kind):
    """The SMSC's delivery report of type KIND for the (only) SMS sent, through its dlr-url."""
    url = gw.requests[0][1]["dlr-url"][0].replace("%d", str(kind))
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200


def sent_and_waiting(pg, gw, daemon):
    port = free_port()
    d = daemon(config(pg, gw, port, steps=SMS_THEN_PAPER_LATER))
    d.wait_ready()
    m = pg.add_message(pg.add_recipient("Jan", mobile="+31612345678"))
    wait_attempt(pg, m, lambda a: a["outcome"] == "sent", "sent")
    wait_for(lambda: pg.escalation(m)["step"] == 1, what="waiting for step 1")
    return d, m


@pytest.mark.parametrize("kind,detail", [(2, "not delivered to the phone (DLR 2)"),
                                         (16, "rejected by the SMSC (DLR 16)")])
def test_a_failed_report_brings_the_next_step_forward(pg, gateway, daemon, kind, detail):
    d, m = sent_and_waiting(pg, gateway, daemon)
    planned = pg.escalation(m)["next_at"]
    report(gateway, 8)
    report(gateway, kind)
    # the next step runs now, not in an hour
    wait_attempt(pg, m, lambda a: a["step"] == 1, "step 1 brought forward", timeout=15)
    assert [r[2:4] for r in rows(pg, m)] == [("sms", "sent"), ("sms", "accepted"),
                                             ("sms", "permanent-failure"), ("null", "sent")]
    assert rows(pg, m)[2][4] == detail
    step1 = pg.attempts(m)[3]
    assert step1["created_at"] < planned - datetime.timedelta(minutes=55)
    d.wait_log("the next step is due now")


def test_a_good_report_leaves_the_plan_alone(pg, gateway, daemon):
    d, m = sent_and_waiting(pg, gateway, daemon)
    planned = pg.escalation(m)["next_at"]
    report(gateway, 8)
    report(gateway, 1)
    wait_attempt(pg, m, lambda a: a["outcome"] == "delivered", "DLR 1")
    # a report that came after a failed one changes nothing either
    report(gateway, 16)
    wait_for(lambda: "its fate is already known" in d.log(), what="late DLR 16 ignored")
    assert pg.escalation(m)["next_at"] == planned and pg.escalation(m)["step"] == 1
    assert [r[3] for r in rows(pg, m)] == ["sent", "accepted", "delivered"]
