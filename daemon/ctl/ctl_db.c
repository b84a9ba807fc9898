/* herinnerctl db init: apply sql/NNN_*.sql in order, each in its own transaction, skipping the
 * ones schema_version already records. Re-running it is harmless. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildinfo.h"
#include "ctl.h"

static int sql_file(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 8 && e->d_name[0] >= '0' && e->d_name[0] <= '9' && strcmp(e->d_name + n - 4, ".sql") == 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;

    if (f == NULL)
        return NULL;
    FILE *m = open_memstream(&buf, &len);
    char chunk[8192];
    size_t r;
    while (m && (r = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, r, m);
    if (m)
        fclose(m);
    fclose(f);
    return buf;
}

static int applied_version(PGconn *conn)
{
    PGresult *r = PQexec(conn, "SELECT coalesce(max(version), 0) FROM herinnerd.schema_version");
    int v = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return v;
}

static int exec_ok(PGconn *conn, const char *sql, const char *what)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "herinnerctl: %s: %s", what, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

int ctl_db_init(const struct ctl *ctl, int argc, char **argv)
{
    const char *dir = getenv("HERINNERD_SQLDIR") ? getenv("HERINNERD_SQLDIR") : SQLDIR;
    struct dirent **files = NULL;
    int n, rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sqldir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: herinnerctl db init [--sqldir DIR]\n");
            return 2;
        }
    }
    PGconn *conn = ctl_connect(ctl);
    if (conn == NULL)
        return 1;
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    if ((n = scandir(dir, &files, sql_file, alphasort)) < 0) {
        fprintf(stderr, "herinnerctl: cannot read %s\n", dir);
        goto out;
    }
    int have = applied_version(conn), applied = 0;
    for (int i = 0; i < n; i++) {
        int version = atoi(files[i]->d_name);
        if (version <= have)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]->d_name);
        char *sql = slurp(path);
        if (sql == NULL) {
            fprintf(stderr, "herinnerctl: cannot read %s\n", path);
            goto out;
        }
        int ok = exec_ok(conn, "BEGIN", "BEGIN") && exec_ok(conn, sql, path) &&
                 exec_ok(conn, "COMMIT", "COMMIT");
        free(sql);
        if (!ok) {
            PQclear(PQexec(conn, "ROLLBACK"));
            goto out;
        }
        printf("applied %s\n", files[i]->d_name);
        applied++;
    }
    printf("schema at version %d%s\n", applied_version(conn), applied ? "" : " (nothing to do)");
    rc = 0;
out:
    for (int i = 0; files && i < n; i++)
        free(files[i]);
    free(files);
    PQfinish(conn);
    return rc;
}
