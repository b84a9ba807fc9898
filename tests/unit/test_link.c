/* The link rule: only plain https: links (http: where allowed) reach a citizen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "link.h"

#define INBOX "https://mijn.overheid.nl"

static void accept(const char *url, int allow_http)
{
    const char *reason = NULL;

    if (link_check(url, allow_http, &reason) != 0)
        fail_msg("'%s' refused: %s", url, reason);
}

static void refuse(const char *url, int allow_http, const char *why)
{
    const char *reason = NULL;

    if (link_check(url, allow_http, &reason) == 0)
        fail_msg("'%s' accepted", url);
    if (strstr(reason, why) == NULL)
        fail_msg("'%s': reason '%s' does not mention '%s'", url, reason, why);
}

static void https_links_pass(void **state)
{
    (void)state;
    accept("https://mijn.overheid.nl/berichtenbox/42", 0);
    accept("HTTPS://Mijn.Overheid.NL", 0);
    accept("https://x.nl:8443/a/b?c=d&e=%20f#top", 0);
    accept("https://[2001:db8::1]/b", 0);
    accept("https://127.0.0.1:443/", 0);
    accept("http://intranet.gemeente.example/b/1", 1);
}

static void everything_else_is_refused(void **state)
{
    (void)state;
    refuse("javascript:alert(1)", 0, "not https");
    refuse("JavaScript://%0aalert(1)", 1, "not https");
    refuse("data:text/html;base64,PHNjcmlwdD4=", 0, "not https");
    refuse("http://mijn.overheid.nl/b/1", 0, "not https");
    refuse("ftp://x.nl/a", 1, "not https");
    refuse("//x.nl/a", 0, "not https");
    refuse("mijn.overheid.nl/b/1", 0, "not https");
    refuse("", 0, "empty");
    refuse("https://", 0, "host");
    refuse("https:///path", 0, "host");
    refuse("https://mijn.overheid.nl@evil.example/", 0, "user name");
    refuse("https://x.nl:99999999/", 0, "host");
    refuse("https://x.nl:/", 0, "host");
    refuse("https://-x.nl/", 0, "host");
    refuse("https://x.nl/a b", 0, "characters");
    refuse("https://x.nl/a\r\nBcc: y@z.nl", 0, "characters");
    refuse("https://x.nl/\"onmouseover=\"x", 0, "characters");
    refuse("https://x.nl/<script>", 0, "characters");
    refuse("https://bücher.example/", 0, "characters");
    refuse("https://x.nl/\xC3\xBA", 0, "characters");
}

static void overlong_links_are_refused(void **state)
{
    char *url = malloc(LINK_MAX + 2);
    (void)state;
    memset(url, 'a', LINK_MAX + 1);
    memcpy(url, "https://x.nl/", 13);
    url[LINK_MAX + 1] = '\0';
    refuse(url, 0, "too long");
    url[LINK_MAX] = '\0';
    accept(url, 0);
    free(url);
}

static void replaced_links_say_why(void **state)
{
    char note[96];
    (void)state;
    assert_string_equal(link_for_citizen("https://x.nl/1", INBOX, 0, note, sizeof(note)),
                        "https://x.nl/1");
    assert_string_equal(note, "");
    assert_string_equal(link_for_citizen("javascript:alert(1)", INBOX, 0, note, sizeof(note)),
                        INBOX);
    assert_string_equal(note, "link replaced: not https");
    assert_string_equal(link_for_citizen("http://x.nl/1", INBOX, 0, note, sizeof(note)), INBOX);
    assert_string_equal(note, "link replaced: not https");
    assert_string_equal(link_for_citizen("http://x.nl/1", INBOX, 1, note, sizeof(note)),
                        "http://x.nl/1");
    assert_string_equal(note, "");
    /* a message without a link gets the inbox: nothing was replaced */
    assert_string_equal(link_for_citizen(NULL, INBOX, 0, note, sizeof(note)), INBOX);
    assert_string_equal(note, "");
    assert_string_equal(link_for_citizen("  ", INBOX, 0, note, sizeof(note)), INBOX);
    assert_string_equal(note, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_links_pass),
        cmocka_unit_test(everything_else_is_refused),
        cmocka_unit_test(overlong_links_are_refused),
        cmocka_unit_test(replaced_links_say_why),
    };
    return cmocka_run_group_tests_name("link", tests, NULL, NULL);
}
