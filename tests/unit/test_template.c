#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "template.h"

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
    assert_true(template_exists("final"));
    assert_false(template_exists("shout"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(placeholders_expand),
        cmocka_unit_test(email_carries_the_subject),
        cmocka_unit_test(hidden_subject_leaves_no_trace),
        cmocka_unit_test(sms_never_carries_the_subject),
        cmocka_unit_test(unknown_language_falls_back_to_dutch),
    };
    return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
