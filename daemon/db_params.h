/* What every daemon connection is opened with: the operator's conninfo as libpq keywords, plus
 * defaults for what it leaves unset (statement/lock/connect timeouts, TCP keepalives,
 * application_name), and host names turned into addresses before libpq sees them, so libpq
 * never resolves a name on the event loop. No loop, no I/O: unit-tested. */
#ifndef HERINNERD_DB_PARAMS_H
#define HERINNERD_DB_PARAMS_H

#include <stddef.h>

/* The defaults; a conninfo (or PG* environment variable) that sets the key wins. */
#define DB_STATEMENT_TIMEOUT "30s"
#define DB_LOCK_TIMEOUT "5s"
#define DB_CONNECT_TIMEOUT "10"
#define DB_KEEPALIVES_IDLE "30"
#define DB_KEEPALIVES_INTERVAL "10"
#define DB_KEEPALIVES_COUNT "3"
#define DB_APPLICATION_NAME "herinnerd"

struct db_params {
    int n;
    const char **keywords;      /* NULL-terminated, for PQconnectStartParams */
    const char **values;
};

/* NULL with *ERR (malloc'd) when the conninfo does not parse. */
struct db_params *db_params_new(const char *conninfo, char **err);
void db_params_free(struct db_params *p);
const char *db_params_get(const struct db_params *p, const char *key);
/* Replace or add KEY (VALUE copied). -1: out of memory. */
int db_params_set(struct db_params *p, const char *key, const char *value);

/* The host list to resolve before connecting, or NULL: none set, hostaddr already given, or only
 * socket directories. */
const char *db_params_hosts(const struct db_params *p);

/* Up to MAX numeric addresses for NAME, in the order to try; 0: none (OUT unused). */
#define DB_ADDR_MAX 8
typedef int (*db_lookup_fn)(const char *name, char out[][64], int max);
int db_lookup_getaddrinfo(const char *name, char out[][64], int max);

/* Turn host (and port, when it is a list of the same length) into parallel host/hostaddr/port
 * lists, one entry per address: libpq keeps `host` for TLS (SNI, verify-full) and connects to
 * `hostaddr`. Names that do not resolve are left out (logged by the caller from *SKIPPED);
 * socket directories keep an empty hostaddr. Returns 0, or -1 when nothing is left (*ERR). All
 * outputs are malloc'd. */
struct db_hosts {
    char *host, *hostaddr, *port;   /* port NULL: keep the conninfo's */
    char *skipped;                  /* names that did not resolve, or NULL */
};
int db_hosts_resolve(const char *host, const char *port, db_lookup_fn lookup,
                     struct db_hosts *out, char **err);
void db_hosts_clear(struct db_hosts *h);

#endif
