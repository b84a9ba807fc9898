/* Step planning: offsets, quiet hours (DST-correct), business days, retries, advancing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

/* Local time in Europe/Amsterdam -> epoch. */
static double at(int y, int mo, int d, int h, int mi)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                     .tm_min = mi, .tm_isdst = -1 };
    return (double)mktime(&tm);
}

static void local(double t, struct tm *tm)
{
    time_t s = (time_t)t;
    localtime_r(&s, tm);
}

static int setup(void **state)
{
    (void)state;
    setenv("TZ", "Europe/Amsterdam", 1);
    tzset();
    return 0;
}

static struct step plain(long offset)
{
    struct step s = { .channel = CHANNEL_EMAIL, .offset = offset, .retry_max = 2, .retry_backoff = 600 };
    return s;
}

static void after_counts_from_arrival(void **state)
{
    (void)state;
    struct step s = plain(3 * 86400);
    double created = at(2026, 11, 2, 10, 0);
    assert_true(policy_step_time(&s, created, NO_TIME, created) == created + 3 * 86400);
}

static void overdue_steps_are_due_now(void **state)
{
    (void)state;
    struct step s = plain(60);
    double created = at(2026, 11, 2, 10, 0), now = created + 3600;
    assert_true(policy_step_time(&s, created, NO_TIME, now) == now);
}

static void before_due_counts_back_from_the_due_date(void **state)
{
    (void)state;
    struct step s = plain(10 * 86400);
    s.from_due = 1;
    double created = at(2026, 11, 2, 10, 0), due = at(2026, 12, 31, 12, 0);
    assert_true(policy_step_time(&s, created, due, created) == due - 10 * 86400);
    /* no due date: cannot be planned, the engine records a skip */
    assert_true(policy_step_time(&s, created, NO_TIME, created) == NO_TIME);
}

static void quiet_hours_defer_to_their_end(void **state)
{
    (void)state;
    struct step s = plain(0);
    struct tm tm;
    s.quiet_start = 21 * 60;
    s.quiet_end = 8 * 60;
    /* 23:30 -> 08:00 the next morning */
    local(policy_calendar_adjust(&s, at(2026, 11, 3, 23, 30)), &tm);
    assert_int_equal(tm.tm_mday, 4);
    assert_int_equal(tm.tm_hour, 8);
    assert_int_equal(tm.tm_min, 0);
    /* 06:00 -> 08:00 the same day */
    local(policy_calendar_adjust(&s, at(2026, 11, 4, 6, 0)), &tm);
    assert_int_equal(tm.tm_mday, 4);
    assert_int_equal(tm.tm_hour, 8);
    /* outside quiet hours: unchanged */
    assert_true(policy_calendar_adjust(&s, at(2026, 11, 4, 12, 0)) == at(2026, 11, 4, 12, 0));
    /* the end itself is allowed */
    assert_true(policy_calendar_adjust(&s, at(2026, 11, 4, 8, 0)) == at(2026, 11, 4, 8, 0));
}

static void quiet_hours_end_at_local_time_across_dst(void **state)
{
    (void)state;
    struct step s = plain(0);
    struct tm tm;
    s.quiet_start = 21 * 60;
    s.quiet_end = 8 * 60;
    /* the night summer time ends (25 Oct 2026 03:00 CEST -> 02:00 CET): still 08:00 local */
    double t = policy_calendar_adjust(&s, at(2026, 10, 24, 22, 0));
    local(t, &tm);
    assert_int_equal(tm.tm_mday, 25);
    assert_int_equal(tm.tm_hour, 8);
    assert_int_equal(tm.tm_min, 0);
    assert_int_equal(tm.tm_isdst, 0);
    /* 10 hours of wall clock, but 11 hours of real time */
    assert_true(t - at(2026, 10, 24, 22, 0) == 11 * 3600);
    /* and the night it starts (29 Mar 2026 02:00 CET -> 03:00 CEST) */
    t = policy_calendar_adjust(&s, at(2026, 3, 28, 22, 0));
    local(t, &tm);
    assert_int_equal(tm.tm_hour, 8);
    assert_int_equal(tm.tm_isdst, 1);
    assert_true(t - at(2026, 3, 28, 22, 0) == 9 * 3600);
}

static void daytime_quiet_hours(void **state)
{
    (void)state;
    struct step s = plain(0);
    struct tm tm;
    s.quiet_start = 12 * 60;
    s.quiet_end = 13 * 60;
    local(policy_calendar_adjust(&s, at(2026, 11, 4, 12, 15)), &tm);
    assert_int_equal(tm.tm_hour, 13);
    assert_int_equal(tm.tm_min, 0);
}

static void business_days_skip_the_weekend(void **state)
{
    (void)state;
    struct step s = plain(0);
    struct tm tm;
    s.business_days = 1;
    /* Saturday 7 Nov 2026 10:00 -> Monday 9 Nov 10:00 */
    local(policy_calendar_adjust(&s, at(2026, 11, 7, 10, 0)), &tm);
    assert_int_equal(tm.tm_wday, 1);
    assert_int_equal(tm.tm_mday, 9);
    assert_int_equal(tm.tm_hour, 10);
    /* Friday evening in quiet hours -> Saturday 08:00 -> Monday 08:00 */
    s.quiet_start = 21 * 60;
    s.quiet_end = 8 * 60;
    local(policy_calendar_adjust(&s, at(2026, 11, 6, 22, 0)), &tm);
    assert_int_equal(tm.tm_wday, 1);
    assert_int_equal(tm.tm_hour, 8);
}

static void retries_back_off_doubling_with_a_cap(void **state)
{
    (void)state;
    struct step s = plain(0);
    double now = at(2026, 11, 4, 12, 0);
    assert_true(policy_retry_time(&s, 1, now) == now + 600);
    assert_true(policy_retry_time(&s, 2, now) == now + 1200);
    assert_true(policy_retry_time(&s, 3, now) == now + 2400);
    assert_true(policy_retry_time(&s, 50, now) == now + 600 * 32);
}

static void advance(void **state)
{
    (void)state;
    struct step steps[3] = { plain(0), plain(3 * 86400), plain(7 * 86400) };
    struct policy po = { .name = "default", .steps = steps, .nsteps = 3 };
    double created = at(2026, 11, 2, 10, 0), now = created + 5;
    struct progress cur = { 0, 0, created, STATE_ACTIVE }, next;

    /* sent: on to step 1 at its planned time */
    policy_advance(&po, &cur, OUTCOME_SENT, created, NO_TIME, now, &next);
    assert_int_equal(next.step, 1);
    assert_int_equal(next.tries, 0);
    assert_int_equal(next.state, STATE_ACTIVE);
    assert_true(next.next_at == created + 3 * 86400);

    /* temporary failure within the budget: same step, backoff */
    policy_advance(&po, &cur, OUTCOME_TEMPORARY_FAILURE, created, NO_TIME, now, &next);
    assert_int_equal(next.step, 0);
    assert_int_equal(next.tries, 1);
    assert_true(next.next_at == now + 600);

    /* in-doubt (no answer to a send that may have arrived): retried like a temporary failure */
    policy_advance(&po, &cur, OUTCOME_IN_DOUBT, created, NO_TIME, now, &next);
    assert_int_equal(next.step, 0);
    assert_int_equal(next.tries, 1);
    assert_true(next.next_at == now + 600);

    /* budget spent (2 retries = 3 tries): next step */
    cur.tries = 2;
    policy_advance(&po, &cur, OUTCOME_TEMPORARY_FAILURE, created, NO_TIME, now, &next);
    assert_int_equal(next.step, 1);
    assert_int_equal(next.tries, 0);

    /* permanent failure and skips: next step at once (its planned time, not before now) */
    cur.tries = 0;
    policy_advance(&po, &cur, OUTCOME_PERMANENT_FAILURE, created, NO_TIME, created + 4 * 86400, &next);
    assert_int_equal(next.step, 1);
    assert_true(next.next_at == created + 4 * 86400);

    /* the last step: done after a success, failed otherwise */
    cur.step = 2;
    policy_advance(&po, &cur, OUTCOME_SENT, created, NO_TIME, now, &next);
    assert_int_equal(next.state, STATE_DONE);
    assert_true(next.next_at == NO_TIME);
    policy_advance(&po, &cur, OUTCOME_SKIPPED, created, NO_TIME, now, &next);
    assert_int_equal(next.state, STATE_FAILED);
}

static void catching_up_keeps_the_gaps(void **state)
{
    (void)state;
    struct step steps[2] = { plain(0), plain(3 * 86400) };
    struct policy po = { .name = "default", .steps = steps, .nsteps = 2 };
    double created = at(2026, 11, 2, 10, 0), now = created + 10 * 86400;
    struct progress cur = { 0, 0, created, STATE_ACTIVE }, next;

    /* the first e-mail went out 10 days late: the reminder still waits its 3 days */
    policy_advance(&po, &cur, OUTCOME_SENT, created, NO_TIME, now, &next);
    assert_true(next.next_at == now + 3 * 86400);
}

/* e-mail, SMS, then a letter before the due date: when the due date is near, the letter's own
 * time has passed before the SMS went, and it follows the SMS at once, never ahead of it */
static void a_due_bound_step_never_runs_before_the_step_ahead(void **state)
{
    (void)state;
    struct step steps[3] = { plain(0), plain(7 * 86400), plain(10 * 86400) };
    struct policy po = { .name = "mixed", .steps = steps, .nsteps = 3 };
    double created = at(2026, 11, 2, 10, 0), due = created + 14 * 86400, now;
    struct progress cur = { 0, 0, created, STATE_ACTIVE }, next;

    steps[2].from_due = 1;
    /* the e-mail went: the SMS waits its 7 days, though the letter's time (day 4) comes first */
    policy_advance(&po, &cur, OUTCOME_SENT, created, due, created + 5, &next);
    assert_int_equal(next.step, 1);
    assert_true(next.next_at == created + 7 * 86400);
    /* the SMS went on day 7: the letter (planned for day 4) goes now, after it */
    cur.step = 1, now = created + 7 * 86400 + 5;
    policy_advance(&po, &cur, OUTCOME_SENT, created, due, now, &next);
    assert_int_equal(next.step, 2);
    assert_true(next.next_at == now);
    /* with a far due date the letter keeps its own time */
    policy_advance(&po, &cur, OUTCOME_SENT, created, created + 60 * 86400, now, &next);
    assert_true(next.next_at == created + 50 * 86400);
}

/* The official Dutch public holidays 2025-2030, written out by hand (rijksoverheid.nl), plus
 * Goede Vrijdag and every Bevrijdingsdag, which only count with their options. */
static const struct { int y, m, d; const char *name; } official[] = {
    { 2025, 1, 1, "Nieuwjaarsdag" },  { 2025, 4, 20, "Eerste Paasdag" },
    { 2025, 4, 21, "Tweede Paasdag" }, { 2025, 4, 26, "Koningsdag" }, /* the 27th is a Sunday */
    { 2025, 5, 5, "Bevrijdingsdag" }, { 2025, 5, 29, "Hemelvaartsdag" },
    { 2025, 6, 8, "Eerste Pinksterdag" }, { 2025, 6, 9, "Tweede Pinksterdag" },
    { 2025, 12, 25, "Eerste Kerstdag" }, { 2025, 12, 26, "Tweede Kerstdag" },
    { 2026, 1, 1, "Nieuwjaarsdag" },  { 2026, 4, 5, "Eerste Paasdag" },
    { 2026, 4, 6, "Tweede Paasdag" },  { 2026, 4, 27, "Koningsdag" },
    { 2026, 5, 14, "Hemelvaartsdag" }, { 2026, 5, 24, "Eerste Pinksterdag" },
    { 2026, 5, 25, "Tweede Pinksterdag" }, { 2026, 12, 25, "Eerste Kerstdag" },
    { 2026, 12, 26, "Tweede Kerstdag" },
    { 2027, 1, 1, "Nieuwjaarsdag" },  { 2027, 3, 28, "Eerste Paasdag" },
    { 2027, 3, 29, "Tweede Paasdag" }, { 2027, 4, 27, "Koningsdag" },
    { 2027, 5, 6, "Hemelvaartsdag" },  { 2027, 5, 16, "Eerste Pinksterdag" },
    { 2027, 5, 17, "Tweede Pinksterdag" }, { 2027, 12, 25, "Eerste Kerstdag" },
    { 2027, 12, 26, "Tweede Kerstdag" },
    { 2028, 1, 1, "Nieuwjaarsdag" },  { 2028, 4, 16, "Eerste Paasdag" },
    { 2028, 4, 17, "Tweede Paasdag" }, { 2028, 4, 27, "Koningsdag" },
    { 2028, 5, 25, "Hemelvaartsdag" }, { 2028, 6, 4, "Eerste Pinksterdag" },
    { 2028, 6, 5, "Tweede Pinksterdag" }, { 2028, 12, 25, "Eerste Kerstdag" },
    { 2028, 12, 26, "Tweede Kerstdag" },
    { 2029, 1, 1, "Nieuwjaarsdag" },  { 2029, 4, 1, "Eerste Paasdag" },
    { 2029, 4, 2, "Tweede Paasdag" },  { 2029, 4, 27, "Koningsdag" },
    { 2029, 5, 10, "Hemelvaartsdag" }, { 2029, 5, 20, "Eerste Pinksterdag" },
    { 2029, 5, 21, "Tweede Pinksterdag" }, { 2029, 12, 25, "Eerste Kerstdag" },
    { 2029, 12, 26, "Tweede Kerstdag" },
    { 2030, 1, 1, "Nieuwjaarsdag" },  { 2030, 4, 21, "Eerste Paasdag" },
    { 2030, 4, 22, "Tweede Paasdag" }, { 2030, 4, 27, "Koningsdag" },
    { 2030, 5, 5, "Bevrijdingsdag" }, { 2030, 5, 30, "Hemelvaartsdag" },
    { 2030, 6, 9, "Eerste Pinksterdag" }, { 2030, 6, 10, "Tweede Pinksterdag" },
    { 2030, 12, 25, "Eerste Kerstdag" }, { 2030, 12, 26, "Tweede Kerstdag" },
};
static const struct { int y, m, d; } good_fridays[] = {
    { 2025, 4, 18 }, { 2026, 4, 3 }, { 2027, 3, 26 }, { 2028, 4, 14 }, { 2029, 3, 30 }, { 2030, 4, 19 },
};

static int official_on(int y, int m, int d)
{
    for (size_t i = 0; i < sizeof official / sizeof *official; i++)
        if (official[i].y == y && official[i].m == m && official[i].d == d)
            return (int)i;
    return -1;
}

static void dutch_holidays_2025_to_2030(void **state)
{
    (void)state;
    /* every day of the six years: exactly the official list, with the official names */
    for (int y = 2025; y <= 2030; y++)
        for (int m = 1; m <= 12; m++)
            for (int d = 1; d <= 31; d++) {
                struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12,
                                 .tm_isdst = -1 };
                mktime(&tm);
                if (tm.tm_mday != d)
                    continue; /* 31 April and the like */
                const char *got = policy_holiday(NULL, y, m, d);
                int i = official_on(y, m, d);
                if (i < 0 && got)
                    fail_msg("%04d-%02d-%02d is no public holiday, got %s", y, m, d, got);
                if (i >= 0 && (!got || strcmp(got, official[i].name) != 0))
                    fail_msg("%04d-%02d-%02d is %s, got %s", y, m, d, official[i].name,
                             got ? got : "an ordinary day");
            }
}

static void holiday_options_and_extra_dates(void **state)
{
    (void)state;
    int extra[] = { 20271231, 20280102 };
    struct holiday_config h = { .good_friday = 1, .liberation_every_year = 1, .extra = extra,
                                .nextra = 2 };

    for (size_t i = 0; i < sizeof good_fridays / sizeof *good_fridays; i++) {
        assert_null(policy_holiday(NULL, good_fridays[i].y, good_fridays[i].m, good_fridays[i].d));
        assert_string_equal(policy_holiday(&h, good_fridays[i].y, good_fridays[i].m,
                                           good_fridays[i].d), "Goede Vrijdag");
    }
    for (int y = 2025; y <= 2030; y++) {
        assert_true((policy_holiday(NULL, y, 5, 5) != NULL) == (y % 5 == 0));
        assert_string_equal(policy_holiday(&h, y, 5, 5), "Bevrijdingsdag");
    }
    assert_string_equal(policy_holiday(&h, 2027, 12, 31), "holiday (config)");
    assert_string_equal(policy_holiday(&h, 2028, 1, 2), "holiday (config)");
    assert_null(policy_holiday(&h, 2027, 12, 30));
    /* Koningsdag's Sunday rule beyond the table, and Koninginnedag before 2014 */
    assert_string_equal(policy_holiday(NULL, 2031, 4, 26), "Koningsdag");
    assert_null(policy_holiday(NULL, 2031, 4, 27));
    assert_string_equal(policy_holiday(NULL, 2013, 4, 30), "Koninginnedag");
    assert_string_equal(policy_holiday(NULL, 2006, 4, 29), "Koninginnedag"); /* 30th a Sunday */
}

static void easter_dates(void **state)
{
    (void)state;
    static const int known[][3] = { { 1818, 3, 22 }, { 1943, 4, 25 }, { 2000, 4, 23 },
                                    { 2024, 3, 31 }, { 2038, 4, 25 }, { 2285, 3, 22 } };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        int m, d;
        policy_easter(known[i][0], &m, &d);
        assert_int_equal(m, known[i][1]);
        assert_int_equal(d, known[i][2]);
    }
}

static void business_days_skip_holidays(void **state)
{
    (void)state;
    struct step s = plain(0);
    struct tm tm;
    int extra[] = { 20271231 };
    struct holiday_config h = { .good_friday = 1, .extra = extra, .nextra = 1 };

    s.business_days = 1;
    /* Koningsdag 2027 is a Tuesday: the letter goes on Wednesday, same time of day */
    local(policy_calendar_adjust(&s, at(2027, 4, 27, 9, 30)), &tm);
    assert_int_equal(tm.tm_mon + 1, 4);
    assert_int_equal(tm.tm_mday, 28);
    assert_int_equal(tm.tm_hour, 9);
    assert_int_equal(tm.tm_min, 30);
    /* Christmas 2026 is Friday, Boxing Day Saturday, then Sunday: Monday the 28th */
    local(policy_calendar_adjust(&s, at(2026, 12, 25, 10, 0)), &tm);
    assert_int_equal(tm.tm_mday, 28);
    /* Easter 2027 with Goede Vrijdag: Friday 26 March -> Tuesday 30 March */
    s.holidays = &h;
    local(policy_calendar_adjust(&s, at(2027, 3, 26, 10, 0)), &tm);
    assert_int_equal(tm.tm_mon + 1, 3);
    assert_int_equal(tm.tm_mday, 30);
    /* an extra date from the config, then New Year and the weekend: Friday 31 Dec 2027 ->
     * Monday 3 January 2028 */
    local(policy_calendar_adjust(&s, at(2027, 12, 31, 10, 0)), &tm);
    assert_int_equal(tm.tm_year + 1900, 2028);
    assert_int_equal(tm.tm_mday, 3);
    /* an ordinary weekday stays as it is */
    assert_true(policy_calendar_adjust(&s, at(2027, 4, 26, 9, 30)) == at(2027, 4, 26, 9, 30));
    /* without business_days, holidays do not matter */
    s.business_days = 0;
    assert_true(policy_calendar_adjust(&s, at(2027, 4, 27, 9, 30)) == at(2027, 4, 27, 9, 30));
}

static void deferral_says_why(void **state)
{
    (void)state;
    struct step s = plain(3 * 86400);
    int extra[] = { 20271231 };
    struct holiday_config h = { .extra = extra, .nextra = 1 };
    char why[256];

    s.business_days = 1;
    s.holidays = &h;
    /* Saturday 24 April 2027 + 3 days = Koningsdag */
    assert_true(policy_deferral(&s, at(2027, 4, 24, 9, 30), NO_TIME, why, sizeof why) > 0);
    assert_string_equal(why, "deferred from Tue 27 Apr 09:30 (Tue 27 Apr Koningsdag)");
    policy_deferral(&s, at(2027, 12, 28, 10, 0), NO_TIME, why, sizeof why);
    assert_string_equal(why, "deferred from Fri 31 Dec 10:00 (Fri 31 Dec holiday (config), "
                             "Sat 01 Jan Nieuwjaarsdag, Sun 02 Jan weekend)");
    /* on time: nothing to say */
    assert_int_equal(policy_deferral(&s, at(2027, 4, 19, 9, 30), NO_TIME, why, sizeof why), 0);
    assert_string_equal(why, "");
    /* quiet hours */
    s.business_days = 0;
    s.quiet_start = 21 * 60, s.quiet_end = 8 * 60;
    policy_deferral(&s, at(2027, 4, 19, 22, 0), NO_TIME, why, sizeof why);
    assert_string_equal(why, "deferred from Thu 22 Apr 22:00 (quiet hours)");
    /* a before_due step without a due date cannot be planned; a small buffer is cut, not overrun */
    s.from_due = 1;
    assert_int_equal(policy_deferral(&s, at(2027, 4, 19, 22, 0), NO_TIME, why, sizeof why), 0);
    s.from_due = 0;
    assert_int_equal(policy_deferral(&s, at(2027, 4, 19, 22, 0), NO_TIME, why, 10), 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(after_counts_from_arrival),
        cmocka_unit_test(overdue_steps_are_due_now),
        cmocka_unit_test(before_due_counts_back_from_the_due_date),
        cmocka_unit_test(quiet_hours_defer_to_their_end),
        cmocka_unit_test(quiet_hours_end_at_local_time_across_dst),
        cmocka_unit_test(daytime_quiet_hours),
        cmocka_unit_test(business_days_skip_the_weekend),
        cmocka_unit_test(retries_back_off_doubling_with_a_cap),
        cmocka_unit_test(advance),
        cmocka_unit_test(catching_up_keeps_the_gaps),
        cmocka_unit_test(a_due_bound_step_never_runs_before_the_step_ahead),
        cmocka_unit_test(dutch_holidays_2025_to_2030),
        cmocka_unit_test(holiday_options_and_extra_dates),
        cmocka_unit_test(easter_dates),
        cmocka_unit_test(business_days_skip_holidays),
        cmocka_unit_test(deferral_says_why),
    };
    return cmocka_run_group_tests_name("policy", tests, setup, NULL);
}
