/* herinnerctl: the admin's, auditor's and help desk's tool. The commands are listed (with their
 * help) in the table below and described in herinnerctl(1).
 * Blocking libpq is fine here: this is a command, not the daemon. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buildinfo.h"
#include "config.h"
#include "ctl.h"
#include "tzname.h"

/* What `herinnerctl help [COMMAND]` prints: one entry per command (and subcommand). */
struct command_help {
    const char *name;          /* "audit export" */
    const char *args;
    const char *summary;       /* one line for the overview */
    const char *details;       /* for `herinnerctl help COMMAND` */
};

static const struct command_help commands[] = {
    { "check", "", "validate the configuration",
      "Parse and validate the configuration (-c FILE) as the daemon would, and\n"
      "print its SHA-256. Password files are not read. Exit 0 if valid, else 1\n"
      "with FILE:LINE: what is wrong.\n" },
    { "explain", "KIND [--created T] [--due T]", "the escalation ladder a kind of message gets",
      "Print the policy a message of KIND follows and each of its steps: channel,\n"
      "when (after arrival or before the due date), template, quiet hours,\n"
      "business days and retries. --created T (and --due T): when each step would\n"
      "go for a message created (due) at T, YYYY-MM-DD[ HH:MM] in the configuration's\n"
      "time zone, and why later. Reads only the configuration: no database, no\n"
      "secrets. Exit 1 if no policy applies.\n" },
    { "status", "MESSAGE_ID", "one message: its escalation and every attempt",
      "Print the message (sender, kind, subject, arrival, read), its escalation\n"
      "(policy, state, next step and when) and every attempt: time, step, try,\n"
      "channel, outcome, detail and address, in the configuration's time zone.\n"
      "These are the rows of the view herinnerd.message_timeline, which senders'\n"
      "portals read too (herinnerd.sender_timeline: their own messages only).\n" },
    { "audit export", "[--since T] [--until T] [--format csv|json|jsonl] [--bom]",
      "write the attempts to standard output",
      "Write every attempt created in [--since, --until) to standard output,\n"
      "oldest first:\n"
      "  csv    RFC 4180 with a header line and CRLF line ends; a cell that starts\n"
      "         with = + - @, a tab or CR gets a leading ' (no spreadsheet formulas);\n"
      "         --bom starts the file with a UTF-8 byte order mark\n"
      "  json   one JSON array of objects\n"
      "  jsonl  one JSON object per line\n"
      "T is a date or time such as 2026-11-01 or \"2026-11-01 08:00\", in the\n"
      "configuration's time zone unless it names one.\n" },
    { "audit verify", "[--checkpoints FILE]", "recompute every attempt chain",
      "Recompute the hash of every attempt and check each chain link by link.\n"
      "With --checkpoints FILE (lines as printed by audit checkpoint or logged\n"
      "by the daemon), also prove that nothing those checkpoints cover was\n"
      "removed or rewritten. Exit 0 if intact, 1 naming the problems found.\n" },
    { "audit checkpoint", "", "commit to every chain's head now, print it",
      "Write a checkpoint (chain, sequence number and hash of every chain's head)\n"
      "and print it as one line. Keep these lines outside the database:\n"
      "audit verify --checkpoints proves against them.\n" },
    { "db init", "[--sqldir DIR]", "create the schema (the first name of db upgrade)",
      "The same as db upgrade, for an empty database.\n" },
    { "db upgrade", "[--sqldir DIR]", "create the schema or apply the files it lacks",
      "Apply each numbered SQL file (from --sqldir, $HERINNERD_SQLDIR or the\n"
      "installed ones) that the database lacks, in order, each in its own\n"
      "transaction that records it in herinnerd.schema_version. Every row is kept;\n"
      "repeating it is harmless.\n" },
    { "db status", "[--sqldir DIR]", "the schema versions applied, available and needed",
      "Print the schema versions the database has, the ones available and the\n"
      "one this version needs. Exit 1 if herinnerctl db upgrade is due.\n" },
    { "paper handover", "", "hand pending letters over to the print house now",
      "Move the letters in the spool's pending/ to handed-over/<date>/ with\n"
      "manifest.csv and record them, as the daemon does at paper.cutoff.\n"
      "Safe while the daemon runs.\n" },
    { "bounce", "[RECIPIENT]", "record a bounce (a DSN on standard input)",
      "Read a delivery status notification (RFC 3464, as Postfix and Exim send\n"
      "them) from standard input and record it for the e-mail it is about, found\n"
      "by its token (email.return_path) in RECIPIENT, the report's delivery\n"
      "headers or the returned Message-ID: 5.x.x a permanent-failure that brings\n"
      "the next step forward to now, 4.x.x a temporary-failure. For a Postfix pipe\n"
      "transport: exit 0 done, 65 not a report, 67 no such e-mail, 75 try again.\n" },
    { "help", "[COMMAND]", "this overview, or one command's description",
      "Print the overview of the commands, or what COMMAND does, e.g.\n"
      "herinnerctl help audit. COMMAND --help does the same.\n" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: herinnerctl [-c FILE] [--conninfo STR] COMMAND [ARGS]\n"
               "       herinnerctl help [COMMAND]\n"
               "       herinnerctl --version | --help\n");
}

static void help(void)
{
    usage(stdout);
    printf("\nThe admin's, auditor's and help desk's tool for herinnerd.\n\n"
           "  -c, --config FILE   the configuration (default: %s)\n"
           "      --conninfo STR  connect with this libpq string, not the configuration's\n"
           "  -V, --version       print the version and exit\n"
           "  -h, --help          print this help and exit\n\ncommands:\n",
           HERINNERD_CONFIG);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char head[128];
        snprintf(head, sizeof(head), "%s %s", commands[i].name, commands[i].args);
        if (strlen(head) > 28)
            printf("  %s\n  %-28s %s\n", head, "", commands[i].summary);
        else
            printf("  %-28s %s\n", head, commands[i].summary);
    }
    printf("\nSQL files for db init and db upgrade: %s\n"
           "herinnerctl help COMMAND says more; see herinnerctl(1) and herinnerd.conf(5).\n",
           SQLDIR);
}

/* Does C's name begin with the whole words in WORDS ("audit" names every audit command)? */
static int command_matches(const struct command_help *c, const char *words)
{
    size_t n = strlen(words);

    return strncmp(c->name, words, n) == 0 && (c->name[n] == '\0' || c->name[n] == ' ');
}

/* "herinnerctl NAME ARGS" */
static void print_synopsis(FILE *f, const struct command_help *c)
{
    fprintf(f, "herinnerctl %s%s%s\n", c->name, *c->args ? " " : "", c->args);
}

/* herinnerctl help [WORD...]: every command whose name begins with the words given. */
static int help_command(int argc, char **argv)
{
    char name[128] = "";
    int found = 0;

    if (argc == 0) {
        help();
        return 0;
    }
    for (int i = 0; i < argc; i++)
        snprintf(name + strlen(name), sizeof(name) - strlen(name), "%s%s", i ? " " : "", argv[i]);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command_help *c = &commands[i];
        if (!command_matches(c, name))
            continue;
        if (found++)
            putchar('\n');
        print_synopsis(stdout, c);
        putchar('\n');
        fputs(c->details, stdout);
        if (strncmp(c->name, "db ", 3) == 0)
            printf("The installed SQL files are in %s.\n", SQLDIR);
    }
    if (!found) {
        fprintf(stderr, "herinnerctl: no command '%s' (herinnerctl help lists them)\n", name);
        return 2;
    }
    return 0;
}

/* `herinnerctl COMMAND ... --help` is `herinnerctl help COMMAND` */
static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

struct config *ctl_load_config(const struct ctl *ctl)
{
    char err[1024];
    /* herinnerctl sends nothing: the SMTP and SMS password files are none of its business */
    struct config *cfg = config_load_flags(ctl->config_path, CONFIG_NO_SECRETS, err, sizeof(err));

    if (cfg == NULL)
        fprintf(stderr, "%s\n", err);
    return cfg;
}

int ctl_exec(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok)
        fprintf(stderr, "herinnerctl: %s", PQresultErrorMessage(r));
    PQclear(r);
    return ok;
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

/* Say which word was not understood, and how the command is used if it exists. */
static int unknown_command(char **argv)
{
    int known = 0;

    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (!command_matches(&commands[i], argv[0]))
            continue;
        if (!known++)
            fprintf(stderr, "herinnerctl: wrong arguments for '%s'; usage:\n", argv[0]);
        fputs("  ", stderr);
        print_synopsis(stderr, &commands[i]);
    }
    if (!known)
        fprintf(stderr, "herinnerctl: unknown command '%s' (herinnerctl help lists them)\n",
                argv[0]);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "conninfo", required_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct ctl ctl = { .config_path = HERINNERD_CONFIG };
    int opt;

    /* "+": options after the command belong to the command */
    while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': ctl.config_path = optarg; break;
        case 'C': ctl.conninfo = optarg; break;
        case 'h': help(); return 0;
        case 'V': printf("herinnerctl (herinnerd) %s\n", HERINNERD_VERSION); return 0;
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
    if (strcmp(cmd, "help") == 0)
        return help_command(argc - 1, argv + 1);
    if (wants_help(argc, argv))
        return help_command(argc > 1 && argv[1][0] != '-' ? 2 : 1, argv);   /* "audit export" */
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
    if (strcmp(cmd, "bounce") == 0 && argc <= 2)
        return ctl_bounce(&ctl, argc, argv);
    return unknown_command(argv);
}
