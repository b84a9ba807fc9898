/* herinnerctl's attempt rows: one at a time, through the daemon's own ledger statement
 * (ledger_sql.h), so there is one INSERT shape and one de-duplication rule for every writer. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ledger_sql.h"
#include "pgarray.h"

/* VALUE as a one-element array literal; NULL stays SQL NULL inside the array. */
static char *one(const char *value)
{
    struct pg_array a;

    pg_array_open(&a);
    pg_array_add(&a, value);
    return pg_array_close(&a);
}

int ctl_record_attempt(PGconn *conn, const char *instance, const struct ctl_attempt *at)
{
    char id[32], step[16];
    char *col[17] = { 0 };
    int rc = -1;

    snprintf(id, sizeof(id), "%" PRId64, at->message_id);
    snprintf(step, sizeof(step), "%d", at->step);
    const char *values[17] = { id, step, NULL, at->channel, at->outcome, at->detail, at->address,
                               at->external_id, NULL, NULL, at->fact, at->refers,
                               NULL, NULL, NULL, NULL, NULL };
    const char *params[19] = { instance, NULL /* the session's own chain */ };
    for (int i = 0; i < 17; i++) {
        if ((col[i] = one(values[i])) == NULL) {
            fprintf(stderr, "herinnerctl: out of memory\n");
            goto out;
        }
        params[2 + i] = col[i];
    }
    /* a race with another writer of the same fact (23505): the second run finds it recorded */
    for (int tries = 0; tries < 3 && rc == -1; tries++) {
        PGresult *r = PQexecParams(conn, SQL_LEDGER_WRITE, 19, NULL, params, NULL, NULL, 0);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            rc = 0;
        else if (!state || strcmp(state, "23505") != 0) {
            fprintf(stderr, "herinnerctl: recording message %s step %d (%s) failed: %s", id,
                    at->step + 1, at->outcome, PQresultErrorMessage(r));
            PQclear(r);
            break;
        }
        PQclear(r);
    }
out:
    for (int i = 0; i < 17; i++)
        free(col[i]);
    return rc;
}
