/* herinnerctl audit verify [--checkpoints FILE] | audit checkpoint: the attempt chains
 * (DESIGN.md §9, sql/006_chains.sql).
 *
 * verify reads every chain in one snapshot through a cursor (constant memory however many rows)
 * and recomputes each hash here, not with the database's functions: it trusts the server for the
 * rows, never for the arithmetic. Per chain: seq runs 1, 2, 3 ... without gaps, each prev_hash is
 * the stored hash of the row before, each hash covers its row, the last row is the head that
 * herinnerd.chains records. With checkpoint lines (kept outside the database) every head they
 * commit to must still be there with the same hash: that catches tail deletion and a complete
 * rehash by someone who can switch the triggers off.
 *
 * The chain 'legacy' holds the rows written before sql/006: the v1 digest, seq in id order. The
 * old code forked it when writers overlapped, so there a row may link to another existing
 * legacy row than the one before it; that is counted and noted, not a problem. */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ctl.h"

#define FETCH_ROWS 1000         /* rows per FETCH: the memory verify needs */
#define STR_(x) #x
#define STR(x) STR_(x)
#define MAX_SHOWN 20            /* problems printed; the rest only counted */
#define CHECKPOINT_TAG "herinnerd-checkpoint-v1 "
#define LEGACY_CHAIN "legacy"   /* rows from before sql/006: v1 digest, seq in id order */

/* One head a checkpoint line commits to. */
struct need {
    char *chain;
    long long seq;
    char hash[65];
    long long checkpoint;       /* its id */
    int line;                   /* in the file */
    int seen;                   /* its chain has rows */
};

/* One row of herinnerd.chains. */
struct head {
    char *chain;
    long long seq;
    char hash[65];
    int seen;
};

struct verify {
    struct need *needs;
    size_t nneeds, cap;
    int nlines;                 /* checkpoint lines read */
    struct head *heads;
    size_t nheads;
    long long rows, chains, problems;
    long long forks;            /* legacy rows linked to another existing row than the one before */

    /* the chain being read */
    char *chain;
    char *name;                 /* percent-encoded, for messages */
    int legacy;
    long long seq;              /* last seq read, 0 before the first row */
    char hash[65];              /* last row's stored hash */
    long long matched;          /* last seq a checkpoint confirmed */
    size_t need_at, need_end;   /* its checkpoint heads, by seq */
    struct head *head;          /* its herinnerd.chains row */
};

/* ---- encoding ---------------------------------------------------------------------------- */

static int unreserved(unsigned char c)
{
    return isascii(c) && (isalnum(c) || strchr("-._~:@", c) != NULL);
}

/* Percent-encoded as in checkpoint lines; static buffer, for messages. */
static const char *pct(const char *s)
{
    static char buf[1024];
    size_t n = 0;

    for (; *s && n + 4 < sizeof(buf); s++) {
        unsigned char c = (unsigned char)*s;
        if (unreserved(c))
            buf[n++] = (char)c;
        else
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%%%02X", c);
    }
    buf[n] = '\0';
    return buf;
}

/* Decode %XX in place; -1 on a bad escape or %00. */
static int pct_decode(char *s)
{
    char *out = s;

    for (; *s; s++) {
        if (*s != '%') {
            *out++ = *s;
            continue;
        }
        unsigned v;
        if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]) ||
            sscanf(s + 1, "%2x", &v) != 1 || v == 0)
            return -1;
        *out++ = (char)v;
        s += 2;
    }
    *out = '\0';
    return 0;
}

static int is_hash_hex(const char *s)
{
    size_t n = strlen(s);

    if (n != 64)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
            return 0;
    return 1;
}

static int hex_decode(const char *hex, unsigned char *out, size_t max)
{
    size_t n = strlen(hex) / 2;

    if (n > max)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return (int)n;
}

/* ---- digests (keep equal to sql/006_chains.sql) ------------------------------------------ */

enum col { C_CHAIN, C_SEQ, C_ID, C_MESSAGE, C_STEP, C_TRY, C_CHANNEL, C_OUTCOME, C_DETAIL,
           C_ADDRESS, C_EXTERNAL, C_CREATED, C_INSTANCE, C_CONFIG, C_CLAIM, C_FACT, C_PREV,
           C_HASH, C_PREV_KNOWN, NCOLS };

#define ROW_COLUMNS \
    "SELECT a.chain, a.seq, a.id, a.message_id, a.step, a.try, a.channel, a.outcome, a.detail," \
    "       a.address, a.external_id," \
    "       to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')," \
    "       a.instance, a.config_sha256, a.claim, a.fact, encode(a.prev_hash, 'hex')," \
    "       encode(a.hash, 'hex'), "

/* The legacy chain first. Its writers forked it (ids drawn before the lock, the predecessor
 * "the highest visible id"), so a row may link to a row other than the one before it in id
 * order; prev_known says whether the row it links to exists at all. */
#define LEGACY_SQL ROW_COLUMNS "k.hash IS NOT NULL" \
    "  FROM herinnerd.attempts a" \
    "  LEFT JOIN (SELECT DISTINCT hash FROM herinnerd.attempts WHERE chain = '" LEGACY_CHAIN "') k" \
    "    ON k.hash = a.prev_hash" \
    " WHERE a.chain = '" LEGACY_CHAIN "' ORDER BY a.seq"
#define CHAINS_SQL ROW_COLUMNS "false" \
    "  FROM herinnerd.attempts a WHERE a.chain <> '" LEGACY_CHAIN "' ORDER BY a.chain, a.seq"

/* v2: 'N' for NULL, else 'S' <bytes> ':' <value>, field by field. */
static void digest_field(EVP_MD_CTX *md, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) {
        EVP_DigestUpdate(md, "N", 1);
        return;
    }
    char len[32];
    int n = snprintf(len, sizeof(len), "S%d:", PQgetlength(r, row, col));
    EVP_DigestUpdate(md, len, (size_t)n);
    EVP_DigestUpdate(md, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

/* The hash the row should have, as lowercase hex; -1 if it cannot be computed. */
static int row_digest(const PGresult *r, int row, int legacy, char out[65])
{
    static const enum col v2[] = { C_CHAIN, C_SEQ, C_ID, C_MESSAGE, C_STEP, C_TRY, C_CHANNEL,
                                   C_OUTCOME, C_DETAIL, C_ADDRESS, C_EXTERNAL, C_CREATED,
                                   C_INSTANCE, C_CONFIG, C_CLAIM, C_FACT };
    static const enum col v1[] = { C_ID, C_MESSAGE, C_STEP, C_TRY, C_CHANNEL, C_OUTCOME,
                                   C_DETAIL, C_ADDRESS, C_EXTERNAL, C_CREATED, C_INSTANCE,
                                   C_CONFIG };
    unsigned char prev[64], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int nprev = 0, ok = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
        goto out;
    if (!PQgetisnull(r, row, C_PREV) &&
        (nprev = hex_decode(PQgetvalue(r, row, C_PREV), prev, sizeof(prev))) < 0)
        goto out;
    if (legacy) {
        /* v1: prev_hash || concat_ws('|', ...), NULL address/external id as '' */
        EVP_DigestUpdate(ctx, prev, (size_t)nprev);
        for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
            if (i > 0)
                EVP_DigestUpdate(ctx, "|", 1);
            EVP_DigestUpdate(ctx, PQgetvalue(r, row, v1[i]), (size_t)PQgetlength(r, row, v1[i]));
        }
    } else {
        EVP_DigestUpdate(ctx, "herinnerd-attempt-v2", 20);
        EVP_DigestUpdate(ctx, prev, (size_t)nprev);
        for (size_t i = 0; i < sizeof(v2) / sizeof(v2[0]); i++)
            digest_field(ctx, r, row, v2[i]);
    }
    if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32)
        goto out;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    ok = 1;
out:
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* ---- checkpoint lines -------------------------------------------------------------------- */

static int need_cmp(const void *a, const void *b)
{
    const struct need *x = a, *y = b;
    int c = strcmp(x->chain, y->chain);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int add_need(struct verify *v, const char *chain, long long seq, const char *hash,
                    long long checkpoint, int line)
{
    if (v->nneeds == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        struct need *n = realloc(v->needs, cap * sizeof(*n));
        if (n == NULL)
            return -1;
        v->needs = n;
        v->cap = cap;
    }
    struct need *n = &v->needs[v->nneeds];
    if ((n->chain = strdup(chain)) == NULL)
        return -1;
    n->seq = seq;
    snprintf(n->hash, sizeof(n->hash), "%s", hash);
    n->checkpoint = checkpoint;
    n->line = line;
    n->seen = 0;
    v->nneeds++;
    return 0;
}

/* One line: heads added to v, 0 if it is no checkpoint line, -1 with err set if malformed. */
static int parse_line(struct verify *v, char *text, int lineno, char *err, size_t errlen)
{
    char *start = strstr(text, CHECKPOINT_TAG), *save = NULL, *tok;
    long long id = -1, count = -1, got = 0;
    int field = 0;

    if (start == NULL)
        return 0;
    text[strcspn(text, "\r\n")] = '\0';
    strtok_r(start, " ", &save);                         /* the tag */
    while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
        char *end;
        if (field == 0 && strncmp(tok, "id=", 3) == 0) {
            id = strtoll(tok + 3, &end, 10);
            if (*end || end == tok + 3 || id < 1)
                goto bad;
        } else if (field == 1 && strncmp(tok, "at=", 3) == 0) {
        } else if (field == 2 && strncmp(tok, "by=", 3) == 0) {
        } else if (field == 3 && strncmp(tok, "chains=", 7) == 0) {
            count = strtoll(tok + 7, &end, 10);
            if (*end || end == tok + 7 || count < 0)
                goto bad;
        } else if (field >= 4) {
            char *eq = strchr(tok, '='), *colon;
            if (eq == NULL || (colon = strchr(eq, ':')) == NULL)
                goto bad;
            *eq = *colon = '\0';
            long long seq = strtoll(eq + 1, &end, 10);
            if (end != colon || seq < 1 || !is_hash_hex(colon + 1) || pct_decode(tok) == -1)
                goto bad;
            if (add_need(v, tok, seq, colon + 1, id, lineno) == -1) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            got++;
        } else
            goto bad;
        field++;
    }
    if (field < 4 || got != count) {
        snprintf(err, errlen, "line %d: the checkpoint names %lld chains but lists %lld "
                 "(cut short?)", lineno, count, got);
        return -1;
    }
    v->nlines++;
    return 1;
bad:
    snprintf(err, errlen, "line %d: not a checkpoint line as printed (near \"%.40s\")", lineno,
             tok ? tok : "");
    return -1;
}

static int read_checkpoints(struct verify *v, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, err[256];
    size_t cap = 0;
    int lineno = 0, rc = 0;

    if (f == NULL) {
        fprintf(stderr, "herinnerctl: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && getline(&line, &cap, f) != -1)
        if (parse_line(v, line, ++lineno, err, sizeof(err)) == -1) {
            fprintf(stderr, "herinnerctl: %s: %s\n", path, err);
            rc = -1;
        }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "herinnerctl: %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && v->nlines == 0) {
        fprintf(stderr, "herinnerctl: %s: no checkpoint lines (%s...)\n", path, CHECKPOINT_TAG);
        rc = -1;
    }
    free(line);
    fclose(f);
    if (rc == 0)
        qsort(v->needs, v->nneeds, sizeof(*v->needs), need_cmp);
    return rc;
}

/* ---- the check --------------------------------------------------------------------------- */

static void problem(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct verify *v, const char *fmt, ...)
{
    va_list ap;

    if (++v->problems > MAX_SHOWN) {
        if (v->problems == MAX_SHOWN + 1)
            printf("... (more problems are counted below, not shown)\n");
        return;
    }
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static int head_cmp(const void *a, const void *b)
{
    return strcmp(((const struct head *)a)->chain, ((const struct head *)b)->chain);
}

static int load_heads(PGconn *conn, struct verify *v)
{
    PGresult *r = PQexec(conn, "SELECT chain, seq, coalesce(encode(head, 'hex'), '')"
                               "  FROM herinnerd.chains");
    int n;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "herinnerctl: reading herinnerd.chains: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    n = PQntuples(r);
    if ((v->heads = calloc((size_t)n + 1, sizeof(*v->heads))) == NULL)
        goto oom;
    for (int i = 0; i < n; i++) {
        struct head *h = &v->heads[v->nheads];
        if ((h->chain = strdup(PQgetvalue(r, i, 0))) == NULL)
            goto oom;
        h->seq = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        snprintf(h->hash, sizeof(h->hash), "%s", PQgetvalue(r, i, 2));
        v->nheads++;
    }
    PQclear(r);
    qsort(v->heads, v->nheads, sizeof(*v->heads), head_cmp);
    return 0;
oom:
    fprintf(stderr, "herinnerctl: out of memory\n");
    PQclear(r);
    return -1;
}

/* The chain just read is complete: its tail must reach every head that is on record. */
static void end_chain(struct verify *v)
{
    const char *name = v->name;

    if (v->chain == NULL)
        return;
    for (; v->need_at < v->need_end; v->need_at++) {
        const struct need *n = &v->needs[v->need_at];
        if (n->seq > v->seq)
            problem(v, "chain %s: ends at seq %lld, but checkpoint %lld (line %d) covers seq %lld: "
                    "rows removed", name, v->seq, n->checkpoint, n->line, n->seq);
    }
    if (v->head == NULL)
        problem(v, "chain %s: not in herinnerd.chains: its rows were inserted past the trigger",
                name);
    else if (v->head->seq != v->seq || strcmp(v->head->hash, v->hash) != 0)
        problem(v, "chain %s: herinnerd.chains has its head at seq %lld, the rows end at seq %lld: "
                "rows removed, or written past the trigger", name, v->head->seq, v->seq);
    free(v->chain);
    free(v->name);
    v->chain = v->name = NULL;
}

static int start_chain(struct verify *v, const char *chain)
{
    struct need key = { .chain = (char *)chain };
    struct head hkey = { .chain = (char *)chain };
    size_t lo = 0, hi = v->nneeds;

    if ((v->chain = strdup(chain)) == NULL || (v->name = strdup(pct(chain))) == NULL)
        return -1;
    v->legacy = strcmp(chain, LEGACY_CHAIN) == 0;
    v->seq = 0;
    v->hash[0] = '\0';
    v->matched = 0;
    v->chains++;
    /* the first need of this chain: lower bound by name */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(v->needs[mid].chain, key.chain) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    v->need_at = v->need_end = lo;
    while (v->need_end < v->nneeds && strcmp(v->needs[v->need_end].chain, chain) == 0)
        v->needs[v->need_end++].seen = 1;
    v->head = v->nheads ? bsearch(&hkey, v->heads, v->nheads, sizeof(*v->heads), head_cmp) : NULL;
    if (v->head)
        v->head->seen = 1;
    return 0;
}

static int check_row(struct verify *v, const PGresult *r, int i)
{
    const char *chain = PQgetvalue(r, i, C_CHAIN), *id = PQgetvalue(r, i, C_ID);
    long long seq = strtoll(PQgetvalue(r, i, C_SEQ), NULL, 10);
    const char *prev = PQgetisnull(r, i, C_PREV) ? NULL : PQgetvalue(r, i, C_PREV);
    const char *hash = PQgetisnull(r, i, C_HASH) ? "" : PQgetvalue(r, i, C_HASH);
    char want[65];
    int gap = 0;

    if (v->chain == NULL || strcmp(v->chain, chain) != 0) {
        end_chain(v);
        if (start_chain(v, chain) == -1)
            return -1;
    }
    const char *name = v->name;
    v->rows++;

    if (seq != v->seq + 1) {
        gap = 1;
        if (v->seq == 0)
            problem(v, "chain %s: starts at seq %lld (attempt %s): rows 1 to %lld removed", name,
                    seq, id, seq - 1);
        else
            problem(v, "chain %s: seq %lld (attempt %s) follows seq %lld: rows removed", name, seq,
                    id, v->seq);
    }
    if (!gap && (v->seq == 0 ? prev != NULL : prev == NULL || strcmp(prev, v->hash) != 0)) {
        if (v->legacy && v->seq > 0 && prev && *PQgetvalue(r, i, C_PREV_KNOWN) == 't')
            v->forks++;         /* the old code's fork: it links to a row that exists */
        else
            problem(v, "chain %s seq %lld (attempt %s): prev_hash is not the hash of seq %lld: "
                    "a row was inserted, removed or rewritten", name, seq, id, seq - 1);
    }
    if (row_digest(r, i, v->legacy, want) == -1) {
        fprintf(stderr, "herinnerctl: cannot compute SHA-256\n");
        return -1;
    }
    if (strcmp(want, hash) != 0)
        problem(v, "chain %s seq %lld (attempt %s): hash does not match its contents: the row "
                "was changed", name, seq, id);

    /* the heads checkpoints committed to, up to this seq */
    for (; v->need_at < v->need_end && v->needs[v->need_at].seq <= seq; v->need_at++) {
        const struct need *n = &v->needs[v->need_at];
        if (n->seq < seq)
            problem(v, "chain %s: seq %lld, covered by checkpoint %lld (line %d), is missing: "
                    "rows removed", name, n->seq, n->checkpoint, n->line);
        else if (strcmp(n->hash, hash) != 0)
            problem(v, "chain %s seq %lld (attempt %s): rewritten: checkpoint %lld (line %d) "
                    "committed to hash %.16s..., the row has %.16s...: rows %lld to %lld were "
                    "rewritten", name, seq, id, n->checkpoint, n->line, n->hash, hash,
                    v->matched + 1, seq);
        else
            v->matched = seq;
    }
    v->seq = seq;
    snprintf(v->hash, sizeof(v->hash), "%s", hash);
    return 0;
}

/* Chains on record (checkpoints, herinnerd.chains) that have no rows at all. */
static void missing_chains(struct verify *v)
{
    for (size_t i = 0; i < v->nneeds; i++) {
        const struct need *n = &v->needs[i];
        /* once per chain, with the highest seq on record */
        if (!n->seen && (i + 1 == v->nneeds || strcmp(v->needs[i + 1].chain, n->chain) != 0))
            problem(v, "chain %s: checkpoint %lld (line %d) covers it up to seq %lld, but it has "
                    "no rows: removed", pct(n->chain), n->checkpoint, n->line, n->seq);
    }
    for (size_t i = 0; i < v->nheads; i++)
        if (!v->heads[i].seen && v->heads[i].seq > 0)
            problem(v, "chain %s: herinnerd.chains has its head at seq %lld, but it has no rows: "
                    "removed", pct(v->heads[i].chain), v->heads[i].seq);
}

/* Every row a cursor DECLARE opens, FETCH by FETCH. */
static int check_cursor(PGconn *conn, struct verify *v, const char *declare, const char *fetch)
{
    if (!ctl_exec(conn, declare))
        return -1;
    for (;;) {
        PGresult *r = PQexec(conn, fetch);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != NCOLS) {
            fprintf(stderr, "herinnerctl: reading attempts: %s", PQresultErrorMessage(r));
            PQclear(r);
            return -1;
        }
        int n = PQntuples(r);
        for (int i = 0; i < n; i++)
            if (check_row(v, r, i) == -1) {
                PQclear(r);
                return -1;
            }
        PQclear(r);
        if (n < FETCH_ROWS)
            return 0;
    }
}

static int verify_rows(PGconn *conn, struct verify *v)
{
    if (PQsetClientEncoding(conn, "UTF8") != 0) {
        fprintf(stderr, "herinnerctl: cannot use UTF8: %s", PQerrorMessage(conn));
        return -1;
    }
    /* one snapshot for the rows and herinnerd.chains */
    if (!ctl_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") ||
        load_heads(conn, v) == -1 ||
        check_cursor(conn, v, "DECLARE legacy_rows NO SCROLL CURSOR FOR " LEGACY_SQL,
                     "FETCH FORWARD " STR(FETCH_ROWS) " FROM legacy_rows") == -1 ||
        check_cursor(conn, v, "DECLARE chain_rows NO SCROLL CURSOR FOR " CHAINS_SQL,
                     "FETCH FORWARD " STR(FETCH_ROWS) " FROM chain_rows") == -1)
        return -1;
    end_chain(v);
    missing_chains(v);
    return ctl_exec(conn, "COMMIT") ? 0 : -1;
}

static int chain_verify(const struct ctl *ctl, const char *checkpoints)
{
    struct verify v = { 0 };
    PGconn *conn = NULL;
    int rc = 2;

    if (checkpoints && read_checkpoints(&v, checkpoints) == -1)
        goto out;
    rc = 1;
    if ((conn = ctl_connect(ctl)) == NULL || verify_rows(conn, &v) == -1)
        goto out;
    printf("%lld attempts in %lld chains checked", v.rows, v.chains);
    if (checkpoints)
        printf(", against %d checkpoints (%zu heads)", v.nlines, v.nneeds);
    printf(", %lld problems\n", v.problems);
    if (v.forks)
        printf("note: %lld rows of chain " LEGACY_CHAIN " (written before sql/006) link to an "
               "existing row other than the one before them: the old single chain forked when "
               "writers overlapped\n", v.forks);
    rc = v.problems ? 1 : 0;
out:
    if (conn)
        PQfinish(conn);
    for (size_t i = 0; i < v.nneeds; i++)
        free(v.needs[i].chain);
    free(v.needs);
    for (size_t i = 0; i < v.nheads; i++)
        free(v.heads[i].chain);
    free(v.heads);
    free(v.chain);
    free(v.name);
    return rc;
}

static int chain_checkpoint(const struct ctl *ctl)
{
    struct passwd *pw = getpwuid(getuid());
    char writer[256];
    PGconn *conn = ctl_connect(ctl);
    int rc = 1;

    if (conn == NULL)
        return 1;
    snprintf(writer, sizeof(writer), "herinnerctl:%s", pw ? pw->pw_name : "?");
    const char *params[] = { writer };
    PGresult *r = PQexecParams(conn, "SELECT herinnerd.write_checkpoint($1)", 1, NULL, params,
                               NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        printf("%s\n", PQgetvalue(r, 0, 0));
        rc = 0;
    } else
        fprintf(stderr, "herinnerctl: writing a checkpoint: %s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(conn);
    return rc;
}

int ctl_chain(const struct ctl *ctl, int argc, char **argv)
{
    if (strcmp(argv[0], "checkpoint") == 0 && argc == 1)
        return chain_checkpoint(ctl);
    if (strcmp(argv[0], "verify") == 0 && argc == 1)
        return chain_verify(ctl, NULL);
    if (strcmp(argv[0], "verify") == 0 && argc == 3 && strcmp(argv[1], "--checkpoints") == 0)
        return chain_verify(ctl, argv[2]);
    fprintf(stderr, "usage: herinnerctl audit verify [--checkpoints FILE] | audit checkpoint\n");
    return 2;
}
