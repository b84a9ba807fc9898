#include "policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* a step this much later than planned was caught up on, not sent on time */
#define CATCH_UP_SLACK 60.0

static int in_quiet_hours(const struct step *st, int minute)
{
    if (st->quiet_start == st->quiet_end)
        return 0;
    if (st->quiet_start < st->quiet_end)
        return minute >= st->quiet_start && minute < st->quiet_end;
    return minute >= st->quiet_start || minute < st->quiet_end;   /* wraps midnight */
}

/* mktime with tm_isdst = -1 lets the C library pick the offset in force at the target time,
 * which is what keeps "08:00" at 08:00 across a DST change. */
static double local_time_at(const struct tm *base, int day_offset, int minute)
{
    struct tm tm = *base;

    tm.tm_mday += day_offset;
    tm.tm_hour = minute / 60;
    tm.tm_min = minute % 60;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (double)mktime(&tm);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* 0 = Sunday, as tm_wday */
static int weekday(long days)
{
    return (int)(((days % 7) + 11) % 7);
}

void policy_easter(int year, int *month, int *day)
{
    /* the anonymous Gregorian algorithm (Meeus/Jones/Butcher) */
    int a = year % 19, b = year / 100, c = year % 100, d = b / 4, e = b % 4;
    int f = (b + 8) / 25, g = (b - f + 1) / 3, h = (19 * a + b - d - g + 15) % 30;
    int i = c / 4, k = c % 4, l = (32 + 2 * e + 2 * i - h - k) % 7;
    int m = (a + 11 * h + 22 * l) / 451;

    *month = (h + l - 7 * m + 114) / 31;
    *day = (h + l - 7 * m + 114) % 31 + 1;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

const char *policy_holiday(const struct holiday_config *h, int year, int month, int day)
{
    static const struct { int offset; const char *name; } moving[] = {
        { -2, "Goede Vrijdag" },      { 0, "Eerste Paasdag" },      { 1, "Tweede Paasdag" },
        { 39, "Hemelvaartsdag" },     { 49, "Eerste Pinksterdag" }, { 50, "Tweede Pinksterdag" },
    };
    long today = days_from_civil(year, month, day), easter;
    int em, ed, ymd = year * 10000 + month * 100 + day;

    if (month == 1 && day == 1)
        return "Nieuwjaarsdag";
    if (month == 12 && (day == 25 || day == 26))
        return day == 25 ? "Eerste Kerstdag" : "Tweede Kerstdag";
    if (year >= 2014) { /* the King's birthday; moved back a day when it falls on a Sunday */
        int kd = weekday(days_from_civil(year, 4, 27)) == 0 ? 26 : 27;
        if (month == 4 && day == kd)
            return "Koningsdag";
    } else {
        int qd = weekday(days_from_civil(year, 4, 30)) == 0 ? 29 : 30;
        if (month == 4 && day == qd)
            return "Koninginnedag";
    }
    if (month == 5 && day == 5 && (year % 5 == 0 || (h && h->liberation_every_year)))
        return "Bevrijdingsdag";
    policy_easter(year, &em, &ed);
    easter = days_from_civil(year, em, ed);
    for (size_t i = 0; i < sizeof moving / sizeof *moving; i++)
        if (today == easter + moving[i].offset && (moving[i].offset != -2 || (h && h->good_friday)))
            return moving[i].name;
    if (h && h->nextra && bsearch(&ymd, h->extra, h->nextra, sizeof *h->extra, cmp_int))
        return "holiday (config)";
    return NULL;
}

/* Saturday, Sunday or a public holiday */
static int day_off(const struct step *st, const struct tm *tm)
{
    return tm->tm_wday == 6 || tm->tm_wday == 0 ||
           policy_holiday(st->holidays, tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday) != NULL;
}

double policy_calendar_adjust(const struct step *st, double t)
{
    /* quiet hours can push into a weekend and a weekend into quiet hours: settle in a few rounds */
    for (int round = 0; round < 4; round++) {
        time_t secs = (time_t)floor(t);
        struct tm tm;
        double before = t;

        localtime_r(&secs, &tm);
        int minute = tm.tm_hour * 60 + tm.tm_min;
        if (in_quiet_hours(st, minute)) {
            int day = minute >= st->quiet_end ? 1 : 0;
            t = local_time_at(&tm, day, st->quiet_end);
            secs = (time_t)t;
            localtime_r(&secs, &tm);
        }
        if (st->business_days && day_off(st, &tm)) {
            /* count whole days (noon avoids DST edges); a year of days off is a config error
             * nobody means, so stop looking there */
            struct tm d = tm;
            int days = 0;
            do {
                d = tm;
                d.tm_mday += ++days;
                d.tm_hour = 12;
                d.tm_isdst = -1;
                mktime(&d);
            } while (days < 366 && day_off(st, &d));
            t = local_time_at(&tm, days, tm.tm_hour * 60 + tm.tm_min);
        }
        if (t == before)
            break;
    }
    return t;
}

size_t policy_deferral(const struct step *st, double created, double due, char *buf, size_t len)
{
    double planned = st->from_due ? (due == NO_TIME ? NO_TIME : due - (double)st->offset)
                                  : created + (double)st->offset;
    double at = policy_step_time(st, created, due, created);
    time_t secs;
    struct tm tm, last;
    size_t n = 0;
    int days = 0;

    if (len)
        buf[0] = '\0';
    if (planned < created)
        planned = created;
    if (at == NO_TIME || planned == NO_TIME || at == planned || len == 0)
        return 0;
    secs = (time_t)planned;
    localtime_r(&secs, &tm);
    n += strftime(buf, len, "deferred from %a %d %b %H:%M (", &tm);
    secs = (time_t)at;
    localtime_r(&secs, &last);
    /* the days from the planned one up to (not including) the day it goes */
    for (int i = 0; i < 366 && n < len && (tm.tm_year < last.tm_year ||
                                           (tm.tm_year == last.tm_year && tm.tm_yday < last.tm_yday));
         i++) {
        const char *name = policy_holiday(st->holidays, tm.tm_year + 1900, tm.tm_mon + 1,
                                          tm.tm_mday);
        if (st->business_days && (name || tm.tm_wday == 0 || tm.tm_wday == 6)) {
            char day[32];
            strftime(day, sizeof day, "%a %d %b", &tm);
            n += (size_t)snprintf(buf + n, len - n, "%s%s %s", days++ ? ", " : "", day,
                                  name ? name : "weekend");
        }
        tm.tm_mday++, tm.tm_hour = 12, tm.tm_isdst = -1;
        mktime(&tm);
    }
    if (n < len)
        n += (size_t)snprintf(buf + n, len - n, "%s)", days ? "" : "quiet hours");
    return n < len ? n : len - 1;
}

double policy_step_time(const struct step *st, double created, double due, double now)
{
    double t;

    if (st->from_due) {
        if (due == NO_TIME)
            return NO_TIME;
        t = due - (double)st->offset;
    } else
        t = created + (double)st->offset;
    if (t < now)
        t = now;
    return policy_calendar_adjust(st, t);
}

double policy_retry_time(const struct step *st, int tries, double now)
{
    int doublings = tries > 1 ? tries - 1 : 0;

    if (doublings > 5)
        doublings = 5;          /* at most 32 x backoff between tries */
    return policy_calendar_adjust(st, now + (double)st->retry_backoff * (1 << doublings));
}

int outcome_is_success(enum outcome o)
{
    return o == OUTCOME_SENT || o == OUTCOME_DELIVERED || o == OUTCOME_QUEUED ||
           o == OUTCOME_HANDED_OVER;
}

void policy_advance(const struct policy *policy, const struct progress *cur, enum outcome outcome,
                    double created, double due, double now, struct progress *next)
{
    const struct step *st = &policy->steps[cur->step];
    int tries = cur->tries + 1;

    *next = *cur;
    /* in-doubt (no answer to a send that may have arrived) is retried like a temporary failure:
     * at least once, with every copy on record */
    if ((outcome == OUTCOME_TEMPORARY_FAILURE || outcome == OUTCOME_IN_DOUBT) &&
        tries <= st->retry_max) {
        next->tries = tries;
        next->next_at = policy_retry_time(st, tries, now);
        return;
    }
    next->tries = 0;
    next->step = cur->step + 1;
    if ((size_t)next->step >= policy->nsteps) {
        next->state = outcome_is_success(outcome) ? STATE_DONE : STATE_FAILED;
        next->next_at = NO_TIME;
        return;
    }
    const struct step *nst = &policy->steps[next->step];
    /* a step without a plannable time is still visited (now) so that its skip gets recorded */
    next->next_at = policy_step_time(nst, created, due, now);
    /* After a step that ran late (downtime, catching up), keep the gap the policy puts between
     * two "after" steps: e-mail, SMS and letter must not all go out in the same minute. */
    int ran_late = now - (created + (double)st->offset) > CATCH_UP_SLACK;
    if (next->next_at != NO_TIME && outcome_is_success(outcome) && ran_late && !st->from_due &&
        !nst->from_due) {
        double spaced = policy_calendar_adjust(nst, now + (double)(nst->offset - st->offset));
        if (spaced > next->next_at)
            next->next_at = spaced;
    }
    if (next->next_at == NO_TIME)
        next->next_at = now;
    next->state = STATE_ACTIVE;
}
