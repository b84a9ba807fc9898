#include "duration.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int duration_parse(const char *text, long *seconds)
{
    char *end;
    long n, unit;

    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    n = strtol(text, &end, 10);
    if (errno != 0 || end[0] == '\0' || end[1] != '\0')
        return -1;
    switch (end[0]) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return -1;
    }
    /* a year and a bit is more than any reminder ladder needs; it also keeps time_t maths safe */
    if (n > 400L * 86400 / unit)
        return -1;
    *seconds = n * unit;
    return 0;
}

int clock_parse(const char *text, int *minutes)
{
    if (text == NULL || strlen(text) != 5 || text[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && !isdigit((unsigned char)text[i]))
            return -1;
    int h = (text[0] - '0') * 10 + (text[1] - '0');
    int m = (text[3] - '0') * 10 + (text[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    *minutes = h * 60 + m;
    return 0;
}

int clock_range_parse(const char *text, int *start, int *end)
{
    char a[6], b[6];

    if (text == NULL || strlen(text) != 11 || text[5] != '-')
        return -1;
    memcpy(a, text, 5);
    a[5] = '\0';
    memcpy(b, text + 6, 5);
    b[5] = '\0';
    if (clock_parse(a, start) == -1 || clock_parse(b, end) == -1 || *start == *end)
        return -1;
    return 0;
}
