/* Non-blocking libpq on the loop. Only one query runs at a time on the connection; the rest wait
 * in a FIFO. Connection loss fails or keeps the queued queries (DB_KEEP) and reconnects with
 * exponential backoff; the owner re-runs its start-up sweep on `connected`. */
#include "db.h"

#include <stdlib.h>
#include <string.h>

#include "hostlist.h"
#include "log.h"

struct query {
    char *sql;
    int nparams;
    char **params;
    int flags;
    db_result_fn fn;
    void *arg;
    struct query *next;
};

struct db {
    struct event_base *base;
    char *conninfo;
    char *listen_sql;
    struct db_events ev;
    PGconn *conn;
    enum { DB_DOWN, DB_CONNECTING, DB_LISTENING, DB_UP } state;
    struct event *io_read, *io_write, *retry_timer;
    double backoff;
    struct query *head, *tail;  /* head is running when `running` */
    int running;
    PGresult *last;             /* last result of the running query */
    int nqueued;
    int closing;                /* db_free: every query fails from now on */
    int rotation;               /* connect timeouts so far: where the host list starts */
};

static void db_connect(struct db *db);
static void db_lost(struct db *db, const char *why);
static void db_pump(struct db *db);

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

static void clear_io(struct db *db)
{
    if (db->io_read) {
        event_free(db->io_read);
        db->io_read = NULL;
    }
    if (db->io_write) {
        event_free(db->io_write);
        db->io_write = NULL;
    }
}

static void io_cb(evutil_socket_t fd, short what, void *arg);

static void watch(struct db *db, short what)
{
    clear_io(db);
    int fd = PQsocket(db->conn);
    if (what & EV_READ) {
        db->io_read = event_new(db->base, fd, EV_READ | EV_PERSIST, io_cb, db);
        event_add(db->io_read, NULL);
    }
    if (what & EV_WRITE) {
        db->io_write = event_new(db->base, fd, EV_WRITE, io_cb, db);
        event_add(db->io_write, NULL);
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
static void finish_head(struct db *db, PGresult *res)
{
    struct query *q = db->head;

    db->running = 0;
    if ((db->head = q->next) == NULL)
        db->tail = NULL;
    db->nqueued--;
    if (q->fn)
        q->fn(res, q->arg);
    if (res)
        PQclear(res);
    query_free(q);
}

static void handle_notifies(struct db *db)
{
    PGnotify *n;

    while ((n = PQnotifies(db->conn)) != NULL) {
        if (db->ev.notify)
            db->ev.notify(n->relname, n->extra, db->ev.arg);
        PQfreemem(n);
    }
}

static void listen_done(PGresult *res, void *arg)
{
    struct db *db = arg;

    if (!db_result_ok(res)) {
        db_lost(db, res ? PQresultErrorMessage(res) : "LISTEN failed");
        return;
    }
    db->state = DB_UP;
    db->backoff = 0.5;
    log_info("database connected and listening");
    if (db->ev.connected)
        db->ev.connected(db->ev.arg);
}

static void send_head(struct db *db)
{
    struct query *q = db->head;

    if (!PQsendQueryParams(db->conn, q->sql, q->nparams, NULL, (const char *const *)q->params,
                           NULL, NULL, 0)) {
        db_lost(db, PQerrorMessage(db->conn));
        return;
    }
    db->running = 1;
    int f = PQflush(db->conn);
    if (f == -1)
        db_lost(db, PQerrorMessage(db->conn));
    else
        watch(db, EV_READ | (f == 1 ? EV_WRITE : 0));
}

static void db_pump(struct db *db)
{
    if ((db->state == DB_UP || db->state == DB_LISTENING) && !db->running && db->head)
        send_head(db);
}

/* SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown) */
static int connection_error(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0);
}

static void read_results(struct db *db)
{
    if (!PQconsumeInput(db->conn)) {
        db_lost(db, PQerrorMessage(db->conn));
        return;
    }
    while (db->running && !PQisBusy(db->conn)) {
        PGresult *res = PQgetResult(db->conn);
        if (res == NULL) {
            PGresult *last = db->last;
            /* the server going away fails the running query: not the query's fault, so a
             * DB_KEEP query must stay queued for the next connection */
            if (PQstatus(db->conn) == CONNECTION_BAD || connection_error(last)) {
                db_lost(db, last ? PQresultErrorMessage(last) : PQerrorMessage(db->conn));
                return;
            }
            db->last = NULL;
            finish_head(db, last);
            if (db->conn == NULL)    /* a callback may have lost us */
                return;
            db_pump(db);
            break;
        }
        if (db->last)
            PQclear(db->last);
        db->last = res;
    }
    handle_notifies(db);
    if (PQstatus(db->conn) == CONNECTION_BAD)
        db_lost(db, PQerrorMessage(db->conn));
}

static void connect_poll(struct db *db)
{
    switch (PQconnectPoll(db->conn)) {
    case PGRES_POLLING_READING:
        watch(db, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        watch(db, EV_WRITE);
        break;
    case PGRES_POLLING_OK: {
        evtimer_del(db->retry_timer);   /* the connect deadline */
        PQsetnonblocking(db->conn, 1);
        db->state = DB_LISTENING;
        watch(db, EV_READ);
        /* LISTEN jumps the queue: nothing else may run before we hear notifications */
        struct query *q = calloc(1, sizeof(*q));
        if (q == NULL || (q->sql = strdup(db->listen_sql)) == NULL) {
            free(q);
            db_lost(db, "out of memory");
            return;
        }
        q->fn = listen_done;
        q->arg = db;
        q->next = db->head;
        db->head = q;
        if (db->tail == NULL)
            db->tail = q;
        db->nqueued++;
        send_head(db);
        break;
    }
    default:
        db_lost(db, PQerrorMessage(db->conn));
    }
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db *db = arg;

    (void)fd;
    if (db->state == DB_CONNECTING) {
        connect_poll(db);
        return;
    }
    if (what & EV_WRITE) {
        int f = PQflush(db->conn);
        if (f == -1) {
            db_lost(db, PQerrorMessage(db->conn));
            return;
        }
        if (f == 1)
            event_add(db->io_write, NULL);
    }
    if (what & EV_READ)
        read_results(db);
}

/* PQconnectStart, with the host/hostaddr/port lists of a multi-host conninfo rotated by the
 * timeouts so far, and *TIMEOUT set to its connect_timeout (default 10 s): libpq ignores that in
 * non-blocking connects, so we keep the time, and after a timeout the next attempt starts at the
 * next host instead of waiting for the hung one again. */
static PGconn *connect_start(const char *conninfo, int rotation, int *timeout)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    const char *kw[64], *val[64];
    char *own[3] = { NULL, NULL, NULL };
    int n = 0, nown = 0, hosts = 0;
    PGconn *conn = NULL;

    const char *env = getenv("PGCONNECT_TIMEOUT");   /* libpq's default for the key */
    *timeout = env && atoi(env) > 0 ? (atoi(env) < 2 ? 2 : atoi(env)) : 10;
    if (opts == NULL)
        return PQconnectStart(conninfo);  /* its error says what is wrong */
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0))
            hosts = hostlist_count(o->val) > hosts ? hostlist_count(o->val) : hosts;
    for (PQconninfoOption *o = opts; o->keyword && n < 63; o++) {
        if (o->val == NULL)
            continue;
        kw[n] = o->keyword;
        val[n] = o->val;
        if (strcmp(o->keyword, "connect_timeout") == 0 && atoi(o->val) > 0)
            *timeout = atoi(o->val) < 2 ? 2 : atoi(o->val);  /* libpq's own minimum */
        if (hosts > 1 && rotation % hosts && nown < 3 && hostlist_count(o->val) == hosts &&
            (!strcmp(o->keyword, "host") || !strcmp(o->keyword, "hostaddr") ||
             !strcmp(o->keyword, "port"))) {
            if ((own[nown] = hostlist_rotate(o->val, rotation)) == NULL)
                goto out;
            val[n] = own[nown++];
        }
        n++;
    }
    kw[n] = val[n] = NULL;
    conn = PQconnectStartParams(kw, val, 0);
out:
    for (int i = 0; i < nown; i++)
        free(own[i]);
    PQconninfoFree(opts);
    return conn;
}

static void db_connect(struct db *db)
{
    int timeout;

    db->conn = connect_start(db->conninfo, db->rotation, &timeout);
    if (db->conn == NULL || PQstatus(db->conn) == CONNECTION_BAD) {
        db_lost(db, db->conn ? PQerrorMessage(db->conn) : "out of memory");
        return;
    }
    db->state = DB_CONNECTING;
    watch(db, EV_WRITE);
    struct timeval deadline = { timeout, 0 };
    evtimer_add(db->retry_timer, &deadline);
}

/* Fail what cannot wait, keep what must not be lost, and try again later. */
static void db_lost(struct db *db, const char *why)
{
    int was_up = db->state == DB_UP;
    char reason[512];

    snprintf(reason, sizeof(reason), "%s", why ? why : "unknown error");
    reason[strcspn(reason, "\n")] = '\0';
    clear_io(db);
    if (db->last) {
        PQclear(db->last);
        db->last = NULL;
    }
    if (db->conn) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
    db->state = DB_DOWN;
    db->running = 0;

    /* run failures in order; DB_KEEP queries stay queued, the LISTEN is re-made on connect */
    struct query *keep_head = NULL, *keep_tail = NULL, *q = db->head, *next;
    db->head = db->tail = NULL;
    for (; q; q = next) {
        next = q->next;
        if ((q->flags & DB_KEEP) && q->fn != listen_done) {
            q->next = NULL;
            if (keep_tail)
                keep_tail->next = q;
            else
                keep_head = q;
            keep_tail = q;
            continue;
        }
        db->nqueued--;
        if (q->fn && q->fn != listen_done)
            q->fn(NULL, q->arg);
        query_free(q);
    }
    /* callbacks may have queued more while we were failing the old ones */
    if (keep_tail) {
        keep_tail->next = db->head;
        if (db->tail == NULL)
            db->tail = keep_tail;
        db->head = keep_head;
    }
    if (was_up || db->backoff <= 0.5)
        log_warn("database connection lost or refused: %s; retrying", reason);
    if (was_up && db->ev.disconnected)
        db->ev.disconnected(db->ev.arg);
    schedule_reconnect(db);
}

struct db *db_new(struct event_base *base, const char *conninfo, const char *listen_channel,
                  const struct db_events *events)
{
    struct db *db = calloc(1, sizeof(*db));

    if (db == NULL)
        return NULL;
    db->base = base;
    db->ev = *events;
    db->backoff = 0.5;
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

int db_query(struct db *db, int flags, const char *sql, int nparams, const char *const *params,
             db_result_fn fn, void *arg)
{
    struct query *q = calloc(1, sizeof(*q));

    if (q == NULL)
        goto fail;
    q->flags = flags;
    q->fn = fn;
    q->arg = arg;
    q->nparams = nparams;
    if ((q->sql = strdup(sql)) == NULL || (q->params = calloc(nparams + 1, sizeof(char *))) == NULL)
        goto fail;
    for (int i = 0; i < nparams; i++)
        if (params[i] && (q->params[i] = strdup(params[i])) == NULL)
            goto fail;
    if (db->closing ||
        (db->state != DB_UP && db->state != DB_LISTENING && !(flags & DB_KEEP))) {
        query_free(q);
        if (fn)
            fn(NULL, arg);
        return -1;
    }
    if (db->tail)
        db->tail->next = q;
    else
        db->head = q;
    db->tail = q;
    db->nqueued++;
    db_pump(db);
    return 0;
fail:
    if (q)
        query_free(q);
    log_err("database: out of memory queueing a query");
    if (fn)
        fn(NULL, arg);
    return -1;
}

int db_queued(const struct db *db)
{
    return db->nqueued;
}

void db_free(struct db *db)
{
    struct query *q, *next;

    if (db == NULL)
        return;
    clear_io(db);
    /* every owner hears that its query will never run (the ledger logs what it held) */
    db->closing = 1;
    q = db->head;
    db->head = db->tail = NULL;
    for (; q; q = next) {
        next = q->next;
        if (q->fn && q->fn != listen_done)
            q->fn(NULL, q->arg);
        query_free(q);
    }
    if (db->last)
        PQclear(db->last);
    if (db->conn)
        PQfinish(db->conn);
    if (db->retry_timer)
        event_free(db->retry_timer);
    free(db->conninfo);
    free(db->listen_sql);
    free(db);
}
