/* The e-mail channel. libesmtp blocks, so sessions run in a small worker pool: jobs collected in
 * one loop iteration are cut into batches, one SMTP session (one connection, pipelined) per
 * batch, and the outcomes come back to the loop. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <auth-client.h>
#include <libesmtp.h>

#include "channel.h"
#include "daemon.h"
#include "dsn.h"
#include "link.h"
#include "errmsg.h"
#include "log.h"
#include "mime.h"
#include "template.h"
#include "template_files.h"
#include "utf8.h"
#include "workers.h"

/* What a session needs from the config, copied so a reload cannot pull it from under a worker.
 * Reference-counted on the loop thread only. */
struct email_settings {
    int refs;
    char *server, *from, *envelope_from, *domain, *inbox_url;
    char *return_path;          /* "bounces+{token}@...": each attempt's own envelope sender */
    struct templates *templates; /* the templates directory's wording */
    char *username, *password;  /* SMTP AUTH (PLAIN/LOGIN), when a username is set */
    char *helo;                 /* EHLO name; NULL = the host name */
    enum starttls_mode starttls;
    long timeout;
    int batch;
    int link, allow_http_links;
};

struct email_state {
    struct daemon *d;
    struct workers *pool;
    struct email_settings *settings;
    struct send_job *queue_head, *queue_tail;
    struct event *flush_ev;
    int in_flight;
};

struct email_batch {
    struct email_state *st;
    struct email_settings *settings;
    struct send_job *jobs;
};

static void settings_unref(struct email_settings *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    free(s->server);
    free(s->from);
    free(s->envelope_from);
    free(s->domain);
    free(s->inbox_url);
    free(s->username);
    free(s->password);
    free(s->helo);
    free(s->return_path);
    templates_free(s->templates);
    free(s);
}

static struct email_settings *settings_new(const struct config *cfg, char *err, size_t errlen)
{
    struct email_settings *s = calloc(1, sizeof(*s));
    char *display = NULL;

    if (s == NULL) {
        errmsg_set(err, errlen, "email: out of memory");
        return NULL;
    }
    s->refs = 1;
    s->server = strdup(cfg->email.server);
    s->inbox_url = strdup(cfg->inbox_url);
    s->starttls = cfg->email.starttls;
    if (cfg->email.username) {
        s->username = strdup(cfg->email.username);
        s->password = strdup(cfg->email.password ? cfg->email.password : "");
    }
    s->timeout = cfg->email.timeout;
    if ((s->templates = templates_dup(cfg->templates)) == NULL) {
        errmsg_set(err, errlen, "email: out of memory");
        settings_unref(s);
        return NULL;
    }
    s->batch = cfg->email.batch;
    s->link = cfg->email.link;
    s->allow_http_links = cfg->allow_http_links;
    if ((cfg->email.helo && (s->helo = strdup(cfg->email.helo)) == NULL) ||
        (cfg->email.return_path && (s->return_path = strdup(cfg->email.return_path)) == NULL)) {
        settings_unref(s);
        return NULL;
    }
    if (mime_parse_mailbox(cfg->email.from, &display, &s->envelope_from) == -1 ||
        s->server == NULL || s->inbox_url == NULL) {
        errmsg_set(err, errlen, "email: 'from' must be an address like \"Name <noreply@example.nl>\"");
        free(display);
        settings_unref(s);
        return NULL;
    }
    s->from = mime_mailbox(display, s->envelope_from);
    s->domain = strdup(strchr(s->envelope_from, '@') + 1);
    free(display);
    if (s->from == NULL || s->domain == NULL) {
        errmsg_set(err, errlen, "email: out of memory");
        settings_unref(s);
        return NULL;
    }
    return s;
}

/* ---- on a worker thread ---- */

/* The whole message, CRLF line ends. The Message-ID is new for every attempt (mime_message_id);
 * X-Herinnerd-Message keeps the stable (message, step), so that a repeat after a crash
 * (at-least-once) can still be recognised as the same notice. */
static char *build_message(const struct email_settings *s, struct send_job *job)
{
    char *subject = NULL, *body = NULL, *qp = NULL, *h_subject = NULL, *to = NULL, *out = NULL;
    char *display = NULL;      /* the recipient's name in To:, cut like the greeting's */
    char created[32] = "", due[32] = "", date[64], msgid[sizeof(job->external_id)], count[16];
    size_t outlen;
    time_t now = time(NULL);
    int show_link = job->step_link ? job->step_link > 0 : s->link;

    template_date(job->created_at, created, sizeof(created));     /* "" if not a sane date */
    template_date(job->due_at, due, sizeof(due));
    struct template_vars vars = {
        .due_date = due,
        .name = job->recipient_name,
        .sender = job->sender,
        .subject = job->hide_subject ? NULL : job->subject,
        .link = show_link ? link_for_citizen(job->link, s->inbox_url, s->allow_http_links,
                                             job->notes, sizeof(job->notes))
                          : NULL,
        .created = created,
        .count = count,
        .messages = job->bundle_count > 1 ? job->bundle_list : NULL,   /* NULL: this one */
    };
    snprintf(count, sizeof(count), "%d", job->bundle_count > 1 ? job->bundle_count : 1);
    if (template_render_with(s->templates, CHANNEL_EMAIL, job->template, job->language, &vars,
                             &subject, &body) == -1)
        goto out;
    if (job->recipient_name &&
        (display = utf8_cut(job->recipient_name, TEMPLATE_NAME_MAX)) == NULL)
        goto out;
    if ((qp = mime_quoted_printable(body)) == NULL ||
        (h_subject = mime_header("Subject", subject)) == NULL ||
        (to = mime_mailbox(display, job->email)) == NULL)
        goto out;
    mime_date(now, date, sizeof(date));
    if (mime_message_id(msgid, sizeof(msgid), s->domain) == -1)
        goto out;
    FILE *f = open_memstream(&out, &outlen);
    if (f == NULL)
        goto out;
    fprintf(f, "From: %s\r\nTo: %s\r\n%s\r\nDate: %s\r\n"
               "Message-ID: %s\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
               "Content-Transfer-Encoding: quoted-printable\r\n"
               "Auto-Submitted: auto-generated\r\n"
               "X-Herinnerd-Message: %" PRId64 "-%d\r\n\r\n%s",
            s->from, to, h_subject, date, msgid, job->message_id, job->step, qp);
    fclose(f);
    snprintf(job->external_id, sizeof(job->external_id), "%s", msgid);
out:
    free(subject);
    free(body);
    free(qp);
    free(h_subject);
    free(display);
    free(to);
    return out;
}

/* The envelope sender: with a return path, VERP: the token of this attempt's Message-ID (its
 * external id), so that a bounce names the attempt it is about (herinnerctl bounce). */
static int envelope_sender(const struct email_settings *s, const struct send_job *job,
                           char *out, size_t len)
{
    char token[DSN_TOKEN_MAX];

    if (s->return_path == NULL)
        return snprintf(out, len, "%s", s->envelope_from) < (int)len ? 0 : -1;
    if (dsn_token_from_message_id(job->external_id, token, sizeof(token)) == -1)
        return -1;
    return dsn_return_path(s->return_path, token, out, len);
}

static void status_text(const smtp_status_t *st, char *buf, size_t len)
{
    snprintf(buf, len, "%d %s", st->code, st->text ? st->text : "");
    buf[strcspn(buf, "\r\n")] = '\0';
}

/* libesmtp asks for the credentials while it authenticates */
static int auth_interact(auth_client_request_t request, char **result, int fields, void *arg)
{
    const struct email_settings *s = arg;

    for (int i = 0; i < fields; i++) {
        if (request[i].flags & AUTH_USER)
            result[i] = s->username;
        else if (request[i].flags & AUTH_PASS)
            result[i] = s->password;
        else
            return 0;           /* a realm or the like: we have none */
    }
    return 1;
}

/* 2xx sent, 4xx or no answer: temporary, 5xx: permanent. The recipient's own status wins
 * (a 550 on RCPT is about this address). A session that ended after the server took the
 * recipient but before it answered the message may have delivered it (the data may have been
 * complete): in-doubt, so the copy that a retry sends is not the only one on record. */
static void judge(struct send_job *job, smtp_message_t msg, smtp_recipient_t rcpt,
                  const char *server, int session_ok)
{
    const smtp_status_t *rs = smtp_recipient_status(rcpt);
    const smtp_status_t *ms = smtp_message_transfer_status(msg);
    char text[400], err[128];

    if (rs && rs->code >= 400) {
        status_text(rs, text, sizeof(text));
        job_set_outcome(job, rs->code >= 500 ? OUTCOME_PERMANENT_FAILURE : OUTCOME_TEMPORARY_FAILURE,
                        "%s", text);
    } else if (ms && ms->code >= 200 && ms->code < 300) {
        status_text(ms, text, sizeof(text));
        job_set_outcome(job, OUTCOME_SENT, "%s", text);
    } else if (ms && ms->code >= 400) {
        status_text(ms, text, sizeof(text));
        job_set_outcome(job, ms->code >= 500 ? OUTCOME_PERMANENT_FAILURE : OUTCOME_TEMPORARY_FAILURE,
                        "%s", text);
    } else if (rs && rs->code >= 200 && rs->code < 300) {
        smtp_strerror(smtp_errno(), err, sizeof(err));
        job_set_outcome(job, OUTCOME_IN_DOUBT, "SMTP session with %s ended before the answer to "
                        "this message (%s): it may have been delivered", server, err);
    } else {
        smtp_strerror(smtp_errno(), err, sizeof(err));
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "SMTP session with %s %s: %s", server,
                        session_ok ? "ended before this message" : "failed", err);
    }
}

static void batch_work(void *arg)
{
    struct email_batch *b = arg;
    const struct email_settings *s = b->settings;
    auth_context_t auth = NULL;
    int n = 0;

    for (struct send_job *j = b->jobs; j; j = j->next)
        n++;
    smtp_session_t session = smtp_create_session();
    smtp_message_t *msgs = calloc(n, sizeof(*msgs));
    smtp_recipient_t *rcpts = calloc(n, sizeof(*rcpts));
    char **texts = calloc(n, sizeof(*texts));
    if (session == NULL || msgs == NULL || rcpts == NULL || texts == NULL) {
        for (struct send_job *j = b->jobs; j; j = j->next)
            job_set_outcome(j, OUTCOME_TEMPORARY_FAILURE, "out of memory");
        goto out;
    }
    smtp_set_server(session, s->server);
    if (s->helo)
        smtp_set_hostname(session, s->helo);
    smtp_starttls_enable(session, s->starttls == STARTTLS_NO ? Starttls_DISABLED
                                  : s->starttls == STARTTLS_REQUIRED ? Starttls_REQUIRED
                                                                     : Starttls_ENABLED);
    for (int w = Timeout_GREETING; w <= Timeout_DATA2; w++)
        smtp_set_timeout(session, w | Timeout_OVERRIDE_RFC2822_MINIMUM, s->timeout * 1000);
    if (s->username && (auth = auth_create_context()) != NULL) {
        auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
        auth_set_interact_cb(auth, auth_interact, (void *)s);
        smtp_auth_set_context(session, auth);
    }

    int queued = 0, i = 0;
    for (struct send_job *j = b->jobs; j; j = j->next, i++) {
        snprintf(j->address, sizeof(j->address), "%s", j->email);
        mime_strip_controls(j->address);
        if (!mime_address_ok(j->email)) {
            job_set_outcome(j, OUTCOME_SKIPPED, "invalid e-mail address");
            continue;
        }
        if ((texts[i] = build_message(s, j)) == NULL) {
            job_set_outcome(j, OUTCOME_TEMPORARY_FAILURE, "could not build the message");
            continue;
        }
        char reverse[256];
        if (envelope_sender(s, j, reverse, sizeof(reverse)) == -1) {
            job_set_outcome(j, OUTCOME_TEMPORARY_FAILURE, "could not build the envelope sender");
            free(texts[i]);
            texts[i] = NULL;
            continue;
        }
        msgs[i] = smtp_add_message(session);
        smtp_set_reverse_path(msgs[i], reverse);
        rcpts[i] = smtp_add_recipient(msgs[i], j->email);
        smtp_set_message_str(msgs[i], texts[i]);
        queued++;
    }
    if (queued > 0) {
        /* even when the session failed, the messages before the failure have their answers:
         * a mail the server took must never be recorded as not sent */
        int ok = smtp_start_session(session);
        i = 0;
        for (struct send_job *j = b->jobs; j; j = j->next, i++)
            if (msgs[i] != NULL)
                judge(j, msgs[i], rcpts[i], s->server, ok);
    }
out:
    if (session)
        smtp_destroy_session(session);
    if (auth)
        auth_destroy_context(auth);
    for (i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(msgs);
    free(rcpts);
}

/* ---- back on the loop ---- */

static void batch_done(void *arg)
{
    struct email_batch *b = arg;
    struct send_job *j, *next;

    for (j = b->jobs; j; j = next) {
        next = j->next;
        j->next = NULL;
        b->st->in_flight--;
        j->done(j, j->done_arg);
    }
    settings_unref(b->settings);
    free(b);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct email_state *st = arg;

    (void)fd;
    (void)what;
    while (st->queue_head) {
        struct email_batch *b = calloc(1, sizeof(*b));
        if (b == NULL) {
            log_err("email: out of memory; will retry");
            event_active(st->flush_ev, 0, 0);
            return;
        }
        b->st = st;
        b->settings = st->settings;
        b->settings->refs++;
        struct send_job **tail = &b->jobs;
        for (int k = 0; k < st->settings->batch && st->queue_head; k++) {
            struct send_job *j = st->queue_head;
            st->queue_head = j->next;
            j->next = NULL;
            *tail = j;
            tail = &j->next;
        }
        if (st->queue_head == NULL)
            st->queue_tail = NULL;
        workers_submit(st->pool, batch_work, batch_done, b);
    }
}

static void email_send(void *state, struct send_job *job)
{
    struct email_state *st = state;

    job->next = NULL;
    if (st->queue_tail)
        st->queue_tail->next = job;
    else
        st->queue_head = job;
    st->queue_tail = job;
    st->in_flight++;
    /* sends claimed in the same loop iteration share sessions */
    event_active(st->flush_ev, 0, 0);
}

static void *email_start(struct daemon *d)
{
    struct email_state *st = calloc(1, sizeof(*st));
    char err[256] = "email: out of memory";

    if (st == NULL)
        return NULL;
    st->d = d;
    auth_client_init();
    if ((st->settings = settings_new(d->cfg, err, sizeof(err))) == NULL ||
        (st->pool = workers_new(d->base, d->cfg->email.workers, "email")) == NULL ||
        (st->flush_ev = event_new(d->base, -1, 0, flush_cb, st)) == NULL) {
        log_err("%s", err);
        settings_unref(st->settings);
        workers_free(st->pool);
        free(st);
        return NULL;
    }
    return st;
}

static int email_prepare(void *state, const struct config *cfg, void **prepared, char *err,
                         size_t errlen)
{
    (void)state;
    return (*prepared = settings_new(cfg, err, errlen)) != NULL ? 0 : -1;
}

/* batches on their way keep the settings they were cut with */
static void email_commit(void *state, const struct config *cfg, void *prepared)
{
    struct email_state *st = state;

    if (cfg->email.workers != st->d->cfg->email.workers)
        log_warn("email: a new number of workers takes effect at restart");
    settings_unref(st->settings);
    st->settings = prepared;
}

static void email_discard(void *prepared)
{
    settings_unref(prepared);
}

static int email_in_flight(void *state)
{
    return ((struct email_state *)state)->in_flight;
}

static void email_stop(void *state)
{
    struct email_state *st = state;

    workers_free(st->pool);
    event_free(st->flush_ev);
    settings_unref(st->settings);
    auth_client_exit();
    free(st);
}

const struct channel_ops email_channel = {
    .name = "email",
    .start = email_start,
    .send = email_send,
    .prepare = email_prepare,
    .commit = email_commit,
    .discard = email_discard,
    .in_flight = email_in_flight,
    .stop = email_stop,
};
