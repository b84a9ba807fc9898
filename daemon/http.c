#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>
#include <sys/resource.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "daemon.h"
#include "db.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "schema.h"

/* The listener keeps at most max_conns connections. At the cap a new one closes the oldest idle
 * one (waiting for a request, nothing to answer), so a flood of idle connections cannot lock out
 * /healthz; with nothing idle it stops accepting until one closes. When accept() itself fails
 * (EMFILE, ENFILE: out of descriptors) it closes the oldest idle connection too, and stops
 * accepting for a while, doubling up to BACKOFF_MAX_MS, instead of spinning on a listening
 * socket that stays readable.
 *
 * evhttp (libevent 2.1) has no connection limit of its own and no hook with the connection when
 * it accepts one; but it asks us for each connection's bufferevent (evhttp_set_bevcb), and once
 * it has made the connection that bufferevent's callback argument is the evhttp_connection. A
 * reference on the bufferevent keeps it readable until then ("pending"); from there on the
 * connection's close callback tells us when it goes. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define DEFAULT_MAX_CONNECTIONS 512

static const struct timeval one_second = { 1, 0 };

struct http_conn {
    struct http *h;
    struct bufferevent *bev;
    struct evhttp_connection *evcon;    /* NULL while pending */
    TAILQ_ENTRY(http_conn) entry;
};
TAILQ_HEAD(http_conn_list, http_conn);

struct http {
    struct daemon *d;
    struct evhttp *server;
    struct evconnlistener *listener;
    struct http_conn_list pending;      /* accepted, evhttp_connection not seen yet; newest last */
    struct http_conn_list conns;        /* oldest first */
    int nconns, max_conns;              /* nconns counts both lists */
    int paused;                         /* at the cap with nothing idle to close */
    int backing_off;                    /* accept() failed: waiting backoff_ms */
    int backoff_ms;                     /* the last wait; 0 once accept() works again */
    int stopping;
    struct event *resolve_ev, *backoff_ev;
    http_dlr_fn dlr;
    void *dlr_arg;
    double start_time;          /* for herinnerd_start_time_seconds */
    struct http *next_listening;
};

/* The listener's error callback gets the struct evhttp (evhttp sets itself as the listener's
 * argument, and libevent 2.1 cannot have one without the other): find our struct http by it.
 * Only the loop's thread touches this. */
static struct http *listening;

static struct http *http_by_server(const void *server)
{
    struct http *h;

    for (h = listening; h && h->server != server; h = h->next_listening)
        ;
    return h;
}

static void reply_typed(struct evhttp_request *req, int code, const char *reason,
                        const char *content_type, const char *text)
{
    struct evbuffer *b = evbuffer_new();

    if (b == NULL || evbuffer_add(b, text, strlen(text)) == -1) {
        if (b)
            evbuffer_free(b);
        evhttp_send_error(req, 500, "Out of memory");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    reply_typed(req, code, reason, "text/plain; charset=utf-8", text);
}

/* Only GET and HEAD (and POST for /dlr): anything else is the client's mistake, 405. */
static int method_allowed(struct evhttp_request *req, int post_too)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);

    if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD || (post_too && m == EVHTTP_REQ_POST))
        return 1;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                      post_too ? "GET, HEAD, POST" : "GET, HEAD");
    reply(req, 405, "Method Not Allowed", "method not allowed\n");
    return 0;
}

static void healthz(struct evhttp_request *req, void *arg)
{
    struct http *h = arg;

    if (!method_allowed(req, 0))
        return;

    char text[300];
    if (!db_connected(h->d->db))
        reply(req, 503, "Service Unavailable", "database not connected\n");
    else if (!schema_ok(h->d->schema)) {
        snprintf(text, sizeof(text), "%s\n", schema_problem(h->d->schema)
                 ? schema_problem(h->d->schema) : "checking the database schema");
        reply(req, 503, "Service Unavailable", text);
    } else
        reply(req, 200, "OK", "ok\n");
}

/* The gauges that need the database, each one index lookup on escalations_due (next_at WHERE
 * state = 'active'): the backlog is counted only up to a cap, so no scrape scans a table
 * (issue 7). The marker comment lets tests find this query in the server's plans. */
#define METRICS_BACKLOG_CAP "10000"
#define SQL_METRICS_GAUGES \
    "SELECT /* herinnerd metrics */" \
    "  (SELECT count(*) FROM (SELECT 1 FROM herinnerd.escalations" \
    "                          WHERE state = 'active' AND next_at <= now()" \
    "                          LIMIT " METRICS_BACKLOG_CAP ") due)," \
    "  coalesce((SELECT round(extract(epoch FROM now() - next_at), 3) FROM herinnerd.escalations" \
    "             WHERE state = 'active' AND next_at <= now() ORDER BY next_at LIMIT 1), 0.000)"

struct metrics_request {
    struct http *h;
    struct evhttp_request *req;
};

static void metrics_reply(PGresult *res, void *arg)
{
    struct metrics_request *mr = arg;
    struct daemon *d = mr->h->d;
    struct evhttp_request *req = mr->req;
    struct metrics_state st = {
        .db_up = db_connected(d->db),
        .ready = db_connected(d->db) && schema_ok(d->schema),
        .in_flight = engine_in_flight(d->engine),
        .start_time = mr->h->start_time,
    };
    char *text = metrics_render(d->metrics, &st, db_result_ok(res) ? res : NULL);

    free(mr);
    if (text == NULL) {
        evhttp_send_error(req, 500, "Out of memory");
        return;
    }
    reply_typed(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text);
    free(text);
}

static void metrics_page(struct evhttp_request *req, void *arg)
{
    struct http *h = arg;
    struct metrics_request *mr;

    if (!method_allowed(req, 0))
        return;
    if ((mr = calloc(1, sizeof(*mr))) == NULL) {
        evhttp_send_error(req, 500, "Out of memory");
        return;
    }
    mr->h = h;
    mr->req = req;
    /* without the schema there is nothing to ask: the counters alone */
    if (!schema_ok(h->d->schema)) {
        metrics_reply(NULL, mr);
        return;
    }
    /* answered from the query's callback; without a connection it runs at once with NULL */
    db_query(h->d->db, 0, SQL_METRICS_GAUGES, 0, NULL, metrics_reply, mr);
}

static void dlr(struct evhttp_request *req, void *arg)
{
    struct http *h = arg;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));

    if (!method_allowed(req, 1))
        return;
    if (h->dlr == NULL) {
        reply(req, 404, "Not Found", "no SMS channel configured\n");
        return;
    }
    if (query == NULL) {
        reply(req, 400, "Bad Request", "missing query\n");
        return;
    }
    int code = h->dlr(query, h->dlr_arg);
    if (code == 503)    /* cannot queue it now; Kannel tries again */
        reply(req, 503, "Service Unavailable", "busy, try again later\n");
    else
        reply(req, code, code == 200 ? "OK" : code == 404 ? "Not Found" : "Bad Request",
              code == 200 ? "ok\n" : "rejected\n");
}

/* ---- connection cap and accept backoff ---- */

static void listener_update(struct http *h)
{
    if (h->listener == NULL || h->stopping)
        return;
    if (h->paused || h->backing_off)
        evconnlistener_disable(h->listener);
    else
        evconnlistener_enable(h->listener);
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    struct http_conn *c = arg;
    struct http *h = c->h;

    (void)evcon;
    TAILQ_REMOVE(&h->conns, c, entry);
    h->nconns--;
    free(c);
    if (h->paused && h->nconns < h->max_conns) {
        h->paused = 0;
        listener_update(h);
    }
}

/* Learn the evhttp_connection of each pending bufferevent (or that evhttp dropped it). */
static void resolve_pending(struct http *h)
{
    struct http_conn *c;

    while ((c = TAILQ_FIRST(&h->pending)) != NULL) {
        void *evcon = NULL;

        TAILQ_REMOVE(&h->pending, c, entry);
        bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
        bufferevent_decref(c->bev);
        if (evcon == NULL) {            /* evhttp gave up on it (out of memory): gone */
            h->nconns--;
            free(c);
            continue;
        }
        c->evcon = evcon;
        evhttp_connection_set_closecb(c->evcon, conn_closed, c);
        TAILQ_INSERT_TAIL(&h->conns, c, entry);
    }
}

static void resolve_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    resolve_pending(arg);
}

/* Idle: evhttp waits for (more of) a request and owes no answer. While a request is handled it
 * stops reading, while it answers it writes. */
static int conn_idle(const struct http_conn *c)
{
    return (bufferevent_get_enabled(c->bev) & (EV_READ | EV_WRITE)) == EV_READ;
}

static int any_idle(const struct http *h)
{
    const struct http_conn *c;

    TAILQ_FOREACH(c, &h->conns, entry)
        if (conn_idle(c))
            return 1;
    return 0;
}

/* Close the oldest idle connection; 0 if there was none. */
static int close_oldest_idle(struct http *h)
{
    struct http_conn *c;

    TAILQ_FOREACH(c, &h->conns, entry)
        if (conn_idle(c)) {
            /* no request of ours on it, so nothing is left dangling; conn_closed runs now */
            evhttp_connection_free(c->evcon);
            return 1;
        }
    return 0;
}

/* evhttp accepted a connection and wants its bufferevent. */
static struct bufferevent *new_conn(struct event_base *base, void *arg)
{
    struct http *h = arg;
    struct http_conn *c;

    resolve_pending(h);
    h->backoff_ms = 0;                  /* accept() works (again) */
    if (h->nconns >= h->max_conns && close_oldest_idle(h))
        log_warn("http: %d connections open (the most): closed the oldest idle one", h->max_conns);
    if ((c = calloc(1, sizeof(*c))) == NULL ||
        (c->bev = bufferevent_socket_new(base, -1, 0)) == NULL) {
        free(c);
        return NULL;                    /* evhttp makes its own; uncounted, harmless */
    }
    c->h = h;
    bufferevent_incref(c->bev);         /* until resolve_pending has looked at it */
    TAILQ_INSERT_TAIL(&h->pending, c, entry);
    h->nconns++;
    event_active(h->resolve_ev, EV_TIMEOUT, 1);
    if (h->nconns >= h->max_conns && !h->paused && !any_idle(h)) {
        /* this one fills the last place, and the next one would find nothing idle to replace */
        log_warn("http: %d connections open, none idle: not accepting until one is", h->nconns);
        h->paused = 1;
        listener_update(h);
        event_add(h->backoff_ev, &one_second);  /* look again */
    }
    return c->bev;
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http *h = arg;

    (void)fd;
    (void)what;
    h->backing_off = 0;
    if (h->paused) {
        if (h->nconns < h->max_conns || any_idle(h))
            h->paused = 0;
        else
            event_add(h->backoff_ev, &one_second);
    }
    listener_update(h);
}

static void accept_error(struct evconnlistener *listener, void *server)
{
    struct http *h = http_by_server(server);
    int err = EVUTIL_SOCKET_ERROR();

    if (h == NULL) {            /* cannot happen; still, never spin */
        evconnlistener_disable(listener);
        log_err("http: accept: %s; listener stopped", evutil_socket_error_to_string(err));
        return;
    }
    int was = h->backoff_ms;

    /* out of descriptors: the one an idle connection holds is better spent on the new one, and
     * the next accept() can use it at once (each round accepts one: no spinning) */
    resolve_pending(h);
    if (close_oldest_idle(h)) {
        log_warn("http: accept: %s; closed the oldest idle connection (%d open)",
                 evutil_socket_error_to_string(err), h->nconns);
        return;
    }
    h->backoff_ms = was == 0 ? BACKOFF_MIN_MS : was * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : was * 2;
    h->backing_off = 1;
    log_warn("http: accept: %s; not accepting for %d ms (%d connections open)",
             evutil_socket_error_to_string(err), h->backoff_ms, h->nconns);
    struct timeval tv = { h->backoff_ms / 1000, (h->backoff_ms % 1000) * 1000 };
    event_add(h->backoff_ev, &tv);
    listener_update(h);
}

/* 0 in the config: a quarter of the descriptors we may open (the database, SMTP sessions, the
 * gateway and the spool need the rest), at most DEFAULT_MAX_CONNECTIONS. */
static int max_connections(int configured)
{
    struct rlimit rl;
    rlim_t quarter;

    if (configured > 0)
        return configured;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
        return DEFAULT_MAX_CONNECTIONS;
    quarter = rl.rlim_cur / 4;
    return quarter < 4 ? 4 : quarter > DEFAULT_MAX_CONNECTIONS ? DEFAULT_MAX_CONNECTIONS
                                                                : (int)quarter;
}

static void not_found(struct evhttp_request *req, void *arg)
{
    (void)arg;
    reply(req, 404, "Not Found", "not found\n");
}

struct http *http_start(struct daemon *d, const char *listen)
{
    struct http *h = calloc(1, sizeof(*h));
    char host[256];
    const char *colon = strrchr(listen, ':');

    if (h == NULL || colon == NULL || (size_t)(colon - listen) >= sizeof(host))
        goto fail;
    memcpy(host, listen, colon - listen);
    host[colon - listen] = '\0';
    /* "[::1]:9187" */
    char *bare = host;
    if (bare[0] == '[' && bare[strlen(bare) - 1] == ']') {
        bare[strlen(bare) - 1] = '\0';
        bare++;
    }
    h->d = d;
    h->start_time = (double)time(NULL);
    TAILQ_INIT(&h->pending);
    TAILQ_INIT(&h->conns);
    h->max_conns = max_connections(d->cfg->http.max_connections);
    if ((h->server = evhttp_new(d->base)) == NULL ||
        (h->resolve_ev = event_new(d->base, -1, 0, resolve_cb, h)) == NULL ||
        (h->backoff_ev = evtimer_new(d->base, backoff_cb, h)) == NULL)
        goto fail;
    evhttp_set_bevcb(h->server, new_conn, h);
    /* every method reaches the handlers, which answer 405 where it does not fit (libevent
     * itself would say 501, a server error, for a client's mistake) */
    evhttp_set_allowed_methods(h->server, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(h->server, 16384);
    evhttp_set_max_headers_size(h->server, 16384);
    evhttp_set_timeout(h->server, 30);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(h->server, bare, (unsigned short)atoi(colon + 1));
    if (bound == NULL) {
        log_err("http: cannot listen on %s", listen);
        goto fail;
    }
    h->listener = evhttp_bound_socket_get_listener(bound);
    evconnlistener_set_error_cb(h->listener, accept_error);
    h->next_listening = listening;
    listening = h;
    evhttp_set_cb(h->server, "/healthz", healthz, h);
    evhttp_set_cb(h->server, "/metrics", metrics_page, h);
    evhttp_set_cb(h->server, "/dlr", dlr, h);
    evhttp_set_gencb(h->server, not_found, h);
    log_info("http: listening on %s (/healthz, /metrics, /dlr), at most %d connections", listen,
             h->max_conns);
    return h;
fail:
    http_stop(h);
    return NULL;
}

void http_set_dlr_handler(struct http *h, http_dlr_fn fn, void *arg)
{
    if (h) {
        h->dlr = fn;
        h->dlr_arg = arg;
    }
}

void http_stop(struct http *h)
{
    if (h == NULL)
        return;
    h->stopping = 1;
    for (struct http **pp = &listening; *pp; pp = &(*pp)->next_listening)
        if (*pp == h) {
            *pp = h->next_listening;
            break;
        }
    resolve_pending(h);
    if (h->server)
        evhttp_free(h->server);         /* closes every connection: conn_closed empties conns */
    if (h->resolve_ev)
        event_free(h->resolve_ev);
    if (h->backoff_ev)
        event_free(h->backoff_ev);
    free(h);
}
