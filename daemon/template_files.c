/* The templates directory (see template_files.h). */
#include "template_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "utf8.h"

#define MAX_FILE (64 * 1024)    /* one template */
#define MAX_FILES 500
#define BLOCK_START "#@template "
#define BLOCK_LINE "#|"
#define BLOCK_END "#@end"

static const char *const placeholders[] = { "name", "sender", "subject", "link", "created",
                                            "due_date", "count", "messages", NULL };

static int failf(char *err, size_t errlen, const char *label, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int failf(char *err, size_t errlen, const char *label, int line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, errlen, "%s:%d: ", label, line);

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void file_free(struct template_file *f)
{
    free(f->name);
    free(f->language);
    free(f->subject);
    free(f->subject_hidden);
    free(f->body);
}

void templates_free(struct templates *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        file_free(&t->v[i]);
    free(t->v);
    free(t);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

struct templates *templates_dup(const struct templates *t)
{
    struct templates *c = calloc(1, sizeof(*c));

    if (c == NULL || t == NULL)
        return c;
    if (t->n && (c->v = calloc(t->n, sizeof(*c->v))) == NULL)
        goto fail;
    for (; c->n < t->n; c->n++) {
        const struct template_file *f = &t->v[c->n];
        struct template_file *g = &c->v[c->n];
        g->channel = f->channel;
        g->name = strdup(f->name);
        g->language = strdup(f->language);
        g->subject = dup_or_null(f->subject);
        g->subject_hidden = dup_or_null(f->subject_hidden);
        g->body = strdup(f->body);
        if (!g->name || !g->language || !g->body || (f->subject && !g->subject) ||
            (f->subject_hidden && !g->subject_hidden)) {
            c->n++;
            goto fail;
        }
    }
    return c;
fail:
    templates_free(c);
    return NULL;
}

const struct template_file *templates_find(const struct templates *t, enum channel_id channel,
                                           const char *name, const char *language)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (t->v[i].channel == channel && strcmp(t->v[i].name, name) == 0 &&
            strcmp(t->v[i].language, language) == 0)
            return &t->v[i];
    return NULL;
}

/* "notice.email.nl" -> name, channel, language; -1 if it is not such a name */
static int split_name(const char *file, struct template_file *f)
{
    const char *dot1 = strchr(file, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;

    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') || dot1 == file)
        return -1;
    for (const char *p = file; p < dot1; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return -1;
    size_t chlen = (size_t)(dot2 - dot1 - 1), langlen = strlen(dot2 + 1);
    if (chlen == 5 && memcmp(dot1 + 1, "email", 5) == 0)
        f->channel = CHANNEL_EMAIL;
    else if (chlen == 3 && memcmp(dot1 + 1, "sms", 3) == 0)
        f->channel = CHANNEL_SMS;
    else if (chlen == 6 && memcmp(dot1 + 1, "letter", 6) == 0)
        f->channel = CHANNEL_PAPER;
    else
        return -1;
    if (langlen < 2 || langlen > 3)
        return -1;
    for (const char *p = dot2 + 1; *p; p++)
        if (*p < 'a' || *p > 'z')
            return -1;
    f->name = strndup(file, (size_t)(dot1 - file));
    f->language = strdup(dot2 + 1);
    return f->name && f->language ? 0 : -1;
}

/* Every "{word}" in [P, END) is a known placeholder; -1 names the first that is not. */
static int check_placeholders(const char *p, const char *end, const char *label, int line,
                              char *err, size_t errlen)
{
    for (; p < end; p++) {
        if (*p != '{')
            continue;
        const char *q = p + 1;
        while (q < end && ((*q >= 'a' && *q <= 'z') || *q == '_'))
            q++;
        if (q == p + 1 || q >= end || *q != '}')
            continue;
        int known = 0;
        for (const char *const *k = placeholders; *k && !known; k++)
            known = strlen(*k) == (size_t)(q - p - 1) && memcmp(*k, p + 1, (size_t)(q - p - 1)) == 0;
        if (!known)
            return failf(err, errlen, label, line, "unknown placeholder {%.*s} (known: %s)",
                         (int)(q - p - 1), p + 1, TEMPLATE_PLACEHOLDERS);
        p = q;
    }
    return 0;
}

/* CONTENT of the file FILE (LABEL in errors) into F. */
static int parse_content(const char *label, const char *file, const char *content,
                         struct template_file *f, char *err, size_t errlen)
{
    if (split_name(file, f) == -1)
        return failf(err, errlen, label, 0, "not a template name: write TEMPLATE.CHANNEL.LANGUAGE "
                     "with CHANNEL email, sms or letter, e.g. notice.email.nl");
    /* valid UTF-8, no control characters but line ends and tabs, known placeholders */
    int line = 1;
    for (const char *p = content; *p;) {
        const char *start = p;
        long c = utf8_next(&p);
        if (c == 0xfffd && (p - start != 3 || memcmp(start, "\xef\xbf\xbd", 3) != 0))
            return failf(err, errlen, label, line, "not UTF-8");
        if (c == '\n')
            line++;
        else if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
            return failf(err, errlen, label, line, "a control character (0x%02lx)", c);
    }
    line = 1;
    for (const char *p = content; *p; line++) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        if (check_placeholders(p, end, label, line, err, errlen) == -1)
            return -1;
        p = eol ? eol + 1 : end;
    }

    const char *body = content;
    int body_line = 1;
    if (f->channel != CHANNEL_SMS) {        /* header lines, a blank line, the text */
        for (line = 1;; line++) {
            const char *eol = strchr(body, '\n');
            size_t len = eol ? (size_t)(eol - body) : strlen(body);
            if (len > 0 && body[len - 1] == '\r')
                len--;
            if (len == 0) {
                body = eol ? eol + 1 : body + strlen(body);
                body_line = line + 1;
                break;
            }
            char **into = len >= 15 && strncasecmp(body, "Subject-Hidden:", 15) == 0
                              ? &f->subject_hidden
                          : len >= 8 && strncasecmp(body, "Subject:", 8) == 0 ? &f->subject
                                                                             : NULL;
            if (into == NULL || *into != NULL || eol == NULL)
                return failf(err, errlen, label, line, "%s", into != NULL && *into != NULL
                             ? "a header line given twice"
                             : "expected 'Subject:' or 'Subject-Hidden:' lines, then a blank "
                               "line, then the text");
            const char *v = memchr(body, ':', len) + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if ((*into = strndup(v, len - (size_t)(v - body))) == NULL)
                return failf(err, errlen, label, line, "out of memory");
            body = eol + 1;
        }
        if (f->subject == NULL)
            return failf(err, errlen, label, 1, "no 'Subject:' line");
        if (f->subject_hidden == NULL && strstr(f->subject, "{subject}"))
            return failf(err, errlen, label, 1, "the subject line mentions {subject}: add a "
                         "'Subject-Hidden:' line for the policies that hide it");
    }
    /* the text: CRLF as LF, trailing blank lines dropped */
    size_t n = 0, len = strlen(body);
    if ((f->body = malloc(len + 1)) == NULL)
        return failf(err, errlen, label, body_line, "out of memory");
    for (size_t i = 0; i < len; i++)
        if (!(body[i] == '\r' && body[i + 1] == '\n'))
            f->body[n++] = body[i];
    while (n > 0 && (f->body[n - 1] == '\n' || f->body[n - 1] == ' '))
        n--;
    f->body[n] = '\0';
    if (f->channel != CHANNEL_SMS && n > 0)
        f->body[n++] = '\n', f->body[n] = '\0';
    if (n == 0)
        return failf(err, errlen, label, body_line, "the text is empty");
    return 0;
}

static int add(struct templates *t, const char *label, const char *file, const char *content,
               char *err, size_t errlen)
{
    struct template_file f = { 0 };

    if (t->n >= MAX_FILES)
        return failf(err, errlen, label, 0, "more than %d templates", MAX_FILES);
    if (parse_content(label, file, content, &f, err, errlen) == -1) {
        file_free(&f);
        return -1;
    }
    struct template_file *v = realloc(t->v, (t->n + 1) * sizeof(*v));
    if (v == NULL) {
        file_free(&f);
        return failf(err, errlen, label, 0, "out of memory");
    }
    t->v = v;
    t->v[t->n++] = f;
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_hidden(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Append CONTENT as the block of FILE to the stream. */
static void write_block(FILE *f, const char *file, const char *content)
{
    fprintf(f, BLOCK_START "%s\n", file);
    for (const char *p = content; *p;) {
        size_t len = strcspn(p, "\n");
        fprintf(f, BLOCK_LINE "%.*s\n", (int)len, p);
        p += len + (p[len] == '\n');
    }
    fputs(BLOCK_END "\n", f);
}

int templates_read_dir(const char *dir, struct templates **out, char **block, char *err,
                       size_t errlen)
{
    struct dirent **names = NULL;
    struct templates *t = calloc(1, sizeof(*t));
    char *content = NULL;
    size_t blen = 0;
    FILE *bf = NULL;
    int n = -1, rc = -1;

    *out = NULL;
    *block = NULL;
    if (t == NULL || (content = malloc(MAX_FILE + 1)) == NULL ||
        (bf = open_memstream(block, &blen)) == NULL) {
        failf(err, errlen, dir, 0, "out of memory");
        goto out;
    }
    if ((n = scandir(dir, &names, skip_hidden, by_name)) < 0) {
        failf(err, errlen, dir, 0, "cannot read the templates directory: %s", strerror(errno));
        goto out;
    }
    fprintf(bf, "\n# ---- the templates from %s: the wording in use with this configuration ----\n",
            dir);
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL || fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode)) {
            failf(err, errlen, path, 0, "%s", f == NULL ? strerror(errno) : "not a regular file");
            if (f)
                fclose(f);
            goto out;
        }
        size_t len = fread(content, 1, MAX_FILE + 1, f);
        int bad = ferror(f);
        fclose(f);
        if (bad || len > MAX_FILE || memchr(content, '\0', len)) {
            failf(err, errlen, path, 0, "%s", bad ? "cannot be read" : len > MAX_FILE
                  ? "larger than 64 KiB" : "contains a NUL byte: not a text file");
            goto out;
        }
        content[len] = '\0';
        if (add(t, path, names[i]->d_name, content, err, errlen) == -1)
            goto out;
        write_block(bf, names[i]->d_name, content);
    }
    rc = 0;
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(content);
    if (bf && fclose(bf) != 0 && rc == 0)
        rc = failf(err, errlen, dir, 0, "out of memory");
    if (rc == 0)
        *out = t;
    else {
        templates_free(t);
        free(*block);
        *block = NULL;
    }
    return rc;
}

int templates_from_text(const char *name, const char *text, struct templates **out, char *err,
                        size_t errlen)
{
    struct templates *t = calloc(1, sizeof(*t));
    int line = 1;

    *out = NULL;
    if (t == NULL)
        return failf(err, errlen, name, 0, "out of memory");
    for (const char *p = text; *p; line++) {
        size_t len = strcspn(p, "\n");
        const char *next = p + len + (p[len] == '\n');
        if (len <= strlen(BLOCK_START) || strncmp(p, BLOCK_START, strlen(BLOCK_START)) != 0) {
            p = next;
            continue;
        }
        int start = line;
        char *file = strndup(p + strlen(BLOCK_START), len - strlen(BLOCK_START)), *content = NULL;
        size_t clen = 0;
        FILE *cf = file ? open_memstream(&content, &clen) : NULL;
        int ended = 0;
        for (p = next, line++; cf && *p; line++) {
            len = strcspn(p, "\n");
            next = p + len + (p[len] == '\n');
            if (len == strlen(BLOCK_END) && strncmp(p, BLOCK_END, len) == 0) {
                ended = 1;
                p = next;
                break;
            }
            if (len < 2 || strncmp(p, BLOCK_LINE, 2) != 0)
                break;
            fprintf(cf, "%.*s\n", (int)(len - 2), p + 2);
            p = next;
        }
        if (cf)
            fclose(cf);
        char label[300];
        snprintf(label, sizeof(label), "%s (template %s)", name, file ? file : "?");
        int rc = !file || !cf ? failf(err, errlen, name, start, "out of memory")
                 : !ended ? failf(err, errlen, name, line, "template %s: no '" BLOCK_END "'", file)
                          : add(t, label, file, content, err, errlen);
        free(file);
        free(content);
        if (rc == -1) {
            templates_free(t);
            return -1;
        }
    }
    *out = t;
    return 0;
}
