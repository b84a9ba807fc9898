/* Error messages into a caller's buffer, for functions that report "what went wrong" in words. */
#ifndef HERINNERD_ERRMSG_H
#define HERINNERD_ERRMSG_H

#include <stddef.h>

/* printf into ERR (ERRLEN bytes); a NULL or empty buffer is left alone. */
void errmsg_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
