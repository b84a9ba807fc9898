#include "mime.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void mime_strip_controls(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

static void base64_chunk(FILE *f, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        fputc(b64[v >> 18 & 63], f);
        fputc(b64[v >> 12 & 63], f);
        fputc(i + 1 < n ? b64[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? b64[v & 63] : '=', f);
    }
}

/* Length of the UTF-8 sequence starting at P (1 for stray bytes, so we always advance). */
static size_t utf8_len(const unsigned char *p)
{
    if (*p >= 0xf0 && p[1] && p[2] && p[3])
        return 4;
    if (*p >= 0xe0 && p[1] && p[2])
        return 3;
    if (*p >= 0xc0 && p[1])
        return 2;
    return 1;
}

/* Encoded-words of at most 75 characters ("=?UTF-8?B?" + 60 base64 + "?="), never splitting a
 * UTF-8 character. The first word fills what is left of the first line (a value that starts
 * on a continuation line would gain a leading space); the others get a folded line each. */
static void encode_words(FILE *f, const char *value, size_t first_line_used)
{
    const unsigned char *p = (const unsigned char *)value;
    size_t room = first_line_used + 12 + 4 < 78 ? (78 - first_line_used - 12) / 4 * 3 : 0;
    int first = 1;

    if (room > 45)
        room = 45;
    while (*p) {
        size_t budget = first && room >= 4 ? room : 45, n = 0;   /* 45 bytes -> 60 base64 */
        while (p[n]) {
            size_t l = utf8_len(p + n);
            if (n + l > budget)
                break;
            n += l;
        }
        if (!first || budget != room)
            fputs("\r\n ", f);
        fputs("=?UTF-8?B?", f);
        base64_chunk(f, p, n);
        fputs("?=", f);
        p += n;
        first = 0;
    }
}

/* Plain text can be folded only at spaces: a word longer than a line (2,000 letters without a
 * space) would stay one line beyond RFC 5322's limit, so such values are encoded instead. */
static int words_fit(const char *s, size_t room)
{
    for (size_t n; *s; s += n + (s[n] == ' '))
        if ((n = strcspn(s, " ")) > room)
            return 0;
    return 1;
}

/* Plain ASCII folded at spaces. */
static void fold_plain(FILE *f, const char *value, size_t used)
{
    const char *p = value;

    while (*p) {
        size_t word = strcspn(p + 1, " ") + 1;   /* includes a leading space, if any */
        if (used + word > 78 && used > 1 && *p == ' ') {
            fputs("\r\n", f);
            used = 0;
        }
        fwrite(p, 1, word, f);
        used += word;
        p += word;
    }
}

char *mime_header(const char *name, const char *value)
{
    char *clean = strdup(value ? value : ""), *out = NULL;
    size_t outlen;
    FILE *f;

    if (clean == NULL || (f = open_memstream(&out, &outlen)) == NULL) {
        free(clean);
        return NULL;
    }
    mime_strip_controls(clean);
    fprintf(f, "%s: ", name);
    /* "=?" in plain text would be read as an encoded-word: encode such values too */
    if (printable_ascii(clean) && strstr(clean, "=?") == NULL &&
        strlen(name) + 2 < 78 && words_fit(clean, 78 - strlen(name) - 2))
        fold_plain(f, clean, strlen(name) + 2);
    else
        encode_words(f, clean, strlen(name) + 2);
    fclose(f);
    free(clean);
    return out;
}

/* Length of S as a quoted string's contents ('"' and '\\' escaped). */
static size_t quoted_len(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == '"' || *s == '\\' ? 2 : 1;
    return n;
}

char *mime_mailbox(const char *display, const char *addr)
{
    char *out = NULL, *clean;
    size_t outlen;
    FILE *f;

    if (display == NULL || *display == '\0')
        return strdup(addr);
    if ((clean = strdup(display)) == NULL || (f = open_memstream(&out, &outlen)) == NULL) {
        free(clean);
        return NULL;
    }
    mime_strip_controls(clean);
    /* a quoted string cannot be folded: only a name that fits on the line after "From: " */
    if (printable_ascii(clean) && strstr(clean, "=?") == NULL && quoted_len(clean) <= 70) {
        fputc('"', f);
        for (const char *p = clean; *p; p++) {
            if (*p == '"' || *p == '\\')
                fputc('\\', f);
            fputc(*p, f);
        }
        fputc('"', f);
        fprintf(f, " <%s>", addr);
    } else {
        encode_words(f, clean, sizeof("From: ") - 1);
        /* after one encoded word on the same line; after several on a line of its own */
        fprintf(f, strlen(clean) <= 45 ? " <%s>" : "\r\n <%s>", addr);
    }
    fclose(f);
    free(clean);
    return out;
}

int mime_parse_mailbox(const char *text, char **display, char **addr)
{
    const char *lt = strrchr(text, '<'), *gt = strrchr(text, '>');

    *display = *addr = NULL;
    if (lt == NULL) {
        *addr = strdup(text);
        *display = strdup("");
    } else {
        if (gt == NULL || gt < lt)
            return -1;
        *addr = strndup(lt + 1, gt - lt - 1);
        size_t dl = lt - text;
        while (dl > 0 && isspace((unsigned char)text[dl - 1]))
            dl--;
        const char *d = text;
        if (dl >= 2 && d[0] == '"' && d[dl - 1] == '"') {
            d++;
            dl -= 2;
        }
        *display = strndup(d, dl);
    }
    if (*addr == NULL || *display == NULL || !mime_address_ok(*addr)) {
        free(*addr);
        free(*display);
        *addr = *display = NULL;
        return -1;
    }
    return 0;
}

int mime_address_ok(const char *addr)
{
    const char *at = strchr(addr, '@');

    if (at == NULL || at == addr || at[1] == '\0' || strchr(at + 1, '@') != NULL)
        return 0;
    for (const char *p = addr; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>' || *p == ',' ||
            *p == '(' || *p == ')' || *p == '"' || *p == ';')
            return 0;
    return strlen(addr) <= 254;
}

char *mime_quoted_printable(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = NULL;
    size_t outlen, col = 0;
    FILE *f = open_memstream(&out, &outlen);

    if (f == NULL)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '\n') {
            fputs("\r\n", f);
            col = 0;
            continue;
        }
        if (*p == '\r')
            continue;
        int literal = (*p >= 33 && *p <= 126 && *p != '=') ||
                      ((*p == ' ' || *p == '\t') && p[1] != '\n' && p[1] != '\0');
        /* a leading dot is fine for SMTP (the client dot-stuffs), but "From " lines get mangled
         * by some mailboxes: encode the F */
        if (col == 0 && *p == 'F' && strncmp((const char *)p, "From ", 5) == 0)
            literal = 0;
        size_t need = literal ? 1 : 3;
        if (col + need > 75) {
            fputs("=\r\n", f);
            col = 0;
        }
        if (literal)
            fputc(*p, f);
        else {
            fputc('=', f);
            fputc(hex[*p >> 4], f);
            fputc(hex[*p & 15], f);
        }
        col += need;
    }
    fclose(f);
    return out;
}

void mime_date(time_t t, char *buf, size_t len)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;

    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
             off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

int mime_message_id(char *buf, size_t len, const char *domain)
{
    unsigned char r[16];
    char hex[2 * sizeof r + 1];
    size_t got = 0;

    while (got < sizeof r) { /* blocks only before the kernel's pool is first initialised */
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(hex + 2 * i, 3, "%02x", r[i]);
    int n = snprintf(buf, len, "<herinnerd.%s@%s>", hex, domain);
    if (n < 0 || (size_t)n >= len) {
        errno = ERANGE;
        return -1;
    }
    return 0;
}

int mime_helo_ok(const char *name)
{
    size_t n = strlen(name), label = 0;

    if (n >= 3 && name[0] == '[' && name[n - 1] == ']') { /* address literal */
        const char *a = name + 1 + (strncmp(name, "[IPv6:", 6) == 0 ? 5 : 0);
        size_t alen = (size_t)(name + n - 1 - a);
        return alen > 0 && strspn(a, "0123456789abcdefABCDEF.:") == alen;
    }
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        char c = name[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || name[i - 1] == '-')
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)c) || (c == '-' && label > 0)) {
            label++;
        } else {
            return 0;
        }
    }
    return 1;
}
