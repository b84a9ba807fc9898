/* herinnerctl audit export: the auditor's view of the append-only attempts (verify and
 * checkpoint: ctl_chain.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static void csv_field(const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n") == NULL)
        fputs(s, stdout);
    else {
        putchar('"');
        for (; *s; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    }
    putchar(last ? '\n' : ',');
}

static int audit_export(PGconn *conn, int argc, char **argv)
{
    const char *since = NULL, *until = NULL, *format = "csv";

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
            since = argv[++i];
        else if (strcmp(argv[i], "--until") == 0 && i + 1 < argc)
            until = argv[++i];
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            format = argv[++i];
        else {
            fprintf(stderr, "usage: herinnerctl audit export [--since T] [--until T] [--format csv|json]\n");
            return 2;
        }
    }
    int json = strcmp(format, "json") == 0;
    if (!json && strcmp(format, "csv") != 0) {
        fprintf(stderr, "herinnerctl: --format must be csv or json\n");
        return 2;
    }
    const char *params[] = { since, until };
    PGresult *r = PQexecParams(conn,
        "SELECT a.id, a.created_at, a.message_id, m.sender, m.kind, a.step, a.try, a.channel,"
        "       a.outcome, a.detail, coalesce(a.address, ''), coalesce(a.external_id, ''),"
        "       a.instance, a.config_sha256, encode(a.hash, 'hex'),"
        "       row_to_json(x)::text"
        "  FROM herinnerd.attempts a JOIN herinnerd.messages m ON m.id = a.message_id,"
        "       LATERAL (SELECT a.id, a.created_at, a.message_id, m.sender, m.kind, a.step,"
        "                       a.try, a.channel, a.outcome, a.detail, a.address, a.external_id,"
        "                       a.instance, a.config_sha256, encode(a.hash, 'hex') AS hash) x"
        " WHERE ($1::timestamptz IS NULL OR a.created_at >= $1::timestamptz)"
        "   AND ($2::timestamptz IS NULL OR a.created_at < $2::timestamptz)"
        " ORDER BY a.id", 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "herinnerctl: %s", PQresultErrorMessage(r));
        PQclear(r);
        return 1;
    }
    if (!json)
        printf("id,created_at,message_id,sender,kind,step,try,channel,outcome,detail,address,"
               "external_id,instance,config_sha256,hash\n");
    for (int i = 0; i < PQntuples(r); i++) {
        if (json) {
            printf("%s\n", PQgetvalue(r, i, 15));    /* JSON Lines */
            continue;
        }
        for (int c = 0; c < 15; c++)
            csv_field(PQgetvalue(r, i, c), c == 14);
    }
    PQclear(r);
    return 0;
}

int ctl_audit(const struct ctl *ctl, int argc, char **argv)
{
    int rc;
    PGconn *conn;

    if (strcmp(argv[0], "export") != 0) {
        fprintf(stderr, "usage: herinnerctl audit export|verify|checkpoint\n");
        return 2;
    }
    if ((conn = ctl_connect(ctl)) == NULL)
        return 1;
    rc = audit_export(conn, argc, argv);
    PQfinish(conn);
    return rc;
}
