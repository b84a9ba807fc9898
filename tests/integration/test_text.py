"""What a citizen reads: links, lengths, dates and numbers from the message data, checked end to
end with the built daemon, a real PostgreSQL, smtp-sink and Kannel's fake SMSC. Message data is
written as a careless or hostile sender would (issue 8), the SMS as issue 10 wants it: GSM-7 and
one part whenever possible, no link unless the config asks for one."""

import datetime
import email.header

from harness import free_port, wait_for

INBOX = "https://mijn.overheid.nl"


def config(pg, smtp=None, kannel=None, steps=None, top="", email_extra="", sms_extra=""):
    steps = steps or ['{ channel = "email"; after = "0s"; }']
    parts = [f"""
instance = "text-test";
timezone = "Europe/Amsterdam";
inbox_url = "{INBOX}";
{top}
database: {{ conninfo = "{pg.conninfo()}"; }};
"""]
    if smtp:
        parts.append(f"""email: {{ server = "{smtp.address}"; from = "MijnOverheid <noreply@example.nl>";
         starttls = "no"; timeout = "10s"; {email_extra} }};
""")
    if kannel:
        parts.append(f"""http: {{ listen = "127.0.0.1:{free_port()}"; }};
sms: {{ url = "{kannel.sendsms_url}"; username = "{kannel.username}";
        password = "{kannel.password}"; sender = "Overheid"; timeout = "5s"; {sms_extra} }};
""")
    parts.append(f"""policies = (
  {{ name = "default"; kinds = [ "*" ]; steps = ( {", ".join(steps)} ); }}
);
""")
    return "".join(parts)


SMS_STEP = ['{ channel = "sms"; after = "0s"; }']


def start(daemon, text):
    d = daemon(text)
    d.wait_ready()
    return d


def attempt(pg, m, pred, what, timeout=20):
    return wait_for(lambda: next((a for a in pg.attempts(m) if pred(a)), None), timeout,
                    what=f"{what} (message {m})")


def sent(pg, m):
    return attempt(pg, m, lambda a: a["outcome"] == "sent", "sent")


def subject_text(mail):
    return str(email.header.make_header(email.header.decode_header(mail["Subject"])))


# ---- links ----

def test_a_javascript_link_never_reaches_the_mail(pg, smtp, daemon):
    start(daemon, config(pg, smtp))
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"),
                       link="javascript:alert(document.cookie)")
    body = smtp.wait_messages(1)[0].get_content()
    assert "javascript" not in body
    assert f"Lees het bericht hier:\n{INBOX}\n" in body
    a = sent(pg, m)
    assert a["detail"].startswith("250")
    assert a["detail"].endswith("; link replaced: not https")


def test_http_links_only_where_the_config_allows_them(pg, smtp, daemon):
    start(daemon, config(pg, smtp))
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"),
                       link="http://mijn.overheid.nl/berichtenbox/7")
    assert "http://mijn" not in smtp.wait_messages(1)[0].get_content()
    assert sent(pg, m)["detail"].endswith("; link replaced: not https")


def test_http_links_pass_with_allow_http_links(pg, smtp, daemon):
    start(daemon, config(pg, smtp, top="allow_http_links = true;"))
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"),
                       link="http://mijn.overheid.nl/berichtenbox/7")
    assert "http://mijn.overheid.nl/berichtenbox/7" in smtp.wait_messages(1)[0].get_content()
    assert "replaced" not in sent(pg, m)["detail"]


def test_an_email_step_with_link_false_says_log_in(pg, smtp, daemon):
    start(daemon, config(pg, smtp, steps=['{ channel = "email"; after = "0s"; link = false; }']))
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"),
                       link="https://mijn.overheid.nl/berichtenbox/7")
    body = smtp.wait_messages(1)[0].get_content()
    assert "https://" not in body
    assert "Log in op MijnOverheid om het bericht te lezen." in body
    sent(pg, m)


# ---- lengths ----

def test_a_megabyte_subject_is_cut_in_the_header_and_body(pg, smtp, daemon):
    start(daemon, config(pg, smtp))
    subject = "Aanslag " + "ú" * (1024 * 1024 // 2)
    m = pg.add_message(pg.add_recipient("Jan " + "ĳ" * 300000, email="jan@example.nl"),
                       subject=subject, sender="Belastingdienst " + "€" * 40000)
    mail = smtp.wait_messages(1)[0]
    assert len(mail["To"].encode()) < 1000
    assert "Jan ĳĳĳ" in str(email.header.make_header(email.header.decode_header(mail["To"])))
    raw_subject = mail["Subject"]
    assert len(raw_subject.encode()) < 2000
    text = subject_text(mail)
    assert text.startswith("Nieuw bericht van Belastingdienst €")
    assert text.endswith("úúú…")
    assert len(text) < 300
    body = mail.get_content()
    assert len(body) < 4000
    assert "Onderwerp: Aanslag úúú" in body
    assert body.startswith("Beste Jan ĳĳĳ")
    assert "ĳ…," in body.split("\n")[0]
    assert "https://mijn.overheid.nl/berichtenbox/1" in body
    sent(pg, m)


def test_a_huge_sender_keeps_the_sms_to_one_part_with_its_link(pg, kannel, daemon):
    start(daemon, config(pg, kannel=kannel, steps=SMS_STEP, sms_extra="link = true;"))
    link = "https://mijn.overheid.nl/berichtenbox/2026/11/23/000042"
    m = pg.add_message(pg.add_recipient("Jan", mobile="+31612345678"),
                       sender="Gemeente " + "x" * (105 * 1024), link=link)
    sms = kannel.wait_received(1)[0]
    assert sms["type"] == "text"
    assert sms.get("parts", 1) == 1
    assert len(sms["text"]) <= 160
    assert sms["text"].startswith("MijnOverheid: u heeft een nieuw bericht van Gemeente xxx")
    assert sms["text"].endswith(f".... Lees het op {link}")
    a = sent(pg, m)
    assert a["detail"] == ("0: Accepted for delivery; sender and name shortened to fit "
                           "sms.max_parts = 1")


# ---- dates ----

def test_an_infinite_creation_date_is_never_printed(pg, smtp, daemon):
    # planned from the due date, but a message with an absurd created_at is a bad row: it ends
    # with a `skipped` attempt saying why, and nothing is sent (issues 6 and 8)
    start(daemon, config(pg, smtp, steps=['{ channel = "email"; before_due = "30d"; }']))
    m = pg.add_message(pg.add_recipient("Jan", email="jan@example.nl"), created_at="-infinity",
                       due_at=datetime.timedelta(days=10))
    wait_for(lambda: pg.attempts(m), what="the attempt")
    [a] = pg.attempts(m)
    assert a["outcome"] == "skipped" and "created_at is out of range" in a["detail"]
    assert pg.escalation(m)["state"] == "failed"
    assert smtp.messages() == []


# ---- SMS ----

def test_a_frisian_sender_gives_one_gsm7_part(pg, kannel, daemon):
    start(daemon, config(pg, kannel=kannel, steps=SMS_STEP))
    m = pg.add_message(pg.add_recipient("Zoë", mobile="+31612345678"),
                       sender="Gemeente Súdwest-Fryslân", link="https://x.nl/1")
    sms = kannel.wait_received(1)[0]
    assert sms["type"] == "text"               # coding 0: GSM 7-bit
    assert sms.get("parts", 1) == 1
    assert sms["text"] == ("MijnOverheid: u heeft een nieuw bericht van Gemeente Sudwest-Fryslan. "
                           "Log in op MijnOverheid om het te lezen.")
    assert sent(pg, m)["detail"] == "0: Accepted for delivery"


def test_sms_in_english_says_log_in_in_english(pg, kannel, daemon):
    start(daemon, config(pg, kannel=kannel, steps=SMS_STEP))
    pg.add_message(pg.add_recipient("John", mobile="+31612345678", language="en"),
                   sender="Belastingdienst")
    assert kannel.wait_received(1)[0]["text"] == (
        "MijnOverheid: you have a new message from Belastingdienst. "
        "Log in at MijnOverheid to read it.")


def test_an_sms_step_with_link_true_carries_a_checked_link(pg, kannel, daemon):
    start(daemon, config(pg, kannel=kannel,
                         steps=['{ channel = "sms"; after = "0s"; link = true; }']))
    m = pg.add_message(pg.add_recipient("Jan", mobile="+31612345678"),
                       link="javascript:alert(1)")
    assert kannel.wait_received(1)[0]["text"].endswith(f"Lees het op {INBOX}")
    assert sent(pg, m)["detail"] == "0: Accepted for delivery; link replaced: not https"


def test_a_short_dutch_number_is_skipped_not_sent(pg, kannel, daemon):
    start(daemon, config(pg, kannel=kannel, steps=SMS_STEP + ['{ channel = "null"; after = "0s"; }']))
    m = pg.add_message(pg.add_recipient("Jan", mobile="06-1234"))
    a = attempt(pg, m, lambda a: a["outcome"] == "skipped", "skipped")
    assert a["channel"] == "sms"
    assert a["detail"] == ("invalid mobile number: too short for a Dutch mobile number "
                           "(+31 6 and 8 digits)")
    attempt(pg, m, lambda a: a["channel"] == "null", "next step")
    assert kannel.received() == []


# ---- the letter ----

def test_a_javascript_link_never_reaches_the_letter(pg, daemon, workdir):
    from test_paper import ADDRESS, far_cutoff, pdf_text
    spool = workdir / "spool"
    start(daemon, f"""
timezone = "Europe/Amsterdam";
inbox_url = "{INBOX}";
database: {{ conninfo = "{pg.conninfo()}"; }};
paper: {{ spool = "{spool}"; cutoff = "{far_cutoff()}"; }};
policies = ( {{ name = "default"; kinds = [ "*" ]; steps = ( {{ channel = "paper"; after = "0s"; }} ); }} );
""")
    m = pg.add_message(pg.add_recipient("Jan", postal_address=ADDRESS),
                       link="javascript:alert(1)")
    queued = attempt(pg, m, lambda a: a["outcome"] == "queued", "queued")
    assert queued["detail"].startswith("letter queued for the cut-off at ")
    assert queued["detail"].endswith("; link replaced: not https")
    text = pdf_text(spool / "pending" / f"{m}-0.pdf")
    assert "javascript" not in text
    assert "mijn.overheid.nl" in text
