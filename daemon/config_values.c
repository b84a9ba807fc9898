#include "config_values.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define ZONEINFO "/usr/share/zoneinfo"

/* 1..65535 in decimal digits only ("abc", "99999", "" and "+1" are not ports) */
static int port_ok(const char *s, size_t n)
{
    long v = 0;

    if (n == 0 || n > 5)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/* RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens */
static int host_name_ok(const char *s, size_t n)
{
    size_t label = 0;

    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else
            return 0;
    }
    return s[n - 1] != '-';
}

/* "[v6]" (brackets included in N) into a bare address for inet_pton */
static int ip6_ok(const char *s, size_t n, struct in6_addr *a)
{
    char buf[INET6_ADDRSTRLEN + 1];

    if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof(buf))
        return 0;
    memcpy(buf, s + 1, n - 2);
    buf[n - 2] = '\0';
    return inet_pton(AF_INET6, buf, a) == 1;
}

static int ip4_ok(const char *s, size_t n, struct in_addr *a)
{
    char buf[INET_ADDRSTRLEN + 1];

    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET, buf, a) == 1;
}

const char *value_listen(const char *s, int *loopback)
{
    static const char what[] = "'listen' must be IP:PORT like \"127.0.0.1:9187\" or "
                               "\"[::1]:9187\", with a port from 1 to 65535";
    const char *colon = strrchr(s, ':');
    struct in_addr a4;
    struct in6_addr a6;

    if (colon == NULL || !port_ok(colon + 1, strlen(colon + 1)))
        return what;
    size_t n = colon - s;
    if (n == 9 && strncmp(s, "localhost", 9) == 0)
        *loopback = 1;
    else if (ip4_ok(s, n, &a4))
        *loopback = (ntohl(a4.s_addr) >> 24) == 127;
    else if (ip6_ok(s, n, &a6))
        *loopback = IN6_IS_ADDR_LOOPBACK(&a6);
    else
        return what;
    return NULL;
}

/* HOST or HOST:PORT, HOST being a name, IPv4 or [IPv6], PORT from 1 to 65535 */
static int host_port_ok(const char *s, size_t n)
{
    const char *colon = memrchr(s, ':', n), *bracket = memrchr(s, ']', n);
    struct in_addr a4;
    struct in6_addr a6;
    size_t hn = n;

    if (colon != NULL && (bracket == NULL || colon > bracket)) {
        const char *port = colon + 1;
        size_t pn = s + n - port;
        hn = colon - s;
        if (!port_ok(port, pn))
            return 0;
    }
    return ip6_ok(s, hn, &a6) || ip4_ok(s, hn, &a4) || host_name_ok(s, hn);
}

const char *value_server(const char *s)
{
    if (!host_port_ok(s, strlen(s)))
        return "must be HOST or HOST:PORT (a port from 1 to 65535), e.g. \"127.0.0.1:25\" or "
               "\"smtp.example.nl:587\"";
    return NULL;
}

const char *value_url(const char *s, const char *scheme)
{
    size_t sl = strlen(scheme);

    if (strncasecmp(s, scheme, sl) != 0 || strncmp(s + sl, "://", 3) != 0)
        return strcmp(scheme, "https") == 0 ? "must be an https:// URL"
                                            : "must be an http:// URL";
    const char *auth = s + sl + 3;
    size_t an = strcspn(auth, "/?#");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= ' ' || *c == 0x7f || *c == '"' || *c == '<' || *c == '>' || *c == '\\')
            return "must not contain white space, control characters, quotes, <, > or \\";
    if (memchr(auth, '@', an) != NULL)
        return "must not contain a user name (user@host)";
    if (!host_port_ok(auth, an))
        return "must name a host (and optionally a port from 1 to 65535), e.g. "
               "\"http://127.0.0.1:13013/cgi-bin/sendsms\"";
    return NULL;
}

const char *value_time_zone(const char *name)
{
    char path[PATH_MAX], magic[4];
    struct stat sb;
    FILE *f;
    int ok;

    if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL ||
        strlen(name) > 128)
        return "unknown time zone";
    snprintf(path, sizeof(path), "%s/%s", ZONEINFO, name);
    /* a directory ("Europe", "posix") is no zone; every zone file starts with "TZif" */
    if (stat(path, &sb) == -1 || !S_ISREG(sb.st_mode) || (f = fopen(path, "rb")) == NULL)
        return "unknown time zone";
    ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
    fclose(f);
    return ok ? NULL : "unknown time zone";
}
