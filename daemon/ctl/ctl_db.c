/* herinnerctl db upgrade | status (db init is upgrade under its first name).
 *
 * The schema is the numbered files sql/NNN_*.sql; herinnerd.schema_version records which ones a
 * database has. Upgrade applies each missing file in its own transaction, in order, and records
 * it in that same transaction, so an interrupted upgrade resumes where it stopped and re-running
 * it is harmless. A session advisory lock keeps two upgrades from interleaving. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildinfo.h"
#include "ctl.h"
#include "schema_version.h"

#define MAX_VERSION 999

struct sqlfiles {
    const char *dir;
    struct dirent **ent;
    int n;
};

static int sql_file(const struct dirent *e)
{
    const char *s = e->d_name;
    size_t n = strlen(s);
    return n > 8 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
           s[2] <= '9' && s[3] == '_' && strcmp(s + n - 4, ".sql") == 0;
}

static int load_files(struct sqlfiles *f)
{
    if ((f->n = scandir(f->dir, &f->ent, sql_file, alphasort)) < 0) {
        fprintf(stderr, "herinnerctl: cannot read the schema files in %s: %m\n", f->dir);
        return -1;
    }
    for (int i = 1; i < f->n; i++)
        if (atoi(f->ent[i]->d_name) == atoi(f->ent[i - 1]->d_name)) {
            fprintf(stderr, "herinnerctl: %s and %s in %s have the same number\n",
                    f->ent[i - 1]->d_name, f->ent[i]->d_name, f->dir);
            return -1;
        }
    return 0;
}

static void free_files(struct sqlfiles *f)
{
    for (int i = 0; f->ent && i < f->n; i++)
        free(f->ent[i]);
    free(f->ent);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r"), *m;
    char *buf = NULL, chunk[8192];
    size_t len = 0, r;

    if (f == NULL)
        return NULL;
    if ((m = open_memstream(&buf, &len)) == NULL) {
        fclose(f);
        return NULL;
    }
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, r, m);
    int bad = ferror(f);
    fclose(f);
    if (fclose(m) != 0 || bad) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* applied[v] for v in 1..MAX_VERSION; -1 on error, 0 when the database has no schema yet */
static int applied_versions(PGconn *conn, char applied[MAX_VERSION + 1], int *highest)
{
    PGresult *r = PQexec(conn, "SELECT to_regclass('herinnerd.schema_version') IS NOT NULL");
    int have = 0;

    memset(applied, 0, MAX_VERSION + 1);
    *highest = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        goto fail;
    have = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!have)
        return 0;
    r = PQexec(conn, "SELECT version FROM herinnerd.schema_version ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        goto fail;
    for (int i = 0; i < PQntuples(r); i++) {
        int v = atoi(PQgetvalue(r, i, 0));
        if (v >= 1 && v <= MAX_VERSION)
            applied[v] = 1;
        if (v > *highest)
            *highest = v;
    }
    PQclear(r);
    return 1;
fail:
    fprintf(stderr, "herinnerctl: cannot read the schema version: %s", PQresultErrorMessage(r));
    PQclear(r);
    return -1;
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

/* One file, one transaction; the version is recorded with it (files record it too: harmless). */
static int apply_file(PGconn *conn, const char *dir, const char *name)
{
    char path[4096], record[128];
    char *sql;
    int ok;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((sql = slurp(path)) == NULL) {
        fprintf(stderr, "herinnerctl: cannot read %s: %m\n", path);
        return 0;
    }
    snprintf(record, sizeof(record), "INSERT INTO herinnerd.schema_version (version) VALUES (%d)"
             " ON CONFLICT (version) DO NOTHING", atoi(name));
    ok = exec_ok(conn, "BEGIN", "BEGIN") && exec_ok(conn, sql, path) &&
         exec_ok(conn, record, path) && exec_ok(conn, "COMMIT", path);
    free(sql);
    if (!ok)
        PQclear(PQexec(conn, "ROLLBACK"));
    return ok;
}

static const char *sql_dir(void)
{
    return getenv("HERINNERD_SQLDIR") ? getenv("HERINNERD_SQLDIR") : SQLDIR;
}

static int db_upgrade(PGconn *conn, struct sqlfiles *f)
{
    char applied[MAX_VERSION + 1];
    int highest, done = 0;

    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    if (!exec_ok(conn, "SELECT pg_advisory_lock(hashtext('herinnerd.schema_version'))",
                 "waiting for other upgrades"))
        return 1;
    if (applied_versions(conn, applied, &highest) < 0)
        return 1;
    for (int i = 0; i < f->n; i++) {
        int v = atoi(f->ent[i]->d_name);
        if (v < 1 || v > MAX_VERSION || applied[v])
            continue;
        if (!apply_file(conn, f->dir, f->ent[i]->d_name)) {
            fprintf(stderr, "herinnerctl: %s not applied; the schema stays as it was before it\n",
                    f->ent[i]->d_name);
            return 1;
        }
        printf("applied %s\n", f->ent[i]->d_name);
        done++;
    }
    if (applied_versions(conn, applied, &highest) < 0)
        return 1;
    printf("schema at version %d%s\n", highest, done ? "" : " (nothing to do)");
    if (highest < SCHEMA_VERSION) {
        fprintf(stderr, "herinnerctl: this herinnerd needs schema version %d, but %s holds no "
                "file beyond %d\n", SCHEMA_VERSION, f->dir, highest);
        return 1;
    }
    return 0;
}

/* Exit 0 when every available file is applied, 1 when an upgrade is due (or on errors). */
static int db_status(PGconn *conn, struct sqlfiles *f)
{
    char applied[MAX_VERSION + 1];
    int highest, missing = 0, have;

    if ((have = applied_versions(conn, applied, &highest)) < 0)
        return 1;
    if (!have)
        printf("the database has no herinnerd schema\n");
    else {
        PGresult *r = PQexec(conn, "SELECT version, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SSOF')"
                                   "  FROM herinnerd.schema_version ORDER BY version");
        printf("schema version %d; applied:\n", highest);
        for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
            printf("  %03d  %s\n", atoi(PQgetvalue(r, i, 0)), PQgetvalue(r, i, 1));
        PQclear(r);
    }
    printf("available in %s:", f->dir);
    for (int i = 0; i < f->n; i++)
        printf(" %.3s", f->ent[i]->d_name);
    printf("\nthis herinnerd needs version %d\n", SCHEMA_VERSION);
    for (int i = 0; i < f->n; i++) {
        int v = atoi(f->ent[i]->d_name);
        if (v >= 1 && v <= MAX_VERSION && !applied[v]) {
            printf("%s %s", missing++ ? "," : "not applied:", f->ent[i]->d_name);
        }
    }
    if (missing)
        printf("\nrun herinnerctl db upgrade\n");
    else if (highest < SCHEMA_VERSION)
        printf("the schema files in %s are older than this herinnerd\n", f->dir);
    else
        printf("up to date\n");
    return missing || highest < SCHEMA_VERSION ? 1 : 0;
}

int ctl_schema_ready(PGconn *conn)
{
    char applied[MAX_VERSION + 1];
    int highest, have = applied_versions(conn, applied, &highest);

    if (have < 0)
        return 0;
    if (have == 0) {
        fprintf(stderr, "herinnerctl: the database has no herinnerd schema: run herinnerctl db "
                        "upgrade\n");
        return 0;
    }
    if (highest < SCHEMA_VERSION)
        fprintf(stderr, "herinnerctl: warning: the database schema is at version %d, this "
                        "herinnerctl expects %d: run herinnerctl db upgrade\n", highest,
                SCHEMA_VERSION);
    return 1;
}

int ctl_db(const struct ctl *ctl, int argc, char **argv)
{
    struct sqlfiles f = { .dir = sql_dir() };
    const char *cmd = argv[0];
    int rc = 1;
    PGconn *conn = NULL;

    if (strcmp(cmd, "init") != 0 && strcmp(cmd, "upgrade") != 0 && strcmp(cmd, "status") != 0)
        goto usage;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sqldir") == 0 && i + 1 < argc)
            f.dir = argv[++i];
        else
            goto usage;
    }
    if (load_files(&f) == -1)
        goto out;
    if ((conn = ctl_connect(ctl)) == NULL)
        goto out;
    rc = strcmp(cmd, "status") == 0 ? db_status(conn, &f) : db_upgrade(conn, &f);
out:
    free_files(&f);
    PQfinish(conn);
    return rc;
usage:
    fprintf(stderr, "usage: herinnerctl db upgrade|status [--sqldir DIR]\n");
    return 2;
}
