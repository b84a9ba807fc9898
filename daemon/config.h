/* The configuration: libconfig file -> immutable struct config. A reload parses into a new struct
 * and swaps only on success, so a running daemon never sees a half-valid config. */
#ifndef HERINNERD_CONFIG_H
#define HERINNERD_CONFIG_H

#include <stddef.h>

enum channel_id { CHANNEL_NULL, CHANNEL_EMAIL, CHANNEL_SMS, CHANNEL_PAPER, CHANNEL_COUNT };

enum starttls_mode { STARTTLS_NO, STARTTLS_IF_AVAILABLE, STARTTLS_REQUIRED };

/* Public holidays that business_days skip besides weekends: the Dutch ones (policy.c computes
 * them for any year) with these options, plus the config's own dates. */
struct holiday_config {
    int good_friday;           /* Goede Vrijdag is a day off (default: no) */
    int liberation_every_year; /* Bevrijdingsdag every year (default: only lustrum years) */
    int *extra;                /* top-level 'holidays' as YYYYMMDD, sorted, no duplicates */
    size_t nextra;
};

struct step {
    enum channel_id channel;
    int from_due;              /* offset counts back from messages.due_at ("before_due") */
    long offset;               /* seconds after created_at, or before due_at */
    char *template;
    int quiet_start, quiet_end; /* minutes after local midnight; equal = no quiet hours */
    int business_days;
    int retry_max;             /* retries after the first try */
    long retry_backoff;        /* seconds, doubled per retry */
    int link;                  /* 1 link = true, -1 link = false, 0 unset: the channel's 'link' */
    int line;
    const struct holiday_config *holidays; /* the config's; NULL = Dutch defaults, no extras */
};

struct policy {
    char *name;
    char **kinds;              /* "*" matches every kind */
    size_t nkinds;
    int hide_subject;          /* the subject itself is sensitive: keep it out of e-mail and SMS */
    long bundle;               /* seconds: one recipient's steps on one channel due within this
                                * window go as one notice naming them all; 0 = each alone */
    struct step *steps;
    size_t nsteps;
};

struct email_config {
    int enabled;
    char *server;              /* host:port */
    char *from;
    enum starttls_mode starttls;
    int workers;
    int batch;                 /* messages per SMTP session */
    long timeout;              /* seconds per SMTP session */
    char *username, *password;
    int link;                  /* the message's link in the text (default true) */
    char *helo;                /* name said in EHLO; NULL = the host name (libesmtp's default) */
    char *return_path;         /* VERP envelope sender "bounces+{token}@..."; NULL = from */
};

struct sms_config {
    int enabled;
    char *url;
    char *username, *password;
    char *sender;
    char *default_country;     /* calling code without "+", e.g. "31" */
    int max_in_flight;
    long timeout;
    char *dlr_base;            /* how Kannel reaches our /dlr; default http://<http.listen> */
    int link;                  /* a link in the text (default false: "log in at MijnOverheid") */
    int max_parts;             /* longest SMS in parts (default 1); names are cut to fit */
};

struct paper_config {
    int enabled;
    char *spool;
    int cutoff;                /* minutes after local midnight */
    char *sender_address;      /* return address printed on the letter, lines separated by \n */
    char *contact;             /* a line for questions printed on the letter, NULL = none */
};

struct http_config {
    char *listen;              /* host:port, NULL = off */
    int max_connections;       /* open connections kept; 0: from RLIMIT_NOFILE (http.c) */
};

struct config {
    char *path;
    char *text;                /* the effective text, @include'd files in it (config_include.h):
                                  kept in herinnerd.configs for audits */
    char sha256[65];           /* of that text: frozen into each escalation */
    char *conninfo;
    char *instance;            /* recorded in every attempt; default: the host name */
    char *timezone;            /* NULL = the host's */
    char *inbox_url;           /* fallback link when a message has none */
    long lease;                /* seconds a claim holds an escalation unless renewed */
    int allow_http_links;      /* messages' http: links may reach citizens (default: https only) */
    struct email_config email;
    struct sms_config sms;
    struct paper_config paper;
    struct http_config http;
    struct holiday_config holidays;
    long audit_checkpoint;     /* seconds between audit checkpoints (audit.checkpoint); 0 = none */
    struct policy *policies;
    size_t npolicies;
    char *templates_dir;       /* `templates`: the wording admins own; NULL = built-in only */
    struct templates *templates; /* its files (template_files.h); NULL = none */
};

/* Parse and validate FILE. On error returns NULL and writes "FILE:LINE: what" into err. */
struct config *config_load(const char *path, char *err, size_t errlen);
/* The same from an effective text (as stored, no @include left); NAME is used in errors. */
struct config *config_load_text(const char *name, const char *text, size_t len, char *err,
                                size_t errlen);
/* The same, with CONFIG_* flags. */
#define CONFIG_NO_SECRETS 1    /* do not read password_file (its secret is ""): for --check and
                                * herinnerctl, which send nothing; systemd's credentials exist only
                                * while the service runs */
struct config *config_load_flags(const char *path, int flags, char *err, size_t errlen);
struct config *config_load_text_flags(const char *name, const char *text, size_t len, int flags,
                                      char *err, size_t errlen);
void config_free(struct config *cfg);

/* The policy for a message kind: an exact kind match wins over "*"; NULL if none applies. */
const struct policy *config_policy_for_kind(const struct config *cfg, const char *kind);
const struct policy *config_policy_by_name(const struct config *cfg, const char *name);

const char *channel_name(enum channel_id id);
/* Does CFG configure CH (its group is present)? The built-in null channel always is. */
int config_channel_enabled(const struct config *cfg, enum channel_id ch);

#endif
