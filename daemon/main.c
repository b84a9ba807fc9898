/* herinnerd: escalates unread inbox messages by e-mail, SMS and paper.
 *
 * Start-up order (reversed at exit): config -> time zone -> event base -> metrics -> engine ->
 * database -> http -> channels -> signals and watchdog -> connect. READY=1 is sent only once the
 * database is connected, LISTENing and has the schema this herinnerd needs (schema.c, then
 * daemon_database_ready). */
#include <getopt.h>
#include <inttypes.h>
#include <sys/random.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <systemd/sd-daemon.h>

#include "buildinfo.h"
#include "checkpoint.h"
#include "config.h"
#include "config_store.h"
#include "daemon.h"
#include "db.h"
#include "engine.h"
#include "errmsg.h"
#include "http.h"
#include "ledger.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "schema.h"

static const struct channel_ops *const channel_table[CHANNEL_COUNT] = {
    [CHANNEL_EMAIL] = &email_channel,
    [CHANNEL_SMS] = &sms_channel,
    [CHANNEL_PAPER] = &paper_channel,
};

static void usage(FILE *f)
{
    fprintf(f, "usage: herinnerd [-c FILE] [--foreground] [--debug]\n"
               "       herinnerd [-c FILE] --check\n"
               "       herinnerd --version | --help\n");
}

static void help(void)
{
    usage(stdout);
    printf("\nEscalates unread inbox messages by e-mail, SMS and paper letter, and records every\n"
           "attempt in the database's append-only audit trail.\n\n"
           "  -c, --config FILE  the configuration (default: %s)\n"
           "      --check        validate the configuration and exit: 0 if valid, else 1 with\n"
           "                     FILE:LINE: what is wrong (password files are not read here)\n"
           "  -f, --foreground   do not detach (implied under systemd)\n"
           "  -d, --debug        log debug messages too\n"
           "  -V, --version      print the version and exit\n"
           "  -h, --help         print this help and exit\n\n"
           "SIGHUP reloads the configuration (a broken one is refused, the running one kept);\n"
           "SIGTERM finishes and records the sends in flight, then exits.\n"
           "See herinnerd(8), herinnerd.conf(5) and herinnerctl(1).\n",
           HERINNERD_CONFIG);
}

const struct config *daemon_config_by_sha(const struct daemon *d, const char *sha256)
{
    for (const struct config_entry *c = d->configs; c; c = c->next)
        if (strcmp(c->cfg->sha256, sha256) == 0)
            return c->cfg;
    return NULL;
}

/* C (allocated beforehand, so this cannot fail) holds CFG, which becomes the current config */
static void use_config(struct daemon *d, struct config_entry *c, struct config *cfg)
{
    c->cfg = cfg;
    c->next = d->configs;
    d->configs = c;
    d->cfg = cfg;
    if (cfg->timezone)
        setenv("TZ", cfg->timezone, 1);
    else
        unsetenv("TZ");
    tzset();
    if (d->schema)              /* a reload: the database session's zone follows */
        schema_set_timezone(d->schema, cfg->timezone);
}

int daemon_push_config(struct daemon *d, struct config *cfg)
{
    struct config_entry *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return -1;
    use_config(d, c, cfg);
    return 0;
}

/* A value that takes effect only at a restart: the running one stays in the new config, so
 * that what is derived from it (the SMS delivery report URL from http.listen) is what runs.
 * 1 if the new config had another one. */
static int keep_running(char **value, const char *running)
{
    char *copy = NULL;

    if ((*value == NULL) == (running == NULL) && (!running || strcmp(*value, running) == 0))
        return 0;
    if (running && (copy = strdup(running)) == NULL)
        return -1;
    free(*value);
    *value = copy;
    return 1;
}

/* pgbouncer's reload, made all or nothing: every part of CFG is checked and built (prepare)
 * before any is applied (commit, which cannot fail). On -1 (ERR says why) nothing changed
 * and CFG is still the caller's; on 0 it is the current config. */
int daemon_reload(struct daemon *d, struct config *cfg, char *err, size_t errlen)
{
    void *prepared[CHANNEL_COUNT] = { 0 };
    struct config_entry *entry = calloc(1, sizeof(*entry));
    int ch, conninfo, other_instance, other_listen;

    errmsg_set(err, errlen, "out of memory");
    if (entry == NULL || (other_instance = keep_running(&cfg->instance, d->cfg->instance)) == -1 ||
        (other_listen = keep_running(&cfg->http.listen, d->cfg->http.listen)) == -1)
        goto fail;
    for (ch = 0; ch < CHANNEL_COUNT; ch++) {
        const struct channel_ops *ops = channel_table[ch];
        if (ops == NULL || !config_channel_enabled(cfg, ch))
            continue;
        /* starting one means threads, sockets and the spool: that is what a restart is for */
        if (d->channel_state[ch] == NULL) {
            errmsg_set(err, errlen, "the %s channel is not running: a new channel takes a "
                       "restart", ops->name);
            goto fail;
        }
        if (ops->prepare(d->channel_state[ch], cfg, &prepared[ch], err, errlen) == -1)
            goto fail;
    }
    /* the last step that can fail; it only changes something when it succeeds */
    if ((conninfo = db_set_conninfo(d->db, cfg->conninfo)) == -1)
        goto fail;

    if (conninfo == 1)
        log_warn("reload: the new database conninfo is used from the next reconnect");
    if (other_instance == 1)
        log_warn("reload: a new 'instance' name takes effect at restart");
    if (other_listen == 1)
        log_warn("reload: a new http.listen takes effect at restart");
    for (ch = 0; ch < CHANNEL_COUNT; ch++)
        if (channel_table[ch] && config_channel_enabled(cfg, ch))
            channel_table[ch]->commit(d->channel_state[ch], cfg, prepared[ch]);
    long checkpoint_was = d->cfg->audit_checkpoint;
    use_config(d, entry, cfg);
    if (cfg->audit_checkpoint != checkpoint_was)
        checkpoint_set_interval(d->checkpoint, cfg->audit_checkpoint);
    return 0;
fail:
    for (ch = 0; ch < CHANNEL_COUNT; ch++)
        if (prepared[ch] && channel_table[ch]->discard)
            channel_table[ch]->discard(prepared[ch]);
    free(entry);
    return -1;
}

/* Start the channels the (current) config enables, at start-up. */
int daemon_start_channels(struct daemon *d)
{
    const struct config *cfg = d->cfg;

    for (int ch = 0; ch < CHANNEL_COUNT; ch++) {
        const struct channel_ops *ops = channel_table[ch];
        if (ops == NULL || !config_channel_enabled(cfg, ch) || d->channel_state[ch])
            continue;
        d->channel_ops[ch] = ops;
        if ((d->channel_state[ch] = ops->start(d)) == NULL) {
            log_err("cannot start the %s channel", ops->name);
            return -1;
        }
    }
    return 0;
}

void daemon_update_status(struct daemon *d)
{
    const struct metrics *m = d->metrics;

    sd_notifyf(0, "STATUS=%s%s; %d in flight; since start: %lu sent, %lu delivered, %lu queued, "
                  "%lu temporary failures, %lu permanent failures, %lu skipped, %lu stopped by reading",
               d->draining ? "Draining; " : "",
               !db_connected(d->db) ? "Waiting for the database"
               : schema_problem(d->schema) ? schema_problem(d->schema) : "Connected",
               engine_in_flight(d->engine), metrics_total(m, OUTCOME_SENT),
               metrics_total(m, OUTCOME_DELIVERED), metrics_total(m, OUTCOME_QUEUED),
               metrics_total(m, OUTCOME_TEMPORARY_FAILURE),
               metrics_total(m, OUTCOME_PERMANENT_FAILURE), metrics_total(m, OUTCOME_SKIPPED),
               m->read_stops);
}

void daemon_database_ready(struct daemon *d)
{
    if (!d->ready_sent && !d->draining) {
        d->ready_sent = 1;
        sd_notify(0, "READY=1");
        log_info("ready: configuration %s (sha256 %.12s), instance %s, process %s", d->cfg->path,
                 d->cfg->sha256, d->cfg->instance, d->token);
    }
    /* before the engine's first claim on this connection: the policies it will need */
    config_store_save(d, d->cfg);
    config_store_load_frozen(d);
    engine_connected(d->engine);
    daemon_update_status(d);
}

/* ready only once the schema is the one we need (schema.c checks, and checks again) */
static void db_connected_cb(void *arg)
{
    struct daemon *d = arg;

    schema_check(d->schema, d->cfg->timezone);
    daemon_update_status(d);
}

static void schema_changed_cb(void *arg)
{
    struct daemon *d = arg;

    if (schema_ok(d->schema))
        daemon_database_ready(d);
    else
        daemon_update_status(d);
}

static void db_disconnected_cb(void *arg)
{
    struct daemon *d = arg;

    schema_lost(d->schema);
    daemon_update_status(d);
}

static void db_notify_cb(const char *channel, const char *payload, void *arg)
{
    struct daemon *d = arg;

    (void)channel;
    if (schema_ok(d->schema))
        engine_notify(d->engine, payload);
}

/* What the daemon checks at start, short of reaching servers, binding and the spool: the
 * file, and what each channel would build from it. */
static int check_only(const char *path)
{
    char err[1024];
    /* the password files are the daemon's at run time (systemd's credentials): not read here */
    struct config *cfg = config_load_flags(path, CONFIG_NO_SECRETS, err, sizeof(err));

    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (int ch = 0; ch < CHANNEL_COUNT; ch++) {
        const struct channel_ops *ops = channel_table[ch];
        void *prepared = NULL;
        if (ops == NULL || !config_channel_enabled(cfg, ch))
            continue;
        if (ops->prepare(NULL, cfg, &prepared, err, sizeof(err)) == -1) {
            fprintf(stderr, "%s:0: %s\n", path, err);
            config_free(cfg);
            return 1;
        }
        if (prepared && ops->discard)
            ops->discard(prepared);
    }
    printf("%s: ok (%zu policies, sha256 %s)\n", path, cfg->npolicies, cfg->sha256);
    config_free(cfg);
    return 0;
}

/* A token unique to this process: its claims and its audit chain are named after it, so two
 * processes with the same `instance` label never touch each other's work. */
static int make_token(char *out, size_t len)
{
    unsigned char raw[16];

    if (len < 2 * sizeof(raw) + 1 || getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return -1;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

/* Stop everything; returns 1 if any outcome could not be recorded (each one was logged). */
static int daemon_finalise(struct daemon *d)
{
    unsigned long lost = 0;

    loop_finalise(d);
    if (d->engine)
        engine_stop(d->engine);
    for (int ch = CHANNEL_COUNT - 1; ch >= 0; ch--)
        if (d->channel_state[ch])
            d->channel_ops[ch]->stop(d->channel_state[ch]);
    http_stop(d->http);
    schema_free(d->schema);
    db_free(d->db);             /* statements still queued fail: the ledger logs their facts */
    checkpoint_free(d->checkpoint);         /* after db_free: no callback can reach it */
    lost += ledger_free(d->ledger);     /* what it still holds is logged, fact by fact */
    if (d->engine)
        lost += engine_unfinished(d->engine);
    engine_free(d->engine);
    free(d->metrics);
    while (d->configs) {
        struct config_entry *c = d->configs;
        d->configs = c->next;
        config_free(c->cfg);
        free(c);
    }
    if (d->base)
        event_base_free(d->base);
    if (lost > 0)
        log_err("%lu attempts could not be recorded (each is in the log above); the next start "
                "records the unfinished ones as in-doubt", lost);
    return lost > 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'C' },
        { "foreground", no_argument, NULL, 'f' },   { "debug", no_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = HERINNERD_CONFIG;
    int check = 0, foreground = 0, debug = 0, opt;
    struct daemon d = { 0 };
    char err[1024];

    while ((opt = getopt_long(argc, argv, "c:fdhV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'C': check = 1; break;
        case 'f': foreground = 1; break;
        case 'd': debug = 1; break;
        case 'h': help(); return 0;
        case 'V': printf("herinnerd %s\n", HERINNERD_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (check)
        return check_only(path);

    log_init("herinnerd", debug);
    struct config *cfg = config_load(path, err, sizeof(err));
    if (cfg == NULL) {
        log_err("refusing to start: %s", err);
        return 1;
    }
    if (daemon_push_config(&d, cfg) == -1) {
        config_free(cfg);
        return 1;
    }
    d.config_path = path;
    if (!foreground && getenv("NOTIFY_SOCKET") == NULL && daemon(0, 1) == -1)
        fatalx("cannot go into the background");

    /* libesmtp writes to sockets that may close: EPIPE, not a signal */
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    struct db_events ev = { db_connected_cb, db_disconnected_cb, db_notify_cb, &d };
    char chain[512];
    if (make_token(d.token, sizeof(d.token)) == -1) {
        log_err("cannot draw a random process token");
        goto fail;
    }
    snprintf(chain, sizeof(chain), "%.400s/%s", cfg->instance, d.token);
    if ((d.base = event_base_new()) == NULL || (d.metrics = calloc(1, sizeof(*d.metrics))) == NULL ||
        (d.engine = engine_new(&d)) == NULL ||
        (d.db = db_new(d.base, cfg->conninfo, "herinnerd_message", &ev)) == NULL ||
        (d.ledger = ledger_new(d.base, d.db, cfg->instance, chain)) == NULL ||
        (d.schema = schema_new(d.base, d.db, schema_changed_cb, &d)) == NULL ||
        (d.checkpoint = checkpoint_new(d.base, d.db, cfg->audit_checkpoint, cfg->instance)) == NULL) {
        log_err("out of memory at start-up");
        goto fail;
    }
    /* http before the channels: the SMS channel answers its delivery reports there */
    if (cfg->http.listen && (d.http = http_start(&d, cfg->http.listen)) == NULL)
        goto fail;
    if (daemon_start_channels(&d) == -1)
        goto fail;
    if (loop_initialise(&d) == -1)
        goto fail;
    sd_notify(0, "STATUS=Connecting to the database");
    db_start(d.db);

    event_base_dispatch(d.base);

    int rc = d.exit_code;
    if (daemon_finalise(&d) != 0)
        rc = 1;
    log_info("stopped (exit status %d)", rc);
    return rc;
fail:
    sd_notifyf(0, "STATUS=Failed to start\nERRNO=%d", 1);
    daemon_finalise(&d);
    return 1;
}
