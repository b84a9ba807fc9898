/* letter.c — the paper reminder: one A4 PDF drawn with cairo's PDF surface.
 *
 * Everything printed comes from the database, so it is cleaned first (invalid UTF-8, control and
 * bidi characters) and only ever passed to cairo as text, never as a format. The PDF is written
 * through our own fd so a failed write keeps its real errno (ENOSPC, EIO) instead of cairo's
 * generic WRITE_ERROR.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* GNU strerror_r */
#endif

#include "letter.h"
#include "template.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "errmsg.h"

#define MM(x) ((x) * 72.0 / 25.4)

/* A4 in points */
#define PAGE_W 595.28
#define PAGE_H 841.89

/* DIN 5008 margins: 25 mm left, 20 mm right */
#define MARGIN_LEFT MM(25)
#define TEXT_W (PAGE_W - MM(25) - MM(20))

/* The window of a DIN 5008 form B / NEN window envelope: 20 mm from the left edge, 45 mm from the
 * top, 85 x 45 mm. Its top 5 mm are the return-address zone. The sheet shifts a few mm inside the
 * envelope, so the address keeps 5 mm clear of the window's sides and 3 mm of its bottom:
 * address area x 25..100 mm, y 52..87 mm. */
#define ADDR_X MM(25)
#define ADDR_TOP MM(52)
#define ADDR_W MM(85 - 2 * 5)
#define ADDR_H MM(87 - 52)
#define ADDR_SIZE_MAX 10.0
#define ADDR_SIZE_MIN 7.0

#define SENDER_Y MM(20) /* first baseline of the sender block (letterhead is the top 45 mm) */
#define DATE_Y MM(100)  /* first baseline below the window */
#define BODY_BOTTOM (PAGE_H - MM(25))
#define CONT_TOP MM(25) /* first baseline on a continuation page */
#define FOOTER_Y (PAGE_H - MM(12))

/* Caps keep a bad row from turning the letter into a booklet; a link too long to type from
 * paper is replaced by the portal's address. */
#define MAX_SENDER_CHARS 80
#define MAX_SUBJECT_CHARS 200
#define MAX_NAME_CHARS 200
#define MAX_LINK_BYTES 500
#define MAX_CONTACT_CHARS 160 /* two footer lines of ordinary text */
#define CONTACT_LINES 2

enum face { FACE_REGULAR, FACE_BOLD, FACE_MONO };

struct style {
    enum face face;
    double size;
    double lead; /* baseline to baseline */
};

static const struct style ST_BODY = { FACE_REGULAR, 10.5, 14.5 };
static const struct style ST_BOLD = { FACE_BOLD, 10.5, 14.5 };
static const struct style ST_LINK = { FACE_MONO, 10.0, 14.0 };
static const struct style ST_ORG = { FACE_BOLD, 13.0, 16.0 };
static const struct style ST_BOX = { FACE_REGULAR, 10.0, 13.0 };

/* How a date, a page and the two labels are written in a language: the wording itself comes
 * from the templates (template.h: CHANNEL_PAPER). */
struct locale {
    const char *date_label, *subject_label, *page;
    const char *const *months;
};

static const char *const MONTHS_NL[12] = { "januari",   "februari", "maart",    "april",
                                           "mei",       "juni",     "juli",     "augustus",
                                           "september", "oktober",  "november", "december" };
static const char *const MONTHS_EN[12] = { "January",   "February", "March",    "April",
                                           "May",       "June",     "July",     "August",
                                           "September", "October",  "November", "December" };

static const struct locale LOCALE_NL = { "Datum: ", "Betreft: ", "pagina ", MONTHS_NL };
static const struct locale LOCALE_EN = { "Date: ", "Subject: ", "page ", MONTHS_EN };

/* The letter's strings after cleaning; what draw_* works from. */
struct text {
    const struct locale *w;
    bool en;
    char *sender, *name, *subject, *link; /* subject/link NULL when absent */
    char *contact;                        /* NULL when absent */
    char date[64], received[64];          /* received "" when unknown */
    char reference[64];
    char due[64];                         /* "" when none */
    char *subject_line, *body;            /* the template rendered: after the label, the body */
};

struct pen {
    cairo_t *cr;
    double y; /* baseline of the next line */
    int page;
    const struct text *t;
};

struct sink {
    int fd;
    int error; /* errno of the first failed write */
};

static const char *errstr(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len);
}



/* ---- growing strings ------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom; /* sticky: checked once at the end */
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

/* ---- cleaning untrusted text ----------------------------------------------------------- */

/* Decode one UTF-8 sequence: bytes used (>= 1); U+FFFD for anything malformed (overlong,
 * surrogate, beyond U+10FFFF, truncated) so the rest still resynchronises. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t v, min;

    *cp = 0xFFFD;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if ((s[0] & 0xE0) == 0xC0) {
        len = 2, v = s[0] & 0x1F, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, v = s[0] & 0x0F, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, v = s[0] & 0x07, min = 0x10000;
    } else {
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if (i >= n || (s[i] & 0xC0) != 0x80)
            return i;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v >= min && v <= 0x10FFFF && (v < 0xD800 || v > 0xDFFF))
        *cp = v;
    return len;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool is_space_or_control(uint32_t cp)
{
    return cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0x2028 || cp == 0x2029;
}

/* bidi overrides and isolates could make printed text read differently from what it is */
static bool is_bidi_control(uint32_t cp)
{
    return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E ||
           cp == 0x200F;
}

/* One line of clean text: valid UTF-8, whitespace runs folded to one space, trimmed, at most
 * max_chars characters (then "…"). Returns a malloc'd string, NULL with errno on ENOMEM. */
static char *clean_text(const char *in, size_t len, size_t max_chars)
{
    const unsigned char *s = (const unsigned char *)(in ? in : "");
    struct sbuf b = { 0 };
    bool space = false;
    size_t chars = 0;

    sb_putn(&b, "", 0);
    while (len > 0 && *s) {
        uint32_t cp;
        size_t used = utf8_decode(s, len, &cp);
        char enc[4];

        s += used, len -= used;
        if (is_space_or_control(cp)) {
            space = chars > 0;
            continue;
        }
        if (is_bidi_control(cp))
            continue;
        if (chars >= max_chars) {
            sb_puts(&b, "…");
            break;
        }
        if (space) {
            sb_putn(&b, " ", 1);
            space = false;
        }
        sb_putn(&b, enc, utf8_encode(cp, enc));
        chars++;
    }
    if (b.oom) {
        free(b.p);
        errno = ENOMEM;
        return NULL;
    }
    return b.p;
}

/* ---- dates ----------------------------------------------------------------------------- */

/* The process's time zone is the config's: the daemon sets TZ once, before any thread starts. */
static int format_date(char *buf, size_t len, time_t t, const struct locale *w, char *err,
                       size_t errlen)
{
    struct tm tm;

    if (!localtime_r(&t, &tm)) {
        errmsg_set(err, errlen, "date out of range");
        errno = EOVERFLOW;
        return -1;
    }
    snprintf(buf, len, "%d %s %d", tm.tm_mday, w->months[tm.tm_mon], tm.tm_year + 1900);
    return 0;
}

/* ---- drawing --------------------------------------------------------------------------- */

static void set_style(cairo_t *cr, const struct style *st)
{
    cairo_select_font_face(
        cr, st->face == FACE_MONO ? "DejaVu Sans Mono" : "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
        st->face == FACE_BOLD ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, st->size);
}

static double text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;

    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

static size_t fit_prefix(cairo_t *cr, char *buf, const char *word, size_t wl, double maxw);

/* paper.contact in the 13 mm between the body's last line and the footer, on every page, so
 * it can never push the letter onto a second sheet: at most CONTACT_LINES lines of 8 pt,
 * wrapped at spaces, the rest cut with "…". */
static void draw_contact(cairo_t *cr, const char *contact)
{
    static const struct style st = { FACE_REGULAR, 8.0, 10.0 };
    char line[4 * MAX_CONTACT_CHARS + 8];
    const char *s = contact;
    int n = 0;

    set_style(cr, &st);
    while (*s && n < CONTACT_LINES) {
        size_t len = 0, fit = 0;
        for (;;) { /* the longest run of words that fits the text width */
            size_t next = len + strcspn(s + len, " ");
            memcpy(line, s, next);
            line[next] = '\0';
            if (text_width(cr, line) > TEXT_W)
                break;
            fit = next;
            if (!s[next])
                break;
            len = next + 1;
        }
        if (fit == 0) /* one word wider than the page: cut it */
            fit = fit_prefix(cr, line, s, strcspn(s, " "), TEXT_W);
        memcpy(line, s, fit);
        line[fit] = '\0';
        if (n == CONTACT_LINES - 1 && s[fit]) { /* more than fits: end in an ellipsis */
            while (fit > 0 && text_width(cr, line) + text_width(cr, " …") > TEXT_W) {
                do /* never inside a UTF-8 sequence */
                    fit--;
                while (fit > 0 && ((unsigned char)line[fit] & 0xC0) == 0x80);
                line[fit] = '\0';
            }
            strcat(line, " …");
        }
        cairo_move_to(cr, MARGIN_LEFT, FOOTER_Y - (CONTACT_LINES - n) * st.lead);
        cairo_show_text(cr, line);
        s += fit;
        while (*s == ' ')
            s++;
        n++;
    }
}

static void draw_footer(struct pen *p)
{
    static const struct style st = { FACE_REGULAR, 8.0, 10.0 };
    cairo_t *cr = p->cr;

    if (p->t->contact)
        draw_contact(cr, p->t->contact);
    set_style(cr, &st);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    cairo_move_to(cr, MARGIN_LEFT, FOOTER_Y);
    cairo_show_text(cr, p->t->reference);
    if (p->page > 1) {
        char num[64];
        snprintf(num, sizeof num, "%s%d", p->t->w->page, p->page);
        cairo_move_to(cr, MARGIN_LEFT + TEXT_W - text_width(cr, num), FOOTER_Y);
        cairo_show_text(cr, num);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
}

static void draw_line(struct pen *p, const struct style *st, const char *line)
{
    if (p->y > BODY_BOTTOM) { /* only an absurdly long text gets here */
        draw_footer(p);
        cairo_show_page(p->cr);
        p->page++;
        p->y = CONT_TOP;
    }
    set_style(p->cr, st);
    cairo_move_to(p->cr, MARGIN_LEFT, p->y);
    cairo_show_text(p->cr, line);
    p->y += st->lead;
}

/* Longest prefix of word (wl bytes) that fits maxw, at least one character, left in buf. Like
 * Chicago style, it prefers to break a URL after a '/' or before other punctuation, as long as
 * that keeps at least half the line. */
static size_t fit_prefix(cairo_t *cr, char *buf, const char *word, size_t wl, double maxw)
{
    size_t best = 0, sep = 0;

    while (best < wl) {
        uint32_t cp;
        size_t next = best + utf8_decode((const unsigned char *)word + best, wl - best, &cp);

        memcpy(buf, word, next);
        buf[next] = '\0';
        if (best > 0 && text_width(cr, buf) > maxw)
            break;
        if (cp == '-' || cp == '.' || cp == '_' || cp == '?' || cp == '#' || cp == '&' || cp == '=')
            sep = best; /* break before: a line-final '-' would read as a hyphenation */
        best = next;
        if (cp == '/')
            sep = best;
    }
    if (best < wl && sep > best / 2)
        best = sep;
    buf[best] = '\0';
    return best;
}

/* Greedy word wrap to the text width; a word wider than a line (a long URL) is cut. */
static int draw_paragraph(struct pen *p, const struct style *st, const char *text)
{
    size_t len = 0, n = strlen(text);
    char *line = malloc(n + 2);
    const char *s = text;

    if (!line)
        return -1;
    line[0] = '\0';
    while (*s) {
        size_t wl, save = len;

        while (*s == ' ')
            s++;
        if (!*s)
            break;
        wl = strcspn(s, " ");
        set_style(p->cr, st);
        if (len)
            line[len++] = ' ';
        memcpy(line + len, s, wl);
        line[len + wl] = '\0';
        if (text_width(p->cr, line) <= TEXT_W) {
            len += wl;
            s += wl;
            continue;
        }
        line[len = save] = '\0';
        if (len) { /* the word goes on the next line */
            draw_line(p, st, line);
            line[len = 0] = '\0';
            continue;
        }
        wl = fit_prefix(p->cr, line, s, wl, TEXT_W);
        draw_line(p, st, line);
        s += wl;
        line[0] = '\0';
    }
    if (len)
        draw_line(p, st, line);
    free(line);
    return 0;
}

/* ---- the address in the envelope window ------------------------------------------------ */

/* The lines to print, as the window will show them. */
struct lines {
    char **v;
    size_t n, cap;
};

static void lines_clear(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

static int lines_add(struct lines *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strndup(s, len)))
        return -1;
    l->n++;
    return 0;
}

/* ASCII case-insensitive: does line end in name, as a whole (the line itself, or after a space)? */
static bool ends_in_name(const char *line, const char *name)
{
    size_t ll = strlen(line), nl = strlen(name);

    if (nl == 0 || nl > ll || strcasecmp(line + ll - nl, name) != 0)
        return false;
    return ll == nl || line[ll - nl - 1] == ' ';
}

/* Lay out SRC (the cleaned name and address lines) at the current font size into OUT. Without
 * WRAP a line is kept whole; with it, a line too wide for the window is broken at spaces (never
 * inside a word: a postcode must stay readable). Returns 0, 1 when some line (or, wrapping, some
 * word) is too wide: *bad is its index in SRC and *width its width in points; -1 on ENOMEM. */
static int layout_address(cairo_t *cr, char *const *src, size_t n, bool wrap, struct lines *out,
                          size_t *bad, double *width)
{
    lines_clear(out);
    for (size_t i = 0; i < n; i++) {
        const char *s = src[i], *start = s;
        double w = text_width(cr, s);

        if (w <= ADDR_W) {
            if (lines_add(out, s, strlen(s)) < 0)
                return -1;
            continue;
        }
        if (!wrap) {
            *bad = i, *width = w;
            return 1;
        }
        /* greedy: the longest run of words that fits, then the next line */
        while (*start) {
            const char *end = start, *fit = NULL;
            char buf[4 * MAX_NAME_CHARS + 8];

            for (;;) {
                const char *next = end + strcspn(end, " ");
                size_t len = (size_t)(next - start);
                memcpy(buf, start, len);
                buf[len] = '\0';
                if ((w = text_width(cr, buf)) > ADDR_W)
                    break;
                fit = next;
                if (!*next)
                    break;
                end = next + 1;
            }
            if (!fit) { /* one word wider than the window */
                size_t len = strcspn(start, " ");
                memcpy(buf, start, len);
                buf[len] = '\0';
                *bad = i, *width = text_width(cr, buf);
                return 1;
            }
            if (lines_add(out, start, (size_t)(fit - start)) < 0)
                return -1;
            start = *fit ? fit + 1 : fit;
        }
    }
    return 0;
}

/* The name (once) and the address lines in the envelope window. The address keeps its lines as
 * long as some size from 10 down to 7 pt fits them; otherwise long lines wrap at spaces, again
 * from 10 pt down. Only what does not fit even so is refused, rather than printed where the post
 * cannot read it, and the refusal says which line and how wide. */
static int draw_address(cairo_t *cr, const char *name, const char *address, char *err,
                        size_t errlen)
{
    const char *a = address ? address : "";
    size_t cap = 2, n = 0, n_addr = 0, bad = 0, first_addr;
    struct lines out = { 0 };
    char **lines;
    double size = ADDR_SIZE_MAX, lead = 0, width = 0;
    cairo_font_extents_t fe = { 0 };
    int rc = -1, saved = 0, fit = 1;

    for (const char *q = a; *q; q++)
        cap += *q == '\n';
    lines = calloc(cap, sizeof *lines);
    if (!lines) {
        saved = ENOMEM;
        goto out;
    }
    if (*name)
        if (!(lines[n++] = strdup(name)))
            goto oom;
    first_addr = n;
    for (const char *q = a; *q;) {
        size_t l = strcspn(q, "\n");
        char *c = clean_text(q, l, MAX_NAME_CHARS);

        if (!c)
            goto oom;
        if (*c)
            lines[n++] = c, n_addr++;
        else
            free(c);
        q += l + (q[l] == '\n');
    }
    if (n_addr == 0) {
        errmsg_set(err, errlen, "no postal address");
        saved = EINVAL;
        goto out;
    }
    /* the address names the recipient itself: print the name once */
    if (first_addr == 1 && ends_in_name(lines[1], lines[0])) {
        free(lines[0]);
        memmove(lines, lines + 1, --n * sizeof *lines);
        first_addr = 0;
    }
    for (int wrap = 0; wrap <= 1 && fit != 0; wrap++) {
        for (size = ADDR_SIZE_MAX; size >= ADDR_SIZE_MIN; size -= 0.5) {
            cairo_set_font_size(cr, size);
            cairo_font_extents(cr, &fe);
            lead = size * 1.25;
            if ((fit = layout_address(cr, lines, n, wrap, &out, &bad, &width)) < 0)
                goto oom;
            if (fit == 0 && fe.ascent + (double)(out.n - 1) * lead + fe.descent <= ADDR_H)
                break;
            fit = fit ? fit : 2; /* 2: too many lines */
        }
    }
    if (fit == 1) {
        char what[64] = "recipient name";
        if (bad >= first_addr)
            snprintf(what, sizeof what, "postal address line %zu", bad - first_addr + 1);
        errmsg_set(err, errlen,
                   "%s (\"%.40s%s\") has a word %.0f mm wide even at %.0f pt; the envelope "
                   "window takes %.0f mm", what, lines[bad], strlen(lines[bad]) > 40 ? "…" : "",
                   width * 25.4 / 72, ADDR_SIZE_MIN, ADDR_W * 25.4 / 72);
        saved = EINVAL;
        goto out;
    }
    if (fit == 2) {
        errmsg_set(err, errlen, "postal address does not fit the envelope window: %zu lines even "
                   "at %.0f pt, the window takes %.0f", out.n, ADDR_SIZE_MIN,
                   floor((ADDR_H - fe.ascent - fe.descent) / lead) + 1);
        saved = EINVAL;
        goto out;
    }
    for (size_t i = 0; i < out.n; i++) {
        cairo_move_to(cr, ADDR_X, ADDR_TOP + fe.ascent + (double)i * lead);
        cairo_show_text(cr, out.v[i]);
    }
    rc = 0;
    goto out;
oom:
    saved = ENOMEM;
    errmsg_set(err, errlen, "out of memory");
out:
    for (size_t i = 0; lines && i < n; i++)
        free(lines[i]);
    free(lines);
    lines_clear(&out);
    free(out.v);
    errno = saved;
    return rc;
}

/* The body as the template rendered it: paragraphs between blank lines, each line of one
 * wrapped to the text width; a line that is the link alone is set in the link's typeface. */
static int draw_body(struct pen *p, const struct text *t)
{
    const char *s = t->body;
    int first = 1;

    while (*s) {
        size_t len = strcspn(s, "\n");
        char *line = strndup(s, len);
        if (line == NULL)
            return -1;
        if (len == 0) {
            if (!first)
                p->y += ST_BODY.lead * 0.5;
        } else {
            int rc = draw_paragraph(p, t->link && strcmp(line, t->link) == 0 ? &ST_LINK : &ST_BODY,
                                    line);
            first = 0;
            free(line);
            if (rc < 0)
                return -1;
            line = NULL;
        }
        free(line);
        s += len + (s[len] == '\n');
    }
    return 0;
}

/* The sender's return address under the letterhead: at most 3 lines, so it stays above the
 * envelope window (the letterhead owns the top 45 mm). */
static int draw_return_address(struct pen *p, const char *address)
{
    const char *line = address;

    /* the last baseline must stay clear of the window's top (45 mm) */
    for (int n = 0; line && *line && n < 3 && p->y + ST_BOX.lead <= MM(44); n++) {
        size_t len = strcspn(line, "\n");
        char *clean = clean_text(line, len, MAX_SENDER_CHARS);
        if (clean == NULL)
            return -1;
        draw_line(p, &ST_BOX, clean);
        free(clean);
        line += len + (line[len] == '\n');
    }
    return 0;
}

static int draw_letter(cairo_t *cr, const struct letter *l, const struct text *t, int *pages,
                       char *err, size_t errlen)
{
    struct pen p = { .cr = cr, .y = SENDER_Y, .page = 1, .t = t };
    struct sbuf b = { 0 };
    int rc = -1;

    /* letterhead, top left */
    if (draw_paragraph(&p, &ST_ORG, *t->sender ? t->sender : "MijnOverheid") < 0)
        goto oom;
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    draw_line(&p, &ST_BOX, "MijnOverheid Berichtenbox");
    if (draw_return_address(&p, l->return_address) < 0)
        goto oom;
    cairo_set_source_rgb(cr, 0, 0, 0);

    set_style(cr, &ST_BODY);
    if (draw_address(cr, t->name, l->postal_address, err, errlen) < 0)
        return -1;

    p.y = DATE_Y;
    sb_puts(&b, t->w->date_label);
    sb_puts(&b, t->date);
    if (b.oom)
        goto oom;
    draw_line(&p, &ST_BODY, b.p);
    p.y += ST_BODY.lead * 0.5;
    b.len = 0;
    sb_puts(&b, t->w->subject_label);
    sb_puts(&b, t->subject_line);
    if (b.oom || draw_paragraph(&p, &ST_BOLD, b.p) < 0)
        goto oom;
    p.y += ST_BODY.lead;
    if (draw_body(&p, t) < 0)
        goto oom;
    draw_footer(&p);
    *pages = p.page;
    rc = 0;
    goto out;
oom:
    errmsg_set(err, errlen, "out of memory");
    errno = ENOMEM;
out:
    free(b.p);
    return rc;
}

/* ---- putting it together ----------------------------------------------------------------- */

static void text_free(struct text *t)
{
    free(t->sender);
    free(t->name);
    free(t->subject);
    free(t->link);
    free(t->contact);
    free(t->subject_line);
    free(t->body);
}

static int text_prepare(const struct letter *l, struct text *t, char *err, size_t errlen)
{
    char count[16];

    t->en = l->language && strcmp(l->language, "en") == 0;
    t->w = t->en ? &LOCALE_EN : &LOCALE_NL;
    t->sender = clean_text(l->sender, SIZE_MAX, MAX_SENDER_CHARS);
    t->name = clean_text(l->recipient_name, SIZE_MAX, MAX_NAME_CHARS);
    t->subject = clean_text(l->subject, SIZE_MAX, MAX_SUBJECT_CHARS);
    t->link = clean_text(l->link, SIZE_MAX, MAX_LINK_BYTES + 1);
    if (!t->sender || !t->name || !t->subject || !t->link) {
        errmsg_set(err, errlen, "out of memory");
        errno = ENOMEM;
        return -1;
    }
    if (!*t->subject) { /* hidden by policy */
        free(t->subject);
        t->subject = NULL;
    }
    if (!*t->link || strlen(t->link) > MAX_LINK_BYTES) {
        free(t->link);
        t->link = NULL;
    }
    if (l->contact) {
        if (!(t->contact = clean_text(l->contact, SIZE_MAX, MAX_CONTACT_CHARS))) {
            errmsg_set(err, errlen, "out of memory");
            errno = ENOMEM;
            return -1;
        }
        if (!*t->contact) {
            free(t->contact);
            t->contact = NULL;
        }
    }
    snprintf(t->reference, sizeof t->reference, "Kenmerk: %lld-%d", (long long)l->message_id,
             l->step);
    if (format_date(t->date, sizeof t->date, l->date, t->w, err, errlen) < 0)
        return -1;
    if (l->received &&
        format_date(t->received, sizeof t->received, l->received, t->w, err, errlen) < 0)
        return -1;
    if (l->due && format_date(t->due, sizeof t->due, l->due, t->w, err, errlen) < 0)
        return -1;
    struct template_vars vars = {
        .name = t->name,
        .sender = *t->sender ? t->sender : t->en ? "a government organisation"
                                                 : "een overheidsorganisatie",
        .subject = t->subject,
        .link = t->link,
        .created = t->received,
        .due_date = t->due,
        .count = count,
        .messages = l->count > 1 ? l->messages : NULL,
    };
    snprintf(count, sizeof(count), "%d", l->count > 1 ? l->count : 1);
    if (template_render_with(l->templates, CHANNEL_PAPER, l->template,
                             l->language ? l->language : "nl", &vars, &t->subject_line,
                             &t->body) == -1) {
        errmsg_set(err, errlen, "the letter's template '%s' could not be rendered",
                   l->template ? l->template : "notice");
        errno = EINVAL;
        return -1;
    }
    return 0;
}

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int length)
{
    struct sink *s = closure;

    while (length > 0) {
        ssize_t n = write(s->fd, data, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (!s->error)
                s->error = n < 0 ? errno : EIO;
            return CAIRO_STATUS_WRITE_ERROR;
        }
        data += n;
        length -= (unsigned int)n;
    }
    return CAIRO_STATUS_SUCCESS;
}

/* Create the file if we can, so that on failure we only ever remove what we made. */
static int open_output(const char *path, bool *created)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0640);

    *created = fd >= 0;
    if (fd >= 0 || errno != EEXIST)
        return fd;
    return open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
}

int letter_render_pdf(const struct letter *l, const char *path, char *err, size_t errlen)
{
    struct text t = { 0 };
    struct sink sink = { .fd = -1 };
    cairo_surface_t *surface = NULL;
    cairo_t *cr = NULL;
    cairo_status_t status;
    bool created = false;
    int pages = 0;
    char ebuf[128];
    int rc = -1, saved = 0;

    if (!l || !path || !*path) {
        errmsg_set(err, errlen, "letter_render_pdf: no letter or path");
        saved = EINVAL;
        goto out;
    }
    if (text_prepare(l, &t, err, errlen) < 0) {
        saved = errno;
        goto out;
    }
    sink.fd = open_output(path, &created);
    if (sink.fd < 0) {
        saved = errno;
        errmsg_set(err, errlen, "%s: %s", path, errstr(saved, ebuf, sizeof ebuf));
        goto out;
    }
    surface = cairo_pdf_surface_create_for_stream(sink_write, &sink, PAGE_W, PAGE_H);
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "herinnerd");
    cr = cairo_create(surface);
    if (cairo_status(cr) == CAIRO_STATUS_SUCCESS &&
        draw_letter(cr, l, &t, &pages, err, errlen) < 0) {
        saved = errno;
        goto out;
    }
    cairo_show_page(cr);
    status = cairo_status(cr);
    if (status == CAIRO_STATUS_SUCCESS) {
        cairo_surface_finish(surface); /* writes the PDF */
        status = cairo_surface_status(surface);
    }
    if (status != CAIRO_STATUS_SUCCESS) {
        saved = sink.error ? sink.error : status == CAIRO_STATUS_NO_MEMORY ? ENOMEM : EIO;
        errmsg_set(err, errlen, "%s: %s", path,
                sink.error ? errstr(sink.error, ebuf, sizeof ebuf)
                           : cairo_status_to_string(status));
        goto out;
    }
    if (close(sink.fd) < 0) { /* NFS and friends report write-back errors here */
        sink.fd = -1;
        saved = errno;
        errmsg_set(err, errlen, "%s: %s", path, errstr(saved, ebuf, sizeof ebuf));
        goto out;
    }
    sink.fd = -1;
    if (l->facts) {
        l->facts->pages = pages;
        letter_country(l->postal_address, l->facts->country);
    }
    rc = 0;
out:
    if (cr)
        cairo_destroy(cr);
    if (surface)
        cairo_surface_destroy(surface); /* may still write: the fd stays open until after */
    if (sink.fd >= 0)
        close(sink.fd);
    if (rc < 0 && created)
        unlink(path);
    text_free(&t);
    errno = saved;
    return rc;
}

/* ---- the country, for the manifest ------------------------------------------------------ */

/* Country names as the post sees them on an address's last line, in capitals: Dutch, English
 * and the country's own; the Caribbean parts of the Kingdom are foreign mail too. */
static const struct {
    const char *cc, *names;
} COUNTRIES[] = {
    { "NL", "NEDERLAND|THE NETHERLANDS|NETHERLANDS|HOLLAND" },
    { "BE", "BELGIË|BELGIE|BELGIUM|BELGIQUE|BELGIEN" },
    { "DE", "DUITSLAND|GERMANY|DEUTSCHLAND|ALLEMAGNE" },
    { "FR", "FRANKRIJK|FRANCE" },
    { "LU", "LUXEMBURG|LUXEMBOURG" },
    { "GB", "VERENIGD KONINKRIJK|UNITED KINGDOM|GROOT-BRITTANNIË|GROOT-BRITTANNIE|GREAT BRITAIN|"
            "ENGELAND|ENGLAND|SCHOTLAND|SCOTLAND|WALES|NOORD-IERLAND|NORTHERN IRELAND|UK" },
    { "IE", "IERLAND|IRELAND|ÉIRE|EIRE" },
    { "ES", "SPANJE|SPAIN|ESPAÑA|ESPANA" },
    { "PT", "PORTUGAL" },
    { "IT", "ITALIË|ITALIE|ITALY|ITALIA" },
    { "AT", "OOSTENRIJK|AUSTRIA|ÖSTERREICH|OSTERREICH" },
    { "CH", "ZWITSERLAND|SWITZERLAND|SCHWEIZ|SUISSE|SVIZZERA" },
    { "DK", "DENEMARKEN|DENMARK|DANMARK" },
    { "SE", "ZWEDEN|SWEDEN|SVERIGE" },
    { "NO", "NOORWEGEN|NORWAY|NORGE" },
    { "FI", "FINLAND|SUOMI" },
    { "IS", "IJSLAND|ICELAND|ÍSLAND" },
    { "PL", "POLEN|POLAND|POLSKA" },
    { "CZ", "TSJECHIË|TSJECHIE|CZECHIA|CZECH REPUBLIC|ČESKO" },
    { "SK", "SLOWAKIJE|SLOVAKIA|SLOVENSKO" },
    { "HU", "HONGARIJE|HUNGARY|MAGYARORSZÁG" },
    { "RO", "ROEMENIË|ROEMENIE|ROMANIA|ROMÂNIA" },
    { "BG", "BULGARIJE|BULGARIA" },
    { "GR", "GRIEKENLAND|GREECE" },
    { "HR", "KROATIË|KROATIE|CROATIA|HRVATSKA" },
    { "SI", "SLOVENIË|SLOVENIE|SLOVENIA|SLOVENIJA" },
    { "EE", "ESTLAND|ESTONIA|EESTI" },
    { "LV", "LETLAND|LATVIA|LATVIJA" },
    { "LT", "LITOUWEN|LITHUANIA|LIETUVA" },
    { "CY", "CYPRUS" },
    { "MT", "MALTA" },
    { "UA", "OEKRAÏNE|OEKRAINE|UKRAINE" },
    { "TR", "TURKIJE|TURKEY|TÜRKIYE|TURKIYE" },
    { "MA", "MAROKKO|MOROCCO|MAROC" },
    { "SR", "SURINAME" },
    { "AW", "ARUBA" },
    { "CW", "CURAÇAO|CURACAO" },
    { "SX", "SINT MAARTEN" },
    { "BQ", "CARIBISCH NEDERLAND|BONAIRE|SINT EUSTATIUS|SABA" },
    { "US", "VERENIGDE STATEN|UNITED STATES|UNITED STATES OF AMERICA|USA" },
    { "CA", "CANADA" },
    { "AU", "AUSTRALIË|AUSTRALIE|AUSTRALIA" },
    { "NZ", "NIEUW-ZEELAND|NEW ZEALAND" },
    { "ID", "INDONESIË|INDONESIE|INDONESIA" },
};

/* Capitals for ASCII and for the Latin-1 letters (U+00E0..U+00FE -> U+00C0..U+00DE), in place. */
static void upcase_latin1(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++) {
        if (*p >= 'a' && *p <= 'z')
            *p -= 0x20;
        else if (p[0] == 0xC3 && p[1] >= 0xA0 && p[1] <= 0xBE && p[1] != 0xB7)
            p[1] -= 0x20, p++;
    }
}

void letter_country(const char *postal_address, char cc[3])
{
    const char *a = postal_address ? postal_address : "", *last = NULL;
    size_t last_len = 0;

    memcpy(cc, "NL", 3);
    for (const char *q = a; *q;) { /* the last line with something on it */
        size_t l = strcspn(q, "\n");
        if (strspn(q, " \t\r") < l)
            last = q, last_len = l;
        q += l + (q[l] == '\n');
    }
    char *line = last ? clean_text(last, last_len, 64) : NULL;
    if (!line)
        return;
    upcase_latin1(line);
    for (size_t i = 0; i < sizeof COUNTRIES / sizeof *COUNTRIES; i++) {
        for (const char *n = COUNTRIES[i].names; *n;) {
            size_t l = strcspn(n, "|");
            if (strlen(line) == l && memcmp(line, n, l) == 0) {
                memcpy(cc, COUNTRIES[i].cc, 3);
                free(line);
                return;
            }
            n += l + (n[l] == '|');
        }
    }
    free(line);
}
