/* log.c's rate limit: a flood of one kind of line becomes a burst and a count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../daemon/log.c"

static FILE *capture;
static int saved_stderr = -1;

static int setup(void **state)
{
    (void)state;
    memset(limits, 0, sizeof(limits));
    fflush(stderr);
    capture = tmpfile();
    if (capture == NULL || (saved_stderr = dup(STDERR_FILENO)) == -1 ||
        dup2(fileno(capture), STDERR_FILENO) == -1)
        return -1;
    log_init("test", 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    fclose(capture);
    return 0;
}

static int count_lines(const char *needle)
{
    char line[4096];
    int n = 0;

    fflush(stderr);
    rewind(capture);
    while (fgets(line, sizeof(line), capture))
        if (strstr(line, needle))
            n++;
    return n;
}

static void flood_becomes_burst_and_count(void **state)
{
    (void)state;
    for (int i = 0; i < 100000; i++)
        log_warn("accept failed: %d", i);
    assert_int_equal(count_lines("accept failed"), LIMIT_BURST);
    /* the window ends: the next line of any kind reports the count */
    for (size_t i = 0; i < LIMIT_SLOTS; i++)
        limits[i].start -= LIMIT_WINDOW;
    log_info("something else");
    assert_int_equal(count_lines("99980 similar lines suppressed"), 1);
    assert_int_equal(count_lines("the first: accept failed: 20"), 1);
    /* and the kind may speak again */
    log_warn("accept failed: %d", -1);
    assert_int_equal(count_lines("accept failed: -1"), 1);
}

static void kinds_are_limited_separately(void **state)
{
    (void)state;
    for (int i = 0; i < 50; i++) {
        log_err("one %d", i);
        log_err("two %d", i);
    }
    assert_int_equal(count_lines("one "), LIMIT_BURST);
    assert_int_equal(count_lines("two "), LIMIT_BURST);
}

static void message_story_is_not_limited(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++)
        log_message(LOG_INFO, i + 1, "message %d sent", i);
    assert_int_equal(count_lines(" sent"), 100);
    for (int i = 0; i < 100; i++)
        log_message(LOG_WARNING, i + 1, "message %d: report for nothing", i);
    assert_int_equal(count_lines("report for nothing"), LIMIT_BURST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(flood_becomes_burst_and_count, setup, teardown),
        cmocka_unit_test_setup_teardown(kinds_are_limited_separately, setup, teardown),
        cmocka_unit_test_setup_teardown(message_story_is_not_limited, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
