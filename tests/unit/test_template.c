#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "template.h"
#include "template_files.h"

static const struct template_vars vars = {
    .name = "Jan", .sender = "Belastingdienst", .subject = "Aanslag 2025",
    .link = "https://mijn.overheid.nl/b/1", .created = "23-11-2026",
};

static void placeholders_expand(void **state)
{
    (void)state;
    char *s = template_expand("{sender}: {subject} {unknown} {", &vars);
    assert_string_equal(s, "Belastingdienst: Aanslag 2025 {unknown} {");
    free(s);
}

static void email_carries_the_subject(void **state)
{
    char *subject, *body;
    (void)state;
    assert_int_equal(template_render(CHANNEL_EMAIL, "notice", "nl", &vars, &subject, &body), 0);
    assert_string_equal(subject, "Nieuw bericht van Belastingdienst: Aanslag 2025");
    assert_non_null(strstr(body, "Onderwerp: Aanslag 2025"));
    assert_non_null(strstr(body, "https://mijn.overheid.nl/b/1"));
    free(subject);
    free(body);
}

static void hidden_subject_leaves_no_trace(void **state)
{
    char *subject, *body;
    struct template_vars hidden = vars;
    (void)state;
    hidden.subject = NULL;
    assert_int_equal(template_render(CHANNEL_EMAIL, "reminder", "en", &hidden, &subject, &body), 0);
    assert_null(strstr(subject, "Aanslag"));
    assert_null(strstr(body, "Aanslag"));
    assert_null(strstr(body, "Subject:"));
    assert_non_null(strstr(body, "Dear Jan"));
    free(subject);
    free(body);
}

static void sms_never_carries_the_subject(void **state)
{
    char *body;
    (void)state;
    assert_int_equal(template_render(CHANNEL_SMS, "notice", "nl", &vars, NULL, &body), 0);
    assert_null(strstr(body, "Aanslag"));
    assert_non_null(strstr(body, "https://mijn.overheid.nl/b/1"));
    assert_true(strlen(body) <= 160);
    free(body);
}

static void unknown_language_falls_back_to_dutch(void **state)
{
    char *subject, *body;
    (void)state;
    assert_int_equal(template_render(CHANNEL_EMAIL, "notice", "fy", &vars, &subject, &body), 0);
    assert_non_null(strstr(body, "Beste Jan"));
    free(subject);
    free(body);
    assert_true(template_exists(NULL, CHANNEL_EMAIL, "final"));
    assert_false(template_exists(NULL, CHANNEL_EMAIL, "shout"));
}

/* a string of N copies of UNIT (UTF-8), malloc'd */
static char *repeat(const char *unit, size_t n)
{
    size_t len = strlen(unit);
    char *s = malloc(n * len + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, unit, len);
    s[n * len] = '\0';
    return s;
}

static size_t count_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void huge_subject_and_sender_are_cut_on_a_character(void **state)
{
    char *subject, *body;
    struct template_vars v = vars;
    char *big_subject = repeat("\xC3\xBA", 1024 * 1024 / 2);    /* 1 MB of 'ú' */
    char *big_sender = repeat("\xE2\x82\xAC", 105 * 1024 / 3);   /* 105 KB of '€' */
    (void)state;
    v.subject = big_subject;
    v.sender = big_sender;
    assert_int_equal(template_render(CHANNEL_EMAIL, "final", "nl", &v, &subject, &body), 0);
    /* "Laatste herinnering: bericht van " + sender + ": " + subject, each cut with "…" */
    assert_true(count_chars(subject) <= 40 + TEMPLATE_SENDER_MAX + TEMPLATE_SUBJECT_MAX);
    assert_true(strlen(body) < 4096);
    assert_non_null(strstr(subject, "\xE2\x82\xAC\xE2\x80\xA6: "));             /* "€…: " */
    assert_non_null(strstr(body, "Onderwerp: \xC3\xBA"));
    assert_non_null(strstr(body, "\xC3\xBA\xE2\x80\xA6\n"));                     /* "ú…" */
    assert_non_null(strstr(body, "https://mijn.overheid.nl/b/1"));
    free(subject);
    free(body);
    assert_int_equal(template_render(CHANNEL_SMS, "notice", "nl", &v, NULL, &body), 0);
    assert_true(count_chars(body) <= 120 + TEMPLATE_SMS_SENDER_MAX);
    assert_non_null(strstr(body, "https://mijn.overheid.nl/b/1"));
    free(body);
    free(big_subject);
    free(big_sender);
}

static void short_values_are_not_cut(void **state)
{
    char *subject, *body;
    struct template_vars v = vars;
    char *exact = repeat("a", TEMPLATE_SUBJECT_MAX), *over = repeat("a", TEMPLATE_SUBJECT_MAX + 1);
    char want[TEMPLATE_SUBJECT_MAX + 8];
    (void)state;
    v.subject = exact;
    assert_int_equal(template_render(CHANNEL_EMAIL, "notice", "nl", &v, &subject, &body), 0);
    assert_null(strstr(subject, "\xE2\x80\xA6"));
    assert_non_null(strstr(subject, exact));
    free(subject);
    free(body);
    v.subject = over;
    assert_int_equal(template_render(CHANNEL_EMAIL, "notice", "nl", &v, &subject, &body), 0);
    snprintf(want, sizeof(want), ": %.*s\xE2\x80\xA6", TEMPLATE_SUBJECT_MAX - 1, over);
    assert_non_null(strstr(subject, want));
    free(subject);
    free(body);
    free(exact);
    free(over);
}

static void optional_segments(void **state)
{
    struct template_vars v = vars;
    char *s;
    (void)state;
    s = template_expand("a[ op {created}] b [{link}|geen link] [{nope}|x]", &v);
    assert_string_equal(s, "a op 23-11-2026 b https://mijn.overheid.nl/b/1 {nope}");
    free(s);
    v.created = "";
    v.link = NULL;
    s = template_expand("a[ op {created}] b [{link}|geen link] [", &v);
    assert_string_equal(s, "a b geen link [");
    free(s);
}

static void no_date_no_garbage(void **state)
{
    char out[32], *subject, *body;
    struct template_vars v = vars;
    (void)state;
    assert_int_equal(template_date(-1.0 / 0.0, out, sizeof(out)), -1);        /* -infinity */
    assert_string_equal(out, "");
    assert_int_equal(template_date(1.0 / 0.0, out, sizeof(out)), -1);
    assert_int_equal(template_date(0.0 / 0.0, out, sizeof(out)), -1);
    assert_int_equal(template_date(-6.9e15, out, sizeof(out)), -1);           /* 219246529 BC */
    assert_int_equal(template_date(0, out, sizeof(out)), -1);                 /* 1970: unset */
    assert_int_equal(template_date(9e12, out, sizeof(out)), -1);
    assert_int_equal(template_date(1795435200.0, out, sizeof(out)), 0);       /* 23-11-2026 */
    assert_string_equal(out, "23-11-2026");
    v.created = "";
    assert_int_equal(template_render(CHANNEL_EMAIL, "notice", "nl", &v, &subject, &body), 0);
    assert_non_null(strstr(body, "Belastingdienst heeft u een bericht gestuurd in uw Berichtenbox"));
    assert_null(strstr(body, " op "));
    free(subject);
    free(body);
    assert_int_equal(template_render(CHANNEL_EMAIL, "final", "en", &v, &subject, &body), 0);
    assert_non_null(strstr(body, "The message Belastingdienst sent you is still unread."));
    free(subject);
    free(body);
}

static void without_a_link_it_says_log_in(void **state)
{
    char *subject, *body;
    struct template_vars v = vars;
    (void)state;
    v.link = NULL;
    assert_int_equal(template_render(CHANNEL_SMS, "notice", "nl", &v, NULL, &body), 0);
    assert_string_equal(body, "MijnOverheid: u heeft een nieuw bericht van Belastingdienst. "
                              "Log in op MijnOverheid om het te lezen.");
    free(body);
    assert_int_equal(template_render(CHANNEL_SMS, "reminder", "en", &v, NULL, &body), 0);
    assert_string_equal(body, "MijnOverheid: you have an unread message from Belastingdienst. "
                              "Log in at MijnOverheid to read it.");
    free(body);
    assert_int_equal(template_render(CHANNEL_EMAIL, "notice", "nl", &v, &subject, &body), 0);
    assert_non_null(strstr(body, "\nLog in op MijnOverheid om het bericht te lezen.\n"));
    assert_null(strstr(body, "http"));
    assert_null(strstr(body, "Lees het bericht hier"));
    free(subject);
    free(body);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A stored configuration carries its templates: loaded from the stored text (a frozen policy)
 * it has the same hash and the same wording, without reading the directory. */
static void stored_configuration_keeps_its_wording(void **state)
{
    char dir[] = "/tmp/herinnerd-templates-XXXXXX", path[512], tdir[128], err[512];
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(tdir, sizeof(tdir), "%s/t", dir);
    assert_int_equal(mkdir(tdir, 0700), 0);
    snprintf(path, sizeof(path), "%s/notice.email.nl", tdir);
    write_file(path, "Subject: Hallo {name}\n\nBeste {name},\r\nwelkom.\n\n\n");
    snprintf(path, sizeof(path), "%s/h.conf", dir);
    write_file(path, "templates = \"t\";\ndatabase: { conninfo = \"dbname=x\"; };\n"
                     "policies = ( { name = \"d\"; steps = ( { channel = \"null\"; after = \"0s\"; } ); } );\n");
    struct config *cfg = config_load(path, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    const struct template_file *f = templates_find(cfg->templates, CHANNEL_EMAIL, "notice", "nl");
    assert_non_null(f);
    assert_string_equal(f->subject, "Hallo {name}");
    assert_string_equal(f->body, "Beste {name},\nwelkom.\n");

    snprintf(path, sizeof(path), "%s/notice.email.nl", tdir);
    unlink(path);               /* gone from disk: the stored text still has it */
    rmdir(tdir);
    struct config *stored = config_load_text("stored", cfg->text, strlen(cfg->text), err, sizeof(err));
    if (stored == NULL)
        fail_msg("%s", err);
    assert_string_equal(stored->sha256, cfg->sha256);
    f = templates_find(stored->templates, CHANNEL_EMAIL, "notice", "nl");
    assert_non_null(f);
    assert_string_equal(f->body, "Beste {name},\nwelkom.\n");
    char *subject, *body;
    assert_int_equal(template_render_with(stored->templates, CHANNEL_EMAIL, "notice", "nl", &vars,
                                          &subject, &body), 0);
    assert_string_equal(subject, "Hallo Jan");
    assert_string_equal(body, "Beste Jan,\nwelkom.\n");
    free(subject);
    free(body);
    config_free(stored);
    config_free(cfg);
    snprintf(path, sizeof(path), "%s/h.conf", dir);
    unlink(path);
    rmdir(dir);
}

/* The letter's built-in wording: hidden subject and missing link read well in both languages. */
static void letter_texts(void **state)
{
    struct template_vars v = vars;
    char *subject, *body;
    (void)state;

    assert_int_equal(template_render(CHANNEL_PAPER, "final", "nl", &v, &subject, &body), 0);
    assert_string_equal(subject, "Aanslag 2025");
    assert_non_null(strstr(body, "staat sinds 23-11-2026 een bericht van Belastingdienst over "
                                 "\u2018Aanslag 2025\u2019 dat u nog niet hebt gelezen."));
    assert_non_null(strstr(body, "lezen op:\nhttps://mijn.overheid.nl/b/1\nU logt in"));
    free(subject);
    free(body);
    v.subject = NULL;
    v.link = NULL;
    assert_int_equal(template_render(CHANNEL_PAPER, "notice", "en", &v, &subject, &body), 0);
    assert_string_equal(subject, "Unread message in your Berichtenbox");
    assert_non_null(strstr(body, "There is an important message from Belastingdienst in your"));
    assert_non_null(strstr(body, "read the message at mijn.overheid.nl."));
    assert_null(strstr(body, "{"));
    free(subject);
    free(body);
}

/* A bundle: the built-in wording names every message and the count, in both languages and on
 * every channel; past the bound the rest are counted. */
static void bundled_notice_names_them_all(void **state)
{
    struct template_item items[12] = {
        { "Belastingdienst", "Aanslag 2025" }, { "Gemeente Utrecht", "Parkeervergunning" },
        { "Waterschap\nAa", NULL },
    };
    struct template_vars v = vars;
    char *subject, *body, *list;
    (void)state;

    list = template_message_list(items, 3, "nl");
    assert_string_equal(list, "- Belastingdienst: Aanslag 2025\n- Gemeente Utrecht: "
                              "Parkeervergunning\n- Waterschap Aa");
    v.count = "3";
    v.messages = list;
    v.link = NULL;
    const char *langs[] = { "nl", "en" };
    const char *names[] = { "notice", "reminder", "final" };
    for (int l = 0; l < 2; l++)
        for (int n = 0; n < 3; n++) {
            assert_int_equal(template_render(CHANNEL_EMAIL, names[n], langs[l], &v, &subject,
                                             &body), 0);
            assert_non_null(strstr(subject, "3 "));
            assert_non_null(strstr(body, "- Belastingdienst: Aanslag 2025\n- Gemeente Utrecht: "
                                         "Parkeervergunning\n- Waterschap Aa\n"));
            assert_non_null(strstr(body, "3 "));
            free(subject);
            free(body);
            assert_int_equal(template_render(CHANNEL_PAPER, names[n], langs[l], &v, &subject,
                                             &body), 0);
            assert_non_null(strstr(subject, "3 "));
            assert_non_null(strstr(body, "- Gemeente Utrecht: Parkeervergunning\n"));
            assert_null(strstr(body, "{"));
            free(subject);
            free(body);
            assert_int_equal(template_render(CHANNEL_SMS, names[n], langs[l], &v, NULL, &body), 0);
            assert_non_null(strstr(body, " 3 "));
            assert_true(strlen(body) <= 160);
            free(body);
        }
    /* one message: the wording of one */
    v.count = "1";
    assert_int_equal(template_render(CHANNEL_EMAIL, "notice", "nl", &v, &subject, &body), 0);
    assert_string_equal(subject, "Nieuw bericht van Belastingdienst: Aanslag 2025");
    free(subject);
    free(body);
    free(list);

    for (int i = 3; i < 12; i++)
        items[i] = items[0];
    list = template_message_list(items, 12, "nl");
    assert_non_null(strstr(list, "\n- en 2 andere berichten"));
    assert_null(strstr(strstr(list, "andere"), "\n"));
    free(list);
    list = template_message_list(items, 12, "en");
    assert_non_null(strstr(list, "\n- and 2 more messages"));
    free(list);
}

/* {count} and {messages} are known placeholders in a templates file; a misspelt one is a
 * FILE:LINE error. */
static void bundle_placeholders_in_files(void **state)
{
    struct templates *t = NULL;
    char err[512];
    (void)state;

    const char *good = "#@template notice.email.nl\n#|Subject: {count} berichten\n#|\n"
                       "#|Beste {name},\n#|{messages}\n#@end\n";
    assert_int_equal(templates_from_text("stored", good, &t, err, sizeof(err)), 0);
    struct template_vars v = vars;
    v.count = "2";
    v.messages = "- A\n- B";
    char *subject, *body;
    assert_int_equal(template_render_with(t, CHANNEL_EMAIL, "notice", "nl", &v, &subject, &body), 0);
    assert_string_equal(subject, "2 berichten");
    assert_string_equal(body, "Beste Jan,\n- A\n- B\n");
    free(subject);
    free(body);
    templates_free(t);
    /* an admin's file that speaks of one message is not used for several: the built-in
     * wording that names them all is; a custom template of its own is used all the same */
    const char *one = "#@template notice.email.nl\n#|Subject: Bericht van {sender}\n#|\n"
                      "#|Beste {name}, u heeft een bericht van {sender}.\n#@end\n"
                      "#@template payment.email.nl\n#|Subject: Betalen\n#|\n"
                      "#|Beste {name}, betaal.\n#@end\n";
    assert_int_equal(templates_from_text("stored", one, &t, err, sizeof(err)), 0);
    assert_int_equal(template_render_with(t, CHANNEL_EMAIL, "notice", "nl", &v, &subject, &body), 0);
    assert_string_equal(subject, "2 nieuwe berichten in uw Berichtenbox");
    assert_non_null(strstr(body, "- A\n- B\n"));
    free(subject);
    free(body);
    assert_int_equal(template_render_with(t, CHANNEL_EMAIL, "payment", "nl", &v, &subject, &body), 0);
    assert_string_equal(subject, "Betalen");
    free(subject);
    free(body);
    v.count = "1";
    assert_int_equal(template_render_with(t, CHANNEL_EMAIL, "notice", "nl", &v, &subject, &body), 0);
    assert_string_equal(subject, "Bericht van Belastingdienst");
    free(subject);
    free(body);
    templates_free(t);
    const char *bad = "#@template notice.email.nl\n#|Subject: {count} berichten\n#|\n"
                      "#|Beste {name},\n#|{mesages}\n#@end\n";
    assert_int_equal(templates_from_text("stored", bad, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "(template notice.email.nl):4: unknown placeholder {mesages}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(placeholders_expand),
        cmocka_unit_test(email_carries_the_subject),
        cmocka_unit_test(hidden_subject_leaves_no_trace),
        cmocka_unit_test(sms_never_carries_the_subject),
        cmocka_unit_test(unknown_language_falls_back_to_dutch),
        cmocka_unit_test(huge_subject_and_sender_are_cut_on_a_character),
        cmocka_unit_test(short_values_are_not_cut),
        cmocka_unit_test(optional_segments),
        cmocka_unit_test(no_date_no_garbage),
        cmocka_unit_test(without_a_link_it_says_log_in),
        cmocka_unit_test(stored_configuration_keeps_its_wording),
        cmocka_unit_test(letter_texts),
        cmocka_unit_test(bundled_notice_names_them_all),
        cmocka_unit_test(bundle_placeholders_in_files),
    };
    return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
