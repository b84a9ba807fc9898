/* The ledger: every attempt row this process writes goes through here (ledger.h). */
#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <syslog.h>

#include "db.h"
#include "ledger_sql.h"
#include "log.h"
#include "pgarray.h"

#define LEDGER_BATCH 500        /* entries per statement */
#define LEDGER_RETRIES 3        /* a race on one fact (23505) is written again, this often */
#define LEDGER_IN_FLIGHT 2      /* statements on their way; the rest wait here, in order, and
                                 * go in full batches (a database that is away costs memory per
                                 * entry, not per statement) */

struct entry {
    int64_t message_id;
    int step, try_no;
    enum channel_id channel;
    enum outcome outcome;
    char *detail, *address, *external_id, *sha, *claim, *fact, *refers;
    int has_advance;
    struct advance adv;
    char *adv_state, *adv_channel;
    int retries;
    ledger_done_fn done;
    void *arg;
    TAILQ_ENTRY(entry) link;
};

TAILQ_HEAD(entry_list, entry);

struct batch {
    struct ledger *l;
    struct entry_list entries;
};

struct ledger {
    struct db *db;
    char *instance, *chain;
    struct entry_list waiting;  /* not yet sent to the database */
    struct event *flush_ev;     /* sends them at the end of the loop turn */
    int pending;                /* waiting + on their way */
    int in_flight;              /* statements on their way */
    unsigned long lost;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void entry_free(struct entry *en)
{
    if (en == NULL)
        return;
    free(en->detail);
    free(en->address);
    free(en->external_id);
    free(en->sha);
    free(en->claim);
    free(en->fact);
    free(en->refers);
    free(en->adv_state);
    free(en->adv_channel);
    free(en);
}

static const char *entry_channel(const struct entry *en)
{
    return en->channel < CHANNEL_COUNT ? channel_name(en->channel) : "none";
}

/* The whole fact in the journal: an auditor can still reconstruct it from there. */
static void log_lost(struct ledger *l, const struct entry *en, const char *why)
{
    l->lost++;
    log_message(LOG_ERR, en->message_id,
                "UNRECORDED attempt (%s): message %" PRId64 " step %d %s %s external id %s: %s "
                "(%s)", why, en->message_id, en->step, entry_channel(en), outcome_name(en->outcome),
                en->external_id ? en->external_id : "-", en->detail ? en->detail : "",
                en->address ? en->address : "-");
}

/* An entry is finished: tell its owner and let it go. */
static void entry_done(struct ledger *l, struct entry *en, int recorded, int moved, int known)
{
    l->pending--;
    if (en->done)
        en->done(en->arg, recorded, moved, known);
    entry_free(en);
}

void ledger_write(struct ledger *l, const struct attempt *a, const struct advance *adv,
                  ledger_done_fn done, void *arg)
{
    struct entry *en = calloc(1, sizeof(*en));

    if (en == NULL)
        goto oom;
    en->message_id = a->message_id;
    en->step = a->step;
    en->try_no = a->try_no;
    en->channel = a->channel;
    en->outcome = a->outcome;
    en->done = done;
    en->arg = arg;
    if ((en->detail = strdup(a->detail ? a->detail : "")) == NULL ||
        (a->address && (en->address = strdup(a->address)) == NULL) ||
        (a->external_id && (en->external_id = strdup(a->external_id)) == NULL) ||
        (a->config_sha256 && (en->sha = strdup(a->config_sha256)) == NULL) ||
        (a->claim && (en->claim = strdup(a->claim)) == NULL) ||
        (a->fact && (en->fact = strdup(a->fact)) == NULL) ||
        (a->refers && (en->refers = strdup(a->refers)) == NULL))
        goto oom;
    if (adv) {
        en->has_advance = 1;
        en->adv = *adv;
        if ((en->adv_state = strdup(adv->state)) == NULL ||
            (en->adv_channel = dup_or_null(adv->channel)) == NULL)
            goto oom;
    }
    TAILQ_INSERT_TAIL(&l->waiting, en, link);
    l->pending++;
    event_active(l->flush_ev, 0, 0);
    return;
oom:
    entry_free(en);
    /* what the caller gave is enough to log the fact */
    struct entry shown = { .message_id = a->message_id, .step = a->step, .channel = a->channel,
                           .outcome = a->outcome, .detail = (char *)a->detail,
                           .address = (char *)a->address, .external_id = (char *)a->external_id };
    log_lost(l, &shown, "out of memory");
    if (done)
        done(arg, 0, 0, 0);
}

/* ---- writing batches ---- */

enum column {
    C_ID, C_STEP, C_TRY, C_CHANNEL, C_OUTCOME, C_DETAIL, C_ADDRESS, C_EXTERNAL, C_SHA, C_CLAIM,
    C_FACT, C_REFERS, C_NSTEP, C_NTRIES, C_NAT, C_NSTATE, C_NCHANNEL, C_COUNT
};

static void add_row(struct pg_array *col, const struct entry *en)
{
    char num[64];

#define ADD_NUM(c, fmt, v) (snprintf(num, sizeof(num), fmt, v), pg_array_add(&col[c], num))
    ADD_NUM(C_ID, "%" PRId64, en->message_id);
    ADD_NUM(C_STEP, "%d", en->step);
    if (en->try_no > 0)
        ADD_NUM(C_TRY, "%d", en->try_no);
    else
        pg_array_add(&col[C_TRY], NULL);
    pg_array_add(&col[C_CHANNEL], entry_channel(en));
    pg_array_add(&col[C_OUTCOME], outcome_name(en->outcome));
    pg_array_add(&col[C_DETAIL], en->detail);
    pg_array_add(&col[C_ADDRESS], en->address && *en->address ? en->address : NULL);
    pg_array_add(&col[C_EXTERNAL], en->external_id && *en->external_id ? en->external_id : NULL);
    pg_array_add(&col[C_SHA], en->sha);
    pg_array_add(&col[C_CLAIM], en->claim);
    pg_array_add(&col[C_FACT], en->fact);
    pg_array_add(&col[C_REFERS], en->refers);
    if (en->has_advance) {
        ADD_NUM(C_NSTEP, "%d", en->adv.step);
        ADD_NUM(C_NTRIES, "%d", en->adv.tries);
        ADD_NUM(C_NAT, "%.6f", en->adv.next_at);
        pg_array_add(&col[C_NSTATE], en->adv_state);
        pg_array_add(&col[C_NCHANNEL], en->adv_channel);
    } else {
        for (int c = C_NSTEP; c <= C_NCHANNEL; c++)
            pg_array_add(&col[c], NULL);
    }
#undef ADD_NUM
}

static int send_batch(struct ledger *l, struct batch *b);

/* SQLSTATE 23505: another writer recorded the same fact in the same moment. Writing again
 * finds it recorded and skips it. */
static int is_fact_race(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return state && strcmp(state, "23505") == 0;
}

static void batch_written(PGresult *res, void *arg)
{
    struct batch *b = arg;
    struct ledger *l = b->l;
    struct entry *en;
    int row = 0;

    if (res && !db_result_ok(res) && is_fact_race(res) &&
        TAILQ_FIRST(&b->entries)->retries < LEDGER_RETRIES) {
        TAILQ_FIRST(&b->entries)->retries++;
        log_info("ledger: another writer recorded one of %s facts at the same moment; writing "
                 "again", "these");
        if (send_batch(l, b) == 0)
            return;
        res = NULL;     /* could not even queue it: fall through and log every entry */
    }
    if (res && !db_result_ok(res))
        log_err("ledger: writing attempts failed: %s", PQresultErrorMessage(res));
    while ((en = TAILQ_FIRST(&b->entries)) != NULL) {
        TAILQ_REMOVE(&b->entries, en, link);
        if (res == NULL)
            log_lost(l, en, "database unavailable");
        else if (!db_result_ok(res))
            log_lost(l, en, "database refused it");
        if (db_result_ok(res) && row < PQntuples(res))
            entry_done(l, en, 1, strcmp(PQgetvalue(res, row, 0), "t") == 0,
                       strcmp(PQgetvalue(res, row, 1), "t") == 0);
        else
            entry_done(l, en, 0, 0, 0);
        row++;
    }
    free(b);
    l->in_flight--;
    if (!TAILQ_EMPTY(&l->waiting))
        event_active(l->flush_ev, 0, 0);
}

/* The batch's entries as one statement on the database queue. -1: out of memory. */
static int send_batch(struct ledger *l, struct batch *b)
{
    struct pg_array col[C_COUNT];
    const char *params[2 + C_COUNT] = { l->instance, l->chain };
    char *text[C_COUNT];
    struct entry *en;
    int complete = 1;

    for (int c = 0; c < C_COUNT; c++)
        pg_array_open(&col[c]);
    TAILQ_FOREACH(en, &b->entries, link)
        add_row(col, en);
    for (int c = 0; c < C_COUNT; c++)
        complete &= (params[2 + c] = text[c] = pg_array_close(&col[c])) != NULL;
    if (complete)
        db_query(l->db, DB_KEEP | DB_LEDGER, SQL_LEDGER_WRITE, 2 + C_COUNT, params, batch_written, b);
    for (int c = 0; c < C_COUNT; c++)
        free(text[c]);
    return complete ? 0 : -1;
}

void ledger_flush(struct ledger *l)
{
    while (!TAILQ_EMPTY(&l->waiting) && l->in_flight < LEDGER_IN_FLIGHT) {
        struct batch *b = calloc(1, sizeof(*b));
        struct entry *en;
        int n = 0;

        if (b == NULL) {
            event_active(l->flush_ev, 0, 0);    /* out of memory: next turn */
            return;
        }
        b->l = l;
        TAILQ_INIT(&b->entries);
        /* a report goes in a later statement than any send before it (the send it names must
         * be committed when the report looks for it); reports may share one */
        int sends = 0;
        while ((en = TAILQ_FIRST(&l->waiting)) != NULL && n < LEDGER_BATCH &&
               !(sends > 0 && en->refers)) {
            TAILQ_REMOVE(&l->waiting, en, link);
            TAILQ_INSERT_TAIL(&b->entries, en, link);
            sends += en->refers == NULL;
            n++;
        }
        l->in_flight++;
        if (send_batch(l, b) == -1) {
            l->in_flight--;
            /* put them back in front, in order, and try next turn */
            while ((en = TAILQ_LAST(&b->entries, entry_list)) != NULL) {
                TAILQ_REMOVE(&b->entries, en, link);
                TAILQ_INSERT_HEAD(&l->waiting, en, link);
            }
            free(b);
            event_active(l->flush_ev, 0, 0);
            return;
        }
    }
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ledger_flush(arg);
}

struct ledger *ledger_new(struct event_base *base, struct db *db, const char *instance,
                          const char *chain)
{
    struct ledger *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->db = db;
    TAILQ_INIT(&l->waiting);
    if ((l->instance = strdup(instance)) == NULL || (l->chain = strdup(chain)) == NULL ||
        (l->flush_ev = event_new(base, -1, 0, flush_cb, l)) == NULL) {
        ledger_free(l);
        return NULL;
    }
    return l;
}

int ledger_pending(const struct ledger *l)
{
    return l->pending;
}

unsigned long ledger_lost(const struct ledger *l)
{
    return l->lost;
}

const char *ledger_chain(const struct ledger *l)
{
    return l->chain;
}

unsigned long ledger_free(struct ledger *l)
{
    struct entry *en;
    unsigned long lost;

    if (l == NULL)
        return 0;
    while ((en = TAILQ_FIRST(&l->waiting)) != NULL) {
        TAILQ_REMOVE(&l->waiting, en, link);
        log_lost(l, en, "stopped before it was written");
        entry_done(l, en, 0, 0, 0);
    }
    if (l->flush_ev)
        event_free(l->flush_ev);
    lost = l->lost;
    free(l->instance);
    free(l->chain);
    free(l);
    return lost;
}
