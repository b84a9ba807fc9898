/* The daemon's connection parameters: defaults only where the operator set nothing, and host
 * names resolved into parallel host/hostaddr/port lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "db_params.h"

static struct db_params *parse(const char *conninfo)
{
    char *err = NULL;
    struct db_params *p = db_params_new(conninfo, &err);

    if (p == NULL)
        fail_msg("'%s': %s", conninfo, err);
    return p;
}

static void clean_env(void)
{
    unsetenv("PGOPTIONS");
    unsetenv("PGHOST");
    unsetenv("PGHOSTADDR");
    unsetenv("PGAPPNAME");
    unsetenv("PGCONNECT_TIMEOUT");
}

static void defaults_added(void **state)
{
    (void)state;
    clean_env();
    struct db_params *p = parse("dbname=inbox user=herinnerd");

    assert_string_equal(db_params_get(p, "dbname"), "inbox");
    assert_string_equal(db_params_get(p, "application_name"), "herinnerd");
    assert_string_equal(db_params_get(p, "connect_timeout"), DB_CONNECT_TIMEOUT);
    assert_string_equal(db_params_get(p, "keepalives"), "1");
    assert_string_equal(db_params_get(p, "keepalives_idle"), DB_KEEPALIVES_IDLE);
    assert_string_equal(db_params_get(p, "options"),
                        "-c statement_timeout=" DB_STATEMENT_TIMEOUT " -c lock_timeout=" DB_LOCK_TIMEOUT);
    assert_null(db_params_get(p, "host"));
    assert_null(db_params_hosts(p));
    assert_null(p->keywords[p->n]);
    db_params_free(p);
}

static void operator_wins(void **state)
{
    (void)state;
    clean_env();
    struct db_params *p = parse("postgresql://u@db.example:6432/inbox?connect_timeout=3"
                                "&application_name=mine&keepalives_idle=5"
                                "&options=-c%20lock_timeout%3D1s%20-c%20work_mem%3D8MB");

    assert_string_equal(db_params_get(p, "application_name"), "mine");
    assert_string_equal(db_params_get(p, "connect_timeout"), "3");
    assert_string_equal(db_params_get(p, "keepalives_idle"), "5");
    assert_string_equal(db_params_get(p, "keepalives_count"), DB_KEEPALIVES_COUNT);
    /* the operator's lock_timeout only; ours for what the operator left out */
    assert_string_equal(db_params_get(p, "options"),
                        "-c statement_timeout=" DB_STATEMENT_TIMEOUT " -c lock_timeout=1s -c work_mem=8MB");
    assert_string_equal(db_params_hosts(p), "db.example");
    db_params_free(p);

    setenv("PGOPTIONS", "-c statement_timeout=0", 1);
    setenv("PGAPPNAME", "env", 1);
    p = parse("dbname=inbox");
    assert_string_equal(db_params_get(p, "options"), "-c lock_timeout=" DB_LOCK_TIMEOUT " -c statement_timeout=0");
    assert_null(db_params_get(p, "application_name"));   /* libpq takes PGAPPNAME */
    db_params_free(p);
    clean_env();
}

static void bad_conninfo(void **state)
{
    (void)state;
    char *err = NULL;

    assert_null(db_params_new("nonsense", &err));
    assert_non_null(err);
    free(err);
}

static void what_to_resolve(void **state)
{
    (void)state;
    clean_env();
    struct db_params *p = parse("host=/run/postgresql,/tmp");
    assert_null(db_params_hosts(p));
    db_params_free(p);
    p = parse("host=a,b hostaddr=127.0.0.1,127.0.0.2");
    assert_null(db_params_hosts(p));
    db_params_free(p);
    p = parse("host=/tmp,db1 target_session_attrs=read-write");
    assert_string_equal(db_params_hosts(p), "/tmp,db1");
    db_params_free(p);
    setenv("PGHOST", "envhost", 1);
    p = parse("dbname=x");
    assert_string_equal(db_params_hosts(p), "envhost");
    db_params_free(p);
    clean_env();
}

static int fake_lookup(const char *name, char out[][64], int max)
{
    assert_true(max >= 2);
    if (strcmp(name, "localhost") == 0) {
        strcpy(out[0], "::1");
        strcpy(out[1], "127.0.0.1");
        return 2;
    }
    if (strcmp(name, "db1") == 0) {
        strcpy(out[0], "10.0.0.1");
        return 1;
    }
    return 0;
}

static void resolve(const char *host, const char *port, const char *want_host,
                    const char *want_addr, const char *want_port, const char *want_skipped)
{
    struct db_hosts h;
    char *err = NULL;

    if (db_hosts_resolve(host, port, fake_lookup, &h, &err) != 0)
        fail_msg("%s: %s", host, err);
    assert_string_equal(h.host, want_host);
    assert_string_equal(h.hostaddr, want_addr);
    if (want_port)
        assert_string_equal(h.port, want_port);
    else
        assert_null(h.port);
    if (want_skipped)
        assert_string_equal(h.skipped, want_skipped);
    else
        assert_null(h.skipped);
    db_hosts_clear(&h);
}

static void hosts_become_addresses(void **state)
{
    (void)state;
    resolve("localhost", "5432", "localhost,localhost", "::1,127.0.0.1", NULL, NULL);
    resolve("localhost", NULL, "localhost,localhost", "::1,127.0.0.1", NULL, NULL);
    /* multi-host with a port each: every address keeps its host's port */
    resolve("db1,localhost", "5433,5434", "db1,localhost,localhost", "10.0.0.1,::1,127.0.0.1",
            "5433,5434,5434", NULL);
    /* socket directories keep an empty hostaddr; unknown names are left out */
    resolve("/tmp,nowhere,db1", "1,2,3", "/tmp,db1", ",10.0.0.1", "1,3", "nowhere");
    resolve("nowhere,db1", NULL, "db1", "10.0.0.1", NULL, "nowhere");

    struct db_hosts h;
    char *err = NULL;
    assert_int_equal(db_hosts_resolve("nowhere,nothere", NULL, fake_lookup, &h, &err), -1);
    assert_non_null(strstr(err, "nowhere,nothere"));
    assert_null(h.host);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_added),
        cmocka_unit_test(operator_wins),
        cmocka_unit_test(bad_conninfo),
        cmocka_unit_test(what_to_resolve),
        cmocka_unit_test(hosts_become_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
