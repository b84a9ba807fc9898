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
    expect_error("database: { conninfo = \"dbname=x\"; };\n"
                 "email: { server = \"s:25\"; from = \"a@b.nl\"; starttls = \"maybe\"; };\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"),
                 2, "'starttls' must be");
}

static void bad_from_address(void **state)
{
    (void)state;
    expect_error("database: { conninfo = \"dbname=x\"; };\n"
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

/* bundle: off unless given, a duration up to 30 days, a FILE:LINE error otherwise */
static void bundle_key(void **state)
{
    char err[1024];
    (void)state;
    struct config *cfg = load_text(GOOD_HEAD "policies = (\n"
        "  { name = \"default\"; kinds = [ \"*\" ]; steps = ( { channel = \"null\"; after = \"0s\"; } ); },\n"
        "  { name = \"tax\"; kinds = [ \"aanslag\" ]; bundle = \"2d\"; steps = ( { channel = \"null\"; after = \"0s\"; } ); } );\n",
        err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(config_policy_by_name(cfg, "tax")->bundle, 2 * 86400);
    assert_int_equal(config_policy_by_name(cfg, "default")->bundle, 0);
    config_free(cfg);
    expect_error(GOOD_HEAD "policies = ( { name = \"default\"; kinds = [ \"*\" ];\n"
                 "  bundle = \"two days\"; steps = ( { channel = \"null\"; after = \"0s\"; } ); } );\n",
                 4, "'bundle' must be a duration");
    expect_error(GOOD_HEAD "policies = ( { name = \"default\"; kinds = [ \"*\" ];\n"
                 "  bundle = \"31d\"; steps = ( { channel = \"null\"; after = \"0s\"; } ); } );\n",
                 4, "'bundle' must be from 0s to 30d");
}

#define SMS_TEXT_GROUP(extra) \
    "sms: { url = \"http://127.0.0.1:13013/\"; username = \"u\"; password = \"p\";\n" \
    "       sender = \"Overheid\"; " extra " };\nhttp: { listen = \"127.0.0.1:9187\"; };\n"

static void text_keys_default_and_load(void **state)
{
    char err[1024];
    (void)state;
    struct config *cfg = load_text(GOOD_HEAD SMS_TEXT_GROUP("")
        ONE_POLICY("{ channel = \"email\"; after = \"0s\"; },\n"
                   "{ channel = \"sms\"; after = \"1d\"; }"), err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->allow_http_links, 0);
    assert_int_equal(cfg->email.link, 1);
    assert_int_equal(cfg->sms.link, 0);          /* SMS says "log in" unless told */
    assert_int_equal(cfg->sms.max_parts, 1);
    assert_int_equal(cfg->policies[0].steps[0].link, 0);
    config_free(cfg);

    cfg = load_text("allow_http_links = true;\n"
        "database: { conninfo = \"dbname=inbox\"; };\n"
        "email: { server = \"127.0.0.1:25\"; from = \"MijnOverheid <noreply@example.nl>\"; link = false; };\n"
        SMS_TEXT_GROUP("link = true; max_parts = 3;")
        ONE_POLICY("{ channel = \"email\"; after = \"0s\"; link = true; },\n"
                   "{ channel = \"sms\"; after = \"1d\"; link = false; }"), err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->allow_http_links, 1);
    assert_int_equal(cfg->email.link, 0);
    assert_int_equal(cfg->sms.link, 1);
    assert_int_equal(cfg->sms.max_parts, 3);
    assert_int_equal(cfg->policies[0].steps[0].link, 1);
    assert_int_equal(cfg->policies[0].steps[1].link, -1);
    config_free(cfg);
}

static void bad_text_keys(void **state)
{
    (void)state;
    expect_error("allow_http_links = \"yes\";\n" GOOD_HEAD
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"),
                 1, "'allow_http_links' must be true or false");
    expect_error(GOOD_HEAD SMS_TEXT_GROUP("max_parts = 0;")
                 ONE_POLICY("{ channel = \"sms\"; after = \"0s\"; }"),
                 4, "'max_parts' must be between 1 and 10");
    expect_error(GOOD_HEAD SMS_TEXT_GROUP("max_parts = 11;")
                 ONE_POLICY("{ channel = \"sms\"; after = \"0s\"; }"),
                 4, "'max_parts' must be between 1 and 10");
    expect_error(GOOD_HEAD SMS_TEXT_GROUP("link = 1;")
                 ONE_POLICY("{ channel = \"sms\"; after = \"0s\"; }"),
                 4, "'link' must be true or false");
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; after = \"0s\"; link = \"no\"; }"),
                 5, "'link' must be true or false");
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"null\"; after = \"0s\"; link = false; }"),
                 5, "'link' applies to email and sms steps");
}

/* ---- what --check must refuse (issue 8): each as FILE:LINE: what is wrong ---- */

#define NULL_POLICY ONE_POLICY("{ channel = \"null\"; after = \"0s\"; }")
#define SMS_GROUP(url, timeout) \
    "sms: { url = \"" url "\"; username = \"u\"; password = \"p\"; sender = \"Overheid\";" \
    " timeout = \"" timeout "\"; };\n" "http: { listen = \"127.0.0.1:9187\"; };\n"

static void listen_port_not_a_number(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "http: { listen = \"127.0.0.1:abc\"; };\n" NULL_POLICY, 3,
                 "'listen' must be IP:PORT");
}

static void listen_port_out_of_range(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "http: { listen = \":99999\"; };\n" NULL_POLICY, 3,
                 "a port from 1 to 65535");
}

static void listen_not_a_host(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "http: { listen = \"not a host:9187\"; };\n" NULL_POLICY, 3,
                 "'listen' must be IP:PORT");
}

static void listen_beyond_loopback_needs_opt_in(void **state)
{
    char err[1024];
    (void)state;
    expect_error(GOOD_HEAD "http: { listen = \"0.0.0.0:9187\"; };\n" NULL_POLICY, 3,
                 "set 'allow_remote = true;'");
    expect_error(GOOD_HEAD "http: { listen = \"[::]:9187\"; };\n" NULL_POLICY, 3,
                 "can be reached from other hosts");
    struct config *cfg = load_text(GOOD_HEAD "http: { listen = \"0.0.0.0:9187\"; allow_remote = true; };\n"
                                   NULL_POLICY, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    config_free(cfg);
    cfg = load_text(GOOD_HEAD "http: { listen = \"[::1]:9187\"; };\n" NULL_POLICY, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    config_free(cfg);
}

static void time_zone_empty(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "timezone = \"\";\n" NULL_POLICY, 3, "unknown time zone ''");
}

static void time_zone_a_directory(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "timezone = \"Europe\";\n" NULL_POLICY, 3, "unknown time zone 'Europe'");
}

static void time_zone_posix_directory(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "timezone = \"posix\";\n" NULL_POLICY, 3, "unknown time zone 'posix'");
}

static void password_file_a_directory(void **state)
{
    (void)state;
    expect_error("database: { conninfo = \"dbname=x\"; };\n"
                 "email: { server = \"s:25\"; from = \"a@b.nl\"; username = \"u\";\n"
                 "  password_file = \"/tmp\"; };\n" NULL_POLICY,
                 3, "'/tmp' is not a file");
}

static void password_file_empty(void **state)
{
    char empty[64] = "/tmp/herinnerd-test-empty-XXXXXX", text[1024];
    int fd = mkstemp(empty);
    (void)state;
    assert_true(fd >= 0);
    close(fd);
    snprintf(text, sizeof(text), "database: { conninfo = \"dbname=x\"; };\n"
             "email: { server = \"s:25\"; from = \"a@b.nl\"; username = \"u\";\n"
             "  password_file = \"%s\"; };\n" NULL_POLICY, empty);
    expect_error(text, 3, "is empty");
    unlink(empty);
}

static void sms_url_without_host(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD SMS_GROUP("http://", "30s") NULL_POLICY, 3, "'url' must name a host");
}

static void email_server_empty(void **state)
{
    (void)state;
    expect_error("database: { conninfo = \"dbname=x\"; };\n"
                 "email: { server = \"\"; from = \"a@b.nl\"; };\n" NULL_POLICY,
                 2, "'server' must be HOST or HOST:PORT");
}

static void email_server_bad_port(void **state)
{
    (void)state;
    expect_error("database: { conninfo = \"dbname=x\"; };\n"
                 "email: { server = \"127.0.0.1:abc\"; from = \"a@b.nl\"; };\n" NULL_POLICY,
                 2, "'server' must be HOST or HOST:PORT");
}

static void conninfo_empty(void **state)
{
    (void)state;
    expect_error("database: { conninfo = \"\"; };\n" NULL_POLICY, 1, "'conninfo' is empty");
}

static void conninfo_unparsable(void **state)
{
    (void)state;
    expect_error("database: { conninfo = \"inbox\"; };\n" NULL_POLICY, 1, "'conninfo' is not valid");
}

static void two_wildcard_policies(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "policies = (\n"
                 "  { name = \"a\"; kinds = [ \"*\" ]; steps = ( { channel = \"null\"; after = \"0s\"; } ); },\n"
                 "  { name = \"b\"; kinds = [ \"*\" ]; steps = ( { channel = \"null\"; after = \"0s\"; } ); } );\n",
                 5, "kind '*' is already in policy 'a'");
}

static void after_step_following_a_before_due_step(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; after = \"0s\"; },\n"
                                      "{ channel = \"email\"; before_due = \"10d\"; },\n"
                                      "{ channel = \"email\"; after = \"3d\"; }"),
                 7, "an 'after' step cannot follow a 'before_due' step");
}

static void empty_policy_name(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "policies = (\n"
                 "  { name = \"\"; kinds = [ \"*\" ]; steps = ( { channel = \"null\"; after = \"0s\"; } ); } );\n",
                 4, "a policy name must be 1 to 64 bytes long");
}

static void huge_instance(void **state)
{
    size_t n = 10 * 1024 * 1024;
    char *text = malloc(n + 512);
    (void)state;
    assert_non_null(text);
    strcpy(text, GOOD_HEAD "instance = \"");
    size_t len = strlen(text);
    memset(text + len, 'x', n);
    strcpy(text + len + n, "\";\n" NULL_POLICY);
    expect_error(text, 3, "larger than 1024 KiB");
    free(text);
}

static void long_instance(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "instance = \"" "0123456789012345678901234567890123456789"
                 "0123456789012345678901234567890123456789" "\";\n" NULL_POLICY,
                 3, "'instance' must be 1 to 64 bytes long");
}

static void long_string(void **state)
{
    char *text = malloc(8192);
    (void)state;
    assert_non_null(text);
    strcpy(text, GOOD_HEAD "paper: { spool = \"/");
    size_t len = strlen(text);
    memset(text + len, 'x', 5000);
    strcpy(text + len + 5000, "\"; };\n" NULL_POLICY);
    expect_error(text, 3, "'spool' is longer than 4096 bytes");
    free(text);
}

static void email_timeout_too_long(void **state)
{
    (void)state;
    expect_error("database: { conninfo = \"dbname=x\"; };\n"
                 "email: { server = \"s:25\"; from = \"a@b.nl\"; timeout = \"400d\"; };\n"
                 NULL_POLICY, 2, "'timeout' must be from 1s to 1h");
}

static void sms_timeout_zero(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD SMS_GROUP("http://127.0.0.1:13013/cgi-bin/sendsms", "0s") NULL_POLICY,
                 3, "'timeout' must be from 1s to 10m");
}

static void sms_sender_too_long(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "sms: { url = \"http://127.0.0.1:13013/\"; username = \"u\"; password = \"p\";\n"
                 "  sender = \"Belastingdienst Nederland\"; };\n"
                 "http: { listen = \"127.0.0.1:9187\"; };\n" NULL_POLICY,
                 4, "'sender' must be a name of 1 to 11 letters");
}

static void retry_backoff_too_long(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; after = \"0s\"; retry = { backoff = \"30d\"; }; }"),
                 5, "'backoff' must be from 1s to 7d");
}

static void inbox_url_javascript(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "inbox_url = \"javascript:alert(1)\";\n" NULL_POLICY, 3,
                 "'inbox_url' must be an https:// URL");
}

/* ---- @include: one effective text, hashed and stored; errors name the included file ---- */

static char incdir[64];

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", incdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static struct config *load_main(char *err, size_t errlen)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/main.conf", incdir);
    return config_load(p, err, errlen);
}

static int include_setup(void **state)
{
    (void)state;
    snprintf(incdir, sizeof(incdir), "/tmp/herinnerd-test-include-XXXXXX");
    return mkdtemp(incdir) ? 0 : -1;
}

static int include_teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", incdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void included_text_is_hashed_and_stored(void **state)
{
    char err[1024], sha[65];
    (void)state;
    write_file("main.conf", GOOD_HEAD "@include \"policies.conf\"\ninstance = \"a\";\n");
    write_file("policies.conf", NULL_POLICY);
    struct config *cfg = load_main(err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_non_null(strstr(cfg->text, "# @include \"policies.conf\"\npolicies = ("));
    assert_non_null(strstr(cfg->text, "# end of @include \"policies.conf\"\ninstance = \"a\";\n"));
    assert_string_equal(cfg->policies[0].steps[0].template, "notice");
    strcpy(sha, cfg->sha256);
    /* the stored text loads on its own, to the same hash */
    struct config *again = config_load_text("herinnerd.configs:x", cfg->text, strlen(cfg->text),
                                            err, sizeof(err));
    if (again == NULL)
        fail_msg("%s", err);
    assert_string_equal(again->sha256, sha);
    config_free(again);
    config_free(cfg);

    /* an edit in the included file is an edit of the configuration */
    write_file("policies.conf", ONE_POLICY("{ channel = \"null\"; after = \"1s\"; }"));
    cfg = load_main(err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_not_equal(cfg->sha256, sha);
    assert_non_null(strstr(cfg->text, "after = \"1s\""));
    config_free(cfg);
}

static void error_in_included_file_names_it(void **state)
{
    char err[1024], want[256];
    (void)state;
    write_file("main.conf", GOOD_HEAD "@include \"policies.conf\"\ninstance = \"a\";\n");
    write_file("policies.conf", ONE_POLICY("{ channel = \"fax\"; after = \"0s\"; }"));
    assert_null(load_main(err, sizeof(err)));
    snprintf(want, sizeof(want), "policies.conf:3: unknown channel 'fax' (known: email, sms, paper, null)");
    assert_string_equal(err, want);

    /* after the included text, lines are the main file's again */
    write_file("main.conf", GOOD_HEAD "@include \"policies.conf\"\ninstance = 5;\n");
    write_file("policies.conf", NULL_POLICY);
    assert_null(load_main(err, sizeof(err)));
    snprintf(want, sizeof(want), "%s/main.conf:4: 'instance' must be a string", incdir);
    assert_string_equal(err, want);

    /* a syntax error, too */
    write_file("policies.conf", "\npolicies = ( { name = ; } );\n");
    assert_null(load_main(err, sizeof(err)));
    snprintf(want, sizeof(want), "policies.conf:2: ");
    assert_true(strncmp(err, want, strlen(want)) == 0);
    assert_non_null(strstr(err, "syntax error"));
}

static void include_missing_or_looping(void **state)
{
    char err[1024], want[256];
    (void)state;
    write_file("main.conf", GOOD_HEAD "@include \"nothere.conf\"\n");
    assert_null(load_main(err, sizeof(err)));
    snprintf(want, sizeof(want), "%s/main.conf:3: cannot read @include \"nothere.conf\"", incdir);
    assert_true(strncmp(err, want, strlen(want)) == 0);

    write_file("main.conf", GOOD_HEAD "@include \"loop.conf\"\n");
    write_file("loop.conf", "\n@include \"loop.conf\"\n");
    assert_null(load_main(err, sizeof(err)));
    snprintf(want, sizeof(want), "loop.conf:2: @include nested more than 10 deep");
    assert_true(strncmp(err, want, strlen(want)) == 0);

    write_file("main.conf", GOOD_HEAD "@include \"a.conf\" instance = \"x\";\n");
    assert_null(load_main(err, sizeof(err)));
    snprintf(want, sizeof(want), "%s/main.conf:3: write an @include", incdir);
    assert_true(strncmp(err, want, strlen(want)) == 0);
}

static void stored_text_with_an_include_is_refused(void **state)
{
    char err[1024];
    (void)state;
    const char *text = GOOD_HEAD "@include \"/etc/passwd\"\n";
    assert_null(config_load_text("stored", text, strlen(text), err, sizeof(err)));
    assert_non_null(strstr(err, "stored:3: @include in a stored configuration"));
}

static void text_without_include_is_hashed_as_it_is(void **state)
{
    char err[1024];
    (void)state;
    const char *text = GOOD_HEAD NULL_POLICY;
    struct config *cfg = load_text(text, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(cfg->text, text);
    config_free(cfg);
}

static void holidays_and_their_options(void **state)
{
    char err[1024];
    (void)state;
    struct config *cfg = load_text(GOOD_HEAD
        "holidays = [ \"2027-12-31\", \"2026-12-24\", \"2027-12-31\" ];\n"
        "holiday_options = { good_friday = true; liberation_day = \"every-year\"; };\n"
        ONE_POLICY("{ channel = \"email\"; after = \"0s\"; business_days = true; }"),
        err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->holidays.nextra, 2); /* sorted, the duplicate dropped */
    assert_int_equal(cfg->holidays.extra[0], 20261224);
    assert_int_equal(cfg->holidays.extra[1], 20271231);
    assert_true(cfg->holidays.good_friday);
    assert_true(cfg->holidays.liberation_every_year);
    assert_ptr_equal(cfg->policies[0].steps[0].holidays, &cfg->holidays);
    config_free(cfg);

    cfg = load_text(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), err,
                    sizeof(err));
    assert_non_null(cfg);
    assert_int_equal(cfg->holidays.nextra, 0);
    assert_false(cfg->holidays.good_friday);
    assert_false(cfg->holidays.liberation_every_year);
    config_free(cfg);
}

static void bad_holidays(void **state)
{
    (void)state;
    expect_error(GOOD_HEAD "holidays = [ \"2027-02-29\" ];\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), 3, "'holidays' entry 1");
    expect_error(GOOD_HEAD "holidays = [ \"2027-12-31\", \"31-12-2027\" ];\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), 3, "'holidays' entry 2");
    expect_error(GOOD_HEAD "holidays = \"2027-12-31\";\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), 3, "must be a list");
    expect_error(GOOD_HEAD "holiday_options = { liberation_day = \"yearly\"; };\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), 3, "'liberation_day'");
    expect_error(GOOD_HEAD "holiday_options = { easter_monday = false; };\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), 3, "unknown key 'easter_monday'");
}

static void email_helo(void **state)
{
    char err[1024];
    (void)state;
    struct config *cfg = load_text(
        "database: { conninfo = \"dbname=inbox\"; };\n"
        "email: { server = \"127.0.0.1:25\"; from = \"MijnOverheid <noreply@example.nl>\";\n"
        "         helo = \"mail.gemeente.example\"; };\n"
        ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(cfg->email.helo, "mail.gemeente.example");
    config_free(cfg);
    cfg = load_text(GOOD_HEAD ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), err, sizeof(err));
    assert_non_null(cfg);
    assert_null(cfg->email.helo); /* libesmtp says the host name */
    config_free(cfg);
    expect_error("database: { conninfo = \"dbname=inbox\"; };\n"
                 "email: { server = \"127.0.0.1:25\"; from = \"MijnOverheid <noreply@example.nl>\";\n"
                 "         helo = \"mail example\"; };\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), 3, "'helo' must be a host name");
    expect_error("database: { conninfo = \"dbname=inbox\"; };\n"
                 "email: { server = \"127.0.0.1:25\";\n"
                 "  from = \"x@a123456789.b123456789.c123456789.d123456789.e123456789.f123456789.g123456789.h123456789\"; };\n"
                 ONE_POLICY("{ channel = \"email\"; after = \"0s\"; }"), 3, "longer than 80");
}

static void paper_contact(void **state)
{
    char err[1024];
    (void)state;
    struct config *cfg = load_text(GOOD_HEAD
        "paper: { spool = \"/var/spool/herinnerd\"; contact = \"Vragen? Bel 14 058.\"; };\n"
        ONE_POLICY("{ channel = \"paper\"; after = \"0s\"; }"), err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(cfg->paper.contact, "Vragen? Bel 14 058.");
    config_free(cfg);
    expect_error(GOOD_HEAD
        "paper: { spool = \"/var/spool/herinnerd\";\n contact = \"Vragen?\\nBel ons.\"; };\n"
        ONE_POLICY("{ channel = \"paper\"; after = \"0s\"; }"), 4, "'contact' must be one line");
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
        cmocka_unit_test(bundle_key),
        cmocka_unit_test(text_keys_default_and_load),
        cmocka_unit_test(bad_text_keys),
        cmocka_unit_test(listen_port_not_a_number),
        cmocka_unit_test(listen_port_out_of_range),
        cmocka_unit_test(listen_not_a_host),
        cmocka_unit_test(listen_beyond_loopback_needs_opt_in),
        cmocka_unit_test(time_zone_empty),
        cmocka_unit_test(time_zone_a_directory),
        cmocka_unit_test(time_zone_posix_directory),
        cmocka_unit_test(password_file_a_directory),
        cmocka_unit_test(password_file_empty),
        cmocka_unit_test(sms_url_without_host),
        cmocka_unit_test(email_server_empty),
        cmocka_unit_test(email_server_bad_port),
        cmocka_unit_test(conninfo_empty),
        cmocka_unit_test(conninfo_unparsable),
        cmocka_unit_test(two_wildcard_policies),
        cmocka_unit_test(after_step_following_a_before_due_step),
        cmocka_unit_test(empty_policy_name),
        cmocka_unit_test(huge_instance),
        cmocka_unit_test(long_instance),
        cmocka_unit_test(long_string),
        cmocka_unit_test(email_timeout_too_long),
        cmocka_unit_test(sms_timeout_zero),
        cmocka_unit_test(sms_sender_too_long),
        cmocka_unit_test(retry_backoff_too_long),
        cmocka_unit_test(inbox_url_javascript),
        cmocka_unit_test(text_without_include_is_hashed_as_it_is),
        cmocka_unit_test(stored_text_with_an_include_is_refused),
        cmocka_unit_test(holidays_and_their_options),
        cmocka_unit_test(bad_holidays),
        cmocka_unit_test(email_helo),
        cmocka_unit_test(paper_contact),
        cmocka_unit_test(audit_checkpoint),
    };
    const struct CMUnitTest include_tests[] = {
        cmocka_unit_test(included_text_is_hashed_and_stored),
        cmocka_unit_test(error_in_included_file_names_it),
        cmocka_unit_test(include_missing_or_looping),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown) |
           cmocka_run_group_tests_name("config @include", include_tests, include_setup,
                                       include_teardown);
}
