/* herinnerd: escalates unread inbox messages by e-mail, SMS and paper.
 *
 * Start-up order (reversed at exit): config -> time zone -> event base -> metrics -> engine ->
 * database -> http -> channels -> signals and watchdog -> connect. READY=1 is sent only once the
 * database is connected and LISTENing (daemon_database_ready). */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <systemd/sd-daemon.h>

#include "checkpoint.h"
#include "config.h"
#include "config_store.h"
#include "daemon.h"
#include "db.h"
#include "engine.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"

static const struct channel_ops *const channel_table[CHANNEL_COUNT] = {
    [CHANNEL_EMAIL] = &email_channel,
    [CHANNEL_SMS] = &sms_channel,
    [CHANNEL_PAPER] = &paper_channel,
};

static void usage(FILE *f)
{
    fprintf(f, "usage: herinnerd -c FILE [--foreground] [--debug]\n"
               "       herinnerd -c FILE --check\n");
}

const struct config *daemon_config_by_sha(const struct daemon *d, const char *sha256)
{
    for (const struct config_entry *c = d->configs; c; c = c->next)
        if (strcmp(c->cfg->sha256, sha256) == 0)
            return c->cfg;
    return NULL;
}

int daemon_push_config(struct daemon *d, struct config *cfg)
{
    struct config_entry *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return -1;
    c->cfg = cfg;
    c->next = d->configs;
    d->configs = c;
    d->cfg = cfg;
    if (cfg->timezone)
        setenv("TZ", cfg->timezone, 1);
    else
        unsetenv("TZ");
    tzset();
    return 0;
}

/* Start the channels the config enables that are not running yet; reload the others. */
int daemon_apply_channels(struct daemon *d, const struct config *cfg)
{
    for (int ch = 0; ch < CHANNEL_COUNT; ch++) {
        const struct channel_ops *ops = channel_table[ch];
        if (ops == NULL || !config_channel_enabled(cfg, ch))
            continue;
        if (d->channel_state[ch]) {
            if (ops->reload(d->channel_state[ch], cfg) == -1)
                return -1;
            continue;
        }
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
               db_connected(d->db) ? "Connected" : "Waiting for the database",
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
        log_info("ready: configuration %s (sha256 %.12s), instance %s", d->cfg->path,
                 d->cfg->sha256, d->cfg->instance);
    }
    /* before the engine's first claim on this connection: the policies it will need */
    config_store_save(d, d->cfg);
    config_store_load_frozen(d);
    engine_connected(d->engine);
    daemon_update_status(d);
}

static void db_connected_cb(void *arg)
{
    daemon_database_ready(arg);
}

static void db_disconnected_cb(void *arg)
{
    daemon_update_status(arg);
}

static void db_notify_cb(const char *channel, const char *payload, void *arg)
{
    struct daemon *d = arg;

    (void)channel;
    engine_notify(d->engine, payload);
}

static int check_only(const char *path)
{
    char err[1024];
    struct config *cfg = config_load(path, err, sizeof(err));

    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%s: ok (%zu policies, sha256 %s)\n", path, cfg->npolicies, cfg->sha256);
    config_free(cfg);
    return 0;
}

static void daemon_finalise(struct daemon *d)
{
    loop_finalise(d);
    for (int ch = CHANNEL_COUNT - 1; ch >= 0; ch--)
        if (d->channel_state[ch])
            d->channel_ops[ch]->stop(d->channel_state[ch]);
    http_stop(d->http);
    db_free(d->db);
    checkpoint_free(d->checkpoint);         /* after db_free: no callback can reach it */
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
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'C' },
        { "foreground", no_argument, NULL, 'f' },   { "debug", no_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    const char *path = "/etc/herinnerd/herinnerd.conf";
    int check = 0, foreground = 0, debug = 0, opt;
    struct daemon d = { 0 };
    char err[1024];

    while ((opt = getopt_long(argc, argv, "c:fdh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'C': check = 1; break;
        case 'f': foreground = 1; break;
        case 'd': debug = 1; break;
        case 'h': usage(stdout); return 0;
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
    if ((d.base = event_base_new()) == NULL || (d.metrics = calloc(1, sizeof(*d.metrics))) == NULL ||
        (d.engine = engine_new(&d)) == NULL ||
        (d.db = db_new(d.base, cfg->conninfo, "herinnerd_message", &ev)) == NULL ||
        (d.checkpoint = checkpoint_new(d.base, d.db, cfg->audit_checkpoint, cfg->instance)) == NULL) {
        log_err("out of memory at start-up");
        goto fail;
    }
    /* http before the channels: the SMS channel answers its delivery reports there */
    if (cfg->http.listen && (d.http = http_start(&d, cfg->http.listen)) == NULL)
        goto fail;
    if (daemon_apply_channels(&d, cfg) == -1)
        goto fail;
    if (loop_initialise(&d) == -1)
        goto fail;
    sd_notify(0, "STATUS=Connecting to the database");
    db_start(d.db);

    event_base_dispatch(d.base);

    log_info("stopped");
    int rc = d.exit_code;
    daemon_finalise(&d);
    return rc;
fail:
    sd_notifyf(0, "STATUS=Failed to start\nERRNO=%d", 1);
    daemon_finalise(&d);
    return 1;
}
