/* @include expansion with a line map (see config_include.h).
 *
 * libconfig 1.5 takes `@include "FILE"` only at the start of a line outside strings and
 * comments; so do we, and we ask for the line to hold nothing else (libconfig would go on
 * parsing the rest of it after the included text, which nobody means). */
#include "config_include.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct config_span {
    int first;                  /* its first line in the effective text */
    size_t file;                /* index into files */
    int line;                   /* that line's number in the file */
};

enum lex_state { LEX_CODE, LEX_STRING, LEX_COMMENT };

struct expander {
    struct config_text *t;
    const char *dir;            /* relative includes are read from here; NULL: none allowed */
    int line;                   /* the effective text's current line */
    char *err;
    size_t errlen;
};

static int fail(struct expander *x, size_t file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct expander *x, size_t file, int line, const char *fmt, ...)
{
    char what[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(x->err, x->errlen, "%s:%d: %s", x->t->files[file], line, what);
    return -1;
}

static int add_file(struct config_text *t, const char *name, size_t *index)
{
    char **files = realloc(t->files, (t->nfiles + 1) * sizeof(*files));

    if (files == NULL)
        return -1;
    t->files = files;
    if ((files[t->nfiles] = strdup(name)) == NULL)
        return -1;
    *index = t->nfiles++;
    return 0;
}

/* From the effective text's current line on, lines come from FILE starting at LINE. */
static int add_span(struct expander *x, size_t file, int line)
{
    struct config_text *t = x->t;

    if (t->nspans > 0 && t->spans[t->nspans - 1].first == x->line)
        t->nspans--;
    if (t->nspans == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct config_span *s = realloc(t->spans, cap * sizeof(*s));
        if (s == NULL)
            return -1;
        t->spans = s;
        t->cap = cap;
    }
    t->spans[t->nspans++] = (struct config_span){ x->line, file, line };
    return 0;
}

static int append(struct expander *x, size_t file, int line, const char *s, size_t n)
{
    struct config_text *t = x->t;

    if (t->len + n > CONFIG_MAX_TEXT)
        return fail(x, file, line, "the configuration is larger than %d KiB (with its @include "
                    "files)", CONFIG_MAX_TEXT / 1024);
    char *text = realloc(t->text, t->len + n + 1);
    if (text == NULL)
        return fail(x, file, line, "out of memory");
    memcpy(text + t->len, s, n);
    t->text = text;
    t->len += n;
    t->text[t->len] = '\0';
    for (size_t i = 0; i < n; i++)
        x->line += s[i] == '\n';
    return 0;
}

/* At most CONFIG_MAX_TEXT + 1 bytes: enough to tell that it is too large. */
static int read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(CONFIG_MAX_TEXT + 2);
    size_t n = 0, r;

    if (f == NULL || buf == NULL)
        goto fail;
    while (n < CONFIG_MAX_TEXT + 1 && (r = fread(buf + n, 1, CONFIG_MAX_TEXT + 1 - n, f)) > 0)
        n += r;
    if (ferror(f))
        goto fail;
    fclose(f);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
fail:
    {
        int e = errno ? errno : EIO;
        free(buf);
        if (f)
            fclose(f);
        errno = e;
    }
    return -1;
}

/* Where LINE leaves the lexer: strings may run over several lines, and so may comments. */
static enum lex_state scan(const char *line, size_t n, enum lex_state st)
{
    for (size_t i = 0; i < n; i++) {
        char c = line[i], next = i + 1 < n ? line[i + 1] : '\0';
        switch (st) {
        case LEX_CODE:
            if (c == '"')
                st = LEX_STRING;
            else if (c == '#' || (c == '/' && next == '/'))
                return st;
            else if (c == '/' && next == '*') {
                st = LEX_COMMENT;
                i++;
            }
            break;
        case LEX_STRING:
            if (c == '\\')
                i++;
            else if (c == '"')
                st = LEX_CODE;
            break;
        case LEX_COMMENT:
            if (c == '*' && next == '/') {
                st = LEX_CODE;
                i++;
            }
            break;
        }
    }
    return st;
}

/* Is LINE an @include? 1 with the name in NAME, 0 if not, -1 if it is one but malformed. */
static int include_line(const char *line, size_t n, char *name, size_t namelen)
{
    size_t i = strspn(line, " \t");

    if (i >= n || n - i < 8 || strncmp(line + i, "@include", 8) != 0)
        return 0;
    i += 8;
    if (i >= n || (line[i] != ' ' && line[i] != '\t'))
        return -1;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i >= n || line[i] != '"')
        return -1;
    const char *start = line + i + 1, *end = memchr(start, '"', n - i - 1);
    if (end == NULL || end == start || (size_t)(end - start) >= namelen)
        return -1;
    memcpy(name, start, end - start);
    name[end - start] = '\0';
    for (i = end + 1 - line; i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'); i++)
        ;
    if (i < n && line[i] != '#' && !(line[i] == '/' && i + 1 < n && line[i + 1] == '/'))
        return -1;
    return 1;
}

static int expand(struct expander *x, size_t file, const char *buf, size_t len, int depth);

static int include(struct expander *x, size_t file, int line, const char *text, size_t n,
                   const char *name, int depth)
{
    char path[4096], *data = NULL;
    size_t dlen, inc;
    int rc = -1;

    if (x->dir == NULL)
        return fail(x, file, line, "@include in a stored configuration: the text it named was "
                    "not stored with it");
    if (depth >= CONFIG_MAX_INCLUDE_DEPTH)
        return fail(x, file, line, "@include nested more than %d deep (does a file include "
                    "itself?)", CONFIG_MAX_INCLUDE_DEPTH);
    if (name[0] == '/' || x->dir[0] == '\0')
        snprintf(path, sizeof(path), "%s", name);
    else if (snprintf(path, sizeof(path), "%s/%s", strcmp(x->dir, "/") ? x->dir : "", name) >=
             (int)sizeof(path))
        return fail(x, file, line, "@include \"%s\": path too long", name);
    if (read_file(path, &data, &dlen) == -1)
        return fail(x, file, line, "cannot read @include \"%s\" (%s): %s", name, path,
                    strerror(errno));
    /* the directive stays, as a comment that says where the following lines come from */
    if (append(x, file, line, "# ", 2) == -1 || append(x, file, line, text, n) == -1 ||
        append(x, file, line, "\n", 1) == -1 || add_file(x->t, name, &inc) == -1 ||
        add_span(x, inc, 1) == -1 || expand(x, inc, data, dlen, depth + 1) == -1)
        goto out;
    if (dlen > 0 && data[dlen - 1] != '\n' && append(x, inc, 0, "\n", 1) == -1)
        goto out;
    char end[4200];
    int m = snprintf(end, sizeof(end), "# end of @include \"%s\"\n", name);
    if (add_span(x, file, line) == -1 || append(x, file, line, end, m) == -1 ||
        add_span(x, file, line + 1) == -1)
        goto out;
    rc = 0;
out:
    free(data);
    return rc;
}

static int expand(struct expander *x, size_t file, const char *buf, size_t len, int depth)
{
    enum lex_state st = LEX_CODE;
    int line = 1;

    for (size_t pos = 0; pos < len; line++) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = (nl ? (size_t)(nl - buf) : len) - pos, next = pos + n + (nl != NULL);
        char name[4096];

        if (memchr(buf + pos, '\0', n) != NULL)
            return fail(x, file, line, "contains a NUL byte");
        int inc = st == LEX_CODE ? include_line(buf + pos, n, name, sizeof(name)) : 0;
        if (inc == -1)
            return fail(x, file, line, "write an @include as @include \"FILE\" on a line of "
                        "its own");
        if (inc == 1) {
            int text_end = n > 0 && buf[pos + n - 1] == '\r' ? n - 1 : n;
            if (include(x, file, line, buf + pos, text_end, name, depth) == -1)
                return -1;
        } else {
            st = scan(buf + pos, n, st);
            if (append(x, file, line, buf + pos, next - pos) == -1)
                return -1;
        }
        pos = next;
    }
    return 0;
}

static int expand_top(struct config_text *t, const char *name, const char *dir, const char *buf,
                      size_t len, char *err, size_t errlen)
{
    struct expander x = { t, dir, 1, err, errlen };
    size_t top;

    memset(t, 0, sizeof(*t));
    if (add_file(t, name, &top) == -1 || (t->text = strdup("")) == NULL ||
        add_span(&x, top, 1) == -1) {
        snprintf(err, errlen, "%s:0: out of memory", name);
        goto fail;
    }
    if (expand(&x, top, buf, len, 0) == -1)
        goto fail;
    return 0;
fail:
    config_text_free(t);
    return -1;
}

int config_text_read(const char *path, struct config_text *t, char *err, size_t errlen)
{
    char *data = NULL, *dir = strdup(path), *slash;
    size_t len;
    int rc = -1;

    memset(t, 0, sizeof(*t));
    if (dir == NULL) {
        snprintf(err, errlen, "%s:0: out of memory", path);
        return -1;
    }
    /* includes are relative to the file's directory, as with libconfig's config_read_file */
    if ((slash = strrchr(dir, '/')) != NULL)
        slash[slash == dir ? 1 : 0] = '\0';
    else
        dir[0] = '\0';
    if (read_file(path, &data, &len) == -1)
        snprintf(err, errlen, "%s:0: cannot read: %s", path, strerror(errno));
    else
        rc = expand_top(t, path, dir, data, len, err, errlen);
    free(data);
    free(dir);
    return rc;
}

int config_text_from(const char *name, const char *text, size_t len, struct config_text *t,
                     char *err, size_t errlen)
{
    return expand_top(t, name, NULL, text, len, err, errlen);
}

const char *config_text_where(const struct config_text *t, int line, int *file_line)
{
    const struct config_span *s = NULL;

    for (size_t i = 0; i < t->nspans && t->spans[i].first <= line; i++)
        s = &t->spans[i];
    if (s == NULL || line <= 0) {
        *file_line = line > 0 ? line : 0;
        return t->nfiles ? t->files[0] : "?";
    }
    *file_line = s->line + (line - s->first);
    return t->files[s->file];
}

void config_text_free(struct config_text *t)
{
    for (size_t i = 0; i < t->nfiles; i++)
        free(t->files[i]);
    free(t->files);
    free(t->spans);
    free(t->text);
    memset(t, 0, sizeof(*t));
}
