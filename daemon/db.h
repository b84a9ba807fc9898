/* The daemon's database: three non-blocking libpq connections driven by the event loop (one for
 * LISTEN and slow work, one for the statements that move escalations, one for the ledger), each with a FIFO of
 * queries, and reconnection with backoff when the server goes away. */
#ifndef HERINNERD_DB_H
#define HERINNERD_DB_H

#include <event2/event.h>
#include <libpq-fe.h>

struct db;

/* RES is NULL when the query could not run (no connection); the callback must not PQclear it. */
typedef void (*db_result_fn)(PGresult *res, void *arg);

struct db_events {
    void (*connected)(void *arg);         /* connected and LISTENing */
    void (*disconnected)(void *arg);
    void (*notify)(const char *channel, const char *payload, void *arg);
    void *arg;
};

/* Queries flagged DB_KEEP survive a lost connection: they are run again after reconnecting, so
 * they must be idempotent. Others fail with RES == NULL. */
#define DB_KEEP 1
/* Short statements that move escalations (claims, renewals, next due, ledger writes, a message
 * read): they run on their own connection, so slow work (adoption, /metrics, mark-read-all,
 * config storage) never waits in front of them. Urgent queries keep their order among
 * themselves, not with the others. */
#define DB_URGENT 2
/* Session settings (set_config): run on every connection; the callback hears the main one. */
#define DB_EVERY 4
/* The ledger's writes: a connection of their own, in their order (they touch only rows their
 * claims hold, so they need no order with the claims); the claim that follows a batch of
 * outcomes runs next to their write, not after it. */
#define DB_LEDGER 8

struct db *db_new(struct event_base *base, const char *conninfo, const char *listen_channel,
                  const struct db_events *events);
void db_start(struct db *db);
int db_connected(const struct db *db);
/* Use CONNINFO from the next connection on (reload). */
int db_set_conninfo(struct db *db, const char *conninfo);
/* Queue a query with text parameters (NULL = SQL NULL). The strings are copied. */
int db_query(struct db *db, int flags, const char *sql, int nparams, const char *const *params,
             db_result_fn fn, void *arg);
/* Queries queued or running. */
int db_queued(const struct db *db);
void db_free(struct db *db);

/* A result is an error because the connection broke (retryable), not because of the SQL. */
int db_result_ok(const PGresult *res);

#endif
