/* herinnerctl: the admin's and auditor's tool.
 *   herinnerctl [-c FILE] [--conninfo STR] check | explain KIND | status MESSAGE_ID
 *                                         | db init [--sqldir DIR] | audit export|verify|checkpoint
 *                                         | paper handover
 * Blocking libpq is fine here: this is a command, not the daemon. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "config.h"
#include "ctl.h"
#include "tzname.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: herinnerctl [-c FILE] [--conninfo STR] COMMAND\n"
            "  check                  validate the configuration\n"
            "  explain KIND [--created T] [--due T]\n"
            "                         the escalation ladder for a message kind (and its times)\n"
            "  status MESSAGE_ID      timeline of one message: escalation and every attempt\n"
            "  db upgrade [--sqldir DIR]  create or upgrade the schema (sql/NNN_*.sql not yet\n"
            "                         applied, in order; db init is the same)\n"
            "  db status [--sqldir DIR]   schema versions applied and available (exit 1: upgrade due)\n"
            "  audit export [--since T] [--until T] [--format csv|json|jsonl] [--bom]\n"
            "  audit verify [--checkpoints FILE]\n"
            "                         check every attempt chain (and that nothing the\n"
            "                         checkpoint lines in FILE cover was removed or rewritten)\n"
            "  audit checkpoint       commit to the head of every chain now; prints the line\n"
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
    char err[1024], zone[256];
    PGconn *conn;

    if (conninfo == NULL) {
        if ((cfg = ctl_load_config(ctl)) == NULL)
            return NULL;
        conninfo = cfg->conninfo;
    } else          /* only for its time zone: without a readable config, the host's */
        cfg = config_load(ctl->config_path, err, sizeof(err));
    conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "herinnerctl: cannot connect to the database: %s", PQerrorMessage(conn));
        PQfinish(conn);
        config_free(cfg);
        return NULL;
    }
    /* times are shown in the configuration's zone (the calendar rules use it), with --conninfo
     * too; the host's zone without one */
    const char *tz = tz_name(cfg ? cfg->timezone : NULL, zone, sizeof(zone));
    if (tz) {
        const char *params[] = { tz };
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
    if (strcmp(cmd, "explain") == 0 && argc >= 2)
        return ctl_explain(&ctl, argc, argv);
    if (strcmp(cmd, "status") == 0 && argc == 2)
        return ctl_status(&ctl, argv[1]);
    if (strcmp(cmd, "audit") == 0 && argc >= 2 &&
        (strcmp(argv[1], "verify") == 0 || strcmp(argv[1], "checkpoint") == 0))
        return ctl_chain(&ctl, argc - 1, argv + 1);
    if (strcmp(cmd, "db") == 0 && argc >= 2)
        return ctl_db(&ctl, argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0 && argc >= 2)
        return ctl_audit(&ctl, argc - 1, argv + 1);
    if (strcmp(cmd, "paper") == 0 && argc == 2 && strcmp(argv[1], "handover") == 0)
        return ctl_paper_handover(&ctl);
    usage(stderr);
    return 2;
}
