#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"
#include "log.h"
#include "schema_version.h"
#include "tzname.h"

#define RECHECK_SECONDS 5

/* herinnerctl db upgrade applies the files in order and stops at the first that fails, so the
 * highest version applied says it all. A newer database is fine (upgrade the schema first, then
 * the daemons). set_config comes first in the select list: it runs even without a schema.
 * JIT is off for the daemon's sessions: its statements touch a few hundred rows by key, but at
 * millions of rows the planner's estimates pass jit_above_cost, and compiling costs 20-30 ms a
 * statement, more than the statement itself (issue 7). */
#define SQL_SCHEMA_CHECK \
    "SELECT CASE WHEN $1::text IS NULL THEN '' ELSE set_config('TimeZone', $1, false) END," \
    "       set_config('jit', 'off', false)," \
    "       coalesce(max(version), 0) FROM herinnerd.schema_version"

struct schema {
    struct db *db;
    struct event *timer;
    schema_changed_fn changed;
    void *arg;
    char *tz;
    int ok;
    int checking;
    char problem[256];
};

static void check_done(PGresult *res, void *arg);

static void send_check(struct schema *s)
{
    const char *params[] = { s->tz };

    s->checking = 1;
    db_query(s->db, DB_EVERY, SQL_SCHEMA_CHECK, 1, params, check_done, s);
}

static void recheck_cb(evutil_socket_t fd, short what, void *arg)
{
    struct schema *s = arg;

    (void)fd;
    (void)what;
    if (!s->ok && !s->checking && db_connected(s->db))
        send_check(s);
}

/* Log a problem once, not every few seconds, and tell the owner (STATUS=). */
static void new_problem(struct schema *s, const char *text)
{
    if (strcmp(text, s->problem) == 0)
        return;
    log_err("%s", text);
    snprintf(s->problem, sizeof(s->problem), "%s", text);
    s->changed(s->arg);
}

static void set_problem(struct schema *s, const char *fmt, int have)
{
    char text[sizeof(s->problem)];

    snprintf(text, sizeof(text), fmt, have, SCHEMA_VERSION);
    new_problem(s, text);
}

static void check_done(PGresult *res, void *arg)
{
    struct schema *s = arg;
    struct timeval again = { RECHECK_SECONDS, 0 };

    s->checking = 0;
    if (res == NULL)
        return;                 /* the connection went; the next connect checks again */
    if (!db_result_ok(res)) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        /* 3F000 no such schema, 42P01 no such table */
        if (state && (strcmp(state, "3F000") == 0 || strcmp(state, "42P01") == 0))
            set_problem(s, "the database has no herinnerd schema (version %d, this herinnerd "
                           "needs %d): run herinnerctl db upgrade", 0);
        else {
            char text[sizeof(s->problem)];
            snprintf(text, sizeof(text), "cannot read the schema version: %s",
                     PQresultErrorMessage(res));
            text[strcspn(text, "\n")] = '\0';
            new_problem(s, text);
        }
        evtimer_add(s->timer, &again);
        return;
    }
    int have = atoi(PQgetvalue(res, 0, 2));
    if (have < SCHEMA_VERSION) {
        set_problem(s, "the database schema is at version %d, this herinnerd needs %d: run "
                       "herinnerctl db upgrade", have);
        evtimer_add(s->timer, &again);
        return;
    }
    if (s->problem[0])
        log_info("database schema now at version %d", have);
    if (have > SCHEMA_VERSION)
        log_info("database schema at version %d, newer than this herinnerd's %d", have,
                 SCHEMA_VERSION);
    s->problem[0] = '\0';
    s->ok = 1;
    s->changed(s->arg);
}

struct schema *schema_new(struct event_base *base, struct db *db, schema_changed_fn changed,
                          void *arg)
{
    struct schema *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->db = db;
    s->changed = changed;
    s->arg = arg;
    if ((s->timer = evtimer_new(base, recheck_cb, s)) == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

void schema_free(struct schema *s)
{
    if (s == NULL)
        return;
    event_free(s->timer);
    free(s->tz);
    free(s);
}

static void remember_zone(struct schema *s, const char *tz)
{
    char buf[256];
    const char *name = tz_name(tz, buf, sizeof(buf));

    free(s->tz);
    s->tz = name ? strdup(name) : NULL;
}

static void zone_set(PGresult *res, void *arg)
{
    (void)arg;
    if (res && !db_result_ok(res))
        log_warn("setting the database session's time zone failed: %s",
                 PQresultErrorMessage(res));
}

void schema_set_timezone(struct schema *s, const char *tz)
{
    remember_zone(s, tz);
    if (s->tz && db_connected(s->db)) {
        const char *params[] = { s->tz };
        db_query(s->db, DB_EVERY, "SELECT set_config('TimeZone', $1, false)", 1, params, zone_set, s);
    }
}

void schema_check(struct schema *s, const char *tz)
{
    remember_zone(s, tz);
    s->ok = 0;
    evtimer_del(s->timer);
    if (!s->checking)
        send_check(s);
}

void schema_lost(struct schema *s)
{
    s->ok = 0;
    evtimer_del(s->timer);
}

int schema_ok(const struct schema *s)
{
    return s && s->ok;
}

const char *schema_problem(const struct schema *s)
{
    return s && !s->ok && s->problem[0] ? s->problem : NULL;
}
