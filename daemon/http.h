/* The loopback HTTP listener (evhttp): /healthz, /metrics, and /dlr for SMS delivery reports. */
#ifndef HERINNERD_HTTP_H
#define HERINNERD_HTTP_H

struct daemon;
struct http;
struct evhttp_request;

struct http *http_start(struct daemon *d, const char *listen);
void http_stop(struct http *h);

/* The SMS channel answers /dlr; it returns an HTTP status. */
typedef int (*http_dlr_fn)(const char *query, void *arg);
void http_set_dlr_handler(struct http *h, http_dlr_fn fn, void *arg);

#endif
