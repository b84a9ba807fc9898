/* Config validation: one test per kind of error, each reported as FILE:LINE: message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define GOOD_HEAD \
    "database: { conninfo = \"dbname=inbox\"; };\n" \
    "email: { server = \"127.0.0.1:25\"; from = \"MijnOverheid <noreply@example.nl>\"; };\n"

#define ONE_POLICY(steps) \
    "policies = ( { name = \"default\"; kinds = [ \"*\" ];\n" \
    "  steps = (\n" steps "\n  ); } );\n"

static char path[64];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/herinnerd-test-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd == -1)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static struct config *load_text(const char *text, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    err[0] = '\0';
    return config_load(path, err, errlen);
}

/* Loading TEXT must fail at LINE with a message containing WHAT. */
static void expect_error(const char *text, int line, const char *what)
{
    char err[1024], prefix[128];
    struct config *cfg = load_text(text, err, sizeof(err));

    if (cfg != NULL)
        fail_msg("config unexpectedly valid; expected line %d: %s", line, what);
    snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, what) == NULL)
        fail_msg("got '%s', expected '%s...%s'", err, prefix, what);
}

static void a_good_config_loads(void **state)
{
    char err[1024];
    (void)state;
    struct config *cfg = load_text(GOOD_HEAD
        "sms: { url = \"http://127.0.0.1:13013/cgi-bin/sendsms\"; username = \"u\"; password = \"p\"; sender = \"Overheid\"; };\n"
        "paper: { spool = \"/var/spool/herinnerd\"; cutoff = \"17:30\"; };\n"
        "http: { listen = \"127.0.0.1:9187\"; };\n"
        "timezone = \"Europe/Amsterdam\";\n"
        ONE_POLICY("{ channel = \"email\"; after = \"0s\"; },\n"
                   "{ channel = \"email\"; after = \"3d\"; template = \"reminder\"; },\n"
                   "{ channel = \"sms\"; after = \"7d\"; quiet_hours = \"21:00-08:00\"; },\n"
                   "{ channel = \"paper\"; after = \"14d\"; business_days = true; retry = { max = 5; backoff = \"10m\"; }; }"),
        err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->npolicies, 1);
    assert_int_equal(cfg->policies[0].nsteps, 4);
    assert_int_equal(cfg->policies[0].steps[1].offset, 3 * 86400);
    assert_int_equal(cfg->policies[0].steps[2].quiet_start, 21 * 60);
    assert_int_equal(cfg->policies[0].steps[3].retry_backoff, 600);
    assert_int_equal(cfg->paper.cutoff, 17 * 60 + 30);
    assert_int_equal(strlen(cfg->sha256), 64);
    assert_ptr_equal(config_policy_for_kind(cfg, "aanslag"), &cfg->policies[0]);
    config_free(cfg);
}

static void syntax_error(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "policies = ( { name = \"x\" \n", 4, "syntax error");
}

static void unknown_key(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "colour = \"blue\";\n" ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"),
                 3, "unknown key 'colour'");
}

static void unknown_key_in_step(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; afer = \"0s\"; }"), 5,
                 "unknown key 'afer' in step");
}

static void wrong_type(void **state)
{
    (void)state;
    expect_error("database: { conninfo = 5; };\n" ONE_POLICY("{ channel = \"null\"; after = \"0s\"; }"),
                 1, "'conninfo' must be a string");
}

static void unknown_channel(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"fax\"; after = \"0s\"; }"), 5,
                 "unknown channel 'fax'");
}

static void channel_without_its_group(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"sms\"; after = \"0s\"; }"), 5,
                 "channel 'sms' is used but has no 'sms' group");
}

static void unknown_template(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; after = \"0s\"; template = \"shout\"; }"),
                 5, "unknown template 'shout'");
}

static void bad_duration(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; after = \"3 days\"; }"), 5,
                 "'after' must be a duration");
}

static void steps_out_of_order(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; after = \"3d\"; },\n"
                                      "{ channel = \"email\"; after = \"1d\"; }"),
                 6, "steps out of order");
}

static void step_without_time(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; }"), 5,
                 "exactly one of 'after' or 'before_due'");
}

static void bad_quiet_hours(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; after = \"0s\"; quiet_hours = \"late\"; }"),
                 5, "'quiet_hours' must be a range");
}

static void missing_database(void **state)
{
    (void)state;
    expect_error(ONE_POLICY("{ channel = \"null\"; after = \"0s\"; }"), 0,
                 "missing required group 'database'");
}

static void bad_starttls(void **state)
{
    (void)state;
    expect_error("database: { conninfo = \"x\"; };\n"
                 "email: { server = \"s:25\"; from = \"a@b.nl\"; starttls = \"maybe\"; };\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"),
                 2, "'starttls' must be");
}

static void bad_from_address(void **state)
{
    (void)state;
    expect_error("database: { conninfo = \"x\"; };\n"
                 "email: { server = \"s:25\"; from = \"MijnOverheid\"; };\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"),
                 2, "'from' must be an address");
}

static void duplicate_policy(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "policies = (\n"
                 "  { name = \"a\"; steps = ( { channel = \"null\"; after = \"0s\"; } ); },\n"
                 "  { name = \"a\"; steps = ( { channel = \"null\"; after = \"0s\"; } ); } );\n",
                 5, "defined twice");
}

static void unknown_time_zone(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "timezone = \"Europe/Atlantis\";\n"
                 ONE_POLICY("{ channel = \"null\"; after = \"0s\"; }"),
                 3, "unknown time zone");
}

static void exact_kind_beats_wildcard(void **state)
{
    char err[1024];
    (void)state;
    struct config *cfg = load_text(GOOD_HEAD "policies = (\n"
        "  { name = \"default\"; kinds = [ \"*\" ]; steps = ( { channel = \"null\"; after = \"0s\"; } ); },\n"
        "  { name = \"tax\"; kinds = [ \"aanslag\" ]; hide_subject = true; steps = ( { channel = \"null\"; after = \"0s\"; } ); } );\n",
        err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(config_policy_for_kind(cfg, "aanslag")->name, "tax");
    assert_string_equal(config_policy_for_kind(cfg, "brief")->name, "default");
    assert_true(config_policy_for_kind(cfg, "aanslag")->hide_subject);
    config_free(cfg);
}

/* audit.checkpoint: default one hour, any duration, "0s" for none, nothing else in the group */
static void audit_checkpoint(void **state)
{
    char err[1024];
    (void)state;
    struct config *cfg = load_text(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"),
                                   err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->audit_checkpoint, 3600);
    config_free(cfg);
    cfg = load_text(GOOD_HEAD "audit: { checkpoint = \"15m\"; };\n"
                    ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->audit_checkpoint, 900);
    config_free(cfg);
    expect_error(GOOD_HEAD "audit: { checkpoint = \"hourly\"; };\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), 3,
                 "'checkpoint' must be a duration");
    expect_error(GOOD_HEAD "audit: { checkpoint = \"1h\"; export = \"x\"; };\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), 3,
                 "unknown key 'export' in audit");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_good_config_loads),
        cmocka_unit_test(syntax_error),
        cmocka_unit_test(unknown_key),
        cmocka_unit_test(unknown_key_in_step),
        cmocka_unit_test(wrong_type),
        cmocka_unit_test(unknown_channel),
        cmocka_unit_test(channel_without_its_group),
        cmocka_unit_test(unknown_template),
        cmocka_unit_test(bad_duration),
        cmocka_unit_test(steps_out_of_order),
        cmocka_unit_test(step_without_time),
        cmocka_unit_test(bad_quiet_hours),
        cmocka_unit_test(missing_database),
        cmocka_unit_test(bad_starttls),
        cmocka_unit_test(bad_from_address),
        cmocka_unit_test(duplicate_policy),
        cmocka_unit_test(unknown_time_zone),
        cmocka_unit_test(exact_kind_beats_wildcard),
        cmocka_unit_test(audit_checkpoint),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
