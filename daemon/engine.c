/* The escalation engine. All of it runs on the loop; the database arbitrates between instances.
 *
 *   notify/connect -> adopt -> arm timer -> claim -> dispatch -> channel -> ledger -> arm timer
 *
 * A job's state is the list it is on (pgbouncer's objects.c): `in_flight` from its claim until
 * its channel is done with it, `recording` until the ledger has written its outcome. Every job
 * belongs to a claim; a claim's lease is renewed while any of its jobs is on either list.
 *
 * One notice per person (a policy's `bundle`): a claimed job ready for its channel first asks
 * SQL_BUNDLE for the recipient's other steps on that channel due soon, under the same claim; the
 * leading job carries them as members, and its outcome becomes each member's attempt row. */
#include "engine.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <syslog.h>
#include <time.h>

#include "daemon.h"
#include "db.h"
#include "engine_sql.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "pgarray.h"
#include "policy.h"
#include "template.h"

#define MAX_IN_FLIGHT 4000      /* jobs on both lists together */
#define DEFAULT_ROOM 16         /* a channel that says nothing of its capacity */
#define SANE_PAST (946684800.0) /* 2000-01-01: an inbox message is never older */
#define SANE_FUTURE_YEARS 20    /* ...nor due further ahead than this */

/* One claim: the token every write under it carries, and how many of its jobs are not recorded. */
struct claim {
    char token[96];
    int outstanding;
    TAILQ_ENTRY(claim) link;
};

TAILQ_HEAD(job_list, send_job);
TAILQ_HEAD(claim_list, claim);

#define LOST_CLAIMS_MAX 16

struct engine {
    struct daemon *d;
    struct event *due_timer;
    struct event *rearm_ev;        /* coalesces "work out the next due time" requests */
    struct event *renew_timer;
    int adopting, adopt_again;
    struct plan_batch *adopting_batch;
    int planning;                  /* plan batches alive (taken or planned, not yet written) */
    int marking, mark_again;
    int claiming, throttled;       /* a claim is running; claims wait for room */
    int rearming, rearm_again;
    int renewing;
    int bundling;                  /* bundle statements under way (their jobs wait for them) */
    int draining, stopping;
    double clock_skew;             /* database now() minus our clock */
    int idle_claims;               /* consecutive claims that found nothing */
    double due_at;                 /* when due_timer fires (CLOCK_MONOTONIC), while pending */
    double empty_claim_sent;       /* when the last claim that found nothing went out (db clock) */
    unsigned long claims_made;
    struct job_list in_flight, recording;
    int n_in_flight, n_recording;
    int per_channel[CHANNEL_COUNT];   /* jobs in flight per channel */
    struct claim_list claims;
    unsigned long unfinished_at_exit;
    /* claim and adoption tokens whose statement lost its connection: returned on reconnect */
    char lost[LOST_CLAIMS_MAX][96];
    int nlost, returning;
};

/* A claim or adoption statement whose answer never came (RES NULL: the connection was lost):
 * it may have committed. Remember its token for the next connection. */
static void claim_lost(struct engine *e, const char *token)
{
    if (e->nlost == LOST_CLAIMS_MAX) {
        log_warn("claim %s lost with its connection: its rows wait for their lease to run out",
                 token);
        return;
    }
    snprintf(e->lost[e->nlost++], sizeof(e->lost[0]), "%s", token);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

double engine_now(const struct engine *e)
{
    return wall_now() + e->clock_skew;
}

static void learn_clock(struct engine *e, const char *db_now)
{
    if (db_now && *db_now)
        e->clock_skew = strtod(db_now, NULL) - wall_now();
}

static double field_time(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NO_TIME : strtod(PQgetvalue(res, row, col), NULL);
}

static char *field_dup(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

static void schedule_rearm(struct engine *e)
{
    event_active(e->rearm_ev, 0, 0);
}

static void claim(struct engine *e);

/* A message time we can plan with: finite and within an inbox's lifetime. NO_TIME is "none". */
static int time_sane(double t, double now)
{
    return t == NO_TIME ||
           (isfinite(t) && t >= SANE_PAST && t <= now + SANE_FUTURE_YEARS * 366 * 86400.0);
}

/* ---- adoption ---- */

static void adopt(struct engine *e);

/* The first due time and channel of a new escalation. A message that cannot be planned (no
 * policy, times out of range) is due now: its claim records why, and ends it. */
static void plan_first(const struct policy *po, double created, double due, double now,
                       double *at, const char **channel)
{
    *at = now;
    *channel = "";
    if (po == NULL || !time_sane(created, now) || !time_sane(due, now))
        return;
    double t = policy_step_time(&po->steps[0], created, due, now);
    if (t != NO_TIME && isfinite(t))
        *at = t;
    *channel = channel_name(po->steps[0].channel);
}

/* A batch of escalations held (under one claim) for planning: the plan goes to the database in
 * one statement, fenced by that claim. */
struct plan_batch {
    struct engine *e;
    struct pg_array ids, policies, times, channels;
    int n, unplanned;
    int again;                  /* adoption: the queue may hold more */
    char claim[96];
};

static struct plan_batch *plan_open(struct engine *e, const char *claim)
{
    struct plan_batch *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    b->e = e;
    e->planning++;
    snprintf(b->claim, sizeof(b->claim), "%s", claim);
    pg_array_open(&b->ids);
    pg_array_open(&b->policies);
    pg_array_open(&b->times);
    pg_array_open(&b->channels);
    return b;
}

/* Plan the message in row I of RES (columns id, kind, created, due, now). */
static void plan_add(struct plan_batch *b, const PGresult *res, int i, int c_id, int c_kind,
                     int c_created, int c_due, int c_now)
{
    struct engine *e = b->e;
    const struct policy *po = config_policy_for_kind(e->d->cfg, PQgetvalue(res, i, c_kind));
    double now = strtod(PQgetvalue(res, i, c_now), NULL), at;
    const char *channel;
    char t[64];

    learn_clock(e, PQgetvalue(res, i, c_now));
    plan_first(po, field_time(res, i, c_created), field_time(res, i, c_due), now, &at, &channel);
    b->unplanned += *channel == '\0';
    snprintf(t, sizeof(t), "%.6f", at);
    pg_array_add(&b->ids, PQgetvalue(res, i, c_id));
    pg_array_add(&b->policies, po ? po->name : "");
    pg_array_add(&b->times, t);
    pg_array_add(&b->channels, channel);
    b->n++;
}

static void planned(PGresult *res, void *arg)
{
    struct plan_batch *b = arg;
    struct engine *e = b->e;

    if (!db_result_ok(res)) {
        /* the claim runs out and the next claim plans them again */
        if (res)
            log_err("planning %d new escalations failed: %s", b->n, PQresultErrorMessage(res));
        b->again = 0;
    }
    e->planning--;
    int again = b->again, was_adoption = e->adopting_batch == b;
    /* a batch that found nothing to plan (or failed) never closed its arrays */
    pg_array_discard(&b->ids);
    pg_array_discard(&b->policies);
    pg_array_discard(&b->times);
    pg_array_discard(&b->channels);
    free(b);
    if (was_adoption) {
        e->adopting_batch = NULL;
        e->adopting = 0;
        if (again)
            e->adopt_again = 1;
        if (e->adopt_again) {
            e->adopt_again = 0;
            adopt(e);
        }
    }
    schedule_rearm(e);
    if (e->draining)
        daemon_check_drained(e->d);
}

/* Send the batch's plan (and free it when done). */
static void plan_close(struct plan_batch *b)
{
    struct engine *e = b->e;
    char *ids = pg_array_close(&b->ids), *policies = pg_array_close(&b->policies),
         *times = pg_array_close(&b->times), *channels = pg_array_close(&b->channels);

    if (ids && policies && times && channels) {
        const char *params[] = { b->claim, e->d->cfg->sha256, ids, policies, times, channels };
        log_info("adopting %d unread messages%s", b->n,
                 b->unplanned ? " (some cannot be planned: their attempts say why)" : "");
        db_query(e->d->db, DB_KEEP, SQL_ADOPT_PLAN, 6, params, planned, b);
    } else {
        log_err("out of memory planning new escalations; their claim runs out and they are "
                "planned then");
        planned(NULL, b);
    }
    free(ids);
    free(policies);
    free(times);
    free(channels);
}

static void adopt_taken(PGresult *res, void *arg)
{
    struct plan_batch *b = arg;
    int rows;

    if (!db_result_ok(res)) {
        if (res)
            log_err("taking new messages failed: %s", PQresultErrorMessage(res));
        else
            claim_lost(b->e, b->claim);
        planned(NULL, b);
        return;
    }
    rows = PQntuples(res);
    /* a full batch taken means there may be more: go round again after this one */
    b->again = rows > 0 ? atoi(PQgetvalue(res, 0, 5)) >= ADOPT_BATCH
                        : 0;
    for (int i = 0; i < rows; i++)
        plan_add(b, res, i, 0, 1, 2, 3, 4);
    if (b->n == 0) {
        planned(res, b);
        return;
    }
    plan_close(b);
}

static void adopt(struct engine *e)
{
    char token[96], lease[32];

    if (e->adopting) {
        e->adopt_again = 1;
        return;
    }
    if (!db_connected(e->d->db) || e->draining)
        return;
    snprintf(token, sizeof(token), ADOPT_CLAIM_PREFIX "%s.%lu", e->d->token, ++e->claims_made);
    struct plan_batch *b = plan_open(e, token);
    if (b == NULL)
        return;
    snprintf(lease, sizeof(lease), "%ld", e->d->cfg->lease);
    const char *params[] = { token, e->d->cfg->instance, lease };
    e->adopting = 1;
    e->adopting_batch = b;
    db_query(e->d->db, 0, SQL_ADOPT_TAKE, 3, params, adopt_taken, b);
}

/* ---- read messages ---- */

static void mark_read(struct engine *e);

static void marked_read(PGresult *res, void *arg)
{
    struct engine *e = arg;
    int rows;

    e->marking = 0;
    if (!db_result_ok(res)) {
        if (res)
            log_err("stopping escalations of read messages failed: %s", PQresultErrorMessage(res));
        return;
    }
    rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 0))
            continue;
        int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        e->d->metrics->read_stops++;
        metrics_attempt(e->d->metrics, CHANNEL_NULL, OUTCOME_SKIPPED);
        log_message(LOG_INFO, id, "message %" PRId64 " read at %s: escalation stopped before "
                    "step %s", id, PQgetvalue(res, i, 2), PQgetvalue(res, i, 1));
    }
    daemon_update_status(e->d);
    /* a full batch of read events: there may be more */
    if (e->mark_again || (rows > 0 && atoi(PQgetvalue(res, rows - 1, 5)) >= READ_BATCH)) {
        e->mark_again = 0;
        mark_read(e);
    }
}

static void mark_read(struct engine *e)
{
    struct daemon *d = e->d;
    const char *params[] = { d->cfg->instance, ledger_chain(d->ledger) };

    if (e->marking) {
        e->mark_again = 1;
        return;
    }
    if (!db_connected(d->db))
        return;
    e->marking = 1;
    /* the read->stopped path: a bounded batch from the read queue, on the urgent lane */
    db_query(d->db, DB_URGENT, SQL_MARK_READ, 2, params, marked_read, e);
    /* a letter may wait for the cut-off long after its escalation ended */
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        if (d->channel_state[ch] && d->channel_ops[ch]->message_read)
            d->channel_ops[ch]->message_read(d->channel_state[ch], NULL);
}

/* ---- the due timer ---- */

static void due_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    claim(arg);
}

/* Claim in DELAY seconds, unless the timer is set to fire sooner already: re-arming on every
 * adoption batch or outcome must not push a wake-up further out (with a steady stream of them
 * it would never fire). Firing early costs one claim. */
static void arm_due(struct engine *e, double delay)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    double at = ts.tv_sec + ts.tv_nsec / 1e9 + delay;
    if (evtimer_pending(e->due_timer, NULL) && e->due_at <= at)
        return;
    struct timeval tv = { (time_t)delay, (suseconds_t)((delay - floor(delay)) * 1e6) };
    e->due_at = at;
    evtimer_add(e->due_timer, &tv);
}

static void next_due_known(PGresult *res, void *arg)
{
    struct engine *e = arg;

    e->rearming = 0;
    /* something changed while we asked: the answer may be stale, ask again */
    if (e->rearm_again) {
        e->rearm_again = 0;
        schedule_rearm(e);
    }
    if (!db_result_ok(res) || PQntuples(res) != 1) {
        if (res)
            log_err("finding the next due time failed: %s", PQresultErrorMessage(res));
        return;
    }
    learn_clock(e, PQgetvalue(res, 0, 1));
    if (PQgetisnull(res, 0, 0) || e->throttled) {
        evtimer_del(e->due_timer);
        return;                 /* nothing active (a notification wakes us), or no room */
    }
    double delay = strtod(PQgetvalue(res, 0, 0), NULL);
    double next_at = strtod(PQgetvalue(res, 0, 1), NULL) + delay;
    /* due before our last claim went out, yet that claim found nothing: another instance's
     * claim holds those rows for a moment. Back off from them only; a row that was not due yet
     * (the claim ran a moment early) gets its own time */
    if (e->idle_claims > 0 && next_at <= e->empty_claim_sent)
        delay = fmax(delay, 0.01 * (1 << (e->idle_claims > 8 ? 8 : e->idle_claims)));
    if (delay < 0)
        delay = 0;
    if (delay > 86400)
        delay = 86400;
    arm_due(e, delay);
}

static void rearm_cb(evutil_socket_t fd, short what, void *arg)
{
    struct engine *e = arg;

    (void)fd;
    (void)what;
    if (e->rearming) {
        e->rearm_again = 1;
        return;
    }
    if (e->claiming || e->draining || !db_connected(e->d->db))
        return;                 /* the claim re-arms when it is done */
    e->rearming = 1;
    db_query(e->d->db, DB_URGENT, SQL_NEXT_DUE, 0, NULL, next_due_known, e);
}

/* ---- claims and their leases ---- */

static struct claim *claim_new(struct engine *e)
{
    struct claim *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    snprintf(c->token, sizeof(c->token), "%s.%lu", e->d->token, ++e->claims_made);
    TAILQ_INSERT_TAIL(&e->claims, c, link);
    return c;
}

static void claim_release(struct engine *e, struct claim *c)
{
    if (c && --c->outstanding <= 0) {
        TAILQ_REMOVE(&e->claims, c, link);
        free(c);
    }
}

static void renewed(PGresult *res, void *arg)
{
    struct engine *e = arg;

    e->renewing = 0;
    if (res && !db_result_ok(res))
        log_err("renewing our claims failed (they run out if this goes on): %s",
                PQresultErrorMessage(res));
}

/* Keep the claims of work still queued or in flight, well before their leases run out. */
static void renew_cb(evutil_socket_t fd, short what, void *arg)
{
    struct engine *e = arg;
    struct pg_array tokens;
    struct claim *c;
    char lease[32];

    (void)fd;
    (void)what;
    if (TAILQ_EMPTY(&e->claims) || e->renewing || !db_connected(e->d->db))
        return;
    pg_array_open(&tokens);
    TAILQ_FOREACH(c, &e->claims, link)
        pg_array_add(&tokens, c->token);
    char *list = pg_array_close(&tokens);
    if (list == NULL)
        return;
    snprintf(lease, sizeof(lease), "%ld", e->d->cfg->lease);
    const char *params[] = { list, lease };
    e->renewing = 1;
    db_query(e->d->db, DB_URGENT, SQL_RENEW, 2, params, renewed, e);
    free(list);
}

static void arm_renewal(struct engine *e)
{
    /* a third of the lease: two renewals may fail before a claim is at risk */
    double every = e->d->cfg->lease / 3.0;
    struct timeval tv = { (time_t)every, (suseconds_t)((every - floor(every)) * 1e6) };

    if (!evtimer_pending(e->renew_timer, NULL))
        event_add(e->renew_timer, &tv);
}

/* ---- recording outcomes ---- */

static void job_unlist(struct engine *e, struct send_job *job)
{
    if (job->engine_list == &e->in_flight) {
        TAILQ_REMOVE(&e->in_flight, job, engine_link);
        e->n_in_flight--;
        if ((unsigned)job->channel < CHANNEL_COUNT)
            e->per_channel[job->channel]--;
    } else if (job->engine_list == &e->recording) {
        TAILQ_REMOVE(&e->recording, job, engine_link);
        e->n_recording--;
    }
    job->engine_list = NULL;
}

static void room_again(struct engine *e)
{
    if (e->draining) {
        daemon_check_drained(e->d);
        return;
    }
    if (e->throttled && e->n_in_flight + e->n_recording < MAX_IN_FLIGHT) {
        e->throttled = 0;
        claim(e);
    }
}

static void outcome_recorded(void *arg, int recorded, int moved, int known)
{
    struct send_job *job = arg;
    struct engine *e = job->engine;

    (void)known;
    if (recorded && !moved)
        log_message(LOG_WARNING, job->message_id,
                    "message %" PRId64 " step %d: claim %s was no longer current when its "
                    "outcome arrived; the attempt is recorded, the escalation was left to its "
                    "new holder", job->message_id, job->step, job->claim);
    job_unlist(e, job);
    claim_release(e, job->claim_ref);
    job_free(job);
    if (e->stopping)
        return;                 /* the loop is gone: nothing more to plan */
    schedule_rearm(e);
    daemon_update_status(e->d);
    room_again(e);
}

static const struct policy *frozen_policy(struct engine *e, const char *name, const char *sha)
{
    const struct config *cfg = daemon_config_by_sha(e->d, sha);

    if (name == NULL || *name == '\0')
        return NULL;
    /* frozen under a config this process never loaded (changed across a restart): the policy
     * of the same name in the current config carries on */
    if (cfg == NULL)
        cfg = e->d->cfg;
    return config_policy_by_name(cfg, name);
}

/* A job is finished: work out what comes next and hand both to the ledger. */
static void job_done(struct send_job *job, void *arg)
{
    struct engine *e = arg;
    const struct policy *po = frozen_policy(e, job->policy, job->config_sha256);
    struct progress cur = { job->step, job->try_no - 1, NO_TIME, STATE_ACTIVE }, next;
    struct timespec end;
    char fact[160];

    /* one notice about several messages: each has its own attempt row (the same outcome and
     * external id) and its own ladder */
    if (job->bundle_count > 1 && !job->own_outcome) {
        size_t used = strlen(job->detail);
        snprintf(job->detail + used, sizeof(job->detail) - used,
                 "; one notice about %d messages (led by message %" PRId64 ")", job->bundle_count,
                 job->message_id);
    }
    for (size_t i = 0; i < job->nmembers; i++) {
        struct send_job *m = job->members[i];
        if (m->own_outcome) {   /* dropped out of the notice on the way */
            job_done(m, e);
            continue;
        }
        m->outcome = job->outcome;
        memcpy(m->detail, job->detail, sizeof(m->detail));
        memcpy(m->address, job->address, sizeof(m->address));
        memcpy(m->external_id, job->external_id, sizeof(m->external_id));
        job_done(m, e);
    }
    job->nmembers = 0;

    if (e->stopping) {
        /* the loop is gone: all we can do is put the fact in the journal */
        e->unfinished_at_exit++;
        log_message(LOG_ERR, job->message_id, "UNRECORDED attempt (stopped before it was "
                    "written): message %" PRId64 " step %d %s %s external id %s: %s (%s)",
                    job->message_id, job->step, channel_name(job->channel),
                    outcome_name(job->outcome), job->external_id[0] ? job->external_id : "-",
                    job->detail, job->address);
        job_free(job);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    metrics_latency(e->d->metrics, job->channel, (end.tv_sec - job->started.tv_sec) +
                    (end.tv_nsec - job->started.tv_nsec) / 1e9);
    metrics_attempt(e->d->metrics, job->channel, job->outcome);

    if (job->stop_state != STATE_ACTIVE) {
        next = cur;             /* read, or cannot go on: the ladder ends here */
        next.state = job->stop_state;
    } else if (po == NULL || (size_t)job->step >= po->nsteps) {
        next = cur;
        next.state = outcome_is_success(job->outcome) ? STATE_DONE : STATE_FAILED;
    } else
        policy_advance(po, &cur, job->outcome, job->created_at, job->due_at, engine_now(e), &next);

    const char *then = next.state == STATE_DONE     ? "; ladder done"
                       : next.state == STATE_READ   ? "; ladder stopped"
                       : next.state == STATE_FAILED ? "; ladder ended without success"
                       : next.step != job->step     ? "; next step planned"
                                                    : "; will retry";
    log_message(outcome_is_success(job->outcome) || job->outcome == OUTCOME_SKIPPED ? LOG_INFO
                                                                                    : LOG_WARNING,
                job->message_id, "message %" PRId64 " step %d try %d %s%s%s: %s (%s)%s",
                job->message_id, job->step, job->try_no, channel_name(job->channel),
                job->address[0] ? " to " : "", job->address, outcome_name(job->outcome),
                job->detail, then);

    snprintf(fact, sizeof(fact), "outcome:%s:%" PRId64, job->claim, job->message_id);
    struct attempt a = {
        .message_id = job->message_id, .step = job->step, .try_no = job->try_no,
        .channel = job->channel, .outcome = job->outcome, .detail = job->detail,
        .address = job->address, .external_id = job->external_id,
        .config_sha256 = job->config_sha256, .claim = job->claim, .fact = fact,
    };
    const char *next_channel = "";
    if (next.state == STATE_ACTIVE && po && (size_t)next.step < po->nsteps)
        next_channel = channel_name(po->steps[next.step].channel);
    struct advance adv = { next.step, next.tries, next.next_at, state_name(next.state),
                           next_channel };

    job_unlist(e, job);
    TAILQ_INSERT_TAIL(&e->recording, job, engine_link);
    job->engine_list = &e->recording;
    e->n_recording++;
    ledger_write(e->d->ledger, &a, &adv, outcome_recorded, job);
}

/* ---- dispatch ---- */

/* Build a job from a claimed row. */
static struct send_job *job_from_row(const PGresult *res, int i, struct claim *c)
{
    struct send_job *job = calloc(1, sizeof(*job));

    if (job == NULL)
        return NULL;
    job->message_id = strtoll(PQgetvalue(res, i, CLAIM_ID), NULL, 10);
    job->step = atoi(PQgetvalue(res, i, CLAIM_STEP));
    job->try_no = atoi(PQgetvalue(res, i, CLAIM_TRIES)) + 1;
    job->policy = field_dup(res, i, CLAIM_POLICY);
    snprintf(job->config_sha256, sizeof(job->config_sha256), "%s", PQgetvalue(res, i, CLAIM_SHA));
    snprintf(job->claim, sizeof(job->claim), "%s", c->token);
    job->claim_ref = c;
    job->recipient_name = field_dup(res, i, CLAIM_NAME);
    job->email = field_dup(res, i, CLAIM_EMAIL);
    job->mobile = field_dup(res, i, CLAIM_MOBILE);
    job->postal_address = field_dup(res, i, CLAIM_POSTAL);
    job->language = field_dup(res, i, CLAIM_LANGUAGE);
    job->sender = field_dup(res, i, CLAIM_SENDER);
    job->kind = field_dup(res, i, CLAIM_KIND);
    job->subject = field_dup(res, i, CLAIM_SUBJECT);
    job->link = field_dup(res, i, CLAIM_LINK);
    job->created_at = field_time(res, i, CLAIM_CREATED);
    job->due_at = field_time(res, i, CLAIM_DUE);
    job->stop_state = STATE_ACTIVE;
    clock_gettime(CLOCK_MONOTONIC, &job->started);
    return job;
}

static int blank(const char *s)
{
    return s == NULL || s[strspn(s, " \t\r\n")] == '\0';
}

/* The job ends here, with OUTCOME and its reason, and so does the ladder when STOP says so. */
static void decide(struct engine *e, struct send_job *job, enum escalation_state stop,
                   enum outcome o, const char *detail)
{
    job->stop_state = stop;
    job_set_outcome(job, o, "%s", detail);
    job_done(job, e);
}

/* The message was read before its step went: the ladder stops here. */
static void stop_read(struct engine *e, struct send_job *job, const char *read_at)
{
    struct daemon *d = e->d;
    char why[256], id[32];

    snprintf(id, sizeof(id), "%" PRId64, job->message_id);
    d->metrics->read_stops++;
    snprintf(why, sizeof(why), "read at %s: step %d not carried out", read_at, job->step);
    decide(e, job, STATE_READ, OUTCOME_SKIPPED, why);
    /* a writer killed between its letter and the record left the letter in the spool under
     * its dead claim; with the escalation claimed here, the paper channel withdraws it */
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        if (d->channel_state[ch] && d->channel_ops[ch]->message_read)
            d->channel_ops[ch]->message_read(d->channel_state[ch], id);
}

/* Decide what needs no channel at all (the job is done: 0); 1: it is ready for its channel. */
static int prepare(struct engine *e, struct send_job *job, const char *read_at)
{
    const struct policy *po = frozen_policy(e, job->policy, job->config_sha256);
    struct daemon *d = e->d;
    double now = engine_now(e);
    char why[256];

    job->done = job_done;
    job->done_arg = e;
    job->engine = e;
    job->channel = po && (size_t)job->step < po->nsteps ? po->steps[job->step].channel
                                                         : CHANNEL_NULL;
    TAILQ_INSERT_TAIL(&e->in_flight, job, engine_link);
    job->engine_list = &e->in_flight;
    e->n_in_flight++;
    e->per_channel[job->channel]++;

    if (read_at) {
        stop_read(e, job, read_at);
        return 0;
    }
    if (job->policy == NULL || *job->policy == '\0') {
        snprintf(why, sizeof(why), "no policy applies to messages of kind '%.64s' (add a "
                 "default policy)", job->kind ? job->kind : "");
        decide(e, job, STATE_FAILED, OUTCOME_SKIPPED, why);
        return 0;
    }
    if (!time_sane(job->created_at, now) || !time_sane(job->due_at, now)) {
        snprintf(why, sizeof(why), "cannot be planned: the message's %s is out of range",
                 time_sane(job->created_at, now) ? "due_at" : "created_at");
        decide(e, job, STATE_FAILED, OUTCOME_SKIPPED, why);
        return 0;
    }
    if (po == NULL) {
        snprintf(why, sizeof(why), "policy '%.64s' is no longer configured", job->policy);
        decide(e, job, STATE_ACTIVE, OUTCOME_SKIPPED, why);
        return 0;
    }
    if ((size_t)job->step >= po->nsteps) {
        snprintf(why, sizeof(why), "policy '%.64s' has no step %d any more", job->policy,
                 job->step + 1);
        decide(e, job, STATE_ACTIVE, OUTCOME_SKIPPED, why);
        return 0;
    }
    const struct step *st = &po->steps[job->step];
    job->hide_subject = po->hide_subject;
    job->template = strdup(st->template);
    job->step_link = st->link;
    if (st->from_due && job->due_at == NO_TIME) {
        decide(e, job, STATE_ACTIVE, OUTCOME_SKIPPED,
               "message has no due date (step counts back from it)");
        return 0;
    }
    switch (st->channel) {
    case CHANNEL_NULL:
        decide(e, job, STATE_ACTIVE, OUTCOME_SENT, "null channel");
        return 0;
    case CHANNEL_EMAIL:
        if (blank(job->email)) {
            decide(e, job, STATE_ACTIVE, OUTCOME_SKIPPED, "no e-mail address");
            return 0;
        }
        break;
    case CHANNEL_SMS:
        if (blank(job->mobile)) {
            decide(e, job, STATE_ACTIVE, OUTCOME_SKIPPED, "no mobile number");
            return 0;
        }
        break;
    case CHANNEL_PAPER:
        if (blank(job->postal_address)) {
            d->metrics->no_postal_address++;
            decide(e, job, STATE_ACTIVE, OUTCOME_PERMANENT_FAILURE, "no postal address");
            return 0;
        }
        break;
    default:
        break;
    }
    if (d->channel_state[st->channel] == NULL) {
        /* the step was frozen under a config that had this channel; the current one has not */
        snprintf(why, sizeof(why), "channel %s is not configured", channel_name(st->channel));
        decide(e, job, STATE_ACTIVE, OUTCOME_TEMPORARY_FAILURE, why);
        return 0;
    }
    return 1;
}

static void send_now(struct engine *e, struct send_job *job)
{
    struct daemon *d = e->d;

    d->channel_ops[job->channel]->send(d->channel_state[job->channel], job);
}

/* ---- one notice per person ---- */

/* The window of JOB's bundle in seconds, or 0 when it goes on its own: its policy bundles and
 * its channel sends a person a notice. */
static long bundle_window(struct engine *e, const struct send_job *job)
{
    const struct policy *po = frozen_policy(e, job->policy, job->config_sha256);

    if (po == NULL || po->bundle <= 0)
        return 0;
    return job->channel == CHANNEL_EMAIL || job->channel == CHANNEL_SMS ||
           job->channel == CHANNEL_PAPER ? po->bundle : 0;
}

/* Jobs of one claim that are ready for their channel and wait for SQL_BUNDLE. */
struct bundle_round {
    struct engine *e;
    struct claim *c;
    struct send_job **jobs;
    int64_t *leader;           /* per job: the message that leads its notice, 0 none */
    size_t n;
};

static void bundle_round_free(struct bundle_round *b)
{
    free(b->jobs);
    free(b->leader);
    free(b);
}

/* LEADER's notice names MEMBERS too: its text lists them all and its outcome is theirs. 0, or
 * -1 (out of memory) when each must go on its own. */
static int bundle_make(struct send_job *leader, struct send_job **members, size_t n)
{
    if ((leader->members = calloc(n, sizeof(*members))) == NULL)
        return -1;
    memcpy(leader->members, members, n * sizeof(*members));
    leader->nmembers = n;
    if (job_bundle_text(leader) == -1) {
        free(leader->members);
        leader->members = NULL;
        leader->nmembers = 0;
        return -1;
    }
    free(leader->link);         /* about several messages: the link is the inbox's */
    leader->link = NULL;
    return 0;
}

static void bundled(PGresult *res, void *arg)
{
    struct bundle_round *b = arg;
    struct engine *e = b->e;
    struct claim *c = b->c;
    struct send_job **taken = NULL, **members = NULL;
    int64_t *taken_leader = NULL;
    size_t ntaken = 0;
    int rows = db_result_ok(res) ? PQntuples(res) : 0;

    e->bundling--;
    if (!db_result_ok(res))
        log_warn("finding messages to name in one notice failed (%s): each goes on its own",
                 res ? PQresultErrorMessage(res) : "no connection to the database");
    if (rows > 0 && ((taken = calloc(rows, sizeof(*taken))) == NULL ||
                     (taken_leader = calloc(rows, sizeof(*taken_leader))) == NULL ||
                     (members = calloc(rows + b->n, sizeof(*members))) == NULL))
        log_err("out of memory bundling notices: each message goes on its own");
    for (int i = 0; i < rows; i++) {
        int64_t id = strtoll(PQgetvalue(res, i, CLAIM_ID), NULL, 10);
        int64_t leader = PQgetisnull(res, i, BUNDLE_LEADER) ? 0
                         : strtoll(PQgetvalue(res, i, BUNDLE_LEADER), NULL, 10);
        const char *role = PQgetvalue(res, i, BUNDLE_ROLE);
        learn_clock(e, PQgetvalue(res, i, CLAIM_NOW));
        if (strcmp(role, "taken") == 0) {
            /* ours now: it goes, in the notice or (when it cannot) on its own */
            struct send_job *job = job_from_row(res, i, c);
            if (job == NULL) {
                log_err("out of memory: message %" PRId64 " stays claimed until its lease runs "
                        "out", id);
                continue;
            }
            c->outstanding++;
            if (!prepare(e, job, NULL))
                continue;
            if (members == NULL)
                send_now(e, job);
            else {
                taken[ntaken] = job;
                taken_leader[ntaken++] = leader;
            }
            continue;
        }
        for (size_t k = 0; k < b->n; k++) {
            if (b->jobs[k] == NULL || b->jobs[k]->message_id != id)
                continue;
            if (strcmp(role, "read") == 0) {    /* read since the claim: it drops out */
                stop_read(e, b->jobs[k], PQgetvalue(res, i, CLAIM_READ_AT));
                b->jobs[k] = NULL;
            } else
                b->leader[k] = members ? leader : 0;
        }
    }
    /* each leader with the members it found; whatever has no bundle goes on its own */
    for (size_t k = 0; k < b->n; k++) {
        struct send_job *lead = b->jobs[k];
        size_t n = 0;
        if (lead == NULL || b->leader[k] != lead->message_id)
            continue;
        for (size_t j = 0; j < b->n; j++)
            if (j != k && b->jobs[j] && b->leader[j] == lead->message_id &&
                b->jobs[j]->channel == lead->channel)
                members[n++] = b->jobs[j];
        for (size_t j = 0; j < ntaken; j++)
            if (taken[j] && taken_leader[j] == lead->message_id && taken[j]->channel == lead->channel)
                members[n++] = taken[j];
        if (n == 0 || bundle_make(lead, members, n) == -1)
            continue;
        /* the members go with their leader */
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < b->n; j++)
                if (b->jobs[j] == members[i])
                    b->jobs[j] = NULL;
            for (size_t j = 0; j < ntaken; j++)
                if (taken[j] == members[i])
                    taken[j] = NULL;
        }
    }
    for (size_t k = 0; k < b->n; k++)
        if (b->jobs[k])
            send_now(e, b->jobs[k]);
    for (size_t j = 0; j < ntaken; j++)
        if (taken[j])
            send_now(e, taken[j]);
    free(taken);
    free(taken_leader);
    free(members);
    bundle_round_free(b);
    claim_release(e, c);        /* the round's reference */
    daemon_update_status(e->d);
    if (e->draining)
        daemon_check_drained(e->d);
}

/* Ask which other messages of the same people the N ready JOBS of claim C name too (SQL_BUNDLE);
 * takes JOBS. Without the database or memory, each goes on its own. */
static void bundle_start(struct engine *e, struct claim *c, struct send_job **jobs, size_t n)
{
    struct bundle_round *b = calloc(1, sizeof(*b));
    struct pg_array ids, windows, policies;
    const struct config *cfg = e->d->cfg;
    char num[32], lease[32];

    pg_array_open(&ids);
    pg_array_open(&windows);
    pg_array_open(&policies);
    for (size_t i = 0; i < n; i++) {
        snprintf(num, sizeof(num), "%" PRId64, jobs[i]->message_id);
        pg_array_add(&ids, num);
        snprintf(num, sizeof(num), "%ld", bundle_window(e, jobs[i]));
        pg_array_add(&windows, num);
    }
    for (size_t i = 0; i < cfg->npolicies; i++)
        if (cfg->policies[i].bundle > 0)
            pg_array_add(&policies, cfg->policies[i].name);
    char *id_list = pg_array_close(&ids), *win_list = pg_array_close(&windows);
    char *policy_list = pg_array_close(&policies);
    if (b == NULL || id_list == NULL || win_list == NULL || policy_list == NULL ||
        (b->leader = calloc(n, sizeof(*b->leader))) == NULL) {
        log_err("out of memory bundling notices: each message goes on its own");
        for (size_t i = 0; i < n; i++)
            send_now(e, jobs[i]);
        free(jobs);
        free(b);
        goto out;
    }
    b->e = e;
    b->c = c;
    b->jobs = jobs;
    b->n = n;
    c->outstanding++;           /* the round's reference until it is back */
    e->bundling++;
    snprintf(lease, sizeof(lease), "%ld", cfg->lease);
    const char *params[] = { c->token, cfg->instance, lease, id_list, win_list, policy_list };
    db_query(e->d->db, DB_URGENT, SQL_BUNDLE, 6, params, bundled, b);
out:
    free(id_list);
    free(win_list);
    free(policy_list);
}

/* ---- claiming ---- */

/* Whose claim row I of a claim took over, if any: an adoption's (nothing was sent under it) or
 * one that may have sent (SQL_CLAIM wrote it down as in-doubt). */
enum takeover { NOT_TAKEN_OVER, FROM_ADOPTION, FROM_SEND };

static enum takeover taken_over(const PGresult *res, int i)
{
    if (PQgetisnull(res, i, CLAIM_OLD_CLAIM))
        return NOT_TAKEN_OVER;
    return strncmp(PQgetvalue(res, i, CLAIM_OLD_CLAIM), ADOPT_CLAIM_PREFIX,
                   strlen(ADOPT_CLAIM_PREFIX)) == 0 ? FROM_ADOPTION : FROM_SEND;
}

/* The lane (index into claim_round.room) a claimed row came from. */
static int lane_of(const char *channel)
{
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        if (strcmp(channel, channel_name(ch)) == 0)
            return ch;
    return CHANNEL_COUNT;
}

struct claim_round {
    struct engine *e;
    struct claim *c;
    int room[CHANNEL_COUNT + 1];   /* rows asked for per lane (the last: channel '') */
    double sent;                /* engine_now() when it went out */
};

static void claimed(PGresult *res, void *arg)
{
    struct claim_round *round = arg;
    struct engine *e = round->e;
    struct claim *c = round->c;
    int rows, took[CHANNEL_COUNT + 1] = { 0 }, lane_full = 0;
    double sent = round->sent;
    int room[CHANNEL_COUNT + 1];

    memcpy(room, round->room, sizeof(room));
    e->claiming = 0;
    free(round);
    if (!db_result_ok(res)) {
        if (res)
            log_err("claiming due escalations failed: %s", PQresultErrorMessage(res));
        else
            claim_lost(e, c->token);
        claim_release(e, c);
        if (e->draining)
            daemon_check_drained(e->d);
        return;
    }
    rows = PQntuples(res);
    e->idle_claims = rows == 0 ? e->idle_claims + 1 : 0;
    if (rows == 0)
        e->empty_claim_sent = sent;
    c->outstanding += rows;
    if (rows > 0 && strcmp(PQgetvalue(res, 0, CLAIM_DOUBTS), "0") != 0)
        log_warn("took over %s escalations whose claim ran out before an outcome was recorded: "
                 "recorded as in-doubt, tried again now", PQgetvalue(res, 0, CLAIM_DOUBTS));
    struct plan_batch *unplanned = NULL;
    struct send_job **ready = rows > 0 ? calloc(rows, sizeof(*ready)) : NULL;
    size_t nready = 0;
    for (int i = 0; i < rows; i++) {
        int64_t id = strtoll(PQgetvalue(res, i, CLAIM_ID), NULL, 10);
        learn_clock(e, PQgetvalue(res, i, CLAIM_NOW));
        int lane = lane_of(PQgetvalue(res, i, CLAIM_LANE));
        lane_full |= ++took[lane] >= room[lane];
        enum takeover from = taken_over(res, i);
        if (from == FROM_SEND)  /* the claim statement recorded it as in-doubt */
            metrics_attempt(e->d->metrics, CHANNEL_NULL, OUTCOME_IN_DOUBT);
        /* held by an adoption whose process died before the plan: plan it now, under our claim */
        if (from == FROM_ADOPTION && *PQgetvalue(res, i, CLAIM_POLICY) == '\0') {
            c->outstanding--;
            if (unplanned == NULL && (unplanned = plan_open(e, c->token)) == NULL)
                continue;       /* out of memory: the claim runs out, the next one plans it */
            plan_add(unplanned, res, i, CLAIM_ID, CLAIM_KIND, CLAIM_CREATED, CLAIM_DUE, CLAIM_NOW);
            continue;
        }
        struct send_job *job = job_from_row(res, i, c);
        if (job == NULL) {
            log_err("out of memory: message %" PRId64 " stays claimed until its lease runs out", id);
            c->outstanding--;
            continue;
        }
        if (!prepare(e, job, PQgetisnull(res, i, CLAIM_READ_AT) ? NULL
                                                                : PQgetvalue(res, i, CLAIM_READ_AT)))
            continue;
        if (ready && bundle_window(e, job) > 0)
            ready[nready++] = job;      /* first: which other messages its notice names */
        else
            send_now(e, job);
    }
    if (nready > 0)
        bundle_start(e, c, ready, nready);
    else
        free(ready);
    if (unplanned)
        plan_close(unplanned);
    claim_release(e, c);        /* the round's own reference */
    if (rows > 0)
        arm_renewal(e);
    daemon_update_status(e->d);
    if (e->draining) {
        daemon_check_drained(e->d);
        return;
    }
    /* a lane got all it asked for: there may be more due right now (its outcomes queue for
     * the ledger behind this claim, so the database never waits for a timer in between) */
    if (lane_full)
        claim(e);
    else
        schedule_rearm(e);
}

/* How many more jobs a channel can take now: a claim takes no more than that, so nothing waits
 * long in a queue (and what does is renewed). */
static int channel_room(struct engine *e, enum channel_id ch)
{
    const struct config *cfg = e->d->cfg;
    int capacity;

    switch (ch) {
    case CHANNEL_NULL: capacity = CLAIM_BATCH; break;
    case CHANNEL_EMAIL: capacity = 2 * cfg->email.workers * (cfg->email.batch > 0 ? cfg->email.batch : 1); break;
    case CHANNEL_SMS: capacity = 2 * (cfg->sms.max_in_flight > 0 ? cfg->sms.max_in_flight : 1); break;
    case CHANNEL_PAPER: capacity = DEFAULT_ROOM; break;
    default: capacity = DEFAULT_ROOM; break;
    }
    if (ch != CHANNEL_NULL && e->d->channel_state[ch] == NULL)
        capacity = DEFAULT_ROOM;    /* recorded as "not configured" at once */
    int room = capacity - e->per_channel[ch];
    return room < 0 ? 0 : room > CLAIM_BATCH ? CLAIM_BATCH : room;
}

static void claim(struct engine *e)
{
    struct pg_array lanes, rooms;
    char num[16], lease[32];
    int room[CHANNEL_COUNT + 1], full = 0;

    if (e->claiming || e->draining || !db_connected(e->d->db))
        return;
    if (e->n_in_flight + e->n_recording >= MAX_IN_FLIGHT) {
        e->throttled = 1;       /* back-pressure: recorded outcomes call us again */
        return;
    }
    pg_array_open(&lanes);
    pg_array_open(&rooms);
    for (int ch = 0; ch < CHANNEL_COUNT; ch++) {
        room[ch] = channel_room(e, ch);
        full += room[ch] == 0;
        snprintf(num, sizeof(num), "%d", room[ch]);
        pg_array_add(&lanes, channel_name(ch));
        pg_array_add(&rooms, num);
    }
    /* escalations from before channels were known per row (an upgraded database) */
    room[CHANNEL_COUNT] = DEFAULT_ROOM;
    snprintf(num, sizeof(num), "%d", DEFAULT_ROOM);
    pg_array_add(&lanes, "");
    pg_array_add(&rooms, num);
    char *lane_list = pg_array_close(&lanes), *room_list = pg_array_close(&rooms);
    struct claim_round *round = calloc(1, sizeof(*round));
    struct claim *c = round ? claim_new(e) : NULL;
    if (lane_list == NULL || room_list == NULL || c == NULL) {
        log_err("out of memory claiming due work; trying again on the next wake-up");
        free(round);
        free(lane_list);
        free(room_list);
        return;
    }
    /* a channel without room: its finished jobs claim again (no polling in between) */
    e->throttled = full > 0;
    c->outstanding = 1;         /* the round's own reference until it is back */
    round->e = e;
    round->c = c;
    memcpy(round->room, room, sizeof(room));
    round->sent = engine_now(e);
    snprintf(lease, sizeof(lease), "%ld", e->d->cfg->lease);
    const char *params[] = { c->token, e->d->cfg->instance, lane_list, room_list,
                             ledger_chain(e->d->ledger), lease };
    e->claiming = 1;
    db_query(e->d->db, DB_URGENT, SQL_CLAIM, 6, params, claimed, round);
    free(lane_list);
    free(room_list);
}

/* ---- life cycle ---- */

static void lost_claims_returned(PGresult *res, void *arg)
{
    struct engine *e = arg;
    int n = e->returning;

    e->returning = 0;
    if (!db_result_ok(res)) {
        if (res)
            log_err("returning %d lost claims failed: %s", n, PQresultErrorMessage(res));
        return;                 /* kept: the next connection tries again */
    }
    if (atoi(PQcmdTuples(res)) > 0)
        log_info("%s escalations taken by %d claims whose answer the connection lost: due "
                 "again now", PQcmdTuples(res), n);
    memmove(e->lost, e->lost + n, (size_t)(e->nlost - n) * sizeof(e->lost[0]));
    e->nlost -= n;
}

/* Before the first claim on a new connection (the same lane runs them in order). */
static void return_lost_claims(struct engine *e)
{
    struct pg_array tokens;

    if (e->nlost == 0 || e->returning)
        return;
    pg_array_open(&tokens);
    for (int i = 0; i < e->nlost; i++)
        pg_array_add(&tokens, e->lost[i]);
    char *list = pg_array_close(&tokens);
    if (list == NULL)
        return;
    const char *params[] = { list };
    e->returning = e->nlost;
    db_query(e->d->db, DB_URGENT, SQL_RETURN_LOST_CLAIMS, 1, params, lost_claims_returned, e);
    free(list);
}

void engine_connected(struct engine *e)
{
    /* whatever happened while we were away: reads, new messages, due work */
    e->adopting = e->claiming = e->rearming = e->rearm_again = e->renewing = e->marking = 0;
    e->adopting_batch = NULL;
    e->returning = 0;
    return_lost_claims(e);
    mark_read(e);
    adopt(e);
    claim(e);
    renew_cb(-1, 0, e);         /* our claims may have waited for the connection */
}

/* Wake-ups carry no data ('new', 'read'; the queues say what): one per statement at most. */
void engine_notify(struct engine *e, const char *payload)
{
    if (strncmp(payload, "read", 4) == 0)
        mark_read(e);
    else
        adopt(e);
}

void engine_drain(struct engine *e)
{
    e->draining = 1;
    evtimer_del(e->due_timer);
}

int engine_busy(const struct engine *e)
{
    /* a claim under way holds leases on rows it will hand us: wait for it */
    return e->n_in_flight + e->n_recording + e->claiming + e->planning + e->bundling;
}

int engine_in_flight(const struct engine *e)
{
    return e->n_in_flight;
}

int engine_recording(const struct engine *e)
{
    return e->n_recording;
}

/* The loop has stopped: every job still in a channel is put in the journal (its outcome is
 * unknown: the next claim records it as in-doubt), and any outcome a channel reports from now
 * on too. Returns how many there were; the exit status says so. */
unsigned long engine_stop(struct engine *e)
{
    struct send_job *job;

    e->stopping = 1;
    TAILQ_FOREACH(job, &e->in_flight, engine_link) {
        e->unfinished_at_exit++;
        log_message(LOG_ERR, job->message_id, "UNRECORDED attempt (stopped before its outcome "
                    "was known; it may have been sent, and is recorded as in-doubt once its "
                    "claim %s runs out): message %" PRId64 " step %d %s to %s", job->claim,
                    job->message_id, job->step, channel_name(job->channel),
                    job->address[0] ? job->address : "-");
    }
    return e->unfinished_at_exit;
}

unsigned long engine_unfinished(const struct engine *e)
{
    return e->unfinished_at_exit;
}

struct engine *engine_new(struct daemon *d)
{
    struct engine *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->d = d;
    TAILQ_INIT(&e->in_flight);
    TAILQ_INIT(&e->recording);
    TAILQ_INIT(&e->claims);
    e->due_timer = evtimer_new(d->base, due_timer_cb, e);
    e->rearm_ev = event_new(d->base, -1, 0, rearm_cb, e);
    e->renew_timer = event_new(d->base, -1, EV_PERSIST, renew_cb, e);
    if (e->due_timer == NULL || e->rearm_ev == NULL || e->renew_timer == NULL) {
        engine_free(e);
        return NULL;
    }
    return e;
}

void engine_free(struct engine *e)
{
    struct claim *c;

    if (e == NULL)
        return;
    if (e->due_timer)
        event_free(e->due_timer);
    if (e->rearm_ev)
        event_free(e->rearm_ev);
    if (e->renew_timer)
        event_free(e->renew_timer);
    /* jobs still listed belong to channels that are gone, or to the ledger's journal lines */
    while ((c = TAILQ_FIRST(&e->claims)) != NULL) {
        TAILQ_REMOVE(&e->claims, c, link);
        free(c);
    }
    free(e);
}
