#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "daemon.h"
#include "db.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "schema.h"

struct http {
    struct daemon *d;
    struct evhttp *server;
    http_dlr_fn dlr;
    void *dlr_arg;
    double start_time;          /* for herinnerd_start_time_seconds */
};

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
    reply(req, code, code == 200 ? "OK" : code == 404 ? "Not Found" : "Bad Request",
          code == 200 ? "ok\n" : "rejected\n");
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
    if ((h->server = evhttp_new(d->base)) == NULL)
        goto fail;
    /* every method reaches the handlers, which answer 405 where it does not fit (libevent
     * itself would say 501, a server error, for a client's mistake) */
    evhttp_set_allowed_methods(h->server, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(h->server, 16384);
    evhttp_set_max_headers_size(h->server, 16384);
    evhttp_set_timeout(h->server, 30);
    if (evhttp_bind_socket(h->server, bare, (unsigned short)atoi(colon + 1)) != 0) {
        log_err("http: cannot listen on %s", listen);
        goto fail;
    }
    evhttp_set_cb(h->server, "/healthz", healthz, h);
    evhttp_set_cb(h->server, "/metrics", metrics_page, h);
    evhttp_set_cb(h->server, "/dlr", dlr, h);
    evhttp_set_gencb(h->server, not_found, h);
    log_info("http: listening on %s (/healthz, /metrics, /dlr)", listen);
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
    if (h->server)
        evhttp_free(h->server);
    free(h);
}
