/* The checkpoint timer: one query per interval, the line to the journal with a fixed
 * MESSAGE_ID (`journalctl MESSAGE_ID=...` lists every checkpoint), never two at once. */
#include "checkpoint.h"

#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "db.h"
#include "log.h"

/* journalctl MESSAGE_ID=... finds them all; the auditors' copy of the chain heads */
#define CHECKPOINT_MESSAGE_ID "4841786c51c447318faa6fda1bdd26db"

#define FIRST_AFTER 60      /* seconds from start to the first checkpoint, at most */

struct checkpoint {
    struct db *db;
    struct event *timer;
    long interval;
    char *writer;
    int pending;        /* a query is queued or running */
};

static void written(PGresult *res, void *arg)
{
    struct checkpoint *cp = arg;

    cp->pending = 0;
    if (res == NULL)
        log_warn("audit checkpoint not written: no database connection");
    else if (!db_result_ok(res) || PQntuples(res) != 1)
        log_warn("audit checkpoint not written: %s", PQresultErrorMessage(res));
    else
        log_with_id(LOG_INFO, CHECKPOINT_MESSAGE_ID, PQgetvalue(res, 0, 0));
}

void checkpoint_now(struct checkpoint *cp)
{
    const char *params[1];

    if (cp == NULL || cp->pending)
        return;
    params[0] = cp->writer;
    cp->pending = 1;
    db_query(cp->db, 0, "SELECT herinnerd.write_checkpoint($1)", 1, params, written, cp);
}

static void arm(struct checkpoint *cp, long seconds)
{
    struct timeval tv = { .tv_sec = seconds };

    evtimer_del(cp->timer);
    if (seconds > 0)
        evtimer_add(cp->timer, &tv);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    struct checkpoint *cp = arg;

    (void)fd;
    (void)what;
    checkpoint_now(cp);
    arm(cp, cp->interval);
}

void checkpoint_set_interval(struct checkpoint *cp, long interval)
{
    cp->interval = interval;
    arm(cp, interval);
}

struct checkpoint *checkpoint_new(struct event_base *base, struct db *db, long interval,
                                  const char *writer)
{
    struct checkpoint *cp = calloc(1, sizeof(*cp));

    if (cp == NULL || (cp->writer = strdup(writer)) == NULL ||
        (cp->timer = evtimer_new(base, tick, cp)) == NULL) {
        checkpoint_free(cp);
        return NULL;
    }
    cp->db = db;
    /* the first soon, so that a process restarted more often than the interval is anchored too */
    cp->interval = interval;
    arm(cp, interval < FIRST_AFTER ? interval : FIRST_AFTER);
    return cp;
}

void checkpoint_free(struct checkpoint *cp)
{
    if (cp == NULL)
        return;
    if (cp->timer)
        event_free(cp->timer);
    free(cp->writer);
    free(cp);
}
