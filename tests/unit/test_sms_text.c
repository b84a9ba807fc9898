/* The SMS channel's pure rules: E.164 numbers, the sendsms request, Kannel's replies and the
 * delivery-report callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sms_text.h"

/* ---- numbers ---- */

static void assert_number(const char *in, const char *country, const char *want)
{
    char out[32];
    const char *reason = NULL;

    if (sms_number_e164(in, country, out, sizeof(out), &reason) != 0)
        fail_msg("'%s' refused: %s", in, reason);
    assert_string_equal(out, want);
}

static void assert_refused(const char *in, const char *country, const char *why)
{
    char out[32];
    const char *reason = NULL;

    if (sms_number_e164(in, country, out, sizeof(out), &reason) == 0)
        fail_msg("'%s' accepted as %s", in ? in : "(null)", out);
    assert_non_null(reason);
    if (strstr(reason, why) == NULL)
        fail_msg("'%s': reason '%s' does not mention '%s'", in ? in : "(null)", reason, why);
}

static void numbers_normalise_to_e164(void **state)
{
    (void)state;
    assert_number("+31612345678", "31", "+31612345678");
    assert_number("0031612345678", "31", "+31612345678");
    assert_number("06-1234 5678", "31", "+31612345678");
    assert_number("06 12 34 56 78", "31", "+31612345678");
    assert_number(" +31 (0)6 1234.5678 ", "31", "+31612345678");
    assert_number("31612345678", "31", "+31612345678");       /* code without '+' */
    assert_number("0471 12 34 56", "32", "+32471123456");      /* another default country */
    assert_number("+49 151 12345678", "31", "+4915112345678"); /* foreign, written fully */
    assert_number("(06) 12345678", "31", "+31612345678");
    assert_number("+123456789012345", "31", "+123456789012345"); /* 15 digits: the maximum */
}

static void bad_numbers_are_refused_with_a_reason(void **state)
{
    (void)state;
    assert_refused(NULL, "31", "empty");
    assert_refused("", "31", "empty");
    assert_refused("   ", "31", "empty");
    assert_refused("06-1234abcd", "31", "characters other than digits");
    assert_refused("bel me", "31", "characters other than digits");
    assert_refused("+31 6 12+34", "31", "'+' in the middle");
    assert_refused("0612", "31", "too short");
    assert_refused("+316", "31", "too short");
    assert_refused("+1234567890123456", "31", "too long");            /* 16 digits */
    assert_refused("00 1234 5678 9012 3456 7", "31", "too long");
    assert_refused("0612345678901234567890123456789012345678901234567890123456789012345", "31",
                   "too long");
    assert_refused("612345678", "31", "no country code");             /* ambiguous */
    assert_refused("+0612345678", "31", "country code");
    assert_refused("000612345678", "31", "country code");
    assert_refused("--", "31", "no digits");
}

/* ---- URL encoding and the sendsms request ---- */

/* The value of KEY in query Q, decoded (malloc'd), or NULL. */
static char *param(const char *q, const char *key)
{
    size_t klen = strlen(key);

    for (const char *p = q; p && *p;) {
        size_t len = strcspn(p, "&");
        if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
            return sms_url_decode(p + klen + 1, len - klen - 1);
        p += len + (p[len] == '&');
    }
    return NULL;
}

static void url_encoding_round_trips(void **state)
{
    (void)state;
    char *e = sms_url_encode("a b&c=d/e?f%g+h~i_j.k-l ë€");
    assert_string_equal(e, "a%20b%26c%3Dd%2Fe%3Ff%25g%2Bh~i_j.k-l%20%C3%AB%E2%82%AC");
    char *d = sms_url_decode(e, strlen(e));
    assert_string_equal(d, "a b&c=d/e?f%g+h~i_j.k-l ë€");
    free(e);
    free(d);

    d = sms_url_decode("a+b%2b", 6);
    assert_string_equal(d, "a b+");
    free(d);
    assert_null(sms_url_decode("%4", 2));          /* cut short */
    assert_null(sms_url_decode("%zz", 3));         /* not hex */
    assert_null(sms_url_decode("a%00b", 5));       /* no NUL smuggled into a C string */
}

static void gsm_alphabet_is_recognised(void **state)
{
    (void)state;
    assert_true(sms_text_is_gsm7("MijnOverheid: lees het op https://mijn.overheid.nl/b?x=1&y=[2]"));
    assert_true(sms_text_is_gsm7("Dienst Uitvoering Onderwijs: é è ü Ä ß € @ £ {}"));
    assert_true(sms_text_is_gsm7(""));
    assert_false(sms_text_is_gsm7("Gemeente Súdwest-Fryslân"));
    assert_false(sms_text_is_gsm7("Zoë"));          /* ë is not in GSM 03.38 */
    assert_false(sms_text_is_gsm7("`back`"));
    assert_false(sms_text_is_gsm7("\xC3"));         /* broken UTF-8: let Kannel send UCS-2 */
}

static void sendsms_query_carries_every_field(void **state)
{
    (void)state;
    char *dlr = sms_dlr_url("http://127.0.0.1:9187/", 42, 2, 3, "0123456789abcdef");
    assert_string_equal(dlr, "http://127.0.0.1:9187/dlr?m=42&s=2&t=3&k=0123456789abcdef&type=%d");
    struct sms_request r = { "tester", "p&ss=word", "Overheid", "+31612345678",
                             "Bericht van Belastingdienst & co. Lees het op https://x.nl/a?b=1",
                             dlr };
    char *q = sms_sendsms_query(&r), *v;

    /* nothing raw that would split the query */
    assert_null(strchr(q, ' '));
    assert_null(strchr(q, '+'));
    assert_non_null(strstr(q, "to=%2B31612345678"));
    assert_string_equal(v = param(q, "password"), "p&ss=word");
    free(v);
    assert_string_equal(v = param(q, "text"), r.text);
    free(v);
    assert_string_equal(v = param(q, "to"), "+31612345678");
    free(v);
    assert_string_equal(v = param(q, "charset"), "UTF-8");
    free(v);
    assert_null(param(q, "coding"));               /* GSM text: 7-bit, 160 characters */
    assert_string_equal(v = param(q, "dlr-mask"), "31");
    free(v);
    /* after Kannel decodes the dlr-url parameter, the %d it fills in is there, literally, and
     * the callback's own '&'s did not leak into the sendsms query */
    assert_string_equal(v = param(q, "dlr-url"), dlr);
    assert_non_null(strstr(v, "&type=%d"));
    free(v);
    assert_non_null(strstr(q, "%25d"));
    assert_null(param(q, "k"));
    free(q);
    free(dlr);
}

static void non_gsm_text_goes_as_ucs2(void **state)
{
    (void)state;
    struct sms_request r = { "u", "p", "Overheid", "+31612345678", "Bericht van Zoë", NULL };
    char *q = sms_sendsms_query(&r), *v;

    assert_string_equal(v = param(q, "coding"), "2");
    free(v);
    assert_string_equal(v = param(q, "text"), "Bericht van Zoë");   /* UTF-8, converted by Kannel */
    free(v);
    assert_non_null(strstr(q, "text=Bericht%20van%20Zo%C3%AB"));
    assert_null(param(q, "dlr-url"));
    assert_null(param(q, "dlr-mask"));
    free(q);
}

/* ---- Kannel's replies ---- */

static void judge(int code, const char *body, enum outcome want, const char *detail_has)
{
    char detail[512];
    enum outcome o = sms_judge_reply(code, body, body ? strlen(body) : 0, detail, sizeof(detail));

    if (o != want)
        fail_msg("HTTP %d '%s': %s, wanted %s", code, body ? body : "", outcome_name(o),
                 outcome_name(want));
    if (strstr(detail, detail_has) == NULL)
        fail_msg("HTTP %d: detail '%s' lacks '%s'", code, detail, detail_has);
}

static void replies_are_judged(void **state)
{
    (void)state;
    judge(202, "0: Accepted for delivery", OUTCOME_SENT, "0: Accepted for delivery");
    judge(202, "3: Queued for later delivery", OUTCOME_SENT, "3: Queued");
    judge(200, "0: Accepted for delivery\r\nmore", OUTCOME_SENT, "Accepted for delivery");
    judge(403, "Authorization failed for sendsms", OUTCOME_TEMPORARY_FAILURE, "credentials");
    judge(400, "Number(s) has/have been denied by white- and/or black-lists.",
          OUTCOME_PERMANENT_FAILURE, "HTTP 400: Number(s) has/have been denied");
    judge(400, "Empty receiver number not allowed, rejected", OUTCOME_PERMANENT_FAILURE, "400");
    judge(503, "Temporal failure, try again later.", OUTCOME_TEMPORARY_FAILURE, "HTTP 503");
    judge(500, NULL, OUTCOME_TEMPORARY_FAILURE, "(no text)");
    judge(202, "surprise", OUTCOME_TEMPORARY_FAILURE, "HTTP 202: surprise");
    judge(400, "line\x01with\x1b[31mcontrols", OUTCOME_PERMANENT_FAILURE, "line with [31mcontrols");
}

static void long_replies_are_cut_on_a_character(void **state)
{
    char body[600], detail[512];
    (void)state;
    memset(body, 'a', sizeof(body));
    for (size_t i = 1; i + 1 < sizeof(body); i += 2)
        memcpy(body + i, "\xC3\xAB", 2);          /* ë ë ë ... */
    sms_judge_reply(400, body, sizeof(body), detail, sizeof(detail));
    size_t n = strlen(detail);
    assert_true(n < sizeof(detail));
    /* ends in a whole character */
    assert_true((unsigned char)detail[n - 1] < 0x80 || (unsigned char)detail[n - 2] == 0xC3);
}

/* ---- delivery reports ---- */

static void dlr_queries_parse(void **state)
{
    struct sms_dlr r;
    const char *reason = NULL;
    (void)state;

    assert_int_equal(sms_dlr_parse("m=42&s=2&t=3&k=0123456789abcdef&type=8", &r, &reason), 0);
    assert_int_equal(r.message_id, 42);
    assert_int_equal(r.step, 2);
    assert_int_equal(r.try_no, 3);
    assert_int_equal(r.type, 8);
    assert_string_equal(r.token, "0123456789abcdef");
    /* any order, unknown keys (Kannel's %A etc.) ignored, encoded values decoded */
    assert_int_equal(sms_dlr_parse("type=1&x=ACK%2F&k=fedcba9876543210&t=1&s=0&m=%37", &r,
                                   &reason), 0);
    assert_int_equal(r.message_id, 7);
    assert_int_equal(r.type, 1);
}

static void assert_dlr_refused(const char *q, const char *why)
{
    struct sms_dlr r;
    const char *reason = NULL;

    if (sms_dlr_parse(q, &r, &reason) == 0)
        fail_msg("'%s' accepted", q ? q : "(null)");
    if (strstr(reason, why) == NULL)
        fail_msg("'%s': reason '%s' does not mention '%s'", q ? q : "(null)", reason, why);
}

static void bad_dlr_queries_are_refused(void **state)
{
    (void)state;
    assert_dlr_refused(NULL, "no query");
    assert_dlr_refused("", "missing");
    assert_dlr_refused("m=1&s=0&t=1&k=0123456789abcdef", "missing");         /* no type */
    assert_dlr_refused("m=1&s=0&t=1&type=1", "missing");                    /* no token */
    assert_dlr_refused("m=x&s=0&t=1&k=0123456789abcdef&type=1", "bad number");
    assert_dlr_refused("m=-1&s=0&t=1&k=0123456789abcdef&type=1", "bad number");
    assert_dlr_refused("m=1 &s=0&t=1&k=0123456789abcdef&type=1", "bad number");
    assert_dlr_refused("m=99999999999999999999&s=0&t=1&k=0123456789abcdef&type=1", "bad number");
    assert_dlr_refused("m=1&s=0&t=0&k=0123456789abcdef&type=1", "bad number");   /* try 0 */
    assert_dlr_refused("m=1&s=0&t=1&k=0123456789ABCDEF&type=1", "bad token");
    assert_dlr_refused("m=1&s=0&t=1&k=0123&type=1", "bad token");
    assert_dlr_refused("m=1&s=0&t=1&k=0123456789abcdef0&type=1", "bad token");
    assert_dlr_refused("m=1&s=0&t=1&k=0123456789abcdef&type=%d", "bad %-escape");
    assert_dlr_refused("m=1&s=0&t=1&k=0123456789abcdef&type=3", "bad report type");
    assert_dlr_refused("m=1&s=0&t=1&k=0123456789abcdef&type=32", "bad report type");
    assert_dlr_refused("m=1&s=0&t=1&k=0123456789abcdef&type=", "bad report type");
    assert_dlr_refused("m=1&m=2&s=0&t=1&k=0123456789abcdef&type=1", "repeated");
    assert_dlr_refused("m=1&s&t=1&k=0123456789abcdef&type=1", "without '='");
    assert_dlr_refused("m=1%00&s=0&t=1&k=0123456789abcdef&type=1", "%-escape");
}

static void dlr_types_map_to_outcomes(void **state)
{
    enum outcome o = OUTCOME_SENT;
    const char *detail;
    (void)state;

    assert_int_equal(sms_dlr_outcome(1, &o, &detail), 1);
    assert_int_equal(o, OUTCOME_DELIVERED);
    assert_string_equal(detail, "delivered to the phone (DLR 1)");
    assert_int_equal(sms_dlr_outcome(8, &o, &detail), 1);
    assert_int_equal(o, OUTCOME_ACCEPTED);     /* the SMSC has it, the phone not yet */
    assert_string_equal(detail, "accepted by the SMSC (DLR 8)");
    assert_int_equal(sms_dlr_outcome(2, &o, &detail), 1);
    assert_int_equal(o, OUTCOME_PERMANENT_FAILURE);
    assert_non_null(strstr(detail, "(DLR 2)"));
    assert_int_equal(sms_dlr_outcome(16, &o, &detail), 1);
    assert_int_equal(o, OUTCOME_PERMANENT_FAILURE);
    assert_non_null(strstr(detail, "(DLR 16)"));
    assert_int_equal(sms_dlr_outcome(4, &o, &detail), 0);      /* buffered: logged only */
    assert_non_null(strstr(detail, "(DLR 4)"));
}

static void mobile_plans_of_known_countries(void **state)
{
    (void)state;
    /* 06-1234 once became +3161234 and was sent */
    assert_refused("06-1234", "31", "too short for a Dutch mobile number (+31 6 and 8 digits)");
    assert_refused("+31 6 1234 567", "31", "too short for a Dutch mobile number");
    assert_refused("+31 6 1234 567 89", "31", "too long for a Dutch mobile number");
    assert_refused("020-1234567", "31", "not a Dutch mobile number");      /* a landline */
    assert_refused("+31 97 1234 5678", "31", "not a Dutch mobile number");
    assert_refused("0612345678", "32", "not a Belgian mobile number");
    assert_refused("+44 20 7946 0000", "31", "not a UK mobile number");
    assert_refused("+49 30 1234567", "31", "not a German mobile number");
    assert_refused("+49 151 123", "31", "too short for a German mobile number");
    assert_number("+44 7700 900123", "31", "+447700900123");
    assert_number("+33 6 12 34 56 78", "31", "+33612345678");
    assert_number("+352 621 123 456", "31", "+352621123456");
    assert_number("+49 170 1234567", "31", "+491701234567");
    assert_number("+1 202 555 0143", "31", "+12025550143");            /* no plan: E.164 */
}

/* ---- the text of a notice ---- */

static void transliteration_keeps_gsm7(void **state)
{
    char *t;
    (void)state;
    t = sms_text_gsm7("Gemeente S\xC3\xBA" "dwest-Frysl\xC3\xA2n");
    assert_string_equal(t, "Gemeente Sudwest-Fryslan");
    free(t);
    t = sms_text_gsm7("\xC4\xB2sselmonde \xC4\xB3s \xE2\x82\xAC" "5 \xE2\x80\x9C" "a\xE2\x80\x9D "
                      "\xE2\x80\x98" "b\xE2\x80\x99 c\xE2\x80\xA6 \xC5\x81\xC3\xB3" "d\xC5\xBA "
                      "Zo\xC3\xAB " "e\xCC\x81 \xC3\xA9\xC3\xA8\xC3\xBC\xC3\x84\xC3\x9F");
    assert_string_equal(t, "IJsselmonde ijs EUR5 \"a\" 'b' c... Lodz Zoe e "
                           "\xC3\xA9\xC3\xA8\xC3\xBC\xC3\x84\xC3\x9F");     /* GSM's own stay */
    assert_true(sms_text_is_gsm7(t));
    free(t);
    assert_null(sms_text_gsm7("\xD0\x9C\xD0\xB0\xD1\x80\xD0\xB8\xD1\x8F"));   /* Cyrillic */
}

static void parts_are_counted_like_the_smsc(void **state)
{
    char buf[400];
    (void)state;
    memset(buf, 'a', 160);
    buf[160] = '\0';
    assert_int_equal(sms_text_parts(buf), 1);
    buf[159] = '[';             /* an extension character takes two septets */
    assert_int_equal(sms_text_parts(buf), 2);
    memset(buf, 'a', 306);
    buf[306] = '\0';
    assert_int_equal(sms_text_parts(buf), 2);
    buf[306] = 'a';
    buf[307] = '\0';
    assert_int_equal(sms_text_parts(buf), 3);
    /* UCS-2: 70 in one, 67 per part */
    size_t n = 0;
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\xD0\x96");
    assert_int_equal(sms_text_parts(buf), 1);
    snprintf(buf + n, sizeof(buf) - n, "a");
    assert_int_equal(sms_text_parts(buf), 2);
}

static char *compose(const char *sender, const char *link, int max_parts, char *note, int *rc)
{
    char err[200], *text = NULL;
    struct sms_compose c = {
        .template = "notice", .language = "nl", .name = "Jan", .sender = sender,
        .created = "23-11-2026", .link = link, .fallback_link = "https://mijn.overheid.nl",
        .max_parts = max_parts,
    };
    *rc = sms_compose(&c, &text, note, 200, err, sizeof(err));
    if (*rc != 0)
        snprintf(note, 200, "%s", err);
    return text;
}

static void a_frisian_sender_stays_one_gsm7_part(void **state)
{
    char note[200];
    int rc;
    (void)state;
    char *t = compose("Gemeente S\xC3\xBA" "dwest-Frysl\xC3\xA2n", NULL, 1, note, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(t, "MijnOverheid: u heeft een nieuw bericht van Gemeente Sudwest-Fryslan. "
                           "Log in op MijnOverheid om het te lezen.");
    assert_true(sms_text_is_gsm7(t));
    assert_int_equal(sms_text_parts(t), 1);
    assert_string_equal(note, "");
    free(t);
    /* a name in a script GSM-7 lacks keeps its letters and goes as UCS-2 (two parts) */
    t = compose("\xD0\x9C\xD0\xB0\xD1\x80\xD0\xB8\xD1\x8F", NULL, 2, note, &rc);
    assert_int_equal(rc, 0);
    assert_false(sms_text_is_gsm7(t));
    assert_non_null(strstr(t, "\xD0\x9C\xD0\xB0\xD1\x80\xD0\xB8\xD1\x8F"));
    free(t);
    /* where one part is the cap, that is a clear failure, not a sender cut to nothing */
    t = compose("\xD0\x9C\xD0\xB0\xD1\x80\xD0\xB8\xD1\x8F", NULL, 1, note, &rc);
    assert_int_equal(rc, -1);
    assert_null(t);
    assert_string_equal(note, "the text needs 2 parts even with the sender cut short; "
                              "sms.max_parts is 1");
}

static void a_huge_sender_never_pushes_the_link_out(void **state)
{
    char note[200];
    int rc;
    size_t n = 105 * 1024;
    char *sender = malloc(n + 1);
    (void)state;
    memset(sender, 'x', n);
    sender[n] = '\0';
    char *t = compose(sender, "https://mijn.overheid.nl/berichtenbox/42", 1, note, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(sms_text_parts(t), 1);
    assert_true(strncmp(t, "MijnOverheid: u heeft een nieuw bericht van xxx", 47) == 0);
    assert_non_null(strstr(t, "xxx.... Lees het op https://mijn.overheid.nl/berichtenbox/42"));
    assert_string_equal(note, "");      /* the SMS limit of 60 characters was enough */
    free(t);
    /* a longer link: the sender gets shorter still, the link stays whole */
    t = compose(sender, "https://mijn.overheid.nl/berichtenbox/2026/11/23/000042", 1, note, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(sms_text_parts(t), 1);
    assert_int_equal(strlen(t), 160);
    assert_non_null(strstr(t, "xxx.... Lees het op https://mijn.overheid.nl/berichtenbox/2026/11/23/000042"));
    assert_string_equal(note, "sender and name shortened to fit sms.max_parts = 1");
    free(t);
    /* two parts allowed: a longer sender, still whole sentences */
    t = compose(sender, "https://mijn.overheid.nl/berichtenbox/42", 2, note, &rc);
    assert_int_equal(rc, 0);
    assert_true(sms_text_parts(t) <= 2);
    assert_non_null(strstr(t, "... Lees het op https://mijn.overheid.nl/berichtenbox/42"));
    free(t);
    free(sender);
}

static void a_link_too_long_for_the_parts_gives_way_to_the_inbox(void **state)
{
    char note[200], link[400];
    int rc;
    (void)state;
    snprintf(link, sizeof(link), "https://x.nl/%0200d", 7);
    char *t = compose("Belastingdienst", link, 1, note, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(t, "MijnOverheid: u heeft een nieuw bericht van Belastingdienst. "
                           "Lees het op https://mijn.overheid.nl");
    assert_string_equal(note, "link replaced: too long for sms.max_parts = 1");
    free(t);
    t = compose("Belastingdienst", link, 2, note, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(t, link));
    assert_string_equal(note, "");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_normalise_to_e164),
        cmocka_unit_test(bad_numbers_are_refused_with_a_reason),
        cmocka_unit_test(mobile_plans_of_known_countries),
        cmocka_unit_test(transliteration_keeps_gsm7),
        cmocka_unit_test(parts_are_counted_like_the_smsc),
        cmocka_unit_test(a_frisian_sender_stays_one_gsm7_part),
        cmocka_unit_test(a_huge_sender_never_pushes_the_link_out),
        cmocka_unit_test(a_link_too_long_for_the_parts_gives_way_to_the_inbox),
        cmocka_unit_test(url_encoding_round_trips),
        cmocka_unit_test(gsm_alphabet_is_recognised),
        cmocka_unit_test(sendsms_query_carries_every_field),
        cmocka_unit_test(non_gsm_text_goes_as_ucs2),
        cmocka_unit_test(replies_are_judged),
        cmocka_unit_test(long_replies_are_cut_on_a_character),
        cmocka_unit_test(dlr_queries_parse),
        cmocka_unit_test(bad_dlr_queries_are_refused),
        cmocka_unit_test(dlr_types_map_to_outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
