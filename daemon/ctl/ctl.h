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

int ctl_check(const struct ctl *ctl);
/* CREATED and DUE (may be NULL): local times "YYYY-MM-DD[ HH:MM]" to plan the ladder for. */
int ctl_explain(const struct ctl *ctl, const char *kind, const char *created, const char *due);
int ctl_status(const struct ctl *ctl, const char *message_id);
int ctl_db_init(const struct ctl *ctl, int argc, char **argv);
int ctl_audit(const struct ctl *ctl, int argc, char **argv);
int ctl_paper_handover(const struct ctl *ctl);

#endif
