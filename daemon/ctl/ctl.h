/* herinnerctl's commands, one file each. They return the process exit code. */
#ifndef HERINNERD_CTL_H
#define HERINNERD_CTL_H

#include <libpq-fe.h>

struct config;

struct ctl {
    const char *config_path;
    const char *conninfo;      /* overrides the config's database.conninfo */
};

struct config *ctl_load_config(const struct ctl *ctl);
PGconn *ctl_connect(const struct ctl *ctl);

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
int ctl_paper_handover(const struct ctl *ctl);

#endif
