/* Parsing of the small time notations used in the configuration. Pure functions. */
#ifndef HERINNERD_DURATION_H
#define HERINNERD_DURATION_H

/* "30s" "15m" "2h" "3d" "2w" -> seconds. 0 on success, -1 on a malformed or overlong value. */
int duration_parse(const char *text, long *seconds);

/* "HH:MM" -> minutes after midnight. */
int clock_parse(const char *text, int *minutes);

/* "21:00-08:00" -> start/end minutes; the range may wrap midnight but may not be empty. */
int clock_range_parse(const char *text, int *start, int *end);

#endif
