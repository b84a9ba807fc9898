/* Is the database's schema the one this herinnerd needs (SCHEMA_VERSION)? Checked after every
 * connect, before the engine starts; while it is not, the daemon is not ready (no READY=1,
 * /healthz 503, STATUS= and the log say "run herinnerctl db upgrade") and the check repeats, so
 * an upgrade makes it ready without a restart. The same query sets the session's time zone, so
 * times the database formats (attempt details) are in the zone people read. */
#ifndef HERINNERD_SCHEMA_H
#define HERINNERD_SCHEMA_H

#include <event2/event.h>

struct db;
struct schema;

/* Called when the schema becomes right (schema_ok) or a new problem is found. */
typedef void (*schema_changed_fn)(void *arg);

struct schema *schema_new(struct event_base *base, struct db *db, schema_changed_fn changed,
                          void *arg);
void schema_free(struct schema *s);
/* Connected: check now (and again every few seconds until the schema is right), in zone TZ
 * (NULL: the host's). */
void schema_check(struct schema *s, const char *tz);
/* A reload changed the config's time zone: use TZ (NULL: the host's) on this connection now
 * and after every reconnect. */
void schema_set_timezone(struct schema *s, const char *tz);
/* The connection went away: nothing is known until the next check. */
void schema_lost(struct schema *s);
int schema_ok(const struct schema *s);
/* What is wrong, for STATUS= and /healthz; NULL while checking or when the schema is right. */
const char *schema_problem(const struct schema *s);

#endif
