/* herinnerctl: the admin's and auditor's tool.
 *   herinnerctl [-c FILE] [--conninfo STR] check | explain KIND | status MESSAGE_ID
 *                                         | db init [--sqldir DIR] | audit export|verify
 *                                         | paper handover
 * Blocking libpq is fine here: this is a command, not the daemon. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "config.h"
#include "ctl.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: herinnerctl [-c FILE] [--conninfo STR] COMMAND\n"
            "  check                  validate the configuration\n"
            "  explain KIND [--created T] [--due T]\n"
            "                         show the escalation ladder for a message kind; with T\n"
            "                         (YYYY-MM-DD[ HH:MM]) when each step would go, and why later\n"
            "  status MESSAGE_ID      timeline of one message: escalation and every attempt\n"
            "  db init [--sqldir DIR] create or upgrade the schema (sql/*.sql in order)\n"
            "  audit export [--since T] [--until T] [--format csv|json]\n"
            "  audit verify           check the attempts hash chain\n"
            "  paper handover         hand pending letters over to the print house now\n");
}

struct config *ctl_load_config(const struct ctl *ctl)
{
    char err[1024];
    struct config *cfg = config_load(ctl->config_path, err, sizeof(err));

    if (cfg == NULL)
        fprintf(stderr, "%s\n", err);
    return cfg;
}

PGconn *ctl_connect(const struct ctl *ctl)
{
    const char *conninfo = ctl->conninfo;
    struct config *cfg = NULL;
    PGconn *conn;

    if (conninfo == NULL) {
        if ((cfg = ctl_load_config(ctl)) == NULL)
            return NULL;
        conninfo = cfg->conninfo;
    }
    conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "herinnerctl: cannot connect to the database: %s", PQerrorMessage(conn));
        PQfinish(conn);
        config_free(cfg);
        return NULL;
    }
    /* times are shown in the configuration's zone, as the calendar rules use it */
    if (cfg && cfg->timezone) {
        const char *params[] = { cfg->timezone };
        PQclear(PQexecParams(conn, "SELECT set_config('TimeZone', $1, false)", 1, NULL, params,
                             NULL, NULL, 0));
    }
    config_free(cfg);
    return conn;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "conninfo", required_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct ctl ctl = { .config_path = "/etc/herinnerd/herinnerd.conf" };
    int opt;

    /* "+": options after the command belong to the command */
    while ((opt = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': ctl.config_path = optarg; break;
        case 'C': ctl.conninfo = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[0];
    if (strcmp(cmd, "check") == 0 && argc == 1)
        return ctl_check(&ctl);
    if (strcmp(cmd, "explain") == 0 && argc >= 2 && argc % 2 == 0) {
        const char *created = NULL, *due = NULL;
        for (int i = 2; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--created") == 0)
                created = argv[i + 1];
            else if (strcmp(argv[i], "--due") == 0)
                due = argv[i + 1];
            else {
                usage(stderr);
                return 2;
            }
        }
        return ctl_explain(&ctl, argv[1], created, due);
    }
    if (strcmp(cmd, "status") == 0 && argc == 2)
        return ctl_status(&ctl, argv[1]);
    if (strcmp(cmd, "db") == 0 && argc >= 2 && strcmp(argv[1], "init") == 0)
        return ctl_db_init(&ctl, argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0 && argc >= 2)
        return ctl_audit(&ctl, argc - 1, argv + 1);
    if (strcmp(cmd, "paper") == 0 && argc == 2 && strcmp(argv[1], "handover") == 0)
        return ctl_paper_handover(&ctl);
    usage(stderr);
    return 2;
}
