/* herinnerctl paper handover: the daily cut-off, now. Safe while the daemon runs: the spool's
 * lock orders the moves, each letter is reported by exactly one hand-over, and the records use
 * daemon's own ledger statement and letter update (idempotent, keyed by the move's fact). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "ctl.h"
#include "paper_sql.h"
#include "spool.h"

struct moved {
    int64_t message_id;
    int step;
    char *path;
};

struct moved_list {
    struct moved *v;
    size_t n, cap;
    int oom;
};

static void collect(int64_t message_id, int step, const char *path, void *arg)
{
    struct moved_list *l = arg;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct moved *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            l->oom = 1;
            fprintf(stderr, "herinnerctl: out of memory: %s handed over, not recorded\n", path);
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (struct moved){ message_id, step, strdup(path) };
}

/* Record one hand-over; 0 or -1 (with the reason on stderr). */
static int record(PGconn *conn, const struct config *cfg, const struct moved *m,
                  const char *detail)
{
    char id[32], step[16], fact[96];

    snprintf(id, sizeof(id), "%" PRId64, m->message_id);
    snprintf(step, sizeof(step), "%d", m->step);
    snprintf(fact, sizeof(fact), PAPER_MOVE_FACT, m->message_id, m->step, "handed-over");
    struct ctl_attempt at = { .message_id = m->message_id, .step = m->step, .channel = "paper",
                              .outcome = "handed-over", .detail = detail, .address = m->path,
                              .fact = fact };
    /* the fact first, then the letter's row (as the daemon does) */
    if (ctl_record_attempt(conn, cfg->instance, &at) == -1)
        return -1;
    /* a letter naming several messages: each of the others has the hand-over on record too */
    const char *lookup[] = { id, step };
    PGresult *others = PQexecParams(conn, SQL_PAPER_MEMBERS, 2, NULL, lookup, NULL, NULL, 0);
    if (PQresultStatus(others) != PGRES_TUPLES_OK) {
        fprintf(stderr, "herinnerctl: looking for the other messages of %s failed: %s", m->path,
                PQresultErrorMessage(others));
        PQclear(others);
        return -1;
    }
    for (int i = 0; i < PQntuples(others); i++) {
        int64_t other = strtoll(PQgetvalue(others, i, 0), NULL, 10);
        int other_step = atoi(PQgetvalue(others, i, 1));
        snprintf(fact, sizeof(fact), PAPER_MOVE_FACT, other, other_step, "handed-over");
        at.message_id = other;
        at.step = other_step;
        if (ctl_record_attempt(conn, cfg->instance, &at) == -1) {
            PQclear(others);
            return -1;
        }
    }
    PQclear(others);
    const char *params[] = { id, step, "handed-over", m->path };
    PGresult *r = PQexecParams(conn, SQL_PAPER_MOVED, 4, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "herinnerctl: recording %s failed: %s", m->path ? m->path : "?",
                PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

int ctl_paper_handover(const struct ctl *ctl)
{
    struct config *cfg = ctl_load_config(ctl);
    struct moved_list moved = { 0 };
    PGconn *conn = NULL;
    char date[16], detail[128], err[512] = "";
    int rc = 1, n = 0, failed = 0;

    if (cfg == NULL)
        return 1;
    if (!cfg->paper.enabled) {
        fprintf(stderr, "herinnerctl: %s has no paper section\n", ctl->config_path);
        goto out;
    }
    /* the date directory is the local date in the config's time zone, as in the daemon */
    if (cfg->timezone)
        setenv("TZ", cfg->timezone, 1);
    tzset();
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d", &tm);

    /* connect first: letters are moved only when their moves can be recorded */
    if ((conn = ctl_connect(ctl)) == NULL)
        goto out;
    int hrc = spool_handover(cfg->paper.spool, date, collect, &moved, &n, err, sizeof(err));
    if (hrc != SPOOL_OK)
        fprintf(stderr, "herinnerctl: hand-over of %s: %s\n", date, err);
    snprintf(detail, sizeof(detail), "handed over to the print house on %s", date);
    for (size_t i = 0; i < moved.n; i++)
        if (moved.v[i].path == NULL || record(conn, cfg, &moved.v[i], detail) == -1)
            failed++;
    printf("%s/handed-over/%s: %d letters handed over, %zu recorded%s\n", cfg->paper.spool, date,
           n, moved.n - failed, failed || moved.oom ? " (SOME NOT RECORDED: see above; the "
           "daemon records them when it restarts)" : "");
    rc = hrc == SPOOL_OK && !failed && !moved.oom ? 0 : 1;
out:
    for (size_t i = 0; i < moved.n; i++)
        free(moved.v[i].path);
    free(moved.v);
    if (conn)
        PQfinish(conn);
    config_free(cfg);
    return rc;
}
