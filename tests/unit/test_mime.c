/* Header encoding (RFC 2047), CR/LF stripping, quoted-printable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mime.h"

static void ascii_subjects_stay_readable(void **state)
{
    (void)state;
    char *h = mime_header("Subject", "Aanslag inkomstenbelasting 2025");
    assert_string_equal(h, "Subject: Aanslag inkomstenbelasting 2025");
    free(h);
}

static void utf8_subjects_are_encoded_words(void **state)
{
    (void)state;
    char *h = mime_header("Subject", "Vriës");
    assert_non_null(strstr(h, "=?UTF-8?B?VnJpw6tz?="));
    free(h);
}

static void crlf_can_never_inject_a_header(void **state)
{
    (void)state;
    char *h = mime_header("Subject", "Hallo\r\nBcc: victim@example.nl\r\n\r\nbody");
    /* one logical header: no line break that is not followed by folding white space */
    for (const char *p = strstr(h, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        assert_true(p[2] == ' ');
    assert_null(strstr(h, "\nBcc:"));
    assert_null(strchr(h, '\n') ? strstr(h, "\r\n\r\n") : NULL);
    free(h);

    /* encoded path too */
    h = mime_header("Subject", "ë\r\nBcc: x@y");
    for (const char *p = strstr(h, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        assert_true(p[2] == ' ');
    free(h);
}

static void strip_controls(void **state)
{
    (void)state;
    char s[] = "a\rb\nc\td\x01";
    mime_strip_controls(s);
    assert_string_equal(s, "a b c d ");
}

static void long_headers_are_folded(void **state)
{
    (void)state;
    char subject[600];
    memset(subject, 0, sizeof(subject));
    for (int i = 0; i < 40; i++)
        strcat(subject, i % 2 ? "ë" : "woord ");
    char *h = mime_header("Subject", subject);
    const char *line = h;
    for (const char *p = h;; p++) {
        if (*p == '\r' || *p == '\0') {
            assert_true(p - line <= 78);
            if (*p == '\0')
                break;
            line = p + 2;
        }
    }
    free(h);

    char ascii[400] = "";
    for (int i = 0; i < 30; i++)
        strcat(ascii, "belasting ");
    h = mime_header("Subject", ascii);
    assert_non_null(strstr(h, "\r\n "));
    free(h);
}

/* The longest line of a header (lines joined with CRLF). */
static size_t longest_line(const char *h)
{
    size_t longest = 0;
    const char *line = h;

    for (const char *p = h;; p++)
        if (*p == '\r' || *p == '\0') {
            if ((size_t)(p - line) > longest)
                longest = p - line;
            if (*p == '\0')
                return longest;
            line = p + 2;
        }
}

/* Found by fuzzing (tests/fuzz/fuzz_mime.c): a word without spaces cannot be folded as plain
 * text, and a 2,000-character one made a 2,009-character line (RFC 5322 allows 998). */
static void long_words_are_encoded_not_one_long_line(void **state)
{
    (void)state;
    char word[2001];
    memset(word, 'a', 2000);
    word[2000] = '\0';
    char *h = mime_header("Subject", word);
    assert_true(longest_line(h) <= 78);
    free(h);
    /* an ordinary long subject stays plain text */
    h = mime_header("Subject", "Aanslag inkomstenbelasting 2025 van de Belastingdienst voor u klaar");
    assert_null(strstr(h, "=?"));
    free(h);
}

/* Found by fuzzing: a long display name (a recipient's name from the database, the config's
 * email.from) was one quoted string on one line, however long. */
static void long_display_names_are_folded(void **state)
{
    (void)state;
    char name[3001];
    for (int i = 0; i < 3000; i++)
        name[i] = i % 7 == 6 ? ' ' : 'x';
    name[3000] = '\0';
    char *m = mime_mailbox(name, "jan@example.nl");
    char *h = malloc(strlen(m) + 5);
    strcpy(h, "To: ");
    strcat(h, m);
    assert_true(longest_line(h) <= 78);
    assert_non_null(strstr(h, " <jan@example.nl>"));
    free(h);
    free(m);
    name[10] = '\0';   /* short names stay quoted plain text */
    m = mime_mailbox("Jan Jansen", "jan@example.nl");
    assert_string_equal(m, "\"Jan Jansen\" <jan@example.nl>");
    free(m);
}

static void encoded_words_never_split_a_character(void **state)
{
    (void)state;
    /* 30 two-byte characters: a naive 45-byte cut would split one */
    char s[100] = "";
    for (int i = 0; i < 30; i++)
        strcat(s, "ĳ");
    char *h = mime_header("Subject", s);
    /* first word: 22 characters = 44 bytes -> 60 base64 characters with padding */
    const char *w = strstr(h, "=?UTF-8?B?");
    assert_non_null(w);
    const char *end = strstr(w, "?=");
    assert_int_equal((end - w - 10) % 4, 0);
    assert_true(end - w - 10 <= 60);
    free(h);
}

static void mailboxes(void **state)
{
    (void)state;
    char *display, *addr;
    assert_int_equal(mime_parse_mailbox("MijnOverheid <noreply@example.nl>", &display, &addr), 0);
    assert_string_equal(display, "MijnOverheid");
    assert_string_equal(addr, "noreply@example.nl");
    char *m = mime_mailbox(display, addr);
    assert_string_equal(m, "\"MijnOverheid\" <noreply@example.nl>");
    free(m);
    free(display);
    free(addr);
    assert_int_equal(mime_parse_mailbox("\"A, B\" <a@b.nl>", &display, &addr), 0);
    assert_string_equal(display, "A, B");
    free(display);
    free(addr);
    assert_int_equal(mime_parse_mailbox("not an address", &display, &addr), -1);
    assert_int_equal(mime_parse_mailbox("x <a@b@c>", &display, &addr), -1);
    m = mime_mailbox("Jan \"de\" Vries", "jan@example.nl");
    assert_string_equal(m, "\"Jan \\\"de\\\" Vries\" <jan@example.nl>");
    free(m);
}

static void address_checks(void **state)
{
    (void)state;
    assert_true(mime_address_ok("jan@example.nl"));
    assert_false(mime_address_ok("jan"));
    assert_false(mime_address_ok("@example.nl"));
    assert_false(mime_address_ok("jan@"));
    assert_false(mime_address_ok("jan@example.nl\r\nRCPT TO:<x@y>"));
    assert_false(mime_address_ok("jan example@nl"));
}

static void quoted_printable(void **state)
{
    (void)state;
    char *q = mime_quoted_printable("Beste Jan de Vriës,\nFrom now on = fine \n");
    assert_string_equal(q, "Beste Jan de Vri=C3=ABs,\r\n=46rom now on =3D fine=20\r\n");
    free(q);
    char longline[200];
    memset(longline, 'a', 150);
    longline[150] = '\0';
    q = mime_quoted_printable(longline);
    assert_non_null(strstr(q, "=\r\n"));
    free(q);
}

static void message_ids_are_unique_per_attempt(void **state)
{
    char a[200], b[200], tiny[20];
    (void)state;

    assert_int_equal(mime_message_id(a, sizeof a, "example.nl"), 0);
    assert_int_equal(mime_message_id(b, sizeof b, "example.nl"), 0);
    /* a re-created database or a second deployment asks for the same (message, step) again:
     * nothing in the id depends on them */
    assert_string_not_equal(a, b);
    assert_int_equal(strncmp(a, "<herinnerd.", 11), 0);
    assert_int_equal(strspn(a + 11, "0123456789abcdef"), 32);
    assert_string_equal(a + 43, "@example.nl>");
    assert_int_equal(mime_message_id(tiny, sizeof tiny, "example.nl"), -1);
}

static void helo_names(void **state)
{
    (void)state;
    assert_true(mime_helo_ok("mail.gemeente.example"));
    assert_true(mime_helo_ok("herinnerd-1"));
    assert_true(mime_helo_ok("[192.0.2.1]"));
    assert_true(mime_helo_ok("[IPv6:2001:db8::1]"));
    assert_false(mime_helo_ok(""));
    assert_false(mime_helo_ok("mail..example"));
    assert_false(mime_helo_ok(".example"));
    assert_false(mime_helo_ok("-mail.example"));
    assert_false(mime_helo_ok("mail-.example"));
    assert_false(mime_helo_ok("mail example"));
    assert_false(mime_helo_ok("mail.example\r\nRCPT TO:<x@y>"));
    assert_false(mime_helo_ok("[]"));
    assert_false(mime_helo_ok("[192.0.2.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ascii_subjects_stay_readable),
        cmocka_unit_test(utf8_subjects_are_encoded_words),
        cmocka_unit_test(crlf_can_never_inject_a_header),
        cmocka_unit_test(strip_controls),
        cmocka_unit_test(long_headers_are_folded),
        cmocka_unit_test(encoded_words_never_split_a_character),
        cmocka_unit_test(long_words_are_encoded_not_one_long_line),
        cmocka_unit_test(long_display_names_are_folded),
        cmocka_unit_test(mailboxes),
        cmocka_unit_test(address_checks),
        cmocka_unit_test(quoted_printable),
        cmocka_unit_test(message_ids_are_unique_per_attempt),
        cmocka_unit_test(helo_names),
    };
    return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
