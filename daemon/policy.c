#include "policy.h"

#include <math.h>
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
        if (st->business_days && (tm.tm_wday == 6 || tm.tm_wday == 0)) {
            int days = tm.tm_wday == 6 ? 2 : 1;
            t = local_time_at(&tm, days, tm.tm_hour * 60 + tm.tm_min);
        }
        if (t == before)
            break;
    }
    return t;
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
    if (outcome == OUTCOME_TEMPORARY_FAILURE && tries <= st->retry_max) {
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
