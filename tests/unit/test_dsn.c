/* Delivery status notifications as Postfix and Exim write them (tests/dsn/), and VERP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

#define TOKEN "0123456789abcdef0123456789abcdef"
#define PATTERN "bounces+{token}@gemeente.example"

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/dsn/%s", TEST_SRCDIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void parse_file(const char *name, struct dsn *d)
{
    size_t len;
    const char *why = NULL;
    char *text = slurp(name, &len);
    int rc = dsn_parse(text, len, d, &why);
    if (rc != 0)
        fail_msg("%s: %s", name, why);
    free(text);
}

/* the token from where the report was delivered, as herinnerctl bounce looks for it */
static int envelope_token(const struct dsn *d, char *token)
{
    for (int i = 0; i < d->nenvelope; i++)
        if (dsn_token_from_address(PATTERN, d->envelope[i], token, DSN_TOKEN_MAX) == 0)
            return 0;
    return -1;
}

static void postfix_permanent_failure(void **state)
{
    struct dsn d;
    char token[DSN_TOKEN_MAX];
    (void)state;

    parse_file("postfix-failed.eml", &d);
    assert_string_equal(d.action, "failed");
    assert_string_equal(d.status, "5.1.1");
    assert_string_equal(d.recipient, "jan@example.nl");
    assert_string_equal(d.diagnostic, "550 5.1.1 <jan@example.nl>: Recipient address rejected: "
                                      "User unknown in virtual mailbox table");
    assert_string_equal(d.message_id, "<herinnerd." TOKEN "@gemeente.example>");
    assert_int_equal(envelope_token(&d, token), 0);
    assert_string_equal(token, TOKEN);
}

static void postfix_delay_warning(void **state)
{
    struct dsn d;
    (void)state;

    parse_file("postfix-delayed.eml", &d);
    assert_string_equal(d.action, "delayed");
    assert_string_equal(d.status, "4.2.2");
    assert_string_equal(d.recipient, "piet@example.org");
    assert_string_equal(d.diagnostic, "452 4.2.2 <piet@example.org>: Mailbox full");
    assert_string_equal(d.message_id, "<herinnerd." TOKEN "@gemeente.example>");
}

static void exim_failed_and_delayed(void **state)
{
    struct dsn d;
    char token[DSN_TOKEN_MAX];
    (void)state;

    parse_file("exim-failed.eml", &d);
    assert_string_equal(d.action, "failed");
    assert_string_equal(d.status, "5.0.0");         /* Exim's own code; the reply says more */
    assert_string_equal(d.recipient, "jan@example.nl");
    assert_string_equal(d.diagnostic,
                        "550 5.1.1 <jan@example.nl>: Recipient address rejected: User unknown");
    assert_string_equal(d.message_id, "<herinnerd." TOKEN "@gemeente.example>");
    assert_int_equal(envelope_token(&d, token), 0);
    assert_string_equal(token, TOKEN);

    parse_file("exim-delayed.eml", &d);
    assert_string_equal(d.action, "delayed");
    assert_string_equal(d.status, "4.0.0");
    assert_string_equal(d.diagnostic, "451 4.7.1 Greylisted, please try again later");
}

static void exim_plain_text_bounce(void **state)
{
    struct dsn d;
    (void)state;

    parse_file("exim-plain-failed.eml", &d);
    assert_string_equal(d.action, "failed");
    assert_string_equal(d.status, "5.1.1");         /* the enhanced code in the reply */
    assert_string_equal(d.recipient, "jan@example.nl");
    assert_string_equal(d.diagnostic, "550 5.1.1 <jan@example.nl>... User unknown");
    assert_string_equal(d.message_id, "<herinnerd." TOKEN "@gemeente.example>");
}

static void crlf_line_ends_read_the_same(void **state)
{
    size_t len;
    struct dsn lf, crlf;
    const char *why;
    (void)state;

    char *text = slurp("postfix-failed.eml", &len);
    char *dos = malloc(2 * len + 1), *o = dos;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n')
            *o++ = '\r';
        *o++ = text[i];
    }
    assert_int_equal(dsn_parse(text, len, &lf, &why), 0);
    assert_int_equal(dsn_parse(dos, (size_t)(o - dos), &crlf, &why), 0);
    assert_memory_equal(&lf, &crlf, sizeof(lf));
    free(text);
    free(dos);
}

static void not_a_report(void **state)
{
    static const char *const texts[] = {
        "From: jan@example.nl\nSubject: hallo\n\nGewoon een brief.\n",
        "",
        "Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; a\n\nAction: failed\nStatus: five\n\n--x--\n",
        "Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/delivery-status\n\n"
        "garbage line\nmore garbage\n\n--x--\n",
    };
    struct dsn d;
    const char *why = NULL;
    (void)state;

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        why = NULL;
        assert_int_equal(dsn_parse(texts[i], strlen(texts[i]), &d, &why), -1);
        assert_non_null(why);
    }
}

static void hostile_text_comes_out_clean(void **state)
{
    static const char text[] =
        "Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/delivery-status\n\n"
        "Action: failed\nStatus: 5.7.1\nDiagnostic-Code: smtp; 550 \x1b[31mred\x1b[0m \xff\xfe bad\n"
        "  bytes \xc3\xa9t\xc3\xa9\n\n--x--\n";
    struct dsn d;
    const char *why;
    (void)state;

    assert_int_equal(dsn_parse(text, sizeof(text) - 1, &d, &why), 0);
    assert_string_equal(d.diagnostic, "550 [31mred [0m ?? bad bytes \xc3\xa9t\xc3\xa9");
}

static void verp(void **state)
{
    char out[128], token[DSN_TOKEN_MAX];
    (void)state;

    assert_null(dsn_return_path_problem(PATTERN));
    assert_non_null(dsn_return_path_problem("bounces@gemeente.example"));
    assert_non_null(dsn_return_path_problem("{token}+{token}@gemeente.example"));
    assert_non_null(dsn_return_path_problem("bounces@{token}.example"));
    assert_non_null(dsn_return_path_problem("bounces+{token}"));
    assert_non_null(dsn_return_path_problem("Bounces <b+{token}@g.example>"));
    assert_int_equal(dsn_return_path(PATTERN, TOKEN, out, sizeof(out)), 0);
    assert_string_equal(out, "bounces+" TOKEN "@gemeente.example");
    assert_int_equal(dsn_return_path(PATTERN, TOKEN, out, 20), -1);

    assert_int_equal(dsn_token_from_address(PATTERN, "BOUNCES+" TOKEN "@Gemeente.Example", token,
                                            sizeof(token)), 0);
    assert_string_equal(token, TOKEN);
    assert_int_equal(dsn_token_from_address(PATTERN, "rfc822; <bounces+" TOKEN "@gemeente.example>",
                                            token, sizeof(token)), 0);
    assert_int_equal(dsn_token_from_address(PATTERN, "Post <bounces+" TOKEN "@gemeente.example>",
                                            token, sizeof(token)), 0);
    assert_int_equal(dsn_token_from_address(PATTERN, "bounces+" TOKEN "@elders.example", token,
                                            sizeof(token)), -1);
    assert_int_equal(dsn_token_from_address(PATTERN, "bounces+xyz@gemeente.example", token,
                                            sizeof(token)), -1);
    assert_int_equal(dsn_token_from_address(PATTERN, "bounces+@gemeente.example", token,
                                            sizeof(token)), -1);
    assert_int_equal(dsn_token_from_message_id("<herinnerd." TOKEN "@gemeente.example>", token,
                                               sizeof(token)), 0);
    assert_string_equal(token, TOKEN);
    assert_int_equal(dsn_token_from_message_id("<E1tH2Ab-0004Xy-1Q@mx1.gemeente.example>", token,
                                               sizeof(token)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(postfix_permanent_failure),
        cmocka_unit_test(postfix_delay_warning),
        cmocka_unit_test(exim_failed_and_delayed),
        cmocka_unit_test(exim_plain_text_bounce),
        cmocka_unit_test(crlf_line_ends_read_the_same),
        cmocka_unit_test(not_a_report),
        cmocka_unit_test(hostile_text_comes_out_clean),
        cmocka_unit_test(verp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
