/* Rotating libpq host lists (see hostlist.h). */
#include "hostlist.h"

#include <stdlib.h>
#include <string.h>

int hostlist_count(const char *list)
{
    int n = 1;

    if (list == NULL || *list == '\0')
        return 0;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

char *hostlist_rotate(const char *list, int k)
{
    int n = hostlist_count(list);
    size_t len = list ? strlen(list) : 0;
    char *out = malloc(len + 1);
    const char *start = list;

    if (out == NULL)
        return NULL;
    if (n < 2) {
        memcpy(out, list ? list : "", len + 1);
        return out;
    }
    for (k %= n; k > 0; k--)                  /* the K-th comma ends the part that moves */
        start = strchr(start, ',') + 1;
    size_t tail = len - (size_t)(start - list);
    if (tail == len) {
        memcpy(out, list, len + 1);
        return out;
    }
    memcpy(out, start, tail);                 /* "b,c" + "," + "a" */
    out[tail] = ',';
    memcpy(out + tail + 1, list, len - tail - 1);
    out[len] = '\0';
    return out;
}
