/* Pure scheduling decisions: when a step is due, calendar rules, what follows an outcome.
 * Times are seconds since the epoch (double: PostgreSQL keeps microseconds); calendar rules use
 * the process's local time zone (TZ), which main sets from the config. */
#ifndef HERINNERD_POLICY_H
#define HERINNERD_POLICY_H

#include "config.h"
#include "outcome.h"

#define NO_TIME (-1.0)

/* When STEP becomes due for a message created at CREATED (due at DUE, or NO_TIME): never before
 * NOW, and moved out of quiet hours and weekends. NO_TIME if it cannot be planned (a before_due
 * step for a message without a due date). */
double policy_step_time(const struct step *step, double created, double due, double now);

/* T moved forward past the step's quiet hours and, with business_days, past weekends and public
 * holidays (policy_holiday), keeping the time of day. */
double policy_calendar_adjust(const struct step *step, double t);

/* When try number TRIES+1 may run after TRIES failed tries: backoff doubling per try, capped. */
double policy_retry_time(const struct step *step, int tries, double now);

struct progress {
    int step;                  /* index into the policy's steps */
    int tries;                 /* tries made at this step */
    double next_at;            /* NO_TIME when not active */
    enum escalation_state state;
};

/* The escalation after try number CUR->tries + 1 of CUR->step ended with OUTCOME. A temporary
 * failure is retried until the budget is spent; anything final moves to the next step, which is
 * due at its planned time or now, whichever is later (after a success that came late, also no
 * sooner than the policy's gap between the two steps). Steps that cannot be planned are passed
 * over at once, so the engine records why. */
void policy_advance(const struct policy *policy, const struct progress *cur, enum outcome outcome,
                    double created, double due, double now, struct progress *next);

/* Easter Sunday of YEAR (Gregorian calendar). */
void policy_easter(int year, int *month, int *day);

/* The Dutch name of the public holiday on YEAR-MONTH-DAY, or NULL for an ordinary day:
 * Nieuwjaarsdag, Goede Vrijdag (with h->good_friday), Eerste and Tweede Paasdag, Koningsdag
 * (27 April, 26 April when the 27th is a Sunday; before 2014 Koninginnedag, 30 April or 29 when
 * that is a Sunday), Bevrijdingsdag (5 May in lustrum years, every year with
 * h->liberation_every_year), Hemelvaartsdag, Eerste and Tweede Pinksterdag, Eerste and Tweede
 * Kerstdag, and h's extra dates ("holiday (config)"). h may be NULL: the defaults. */
const char *policy_holiday(const struct holiday_config *h, int year, int month, int day);

/* Why the calendar moves STEP for a message created at CREATED (due at DUE): writes e.g.
 * "deferred from Tue 27 Apr 09:30 (Tue 27 Apr Koningsdag)" -- the days passed over (holiday
 * names, "weekend") or "quiet hours" -- into BUF and returns its length; 0 and "" when the step
 * goes when planned or cannot be planned. For `herinnerctl explain --created`. */
size_t policy_deferral(const struct step *step, double created, double due, char *buf, size_t len);

/* Is this outcome the end of a step (as opposed to a retry or a follow-up record)? */
int outcome_is_success(enum outcome o);

#endif
