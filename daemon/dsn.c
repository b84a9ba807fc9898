/* Bounces: VERP return paths and delivery status notifications (see dsn.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dsn.h"
#include "utf8.h"

#define TOKEN_PLACEHOLDER "{token}"
#define MAX_DEPTH 3             /* multipart in multipart in ... */
#define FIELD_MAX 2048          /* longest (unfolded) header field kept */

/* A piece of the input: [p, end). */
struct span {
    const char *p, *end;
};

/* The next line of S without its line end (LF or CRLF); 0 at the end of S. */
static int next_line(struct span *s, struct span *line)
{
    if (s->p >= s->end)
        return 0;
    const char *nl = memchr(s->p, '\n', (size_t)(s->end - s->p));
    const char *stop = nl ? nl : s->end;
    line->p = s->p;
    line->end = stop > s->p && stop[-1] == '\r' ? stop - 1 : stop;
    s->p = nl ? nl + 1 : s->end;
    return 1;
}

static int blank(const struct span *line)
{
    for (const char *c = line->p; c < line->end; c++)
        if (*c != ' ' && *c != '\t')
            return 0;
    return 1;
}

/* SRC as valid UTF-8 without control characters (folded white space becomes one space),
 * trimmed, into OUT. */
static void clean(const char *src, char *out, size_t len)
{
    size_t n = 0;
    int space = 0;

    while (*src == ' ' || *src == '\t' || *src == '\r' || *src == '\n')
        src++;
    while (*src && n + 5 < len) {
        const char *start = src;
        long c = utf8_next(&src);
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
            space = n > 0;
            continue;
        }
        if (c == ' ') {
            space = n > 0;
            continue;
        }
        if (space)
            out[n++] = ' ';
        space = 0;
        if (c == 0xfffd && (src - start != 3 || memcmp(start, "\xef\xbf\xbd", 3) != 0))
            out[n++] = '?';                 /* not UTF-8: a byte from another charset */
        else {
            memcpy(out + n, start, (size_t)(src - start));
            n += (size_t)(src - start);
        }
    }
    out[n] = '\0';
}

/* One header block: calls FN(name, value) for each field (continuation lines unfolded), and
 * leaves S after the blank line that ends it. */
typedef void (*field_fn)(const char *name, const char *value, void *arg);

static void read_fields(struct span *s, field_fn fn, void *arg)
{
    char name[64] = "", value[FIELD_MAX];
    size_t vn = 0;
    struct span line;

    for (;;) {
        struct span before = *s;
        int more = next_line(s, &line);
        int cont = more && line.p < line.end && (*line.p == ' ' || *line.p == '\t');
        if (cont && *name) {        /* folded: joins the field before */
            size_t k = (size_t)(line.end - line.p);
            if (vn + 1 + k < sizeof(value)) {
                value[vn++] = ' ';
                memcpy(value + vn, line.p, k);
                vn += k;
            }
            continue;
        }
        if (*name) {
            value[vn] = '\0';
            fn(name, value, arg);
            *name = '\0';
        }
        if (!more || blank(&line))
            return;
        const char *colon = memchr(line.p, ':', (size_t)(line.end - line.p));
        if (colon == NULL || colon == line.p || (size_t)(colon - line.p) >= sizeof(name)) {
            if (colon == NULL && !cont) {   /* not a header at all: the body starts here */
                *s = before;
                return;
            }
            continue;
        }
        memcpy(name, line.p, (size_t)(colon - line.p));
        name[colon - line.p] = '\0';
        const char *v = colon + 1;
        vn = (size_t)(line.end - v) < sizeof(value) - 1 ? (size_t)(line.end - v) : sizeof(value) - 1;
        memcpy(value, v, vn);
    }
}

/* ---- Content-Type ---- */

struct content {
    char type[64];             /* lower case, "" when absent (text/plain) */
    char boundary[128];
};

static void parse_content_type(const char *value, struct content *c)
{
    size_t n = 0;
    const char *p = value;

    while (*p == ' ' || *p == '\t')
        p++;
    while (*p && *p != ';' && *p != ' ' && n + 1 < sizeof(c->type))
        c->type[n++] = (char)tolower((unsigned char)*p++);
    c->type[n] = '\0';
    for (const char *b = p; (b = strchr(b, ';')) != NULL;) {
        b++;
        while (*b == ' ' || *b == '\t')
            b++;
        if (strncasecmp(b, "boundary=", 9) != 0)
            continue;
        b += 9;
        int quoted = *b == '"';
        b += quoted;
        n = 0;
        while (*b && n + 1 < sizeof(c->boundary) &&
               (quoted ? *b != '"' : *b != ';' && *b != ' ' && *b != '\t'))
            c->boundary[n++] = *b++;
        c->boundary[n] = '\0';
        break;
    }
}

/* ---- the parts ---- */

struct reader {
    struct dsn *out;
    int have_status;           /* a per-recipient group was read */
    int failed_group;          /* ... and it said failed */
    char failed_recipients[256];
    char subject[256];
    struct content content;
    struct span plain;         /* the first text/plain part (the human-readable report) */
};

static void top_field(const char *name, const char *value, void *arg)
{
    struct reader *r = arg;
    struct dsn *d = r->out;

    if (strcasecmp(name, "Content-Type") == 0)
        parse_content_type(value, &r->content);
    else if (strcasecmp(name, "X-Failed-Recipients") == 0)
        clean(value, r->failed_recipients, sizeof(r->failed_recipients));
    else if (strcasecmp(name, "Subject") == 0)
        clean(value, r->subject, sizeof(r->subject));
    else if ((strcasecmp(name, "Delivered-To") == 0 || strcasecmp(name, "X-Original-To") == 0 ||
              strcasecmp(name, "Envelope-to") == 0 || strcasecmp(name, "To") == 0) &&
             d->nenvelope < DSN_ENVELOPE_MAX)
        clean(value, d->envelope[d->nenvelope++], sizeof(d->envelope[0]));
}

static void part_field(const char *name, const char *value, void *arg)
{
    if (strcasecmp(name, "Content-Type") == 0)
        parse_content_type(value, arg);
}

static void returned_field(const char *name, const char *value, void *arg)
{
    struct dsn *d = arg;

    if (strcasecmp(name, "Message-ID") == 0 && d->message_id[0] == '\0')
        clean(value, d->message_id, sizeof(d->message_id));
}

/* "rfc822; jan@example.nl" -> "jan@example.nl"; "smtp; 550 ..." -> "550 ..." */
static const char *after_type(const char *value)
{
    const char *semi = strchr(value, ';');
    return semi ? semi + 1 : value;
}

struct group {
    char action[16], status[16], diagnostic[512], recipient[256];
};

static void group_field(const char *name, const char *value, void *arg)
{
    struct group *g = arg;
    char v[FIELD_MAX];

    clean(value, v, sizeof(v));
    if (strcasecmp(name, "Action") == 0) {
        size_t n = 0;
        while (v[n] && v[n] != ' ' && v[n] != '(' && n + 1 < sizeof(g->action)) {
            g->action[n] = (char)tolower((unsigned char)v[n]);
            n++;
        }
        g->action[n] = '\0';
    } else if (strcasecmp(name, "Status") == 0) {
        size_t n = strcspn(v, " (");
        if (n < sizeof(g->status)) {
            memcpy(g->status, v, n);
            g->status[n] = '\0';
        }
    } else if (strcasecmp(name, "Diagnostic-Code") == 0)
        clean(after_type(v), g->diagnostic, sizeof(g->diagnostic));
    else if (strcasecmp(name, "Final-Recipient") == 0 ||
             (strcasecmp(name, "Original-Recipient") == 0 && g->recipient[0] == '\0'))
        clean(after_type(v), g->recipient, sizeof(g->recipient));
}

/* "5.1.1": class 2, 4 or 5, then one to three digits twice */
static int status_ok(const char *s)
{
    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return 0;
    s++;
    for (int part = 0; part < 2; part++) {
        if (*s++ != '.')
            return 0;
        int digits = 0;
        while (isdigit((unsigned char)*s) && digits < 4)
            s++, digits++;
        if (digits < 1 || digits > 3)
            return 0;
    }
    return *s == '\0';
}

/* The per-message group, then one group per recipient: the first that failed wins (we send
 * one recipient per message), else the first. A group is fields up to a blank line. */
static void read_status(struct reader *r, struct span body)
{
    /* the per-message group (Reporting-MTA, ...) has neither Action nor Status */
    while (body.p < body.end) {
        struct group g;
        const char *was = body.p;
        memset(&g, 0, sizeof(g));
        read_fields(&body, group_field, &g);
        if (body.p == was) {        /* a line that is no field: step over it */
            struct span line;
            next_line(&body, &line);
            continue;
        }
        if (g.action[0] == '\0' && g.status[0] == '\0')
            continue;
        int failed = strcmp(g.action, "failed") == 0;
        if (r->have_status && (r->failed_group || !failed))
            continue;
        struct dsn *d = r->out;
        snprintf(d->action, sizeof(d->action), "%s", g.action);
        snprintf(d->status, sizeof(d->status), "%s", g.status);
        snprintf(d->diagnostic, sizeof(d->diagnostic), "%s", g.diagnostic);
        snprintf(d->recipient, sizeof(d->recipient), "%s", g.recipient);
        r->have_status = 1;
        r->failed_group = failed;
    }
}

static void read_part(struct reader *r, const struct content *c, struct span body, int depth);

/* The parts between "--BOUNDARY" lines, up to "--BOUNDARY--". */
static void read_multipart(struct reader *r, const char *boundary, struct span body, int depth)
{
    size_t blen = strlen(boundary);
    struct span line, part = { NULL, NULL };

    if (blen == 0 || depth > MAX_DEPTH)
        return;
    while (next_line(&body, &line)) {
        size_t n = (size_t)(line.end - line.p);
        if (n < 2 + blen || line.p[0] != '-' || line.p[1] != '-' ||
            memcmp(line.p + 2, boundary, blen) != 0)
            continue;
        int last = n >= 4 + blen && line.p[2 + blen] == '-' && line.p[3 + blen] == '-';
        if (part.p) {
            part.end = line.p;
            struct content pc;
            memset(&pc, 0, sizeof(pc));
            read_fields(&part, part_field, &pc);
            read_part(r, &pc, part, depth + 1);
        }
        if (last)
            return;
        part.p = body.p;
    }
    if (part.p) {                   /* a report cut short: read what is there */
        part.end = body.end;
        struct content pc;
        memset(&pc, 0, sizeof(pc));
        read_fields(&part, part_field, &pc);
        read_part(r, &pc, part, depth + 1);
    }
}

static void read_part(struct reader *r, const struct content *c, struct span body, int depth)
{
    if (strncmp(c->type, "multipart/", 10) == 0)
        read_multipart(r, c->boundary, body, depth);
    else if (strcmp(c->type, "message/delivery-status") == 0 ||
             strcmp(c->type, "message/global-delivery-status") == 0)
        read_status(r, body);
    else if (strcmp(c->type, "message/rfc822") == 0 || strcmp(c->type, "text/rfc822-headers") == 0 ||
             strcmp(c->type, "message/global") == 0 ||
             strcmp(c->type, "message/global-headers") == 0)
        read_fields(&body, returned_field, r->out);
    else if ((c->type[0] == '\0' || strcmp(c->type, "text/plain") == 0) && r->plain.p == NULL)
        r->plain = body;
}

/* ---- Exim's plain-text bounce (no message/delivery-status part) ---- */

/* "550 5.1.1 ..." or "... host mx [192.0.2.1]: 550 ..." : the reply in LINE, if any */
static const char *smtp_reply(const char *line)
{
    for (const char *p = line; *p; p++) {
        if ((p == line || p[-1] == ' ') && (p[0] == '4' || p[0] == '5') &&
            isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
            (p[3] == ' ' || p[3] == '-'))
            return p;
    }
    return NULL;
}

static void read_plain(struct reader *r)
{
    static const char marker[] = "------ This is a copy of the message";
    struct dsn *d = r->out;
    struct span s = r->plain, line;
    char text[FIELD_MAX];
    int delayed = strncasecmp(r->subject, "Warning: message", 16) == 0 &&
                  strstr(r->subject, "delayed") != NULL;

    if (r->failed_recipients[0] == '\0' && !delayed)
        return;
    snprintf(d->action, sizeof(d->action), "%s", delayed ? "delayed" : "failed");
    snprintf(d->recipient, sizeof(d->recipient), "%s", r->failed_recipients);
    while (next_line(&s, &line)) {
        size_t n = (size_t)(line.end - line.p);
        if (n >= sizeof(marker) - 1 && memcmp(line.p, marker, sizeof(marker) - 1) == 0) {
            struct span rest = s;           /* a blank line, then the message */
            while (next_line(&rest, &line) && blank(&line))
                s = rest;
            read_fields(&s, returned_field, d);
            break;
        }
        if (d->diagnostic[0] || n >= sizeof(text))
            continue;
        memcpy(text, line.p, n);
        text[n] = '\0';
        const char *reply = smtp_reply(text);
        if (reply)
            clean(reply, d->diagnostic, sizeof(d->diagnostic));
    }
    /* the enhanced code after the reply ("550 5.1.1 ..."), else the reply's class */
    char code[16] = "";
    if (d->diagnostic[0] && sscanf(d->diagnostic + 4, "%15[0-9.]", code) == 1 && status_ok(code) &&
        code[0] == d->diagnostic[0])
        snprintf(d->status, sizeof(d->status), "%s", code);
    else if (d->diagnostic[0])
        snprintf(d->status, sizeof(d->status), "%c.0.0", d->diagnostic[0]);
    else
        snprintf(d->status, sizeof(d->status), "%s", delayed ? "4.0.0" : "5.0.0");
}

int dsn_parse(const char *text, size_t len, struct dsn *out, const char **why)
{
    struct reader r;
    struct span s = { text, text + len };

    memset(out, 0, sizeof(*out));
    memset(&r, 0, sizeof(r));
    r.out = out;
    read_fields(&s, top_field, &r);
    read_part(&r, &r.content, s, 0);
    if (!r.have_status)
        read_plain(&r);
    if (out->action[0] == '\0') {
        *why = "no delivery status in it (neither a message/delivery-status part nor an "
               "X-Failed-Recipients header)";
        return -1;
    }
    if (!status_ok(out->status)) {
        *why = out->status[0] ? "its Status is not a code like 5.1.1" : "it has no Status";
        return -1;
    }
    return 0;
}

/* ---- VERP ---- */

const char *dsn_return_path_problem(const char *pattern)
{
    const char *t = strstr(pattern, TOKEN_PLACEHOLDER);
    const char *at = strrchr(pattern, '@');

    if (t == NULL)
        return "must contain {token}, e.g. \"bounces+{token}@gemeente.example\"";
    if (strlen(pattern) > 200)     /* a path is at most 256 octets (RFC 5321), the token 32 */
        return "is longer than 200 characters";
    if (strstr(t + 1, TOKEN_PLACEHOLDER))
        return "must contain {token} only once";
    if (at == NULL || at < t || at == pattern || at[1] == '\0')
        return "must be an address with {token} in its local part, e.g. "
               "\"bounces+{token}@gemeente.example\"";
    for (const char *p = pattern; *p; p++)
        if ((unsigned char)*p <= ' ' || strchr("<>()[]\\,;:\"", *p) || (unsigned char)*p >= 0x7f)
            return "may contain no spaces, brackets, quotes or non-ASCII characters";
    return NULL;
}

int dsn_return_path(const char *pattern, const char *token, char *out, size_t len)
{
    const char *t = strstr(pattern, TOKEN_PLACEHOLDER);
    if (t == NULL)
        return -1;
    int n = snprintf(out, len, "%.*s%s%s", (int)(t - pattern), pattern, token,
                     t + strlen(TOKEN_PLACEHOLDER));
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* TOKEN: 8 or more lower-case hex digits (ours are 32), copied lower-cased */
static int take_token(const char *p, size_t n, char *token, size_t len)
{
    if (n < 8 || n >= len || n >= DSN_TOKEN_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)p[i]))
            return -1;
        token[i] = (char)tolower((unsigned char)p[i]);
    }
    token[n] = '\0';
    return 0;
}

int dsn_token_from_address(const char *pattern, const char *address, char *token, size_t len)
{
    const char *t = strstr(pattern, TOKEN_PLACEHOLDER);
    if (t == NULL)
        return -1;
    size_t pre = (size_t)(t - pattern);
    const char *suffix = t + strlen(TOKEN_PLACEHOLDER);
    size_t suf = strlen(suffix);
    const char *a = address;

    if (strncasecmp(a, "rfc822;", 7) == 0)
        a += 7;
    if (strchr(a, '<'))             /* "Name <address>" */
        a = strchr(a, '<') + 1;
    while (*a == ' ')
        a++;
    size_t n = strcspn(a, "> ,");
    if (n < pre + suf || strncasecmp(a, pattern, pre) != 0 ||
        strncasecmp(a + n - suf, suffix, suf) != 0)
        return -1;
    return take_token(a + pre, n - pre - suf, token, len);
}

int dsn_token_from_message_id(const char *message_id, char *token, size_t len)
{
    static const char prefix[] = "<herinnerd.";
    const char *p = strstr(message_id, prefix);

    if (p == NULL)
        return -1;
    p += sizeof(prefix) - 1;
    const char *at = strchr(p, '@');
    return at ? take_token(p, (size_t)(at - p), token, len) : -1;
}
