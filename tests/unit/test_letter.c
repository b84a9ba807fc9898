/* test_letter.c — the PDF letter, read back with pdftotext. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* timegm, mkdtemp, nftw */
#endif
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cairo.h>
#include <cmocka.h>

#include "letter.h"

#define NAME "Jan de Vriës"
#define STREET "Kerkstraat 1"
#define TOWN "1234 AB Ĳsselstein"
#define SUBJECT "Aanslag inkomstenbelasting 2025 – é ë ĳ"
#define LINK "https://mijn.overheid.nl/berichtenbox/bericht/8f1c2a9e"

struct fixture {
    char dir[64];
    char pdf[PATH_MAX];
};

static struct letter sample(void)
{
    struct letter l = {
        .message_id = 42,
        .step = 3,
        .sender = "Belastingdienst",
        .recipient_name = NAME,
        .postal_address = STREET "\n" TOWN,
        .subject = SUBJECT,
        .link = LINK,
        .language = "nl",
        .date = 1795392000, /* 2026-11-23 00:00 UTC */
    };
    return l;
}

static time_t utc(int y, int mon, int d, int h, int min)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h, .tm_min = min
    };
    return timegm(&tm);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/test_letter.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->pdf, sizeof f->pdf, "%s/letter.pdf", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

    free(f);
    return rc;
}

/* pdftotext's view of the PDF, malloc'd */
static char *pdf_text(const char *path)
{
    char cmd[PATH_MAX + 64], *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *p;

    snprintf(cmd, sizeof cmd, "pdftotext -q -enc UTF-8 '%s' -", path);
    p = popen(cmd, "r");
    assert_non_null(p);
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t n = fread(buf + len, 1, cap - len - 1, p);
        if (n == 0)
            break;
        len += n;
    }
    buf[len] = '\0';
    assert_int_equal(pclose(p), 0);
    return buf;
}

#define PT(mm) ((mm)*72.0 / 25.4)

struct box {
    double x0, y0, x1, y1;
    char word[256];
};

/* pdftotext -bbox: every word with its box in points (origin top left); returns the count */
static int word_boxes(const char *path, struct box **out)
{
    char cmd[PATH_MAX + 64], line[1024];
    struct box *v = NULL, b;
    int n = 0;
    FILE *p;

    snprintf(cmd, sizeof cmd, "pdftotext -q -bbox '%s' -", path);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof line, p)) {
        if (sscanf(line, " <word xMin=\"%lf\" yMin=\"%lf\" xMax=\"%lf\" yMax=\"%lf\">%255[^<]",
                   &b.x0, &b.y0, &b.x1, &b.y1, b.word) != 5)
            continue;
        v = realloc(v, (size_t)(n + 1) * sizeof *v);
        assert_non_null(v);
        v[n++] = b;
    }
    assert_int_equal(pclose(p), 0);
    *out = v;
    return n;
}

/* all text inside the margins: 25 mm left, 20 mm right, and on the page vertically */
static void assert_inside_margins(const char *path)
{
    struct box *b;
    int n = word_boxes(path, &b);

    assert_true(n > 20);
    for (int i = 0; i < n; i++) {
        if (b[i].x0 < PT(25) - 0.5 || b[i].x1 > 595.28 - PT(20) + 0.5 || b[i].y0 < PT(10) ||
            b[i].y1 > 841.89 - PT(8))
            fail_msg("'%s' at x %.1f..%.1f y %.1f..%.1f is outside the margins", b[i].word, b[i].x0,
                     b[i].x1, b[i].y0, b[i].y1);
    }
    free(b);
}

static char *render_text(struct fixture *f, const struct letter *l)
{
    char err[256] = "";
    int rc = letter_render_pdf(l, f->pdf, err, sizeof err);

    if (rc != 0)
        fail_msg("render failed: %s", err);
    return pdf_text(f->pdf);
}

static void assert_contains(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("'%s' not found in:\n%s", needle, text);
}

static void assert_lacks(const char *text, const char *needle)
{
    if (strstr(text, needle))
        fail_msg("'%s' unexpectedly found in:\n%s", needle, text);
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_dutch(void **state)
{
    struct letter l = sample();
    char *t = render_text(*state, &l);

    assert_contains(t, NAME);
    assert_contains(t, STREET);
    assert_contains(t, TOWN);
    assert_contains(t, "Betreft: " SUBJECT);
    assert_contains(t, LINK);
    assert_contains(t, "Belastingdienst");
    assert_contains(t, "MijnOverheid Berichtenbox");
    assert_contains(t, "Datum: 23 november 2026");
    assert_contains(t, "Kenmerk: 42-3");
    assert_contains(t, "geen herinneringen meer");
    assert_lacks(t, "sinds"); /* no received date given */
    free(t);
}

static void test_return_address(void **state)
{
    struct letter l = sample();
    l.return_address = "Postbus 100\n7300 AC Apeldoorn";
    char *t = render_text(*state, &l);

    assert_contains(t, "Postbus 100");
    assert_contains(t, "7300 AC Apeldoorn");
    free(t);
}

static void test_english(void **state)
{
    struct letter l = sample();
    char *t;

    l.language = "en";
    l.received = utc(2026, 11, 9, 10, 0);
    t = render_text(*state, &l);
    assert_contains(t, NAME);
    assert_contains(t, STREET);
    assert_contains(t, TOWN);
    assert_contains(t, "Subject: " SUBJECT);
    assert_contains(t, LINK);
    assert_contains(t, "Date: 23 November 2026");
    assert_contains(t, "since 9 November 2026");
    assert_contains(t, "Dear Sir or Madam");
    assert_contains(t, "no more reminders");
    assert_contains(t, "Kenmerk: 42-3");
    free(t);
}

static void test_unknown_language_is_dutch(void **state)
{
    struct letter l = sample();
    char *t;

    l.language = "fy";
    l.received = utc(2026, 11, 9, 10, 0);
    t = render_text(*state, &l);
    assert_contains(t, "Geachte heer/mevrouw");
    assert_contains(t, "sinds 9 november 2026");
    free(t);
}

static void test_hidden_subject(void **state)
{
    struct letter l = sample();
    char *t;

    l.subject = NULL;
    t = render_text(*state, &l);
    assert_lacks(t, "Aanslag");
    assert_lacks(t, "inkomstenbelasting");
    assert_contains(t, "belangrijk bericht");
    assert_contains(t, NAME);
    free(t);

    l.subject = "";
    l.language = "en";
    t = render_text(*state, &l);
    assert_lacks(t, "Aanslag");
    assert_contains(t, "an important message");
    free(t);
}

static void test_no_link(void **state)
{
    struct letter l = sample();
    char *t;

    l.link = NULL;
    t = render_text(*state, &l);
    assert_contains(t, "mijn.overheid.nl");
    assert_lacks(t, "berichtenbox/bericht");
    free(t);
}

static void test_long_url_wraps(void **state)
{
    char url[1200], *t, *joined;
    struct letter l = sample();
    size_t j = 0;

    /* no separators at all: it can only be cut between characters */
    strcpy(url, "https://mijn.overheid.nl/");
    for (size_t i = strlen(url); i < 480; i++)
        url[i] = (char)('a' + i % 26);
    url[480] = '\0';
    l.link = url;
    t = render_text(*state, &l);
    assert_contains(t, "https://mijn.overheid.nl/zabcdef");
    assert_int_equal(count(t, "https://mijn.overheid.nl/"), 1);
    joined = strdup(t);
    for (const char *p = t; *p; p++)
        if (*p != '\n')
            joined[j++] = *p;
    joined[j] = '\0';
    assert_contains(joined, url); /* every character printed, in order */
    assert_inside_margins(((struct fixture *)*state)->pdf);
    free(joined);
    free(t);

    /* too long to type from paper: the portal's address instead */
    memset(url + 480, 'x', 600);
    url[1080] = '\0';
    t = render_text(*state, &l);
    assert_lacks(t, "https://mijn.overheid.nl/zabcdef");
    assert_contains(t, "lezen op mijn.overheid.nl");
    free(t);
}

static void test_utf8_and_controls_are_cleaned(void **state)
{
    struct letter l = sample();
    char *t;

    l.subject = "bad \xff\xfe bytes \xc3 and\ttabs\r\nand \xe2\x80\xae"
                "bidi";
    l.sender = "Gemeente\x01 Utrecht";
    t = render_text(*state, &l);
    assert_contains(t, "bytes");
    assert_contains(t, "and tabs and bidi");
    assert_contains(t, "Gemeente Utrecht");
    free(t);
}

/* Dates follow the process's time zone (the daemon sets TZ from the config). */
static void use_zone(const char *zone)
{
    setenv("TZ", zone, 1);
    tzset();
}

static void test_time_zones(void **state)
{
    struct letter l = sample();
    char *t;

    l.date = utc(2026, 11, 22, 23, 30); /* already the 23rd in Amsterdam (CET) */
    t = render_text(*state, &l);
    assert_contains(t, "Datum: 23 november 2026");
    free(t);
    use_zone("UTC");
    t = render_text(*state, &l);
    assert_contains(t, "Datum: 22 november 2026");
    free(t);

    use_zone("Europe/Amsterdam");
    l.date = utc(2040, 10, 27, 22, 30); /* CEST until 28 Oct 01:00 UTC */
    t = render_text(*state, &l);
    assert_contains(t, "Datum: 28 oktober 2040");
    free(t);
    l.date = utc(2040, 10, 28, 22, 30); /* CET again */
    t = render_text(*state, &l);
    assert_contains(t, "Datum: 28 oktober 2040");
    free(t);
    use_zone("Australia/Sydney"); /* southern summer spans the new year */
    l.date = utc(2040, 12, 31, 13, 30);
    t = render_text(*state, &l);
    assert_contains(t, "Datum: 1 januari 2041");
    free(t);
    l.date = utc(2040, 6, 30, 14, 30);
    t = render_text(*state, &l);
    assert_contains(t, "Datum: 1 juli 2040");
    free(t);
    use_zone("Europe/Amsterdam");
}

static void test_unwritable_path(void **state)
{
    struct fixture *f = *state;
    struct letter l = sample();
    char err[256] = "", path[PATH_MAX + 32];

    /* as root EACCES cannot be provoked; a path below a regular file fails for everyone */
    assert_int_equal(letter_render_pdf(&l, f->pdf, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/below.pdf", f->pdf);
    err[0] = '\0';
    assert_int_equal(letter_render_pdf(&l, path, err, sizeof err), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_true(strlen(err) > 0);
    assert_non_null(strstr(err, "below.pdf"));

    err[0] = '\0';
    assert_int_equal(letter_render_pdf(&l, "/nonexistent-dir/x.pdf", err, sizeof err), -1);
    assert_int_equal(errno, ENOENT);
    assert_true(strlen(err) > 0);
}

static void test_disk_full(void **state)
{
    struct letter l = sample();
    char err[256] = "";
    struct stat st;

    (void)state;
    assert_int_equal(letter_render_pdf(&l, "/dev/full", err, sizeof err), -1);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(strstr(err, "/dev/full"));
    /* it existed before, so it is not ours to remove */
    assert_int_equal(stat("/dev/full", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
}

static void test_address_must_fit(void **state)
{
    struct fixture *f = *state;
    struct letter l = sample();
    char err[256] = "";

    l.postal_address = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14";
    assert_int_equal(letter_render_pdf(&l, f->pdf, err, sizeof err), -1);
    assert_int_equal(errno, EINVAL);
    if (!strstr(err, "window") || !strstr(err, "15 lines"))
        fail_msg("got '%s'", err);
    assert_int_equal(access(f->pdf, F_OK), -1); /* the file it created is gone */

    /* a word too wide for the window even at the smallest size cannot be wrapped: refused,
     * naming the line and its width */
    l.postal_address = "Kerkstraat 1\nWwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww 1\n1234 AB Utrecht";
    assert_int_equal(letter_render_pdf(&l, f->pdf, err, sizeof err), -1);
    assert_int_equal(errno, EINVAL);
    if (!strstr(err, "address line 2 (") || !strstr(err, " mm wide") || !strstr(err, "75 mm"))
        fail_msg("got '%s'", err);
    l.postal_address = STREET "\n" TOWN;
    l.recipient_name = "Wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww";
    assert_int_equal(letter_render_pdf(&l, f->pdf, err, sizeof err), -1);
    if (!strstr(err, "recipient name (") || !strstr(err, " mm wide"))
        fail_msg("got '%s'", err);
    l.recipient_name = NAME;

    l.postal_address = "\n \n";
    assert_int_equal(letter_render_pdf(&l, f->pdf, err, sizeof err), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, "no postal address"));

    /* a long but real address shrinks to fit */
    l.postal_address = "T.a.v. de heer J. de Vriës\nBurgemeester van Roijensingel 112 A\n8011 CZ "
                       "Zwolle\nNederland";
    assert_int_equal(letter_render_pdf(&l, f->pdf, err, sizeof err), 0);
}

static void test_worst_case_stays_on_one_page(void **state)
{
    struct fixture *f = *state;
    struct letter l = sample();
    char sender[400] = "", subject[1200] = "", link[600], cmd[PATH_MAX + 64], line[256];
    int pages = 0;
    FILE *p;

    for (int i = 0; i < 20; i++)
        strcat(sender, "Wwwwwwwww ");
    for (int i = 0; i < 60; i++)
        strcat(subject, "Wwwwwwwwww ");
    strcpy(link, "https://example.org/");
    memset(link + 20, 'W', 480); /* the longest link that is still printed */
    link[500] = '\0';
    l.sender = sender, l.subject = subject, l.link = link;
    l.return_address = "Wwwwwwwwww Wwwwwwwwww Wwwwwwwwww\nWwwwwwwwww Wwwwwwwwww\nWwwwwwwwww\nWwwwwwwwww";
    l.received = utc(2026, 11, 9, 10, 0);
    char contact[400] = "";
    for (int i = 0; i < 30; i++) /* beyond the cap */
        strcat(contact, "Wwwwwwwwww ");
    l.contact = contact;
    struct letter_facts facts = { 0 };
    l.facts = &facts;
    assert_int_equal(letter_render_pdf(&l, f->pdf, NULL, 0), 0);
    snprintf(cmd, sizeof cmd, "pdfinfo '%s'", f->pdf);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "Pages: %d", &pages) == 1)
            break;
    pclose(p);
    assert_int_equal(pages, 1);
    assert_int_equal(facts.pages, pages);
    assert_inside_margins(f->pdf);
}

/* The address must show through the window: 20 mm from the left, 45 mm from the top, 85 x 45 mm
 * (its top 5 mm are the return-address zone). */
static void test_address_in_window(void **state)
{
    struct fixture *f = *state;
    struct letter l = sample();
    const char *words[] = { "Jan", "Vriës", "Kerkstraat", "1234", "AB", "Ĳsselstein" };
    struct box *b;
    int n, found = 0;

    l.postal_address = STREET "\n" TOWN "\nNederland";
    assert_int_equal(letter_render_pdf(&l, f->pdf, NULL, 0), 0);
    n = word_boxes(f->pdf, &b);
    for (int i = 0; i < n; i++) {
        for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
            if (strcmp(b[i].word, words[w]) != 0 || b[i].y0 > PT(100))
                continue;
            found++;
            assert_true(b[i].x0 >= PT(20) && b[i].x1 <= PT(20 + 85));
            assert_true(b[i].y0 >= PT(45 + 5) && b[i].y1 <= PT(45 + 45));
        }
    }
    assert_int_equal(found, 6);
    free(b);
    assert_inside_margins(f->pdf);
}

/* every word of the address block inside the window's printable area (25..100 mm, 52..87 mm) */
static int assert_address_in_window(const char *pdf, const char *const *words, size_t nwords)
{
    struct box *b;
    int n = word_boxes(pdf, &b), found = 0;

    for (int i = 0; i < n; i++) {
        if (b[i].y0 > PT(95) || b[i].y0 < PT(45))
            continue; /* the letterhead above, the body below */
        for (size_t w = 0; w < nwords; w++) {
            if (strcmp(b[i].word, words[w]) != 0)
                continue;
            found++;
            if (b[i].x0 < PT(25) - 0.5 || b[i].x1 > PT(100) + 0.5 || b[i].y0 < PT(50) ||
                b[i].y1 > PT(87) + 0.5)
                fail_msg("'%s' at x %.1f..%.1f mm y %.1f..%.1f mm is outside the window",
                         b[i].word, b[i].x0 * 25.4 / 72, b[i].x1 * 25.4 / 72, b[i].y0 * 25.4 / 72,
                         b[i].y1 * 25.4 / 72);
        }
    }
    free(b);
    return found;
}

/* The field's case: a valid 5-line address with one 68-character line ended the ladder with
 * "does not fit the envelope window (6 lines)"; the cause was width. It wraps now. */
static void test_long_address_line_wraps(void **state)
{
    struct fixture *f = *state;
    struct letter l = sample();
    const char *line2 = "Koninklijke Nederlandse Akademie van Wetenschappen, afdeling Archief";
    const char *words[] = { "Koninklijke", "Nederlandse", "Akademie", "Wetenschappen,", "afdeling",
                            "Archief", "Postbus", "19121", "Amsterdam", "Nederland" };
    char addr[512], err[256] = "";
    struct letter_facts facts = { 0 };
    char *t;

    assert_int_equal(strlen(line2), 68);
    snprintf(addr, sizeof addr, "T.a.v. Financiële Administratie\n%s\nPostbus 19121\n"
             "1000 GC Amsterdam\nNederland", line2);
    l.postal_address = addr;
    l.facts = &facts;
    if (letter_render_pdf(&l, f->pdf, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    t = pdf_text(f->pdf);
    assert_contains(t, "Koninklijke Nederlandse Akademie");
    assert_contains(t, "afdeling Archief");
    assert_contains(t, "1000 GC Amsterdam"); /* short lines stay whole */
    free(t);
    assert_int_equal(assert_address_in_window(f->pdf, words, sizeof words / sizeof *words), 10);
    assert_int_equal(facts.pages, 1);
    assert_string_equal(facts.country, "NL");
}

static void test_name_is_printed_once(void **state)
{
    struct letter l = sample();
    char *t;

    l.postal_address = NAME "\n" STREET "\n" TOWN;
    t = render_text(*state, &l);
    assert_int_equal(count(t, NAME), 1);
    assert_contains(t, STREET);
    free(t);

    /* a salutation or attention line that ends in the name counts too */
    l.recipient_name = "J. de Vriës";
    l.postal_address = "Dhr. J. de Vriës\n" STREET "\n" TOWN;
    t = render_text(*state, &l);
    assert_int_equal(count(t, "J. de Vriës"), 1);
    free(t);

    /* a street that merely starts like the name is no name */
    l.recipient_name = "Jan";
    l.postal_address = "Jan van Galenstraat 1\n" TOWN;
    t = render_text(*state, &l);
    assert_int_equal(count(t, "Jan"), 2);
    free(t);

    /* otherwise the name goes above the address, as before */
    l = sample();
    t = render_text(*state, &l);
    assert_int_equal(count(t, NAME), 1);
    free(t);
}

static void test_contact_line(void **state)
{
    struct letter l = sample();
    char *t;

    l.contact = "Vragen? Bel de BelastingTelefoon: 0800-0543 (ma-do 8-20 uur, vr 8-17 uur).";
    t = render_text(*state, &l);
    assert_contains(t, "Vragen? Bel de BelastingTelefoon: 0800-0543");
    free(t);
    l.contact = NULL;
    t = render_text(*state, &l);
    assert_lacks(t, "Vragen?");
    free(t);
}

static void test_country_from_the_last_line(void **state)
{
    struct fixture *f = *state;
    static const struct { const char *last, *cc; } cases[] = {
        { "BELGIË", "BE" },     { "Belgie", "BE" },        { "belgië", "BE" },
        { "DUITSLAND", "DE" },  { "Deutschland", "DE" },   { "United Kingdom", "GB" },
        { "CURAÇAO", "CW" },    { "curaçao", "CW" },       { "ÖSTERREICH", "AT" },
        { "NEDERLAND", "NL" },  { "1234 AB Utrecht", "NL" }, { "JAPAN", "NL" }, /* unknown */
        { "  Frankrijk  ", "FR" },
    };
    struct letter l = sample();
    struct letter_facts facts;
    char addr[256];

    l.facts = &facts;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(addr, sizeof addr, "Rue de la Loi 16\n1000 Bruxelles\n%s", cases[i].last);
        l.postal_address = addr;
        memset(&facts, 0, sizeof facts);
        assert_int_equal(letter_render_pdf(&l, f->pdf, NULL, 0), 0);
        if (strcmp(facts.country, cases[i].cc) != 0)
            fail_msg("'%s': got %s, expected %s", cases[i].last, facts.country, cases[i].cc);
    }
}

int main(void)
{
    use_zone("Europe/Amsterdam"); /* what the daemon would set from the config */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dutch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_english, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_language_is_dutch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hidden_subject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_url_wraps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8_and_controls_are_cleaned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_zones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_must_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_in_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worst_case_stays_on_one_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_address_line_wraps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_is_printed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_country_from_the_last_line, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    cairo_debug_reset_static_data(); /* so valgrind sees only real leaks */
    return rc;
}
