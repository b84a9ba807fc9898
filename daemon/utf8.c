/* UTF-8 helpers (see utf8.h). */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

long utf8_next(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    long cp, min;
    int extra;

    if (p[0] < 0x80) {
        *s += 1;
        return p[0];
    }
    if ((p[0] & 0xE0) == 0xC0) {
        cp = p[0] & 0x1F;
        extra = 1;
        min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        cp = p[0] & 0x0F;
        extra = 2;
        min = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        cp = p[0] & 0x07;
        extra = 3;
        min = 0x10000;
    } else
        goto bad;
    for (int i = 1; i <= extra; i++) {
        if ((p[i] & 0xC0) != 0x80)      /* also stops at the terminating NUL */
            goto bad;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        goto bad;
    *s += extra + 1;
    return cp;
bad:
    *s += 1;
    return 0xFFFD;
}

size_t utf8_chars(const char *s)
{
    size_t n = 0;

    while (*s) {
        utf8_next(&s);
        n++;
    }
    return n;
}

char *utf8_cut(const char *s, size_t max)
{
    const char *p = s;
    size_t n = 0;

    if (max == 0)
        return strdup("");
    /* the end of the first MAX - 1 characters, and whether more than MAX follow */
    const char *keep_end = NULL;
    while (*p && n < max) {
        if (n == max - 1)
            keep_end = p;
        utf8_next(&p);
        n++;
    }
    if (*p == '\0')
        return strdup(s);
    size_t keep = (size_t)(keep_end - s);
    while (keep > 0 && s[keep - 1] == ' ')
        keep--;
    char *out = malloc(keep + sizeof(UTF8_ELLIPSIS));
    if (out == NULL)
        return NULL;
    memcpy(out, s, keep);
    memcpy(out + keep, UTF8_ELLIPSIS, sizeof(UTF8_ELLIPSIS));
    return out;
}
