/* herinnerctl bounce [RECIPIENT]: a delivery status notification on standard input becomes an
 * attempt row for the e-mail it is about, for a Postfix pipe transport such as
 *
 *   herinnerd-bounce unix - n n - - pipe
 *     flags=Rq user=herinnerd argv=/usr/bin/herinnerctl bounce ${recipient}
 *
 * The e-mail is found by its VERP token: in RECIPIENT, or where the report was delivered
 * (Delivered-To, X-Original-To, Envelope-to, To) in the shape of email.return_path, or in the
 * Message-ID of the returned message. 5.x.x is a permanent-failure and brings the next step
 * forward to now; 4.x.x (a delay warning) a temporary-failure; a success report is ignored.
 *
 * Exit codes (sysexits.h), which Postfix acts on: 0 recorded, already recorded or nothing to
 * record; 65 not a report we can read, 67 no e-mail of ours with that token (Postfix returns
 * both to the postmaster); 75 the configuration or the database failed (Postfix tries again). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "config.h"
#include "ctl.h"
#include "dsn.h"

#define MAX_REPORT (4 << 20)    /* the report comes first; of the returned message, the headers */
#define BOUNCE_FACT "bounce:%s:%s"

/* Standard input, its first MAX_REPORT bytes kept; the rest is read and dropped, so that the
 * MTA's write never fails. NULL without memory. */
static char *read_stdin(size_t *len)
{
    char *buf = malloc(MAX_REPORT + 1), drop[65536];
    size_t n = 0, got;

    if (buf == NULL)
        return NULL;
    while ((got = fread(n < MAX_REPORT ? buf + n : drop, 1,
                        n < MAX_REPORT ? MAX_REPORT - n : sizeof(drop), stdin)) > 0)
        if (n < MAX_REPORT)
            n += got;
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The token naming our e-mail: RECIPIENT (an address or the bare token), the addresses the
 * report was delivered to, the returned Message-ID. */
static int find_token(const struct config *cfg, const char *recipient, const struct dsn *d,
                      char *token, size_t len)
{
    const char *pattern = cfg->email.return_path;

    if (recipient) {
        if (pattern && dsn_token_from_address(pattern, recipient, token, len) == 0)
            return 0;
        if (dsn_token_from_address("{token}", recipient, token, len) == 0)
            return 0;
    }
    for (int i = 0; pattern && i < d->nenvelope; i++)
        if (dsn_token_from_address(pattern, d->envelope[i], token, len) == 0)
            return 0;
    return dsn_token_from_message_id(d->message_id, token, len);
}

/* The e-mail with this token: the returned Message-ID if it is ours, else the one the
 * configured sender domain gives. 1 found (its row's values filled in), 0 not, -1 error. */
static int find_send(PGconn *conn, const struct config *cfg, const struct dsn *d,
                     const char *token, int64_t *message_id, int *step, char *external_id,
                     size_t len)
{
    char mine[DSN_TOKEN_MAX], candidates[700] = "{";
    const char *at = cfg->email.from ? strrchr(cfg->email.from, '@') : NULL;

    /* a text[] literal; both values are made of characters that need no quoting in it */
    if (dsn_token_from_message_id(d->message_id, mine, sizeof(mine)) == 0 &&
        strcmp(mine, token) == 0 && strpbrk(d->message_id, "\",{}\\ ") == NULL)
        snprintf(candidates + 1, sizeof(candidates) - 1, "%s,", d->message_id);
    if (at) {
        size_t n = strlen(candidates), dl = strcspn(at + 1, ">\" ");
        snprintf(candidates + n, sizeof(candidates) - n, "<herinnerd.%s@%.*s>,", token, (int)dl,
                 at + 1);
    }
    size_t n = strlen(candidates);
    if (candidates[n - 1] == ',')
        candidates[n - 1] = '}';
    else
        return 0;
    const char *params[] = { candidates };
    PGresult *r = PQexecParams(conn,
        "SELECT message_id, step, external_id FROM herinnerd.attempts"
        " WHERE external_id = ANY($1::text[]) AND channel = 'email' AND outcome = 'sent'"
        " ORDER BY id DESC LIMIT 1", 1, NULL, params, NULL, NULL, 0);
    int rc = -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "herinnerctl: cannot look up the e-mail: %s", PQresultErrorMessage(r));
    else if ((rc = PQntuples(r)) == 1) {
        *message_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *step = atoi(PQgetvalue(r, 0, 1));
        snprintf(external_id, len, "%s", PQgetvalue(r, 0, 2));
    }
    PQclear(r);
    return rc;
}

/* Is FACT recorded? 1, 0, or -1 on error. */
static int fact_recorded(PGconn *conn, const char *fact)
{
    const char *params[] = { fact };
    PGresult *r = PQexecParams(conn, "SELECT 1 FROM herinnerd.attempts WHERE fact = $1", 1, NULL,
                               params, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) > 0 : -1;
    if (rc == -1)
        fprintf(stderr, "herinnerctl: %s", PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

static int bring_forward(PGconn *conn, int64_t message_id, int step)
{
    char id[32], st[16];

    snprintf(id, sizeof(id), "%" PRId64, message_id);
    snprintf(st, sizeof(st), "%d", step);
    const char *params[] = { id, st };
    PGresult *r = PQexecParams(conn, "SELECT herinnerd.bring_forward($1::bigint, $2::int)", 2,
                               NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? strcmp(PQgetvalue(r, 0, 0), "t") == 0 : -1;
    if (rc == -1)
        fprintf(stderr, "herinnerctl: the next step could not be brought forward: %s",
                PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

/* Record bounce D for MESSAGE_ID's STEP, the e-mail EXTERNAL_ID, and bring its next step
 * forward on a permanent failure. MEMBER: one of the other messages the same e-mail named (its
 * fact names the message). -1 on a database error. */
static int record_bounce(PGconn *conn, const struct config *cfg, const struct dsn *d,
                         int64_t message_id, int step, const char *external_id, int member)
{
    char detail[700], fact[400];
    int permanent = d->status[0] == '5';
    const char *outcome = permanent ? "permanent-failure" : "temporary-failure";

    snprintf(detail, sizeof(detail), "bounce %s (%s)%s%s", d->status, d->action,
             d->diagnostic[0] ? ": " : "", d->diagnostic);
    snprintf(fact, sizeof(fact), BOUNCE_FACT, external_id, d->status);
    if (member) {
        size_t n = strlen(fact);
        snprintf(fact + n, sizeof(fact) - n, ":%" PRId64, message_id);
    }
    struct ctl_attempt at = { .message_id = message_id, .step = step, .channel = "email",
                              .outcome = outcome, .detail = detail, .external_id = external_id,
                              .fact = fact, .refers = external_id };
    int before = fact_recorded(conn, fact);
    if (before == -1 || (before == 0 && ctl_record_attempt(conn, cfg->instance, &at) == -1))
        return -1;
    int after = before ? 1 : fact_recorded(conn, fact);
    if (after == -1)
        return -1;
    if (before)
        printf("message %" PRId64 " step %d: this bounce is recorded already\n", message_id, step);
    else if (!after)
        printf("message %" PRId64 " step %d: not recorded: the fate of that e-mail is known "
               "already (delivered or failed)\n", message_id, step);
    else
        printf("message %" PRId64 " step %d: %s: %s\n", message_id, step, outcome, detail);
    if (permanent && after) {
        int moved = bring_forward(conn, message_id, step);
        if (moved == -1)
            return -1;
        if (moved)
            printf("message %" PRId64 ": the next step is due now\n", message_id);
    }
    return 0;
}

int ctl_bounce(const struct ctl *ctl, int argc, char **argv)
{
    const char *recipient = argc > 1 ? argv[1] : NULL, *why = NULL;
    char token[DSN_TOKEN_MAX], external_id[300];
    struct dsn d;
    size_t len;
    int64_t message_id = 0;
    int step = 0, rc = EX_TEMPFAIL;
    PGconn *conn = NULL;

    if (argc > 2 || (recipient && recipient[0] == '-')) {
        fprintf(stderr, "usage: herinnerctl bounce [RECIPIENT] <DSN\n");
        return 2;
    }
    char *text = read_stdin(&len);
    struct config *cfg = ctl_load_config(ctl);
    if (text == NULL || cfg == NULL) {
        fprintf(stderr, "herinnerctl: bounce not read%s; try again later\n",
                text ? " (configuration)" : ": out of memory");
        goto out;
    }
    if (dsn_parse(text, len, &d, &why) == -1) {
        fprintf(stderr, "herinnerctl: not a delivery status notification: %s\n", why);
        rc = EX_DATAERR;
        goto out;
    }
    if (d.status[0] == '2' || (strcmp(d.action, "failed") != 0 && strcmp(d.action, "delayed") != 0)) {
        printf("a report of success (%s %s): nothing to record\n", d.action, d.status);
        rc = EX_OK;
        goto out;
    }
    if (find_token(cfg, recipient, &d, token, sizeof(token)) == -1) {
        fprintf(stderr, "herinnerctl: the report names no e-mail of ours (no token in the "
                        "recipient%s or the returned Message-ID)\n",
                cfg->email.return_path ? ", its delivery headers" : "");
        rc = EX_NOUSER;
        goto out;
    }
    if ((conn = ctl_connect(ctl)) == NULL || !ctl_schema_ready(conn))
        goto out;
    int found = find_send(conn, cfg, &d, token, &message_id, &step, external_id,
                          sizeof(external_id));
    if (found <= 0) {
        if (found == 0)
            fprintf(stderr, "herinnerctl: no e-mail was sent with token %s\n", token);
        rc = found == 0 ? EX_NOUSER : EX_TEMPFAIL;
        goto out;
    }

    if (record_bounce(conn, cfg, &d, message_id, step, external_id, 0) == -1)
        goto out;
    /* one e-mail about several messages (a policy's bundle): the bounce is theirs too */
    const char *params[] = { external_id, "" };
    char id[32];
    snprintf(id, sizeof(id), "%" PRId64, message_id);
    params[1] = id;
    PGresult *others = PQexecParams(conn,
        "SELECT DISTINCT message_id, step FROM herinnerd.attempts WHERE external_id = $1"
        " AND channel = 'email' AND outcome = 'sent' AND message_id <> $2::bigint"
        " ORDER BY message_id", 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(others) != PGRES_TUPLES_OK) {
        fprintf(stderr, "herinnerctl: cannot look up the other messages of the e-mail: %s",
                PQresultErrorMessage(others));
        PQclear(others);
        goto out;
    }
    for (int i = 0; i < PQntuples(others); i++)
        if (record_bounce(conn, cfg, &d, strtoll(PQgetvalue(others, i, 0), NULL, 10),
                          atoi(PQgetvalue(others, i, 1)), external_id, 1) == -1) {
            PQclear(others);
            goto out;
        }
    PQclear(others);
    rc = EX_OK;
out:
    if (conn)
        PQfinish(conn);
    config_free(cfg);
    free(text);
    return rc;
}
