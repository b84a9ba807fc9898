/* Multi-host conninfo lists: counting and rotating (hostlist.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>

#include "hostlist.h"

static void rotated(const char *list, int k, const char *want)
{
    char *got = hostlist_rotate(list, k);

    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void counts(void **state)
{
    (void)state;
    assert_int_equal(hostlist_count(NULL), 0);
    assert_int_equal(hostlist_count(""), 0);
    assert_int_equal(hostlist_count("db1"), 1);
    assert_int_equal(hostlist_count("db1,db2"), 2);
    assert_int_equal(hostlist_count("5432,,5433"), 3);   /* an empty entry is the default */
}

static void rotations(void **state)
{
    (void)state;
    rotated("a,b,c", 0, "a,b,c");
    rotated("a,b,c", 1, "b,c,a");
    rotated("a,b,c", 2, "c,a,b");
    rotated("a,b,c", 3, "a,b,c");
    rotated("a,b,c", 7, "b,c,a");
    rotated("10.0.0.1,10.0.0.2", 1, "10.0.0.2,10.0.0.1");
    rotated("5432,,5433", 1, ",5433,5432");
    rotated("5432,,5433", 2, "5433,5432,");
    rotated("/run/postgresql", 5, "/run/postgresql");
    rotated("", 1, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts),
        cmocka_unit_test(rotations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
