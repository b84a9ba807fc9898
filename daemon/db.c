/* Non-blocking libpq on the loop, over two connections ("lanes"). Each lane runs one query at a
 * time from its own FIFO. The main lane LISTENs and takes everything that may be slow (adoption,
 * /metrics gauges, mark-read-all, config storage); the urgent lane takes the short statements
 * that move escalations (claims, lease renewals, next due, one message read); the ledger lane
 * takes the ledger's writes. A 3-second scrape or a 30-second adoption round therefore never
 * sits in front of a claim: a priority queue on one connection could only skip the queued
 * queries, not the running one. With the ledger on a connection of its own, the next claim runs
 * while the last one's outcomes are written: two backends, two cores.
 * The lanes connect and fail together, so "the database" is up or down as before: connection
 * loss fails or keeps (DB_KEEP) the queued queries and reconnects with exponential backoff; the
 * owner re-runs its start-up sweep on `connected`.
 *
 * Every connection gets statement/lock/connect timeouts, keepalives and application_name (see
 * db_params.c); host names are resolved by a short-lived thread, never by libpq on the loop. */
#include "db.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db_params.h"
#include "hostlist.h"
#include "log.h"

struct query {
    char *sql;
    int nparams;
    char **params;
    int flags;
    db_result_fn fn;
    void *arg;
    STAILQ_ENTRY(query) entry;
};

STAILQ_HEAD(query_list, query);

enum { LANE_MAIN, LANE_URGENT, LANE_LEDGER, LANE_COUNT };

struct lane {
    struct db *db;
    int id;
    PGconn *conn;
    enum { LANE_DOWN, LANE_CONNECTING, LANE_READY } state;
    struct event *io_read, *io_write;
    struct query_list queue;    /* the first is running when `running` */
    int running;
    PGresult *last;             /* last result of the running query */
};

/* Shared by the loop and the resolver thread; the last of the two to let go frees it. */
struct resolve {
    int refs;
    int fds[2];                 /* [0] the loop's end, [1] the thread's */
    char *host, *port;
    struct db_hosts out;
    char *err;
};

struct db {
    struct event_base *base;
    char *conninfo;
    char *listen_sql;
    struct db_events ev;
    enum { DB_DOWN, DB_RESOLVING, DB_CONNECTING, DB_UP } state;
    struct lane lane[LANE_COUNT];
    int listening;              /* the main lane's LISTEN is done */
    struct db_params *params;   /* of the connection being made */
    struct resolve *resolving;
    struct event *resolve_ev, *retry_timer;
    double backoff;
    int nqueued;
    int closing;                /* db_free: every query fails from now on */
    int rotation;               /* connect timeouts so far: where the host list starts */
};

static void db_connect(struct db *db);
static void db_lost(struct db *db, const char *why);
static void lane_pump(struct lane *l);

int db_result_ok(const PGresult *res)
{
    if (res == NULL)
        return 0;
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static void query_free(struct query *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q);
}

static struct query *query_new(int flags, const char *sql, int nparams, const char *const *params,
                               db_result_fn fn, void *arg)
{
    struct query *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return NULL;
    q->flags = flags;
    q->fn = fn;
    q->arg = arg;
    q->nparams = nparams;
    if ((q->sql = strdup(sql)) == NULL || (q->params = calloc(nparams + 1, sizeof(char *))) == NULL)
        goto fail;
    for (int i = 0; i < nparams; i++)
        if (params[i] && (q->params[i] = strdup(params[i])) == NULL)
            goto fail;
    return q;
fail:
    query_free(q);
    return NULL;
}

static void append(struct lane *l, struct query *q)
{
    STAILQ_INSERT_TAIL(&l->queue, q, entry);
    l->db->nqueued++;
}

static void clear_io(struct lane *l)
{
    if (l->io_read) {
        event_free(l->io_read);
        l->io_read = NULL;
    }
    if (l->io_write) {
        event_free(l->io_write);
        l->io_write = NULL;
    }
}

static void io_cb(evutil_socket_t fd, short what, void *arg);

static void watch(struct lane *l, short what)
{
    clear_io(l);
    int fd = PQsocket(l->conn);
    if (what & EV_READ) {
        l->io_read = event_new(l->db->base, fd, EV_READ | EV_PERSIST, io_cb, l);
        event_add(l->io_read, NULL);
    }
    if (what & EV_WRITE) {
        l->io_write = event_new(l->db->base, fd, EV_WRITE, io_cb, l);
        event_add(l->io_write, NULL);
    }
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db *db = arg;

    (void)fd;
    (void)what;
    if (db->state == DB_CONNECTING) {   /* the timer was the connect deadline */
        db->rotation++;
        db_lost(db, "connection attempt timed out");
        return;
    }
    db_connect(db);
}

static void schedule_reconnect(struct db *db)
{
    struct timeval tv = { (time_t)db->backoff, (suseconds_t)((db->backoff - (long)db->backoff) * 1e6) };

    evtimer_add(db->retry_timer, &tv);
    db->backoff = db->backoff * 2 > 10 ? 10 : db->backoff * 2;
}

/* Deliver a finished query's result and move on. */
static void finish_head(struct lane *l, PGresult *res)
{
    struct query *q = STAILQ_FIRST(&l->queue);

    l->running = 0;
    STAILQ_REMOVE_HEAD(&l->queue, entry);
    l->db->nqueued--;
    if (q->fn)
        q->fn(res, q->arg);
    if (res)
        PQclear(res);
    query_free(q);
}

static void handle_notifies(struct lane *l)
{
    PGnotify *n;

    while ((n = PQnotifies(l->conn)) != NULL) {
        if (l->db->ev.notify)
            l->db->ev.notify(n->relname, n->extra, l->db->ev.arg);
        PQfreemem(n);
    }
}

/* Up once the main lane listens and the others are connected. */
static void maybe_up(struct db *db)
{
    if (db->state == DB_UP || !db->listening)
        return;
    for (int i = LANE_MAIN + 1; i < LANE_COUNT; i++)
        if (db->lane[i].state != LANE_READY)
            return;
    db->state = DB_UP;
    evtimer_del(db->retry_timer);       /* the connect deadline */
    db->backoff = 0.5;
    log_info("database connected and listening");
    if (db->ev.connected)
        db->ev.connected(db->ev.arg);
}

static void listen_done(PGresult *res, void *arg)
{
    struct db *db = arg;

    if (!db_result_ok(res)) {
        db_lost(db, res ? PQresultErrorMessage(res) : "LISTEN failed");
        return;
    }
    db->listening = 1;
    maybe_up(db);
}

static void send_head(struct lane *l)
{
    struct query *q = STAILQ_FIRST(&l->queue);

    if (!PQsendQueryParams(l->conn, q->sql, q->nparams, NULL, (const char *const *)q->params,
                           NULL, NULL, 0)) {
        db_lost(l->db, PQerrorMessage(l->conn));
        return;
    }
    l->running = 1;
    int f = PQflush(l->conn);
    if (f == -1)
        db_lost(l->db, PQerrorMessage(l->conn));
    else
        watch(l, EV_READ | (f == 1 ? EV_WRITE : 0));
}

static void lane_pump(struct lane *l)
{
    if (l->state == LANE_READY && !l->running && !STAILQ_EMPTY(&l->queue))
        send_head(l);
}

/* SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown) */
static int connection_error(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0);
}

/* The statement gave up, not the data: lock_timeout or statement_timeout (or an operator's
 * cancel), a deadlock or a serialization failure. */
static int transient_error(const PGresult *res)
{
    static const char *const states[] = { "55P03", "57014", "40001", "40P01" };
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    for (size_t i = 0; state && i < sizeof(states) / sizeof(states[0]); i++)
        if (strcmp(state, states[i]) == 0)
            return 1;
    return 0;
}

static void read_results(struct lane *l)
{
    if (!PQconsumeInput(l->conn)) {
        db_lost(l->db, PQerrorMessage(l->conn));
        return;
    }
    while (l->running && !PQisBusy(l->conn)) {
        PGresult *res = PQgetResult(l->conn);
        if (res == NULL) {
            PGresult *last = l->last;
            /* the server going away fails the running query: not the query's fault, so a
             * DB_KEEP query must stay queued for the next connection */
            if (PQstatus(l->conn) == CONNECTION_BAD || connection_error(last)) {
                db_lost(l->db, last ? PQresultErrorMessage(last) : PQerrorMessage(l->conn));
                return;
            }
            l->last = NULL;
            /* a DB_KEEP query is idempotent and must not be lost to a timeout: again */
            if ((STAILQ_FIRST(&l->queue)->flags & DB_KEEP) && transient_error(last)) {
                char why[256];
                snprintf(why, sizeof(why), "%s", PQresultErrorMessage(last));
                why[strcspn(why, "\n")] = '\0';
                log_warn("database: %s; running the statement again", why);
                PQclear(last);
                l->running = 0;
                send_head(l);
                return;
            }
            finish_head(l, last);
            if (l->conn == NULL)    /* a callback may have lost us */
                return;
            lane_pump(l);
            break;
        }
        if (l->last)
            PQclear(l->last);
        l->last = res;
    }
    handle_notifies(l);
    if (PQstatus(l->conn) == CONNECTION_BAD)
        db_lost(l->db, PQerrorMessage(l->conn));
}

static void connect_poll(struct lane *l)
{
    struct db *db = l->db;

    switch (PQconnectPoll(l->conn)) {
    case PGRES_POLLING_READING:
        watch(l, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        watch(l, EV_WRITE);
        break;
    case PGRES_POLLING_OK: {
        PQsetnonblocking(l->conn, 1);
        l->state = LANE_READY;
        watch(l, EV_READ);
        if (l->id != LANE_MAIN) {
            lane_pump(l);
            if (l->conn)
                maybe_up(db);
            break;
        }
        /* LISTEN jumps the queue: nothing else may run before we hear notifications */
        struct query *q = query_new(0, db->listen_sql, 0, NULL, listen_done, db);
        if (q == NULL) {
            db_lost(db, "out of memory");
            return;
        }
        STAILQ_INSERT_HEAD(&l->queue, q, entry);
        db->nqueued++;
        send_head(l);
        break;
    }
    default:
        db_lost(db, PQerrorMessage(l->conn));
    }
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lane *l = arg;

    (void)fd;
    if (l->state == LANE_CONNECTING) {
        connect_poll(l);
        return;
    }
    if (what & EV_WRITE) {
        int f = PQflush(l->conn);
        if (f == -1) {
            db_lost(l->db, PQerrorMessage(l->conn));
            return;
        }
        if (f == 1)
            event_add(l->io_write, NULL);
    }
    if (what & EV_READ)
        read_results(l);
}

/* libpq ignores connect_timeout in non-blocking connects, so we keep the deadline ourselves
 * (the retry timer), and after a timeout the next attempt starts at the next host: a hung host
 * (it accepts and never answers) would otherwise hold every attempt. */
static int rotate_hosts(struct db_params *p, int rotation)
{
    static const char *const keys[] = { "host", "hostaddr", "port" };
    int hosts = 0;

    for (int i = 0; i < 2; i++)
        if (hostlist_count(db_params_get(p, keys[i])) > hosts)
            hosts = hostlist_count(db_params_get(p, keys[i]));
    if (hosts < 2 || rotation % hosts == 0)
        return 0;
    for (int i = 0; i < 3; i++) {
        const char *v = db_params_get(p, keys[i]);
        if (v == NULL || hostlist_count(v) != hosts)
            continue;
        char *r = hostlist_rotate(v, rotation);
        int rc = r ? db_params_set(p, keys[i], r) : -1;
        free(r);
        if (rc == -1)
            return -1;
    }
    return 0;
}

static int connect_timeout(const struct db_params *p)
{
    const char *v = db_params_get(p, "connect_timeout"), *env = getenv("PGCONNECT_TIMEOUT");
    int t = v ? atoi(v) : 0;

    if (t <= 0 && env)
        t = atoi(env);
    if (t <= 0)
        t = 10;
    return t < 2 ? 2 : t;       /* libpq's own minimum */
}

static void lanes_start(struct db *db)
{
    if (rotate_hosts(db->params, db->rotation) == -1) {
        db_lost(db, "out of memory");
        return;
    }
    struct timeval deadline = { connect_timeout(db->params), 0 };
    db->state = DB_CONNECTING;
    evtimer_add(db->retry_timer, &deadline);
    for (int i = 0; i < LANE_COUNT; i++) {
        struct lane *l = &db->lane[i];

        l->conn = PQconnectStartParams(db->params->keywords, db->params->values, 0);
        if (l->conn == NULL || PQstatus(l->conn) == CONNECTION_BAD) {
            db_lost(db, l->conn ? PQerrorMessage(l->conn) : "out of memory");
            return;
        }
        l->state = LANE_CONNECTING;
        watch(l, EV_WRITE);
    }
}

/* ---- host names, resolved off the loop ---- */

static void resolve_unref(struct resolve *r)
{
    if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    close(r->fds[0]);
    close(r->fds[1]);
    free(r->host);
    free(r->port);
    free(r->err);
    db_hosts_clear(&r->out);
    free(r);
}

static void *resolve_thread(void *arg)
{
    struct resolve *r = arg;
    char done = 1;

    db_hosts_resolve(r->host, r->port, db_lookup_getaddrinfo, &r->out, &r->err);
    if (send(r->fds[1], &done, 1, MSG_NOSIGNAL) != 1) {
        /* the loop gave up on us (db_free): nobody reads the answer */
    }
    resolve_unref(r);
    return NULL;
}

/* The loop no longer waits for the thread (it frees what it shares once it finishes). */
static void resolve_abandon(struct db *db)
{
    if (db->resolve_ev) {
        event_free(db->resolve_ev);
        db->resolve_ev = NULL;
    }
    if (db->resolving) {
        resolve_unref(db->resolving);
        db->resolving = NULL;
    }
}

static void resolved_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db *db = arg;
    struct resolve *r = db->resolving;
    char done;

    (void)what;
    if (recv(fd, &done, 1, 0) != 1)
        return;
    if (r->out.skipped)
        log_warn("database: could not resolve %s; trying the other hosts", r->out.skipped);
    if (r->err || r->out.host == NULL) {
        char why[512];
        snprintf(why, sizeof(why), "%s", r->err ? r->err : "out of memory");
        resolve_abandon(db);
        db_lost(db, why);
        return;
    }
    if (db_params_set(db->params, "host", r->out.host) == -1 ||
        db_params_set(db->params, "hostaddr", r->out.hostaddr) == -1 ||
        (r->out.port && db_params_set(db->params, "port", r->out.port) == -1)) {
        resolve_abandon(db);
        db_lost(db, "out of memory");
        return;
    }
    resolve_abandon(db);
    lanes_start(db);
}

static int resolve_start(struct db *db, const char *hosts)
{
    struct resolve *r = calloc(1, sizeof(*r));
    const char *port = db_params_get(db->params, "port");
    pthread_attr_t attr;
    pthread_t tid;

    if (r == NULL)
        return -1;
    r->fds[0] = r->fds[1] = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->fds) == -1 ||
        (r->host = strdup(hosts)) == NULL || (port && (r->port = strdup(port)) == NULL) ||
        (db->resolve_ev = event_new(db->base, r->fds[0], EV_READ, resolved_cb, db)) == NULL)
        goto fail;
    r->refs = 2;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, resolve_thread, r);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        goto fail;
    event_add(db->resolve_ev, NULL);
    db->resolving = r;
    db->state = DB_RESOLVING;
    return 0;
fail:
    if (db->resolve_ev) {
        event_free(db->resolve_ev);
        db->resolve_ev = NULL;
    }
    r->refs = 1;
    resolve_unref(r);
    return -1;
}

static void db_connect(struct db *db)
{
    char *err = NULL;
    const char *hosts;

    db_params_free(db->params);
    if ((db->params = db_params_new(db->conninfo, &err)) == NULL) {
        char why[512];
        snprintf(why, sizeof(why), "%s", err ? err : "out of memory");
        free(err);
        db_lost(db, why);
        return;
    }
    if ((hosts = db_params_hosts(db->params)) == NULL) {
        lanes_start(db);
        return;
    }
    if (resolve_start(db, hosts) == -1)
        db_lost(db, "cannot start the host name resolver");
}

/* ---- losing the connection ---- */

static void lane_close(struct lane *l)
{
    clear_io(l);
    if (l->last) {
        PQclear(l->last);
        l->last = NULL;
    }
    if (l->conn) {
        PQfinish(l->conn);
        l->conn = NULL;
    }
    l->state = LANE_DOWN;
    l->running = 0;
}

/* Run failures in order; DB_KEEP queries stay queued, the LISTEN is re-made on connect. */
static void lane_fail(struct lane *l)
{
    struct query_list failing = STAILQ_HEAD_INITIALIZER(failing), keep = STAILQ_HEAD_INITIALIZER(keep);
    struct query *q;

    STAILQ_CONCAT(&failing, &l->queue);
    while ((q = STAILQ_FIRST(&failing)) != NULL) {
        STAILQ_REMOVE_HEAD(&failing, entry);
        if ((q->flags & DB_KEEP) && q->fn != listen_done && !l->db->closing) {
            STAILQ_INSERT_TAIL(&keep, q, entry);
            continue;
        }
        l->db->nqueued--;
        if (q->fn && q->fn != listen_done)
            q->fn(NULL, q->arg);
        query_free(q);
    }
    /* callbacks may have queued more while we were failing the old ones: those go after */
    STAILQ_CONCAT(&keep, &l->queue);
    STAILQ_CONCAT(&l->queue, &keep);
}

static void db_lost(struct db *db, const char *why)
{
    int was_up = db->state == DB_UP;
    char reason[512];

    snprintf(reason, sizeof(reason), "%s", why ? why : "unknown error");
    reason[strcspn(reason, "\n")] = '\0';
    resolve_abandon(db);
    for (int i = 0; i < LANE_COUNT; i++)
        lane_close(&db->lane[i]);
    db->state = DB_DOWN;
    db->listening = 0;
    for (int i = 0; i < LANE_COUNT; i++)
        lane_fail(&db->lane[i]);
    if (db->closing)
        return;
    if (was_up || db->backoff <= 0.5)
        log_warn("database connection lost or refused: %s; retrying", reason);
    if (was_up && db->ev.disconnected)
        db->ev.disconnected(db->ev.arg);
    schedule_reconnect(db);
}

/* ---- the interface ---- */

struct db *db_new(struct event_base *base, const char *conninfo, const char *listen_channel,
                  const struct db_events *events)
{
    struct db *db = calloc(1, sizeof(*db));

    if (db == NULL)
        return NULL;
    db->base = base;
    db->ev = *events;
    db->backoff = 0.5;
    for (int i = 0; i < LANE_COUNT; i++) {
        db->lane[i].db = db;
        STAILQ_INIT(&db->lane[i].queue);
        db->lane[i].id = i;
    }
    db->conninfo = strdup(conninfo);
    if (asprintf(&db->listen_sql, "LISTEN %s", listen_channel) == -1)
        db->listen_sql = NULL;
    db->retry_timer = evtimer_new(base, retry_cb, db);
    if (db->conninfo == NULL || db->listen_sql == NULL || db->retry_timer == NULL) {
        db_free(db);
        return NULL;
    }
    return db;
}

void db_start(struct db *db)
{
    db_connect(db);
}

int db_connected(const struct db *db)
{
    return db->state == DB_UP;
}

int db_set_conninfo(struct db *db, const char *conninfo)
{
    char *c;

    if (strcmp(conninfo, db->conninfo) == 0)
        return 0;
    if ((c = strdup(conninfo)) == NULL)
        return -1;
    free(db->conninfo);
    db->conninfo = c;
    return 1;
}

/* Queue Q on lane L, or fail it at once when it cannot run (no connection, not DB_KEEP). */
static int enqueue(struct db *db, struct lane *l, struct query *q)
{
    if (db->closing || (l->state != LANE_READY && !(q->flags & DB_KEEP))) {
        db_result_fn fn = q->fn;
        void *arg = q->arg;
        query_free(q);
        if (fn)
            fn(NULL, arg);
        return -1;
    }
    append(l, q);
    lane_pump(l);
    return 0;
}

int db_query(struct db *db, int flags, const char *sql, int nparams, const char *const *params,
             db_result_fn fn, void *arg)
{
    struct query *q = query_new(flags, sql, nparams, params, fn, arg), *copy = NULL;

    if (q == NULL || ((flags & DB_EVERY) &&
                      (copy = query_new(flags, sql, nparams, params, NULL, NULL)) == NULL)) {
        if (q)
            query_free(q);
        log_err("database: out of memory queueing a query");
        if (fn)
            fn(NULL, arg);
        return -1;
    }
    /* the copies go first: their lanes may run them at once, and the caller hears only of Q */
    if (copy) {
        enqueue(db, &db->lane[LANE_URGENT], copy);
        copy = query_new(flags, sql, nparams, params, NULL, NULL);
        if (copy)
            enqueue(db, &db->lane[LANE_LEDGER], copy);
        else
            log_err("database: out of memory queueing a session setting for the ledger lane");
        return enqueue(db, &db->lane[LANE_MAIN], q);
    }
    return enqueue(db, &db->lane[(flags & DB_LEDGER) ? LANE_LEDGER
                                 : (flags & DB_URGENT) ? LANE_URGENT : LANE_MAIN], q);
}

int db_queued(const struct db *db)
{
    return db->nqueued;
}

void db_free(struct db *db)
{
    if (db == NULL)
        return;
    /* every owner hears that its query will never run (the ledger logs what it held) */
    db->closing = 1;
    resolve_abandon(db);
    for (int i = 0; i < LANE_COUNT; i++)
        lane_close(&db->lane[i]);
    for (int i = 0; i < LANE_COUNT; i++)
        lane_fail(&db->lane[i]);
    if (db->retry_timer)
        event_free(db->retry_timer);
    db_params_free(db->params);
    free(db->conninfo);
    free(db->listen_sql);
    free(db);
}

