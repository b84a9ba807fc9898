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
    };
    return cmocka_run_group_tests_name("policy", tests, setup, NULL);
}
