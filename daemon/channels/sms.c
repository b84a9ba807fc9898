/* The SMS channel: Kannel's sendsms HTTP interface, driven by libevent's HTTP client on the loop.
 *
 *   send -> number to E.164, text from the template -> FIFO -> at most max_in_flight requests,
 *   each on a keep-alive connection of its own -> reply judged -> job->done
 *
 * Every send carries a random token (the attempt's external_id) in its dlr-url, so Kannel's
 * delivery reports (GET /dlr) can be matched to a `sent` attempt and forged ones refused. A
 * report may beat the send's own outcome to us (the fake SMSC answers within milliseconds):
 * reports for sends still in memory are parked until job->done has queued the `sent` record,
 * and the single database connection runs queries in order. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <syslog.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "channel.h"
#include "daemon.h"
#include "db.h"
#include "engine.h"
#include "errmsg.h"
#include "http.h"
#include "ledger.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "sms_text.h"
#include "template.h"
#include "template_files.h"

#define MAX_PARKED 8            /* early reports kept per send; more are forgeries */
#define MAX_REPLY 400           /* bytes of Kannel's reply kept */
/* Delivery reports waiting for the database (it may be down: they are kept, DB_KEEP). Beyond
 * this /dlr answers 503 and Kannel tries again later, so forged or plentiful reports during an
 * outage cannot grow memory without bound (about 1.5 KB each). */
#define MAX_DLR_PENDING 1024

/* A delivery report is a fact of its own: one per (send, report type). */
#define DLR_FACT "dlr:%" PRId64 ":%d:%d:%s:%d"

/* $1 message, $2 the step whose send failed (sql/010_timeline.sql) */
#define SQL_BRING_FORWARD "SELECT herinnerd.bring_forward($1::bigint, $2::int)"

/* What a request needs from the config, copied: a reload must not pull it from under a
 * request in flight. Reference-counted on the loop. */
struct sms_settings {
    int refs;
    char *host, *host_header, *uri_prefix;      /* uri_prefix: path?[query&] */
    int port;
    char *username, *password, *sender, *country, *dlr_base, *inbox_url;
    int max_in_flight;
    long timeout;
    int link, max_parts, allow_http_links;
    struct templates *templates;                /* the templates directory's wording */
};

/* A keep-alive connection to the gateway, made for one settings generation. */
struct sms_conn {
    struct evhttp_connection *evcon;
    struct sms_settings *settings;
    struct sms_conn *next;
};

struct parked_dlr {
    struct sms_dlr dlr;
    struct parked_dlr *next;
};

/* One request to Kannel, from make_request until the job is done. */
struct sms_send {
    struct sms_state *st;
    struct send_job *job;
    struct sms_conn *conn;
    char token[SMS_TOKEN_LEN + 1];
    int completed;              /* the HTTP exchange ended: result below */
    int code;                   /* HTTP status, 0: no reply */
    int error;                  /* enum evhttp_request_error + 1, 0: none reported */
    char reply[MAX_REPLY];
    size_t replylen;
    struct parked_dlr *parked;
    int nparked;
    struct sms_send *next;
};

struct sms_state {
    struct daemon *d;
    struct evdns_base *dns;
    struct sms_settings *settings;
    struct send_job *queue_head, *queue_tail;   /* waiting for a free slot */
    int queued;
    struct sms_send *sends;                     /* running and completed, by token */
    int running;                                /* requests not yet completed */
    struct sms_conn *idle;                      /* connections of the current settings */
    struct event *finish_ev, *register_ev;
    int dlr_pending;                            /* report queries not yet answered */
};

/* ---- settings ---- */

static void settings_unref(struct sms_settings *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    free(s->host);
    free(s->host_header);
    free(s->uri_prefix);
    free(s->username);
    free(s->password);
    free(s->sender);
    free(s->country);
    free(s->dlr_base);
    free(s->inbox_url);
    templates_free(s->templates);
    free(s);
}

/* host, port and request-URI prefix from sms.url */
static int parse_url(struct sms_settings *s, const char *url, char *err, size_t errlen)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *host, *path, *query;
    int rc = -1;

    if (u == NULL || (host = evhttp_uri_get_host(u)) == NULL || *host == '\0') {
        errmsg_set(err, errlen, "sms: cannot parse url '%s'", url);
        goto out;
    }
    s->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
    path = evhttp_uri_get_path(u);
    query = evhttp_uri_get_query(u);
    /* "[::1]" in a URL, "::1" to connect to */
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
        s->host = strndup(host + 1, hl - 2);
    else
        s->host = strdup(host);
    if (asprintf(&s->host_header, "%s:%d", host, s->port) == -1)
        s->host_header = NULL;
    /* a bare "http://host:13013" means Kannel's one endpoint */
    if (asprintf(&s->uri_prefix, "%s?%s%s", path && *path && strcmp(path, "/") != 0 ? path
                                                                    : "/cgi-bin/sendsms",
                 query && *query ? query : "", query && *query ? "&" : "") == -1)
        s->uri_prefix = NULL;
    rc = s->host && s->host_header && s->uri_prefix ? 0 : -1;
    if (rc == -1)
        errmsg_set(err, errlen, "sms: out of memory");
out:
    if (u)
        evhttp_uri_free(u);
    return rc;
}

static char *dlr_base(const struct config *cfg)
{
    char *out = NULL;

    if (cfg->sms.dlr_base)
        return strdup(cfg->sms.dlr_base);
    if (cfg->http.listen == NULL || asprintf(&out, "http://%s", cfg->http.listen) == -1)
        return NULL;
    return out;
}

static struct sms_settings *settings_new(const struct config *cfg, char *err, size_t errlen)
{
    struct sms_settings *s = calloc(1, sizeof(*s));

    errmsg_set(err, errlen, "sms: out of memory");
    if (s == NULL)
        return NULL;
    s->refs = 1;
    s->max_in_flight = cfg->sms.max_in_flight > 0 ? cfg->sms.max_in_flight : 1;
    s->timeout = cfg->sms.timeout > 0 ? cfg->sms.timeout : 30;
    s->link = cfg->sms.link;
    s->max_parts = cfg->sms.max_parts > 0 ? cfg->sms.max_parts : 1;
    s->allow_http_links = cfg->allow_http_links;
    s->username = strdup(cfg->sms.username);
    s->password = strdup(cfg->sms.password);
    s->sender = strdup(cfg->sms.sender);
    s->country = strdup(cfg->sms.default_country ? cfg->sms.default_country : "31");
    s->inbox_url = strdup(cfg->inbox_url ? cfg->inbox_url : "");
    s->dlr_base = dlr_base(cfg);      /* NULL: no reports (config check makes this rare) */
    s->templates = templates_dup(cfg->templates);
    if (parse_url(s, cfg->sms.url, err, errlen) == -1 || s->username == NULL || s->password == NULL ||
        s->sender == NULL || s->country == NULL || s->inbox_url == NULL || s->templates == NULL) {
        settings_unref(s);
        return NULL;
    }
    return s;
}

/* ---- connections ---- */

static void conn_free(struct sms_conn *c)
{
    if (c == NULL)
        return;
    if (c->evcon)
        evhttp_connection_free(c->evcon);
    settings_unref(c->settings);
    free(c);
}

static void conn_list_free(struct sms_conn *c)
{
    while (c) {
        struct sms_conn *next = c->next;
        conn_free(c);
        c = next;
    }
}

static struct sms_conn *conn_get(struct sms_state *st)
{
    struct sms_settings *s = st->settings;
    struct sms_conn *c = st->idle;

    if (c) {
        st->idle = c->next;
        c->next = NULL;
        return c;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    /* with a dns base, a host name is resolved without blocking the loop */
    c->evcon = evhttp_connection_base_new(st->d->base, st->dns, s->host, (unsigned short)s->port);
    if (c->evcon == NULL) {
        free(c);
        return NULL;
    }
    evhttp_connection_set_timeout(c->evcon, (int)s->timeout);
    evhttp_connection_set_retries(c->evcon, 0);
    c->settings = s;
    s->refs++;
    return c;
}

/* After a reply, the connection stays open for the next request; after a failure, or when
 * the settings changed meanwhile, it goes. */
static void conn_put(struct sms_state *st, struct sms_conn *c, int reusable)
{
    if (c == NULL)
        return;
    if (reusable && c->settings == st->settings) {
        c->next = st->idle;
        st->idle = c;
    } else
        conn_free(c);
}

/* ---- sending ---- */

static void finish_soon(struct sms_state *st)
{
    event_active(st->finish_ev, 0, 0);
}

static void req_error(enum evhttp_request_error err, void *arg)
{
    struct sms_send *s = arg;

    s->error = (int)err + 1;
}

/* Called by libevent, possibly from inside evhttp_make_request: only note the result; the rest
 * happens in finish_cb, outside libevent's HTTP code (where freeing a connection is safe). */
static void req_done(struct evhttp_request *req, void *arg)
{
    struct sms_send *s = arg;

    s->completed = 1;
    s->code = req ? evhttp_request_get_response_code(req) : 0;
    if (req && s->code > 0) {
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        int n = evbuffer_remove(b, s->reply, sizeof(s->reply) - 1);
        s->replylen = n > 0 ? (size_t)n : 0;
        s->reply[s->replylen] = '\0';
    }
    s->st->running--;
    finish_soon(s->st);
}

static const char *transport_error(int error)
{
    switch (error - 1) {
    case EVREQ_HTTP_TIMEOUT: return "timed out";
    case EVREQ_HTTP_EOF: return "connection closed before a reply";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid reply";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection error";
    case EVREQ_HTTP_DATA_TOO_LONG: return "reply too long";
    default: return "no connection (refused or unreachable)";
    }
}

static void judge(struct sms_send *s)
{
    struct send_job *job = s->job;
    const struct sms_settings *set = s->conn ? s->conn->settings : s->st->settings;

    if (s->code == 0) {
        /* no reply to a request that may have arrived whole: the gateway may have taken it */
        int sent_maybe = s->error - 1 == EVREQ_HTTP_TIMEOUT || s->error - 1 == EVREQ_HTTP_EOF ||
                         s->error - 1 == EVREQ_HTTP_INVALID_HEADER ||
                         s->error - 1 == EVREQ_HTTP_DATA_TOO_LONG;
        job_set_outcome(job, sent_maybe ? OUTCOME_IN_DOUBT : OUTCOME_TEMPORARY_FAILURE,
                        "SMS gateway %s: %s%s", set->host_header, transport_error(s->error),
                        sent_maybe ? ": it may have been sent" : "");
        return;
    }
    char detail[sizeof(job->detail)];
    enum outcome o = sms_judge_reply(s->code, s->reply, s->replylen, detail, sizeof(detail));
    job_set_outcome(job, o, "%s", detail);      /* with the job's notes */
}

static int new_token(char *out)
{
    unsigned char b[SMS_TOKEN_LEN / 2];

    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b))
        return -1;
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* The request URI for JOB: prefix + sendsms query. */
static char *request_uri(const struct sms_settings *set, const struct send_job *job,
                         const char *text, const char *token)
{
    char *dlr = NULL, *query = NULL, *uri = NULL;

    if (set->dlr_base &&
        (dlr = sms_dlr_url(set->dlr_base, job->message_id, job->step, job->try_no, token)) == NULL)
        return NULL;
    struct sms_request r = { set->username, set->password, set->sender, job->address, text, dlr };
    if ((query = sms_sendsms_query(&r)) != NULL && asprintf(&uri, "%s%s", set->uri_prefix, query) == -1)
        uri = NULL;
    free(dlr);
    free(query);
    return uri;
}

/* The text for JOB into *TEXT (see sms_compose for the return value and ERR). What was changed
 * on the way (a replaced link, a shortened sender) goes into the job's notes. */
static int render_text(const struct sms_settings *set, struct send_job *job, char **text,
                       char *err, size_t errlen)
{
    char created[32], due[32], link_note[96], fit_note[128], count[16];
    int show_link = job->step_link ? job->step_link > 0 : set->link;

    template_date(job->created_at, created, sizeof(created));     /* "" if not a sane date */
    template_date(job->due_at, due, sizeof(due));
    snprintf(count, sizeof(count), "%d", job->bundle_count > 1 ? job->bundle_count : 1);
    /* no subject: an SMS is read on lock screens */
    struct sms_compose c = {
        .templates = set->templates,
        .due_date = due,
        .template = job->template ? job->template : "notice",
        .language = job->language,
        .count = count,
        .name = job->recipient_name,
        .sender = job->sender,
        .created = created,
        .link = show_link ? link_for_citizen(job->link, set->inbox_url, set->allow_http_links,
                                             link_note, sizeof(link_note))
                          : NULL,
        .fallback_link = set->inbox_url,
        .max_parts = set->max_parts,
    };
    if (!show_link)
        link_note[0] = '\0';
    int rc = sms_compose(&c, text, fit_note, sizeof(fit_note), err, errlen);
    snprintf(job->notes, sizeof(job->notes), "%s%s%s", link_note,
             link_note[0] && fit_note[0] ? "; " : "", fit_note);
    return rc;
}

/* Start JOB's request; on failure the job is finished at once with a temporary failure. */
static void start_send(struct sms_state *st, struct send_job *job)
{
    struct sms_send *s = calloc(1, sizeof(*s));
    char *text = NULL, *uri = NULL;
    struct evhttp_request *req = NULL;

    if (s == NULL) {
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "out of memory");
        goto fail;
    }
    s->st = st;
    s->job = job;
    if (new_token(s->token) == -1) {
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "no random bytes for the SMS token");
        goto fail;
    }
    char why[160];
    int rc = render_text(st->settings, job, &text, why, sizeof(why));
    if (rc != 0) {
        /* a text that cannot fit sms.max_parts never will: the next step takes over */
        job_set_outcome(job, rc == -1 ? OUTCOME_PERMANENT_FAILURE : OUTCOME_TEMPORARY_FAILURE,
                        "%s", why);
        goto fail;
    }
    if ((uri = request_uri(st->settings, job, text, s->token)) == NULL ||
        (s->conn = conn_get(st)) == NULL || (req = evhttp_request_new(req_done, s)) == NULL) {
        job_set_outcome(job, OUTCOME_TEMPORARY_FAILURE, "could not build the SMS request");
        goto fail;
    }
    snprintf(job->external_id, sizeof(job->external_id), "%s", s->token);
    evhttp_request_set_error_cb(req, req_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", s->conn->settings->host_header);
    evhttp_add_header(h, "User-Agent", "herinnerd");
    s->next = st->sends;
    st->sends = s;
    st->running++;
    /* the reply (or failure) may be reported before this returns: req_done copes */
    if (evhttp_make_request(s->conn->evcon, req, EVHTTP_REQ_GET, uri) == -1 && !s->completed) {
        s->completed = 1;
        st->running--;
        finish_soon(st);
    }
    free(text);
    free(uri);
    return;
fail:
    free(text);
    free(uri);
    if (s)
        conn_put(st, s->conn, 0);
    free(s);
    job->done(job, job->done_arg);
}

/* Start queued jobs while there is room. */
static void pump(struct sms_state *st)
{
    while (st->queue_head && st->running < st->settings->max_in_flight) {
        struct send_job *job = st->queue_head;
        if ((st->queue_head = job->next) == NULL)
            st->queue_tail = NULL;
        job->next = NULL;
        st->queued--;
        start_send(st, job);
    }
}

/* ---- delivery reports ---- */

/* A report the ledger has dealt with. */
struct dlr_record {
    struct sms_state *st;
    struct sms_dlr r;
    enum outcome outcome;
    const char *detail;
    int fan_out;               /* also for the other messages the same SMS named (a bundle) */
};

/* One SMS about several messages (a policy's bundle) shares its token with the `sent` rows of
 * every message it named: a report on it is theirs too. $1 token, $2 the message it named. */
#define SQL_DLR_BUNDLED \
    "SELECT DISTINCT message_id, step, try FROM herinnerd.attempts" \
    " WHERE external_id = $1 AND channel = 'sms' AND outcome = 'sent' AND message_id <> $2"

static void record_dlr(struct sms_state *st, const struct sms_dlr *r, int fan_out);

struct dlr_fan {
    struct sms_state *st;
    struct sms_dlr r;
};

static void dlr_done(struct dlr_record *rec)
{
    struct sms_state *st = rec->st;

    st->dlr_pending--;
    free(rec);
    if (st->d->draining)
        daemon_check_drained(st->d);
}

static void brought_forward(PGresult *res, void *arg)
{
    struct dlr_record *rec = arg;
    const struct sms_dlr *r = &rec->r;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
        log_message(LOG_WARNING, r->message_id, "sms: message %" PRId64 ": the next step could not "
                    "be brought forward after a failed delivery report (%s); it stays at its "
                    "planned time", r->message_id,
                    res ? PQresultErrorMessage(res) : "no database connection");
    else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        log_message(LOG_INFO, r->message_id, "message %" PRId64 ": the SMS of step %d failed "
                    "(%s): the next step is due now", r->message_id, r->step, rec->detail);
    dlr_done(rec);
}

static void bundled_found(PGresult *res, void *arg)
{
    struct dlr_fan *f = arg;
    struct sms_state *st = f->st;

    if (!db_result_ok(res))
        log_message(LOG_WARNING, f->r.message_id, "sms: looking for the other messages of the "
                    "SMS with token %s failed (%s): its report is recorded for message %" PRId64
                    " only", f->r.token, res ? PQresultErrorMessage(res) : "no database connection",
                    f->r.message_id);
    for (int i = 0; db_result_ok(res) && i < PQntuples(res); i++) {
        struct sms_dlr m = f->r;
        m.message_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        m.step = atoi(PQgetvalue(res, i, 1));
        m.try_no = atoi(PQgetvalue(res, i, 2));
        record_dlr(st, &m, 0);
    }
    st->dlr_pending--;
    free(f);
    if (st->d->draining)
        daemon_check_drained(st->d);
}

/* REC's report is recorded for the message its dlr-url names: the others its SMS named get it
 * too. */
static void report_to_members(struct dlr_record *rec)
{
    struct sms_state *st = rec->st;
    struct dlr_fan *f = calloc(1, sizeof(*f));
    char id[32];

    if (f == NULL) {
        log_message(LOG_ERR, rec->r.message_id, "sms: out of memory: the report on token %s is "
                    "recorded for message %" PRId64 " only", rec->r.token, rec->r.message_id);
        return;
    }
    f->st = st;
    f->r = rec->r;
    snprintf(id, sizeof(id), "%" PRId64, rec->r.message_id);
    const char *params[] = { f->r.token, id };
    st->dlr_pending++;
    db_query(st->d->db, 0, SQL_DLR_BUNDLED, 2, params, bundled_found, f);
}

static void dlr_recorded(void *arg, int recorded, int moved, int known)
{
    struct dlr_record *rec = arg;
    struct sms_state *st = rec->st;
    const struct sms_dlr *r = &rec->r;

    (void)moved;
    if (recorded && known && rec->fan_out)
        report_to_members(rec);
    if (recorded && !known)
        log_message(LOG_WARNING, r->message_id, "sms: delivery report '%s' for message %" PRId64
                    " step %d try %d ignored: no SMS was sent with that token, or its fate is already "
                    "known", rec->detail,
                    r->message_id, r->step, r->try_no);
    else if (recorded) {
        metrics_attempt(st->d->metrics, CHANNEL_SMS, rec->outcome);
        log_message(rec->outcome == OUTCOME_PERMANENT_FAILURE ? LOG_WARNING : LOG_INFO,
                    r->message_id, "message %" PRId64 " step %d try %d sms: %s: %s",
                    r->message_id, r->step, r->try_no, outcome_name(rec->outcome),
                    rec->detail);
        /* the SMS did not arrive: the step waiting for it need not wait its planned time */
        if (rec->outcome == OUTCOME_PERMANENT_FAILURE) {
            char id[32], step[16];
            snprintf(id, sizeof(id), "%" PRId64, r->message_id);
            snprintf(step, sizeof(step), "%d", r->step);
            const char *params[] = { id, step };
            db_query(st->d->db, 0, SQL_BRING_FORWARD, 2, params, brought_forward, rec);
            return;
        }
    }
    dlr_done(rec);
}

/* Hand the report to the ledger: it is written only if the `sent` row it names is (the ledger
 * writes it in a statement after that one), and once per report type. */
static void record_dlr(struct sms_state *st, const struct sms_dlr *r, int fan_out)
{
    struct dlr_record *rec;
    char fact[160];

    enum outcome outcome;
    const char *detail;

    if (!sms_dlr_outcome(r->type, &outcome, &detail))
        return;                 /* only logged (4: buffered) */
    if ((rec = calloc(1, sizeof(*rec))) == NULL) {
        log_message(LOG_ERR, r->message_id, "sms: out of memory: delivery report type %d for "
                    "message %" PRId64 " step %d not recorded", r->type, r->message_id, r->step);
        return;
    }
    rec->st = st;
    rec->r = *r;
    rec->fan_out = fan_out;
    rec->outcome = outcome;
    rec->detail = detail;
    snprintf(fact, sizeof(fact), DLR_FACT, r->message_id, r->step, r->try_no, r->token, r->type);
    struct attempt a = { .message_id = r->message_id, .step = r->step, .try_no = r->try_no,
                         .channel = CHANNEL_SMS, .outcome = rec->outcome, .detail = rec->detail,
                         .external_id = r->token, .fact = fact, .refers = r->token };
    st->dlr_pending++;
    ledger_write(st->d->ledger, &a, NULL, dlr_recorded, rec);
}

static struct sms_send *find_send(struct sms_state *st, const char *token)
{
    for (struct sms_send *s = st->sends; s; s = s->next)
        if (strcmp(s->token, token) == 0)
            return s;
    return NULL;
}

/* A printable, short copy of an untrusted query for the log. */
static void loggable(const char *in, char *out, size_t len)
{
    size_t n = 0;

    for (; in && *in && n + 1 < len; in++)
        out[n++] = (unsigned char)*in < 0x20 || (unsigned char)*in >= 0x7F ? '?' : *in;
    out[n] = '\0';
}

static int sms_dlr_handler(const char *query, void *arg)
{
    struct sms_state *st = arg;
    struct sms_dlr r;
    const char *reason, *detail;
    enum outcome o;
    char shown[120];

    if (sms_dlr_parse(query, &r, &reason) == -1) {
        loggable(query, shown, sizeof(shown));
        log_warn("sms: malformed delivery report refused (%s): %s", reason, shown);
        return 400;
    }
    if (!sms_dlr_outcome(r.type, &o, &detail)) {
        log_message(LOG_INFO, r.message_id, "message %" PRId64 " step %d try %d sms: %s",
                    r.message_id, r.step, r.try_no, detail);
        return 200;
    }
    if (st->dlr_pending >= MAX_DLR_PENDING) {
        log_warn("sms: %d delivery reports wait for the database: refusing more (503) for now",
                 st->dlr_pending);
        return 503;
    }
    struct sms_send *s = find_send(st, r.token);
    if (s == NULL) {
        record_dlr(st, &r, 1);
        return 200;
    }
    /* its `sent` record is not queued yet: wait for it */
    struct parked_dlr *p = s->nparked < MAX_PARKED ? calloc(1, sizeof(*p)) : NULL;
    if (p == NULL) {
        log_warn("sms: delivery report for message %" PRId64 " dropped (too many early reports)",
                 r.message_id);
        return 200;
    }
    p->dlr = r;
    p->next = s->parked;
    s->parked = p;
    s->nparked++;
    log_message(LOG_INFO, r.message_id, "sms: delivery report '%s' for message %" PRId64
                " came before the gateway's answer; held until the send is recorded", detail,
                r.message_id);
    return 200;
}

/* Early reports in arrival order (the list is newest first). */
static void flush_parked(struct sms_state *st, struct parked_dlr *p)
{
    if (p == NULL)
        return;
    flush_parked(st, p->next);
    record_dlr(st, &p->dlr, 1);
    free(p);
}

static void unlink_send(struct sms_state *st, struct sms_send *s)
{
    for (struct sms_send **pp = &st->sends; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

static void finish_send(struct sms_state *st, struct sms_send *s)
{
    struct send_job *job = s->job;

    judge(s);
    unlink_send(st, s);
    conn_put(st, s->conn, s->code > 0);
    /* job->done queues the attempt; the parked reports queue after it */
    job->done(job, job->done_arg);
    flush_parked(st, s->parked);
    free(s);
}

static void finish_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sms_state *st = arg;
    struct sms_send **pp = &st->sends;

    (void)fd;
    (void)what;
    while (*pp) {
        struct sms_send *s = *pp;
        if (!s->completed) {
            pp = &s->next;
            continue;
        }
        finish_send(st, s);     /* unlinks s: *pp is now the next one */
    }
    pump(st);
    if (st->d->draining)
        daemon_check_drained(st->d);
}

/* ---- the channel ---- */

static void sms_send(void *state, struct send_job *job)
{
    struct sms_state *st = state;
    char number[32];
    const char *reason;

    job->next = NULL;
    if (sms_number_e164(job->mobile, st->settings->country, number, sizeof(number), &reason) == -1) {
        snprintf(job->address, sizeof(job->address), "%s", job->mobile ? job->mobile : "");
        for (char *p = job->address; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
        job_set_outcome(job, OUTCOME_SKIPPED, "invalid mobile number: %s", reason);
        job->done(job, job->done_arg);
        return;
    }
    snprintf(job->address, sizeof(job->address), "%s", number);
    if (st->queue_tail)
        st->queue_tail->next = job;
    else
        st->queue_head = job;
    st->queue_tail = job;
    st->queued++;
    pump(st);
}

/* The HTTP listener starts after the channels: hook /dlr up once the loop runs. */
static void register_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sms_state *st = arg;

    (void)fd;
    (void)what;
    if (st->d->http)
        http_set_dlr_handler(st->d->http, sms_dlr_handler, st);
    else
        log_info("sms: no http.listen here: delivery reports go to %s",
                 st->settings->dlr_base ? st->settings->dlr_base : "nowhere");
}

static void sms_stop(void *state);

static void *sms_start(struct daemon *d)
{
    struct sms_state *st = calloc(1, sizeof(*st));
    char err[256] = "sms: out of memory";

    if (st == NULL)
        return NULL;
    st->d = d;
    if ((st->settings = settings_new(d->cfg, err, sizeof(err))) == NULL ||
        (st->dns = evdns_base_new(d->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                               EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL ||
        (st->finish_ev = event_new(d->base, -1, 0, finish_cb, st)) == NULL ||
        (st->register_ev = event_new(d->base, -1, 0, register_cb, st)) == NULL) {
        log_err("%s", err);
        sms_stop(st);
        return NULL;
    }
    if (d->http)
        register_cb(-1, 0, st);
    else
        event_active(st->register_ev, 0, 0);
    log_info("sms: gateway %s, at most %d requests at once, delivery reports to %s/dlr",
             st->settings->host_header, st->settings->max_in_flight,
             st->settings->dlr_base ? st->settings->dlr_base : "(none)");
    return st;
}

static int sms_prepare(void *state, const struct config *cfg, void **prepared, char *err,
                       size_t errlen)
{
    (void)state;
    return (*prepared = settings_new(cfg, err, errlen)) != NULL ? 0 : -1;
}

static void sms_commit(void *state, const struct config *cfg, void *prepared)
{
    struct sms_state *st = state;

    (void)cfg;
    /* requests in flight keep their connection and settings; idle connections go now */
    conn_list_free(st->idle);
    st->idle = NULL;
    settings_unref(st->settings);
    st->settings = prepared;
    pump(st);
}

static void sms_discard(void *prepared)
{
    settings_unref(prepared);
}

static int sms_in_flight(void *state)
{
    const struct sms_state *st = state;
    int n = st->queued + st->dlr_pending;

    for (const struct sms_send *s = st->sends; s; s = s->next)
        n++;
    return n;
}

static void sms_stop(void *state)
{
    struct sms_state *st = state;

    if (st == NULL)
        return;
    /* (the HTTP listener is already gone: it stops before the channels) */
    /* freeing a connection drops its request without calling back */
    while (st->sends) {
        struct sms_send *s = st->sends;
        st->sends = s->next;
        conn_free(s->conn);
        for (struct parked_dlr *p = s->parked, *next; p; p = next) {
            next = p->next;
            free(p);
        }
        job_free(s->job);
        free(s);
    }
    while (st->queue_head) {
        struct send_job *job = st->queue_head;
        st->queue_head = job->next;
        job_free(job);
    }
    conn_list_free(st->idle);
    if (st->finish_ev)
        event_free(st->finish_ev);
    if (st->register_ev)
        event_free(st->register_ev);
    if (st->dns)
        evdns_base_free(st->dns, 0);
    settings_unref(st->settings);
    free(st);
}

const struct channel_ops sms_channel = {
    .name = "sms",
    .start = sms_start,
    .send = sms_send,
    .prepare = sms_prepare,
    .commit = sms_commit,
    .discard = sms_discard,
    .in_flight = sms_in_flight,
    .stop = sms_stop,
};
