/* The escalation engine. All of it runs on the loop; the database arbitrates between instances.
 *
 *   notify/connect -> adopt -> arm timer -> claim -> dispatch -> channel -> record -> arm timer
 */
#include "engine.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "daemon.h"
#include "db.h"
#include "engine_sql.h"
#include "log.h"
#include "metrics.h"
#include "pgarray.h"
#include "policy.h"

#define MAX_IN_FLIGHT 2000

struct engine {
    struct daemon *d;
    struct event *due_timer;
    struct event *rearm_ev;        /* coalesces "work out the next due time" requests */
    int adopting, adopt_again;
    int claiming, throttled;       /* a claim is running; claims wait for back-pressure */
    int rearming, rearm_again;
    int in_flight;                 /* jobs handed to channels, outcome not yet recorded */
    int recording;                 /* outcomes queued for the database */
    int draining;
    double clock_skew;             /* database now() minus our clock */
    int idle_claims;               /* consecutive claims that found nothing */
    int leases_taken_back;         /* our leases from before a restart, once per run */
    struct record *unwritten, *unwritten_tail;  /* outcomes not yet sent to the database */
    struct event *flush_ev;        /* writes them, a batch per statement */
};

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

/* ---- adoption ---- */

static void adopt(struct engine *e);

/* An adoption round is over: arm the timer for what it added, and go again if asked to. */
static void adopt_done(struct engine *e)
{
    e->adopting = 0;
    schedule_rearm(e);
    if (e->adopt_again) {
        e->adopt_again = 0;
        adopt(e);
    }
}

static void adopt_inserted(PGresult *res, void *arg)
{
    struct engine *e = arg;

    if (!db_result_ok(res)) {
        e->adopting = 0;
        if (res)
            log_err("adopting messages failed: %s", PQresultErrorMessage(res));
        return;
    }
    adopt_done(e);
}

static void adopt_found(PGresult *res, void *arg)
{
    struct engine *e = arg;
    const struct config *cfg = e->d->cfg;
    struct pg_array ids, policies, times;
    int rows;

    if (!db_result_ok(res)) {
        e->adopting = 0;
        if (res)
            log_err("looking for unread messages failed: %s", PQresultErrorMessage(res));
        return;
    }
    if ((rows = PQntuples(res)) == 0) {
        adopt_done(e);
        return;
    }
    /* a full batch means there may be more: go round again after this one */
    if (rows >= ADOPT_BATCH)
        e->adopt_again = 1;

    pg_array_open(&ids);
    pg_array_open(&policies);
    pg_array_open(&times);
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, 0), *kind = PQgetvalue(res, i, 1);
        const struct policy *po = config_policy_for_kind(cfg, kind);
        double now = strtod(PQgetvalue(res, i, 4), NULL);
        char t[64];

        learn_clock(e, PQgetvalue(res, i, 4));
        pg_array_add(&ids, id);
        pg_array_add(&policies, po ? po->name : "");
        if (po == NULL) {
            log_message(LOG_ERR, strtoll(id, NULL, 10),
                        "message %s of kind '%s': no policy applies (add a default policy); "
                        "escalation marked failed", id, kind);
            pg_array_add(&times, NULL);
            continue;
        }
        double at = policy_step_time(&po->steps[0], field_time(res, i, 2), field_time(res, i, 3), now);
        snprintf(t, sizeof(t), "%.6f", at == NO_TIME ? now : at);
        pg_array_add(&times, t);
        log_message(LOG_INFO, strtoll(id, NULL, 10), "message %s (%s) adopted under policy '%s'",
                    id, kind, po->name);
    }
    char *id_list = pg_array_close(&ids), *policy_list = pg_array_close(&policies),
         *time_list = pg_array_close(&times);
    const char *params[] = { id_list, policy_list, cfg->sha256, time_list };
    if (id_list && policy_list && time_list)
        db_query(e->d->db, 0, SQL_ADOPT_INSERT, 4, params, adopt_inserted, e);
    else {
        log_err("out of memory adopting messages; the next notification tries again");
        e->adopting = 0;
    }
    free(id_list);
    free(policy_list);
    free(time_list);
}

static void adopt(struct engine *e)
{
    if (e->adopting) {
        e->adopt_again = 1;
        return;
    }
    if (!db_connected(e->d->db))
        return;
    e->adopting = 1;
    db_query(e->d->db, 0, SQL_ADOPT_FIND, 0, NULL, adopt_found, e);
}

/* ---- read messages ---- */

static void marked_read(PGresult *res, void *arg)
{
    struct engine *e = arg;

    if (!db_result_ok(res)) {
        if (res)
            log_err("stopping escalations of read messages failed: %s", PQresultErrorMessage(res));
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        e->d->metrics->read_stops++;
        log_message(LOG_INFO, id, "message %" PRId64 " read at %s: escalation stopped before step %s",
                    id, PQgetvalue(res, i, 2), PQgetvalue(res, i, 1));
    }
    daemon_update_status(e->d);
}

static void mark_read(struct engine *e, const char *id)
{
    const char *params[] = { id };
    struct daemon *d = e->d;

    db_query(d->db, 0, SQL_MARK_READ, 1, params, marked_read, e);
    /* a letter may wait for the cut-off long after its escalation ended */
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        if (d->channel_state[ch] && d->channel_ops[ch]->message_read)
            d->channel_ops[ch]->message_read(d->channel_state[ch], id);
}

/* ---- the due timer ---- */

static void due_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    claim(arg);
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
    evtimer_del(e->due_timer);
    if (PQgetisnull(res, 0, 0))
        return;                 /* nothing active: wait for a notification */
    double delay = strtod(PQgetvalue(res, 0, 0), NULL);
    /* another instance may hold the due rows for a moment: don't spin on them */
    double floor_s = e->idle_claims > 0 ? 0.01 * (1 << (e->idle_claims > 6 ? 6 : e->idle_claims)) : 0;
    if (delay < floor_s)
        delay = floor_s;
    if (delay > 86400)
        delay = 86400;
    struct timeval tv = { (time_t)delay, (suseconds_t)((delay - floor(delay)) * 1e6) };
    evtimer_add(e->due_timer, &tv);
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
    db_query(e->d->db, 0, SQL_NEXT_DUE, 0, NULL, next_due_known, e);
}

/* ---- recording outcomes ---- */

/* Outcomes waiting to be written, and the batches on their way to the database. */
struct record {
    struct send_job *job;
    struct progress next;
    struct record *next_record;
};

struct record_batch {
    struct engine *e;
    struct record *records;
};

static void log_unrecorded(const struct send_job *job, const char *why)
{
    log_message(LOG_ERR, job->message_id,
                "UNRECORDED attempt (%s): message %" PRId64 " step %d try %d %s %s: %s (%s)", why,
                job->message_id, job->step, job->try_no, channel_name(job->channel),
                outcome_name(job->outcome), job->detail, job->address);
}

static void batch_recorded(PGresult *res, void *arg)
{
    struct record_batch *b = arg;
    struct engine *e = b->e;
    struct record *r, *next;
    int row = 0;

    if (res != NULL && !db_result_ok(res))
        log_err("recording attempts failed: %s", PQresultErrorMessage(res));
    for (r = b->records; r; r = next, row++) {
        next = r->next_record;
        if (res == NULL)        /* DB_KEEP: only when we stop with the database away */
            log_unrecorded(r->job, "database unavailable at shutdown");
        else if (!db_result_ok(res))
            log_unrecorded(r->job, "database refused it");
        else if (row < PQntuples(res) && strcmp(PQgetvalue(res, row, 1), "t") != 0)
            log_message(LOG_WARNING, r->job->message_id,
                        "message %" PRId64 ": lease lost before the outcome was recorded; the "
                        "attempt is recorded, the escalation was left to its new owner",
                        r->job->message_id);
        e->recording--;
        job_free(r->job);
        free(r);
    }
    free(b);
    schedule_rearm(e);
    daemon_update_status(e->d);
    if (e->draining)
        daemon_check_drained(e->d);
    else if (e->throttled && e->in_flight + e->recording < MAX_IN_FLIGHT / 2) {
        e->throttled = 0;
        claim(e);
    }
}

/* The array parameters of SQL_RECORD, one per column. */
enum record_column {
    RC_ID, RC_STEP, RC_TRIES, RC_NSTEP, RC_NTRIES, RC_NAT, RC_NSTATE, RC_CHANNEL, RC_OUTCOME,
    RC_DETAIL, RC_ADDRESS, RC_EXTERNAL, RC_SHA, RC_COUNT
};

static void add_record_row(struct pg_array *col, const struct record *r)
{
    const struct send_job *job = r->job;
    char num[64];

#define ADD_INT(c, v) (snprintf(num, sizeof(num), "%" PRId64, (int64_t)(v)), pg_array_add(&col[c], num))
    ADD_INT(RC_ID, job->message_id);
    ADD_INT(RC_STEP, job->step);
    ADD_INT(RC_TRIES, job->try_no - 1);
    ADD_INT(RC_NSTEP, r->next.step);
    ADD_INT(RC_NTRIES, r->next.tries);
#undef ADD_INT
    snprintf(num, sizeof(num), "%.6f", r->next.next_at);
    pg_array_add(&col[RC_NAT], r->next.next_at == NO_TIME ? NULL : num);
    pg_array_add(&col[RC_NSTATE], state_name(r->next.state));
    pg_array_add(&col[RC_CHANNEL], channel_name(job->channel));
    pg_array_add(&col[RC_OUTCOME], outcome_name(job->outcome));
    pg_array_add(&col[RC_DETAIL], job->detail);
    pg_array_add(&col[RC_ADDRESS], job->address[0] ? job->address : NULL);
    pg_array_add(&col[RC_EXTERNAL], job->external_id[0] ? job->external_id : NULL);
    pg_array_add(&col[RC_SHA], job->config_sha256);
}

/* Up to RECORD_BATCH of the waiting outcomes into one statement on the database queue.
 * -1 when out of memory: the outcomes stay waiting. */
static int write_batch(struct engine *e)
{
    struct record_batch *b = calloc(1, sizeof(*b));
    struct pg_array col[RC_COUNT];
    const char *params[1 + RC_COUNT] = { e->d->cfg->instance };
    char *text[RC_COUNT];
    struct record *last = NULL;
    int n = 0, complete = 1;

    if (b == NULL)
        return -1;
    b->e = e;
    for (int c = 0; c < RC_COUNT; c++)
        pg_array_open(&col[c]);
    for (struct record *r = e->unwritten; r && n < RECORD_BATCH; r = r->next_record, n++) {
        add_record_row(col, r);
        last = r;
    }
    for (int c = 0; c < RC_COUNT; c++)
        complete &= (params[1 + c] = text[c] = pg_array_close(&col[c])) != NULL;
    if (complete) {
        /* the batch leaves the waiting list */
        b->records = e->unwritten;
        if ((e->unwritten = last->next_record) == NULL)
            e->unwritten_tail = NULL;
        last->next_record = NULL;
        db_query(e->d->db, DB_KEEP, SQL_RECORD, 1 + RC_COUNT, params, batch_recorded, b);
    } else
        free(b);
    for (int c = 0; c < RC_COUNT; c++)
        free(text[c]);
    return complete ? 0 : -1;
}

void engine_flush_records(struct engine *e)
{
    while (e->unwritten) {
        if (write_batch(e) == -1) {
            event_active(e->flush_ev, 0, 0);    /* out of memory: try again next turn */
            return;
        }
    }
}

static void flush_records(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine_flush_records(arg);
}

/* Queue an outcome; outcomes that finish in the same loop turn are written together. */
static void record(struct engine *e, struct send_job *job, const struct progress *next)
{
    struct record *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        log_unrecorded(job, "out of memory");
        job_free(job);
        return;
    }
    r->job = job;
    r->next = *next;
    if (e->unwritten_tail)
        e->unwritten_tail->next_record = r;
    else
        e->unwritten = r;
    e->unwritten_tail = r;
    e->recording++;
    event_active(e->flush_ev, 0, 0);
}

static void followup_recorded(PGresult *res, void *arg)
{
    struct engine *e = arg;

    if (res && !db_result_ok(res))
        log_err("recording a follow-up attempt failed: %s", PQresultErrorMessage(res));
    e->recording--;
    if (e->draining)
        daemon_check_drained(e->d);
}

void engine_record_followup(struct engine *e, int64_t message_id, int step, int try_no,
                            int channel, int outcome, const char *detail, const char *address,
                            const char *external_id, const char *config_sha256)
{
    char id[32], st[16], tr[16];

    snprintf(id, sizeof(id), "%" PRId64, message_id);
    snprintf(st, sizeof(st), "%d", step);
    snprintf(tr, sizeof(tr), "%d", try_no);
    const char *params[] = { id, st, tr, e->d->cfg->instance, channel_name(channel),
                             outcome_name(outcome), detail, address, external_id, config_sha256 };
    metrics_attempt(e->d->metrics, channel, outcome);
    log_message(LOG_INFO, message_id, "message %" PRId64 " step %d %s: %s (%s)", message_id, step,
                channel_name(channel), outcome_name(outcome), detail);
    e->recording++;
    engine_flush_records(e);    /* the outcome it follows goes first */
    db_query(e->d->db, DB_KEEP, SQL_FOLLOWUP, 10, params, followup_recorded, e);
}

/* ---- dispatch ---- */

static const struct policy *frozen_policy(struct engine *e, const char *name, const char *sha)
{
    const struct config *cfg = daemon_config_by_sha(e->d, sha);

    /* frozen under a config this process never loaded (changed across a restart): the policy
     * of the same name in the current config carries on */
    if (cfg == NULL)
        cfg = e->d->cfg;
    return config_policy_by_name(cfg, name);
}

/* A job is finished: work out what comes next and record both in one statement. */
static void job_done(struct send_job *job, void *arg)
{
    struct engine *e = arg;
    const struct policy *po = frozen_policy(e, job->policy, job->config_sha256);
    struct progress cur = { job->step, job->try_no - 1, NO_TIME, STATE_ACTIVE }, next;
    struct timespec end;

    e->in_flight--;
    clock_gettime(CLOCK_MONOTONIC, &end);
    metrics_latency(e->d->metrics, job->channel, (end.tv_sec - job->started.tv_sec) +
                    (end.tv_nsec - job->started.tv_nsec) / 1e9);
    metrics_attempt(e->d->metrics, job->channel, job->outcome);

    if (po == NULL || (size_t)job->step >= po->nsteps) {
        next = cur;
        next.state = outcome_is_success(job->outcome) ? STATE_DONE : STATE_FAILED;
    } else
        policy_advance(po, &cur, job->outcome, job->created_at, job->due_at, engine_now(e), &next);

    const char *then = next.state == STATE_DONE     ? "; ladder done"
                       : next.state == STATE_FAILED ? "; ladder ended without success"
                       : next.step != job->step     ? "; next step planned"
                                                    : "; will retry";
    log_message(outcome_is_success(job->outcome) ? LOG_INFO : LOG_WARNING, job->message_id,
                "message %" PRId64 " step %d try %d %s%s%s: %s (%s)%s", job->message_id,
                job->step, job->try_no, channel_name(job->channel), job->address[0] ? " to " : "",
                job->address, outcome_name(job->outcome), job->detail, then);
    record(e, job, &next);
}

/* Build a job from a claimed row. */
static struct send_job *job_from_row(const PGresult *res, int i)
{
    struct send_job *job = calloc(1, sizeof(*job));

    if (job == NULL)
        return NULL;
    job->message_id = strtoll(PQgetvalue(res, i, CLAIM_ID), NULL, 10);
    job->step = atoi(PQgetvalue(res, i, CLAIM_STEP));
    job->try_no = atoi(PQgetvalue(res, i, CLAIM_TRIES)) + 1;
    job->policy = field_dup(res, i, CLAIM_POLICY);
    snprintf(job->config_sha256, sizeof(job->config_sha256), "%s", PQgetvalue(res, i, CLAIM_SHA));
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
    clock_gettime(CLOCK_MONOTONIC, &job->started);
    return job;
}

static int blank(const char *s)
{
    return s == NULL || s[strspn(s, " \t\r\n")] == '\0';
}

/* Decide what needs no channel at all; otherwise hand the job to its channel. */
static void dispatch(struct engine *e, struct send_job *job)
{
    const struct policy *po = frozen_policy(e, job->policy, job->config_sha256);
    struct daemon *d = e->d;

    job->done = job_done;
    job->done_arg = e;
    e->in_flight++;
    if (po == NULL) {
        job->channel = CHANNEL_NULL;
        job_set_outcome(job, OUTCOME_SKIPPED, "policy '%s' is no longer configured", job->policy);
        job_done(job, e);
        return;
    }
    if ((size_t)job->step >= po->nsteps) {
        job->channel = CHANNEL_NULL;
        job_set_outcome(job, OUTCOME_SKIPPED, "policy '%s' has no step %d any more", job->policy,
                        job->step + 1);
        job_done(job, e);
        return;
    }
    const struct step *st = &po->steps[job->step];
    job->channel = st->channel;
    job->hide_subject = po->hide_subject;
    job->template = strdup(st->template);
    job->step_link = st->link;
    if (st->from_due && job->due_at == NO_TIME) {
        job_set_outcome(job, OUTCOME_SKIPPED, "message has no due date (step counts back from it)");
        job_done(job, e);
        return;
    }
    switch (st->channel) {
    case CHANNEL_NULL:
        job_set_outcome(job, OUTCOME_SENT, "null channel");
        job_done(job, e);
        return;
    case CHANNEL_EMAIL:
        if (blank(job->email)) {
            job_set_outcome(job, OUTCOME_SKIPPED, "no e-mail address");
            job_done(job, e);
            return;
        }
        break;
    case CHANNEL_SMS:
        if (blank(job->mobile)) {
            job_set_outcome(job, OUTCOME_SKIPPED, "no mobile number");
            job_done(job, e);
            return;
        }
        break;
    case CHANNEL_PAPER:
        if (blank(job->postal_address)) {
            d->metrics->no_postal_address++;
            job_set_outcome(job, OUTCOME_PERMANENT_FAILURE, "no postal address");
            job_done(job, e);
            return;
        }
        break;
    default:
        break;
    }
    if (d->channel_state[st->channel] == NULL) {
        /* the step was frozen under a config that had this channel; the current one has not */
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "channel %s is not configured",
                        channel_name(st->channel));
        job_done(job, e);
        return;
    }
    d->channel_ops[st->channel]->send(d->channel_state[st->channel], job);
}

/* ---- claiming ---- */

static void claimed(PGresult *res, void *arg)
{
    struct engine *e = arg;
    int rows;

    e->claiming = 0;
    if (!db_result_ok(res)) {
        if (res)
            log_err("claiming due escalations failed: %s", PQresultErrorMessage(res));
        if (e->draining)
            daemon_check_drained(e->d);
        return;
    }
    rows = PQntuples(res);
    e->idle_claims = rows == 0 ? e->idle_claims + 1 : 0;
    for (int i = 0; i < rows; i++) {
        int64_t id = strtoll(PQgetvalue(res, i, CLAIM_ID), NULL, 10);
        learn_clock(e, PQgetvalue(res, i, CLAIM_NOW));
        if (strcmp(PQgetvalue(res, i, CLAIM_IS_READ), "t") == 0) {
            e->d->metrics->read_stops++;
            log_message(LOG_INFO, id, "message %" PRId64 " was read before step %s: escalation stopped",
                        id, PQgetvalue(res, i, CLAIM_STEP));
            continue;
        }
        struct send_job *job = job_from_row(res, i);
        if (job == NULL) {
            log_err("out of memory: message %" PRId64 " stays claimed until its lease runs out", id);
            continue;
        }
        dispatch(e, job);
    }
    daemon_update_status(e->d);
    if (e->draining) {
        daemon_check_drained(e->d);
        return;
    }
    /* a full batch: there is more due right now */
    if (rows >= CLAIM_BATCH)
        claim(e);
    else
        schedule_rearm(e);
}

static void claim(struct engine *e)
{
    if (e->claiming || e->draining || !db_connected(e->d->db))
        return;
    if (e->in_flight + e->recording >= MAX_IN_FLIGHT) {
        e->throttled = 1;       /* back-pressure: recorded outcomes call us again */
        return;
    }
    const char *params[] = { e->d->cfg->instance, STR(CLAIM_BATCH), LEASE_SECONDS };
    e->claiming = 1;
    db_query(e->d->db, 0, SQL_CLAIM, 3, params, claimed, e);
}

/* ---- life cycle ---- */

static void leases_released(PGresult *res, void *arg)
{
    (void)arg;
    if (res && !db_result_ok(res))
        log_err("releasing our old leases failed: %s", PQresultErrorMessage(res));
    else if (res && strcmp(PQcmdTuples(res), "0") != 0)
        log_info("took back %s escalations leased by this instance before a restart",
                 PQcmdTuples(res));
}

void engine_connected(struct engine *e)
{
    const char *params[] = { e->d->cfg->instance };

    if (!e->leases_taken_back) {
        e->leases_taken_back = 1;
        db_query(e->d->db, 0, SQL_RELEASE_OWN_LEASES, 1, params, leases_released, e);
    }
    /* whatever happened while we were away: reads, new messages, due work */
    e->adopting = e->claiming = e->rearming = e->rearm_again = 0;
    mark_read(e, NULL);
    adopt(e);
    claim(e);
}

void engine_notify(struct engine *e, const char *payload)
{
    if (strncmp(payload, "read:", 5) == 0)
        mark_read(e, payload + 5);
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
    return e->in_flight + e->recording + e->claiming;
}

int engine_in_flight(const struct engine *e)
{
    return e->in_flight;
}

struct engine *engine_new(struct daemon *d)
{
    struct engine *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->d = d;
    e->due_timer = evtimer_new(d->base, due_timer_cb, e);
    e->rearm_ev = event_new(d->base, -1, 0, rearm_cb, e);
    e->flush_ev = event_new(d->base, -1, 0, flush_records, e);
    if (e->due_timer == NULL || e->rearm_ev == NULL || e->flush_ev == NULL) {
        engine_free(e);
        return NULL;
    }
    return e;
}

void engine_free(struct engine *e)
{
    if (e == NULL)
        return;
    if (e->due_timer)
        event_free(e->due_timer);
    if (e->rearm_ev)
        event_free(e->rearm_ev);
    if (e->flush_ev)
        event_free(e->flush_ev);
    while (e->unwritten) {
        struct record *r = e->unwritten;
        e->unwritten = r->next_record;
        log_unrecorded(r->job, "stopped before it was written");
        job_free(r->job);
        free(r);
    }
    free(e);
}
