/* Connection parameters for the daemon's sessions (see db_params.h). */
#include "db_params.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-fe.h>

static int grow(struct db_params *p)
{
    const char **k = realloc(p->keywords, (p->n + 2) * sizeof(*k));

    if (k == NULL)
        return -1;
    p->keywords = k;
    const char **v = realloc(p->values, (p->n + 2) * sizeof(*v));
    if (v == NULL)
        return -1;
    p->values = v;
    return 0;
}

const char *db_params_get(const struct db_params *p, const char *key)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->keywords[i], key) == 0)
            return p->values[i];
    return NULL;
}

int db_params_set(struct db_params *p, const char *key, const char *value)
{
    char *v = strdup(value);

    if (v == NULL)
        return -1;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->keywords[i], key) == 0) {
            free((char *)p->values[i]);
            p->values[i] = v;
            return 0;
        }
    char *k = strdup(key);
    if (k == NULL || grow(p) == -1) {
        free(k);
        free(v);
        return -1;
    }
    p->keywords[p->n] = k;
    p->values[p->n] = v;
    p->n++;
    p->keywords[p->n] = NULL;
    p->values[p->n] = NULL;
    return 0;
}

void db_params_free(struct db_params *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->n; i++) {
        free((char *)p->keywords[i]);
        free((char *)p->values[i]);
    }
    free(p->keywords);
    free(p->values);
    free(p);
}

/* A default is added only when neither the conninfo nor libpq's environment variable sets it. */
static int set_default(struct db_params *p, const char *key, const char *env, const char *value)
{
    if (db_params_get(p, key) || (env && getenv(env)))
        return 0;
    return db_params_set(p, key, value);
}

/* -c statement_timeout=... and lock_timeout come first: the operator's own options follow and,
 * naming the same setting, win. */
static int set_options(struct db_params *p)
{
    const char *own = db_params_get(p, "options");
    char *opts = NULL;
    int rc;

    if (own == NULL)
        own = getenv("PGOPTIONS");
    if (asprintf(&opts, "%s%s%s",
                 own && strstr(own, "statement_timeout") ? "" : "-c statement_timeout=" DB_STATEMENT_TIMEOUT " ",
                 own && strstr(own, "lock_timeout") ? "" : "-c lock_timeout=" DB_LOCK_TIMEOUT " ",
                 own ? own : "") == -1)
        return -1;
    size_t len = strlen(opts);
    while (len > 0 && opts[len - 1] == ' ')
        opts[--len] = '\0';
    rc = len ? db_params_set(p, "options", opts) : 0;
    free(opts);
    return rc;
}

struct db_params *db_params_new(const char *conninfo, char **err)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    struct db_params *p = NULL;

    *err = NULL;
    if (opts == NULL) {
        *err = strdup(perr ? perr : "out of memory");
        if (*err)
            (*err)[strcspn(*err, "\n")] = '\0';
        PQfreemem(perr);
        return NULL;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL || grow(p) == -1)
        goto fail;
    p->keywords[0] = p->values[0] = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && db_params_set(p, o->keyword, o->val) == -1)
            goto fail;
    /* a name in PGHOST must not be resolved by libpq on the loop either */
    if (!db_params_get(p, "host") && getenv("PGHOST") && db_params_set(p, "host", getenv("PGHOST")) == -1)
        goto fail;
    if (!db_params_get(p, "hostaddr") && getenv("PGHOSTADDR") &&
        db_params_set(p, "hostaddr", getenv("PGHOSTADDR")) == -1)
        goto fail;
    if (set_default(p, "application_name", "PGAPPNAME", DB_APPLICATION_NAME) == -1 ||
        set_default(p, "connect_timeout", "PGCONNECT_TIMEOUT", DB_CONNECT_TIMEOUT) == -1 ||
        set_default(p, "keepalives", NULL, "1") == -1 ||
        set_default(p, "keepalives_idle", NULL, DB_KEEPALIVES_IDLE) == -1 ||
        set_default(p, "keepalives_interval", NULL, DB_KEEPALIVES_INTERVAL) == -1 ||
        set_default(p, "keepalives_count", NULL, DB_KEEPALIVES_COUNT) == -1 ||
        set_options(p) == -1)
        goto fail;
    PQconninfoFree(opts);
    return p;
fail:
    PQconninfoFree(opts);
    db_params_free(p);
    *err = strdup("out of memory");
    return NULL;
}

/* A socket directory (or an abstract socket, or the empty default) is not a name. */
static int is_socket(const char *h, size_t len)
{
    return len == 0 || h[0] == '/' || h[0] == '@';
}

const char *db_params_hosts(const struct db_params *p)
{
    const char *host = db_params_get(p, "host");

    if (host == NULL || db_params_get(p, "hostaddr"))
        return NULL;
    for (const char *h = host;;) {
        size_t len = strcspn(h, ",");
        if (!is_socket(h, len))
            return host;
        if (h[len] == '\0')
            return NULL;
        h += len + 1;
    }
}

int db_lookup_getaddrinfo(const char *name, char out[][64], int max)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *ai;
    int n = 0;

    if (getaddrinfo(name, NULL, &hints, &res) != 0)
        return 0;
    for (ai = res; ai && n < max; ai = ai->ai_next) {
        const void *a = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                      : ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                      : NULL;
        if (a && inet_ntop(ai->ai_family, a, out[n], 64))
            n++;
    }
    freeaddrinfo(res);
    return n;
}

static int count(const char *list)
{
    int n = 1;

    for (; *list; list++)
        n += *list == ',';
    return n;
}

/* Append TEXT (TLEN bytes) to the list *S of *LEN bytes, after a comma unless FIRST. */
static int append(char **s, size_t *len, int first, const char *text, size_t tlen)
{
    char *n = realloc(*s, *len + tlen + 2);

    if (n == NULL)
        return -1;
    if (!first)
        n[(*len)++] = ',';
    memcpy(n + *len, text, tlen);
    *len += tlen;
    n[*len] = '\0';
    *s = n;
    return 0;
}

int db_hosts_resolve(const char *host, const char *port, db_lookup_fn lookup,
                     struct db_hosts *out, char **err)
{
    size_t hl = 0, al = 0, pl = 0, sl = 0;
    int per_host_port = port && strchr(port, ',') && count(port) == count(host);
    const char *h = host, *pp = port;
    char addrs[DB_ADDR_MAX][64];
    int entries = 0;

    memset(out, 0, sizeof(*out));
    *err = NULL;
    for (;;) {
        size_t len = strcspn(h, ","), plen = per_host_port ? strcspn(pp, ",") : 0;
        char name[256];
        int n;

        if (is_socket(h, len)) {
            n = 1;
            addrs[0][0] = '\0';
        } else {
            snprintf(name, sizeof(name), "%.*s", (int)len, h);
            n = len < sizeof(name) ? lookup(name, addrs, DB_ADDR_MAX) : 0;
            if (n == 0 && append(&out->skipped, &sl, !sl, h, len) == -1)
                goto nomem;
        }
        for (int i = 0; i < n; i++, entries++)
            if (append(&out->host, &hl, !entries, h, len) == -1 ||
                append(&out->hostaddr, &al, !entries, addrs[i], strlen(addrs[i])) == -1 ||
                (per_host_port && append(&out->port, &pl, !entries, pp, plen) == -1))
                goto nomem;
        if (h[len] == '\0')
            break;
        h += len + 1;
        if (per_host_port)
            pp += plen + 1;
    }
    if (entries == 0) {
        if (asprintf(err, "could not resolve %s", host) == -1)
            *err = NULL;
        db_hosts_clear(out);
        return -1;
    }
    return 0;
nomem:
    db_hosts_clear(out);
    *err = strdup("out of memory");
    return -1;
}

void db_hosts_clear(struct db_hosts *h)
{
    free(h->host);
    free(h->hostaddr);
    free(h->port);
    free(h->skipped);
    memset(h, 0, sizeof(*h));
}
