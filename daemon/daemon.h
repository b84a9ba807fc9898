/* The one daemon struct: everything the event loop owns. No other global mutable state. */
#ifndef HERINNERD_DAEMON_H
#define HERINNERD_DAEMON_H

#include <event2/event.h>

#include "channels/channel.h"
#include "config.h"

struct checkpoint;
struct db;
struct engine;
struct http;
struct ledger;
struct metrics;
struct schema;

/* Configurations loaded during this run, newest first: escalations frozen under an older one
 * keep its policy until they finish. */
struct config_entry {
    struct config *cfg;
    struct config_entry *next;
};

struct daemon {
    struct event_base *base;
    const char *config_path;
    struct config *cfg;                 /* current: the head of `configs` */
    struct config_entry *configs;
    struct db *db;
    struct schema *schema;             /* is the database's schema the one we need? */
    struct engine *engine;
    struct ledger *ledger;             /* the only writer of attempts */
    char token[40];                    /* this process: its claims and its audit chain */
    struct http *http;
    struct metrics *metrics;
    struct checkpoint *checkpoint;      /* audit checkpoints on a timer */
    const struct channel_ops *channel_ops[CHANNEL_COUNT];
    void *channel_state[CHANNEL_COUNT];
    struct event *sighup, *sigterm, *sigint, *watchdog, *drain_timer;
    int ready_sent;
    int draining;
    int exit_code;
};

/* The config with this SHA-256, if it was loaded during this run. */
const struct config *daemon_config_by_sha(const struct daemon *d, const char *sha256);
/* Tell systemd (and operators) how things stand: STATUS= with counts. */
void daemon_update_status(struct daemon *d);
/* Called by the engine once the database is connected and listening. */
void daemon_database_ready(struct daemon *d);
/* Make CFG the current config (and the process's time zone); older ones stay for frozen policies. */
int daemon_push_config(struct daemon *d, struct config *cfg);
/* Start the channels the current config enables (at start-up). */
int daemon_start_channels(struct daemon *d);
/* Apply CFG to the running daemon, all or nothing; -1 (ERR says why): nothing changed. */
int daemon_reload(struct daemon *d, struct config *cfg, char *err, size_t errlen);
/* Called when the last in-flight work is done during a drain. */
void daemon_check_drained(struct daemon *d);

#endif
