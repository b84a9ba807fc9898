/* herinnerctl check | explain | status: answers for admins and help desks.
 *
 * Times are shown in the configuration's time zone (the one the calendar rules use) with their
 * offset; text from the database or the command line is escaped before it reaches a terminal,
 * so a sender or detail cannot move the cursor, colour the screen or break a line. */
#include <errno.h>
#include <inttypes.h>
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

/* S for a terminal: C0 and C1 control characters, DEL and the bidirectional overrides (which
 * reorder what follows) as visible escapes; everything else (valid UTF-8 from the database)
 * as is. Returns one of CTL_PRINTABLE_BUFFERS static buffers in turn (so that many can be
 * used in one printf); text longer than about 1000 bytes is cut with "...". */
const char *ctl_printable(const char *s)
{
    static char buf[CTL_PRINTABLE_BUFFERS][4096];
    static int which;
    char *out = buf[which++ % CTL_PRINTABLE_BUFFERS];
    size_t n = 0, cap = sizeof(buf[0]) - 16;
    const unsigned char *p = (const unsigned char *)s;

    for (; *p && n < cap; p++) {
        if (*p == '\n')
            n += (size_t)snprintf(out + n, 16, "\\n");
        else if (*p == '\t')
            n += (size_t)snprintf(out + n, 16, "\\t");
        else if (*p == '\r')
            n += (size_t)snprintf(out + n, 16, "\\r");
        else if (*p < 0x20 || *p == 0x7f)
            n += (size_t)snprintf(out + n, 16, "\\x%02x", *p);
        else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {        /* U+0080..U+009F */
            n += (size_t)snprintf(out + n, 16, "\\u%04x", p[1]);
            p++;
        } else if (p[0] == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
                                    (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9))) {
            /* U+202A..U+202E, U+2066..U+2069 */
            n += (size_t)snprintf(out + n, 16, "\\u%04x",
                                  ((p[1] & 0x0f) << 6 | (p[2] & 0x3f)) | 0x2000);
            p += 2;
        } else
            out[n++] = (char)*p;
    }
    if (*p)
        n += (size_t)snprintf(out + n, 16, "...");
    out[n] = '\0';
    return out;
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

/* "2026-11-23" or "2026-11-23 10:00[:00]" (also with a T) in the process's zone. */
static int parse_local_time(const char *s, double *t)
{
    static const char *const formats[] = { "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                                           "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d" };

    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        struct tm tm = { 0 }, want;
        const char *end = strptime(s, formats[i], &tm);
        if (end == NULL || *end != '\0')
            continue;
        tm.tm_isdst = -1;
        want = tm;
        time_t secs = mktime(&tm);
        /* mktime moves 2026-02-30 to March: that is not a date */
        if (secs == (time_t)-1 || tm.tm_mday != want.tm_mday || tm.tm_mon != want.tm_mon)
            return -1;
        *t = (double)secs;
        return 0;
    }
    return -1;
}

/* "Mon 2026-11-23 10:00+01" (the offset as PostgreSQL's OF writes it) */
static const char *format_local_time(double t, char *buf, size_t len)
{
    time_t secs = (time_t)t;
    struct tm tm;
    char off[48];

    localtime_r(&secs, &tm);
    long gmtoff = tm.tm_gmtoff, a = gmtoff < 0 ? -gmtoff : gmtoff;
    if (a % 3600)
        snprintf(off, sizeof(off), "%c%02ld:%02ld", gmtoff < 0 ? '-' : '+', a / 3600, a % 3600 / 60);
    else
        snprintf(off, sizeof(off), "%c%02ld", gmtoff < 0 ? '-' : '+', a / 3600);
    size_t n = strftime(buf, len, "%a %Y-%m-%d %H:%M", &tm);
    snprintf(buf + n, len - n, "%s", off);
    return buf;
}

int ctl_explain(const struct ctl *ctl, int argc, char **argv)
{
    const char *kind = NULL, *created_arg = NULL, *due_arg = NULL;
    double created = (double)time(NULL), due = NO_TIME;
    char when[64];
    struct config *cfg;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--created") == 0 && i + 1 < argc)
            created_arg = argv[++i];
        else if (strcmp(argv[i], "--due") == 0 && i + 1 < argc)
            due_arg = argv[++i];
        else if (argv[i][0] != '-' && kind == NULL)
            kind = argv[i];
        else
            goto usage;
    }
    if (kind == NULL)
        goto usage;
    if ((cfg = ctl_load_config(ctl)) == NULL)
        return 1;
    if (cfg->timezone) {        /* the calendar rules' zone: quiet hours, weekends */
        setenv("TZ", cfg->timezone, 1);
        tzset();
    }
    const char *bad = created_arg && parse_local_time(created_arg, &created) == -1 ? "--created"
                    : due_arg && parse_local_time(due_arg, &due) == -1 ? "--due" : NULL;
    if (bad) {
        fprintf(stderr, "herinnerctl: %s '%s' is not a date or time; write for example "
                        "2026-11-23 or '2026-11-23 10:00'\n", bad,
                ctl_printable(strcmp(bad, "--due") == 0 ? due_arg : created_arg));
        config_free(cfg);
        return 2;
    }
    const struct policy *po = config_policy_for_kind(cfg, kind);
    if (po == NULL) {
        printf("messages of kind '%s' match no policy: they are not escalated\n",
               ctl_printable(kind));
        config_free(cfg);
        return 1;
    }
    printf("messages of kind '%s' follow policy '%s'%s:\n", ctl_printable(kind),
           ctl_printable(po->name), po->hide_subject ? " (subject hidden from e-mail and SMS)" : "");
    for (size_t i = 0; i < po->nsteps; i++) {
        const struct step *st = &po->steps[i];
        printf("  step %zu: %-5s ", i, channel_name(st->channel));
        print_duration(st->offset);
        printf(st->from_due ? " before the due date" : " after arrival");
        printf(", template '%s'", ctl_printable(st->template));
        if (st->quiet_start != st->quiet_end)
            printf(", not between %02d:%02d and %02d:%02d", st->quiet_start / 60,
                   st->quiet_start % 60, st->quiet_end / 60, st->quiet_end % 60);
        if (st->business_days)
            printf(", business days only");
        printf(", up to %d retries (backoff ", st->retry_max);
        print_duration(st->retry_backoff);
        printf(", doubling)\n");
        /* on schedule, as if every earlier step succeeded on time */
        double t = policy_step_time(st, created, due, created);
        char why[512];
        policy_deferral(st, created, due, why, sizeof(why)); /* holidays, weekends, quiet hours */
        if (created_arg || due_arg)
            printf("          %s%s%s\n", t == NO_TIME ? "never: the message has no due date"
                                                      : format_local_time(t, when, sizeof(when)),
                   *why ? ", " : "", why);
    }
    if (created_arg || due_arg)
        printf("times in %s, for a message that arrived %s%s%s\n",
               cfg->timezone ? cfg->timezone : "the host's time zone",
               format_local_time(created, when, sizeof(when)), due == NO_TIME ? "" : ", due ",
               due == NO_TIME ? "" : format_local_time(due, when + 32, 32));
    if (po->bundle > 0) {
        printf("one notice per person: the recipient's other unread messages whose steps on "
               "the same channel fall due within ");
        print_duration(po->bundle);
        printf(" go in the same e-mail, SMS or letter.\n");
    }
    printf("the ladder stops as soon as the message is read.\n");
    config_free(cfg);
    return 0;
usage:
    fprintf(stderr, "usage: herinnerctl explain KIND [--created T] [--due T]\n");
    return 2;
}

#define TIME(col) "to_char(" col ", 'YYYY-MM-DD HH24:MI:SSOF')"

int ctl_status(const struct ctl *ctl, const char *message_id)
{
    char *end;
    int64_t id;
    char idbuf[32];

    errno = 0;
    id = strtoll(message_id, &end, 10);
    if (end == message_id || *end != '\0' || errno != 0 || id <= 0) {
        fprintf(stderr, "herinnerctl: '%s' is not a message id: give the number of a message, "
                        "e.g. herinnerctl status 42\n", ctl_printable(message_id));
        return 2;
    }
    snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
    const char *params[] = { idbuf };
    PGconn *conn = ctl_connect(ctl);
    int rc = 1;

    if (conn == NULL)
        return 1;
    if (!ctl_schema_ready(conn)) {
        PQfinish(conn);
        return 1;
    }
    /* one message's life as herinnerd.message_timeline has it: what a sender's portal sees */
    PGresult *z = PQexec(conn, "SELECT current_setting('TimeZone')");
    PGresult *t = PQexecParams(conn,
        "SELECT sender, kind, subject, " TIME("due_at") ", " TIME("at") ", event, step, try,"
        "       channel, outcome, coalesce(detail, ''), coalesce(address, ''), policy, escalation,"
        "       next_step, coalesce(next_channel, ''), " TIME("next_at")
        "  FROM herinnerd.message_timeline WHERE message_id = $1::bigint"
        " ORDER BY at, attempt_id NULLS FIRST",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(t) != PGRES_TUPLES_OK) {
        fprintf(stderr, "herinnerctl: cannot read message %s: %s", idbuf, PQresultErrorMessage(t));
        goto out;
    }
    int n = PQntuples(t);
    if (n == 0) {
        fprintf(stderr, "herinnerctl: there is no message %s\n", idbuf);
        goto out;
    }
#define V(i, c) ctl_printable(PQgetvalue(t, i, c))
    printf("message %s from %s (%s): %s\n", idbuf, V(0, 0), V(0, 1), V(0, 2));
    if (!PQgetisnull(t, 0, 3))
        printf("  due %s\n", V(0, 3));
    int read = 0;
    for (int i = 0; i < n; i++) {
        const char *event = PQgetvalue(t, i, 5);
        if (strcmp(event, "attempt") == 0)
            printf("  %s  step %s try %s  %-5s %-17s %s%s%s\n", V(i, 4), V(i, 6), V(i, 7),
                   V(i, 8), V(i, 9), V(i, 10), *PQgetvalue(t, i, 11) ? " -> " : "", V(i, 11));
        else
            printf("  %s  %s\n", V(i, 4), V(i, 5));
        read |= strcmp(event, "read") == 0;
    }
    const char *state = PQgetvalue(t, 0, 13);
    if (PQgetisnull(t, 0, 12))
        printf("  %s, not (yet) adopted by herinnerd\n", read ? "read" : "unread");
    else if (strcmp(state, "sending") == 0)
        printf("  %s; policy '%s': step %s (%s) is being tried now\n", read ? "read" : "unread",
               V(0, 12), V(0, 14), V(0, 15));
    else if (strcmp(state, "active") == 0)
        printf("  %s; policy '%s': next step %s (%s) at %s\n", read ? "read" : "unread",
               V(0, 12), V(0, 14), V(0, 15), V(0, 16));
    else
        printf("  %s; policy '%s': %s\n", read ? "read" : "unread", V(0, 12), V(0, 13));
    if (PQresultStatus(z) == PGRES_TUPLES_OK)
        printf("  (times in %s)\n", ctl_printable(PQgetvalue(z, 0, 0)));
#undef V
    rc = 0;
out:
    PQclear(z);
    PQclear(t);
    PQfinish(conn);
    return rc;
}
