/* UTF-8 the way citizen-facing text needs it: decode one character, count characters, cut on a
 * character boundary with an ellipsis. Pure functions, no locale. */
#ifndef HERINNERD_UTF8_H
#define HERINNERD_UTF8_H

#include <stddef.h>

/* "…", what a cut value ends in */
#define UTF8_ELLIPSIS "\xE2\x80\xA6"

/* The code point at *S, advancing *S past it. A malformed or overlong sequence, a surrogate or a
 * value beyond U+10FFFF yields U+FFFD and advances one byte, so a loop always ends. */
long utf8_next(const char **s);

/* Characters (code points) in S. */
size_t utf8_chars(const char *s);

/* S cut to at most MAX characters: unchanged if it fits, else its first MAX - 1 characters
 * (trailing spaces dropped) and "…". Malloc'd, or NULL without memory. MAX 0 gives "". */
char *utf8_cut(const char *s, size_t max);

#endif
