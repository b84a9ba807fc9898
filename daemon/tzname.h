/* The name of the time zone people read times in: the config's `timezone`, else the host's. */
#ifndef HERINNERD_TZNAME_H
#define HERINNERD_TZNAME_H

#include <stddef.h>

/* CONFIGURED (may be NULL), else $TZ, else the zone /etc/localtime links to; written into BUF.
 * Returns BUF, or NULL when no name can be found (PostgreSQL's own setting is used then). */
const char *tz_name(const char *configured, char *buf, size_t len);

#endif
