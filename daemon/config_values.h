/* Checks of single configuration values that libconfig sees only as strings: addresses, URLs,
 * time zones. Pure functions (the time zone check reads the zone file); each returns NULL when
 * the value is fine, else what is wrong with it, in words for a "FILE:LINE: what" message. */
#ifndef HERINNERD_CONFIG_VALUES_H
#define HERINNERD_CONFIG_VALUES_H

/* "IP:PORT" for a listening socket: an IPv4 address, "[IPv6]" or "localhost"; *LOOPBACK says
 * whether only this host can reach it. */
const char *value_listen(const char *s, int *loopback);
/* "HOST[:PORT]" of a server to connect to: a host name, an IPv4 address or "[IPv6]"; the
 * port in digits. */
const char *value_server(const char *s);
/* An absolute URL with SCHEME ("http" or "https"), a host, an optional port, and no user
 * name, white space or control characters. */
const char *value_url(const char *s, const char *scheme);
/* A time zone of the system's database, e.g. "Europe/Amsterdam" (not a directory of them). */
const char *value_time_zone(const char *name);

#endif
