/* The link rule (see link.h). Deliberately strict: a URL a sender really uses is plain ASCII
 * (RFC 3986, IRIs percent-encoded), so refusing the rest costs nothing and keeps out scripts
 * ("javascript:", "data:"), look-alike hosts ("https://mijnoverheid.nl@evil.example"), line
 * breaks and quotes that could leave the place the link is printed in. */
#include "link.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Characters RFC 3986 allows in a URL (unreserved, reserved and '%'). */
static int url_char(unsigned char c)
{
    return isalnum(c) || strchr("-._~:/?#[]@!$&'()*+,;=%", c) != NULL;
}

/* The host[:port] part, up to the first '/', '?' or '#': a DNS name or an IP literal. */
static int authority_ok(const char *a, size_t len, const char **reason)
{
    size_t host_end = len;

    if (memchr(a, '@', len) != NULL) {
        *reason = "has a user name before the host";
        return -1;
    }
    if (len > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (close == NULL || close == a + 1)
            goto bad;
        for (const char *p = a + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                goto bad;
        host_end = (size_t)(close - a) + 1;
    } else {
        const char *colon = memchr(a, ':', len);
        if (colon != NULL)
            host_end = (size_t)(colon - a);
        if (host_end == 0)
            goto bad;
        for (size_t i = 0; i < host_end; i++)
            if (!isalnum((unsigned char)a[i]) && a[i] != '.' && a[i] != '-')
                goto bad;
        if (a[0] == '.' || a[0] == '-')
            goto bad;
    }
    if (host_end < len) {
        /* ":port" */
        if (a[host_end] != ':' || host_end + 1 == len || len - host_end - 1 > 5)
            goto bad;
        for (size_t i = host_end + 1; i < len; i++)
            if (!isdigit((unsigned char)a[i]))
                goto bad;
    }
    return 0;
bad:
    *reason = "has no valid host";
    return -1;
}

int link_check(const char *url, int allow_http, const char **reason)
{
    size_t scheme;

    if (url == NULL || *url == '\0') {
        *reason = "empty";
        return -1;
    }
    if (strncasecmp(url, "https://", 8) == 0)
        scheme = 8;
    else if (strncasecmp(url, "http://", 7) == 0) {
        if (!allow_http) {
            *reason = "not https";
            return -1;
        }
        scheme = 7;
    } else {
        *reason = "not https";
        return -1;
    }
    size_t len = strlen(url);
    if (len > LINK_MAX) {
        *reason = "too long";
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if (!url_char((unsigned char)url[i])) {
            *reason = "contains characters a link may not have";
            return -1;
        }
    const char *a = url + scheme;
    return authority_ok(a, strcspn(a, "/?#"), reason);
}

const char *link_for_citizen(const char *link, const char *fallback, int allow_http,
                             char *note, size_t notelen)
{
    const char *reason;

    if (notelen > 0)
        note[0] = '\0';
    if (link == NULL || link[strspn(link, " \t\r\n")] == '\0')
        return fallback;        /* the message has none: the inbox is its link, nothing replaced */
    if (link_check(link, allow_http, &reason) == 0)
        return link;
    snprintf(note, notelen, "link replaced: %s", reason);
    return fallback;
}
