/* herinnerctl audit export: the auditor's view of the append-only attempts (verify and
 * checkpoint: ctl_chain.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* ---- audit export ----
 * csv    RFC 4180: CRLF line ends, a header row, fields quoted when they hold a comma, a quote,
 *        CR or LF (quotes doubled). A cell that begins with = + - @ TAB or CR would be taken
 *        for a formula by a spreadsheet: it gets a leading ' (OWASP "CSV injection").
 *        --bom puts a UTF-8 byte order mark first, for spreadsheets that need one.
 * json   one JSON array of objects, written as the rows come.
 * jsonl  one JSON object per line (JSON Lines).
 * Rows come from a cursor in batches: memory stays constant whatever the size of the history.
 * --since/--until use the index on (created_at, id) (sql/008_ops.sql); rows are in time order. */

#define EXPORT_BATCH "1000"

#define EXPORT_FROM \
    "  FROM herinnerd.attempts a JOIN herinnerd.messages m ON m.id = a.message_id" \
    " WHERE ($1::timestamptz IS NULL OR a.created_at >= $1::timestamptz)" \
    "   AND ($2::timestamptz IS NULL OR a.created_at < $2::timestamptz)" \
    " ORDER BY a.created_at, a.id"

#define EXPORT_TIME "to_char(a.created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM')"

static const char *const export_columns[] = {
    "id", "created_at", "message_id", "sender", "kind", "step", "try", "channel", "outcome",
    "detail", "address", "external_id", "instance", "config_sha256", "hash",
};
#define EXPORT_NCOLUMNS (sizeof(export_columns) / sizeof(export_columns[0]))

#define SQL_EXPORT_CSV \
    "DECLARE export NO SCROLL CURSOR FOR" \
    " SELECT a.id, " EXPORT_TIME ", a.message_id, m.sender, m.kind, a.step, a.try, a.channel," \
    "        a.outcome, a.detail, coalesce(a.address, ''), coalesce(a.external_id, '')," \
    "        a.instance, a.config_sha256, encode(a.hash, 'hex')" EXPORT_FROM

#define SQL_EXPORT_JSON \
    "DECLARE export NO SCROLL CURSOR FOR" \
    " SELECT json_build_object('id', a.id, 'created_at', " EXPORT_TIME "," \
    "        'message_id', a.message_id, 'sender', m.sender, 'kind', m.kind, 'step', a.step," \
    "        'try', a.try, 'channel', a.channel, 'outcome', a.outcome, 'detail', a.detail," \
    "        'address', a.address, 'external_id', a.external_id, 'instance', a.instance," \
    "        'config_sha256', a.config_sha256, 'hash', encode(a.hash, 'hex'))::text" EXPORT_FROM

enum export_format { EXPORT_CSV, EXPORT_JSON, EXPORT_JSONL };

static void csv_field(FILE *out, const char *s, int last)
{
    int formula = s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;

    if (!formula && strpbrk(s, ",\"\r\n") == NULL)
        fputs(s, out);
    else {
        putc('"', out);
        if (formula)
            putc('\'', out);
        for (; *s; s++) {
            if (*s == '"')
                putc('"', out);
            putc(*s, out);
        }
        putc('"', out);
    }
    fputs(last ? "\r\n" : ",", out);
}

/* A time the auditor typed, checked by PostgreSQL (in the session's zone) before the export. */
static int valid_time(PGconn *conn, const char *option, const char *value)
{
    const char *params[] = { value };
    PGresult *r;
    int ok;

    if (value == NULL)
        return 1;
    r = PQexecParams(conn, "SELECT $1::timestamptz", 1, NULL, params, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (!ok)
        fprintf(stderr, "herinnerctl: %s '%s' is not a date or time; write for example "
                        "2026-11-01 or '2026-11-01 08:00' (in the configured time zone) or "
                        "2026-11-01T08:00:00+01:00\n", option, value);
    return ok;
}

static int audit_export(PGconn *conn, int argc, char **argv)
{
    const char *since = NULL, *until = NULL, *format = "csv";
    enum export_format fmt;
    int bom = 0, rc = 1, first = 1;
    FILE *out = stdout;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
            since = argv[++i];
        else if (strcmp(argv[i], "--until") == 0 && i + 1 < argc)
            until = argv[++i];
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            format = argv[++i];
        else if (strcmp(argv[i], "--bom") == 0)
            bom = 1;
        else {
            fprintf(stderr, "usage: herinnerctl audit export [--since T] [--until T] "
                            "[--format csv|json|jsonl] [--bom]\n");
            return 2;
        }
    }
    if (strcmp(format, "csv") == 0)
        fmt = EXPORT_CSV;
    else if (strcmp(format, "json") == 0)
        fmt = EXPORT_JSON;
    else if (strcmp(format, "jsonl") == 0)
        fmt = EXPORT_JSONL;
    else {
        fprintf(stderr, "herinnerctl: --format must be csv, json (one array) or jsonl (one "
                        "object per line), not '%s'\n", format);
        return 2;
    }
    if (bom && fmt != EXPORT_CSV) {
        fprintf(stderr, "herinnerctl: --bom is for CSV only (JSON has no byte order mark)\n");
        return 2;
    }
    if (!ctl_schema_ready(conn))
        return 1;
    if (!valid_time(conn, "--since", since) || !valid_time(conn, "--until", until))
        return 2;

    /* one snapshot for the whole export */
    if (!ctl_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        return 1;
    const char *params[] = { since, until };
    PGresult *r = PQexecParams(conn, fmt == EXPORT_CSV ? SQL_EXPORT_CSV : SQL_EXPORT_JSON, 2,
                               NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "herinnerctl: %s", PQresultErrorMessage(r));
    PQclear(r);
    if (!ok)
        goto out;

    if (bom)
        fputs("\xEF\xBB\xBF", out);
    if (fmt == EXPORT_CSV)
        for (size_t c = 0; c < EXPORT_NCOLUMNS; c++)
            csv_field(out, export_columns[c], c == EXPORT_NCOLUMNS - 1);
    else if (fmt == EXPORT_JSON)
        fputs("[", out);
    for (;;) {
        r = PQexec(conn, "FETCH " EXPORT_BATCH " FROM export");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "herinnerctl: %s", PQresultErrorMessage(r));
            PQclear(r);
            goto out;
        }
        int n = PQntuples(r);
        for (int i = 0; i < n; i++) {
            if (fmt == EXPORT_CSV) {
                for (size_t c = 0; c < EXPORT_NCOLUMNS; c++)
                    csv_field(out, PQgetvalue(r, i, (int)c), c == EXPORT_NCOLUMNS - 1);
            } else {
                fputs(fmt == EXPORT_JSONL ? "" : first ? "\n" : ",\n", out);
                fputs(PQgetvalue(r, i, 0), out);
                if (fmt == EXPORT_JSONL)
                    putc('\n', out);
            }
            first = 0;
        }
        PQclear(r);
        if (n == 0)
            break;
    }
    if (fmt == EXPORT_JSON)
        fputs(first ? "]\n" : "\n]\n", out);
    rc = 0;
out:
    PQclear(PQexec(conn, rc == 0 ? "COMMIT" : "ROLLBACK"));
    if (fflush(out) != 0 || ferror(out)) {
        fprintf(stderr, "herinnerctl: writing the export failed: %m\n");
        rc = 1;
    }
    return rc;
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
