/* herinnerctl check | explain | status: answers for admins and help desks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "ctl.h"
#include "policy.h"

int ctl_check(const struct ctl *ctl)
{
    struct config *cfg = ctl_load_config(ctl);

    if (cfg == NULL)
        return 1;
    printf("%s: ok (%zu policies, sha256 %s)\n", ctl->config_path, cfg->npolicies, cfg->sha256);
    config_free(cfg);
    return 0;
}

static void print_duration(long s)
{
    if (s % 604800 == 0 && s)
        printf("%ldw", s / 604800);
    else if (s % 86400 == 0 && s)
        printf("%ldd", s / 86400);
    else if (s % 3600 == 0 && s)
        printf("%ldh", s / 3600);
    else if (s % 60 == 0 && s)
        printf("%ldm", s / 60);
    else
        printf("%lds", s);
}

/* "YYYY-MM-DD" or "YYYY-MM-DD HH:MM" (or with a T) in the config's time zone; -1 if not. */
static double parse_local(const char *s)
{
    struct tm tm = { .tm_isdst = -1 };
    int n = 0;

    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3)
        return -1;
    if (s[n] && (sscanf(s + n + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &n) != 2 ||
                 (s[10] != ' ' && s[10] != 'T') || s[11 + n]))
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)mktime(&tm);
}

static const char *local_text(double t, char *buf, size_t len)
{
    time_t s = (time_t)t;
    struct tm tm;

    localtime_r(&s, &tm);
    strftime(buf, len, "%a %Y-%m-%d %H:%M %Z", &tm);
    return buf;
}

/* When STEP goes for a message created at CREATED (due at DUE) and, if the calendar moved it,
 * from when and why (policy_deferral). */
static void print_plan(const struct step *st, double created, double due)
{
    double at = policy_step_time(st, created, due, created);
    char a[64], why[512];

    if (at == NO_TIME) {
        printf("           not planned: the message has no due date (--due), the step is skipped\n");
        return;
    }
    policy_deferral(st, created, due, why, sizeof why);
    printf("           at %s%s%s\n", local_text(at, a, sizeof a), *why ? ", " : "", why);
}

int ctl_explain(const struct ctl *ctl, const char *kind, const char *created_at,
                const char *due_at)
{
    struct config *cfg = ctl_load_config(ctl);
    double created = NO_TIME, due = NO_TIME;

    if (cfg == NULL)
        return 1;
    if (cfg->timezone) { /* plan in the daemon's calendar */
        setenv("TZ", cfg->timezone, 1);
        tzset();
    }
    if ((created_at && (created = parse_local(created_at)) < 0) ||
        (due_at && (due = parse_local(due_at)) < 0)) {
        fprintf(stderr, "herinnerctl: '%s' is not a time like \"2027-04-24 09:30\"\n",
                created_at && created < 0 ? created_at : due_at);
        config_free(cfg);
        return 2;
    }
    if (due != NO_TIME && created == NO_TIME)
        created = (double)time(NULL);
    const struct policy *po = config_policy_for_kind(cfg, kind);
    if (po == NULL) {
        printf("messages of kind '%s' match no policy: they are not escalated\n", kind);
        config_free(cfg);
        return 1;
    }
    printf("messages of kind '%s' follow policy '%s'%s:\n", kind, po->name,
           po->hide_subject ? " (subject hidden from e-mail and SMS)" : "");
    for (size_t i = 0; i < po->nsteps; i++) {
        const struct step *st = &po->steps[i];
        printf("  step %zu: %-5s ", i, channel_name(st->channel));
        print_duration(st->offset);
        printf(st->from_due ? " before the due date" : " after arrival");
        printf(", template '%s'", st->template);
        if (st->quiet_start != st->quiet_end)
            printf(", not between %02d:%02d and %02d:%02d", st->quiet_start / 60,
                   st->quiet_start % 60, st->quiet_end / 60, st->quiet_end % 60);
        if (st->business_days)
            printf(", business days only");
        printf(", up to %d retries (backoff ", st->retry_max);
        print_duration(st->retry_backoff);
        printf(", doubling)\n");
        if (created != NO_TIME)
            print_plan(st, created, due);
    }
    printf("the ladder stops as soon as the message is read.\n");
    config_free(cfg);
    return 0;
}

int ctl_status(const struct ctl *ctl, const char *message_id)
{
    const char *params[] = { message_id };
    PGconn *conn = ctl_connect(ctl);
    int rc = 1;

    if (conn == NULL)
        return 1;
    PGresult *m = PQexecParams(conn,
        "SELECT m.sender, m.kind, m.subject, m.created_at, m.read_at, e.policy, e.state, e.step,"
        "       e.next_at FROM herinnerd.messages m"
        "  LEFT JOIN herinnerd.escalations e ON e.message_id = m.id WHERE m.id = $1::bigint",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(m) != PGRES_TUPLES_OK || PQntuples(m) != 1) {
        fprintf(stderr, "herinnerctl: no message %s%s%s\n", message_id,
                PQresultStatus(m) != PGRES_TUPLES_OK ? ": " : "",
                PQresultStatus(m) != PGRES_TUPLES_OK ? PQresultErrorMessage(m) : "");
        goto out;
    }
    printf("message %s from %s (%s): %s\n  arrived %s, %s\n", message_id, PQgetvalue(m, 0, 0),
           PQgetvalue(m, 0, 1), PQgetvalue(m, 0, 2), PQgetvalue(m, 0, 3),
           PQgetisnull(m, 0, 4) ? "unread" : "read");
    if (!PQgetisnull(m, 0, 4))
        printf("  read at %s\n", PQgetvalue(m, 0, 4));
    if (PQgetisnull(m, 0, 5))
        printf("  not (yet) adopted by herinnerd\n");
    else if (strcmp(PQgetvalue(m, 0, 6), "active") == 0)
        printf("  escalation: policy '%s', active, step %s next at %s\n", PQgetvalue(m, 0, 5),
               PQgetvalue(m, 0, 7), PQgetvalue(m, 0, 8));
    else
        printf("  escalation: policy '%s', %s\n", PQgetvalue(m, 0, 5), PQgetvalue(m, 0, 6));
    PGresult *a = PQexecParams(conn,
        "SELECT created_at, step, try, channel, outcome, detail, coalesce(address, '')"
        "  FROM herinnerd.attempts WHERE message_id = $1::bigint ORDER BY id",
        1, NULL, params, NULL, NULL, 0);
    for (int i = 0; PQresultStatus(a) == PGRES_TUPLES_OK && i < PQntuples(a); i++)
        printf("  %s  step %s try %s  %-5s %-17s %s%s%s\n", PQgetvalue(a, i, 0),
               PQgetvalue(a, i, 1), PQgetvalue(a, i, 2), PQgetvalue(a, i, 3), PQgetvalue(a, i, 4),
               PQgetvalue(a, i, 5), *PQgetvalue(a, i, 6) ? " -> " : "", PQgetvalue(a, i, 6));
    PQclear(a);
    rc = 0;
out:
    PQclear(m);
    PQfinish(conn);
    return rc;
}
