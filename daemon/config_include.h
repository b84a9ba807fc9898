/* The effective text of a configuration: the file with every @include replaced by the included
 * file's text, between two comment lines that name it. This one text is what libconfig parses,
 * what is hashed and what is stored for audits, so an edit in an included file is an edit of the
 * configuration. A line map takes a line of that text back to the file and line it came from. */
#ifndef HERINNERD_CONFIG_INCLUDE_H
#define HERINNERD_CONFIG_INCLUDE_H

#include <stddef.h>

/* the whole effective text may not be larger than this */
#define CONFIG_MAX_TEXT (1024 * 1024)
/* libconfig's own limit */
#define CONFIG_MAX_INCLUDE_DEPTH 10

struct config_span;

struct config_text {
    char *text;                 /* NUL-terminated, no NUL inside */
    size_t len;
    struct config_span *spans;  /* where each run of lines came from */
    size_t nspans, cap;
    char **files;               /* the names spans point to */
    size_t nfiles;
};

/* Read PATH and expand its @include lines; a relative include is read from PATH's directory
 * (as libconfig does), and named in errors as the @include gives it. -1 with "FILE:LINE: what"
 * in ERR. */
int config_text_read(const char *path, struct config_text *t, char *err, size_t errlen);
/* TEXT as it is (e.g. a stored configuration), named NAME: an @include line is an error. */
int config_text_from(const char *name, const char *text, size_t len, struct config_text *t,
                     char *err, size_t errlen);
/* The file and its line for LINE of the effective text (1-based). */
const char *config_text_where(const struct config_text *t, int line, int *file_line);
void config_text_free(struct config_text *t);

#endif
