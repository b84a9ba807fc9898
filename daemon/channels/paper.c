/* The paper channel: a letter rendered into the spool (DESIGN.md §8), handed over to the print
 * house at the daily cut-off, withdrawn when the message is read before that.
 *
 * A letter must never be sent twice, so every send goes
 *
 *   claim the letter in herinnerd.letters (loop, database) -> render + fsync + link into
 *   pending/ (worker) -> mark it queued (loop, database) -> job->done
 *
 * The database decides which instance writes a letter; the spool's link() never overwrites and
 * reports a letter that exists, so a crash anywhere in between repeats nothing. All disk I/O runs
 * on a one-thread worker pool (one thread: the spool serialises on its lock anyway). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "channel.h"
#include "daemon.h"
#include "db.h"
#include "ledger.h"
#include "letter.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "paper_sql.h"
#include "pgarray.h"
#include "spool.h"
#include "template_files.h"
#include "workers.h"

struct paper_state {
    struct daemon *d;
    struct workers *pool;
    char *spool;                /* fixed for the daemon's life: workers read it */
    int cutoff;                 /* minutes after local midnight */
    struct event *cutoff_ev;
    struct event *rearm_ev;
    time_t last_cutoff;
    int handing_over;
    int in_flight;              /* sends, withdrawals, hand-overs and their records */
    int reconciled;             /* looked at the spool after (re)starting */
};

/* One letter on its way from claim to queued. */
struct paper_write {
    struct paper_state *st;
    struct send_job *job;
    char *link;                 /* the message's link, or the inbox url */
    char *return_address;       /* paper.sender_address, or NULL */
    char *contact;              /* paper.contact, or NULL */
    struct templates *templates; /* the templates directory's wording */
    time_t date;
    int rc, err_no;
    char path[PATH_MAX];
    char err[256];
};

/* One letter that moved (or should move) in the spool: withdrawal, hand-over, reconciliation. */
struct paper_move {
    struct paper_state *st;
    int64_t message_id;
    int step;
    int rc;                     /* spool result */
    enum outcome outcome;       /* what is being recorded */
    char detail[128];           /* and its detail */
    char when[64];              /* read_at, or the hand-over date */
    char path[PATH_MAX];
    char err[256];
};

/* A cut-off: the letters one spool_handover moved. */
struct paper_handover {
    struct paper_state *st;
    char date[16];
    int rc, moved;
    char err[256];
    struct paper_move *letters;
    size_t n, cap;
};

static void paper_message_read(void *state, const char *message_id);

static void work_finished(struct paper_state *st)
{
    st->in_flight--;
    if (st->d->draining)
        daemon_check_drained(st->d);
}

static void fmt_id(char *buf, size_t len, int64_t id)
{
    snprintf(buf, len, "%" PRId64, id);
}

static const char *db_error(const PGresult *res)
{
    return res ? PQresultErrorMessage(res) : "no connection to the database";
}

/* ---- recording moves (withdrawn, handed-over) ---- */

static void state_recorded(PGresult *res, void *arg)
{
    struct paper_move *m = arg;

    if (res == NULL)
        log_message(LOG_ERR, m->message_id, "letter of message %" PRId64 " step %d is now %s: "
                    "recorded as an attempt, its letter row follows at the next start",
                    m->message_id, m->step, m->path);
    else if (!db_result_ok(res))
        log_message(LOG_ERR, m->message_id, "updating the letter row of message %" PRId64
                    " step %d (%s) failed: %s", m->message_id, m->step, m->path,
                    PQresultErrorMessage(res));
    work_finished(m->st);
    free(m);
}

/* The letter's row and those of the other messages it names follow the file. */
static void move_rows(struct paper_move *m)
{
    char id[32], step[16];

    fmt_id(id, sizeof(id), m->message_id);
    snprintf(step, sizeof(step), "%d", m->step);
    const char *params[] = { id, step, outcome_name(m->outcome), m->path };
    db_query(m->st->d->db, DB_KEEP, SQL_PAPER_MOVED, 4, params, state_recorded, m);
}

/* A letter naming several messages moved: each of the others gets the move as an attempt of
 * its own (the ledger writes each fact once), then the rows follow. */
static void members_found(PGresult *res, void *arg)
{
    struct paper_move *m = arg;
    char fact[96];

    if (!db_result_ok(res))
        log_message(LOG_WARNING, m->message_id, "paper: looking for the other messages of the "
                    "letter %s failed (%s): its move is recorded for message %" PRId64 " only",
                    m->path, res ? PQresultErrorMessage(res) : "no connection to the database",
                    m->message_id);
    for (int i = 0; db_result_ok(res) && i < PQntuples(res); i++) {
        int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        int step = atoi(PQgetvalue(res, i, 1));
        snprintf(fact, sizeof(fact), PAPER_MOVE_FACT, id, step, outcome_name(m->outcome));
        struct attempt a = { .message_id = id, .step = step, .channel = CHANNEL_PAPER,
                             .outcome = m->outcome, .detail = m->detail, .address = m->path,
                             .fact = fact };
        metrics_attempt(m->st->d->metrics, CHANNEL_PAPER, m->outcome);
        ledger_write(m->st->d->ledger, &a, NULL, NULL, NULL);
    }
    move_rows(m);
}

/* The attempt is written: now the other messages of the letter, and the rows. */
static void move_recorded(void *arg, int recorded, int moved, int known)
{
    struct paper_move *m = arg;
    char id[32], step[16];

    (void)moved;
    (void)known;
    if (!recorded) {
        /* the ledger logged the fact; the row stays 'queued', so the next start looks again */
        work_finished(m->st);
        free(m);
        return;
    }
    fmt_id(id, sizeof(id), m->message_id);
    snprintf(step, sizeof(step), "%d", m->step);
    const char *params[] = { id, step };
    db_query(m->st->d->db, DB_KEEP, SQL_PAPER_MEMBERS, 2, params, members_found, m);
}

/* Record that m's letter is now at m->path: the attempt first (the fact), then the letter's row.
 * A crash in between leaves the row 'queued', and the next start records the move again, which
 * the fact's key makes a no-op. Takes m. */
static void record_move(struct paper_move *m, enum outcome o, const char *detail)
{
    struct paper_state *st = m->st;
    char fact[96];

    metrics_attempt(st->d->metrics, CHANNEL_PAPER, o);
    log_message(LOG_INFO, m->message_id, "message %" PRId64 " step %d paper: %s (%s)",
                m->message_id, m->step, detail, m->path);
    m->outcome = o;
    snprintf(m->detail, sizeof(m->detail), "%s", detail);
    snprintf(fact, sizeof(fact), PAPER_MOVE_FACT, m->message_id, m->step, outcome_name(o));
    struct attempt a = { .message_id = m->message_id, .step = m->step, .channel = CHANNEL_PAPER,
                         .outcome = o, .detail = detail, .address = m->path, .fact = fact };
    st->in_flight++;
    ledger_write(st->d->ledger, &a, NULL, move_recorded, m);
}

/* ---- sending: claim, render, queue ---- */

static void write_free(struct paper_write *w)
{
    free(w->link);
    free(w->return_address);
    free(w->contact);
    templates_free(w->templates);
    free(w);
}

static void finish_send(struct paper_write *w)
{
    struct paper_state *st = w->st;
    struct send_job *job = w->job;

    write_free(w);
    job->done(job, job->done_arg);
    work_finished(st);
}

static void cutoff_text(const struct paper_state *st, char *buf, size_t len)
{
    snprintf(buf, len, "%02d:%02d", st->cutoff / 60, st->cutoff % 60);
}

static void queued(PGresult *res, void *arg)
{
    struct paper_write *w = arg;
    struct send_job *job = w->job;
    char at[16];

    if (!db_result_ok(res) || PQntuples(res) != 1) {
        /* the letter is in pending/: a retry finds it there and only records it */
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "letter written to %s, but recording it "
                        "failed: %s", w->path, res && db_result_ok(res) ? "no letter row" :
                        db_error(res));
        finish_send(w);
        return;
    }
    const char *state = PQgetvalue(res, 0, 0);
    int ours = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    snprintf(job->address, sizeof(job->address), "%s", PQgetvalue(res, 0, 1));
    cutoff_text(w->st, at, sizeof(at));
    if (strcmp(state, "queued") == 0 && w->rc == SPOOL_OK && ours)
        job_set_outcome(job, OUTCOME_QUEUED, "letter queued for the cut-off at %s", at);
    else if (!ours && strcmp(state, "writing") == 0)
        /* our claim ran out while we wrote; the one that took over finds this file */
        job_set_outcome(job, OUTCOME_QUEUED, "letter in the spool; its claim was taken over "
                        "while it was written");
    else
        job_set_outcome(job, OUTCOME_QUEUED, "letter already in the spool");
    /* read while we were writing: SQL_PAPER_TO_WITHDRAW did not see it then (for a letter
     * naming several messages it looks whether all of them are) */
    struct paper_state *st = w->st;
    int read = strcmp(PQgetvalue(res, 0, 2), "t") == 0 || job->nmembers > 0;
    char id[32];
    fmt_id(id, sizeof(id), job->message_id);
    finish_send(w);
    if (read)
        paper_message_read(st, id);
}

static int render(const char *tmp_path, struct spool_facts *facts, void *arg, char *err,
                  size_t errlen)
{
    const struct paper_write *w = arg;
    const struct send_job *job = w->job;
    struct letter_facts lf = { 0 };
    struct letter l = {
        .message_id = job->message_id,
        .step = job->step,
        .sender = job->sender,
        .recipient_name = job->recipient_name,
        .postal_address = job->postal_address,
        .subject = job->hide_subject ? NULL : job->subject,
        .link = w->link,
        .return_address = w->return_address,
        .language = job->language,
        .date = w->date,
        .received = job->created_at > 0 ? (time_t)job->created_at : 0,
        .contact = w->contact,
        .templates = w->templates,
        .template = job->template,
        .due = job->due_at > 0 ? (time_t)job->due_at : 0,
        .count = job->bundle_count,
        .messages = job->bundle_list,
        .facts = &lf,
    };

    if (letter_render_pdf(&l, tmp_path, err, errlen) < 0)
        return -1;
    memcpy(facts->country, lf.country, sizeof facts->country);
    facts->pages = lf.pages;
    return 0;
}

/* worker */
static void write_work(void *arg)
{
    struct paper_write *w = arg;

    /* a writer that died left its temp file behind (unlocked): whoever writes next removes it;
     * files a live writer holds are locked and stay */
    spool_clean_tmp(w->st->spool);
    errno = 0;
    w->rc = spool_write_pending(w->st->spool, w->job->message_id, w->job->step, render, w,
                                w->path, sizeof(w->path), w->err, sizeof(w->err));
    w->err_no = errno;
}

static void released(PGresult *res, void *arg)
{
    struct paper_write *w = arg;

    if (res && !db_result_ok(res))
        log_warn("paper: releasing the claim on message %" PRId64 " step %d failed: %s",
                 w->job->message_id, w->job->step, PQresultErrorMessage(res));
    finish_send(w);
}

static void written(void *arg)
{
    struct paper_write *w = arg;
    struct send_job *job = w->job;
    struct paper_state *st = w->st;
    char id[32], step[16];

    fmt_id(id, sizeof(id), job->message_id);
    snprintf(step, sizeof(step), "%d", job->step);
    if (w->rc == SPOOL_OK || w->rc == SPOOL_EXISTS) {
        const char *params[] = { id, step, w->path, job->claim };
        db_query(st->d->db, 0, SQL_PAPER_QUEUED, 4, params, queued, w);
        return;
    }
    /* EINVAL comes from the renderer: an address that cannot be printed will not get better */
    if (w->err_no == EINVAL)
        job_set_outcome(job, OUTCOME_PERMANENT_FAILURE, "%s", w->err);
    else
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "spool %s: %s", st->spool, w->err);
    const char *params[] = { id, step, job->claim };
    db_query(st->d->db, 0, SQL_PAPER_RELEASE, 3, params, released, w);
}

static void write_letter(struct paper_write *w);

/* The other messages of the letter have their letter rows: those written already drop out. */
static void members_claimed(PGresult *res, void *arg)
{
    struct paper_write *w = arg;
    struct send_job *job = w->job;
    int ok = db_result_ok(res);

    for (size_t i = 0; i < job->nmembers; i++) {
        struct send_job *m = job->members[i];
        int found = 0;
        for (int r = 0; ok && r < PQntuples(res) && !found; r++) {
            if (strtoll(PQgetvalue(res, r, 0), NULL, 10) != m->message_id)
                continue;
            found = 1;
            if (strcmp(PQgetvalue(res, r, 1), "writing") != 0) {
                m->own_outcome = 1;
                snprintf(m->address, sizeof(m->address), "%s", PQgetvalue(res, r, 2));
                job_set_outcome(m, OUTCOME_QUEUED, "letter already in the spool");
            }
        }
        if (!found) {
            m->own_outcome = 1;
            job_set_outcome(m, OUTCOME_TEMPORARY_FAILURE, ok ? "letter is being written by "
                            "another instance" : "claiming the letter failed: %s", db_error(res));
        }
    }
    if (job_bundle_text(job) == -1) {
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "out of memory");
        const char *params[3];
        char id[32], step[16];
        fmt_id(id, sizeof(id), job->message_id);
        snprintf(step, sizeof(step), "%d", job->step);
        params[0] = id, params[1] = step, params[2] = job->claim;
        db_query(w->st->d->db, 0, SQL_PAPER_RELEASE, 3, params, released, w);
        return;
    }
    write_letter(w);
}

static void claim_members(struct paper_write *w)
{
    struct send_job *job = w->job;
    struct pg_array ids, steps;
    char num[32], lid[32], lstep[16];

    pg_array_open(&ids);
    pg_array_open(&steps);
    for (size_t i = 0; i < job->nmembers; i++) {
        fmt_id(num, sizeof(num), job->members[i]->message_id);
        pg_array_add(&ids, num);
        snprintf(num, sizeof(num), "%d", job->members[i]->step);
        pg_array_add(&steps, num);
    }
    char *id_list = pg_array_close(&ids), *step_list = pg_array_close(&steps);
    fmt_id(lid, sizeof(lid), job->message_id);
    snprintf(lstep, sizeof(lstep), "%d", job->step);
    if (id_list == NULL || step_list == NULL) {
        free(id_list);
        free(step_list);
        members_claimed(NULL, w);      /* out of memory: each member goes again on its own */
        return;
    }
    const char *params[] = { id_list, step_list, w->st->d->cfg->instance, job->claim, lid, lstep };
    db_query(w->st->d->db, 0, SQL_PAPER_INTENT_MEMBERS, 6, params, members_claimed, w);
    free(id_list);
    free(step_list);
}

static void claimed(PGresult *res, void *arg)
{
    struct paper_write *w = arg;
    struct send_job *job = w->job;

    if (!db_result_ok(res)) {
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "claiming the letter failed: %s",
                        db_error(res));
        finish_send(w);
        return;
    }
    if (PQntuples(res) == 0) {
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE,
                        "letter is being written by another instance");
        finish_send(w);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "writing") != 0) {
        /* written before: a crash between the file and the record, or another instance */
        snprintf(job->address, sizeof(job->address), "%s", PQgetvalue(res, 0, 1));
        job_set_outcome(job, OUTCOME_QUEUED, "letter already in the spool");
        /* the messages it would have named try again, each in a letter of its own or another
         * bundle; their own rows say whether they are printed already */
        for (size_t i = 0; i < job->nmembers; i++) {
            job->members[i]->own_outcome = 1;
            job_set_outcome(job->members[i], OUTCOME_TEMPORARY_FAILURE, "the letter of message "
                            "%" PRId64 " that was to name it exists already", job->message_id);
        }
        finish_send(w);
        return;
    }
    if (job->nmembers > 0) {
        claim_members(w);
        return;
    }
    write_letter(w);
}

static void write_letter(struct paper_write *w)
{
    struct send_job *job = w->job;

    if (workers_submit(w->st->pool, write_work, written, w) == -1) {
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "out of memory");
        finish_send(w);
    }
}

static void paper_send(void *state, struct send_job *job)
{
    struct paper_state *st = state;
    const struct config *cfg = st->d->cfg;
    struct paper_write *w = calloc(1, sizeof(*w));
    char id[32], step[16];

    st->in_flight++;
    if (w == NULL) {
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "out of memory");
        job->done(job, job->done_arg);
        work_finished(st);
        return;
    }
    w->st = st;
    w->job = job;
    w->date = time(NULL);
    /* copied here: a reload may free the config while the worker renders */
    w->link = strdup(link_for_citizen(job->link, cfg->inbox_url, cfg->allow_http_links,
                                      job->notes, sizeof(job->notes)));
    /* copied: a reload may free the config while the worker renders */
    if (cfg->paper.sender_address)
        w->return_address = strdup(cfg->paper.sender_address);
    if (cfg->paper.contact)
        w->contact = strdup(cfg->paper.contact);
    w->templates = templates_dup(cfg->templates);
    if (w->link == NULL || (cfg->paper.contact && w->contact == NULL) || w->templates == NULL) {
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "out of memory");
        finish_send(w);
        return;
    }
    fmt_id(id, sizeof(id), job->message_id);
    snprintf(step, sizeof(step), "%d", job->step);
    const char *params[] = { id, step, cfg->instance, job->claim };
    db_query(st->d->db, 0, SQL_PAPER_INTENT, 4, params, claimed, w);
}

/* ---- withdrawing letters of read messages ---- */

static struct paper_move *move_new(struct paper_state *st, int64_t id, int step, const char *when)
{
    struct paper_move *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        log_err("paper: out of memory looking at the letter of message %" PRId64, id);
        return NULL;
    }
    m->st = st;
    m->message_id = id;
    m->step = step;
    snprintf(m->when, sizeof(m->when), "%s", when);
    return m;
}

/* worker: withdraw, then look where the letter is: withdrawn now or before (a crash before the
 * record, another instance on this spool), or handed over already */
static void withdraw_work(void *arg)
{
    struct paper_move *m = arg;

    m->rc = spool_withdraw(m->st->spool, m->message_id, m->step, m->err, sizeof(m->err));
    if (m->rc != SPOOL_ERROR)
        m->rc = spool_locate(m->st->spool, m->message_id, m->step, m->path, sizeof(m->path),
                             m->err, sizeof(m->err));
}

static void unwritten(PGresult *res, void *arg)
{
    struct paper_move *m = arg;
    struct paper_state *st = m->st;

    if (!db_result_ok(res))
        log_err("paper: settling the letter of message %" PRId64 " step %d failed: %s",
                m->message_id, m->step, res ? PQresultErrorMessage(res) : "no connection");
    else if (PQntuples(res) > 0)
        log_message(LOG_INFO, m->message_id, "message %" PRId64 " read at %s: its letter (step "
                    "%d) was never written (the instance writing it stopped first)",
                    m->message_id, m->when, m->step);
    else
        /* queued, or still someone's to write: another host's spool, most likely */
        log_message(LOG_INFO, m->message_id, "message %" PRId64 " read: its letter (step %d) is "
                    "not in this spool", m->message_id, m->step);
    free(m);
    work_finished(st);
}

static void withdrawn(void *arg)
{
    struct paper_move *m = arg;
    struct paper_state *st = m->st;
    char detail[128];

    switch (m->rc) {
    case SPOOL_WITHDRAWN:
        snprintf(detail, sizeof(detail), "read at %s", m->when);
        record_move(m, OUTCOME_WITHDRAWN, detail);
        break;
    case SPOOL_HANDED_OVER:
        log_message(LOG_WARNING, m->message_id, "message %" PRId64 " read at %s, but its letter "
                    "(step %d) was handed over to the print house already: %s", m->message_id,
                    m->when, m->step, m->path);
        free(m);
        break;
    case SPOOL_ERROR:
        log_message(LOG_ERR, m->message_id, "withdrawing the letter of message %" PRId64
                    " step %d failed: %s; it may still be handed over", m->message_id, m->step,
                    m->err);
        free(m);
        break;
    default: {
        /* a letter whose writer died before its file existed, or another host's spool */
        char id[32], step[16];
        fmt_id(id, sizeof(id), m->message_id);
        snprintf(step, sizeof(step), "%d", m->step);
        const char *params[] = { id, step };
        st->in_flight++;
        db_query(st->d->db, 0, SQL_PAPER_UNWRITTEN, 2, params, unwritten, m);
    }
    }
    work_finished(st);
}

/* Rows (message_id, step, when) from a query: hand each letter to the worker as a move. */
static void submit_moves(struct paper_state *st, PGresult *res, const char *what, work_fn work,
                         work_fn done)
{
    if (!db_result_ok(res)) {
        if (res)
            log_err("paper: looking for %s failed: %s", what, PQresultErrorMessage(res));
        work_finished(st);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        struct paper_move *m = move_new(st, strtoll(PQgetvalue(res, i, 0), NULL, 10),
                                        atoi(PQgetvalue(res, i, 1)), PQgetvalue(res, i, 2));
        if (m == NULL)
            continue;
        st->in_flight++;
        if (workers_submit(st->pool, work, done, m) == -1) {
            free(m);
            work_finished(st);
        }
    }
    work_finished(st);
}

static void to_withdraw_found(PGresult *res, void *arg)
{
    submit_moves(arg, res, "letters of read messages", withdraw_work, withdrawn);
}

static void reconcile(struct paper_state *st);

static void paper_message_read(void *state, const char *message_id)
{
    struct paper_state *st = state;
    const char *params[] = { message_id };

    /* NULL: just (re)connected; also the moment to catch up on moves recorded by no one */
    if (message_id == NULL && !st->reconciled) {
        st->reconciled = 1;
        reconcile(st);
    }
    st->in_flight++;
    db_query(st->d->db, 0, SQL_PAPER_TO_WITHDRAW, 1, params, to_withdraw_found, st);
}

/* ---- reconciling after a restart ---- */

/* worker */
static void locate_work(void *arg)
{
    struct paper_move *m = arg;

    m->rc = spool_locate(m->st->spool, m->message_id, m->step, m->path, sizeof(m->path), m->err,
                         sizeof(m->err));
}

/* The date of a letter in handed-over/<date>/, from its path. */
static void handover_date(const char *path, char *date, size_t len)
{
    const char *p = strstr(path, "/handed-over/");

    snprintf(date, len, "%.10s", p ? p + strlen("/handed-over/") : "?");
}

static void located(void *arg)
{
    struct paper_move *m = arg;
    struct paper_state *st = m->st;
    char detail[128], date[16];

    if (m->rc == SPOOL_HANDED_OVER) {
        handover_date(m->path, date, sizeof(date));
        snprintf(detail, sizeof(detail), "handed over to the print house on %s", date);
        record_move(m, OUTCOME_HANDED_OVER, detail);
    } else if (m->rc == SPOOL_WITHDRAWN && m->when[0]) {
        snprintf(detail, sizeof(detail), "read at %s", m->when);
        record_move(m, OUTCOME_WITHDRAWN, detail);
    } else {
        if (m->rc == SPOOL_ERROR)
            log_warn("paper: looking for the letter of message %" PRId64 " step %d: %s",
                     m->message_id, m->step, m->err);
        free(m);
    }
    work_finished(st);
}

static void unsettled_found(PGresult *res, void *arg)
{
    submit_moves(arg, res, "unsettled letters", locate_work, located);
}

/* Letters recorded as queued that the spool has moved on (a crash between a move and its
 * record, or a hand-over whose records were lost): record where they are now. */
static void reconcile(struct paper_state *st)
{
    st->in_flight++;
    db_query(st->d->db, 0, SQL_PAPER_UNSETTLED, 0, NULL, unsettled_found, st);
}

/* ---- the daily cut-off ---- */

/* The first cut-off after `after`, local time (TZ is the config's). mktime with tm_isdst = -1
 * finds the right offset on DST days; a cut-off in the spring gap moves to the hour after. */
static time_t next_cutoff(int cutoff, time_t after)
{
    struct tm now, tm;

    localtime_r(&after, &now);
    for (int day = 0; day <= 2; day++) {
        tm = now;
        tm.tm_mday += day;
        tm.tm_hour = cutoff / 60;
        tm.tm_min = cutoff % 60;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        time_t t = mktime(&tm);
        if (t > after)
            return t;
    }
    return after + 86400;
}

static void arm_cutoff(struct paper_state *st)
{
    time_t now = time(NULL), at;
    char text[64];
    struct tm tm;

    /* a timer firing a little early must not find the cut-off it is for again */
    at = next_cutoff(st->cutoff, now < st->last_cutoff + 60 ? st->last_cutoff + 60 : now);
    struct timeval tv = { at - now, 0 };
    evtimer_add(st->cutoff_ev, &tv);
    localtime_r(&at, &tm);
    strftime(text, sizeof(text), "%Y-%m-%d %H:%M %Z", &tm);
    log_info("paper: next cut-off at %s", text);
}

static int handover_add(struct paper_handover *h, int64_t id, int step, const char *path)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct paper_move *v = realloc(h->letters, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        h->letters = v;
        h->cap = cap;
    }
    struct paper_move *m = &h->letters[h->n++];
    memset(m, 0, sizeof(*m));
    m->st = h->st;
    m->message_id = id;
    m->step = step;
    snprintf(m->path, sizeof(m->path), "%s", path);
    return 0;
}

/* worker, called by spool_handover for each letter it moved */
static void handover_collect(int64_t id, int step, const char *path, void *arg)
{
    struct paper_handover *h = arg;

    if (handover_add(h, id, step, path) == -1)
        h->rc = SPOOL_ERROR; /* logged on the loop; reconcile() records it after a restart */
}

/* worker */
static void handover_work(void *arg)
{
    struct paper_handover *h = arg;
    int rc = spool_handover(h->st->spool, h->date, handover_collect, h, &h->moved, h->err,
                            sizeof(h->err));

    if (rc != SPOOL_OK)
        h->rc = rc;
}

static void handed_over(void *arg)
{
    struct paper_handover *h = arg;
    struct paper_state *st = h->st;
    char detail[128];

    st->handing_over = 0;
    if (h->rc != SPOOL_OK)
        log_err("paper: the cut-off of %s failed in part: %s", h->date,
                h->err[0] ? h->err : "out of memory");
    log_info("paper: cut-off %s: %d letters handed over to the print house", h->date, h->moved);
    snprintf(detail, sizeof(detail), "handed over to the print house on %s", h->date);
    for (size_t i = 0; i < h->n; i++) {
        struct paper_move *m = malloc(sizeof(*m));
        if (m == NULL) {
            log_err("paper: out of memory: letter %s handed over but not recorded",
                    h->letters[i].path);
            continue;
        }
        *m = h->letters[i];
        record_move(m, OUTCOME_HANDED_OVER, detail);
    }
    free(h->letters);
    free(h);
    arm_cutoff(st);
    work_finished(st);
}

static void cutoff_cb(evutil_socket_t fd, short what, void *arg)
{
    struct paper_state *st = arg;
    struct paper_handover *h;
    struct tm tm;

    (void)fd;
    (void)what;
    if (st->d->draining)
        return;
    st->last_cutoff = time(NULL);
    if (st->handing_over || (h = calloc(1, sizeof(*h))) == NULL) {
        arm_cutoff(st);
        return;
    }
    h->st = st;
    localtime_r(&st->last_cutoff, &tm);
    strftime(h->date, sizeof(h->date), "%Y-%m-%d", &tm);
    st->in_flight++;
    st->handing_over = 1;
    if (workers_submit(st->pool, handover_work, handed_over, h) == -1) {
        st->handing_over = 0;
        free(h);
        arm_cutoff(st);
        work_finished(st);
    }
}

/* Runs after the reload's callback, once daemon_push_config has applied the new time zone. */
static void rearm_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    arm_cutoff(arg);
}

/* ---- life cycle ---- */

struct clean_tmp {
    struct paper_state *st;
    int removed;
};

/* worker */
static void clean_work(void *arg)
{
    struct clean_tmp *c = arg;

    c->removed = spool_clean_tmp(c->st->spool);
}

static void clean_done(void *arg)
{
    struct clean_tmp *c = arg;

    if (c->removed > 0)
        log_info("paper: removed %d unfinished letters left in %s/tmp by a crash", c->removed,
                 c->st->spool);
    else if (c->removed < 0)
        log_warn("paper: cleaning %s/tmp failed", c->st->spool);
    work_finished(c->st);
    free(c);
}

static void paper_free(struct paper_state *st)
{
    workers_free(st->pool);
    if (st->cutoff_ev)
        event_free(st->cutoff_ev);
    if (st->rearm_ev)
        event_free(st->rearm_ev);
    free(st->spool);
    free(st);
}

static void *paper_start(struct daemon *d)
{
    const struct paper_config *pc = &d->cfg->paper;
    struct paper_state *st = calloc(1, sizeof(*st));
    struct clean_tmp *c = NULL;
    char err[512];

    if (st == NULL)
        return NULL;
    st->d = d;
    st->cutoff = pc->cutoff;
    if ((st->spool = strdup(pc->spool)) == NULL)
        goto fail;
    /* at start-up, before the loop runs: a spool we cannot write is a configuration error */
    if (spool_open(st->spool, err, sizeof(err)) != SPOOL_OK) {
        log_err("paper: cannot use the spool %s: %s", st->spool, err);
        goto fail;
    }
    if ((st->pool = workers_new(d->base, 1, "paper")) == NULL ||
        (st->cutoff_ev = evtimer_new(d->base, cutoff_cb, st)) == NULL ||
        (st->rearm_ev = event_new(d->base, -1, 0, rearm_cb, st)) == NULL ||
        (c = calloc(1, sizeof(*c))) == NULL)
        goto fail;
    c->st = st;
    if (workers_submit(st->pool, clean_work, clean_done, c) == -1)
        goto fail;
    st->in_flight++;
    arm_cutoff(st);
    return st;
fail:
    free(c);
    paper_free(st);
    return NULL;
}

/* nothing to build: the cut-off is a number, the spool stays until a restart */
static int paper_prepare(void *state, const struct config *cfg, void **prepared, char *err,
                         size_t errlen)
{
    (void)state;
    (void)cfg;
    (void)err;
    (void)errlen;
    *prepared = NULL;
    return 0;
}

static void paper_commit(void *state, const struct config *cfg, void *prepared)
{
    struct paper_state *st = state;

    (void)prepared;
    if (strcmp(cfg->paper.spool, st->spool) != 0)
        log_warn("paper: a new spool directory takes effect at restart");
    st->cutoff = cfg->paper.cutoff;
    event_active(st->rearm_ev, 0, 0);
}

static int paper_in_flight(void *state)
{
    return ((struct paper_state *)state)->in_flight;
}

static void paper_stop(void *state)
{
    paper_free(state);
}

const struct channel_ops paper_channel = {
    .name = "paper",
    .start = paper_start,
    .send = paper_send,
    .prepare = paper_prepare,
    .commit = paper_commit,
    .message_read = paper_message_read,
    .in_flight = paper_in_flight,
    .stop = paper_stop,
};
