/* herinnerctl's commands, one file each. They return the process exit code. */
#ifndef HERINNERD_CTL_H
#define HERINNERD_CTL_H

#include <stdint.h>

#include <libpq-fe.h>

struct config;

struct ctl {
    const char *config_path;
    const char *conninfo;      /* overrides the config's database.conninfo */
};

/* One attempt row for herinnerctl to record (ledger_sql.h's shape). */
struct ctl_attempt {
    int64_t message_id;
    int step;
    const char *channel, *outcome, *detail, *address, *external_id;
    const char *fact;          /* de-duplication key */
    const char *refers;        /* a report: recorded only while the send with this external id
                                * is, and its fate is not known yet (ledger_sql.h) */
};

struct config *ctl_load_config(const struct ctl *ctl);
/* 0, or -1 with the reason on stderr. */
int ctl_record_attempt(PGconn *conn, const char *instance, const struct ctl_attempt *at);
PGconn *ctl_connect(const struct ctl *ctl);
/* Run a statement that returns no rows; 1 if it did, 0 with the server's error on stderr. */
int ctl_exec(PGconn *conn, const char *sql);

/* S escaped for a terminal (control characters, bidi overrides); static buffers used in turn,
 * so at most CTL_PRINTABLE_BUFFERS of them in one printf */
#define CTL_PRINTABLE_BUFFERS 8
const char *ctl_printable(const char *s);

int ctl_check(const struct ctl *ctl);
int ctl_explain(const struct ctl *ctl, int argc, char **argv);
int ctl_status(const struct ctl *ctl, const char *message_id);
int ctl_db(const struct ctl *ctl, int argc, char **argv);
/* Does the database have herinnerd's schema? If not, says so (run herinnerctl db upgrade) and
 * returns 0; an older schema only gets a warning. */
int ctl_schema_ready(PGconn *conn);
int ctl_audit(const struct ctl *ctl, int argc, char **argv);
/* audit verify [--checkpoints FILE] | audit checkpoint */
int ctl_chain(const struct ctl *ctl, int argc, char **argv);
int ctl_paper_handover(const struct ctl *ctl);
/* bounce [RECIPIENT]: a DSN on standard input; sysexits(3) codes for a Postfix pipe transport */
int ctl_bounce(const struct ctl *ctl, int argc, char **argv);

#endif
