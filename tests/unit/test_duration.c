#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "duration.h"

static void durations_in_every_unit(void **state)
{
    long s;
    (void)state;
    assert_int_equal(duration_parse("30s", &s), 0);
    assert_int_equal(s, 30);
    assert_int_equal(duration_parse("15m", &s), 0);
    assert_int_equal(s, 900);
    assert_int_equal(duration_parse("2h", &s), 0);
    assert_int_equal(s, 7200);
    assert_int_equal(duration_parse("3d", &s), 0);
    assert_int_equal(s, 3 * 86400);
    assert_int_equal(duration_parse("2w", &s), 0);
    assert_int_equal(s, 14 * 86400);
    assert_int_equal(duration_parse("0s", &s), 0);
    assert_int_equal(s, 0);
}

static void malformed_durations_are_refused(void **state)
{
    static const char *const bad[] = { "", "s", "3", "3x", "-3d", "3 d", " 3d", "3dd", "1.5h",
                                       "99999999999999999999d", "500d", "3D" };
    long s;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(duration_parse(bad[i], &s), -1);
    assert_int_equal(duration_parse(NULL, &s), -1);
}

static void clock_times(void **state)
{
    int m;
    (void)state;
    assert_int_equal(clock_parse("17:30", &m), 0);
    assert_int_equal(m, 17 * 60 + 30);
    assert_int_equal(clock_parse("00:00", &m), 0);
    assert_int_equal(m, 0);
    assert_int_equal(clock_parse("24:00", &m), -1);
    assert_int_equal(clock_parse("7:30", &m), -1);
    assert_int_equal(clock_parse("12:60", &m), -1);
    assert_int_equal(clock_parse("12-30", &m), -1);
}

static void clock_ranges(void **state)
{
    int a, b;
    (void)state;
    assert_int_equal(clock_range_parse("21:00-08:00", &a, &b), 0);
    assert_int_equal(a, 21 * 60);
    assert_int_equal(b, 8 * 60);
    assert_int_equal(clock_range_parse("08:00-08:00", &a, &b), -1);   /* empty */
    assert_int_equal(clock_range_parse("21:00 - 08:00", &a, &b), -1);
    assert_int_equal(clock_range_parse("21:00", &a, &b), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations_in_every_unit),
        cmocka_unit_test(malformed_durations_are_refused),
        cmocka_unit_test(clock_times),
        cmocka_unit_test(clock_ranges),
    };
    return cmocka_run_group_tests_name("duration", tests, NULL, NULL);
}
