/* Multi-host conninfos (host=a,b port=1,2): where a connection attempt starts. libpq tries the
 * hosts in order and ignores connect_timeout in non-blocking connects, so one hung host (it
 * accepts and never answers) would hold every attempt; the next attempt starts further on. */
#ifndef HERINNERD_HOSTLIST_H
#define HERINNERD_HOSTLIST_H

/* Number of entries in a comma-separated libpq list ("a,b" -> 2, "" or NULL -> 0, "a" -> 1). */
int hostlist_count(const char *list);

/* LIST rotated left by K entries (K taken modulo the count): ("a,b,c", 1) -> "b,c,a".
 * malloc'd; NULL when out of memory. */
char *hostlist_rotate(const char *list, int k);

#endif
