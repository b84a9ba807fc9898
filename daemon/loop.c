#include "loop.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "config.h"
#include "config_store.h"
#include "daemon.h"
#include "db.h"
#include "engine.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"

#define DRAIN_SECONDS 60

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

/* pgbouncer style: parse into a new config, apply it all or not at all (daemon_reload). */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    char err[1024];

    (void)sig;
    (void)what;
    if (d->draining)
        return;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading %s", monotonic_usec(),
               d->config_path);
    struct config *cfg = config_load(d->config_path, err, sizeof(err));
    if (cfg == NULL) {
        d->metrics->config_reload_failures++;
        log_err("reload refused, keeping the running configuration (sha256 %.12s): %s",
                d->cfg->sha256, err);
    } else if (strcmp(cfg->sha256, d->cfg->sha256) == 0) {
        log_info("reload: configuration unchanged");
        config_free(cfg);
    } else if (daemon_reload(d, cfg, err, sizeof(err)) == -1) {
        d->metrics->config_reload_failures++;
        log_err("reload refused, nothing changed; keeping the running configuration (sha256 "
                "%.12s): %s", d->cfg->sha256, err);
        config_free(cfg);
    } else {
        if (db_connected(d->db))
            config_store_save(d, cfg);
        log_info("configuration reloaded (sha256 %.12s); running escalations keep the policy "
                 "they started with, new ones use the new policies", cfg->sha256);
    }
    sd_notify(0, "READY=1");
    daemon_update_status(d);
}

static int all_idle(struct daemon *d)
{
    if (engine_busy(d->engine) > 0 || ledger_pending(d->ledger) > 0)
        return 0;
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        if (d->channel_state[ch] && d->channel_ops[ch]->in_flight(d->channel_state[ch]) > 0)
            return 0;
    return 1;
}

void daemon_check_drained(struct daemon *d)
{
    if (d->draining && all_idle(d)) {
        log_info("drained: every send finished and recorded");
        event_base_loopexit(d->base, NULL);
    }
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;

    (void)fd;
    (void)what;
    log_err("drain timed out after %ds with %d sends unfinished and %d attempts unwritten; "
            "each is logged at exit", DRAIN_SECONDS, engine_in_flight(d->engine),
            ledger_pending(d->ledger));
    d->exit_code = 1;
    event_base_loopexit(d->base, NULL);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct timeval tv = { DRAIN_SECONDS, 0 };

    (void)what;
    if (d->draining) {
        log_warn("second %s: stopping now; what is not recorded yet is logged",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
        event_base_loopexit(d->base, NULL);
        return;
    }
    d->draining = 1;
    sd_notify(0, "STOPPING=1");
    log_info("stopping: finishing %d sends in flight", engine_in_flight(d->engine));
    engine_drain(d->engine);
    daemon_update_status(d);
    evtimer_add(d->drain_timer, &tv);
    daemon_check_drained(d);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    /* pinged from the loop itself: a stuck loop stops the pings and systemd restarts us */
    sd_notify(0, "WATCHDOG=1");
}

int loop_initialise(struct daemon *d)
{
    uint64_t usec = 0;

    d->sighup = evsignal_new(d->base, SIGHUP, on_sighup, d);
    d->sigterm = evsignal_new(d->base, SIGTERM, on_sigterm, d);
    d->sigint = evsignal_new(d->base, SIGINT, on_sigterm, d);
    d->drain_timer = evtimer_new(d->base, on_drain_timeout, d);
    if (d->sighup == NULL || d->sigterm == NULL || d->sigint == NULL || d->drain_timer == NULL ||
        evsignal_add(d->sighup, NULL) == -1 || evsignal_add(d->sigterm, NULL) == -1 ||
        evsignal_add(d->sigint, NULL) == -1)
        return -1;
    if (sd_watchdog_enabled(0, &usec) > 0) {
        struct timeval tv = { (time_t)(usec / 2 / 1000000), (suseconds_t)(usec / 2 % 1000000) };
        d->watchdog = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
        if (d->watchdog == NULL || event_add(d->watchdog, &tv) == -1)
            return -1;
        log_info("watchdog: pinging every %.1fs", usec / 2e6);
    }
    return 0;
}

void loop_finalise(struct daemon *d)
{
    struct event **evs[] = { &d->sighup, &d->sigterm, &d->sigint, &d->watchdog, &d->drain_timer };

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (*evs[i]) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
}
