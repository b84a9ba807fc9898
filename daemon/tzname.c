#include "tzname.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *tz_name(const char *configured, char *buf, size_t len)
{
    const char *tz = configured ? configured : getenv("TZ");
    char link[PATH_MAX];

    if (tz && *tz == ':')               /* POSIX: ":Europe/Amsterdam" names a file */
        tz++;
    if (tz == NULL || *tz == '\0') {
        ssize_t n = readlink("/etc/localtime", link, sizeof(link) - 1);
        const char *z;
        if (n <= 0)
            return NULL;
        link[n] = '\0';
        if ((z = strstr(link, "zoneinfo/")) == NULL)
            return NULL;
        tz = z + strlen("zoneinfo/");
    }
    if ((size_t)snprintf(buf, len, "%s", tz) >= len)
        return NULL;
    return buf;
}
