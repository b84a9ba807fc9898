/* libconfig -> struct config, with every error reported as FILE:LINE: message. Unknown keys are
 * errors too: a typo in a deadline must never be silently ignored. */
#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "config_include.h"
#include "config_values.h"
#include "dsn.h"
#include "duration.h"
#include "mime.h"
#include "template.h"
#include "template_files.h"

struct parser {
    const char *path;
    char *err;
    size_t errlen;
    const struct config_text *text;     /* takes a line back to its file (@include) */
    int flags;                          /* CONFIG_*, FROM_STORE */
};

/* a stored configuration: its templates are in its text, not read from the directory */
#define FROM_STORE 0x100

/* no string value needs more; a longer one is a mistake (or an attack on the audit table) */
#define MAX_STRING 4096
#define MAX_NAME 64                     /* instance, policy and kind names */
#define MAX_SECRET 511

static const char *const channel_names[CHANNEL_COUNT] = { "null", "email", "sms", "paper" };

const char *channel_name(enum channel_id id)
{
    return (unsigned)id < CHANNEL_COUNT ? channel_names[id] : "?";
}

static int fail(struct parser *p, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, const config_setting_t *s, const char *fmt, ...)
{
    char what[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    int line = s ? (int)config_setting_source_line(s) : 0;
    const char *file = p->text ? config_text_where(p->text, line, &line) : p->path;
    snprintf(p->err, p->errlen, "%s:%d: %s", file, line, what);
    return -1;
}

/* Every member of GROUP must be in ALLOWED (NULL-terminated). */
static int check_keys(struct parser *p, const config_setting_t *group, const char *what,
                      const char *const *allowed)
{
    for (int i = 0; i < config_setting_length(group); i++) {
        const config_setting_t *s = config_setting_get_elem(group, i);
        const char *name = config_setting_name(s);
        int known = 0;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, name) == 0;
        if (!known)
            return fail(p, s, "unknown key '%s' in %s", name, what);
    }
    return 0;
}

static int get_string(struct parser *p, const config_setting_t *group, const char *key,
                      int required, char **out)
{
    const config_setting_t *s = config_setting_get_member(group, key);

    if (s == NULL) {
        if (required)
            return fail(p, group, "missing required key '%s'", key);
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail(p, s, "'%s' must be a string", key);
    if (strlen(config_setting_get_string(s)) > MAX_STRING)
        return fail(p, s, "'%s' is longer than %d bytes", key, MAX_STRING);
    free(*out);
    if ((*out = strdup(config_setting_get_string(s))) == NULL)
        return fail(p, s, "out of memory");
    return 0;
}

static int get_int(struct parser *p, const config_setting_t *group, const char *key, int min,
                   int max, int *out)
{
    const config_setting_t *s = config_setting_get_member(group, key);

    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_INT)
        return fail(p, s, "'%s' must be an integer", key);
    int v = config_setting_get_int(s);
    if (v < min || v > max)
        return fail(p, s, "'%s' must be between %d and %d", key, min, max);
    *out = v;
    return 0;
}

static int get_bool(struct parser *p, const config_setting_t *group, const char *key, int *out)
{
    const config_setting_t *s = config_setting_get_member(group, key);

    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return fail(p, s, "'%s' must be true or false", key);
    *out = config_setting_get_bool(s);
    return 0;
}

static int get_duration(struct parser *p, const config_setting_t *group, const char *key,
                        long *out)
{
    const config_setting_t *s = config_setting_get_member(group, key);

    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_STRING ||
        duration_parse(config_setting_get_string(s), out) == -1)
        return fail(p, s, "'%s' must be a duration like \"30s\", \"15m\", \"2h\", \"3d\" or \"2w\""
                    " (at most 400 days)", key);
    return 0;
}

/* A duration from MIN to MAX seconds; the message names the bounds. */
static int get_duration_in(struct parser *p, const config_setting_t *group, const char *key,
                           long min, const char *min_text, long max, const char *max_text,
                           long *out)
{
    long v = *out;

    if (get_duration(p, group, key, &v) == -1)
        return -1;
    if (v < min || v > max)
        return fail(p, config_setting_get_member(group, key), "'%s' must be from %s to %s", key,
                    min_text, max_text);
    *out = v;
    return 0;
}

static int get_clock(struct parser *p, const config_setting_t *group, const char *key, int *out)
{
    const config_setting_t *s = config_setting_get_member(group, key);

    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_STRING ||
        clock_parse(config_setting_get_string(s), out) == -1)
        return fail(p, s, "'%s' must be a time of day like \"17:30\"", key);
    return 0;
}

static int get_group(struct parser *p, const config_setting_t *root, const char *key,
                     const config_setting_t **out)
{
    const config_setting_t *s = config_setting_get_member(root, key);

    *out = NULL;
    if (s == NULL)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return fail(p, s, "'%s' must be a group { ... }", key);
    *out = s;
    return 0;
}

/* A secret either inline or from a file (systemd's LoadCredential= puts it in one). */
static int get_secret(struct parser *p, const config_setting_t *group, char **out)
{
    char *file = NULL;
    int rc = -1;

    if (get_string(p, group, "password", 0, out) == -1 ||
        get_string(p, group, "password_file", 0, &file) == -1)
        return -1;
    if (*out != NULL && **out == '\0')
        return fail(p, config_setting_get_member(group, "password"), "'password' is empty");
    if (file == NULL)
        return 0;
    if (*out != NULL) {
        fail(p, config_setting_get_member(group, "password_file"),
             "give either 'password' or 'password_file', not both");
        goto out;
    }
    if (p->flags & CONFIG_NO_SECRETS) {
        /* a placeholder, so that what checks for a password finds one; never sent */
        rc = (*out = strdup("")) != NULL ? 0 : fail(p, group, "out of memory");
        goto out;
    }
    const config_setting_t *s = config_setting_get_member(group, "password_file");
    struct stat sb;
    FILE *f = fopen(file, "r");
    char buf[MAX_SECRET + 3];     /* the secret, a line end, and one byte too many */
    if (f == NULL || fstat(fileno(f), &sb) == -1) {
        fail(p, s, "cannot read '%s': %s", file, strerror(errno));
        goto close;
    }
    /* a directory opens, and reads as nothing: say what it is */
    if (!S_ISREG(sb.st_mode)) {
        fail(p, s, "'%s' is not a file", file);
        goto close;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    if (ferror(f)) {
        fail(p, s, "cannot read '%s': %s", file, strerror(errno));
        goto close;
    }
    fclose(f);
    f = NULL;
    buf[n] = '\0';
    size_t len = 0;
    while (len < n && buf[len] != '\r' && buf[len] != '\n')
        len++;
    buf[len] = '\0';
    if (strlen(buf) != len || len > MAX_SECRET) {
        fail(p, s, "'%s' must hold one line of at most %d bytes", file, MAX_SECRET);
        goto out;
    }
    if (buf[0] == '\0') {
        fail(p, s, "'%s' is empty: the password must be on its first line", file);
        goto out;
    }
    if ((*out = strdup(buf)) == NULL) {
        fail(p, s, "out of memory");
        goto out;
    }
    rc = 0;
    goto out;
close:
    if (f)
        fclose(f);
out:
    free(file);
    return rc;
}

/* libpq's own parser: what it refuses, the daemon could never connect with. An empty string
 * would mean "everything from the environment", which a service should not depend on. */
static int check_conninfo(struct parser *p, const config_setting_t *s, const char *conninfo)
{
    char *why = NULL;
    PQconninfoOption *opts;

    if (conninfo[strspn(conninfo, " \t\n")] == '\0')
        return fail(p, s, "'conninfo' is empty: name at least the database, e.g. "
                    "\"host=/run/postgresql dbname=inbox user=herinnerd\"");
    if ((opts = PQconninfoParse(conninfo, &why)) == NULL) {
        char what[256];
        snprintf(what, sizeof(what), "%s", why ? why : "out of memory");
        what[strcspn(what, "\n")] = '\0';
        PQfreemem(why);
        return fail(p, s, "'conninfo' is not valid: %s", what);
    }
    PQconninfoFree(opts);
    return 0;
}

static int parse_database(struct parser *p, const config_setting_t *g, struct config *cfg)
{
    static const char *const keys[] = { "conninfo", NULL };

    if (g == NULL) {
        fail(p, NULL, "missing required group 'database'");
        return -1;
    }
    if (check_keys(p, g, "database", keys) == -1 ||
        get_string(p, g, "conninfo", 1, &cfg->conninfo) == -1)
        return -1;
    return check_conninfo(p, config_setting_get_member(g, "conninfo"), cfg->conninfo);
}

static int parse_email(struct parser *p, const config_setting_t *g, struct email_config *e)
{
    static const char *const keys[] = { "server", "from", "starttls", "workers", "batch",
                                        "timeout", "username", "password", "password_file",
                                        "link", "helo", "return_path", NULL };
    char *starttls = NULL;
    int rc = -1;

    e->workers = 4;
    e->batch = 20;
    e->timeout = 60;
    e->link = 1;
    if (g == NULL)
        return 0;
    e->enabled = 1;
    if (get_bool(p, g, "link", &e->link) == -1)
        return -1;
    if (check_keys(p, g, "email", keys) == -1 || get_string(p, g, "server", 1, &e->server) == -1 ||
        get_string(p, g, "from", 1, &e->from) == -1 ||
        get_string(p, g, "starttls", 0, &starttls) == -1 ||
        get_int(p, g, "workers", 1, 64, &e->workers) == -1 ||
        get_int(p, g, "batch", 1, 1000, &e->batch) == -1 ||
        get_duration_in(p, g, "timeout", 1, "1s", 3600, "1h", &e->timeout) == -1 ||
        get_string(p, g, "username", 0, &e->username) == -1 || get_secret(p, g, &e->password) == -1)
        goto out;
    if (starttls == NULL || strcmp(starttls, "if-available") == 0)
        e->starttls = STARTTLS_IF_AVAILABLE;
    else if (strcmp(starttls, "no") == 0)
        e->starttls = STARTTLS_NO;
    else if (strcmp(starttls, "required") == 0)
        e->starttls = STARTTLS_REQUIRED;
    else {
        fail(p, config_setting_get_member(g, "starttls"),
             "'starttls' must be \"no\", \"if-available\" or \"required\"");
        goto out;
    }
    char *display = NULL, *addr = NULL;
    if (mime_parse_mailbox(e->from, &display, &addr) == -1) {
        fail(p, config_setting_get_member(g, "from"),
             "'from' must be an address like \"MijnOverheid <noreply@example.nl>\"");
        goto out;
    }
    size_t domain_len = strlen(strchr(addr, '@') + 1);
    free(display);
    free(addr);
    const char *why = value_server(e->server);
    if (why != NULL) {
        fail(p, config_setting_get_member(g, "server"), "'server' %s", why);
        goto out;
    }
    if (domain_len > 80) { /* it names every Message-ID, which attempts keep (128 bytes) */
        fail(p, config_setting_get_member(g, "from"), "the domain of 'from' is longer than 80 characters");
        goto out;
    }
    if (get_string(p, g, "helo", 0, &e->helo) == -1)
        goto out;
    if (e->helo && !mime_helo_ok(e->helo)) {
        fail(p, config_setting_get_member(g, "helo"),
             "'helo' must be a host name like \"mail.gemeente.example\" or \"[192.0.2.1]\"");
        goto out;
    }
    if (get_string(p, g, "return_path", 0, &e->return_path) == -1)
        goto out;
    const char *bad_path = e->return_path ? dsn_return_path_problem(e->return_path) : NULL;
    if (bad_path) {
        fail(p, config_setting_get_member(g, "return_path"), "'return_path' %s", bad_path);
        goto out;
    }
    if (e->timeout < 1) {
        fail(p, config_setting_get_member(g, "timeout"), "'timeout' must be at least 1s");
        goto out;
    }
    rc = 0;
out:
    free(starttls);
    return rc;
}

/* What an SMS may show as its sender (GSM 03.40): a short alphanumeric name, or a number. */
static int sms_sender_ok(const char *s)
{
    size_t n = strlen(s), digits = strspn(s + (s[0] == '+'), "0123456789");

    if (n > 0 && digits == n - (s[0] == '+'))
        return digits >= 1 && digits <= 15;
    if (n < 1 || n > 11 || s[0] == ' ')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == ' '))
            return 0;
    return 1;
}

static int parse_sms(struct parser *p, const config_setting_t *g, struct sms_config *s)
{
    static const char *const keys[] = { "url", "username", "password", "password_file", "sender",
                                        "default_country", "max_in_flight", "timeout", "dlr_base",
                                        "link", "max_parts", NULL };
    s->max_in_flight = 16;
    s->timeout = 30;
    s->max_parts = 1;
    if (g == NULL)
        return 0;
    s->enabled = 1;
    /* Dutch agencies tell citizens they never text links: SMS says "log in" unless told */
    if (get_bool(p, g, "link", &s->link) == -1 ||
        get_int(p, g, "max_parts", 1, 10, &s->max_parts) == -1)
        return -1;
    if (check_keys(p, g, "sms", keys) == -1 || get_string(p, g, "url", 1, &s->url) == -1 ||
        get_string(p, g, "username", 1, &s->username) == -1 || get_secret(p, g, &s->password) == -1 ||
        get_string(p, g, "sender", 1, &s->sender) == -1 ||
        get_string(p, g, "default_country", 0, &s->default_country) == -1 ||
        get_int(p, g, "max_in_flight", 1, 1024, &s->max_in_flight) == -1 ||
        get_duration_in(p, g, "timeout", 1, "1s", 600, "10m", &s->timeout) == -1 ||
        get_string(p, g, "dlr_base", 0, &s->dlr_base) == -1)
        return -1;
    const char *why = value_url(s->url, "http");
    if (why != NULL)
        return fail(p, config_setting_get_member(g, "url"), "'url' %s", why);
    if (s->dlr_base != NULL && (value_url(s->dlr_base, "http") != NULL || strchr(s->dlr_base, '?')))
        return fail(p, config_setting_get_member(g, "dlr_base"),
                    "'dlr_base' must be an http:// URL without a query, e.g. \"http://10.0.0.5:9187\"");
    if (s->default_country == NULL && (s->default_country = strdup("31")) == NULL)
        return fail(p, g, "out of memory");
    if (strspn(s->default_country, "0123456789") != strlen(s->default_country) ||
        strlen(s->default_country) < 1 || strlen(s->default_country) > 3)
        return fail(p, config_setting_get_member(g, "default_country"),
                    "'default_country' must be a calling code like \"31\"");
    if (s->password == NULL)
        return fail(p, g, "missing required key 'password' (or 'password_file')");
    if (!sms_sender_ok(s->sender))
        return fail(p, config_setting_get_member(g, "sender"),
                    "'sender' must be a name of 1 to 11 letters, digits or spaces, or a number "
                    "of up to 15 digits");
    return 0;
}

static int parse_paper(struct parser *p, const config_setting_t *g, struct paper_config *pc)
{
    static const char *const keys[] = { "spool", "cutoff", "sender_address", "contact", NULL };

    pc->cutoff = 17 * 60 + 30;
    if (g == NULL)
        return 0;
    pc->enabled = 1;
    if (check_keys(p, g, "paper", keys) == -1 || get_string(p, g, "spool", 1, &pc->spool) == -1 ||
        get_clock(p, g, "cutoff", &pc->cutoff) == -1 ||
        get_string(p, g, "sender_address", 0, &pc->sender_address) == -1 ||
        get_string(p, g, "contact", 0, &pc->contact) == -1)
        return -1;
    size_t chars = 0;
    for (const char *c = pc->contact; c && *c; c++)
        chars += ((unsigned char)*c & 0xC0) != 0x80;
    if (pc->contact && (strchr(pc->contact, '\n') || chars > 160))
        return fail(p, config_setting_get_member(g, "contact"),
                    "'contact' must be one line of at most 160 characters");
    if (pc->spool[0] != '/')
        return fail(p, config_setting_get_member(g, "spool"), "'spool' must be an absolute path");
    /* letters live at SPOOL/handed-over/DATE/ID-STEP.pdf: leave room for that under PATH_MAX */
    if (strlen(pc->spool) > 1024)
        return fail(p, config_setting_get_member(g, "spool"), "'spool' is longer than 1024 bytes");
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* A real calendar day written YYYY-MM-DD, as YYYYMMDD; -1 otherwise. */
static int parse_ymd(const char *s)
{
    static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, m, d, n = 0;

    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 ||
        s[4] != '-' || s[7] != '-' || strspn(s, "0123456789-") != 10 || y < 1970 || m < 1 ||
        m > 12 || d < 1 || d > mdays[m - 1])
        return -1;
    if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return -1;
    return y * 10000 + m * 100 + d;
}

/* holidays = [ "2027-12-31", ... ]; holiday_options = { good_friday = true;
 * liberation_day = "lustrum" | "every-year"; } */
static int parse_holidays(struct parser *p, const config_setting_t *root, struct holiday_config *h)
{
    static const char *const keys[] = { "good_friday", "liberation_day", NULL };
    const config_setting_t *list = config_setting_get_member(root, "holidays"), *opt;
    char *liberation = NULL;
    int rc = -1;

    if (get_group(p, root, "holiday_options", &opt) == -1)
        return -1;
    if (opt != NULL) {
        if (check_keys(p, opt, "holiday_options", keys) == -1 ||
            get_bool(p, opt, "good_friday", &h->good_friday) == -1 ||
            get_string(p, opt, "liberation_day", 0, &liberation) == -1)
            goto out;
        if (liberation && strcmp(liberation, "every-year") == 0)
            h->liberation_every_year = 1;
        else if (liberation && strcmp(liberation, "lustrum") != 0) {
            fail(p, config_setting_get_member(opt, "liberation_day"),
                 "'liberation_day' must be \"lustrum\" (every fifth year) or \"every-year\"");
            goto out;
        }
    }
    if (list != NULL) {
        if (config_setting_type(list) != CONFIG_TYPE_ARRAY &&
            config_setting_type(list) != CONFIG_TYPE_LIST) {
            fail(p, list, "'holidays' must be a list of dates like [ \"2027-12-31\" ]");
            goto out;
        }
        size_t n = config_setting_length(list);
        if (n && (h->extra = calloc(n, sizeof *h->extra)) == NULL) {
            fail(p, list, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(list, i);
            int ymd = config_setting_type(e) == CONFIG_TYPE_STRING
                          ? parse_ymd(config_setting_get_string(e)) : -1;
            if (ymd < 0) {
                fail(p, list, "'holidays' entry %zu is not a date like \"2027-12-31\"", i + 1);
                goto out;
            }
            h->extra[h->nextra++] = ymd;
        }
        qsort(h->extra, h->nextra, sizeof *h->extra, cmp_int);
        size_t k = 0;
        for (size_t i = 0; i < h->nextra; i++)
            if (k == 0 || h->extra[k - 1] != h->extra[i])
                h->extra[k++] = h->extra[i];
        h->nextra = k;
    }
    rc = 0;
out:
    free(liberation);
    return rc;
}

static int parse_http(struct parser *p, const config_setting_t *g, struct http_config *h)
{
    static const char *const keys[] = { "listen", "allow_remote", "max_connections", NULL };
    int loopback = 0, allow_remote = 0;

    if (g == NULL)
        return 0;
    if (check_keys(p, g, "http", keys) == -1 || get_string(p, g, "listen", 1, &h->listen) == -1 ||
        get_bool(p, g, "allow_remote", &allow_remote) == -1)
        return -1;
    const char *why = value_listen(h->listen, &loopback);
    if (why != NULL)
        return fail(p, config_setting_get_member(g, "listen"), "%s", why);
    /* /metrics and /dlr have no authentication: beyond this host only when someone says so */
    if (!loopback && !allow_remote)
        return fail(p, config_setting_get_member(g, "listen"),
                    "'listen' on %s can be reached from other hosts: set 'allow_remote = true;' "
                    "in 'http' if that is meant", h->listen);
    if (get_int(p, g, "max_connections", 4, 65536, &h->max_connections) == -1)
        return -1;
    return 0;
}

/* audit: { checkpoint = "1h"; } -- how often the daemon anchors the attempt chains */
static int parse_audit(struct parser *p, const config_setting_t *g, struct config *cfg)
{
    static const char *const keys[] = { "checkpoint", NULL };

    cfg->audit_checkpoint = 3600;
    if (g == NULL)
        return 0;
    return check_keys(p, g, "audit", keys) == -1 ||
           get_duration(p, g, "checkpoint", &cfg->audit_checkpoint) == -1 ? -1 : 0;
}

int config_channel_enabled(const struct config *cfg, enum channel_id ch)
{
    switch (ch) {
    case CHANNEL_EMAIL: return cfg->email.enabled;
    case CHANNEL_SMS: return cfg->sms.enabled;
    case CHANNEL_PAPER: return cfg->paper.enabled;
    default: return 1;
    }
}

static int parse_step(struct parser *p, const config_setting_t *s, const struct config *cfg,
                      struct step *st)
{
    static const char *const keys[] = { "channel", "after", "before_due", "template",
                                        "quiet_hours", "business_days", "retry", "link", NULL };
    static const char *const retry_keys[] = { "max", "backoff", NULL };
    char *channel = NULL, *quiet = NULL;
    const config_setting_t *retry;
    int rc = -1;

    st->line = config_setting_source_line(s);
    if (p->text)
        config_text_where(p->text, st->line, &st->line);
    st->holidays = &cfg->holidays;
    st->retry_max = 5;
    st->retry_backoff = 600;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return fail(p, s, "a step must be a group { channel = ...; after = ...; }");
    if (check_keys(p, s, "step", keys) == -1 || get_string(p, s, "channel", 1, &channel) == -1 ||
        get_string(p, s, "template", 0, &st->template) == -1 ||
        get_string(p, s, "quiet_hours", 0, &quiet) == -1 ||
        get_bool(p, s, "business_days", &st->business_days) == -1 ||
        get_group(p, s, "retry", &retry) == -1)
        goto out;

    int ch;
    for (ch = 0; ch < CHANNEL_COUNT; ch++)
        if (strcmp(channel, channel_names[ch]) == 0)
            break;
    if (ch == CHANNEL_COUNT) {
        fail(p, config_setting_get_member(s, "channel"),
             "unknown channel '%s' (known: email, sms, paper, null)", channel);
        goto out;
    }
    st->channel = ch;
    if (!config_channel_enabled(cfg, st->channel)) {
        fail(p, config_setting_get_member(s, "channel"),
             "channel '%s' is used but has no '%s' group", channel, channel);
        goto out;
    }
    if (config_setting_get_member(s, "link") != NULL) {
        int on = 0;
        if (get_bool(p, s, "link", &on) == -1)
            goto out;
        if (st->channel != CHANNEL_EMAIL && st->channel != CHANNEL_SMS) {
            fail(p, config_setting_get_member(s, "link"), "'link' applies to email and sms steps");
            goto out;
        }
        st->link = on ? 1 : -1;
    }

    const config_setting_t *after = config_setting_get_member(s, "after");
    const config_setting_t *before = config_setting_get_member(s, "before_due");
    if ((after == NULL) == (before == NULL)) {
        fail(p, s, "a step needs exactly one of 'after' or 'before_due'");
        goto out;
    }
    st->from_due = before != NULL;
    if (get_duration(p, s, st->from_due ? "before_due" : "after", &st->offset) == -1)
        goto out;

    if (st->template == NULL && (st->template = strdup("notice")) == NULL)
        goto out;
    /* the null channel sends nothing: any name an e-mail could use will do */
    if (!template_exists(cfg->templates, st->channel == CHANNEL_NULL ? CHANNEL_EMAIL : st->channel,
                         st->template)) {
        fail(p, config_setting_get_member(s, "template"),
             "unknown template '%s' for %s (built in: notice, reminder, final; or a file "
             "%s.%s.LANGUAGE in 'templates')", st->template, channel_name(st->channel),
             st->template, st->channel == CHANNEL_PAPER ? "letter" : channel_name(st->channel));
        goto out;
    }
    if (quiet != NULL && clock_range_parse(quiet, &st->quiet_start, &st->quiet_end) == -1) {
        fail(p, config_setting_get_member(s, "quiet_hours"),
             "'quiet_hours' must be a range like \"21:00-08:00\"");
        goto out;
    }
    if (retry != NULL) {
        if (check_keys(p, retry, "retry", retry_keys) == -1 ||
            get_int(p, retry, "max", 0, 100, &st->retry_max) == -1 ||
            get_duration_in(p, retry, "backoff", 1, "1s", 7 * 86400, "7d", &st->retry_backoff) == -1)
            goto out;
    }
    rc = 0;
out:
    free(channel);
    free(quiet);
    return rc;
}

static int parse_kinds(struct parser *p, const config_setting_t *pol, struct policy *po)
{
    const config_setting_t *k = config_setting_get_member(pol, "kinds");

    if (k == NULL)
        return 0;
    if (config_setting_type(k) != CONFIG_TYPE_ARRAY && config_setting_type(k) != CONFIG_TYPE_LIST)
        return fail(p, k, "'kinds' must be a list of strings like [ \"aanslag\" ]");
    po->nkinds = config_setting_length(k);
    if ((po->kinds = calloc(po->nkinds + 1, sizeof(char *))) == NULL)
        return fail(p, k, "out of memory");
    for (size_t i = 0; i < po->nkinds; i++) {
        const config_setting_t *e = config_setting_get_elem(k, i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return fail(p, k, "'kinds' must be a list of strings");
        if (config_setting_get_string(e)[0] == '\0' ||
            strlen(config_setting_get_string(e)) > MAX_NAME)
            return fail(p, k, "a kind must be 1 to %d bytes long", MAX_NAME);
        if ((po->kinds[i] = strdup(config_setting_get_string(e))) == NULL)
            return fail(p, k, "out of memory");
    }
    return 0;
}

/* Offsets after created_at must not go backwards, nor offsets before due_at forwards: a ladder
 * that escalates to paper before the e-mail is almost certainly a typo. */
static int check_step_order(struct parser *p, const config_setting_t *steps, const struct policy *po)
{
    long last_after = -1, last_before = -1;

    for (size_t i = 0; i < po->nsteps; i++) {
        const struct step *st = &po->steps[i];
        const config_setting_t *s = config_setting_get_elem(steps, i);
        /* "after" counts from arrival, "before_due" back from the deadline: the ladder climbs
         * from the one to the other (the last, due-bound steps make sure a letter arrives in
         * time), never back */
        if (!st->from_due && last_before >= 0)
            return fail(p, s, "steps out of order: an 'after' step cannot follow a 'before_due' "
                        "step");
        if (!st->from_due) {
            if (st->offset < last_after)
                return fail(p, s, "steps out of order: 'after' is earlier than the step before");
            last_after = st->offset;
        } else {
            if (last_before >= 0 && st->offset > last_before)
                return fail(p, s, "steps out of order: 'before_due' is earlier than the step before");
            last_before = st->offset;
        }
    }
    return 0;
}

static int parse_policy(struct parser *p, const config_setting_t *pol, const struct config *cfg,
                        struct policy *po)
{
    static const char *const keys[] = { "name", "kinds", "hide_subject", "bundle", "steps", NULL };
    const config_setting_t *steps;

    if (config_setting_type(pol) != CONFIG_TYPE_GROUP)
        return fail(p, pol, "a policy must be a group { name = ...; steps = (...); }");
    if (check_keys(p, pol, "policy", keys) == -1 || get_string(p, pol, "name", 1, &po->name) == -1 ||
        parse_kinds(p, pol, po) == -1 || get_bool(p, pol, "hide_subject", &po->hide_subject) == -1 ||
        get_duration_in(p, pol, "bundle", 0, "0s", 30 * 86400, "30d", &po->bundle) == -1)
        return -1;
    if (po->name[0] == '\0' || strlen(po->name) > MAX_NAME)
        return fail(p, config_setting_get_member(pol, "name"),
                    "a policy name must be 1 to %d bytes long", MAX_NAME);
    steps = config_setting_get_member(pol, "steps");
    if (steps == NULL)
        return fail(p, pol, "policy '%s' has no 'steps'", po->name);
    if (config_setting_type(steps) != CONFIG_TYPE_LIST)
        return fail(p, steps, "'steps' must be a list ( { ... }, { ... } )");
    po->nsteps = config_setting_length(steps);
    if (po->nsteps == 0)
        return fail(p, steps, "policy '%s' has no steps", po->name);
    if ((po->steps = calloc(po->nsteps, sizeof(struct step))) == NULL)
        return fail(p, steps, "out of memory");
    for (size_t i = 0; i < po->nsteps; i++)
        if (parse_step(p, config_setting_get_elem(steps, i), cfg, &po->steps[i]) == -1)
            return -1;
    return check_step_order(p, steps, po);
}

/* A kind (or "*") in two policies: only the first would ever be used for it. */
static int check_kinds_once(struct parser *p, const config_setting_t *pol, const struct config *cfg,
                            size_t i)
{
    const struct policy *po = &cfg->policies[i];

    for (size_t k = 0; k < po->nkinds; k++)
        for (size_t j = 0; j <= i; j++)
            for (size_t l = 0; l < (j < i ? cfg->policies[j].nkinds : k); l++)
                if (strcmp(cfg->policies[j].kinds[l], po->kinds[k]) == 0)
                    return fail(p, config_setting_get_member(pol, "kinds"),
                                "kind '%s' is already in policy '%s'", po->kinds[k],
                                cfg->policies[j].name);
    return 0;
}

static int parse_policies(struct parser *p, const config_setting_t *root, struct config *cfg)
{
    const config_setting_t *list = config_setting_get_member(root, "policies");

    if (list == NULL)
        return fail(p, NULL, "missing required list 'policies'");
    if (config_setting_type(list) != CONFIG_TYPE_LIST || config_setting_length(list) == 0)
        return fail(p, list, "'policies' must be a non-empty list ( { ... } )");
    cfg->npolicies = config_setting_length(list);
    if ((cfg->policies = calloc(cfg->npolicies, sizeof(struct policy))) == NULL)
        return fail(p, list, "out of memory");
    for (size_t i = 0; i < cfg->npolicies; i++) {
        const config_setting_t *pol = config_setting_get_elem(list, i);
        if (parse_policy(p, pol, cfg, &cfg->policies[i]) == -1)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->policies[j].name, cfg->policies[i].name) == 0)
                return fail(p, pol, "policy '%s' is defined twice", cfg->policies[i].name);
        if (check_kinds_once(p, pol, cfg, i) == -1)
            return -1;
    }
    return 0;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* How long a claim holds an escalation without being renewed: long enough for a slow server
 * and a busy loop, short enough that a dead process's work continues soon. */
static int parse_lease(struct parser *p, const config_setting_t *root, struct config *cfg)
{
    cfg->lease = 300;
    if (get_duration(p, root, "lease", &cfg->lease) == -1)
        return -1;
    if (cfg->lease < 2 || cfg->lease > 86400)
        return fail(p, config_setting_get_member(root, "lease"),
                    "'lease' must be between 2s and 1d");
    return 0;
}

/* The templates directory: read from disk and appended to the effective text (so the hash and
 * the stored configuration cover the wording), or, for a stored configuration, read back from
 * that text. A relative directory is taken from the configuration file's. */
static int parse_templates(struct parser *p, const config_setting_t *root, struct config *cfg)
{
    char dir[4096], *block = NULL;
    const char *slash = strrchr(cfg->path, '/');

    if (cfg->templates_dir == NULL)
        return 0;
    if (p->flags & FROM_STORE)
        return templates_from_text(cfg->path, cfg->text, &cfg->templates, p->err, p->errlen);
    if (cfg->templates_dir[0] == '\0')
        return fail(p, config_setting_get_member(root, "templates"),
                    "'templates' must name a directory");
    if (cfg->templates_dir[0] == '/' || slash == NULL)
        snprintf(dir, sizeof(dir), "%s", cfg->templates_dir);
    else
        snprintf(dir, sizeof(dir), "%.*s/%s", (int)(slash - cfg->path), cfg->path,
                 cfg->templates_dir);
    if (templates_read_dir(dir, &cfg->templates, &block, p->err, p->errlen) == -1)
        return -1;
    size_t tlen = strlen(cfg->text), blen = strlen(block);
    char *text = tlen + blen < CONFIG_MAX_TEXT ? realloc(cfg->text, tlen + blen + 1) : NULL;
    if (text == NULL) {
        free(block);
        return fail(p, config_setting_get_member(root, "templates"),
                    "the configuration with its templates is larger than %d bytes",
                    CONFIG_MAX_TEXT);
    }
    memcpy(text + tlen, block, blen + 1);
    cfg->text = text;
    free(block);
    return 0;
}

static int parse_top(struct parser *p, const config_setting_t *root, struct config *cfg)
{
    static const char *const keys[] = { "database", "email", "sms", "paper", "http", "policies",
                                        "instance", "timezone", "inbox_url", "lease",
                                        "allow_http_links", "holidays", "holiday_options",
                                        "audit", "templates", NULL };
    const config_setting_t *db, *email, *sms, *paper, *http, *audit;

    if (check_keys(p, root, "the top level", keys) == -1 ||
        get_string(p, root, "instance", 0, &cfg->instance) == -1 ||
        get_string(p, root, "timezone", 0, &cfg->timezone) == -1 ||
        get_string(p, root, "inbox_url", 0, &cfg->inbox_url) == -1 ||
        parse_lease(p, root, cfg) == -1 ||
        get_bool(p, root, "allow_http_links", &cfg->allow_http_links) == -1 ||
        get_group(p, root, "database", &db) == -1 || get_group(p, root, "email", &email) == -1 ||
        get_group(p, root, "sms", &sms) == -1 || get_group(p, root, "paper", &paper) == -1 ||
        get_group(p, root, "http", &http) == -1 || get_group(p, root, "audit", &audit) == -1 ||
        parse_audit(p, audit, cfg) == -1)
        return -1;
    if (parse_database(p, db, cfg) == -1 || parse_email(p, email, &cfg->email) == -1 ||
        parse_sms(p, sms, &cfg->sms) == -1 || parse_paper(p, paper, &cfg->paper) == -1 ||
        parse_http(p, http, &cfg->http) == -1 || parse_holidays(p, root, &cfg->holidays) == -1)
        return -1;
    if (cfg->timezone != NULL && value_time_zone(cfg->timezone) != NULL)
        return fail(p, config_setting_get_member(root, "timezone"),
                    "unknown time zone '%s' (a name like \"Europe/Amsterdam\")", cfg->timezone);
    if (cfg->instance != NULL && (cfg->instance[0] == '\0' || strlen(cfg->instance) > MAX_NAME))
        return fail(p, config_setting_get_member(root, "instance"),
                    "'instance' must be 1 to %d bytes long", MAX_NAME);
    /* the link of last resort in every notice: it must be one a citizen may follow */
    const char *why = cfg->inbox_url ? value_url(cfg->inbox_url, "https") : NULL;
    if (why != NULL)
        return fail(p, config_setting_get_member(root, "inbox_url"), "'inbox_url' %s", why);
    if (cfg->sms.enabled && cfg->sms.dlr_base == NULL && cfg->http.listen == NULL)
        return fail(p, sms, "'sms' needs 'http.listen' (or 'sms.dlr_base') for delivery reports");
    if (cfg->instance == NULL) {
        char host[256] = "herinnerd";
        gethostname(host, sizeof(host) - 1);
        if ((cfg->instance = strdup(host)) == NULL)
            return fail(p, NULL, "out of memory");
    }
    if (cfg->inbox_url == NULL && (cfg->inbox_url = strdup("https://mijn.overheid.nl")) == NULL)
        return fail(p, NULL, "out of memory");
    if (get_string(p, root, "templates", 0, &cfg->templates_dir) == -1 ||
        parse_templates(p, root, cfg) == -1)
        return -1;
    return parse_policies(p, root, cfg);
}

/* Parse the effective text T (which it takes over) into a config named NAME. */
static struct config *load_effective(const char *name, struct config_text *t, int flags,
                                     char *err, size_t errlen)
{
    struct parser p = { name, err, errlen, t, flags };
    struct config *cfg = calloc(1, sizeof(*cfg));
    config_t lc;

    config_init(&lc);
    if (cfg == NULL || (cfg->path = strdup(name)) == NULL) {
        snprintf(err, errlen, "%s:0: out of memory", name);
        goto fail;
    }
    /* the text with every @include in it (and the templates, appended while parsing): hashed,
     * stored and parsed as one */
    cfg->text = t->text;
    t->text = NULL;
    if (config_read_string(&lc, cfg->text) != CONFIG_TRUE) {
        int line = config_error_line(&lc);
        const char *file = config_text_where(t, line, &line);
        snprintf(err, errlen, "%s:%d: %s", file, line, config_error_text(&lc));
        goto fail;
    }
    if (parse_top(&p, config_root_setting(&lc), cfg) == -1)
        goto fail;
    sha256_hex(cfg->text, strlen(cfg->text), cfg->sha256);
    config_destroy(&lc);
    config_text_free(t);
    return cfg;
fail:
    config_destroy(&lc);
    config_text_free(t);
    config_free(cfg);
    return NULL;
}

struct config *config_load_flags(const char *path, int flags, char *err, size_t errlen)
{
    struct config_text t;

    if (config_text_read(path, &t, err, errlen) == -1)
        return NULL;
    return load_effective(path, &t, flags, err, errlen);
}

struct config *config_load_text_flags(const char *name, const char *text, size_t len, int flags,
                                      char *err, size_t errlen)
{
    struct config_text t;

    if (config_text_from(name, text, len, &t, err, errlen) == -1)
        return NULL;
    return load_effective(name, &t, flags | FROM_STORE, err, errlen);
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    return config_load_flags(path, 0, err, errlen);
}

struct config *config_load_text(const char *name, const char *text, size_t len, char *err,
                                size_t errlen)
{
    return config_load_text_flags(name, text, len, 0, err, errlen);
}

static void policy_free(struct policy *po)
{
    for (size_t i = 0; i < po->nkinds; i++)
        free(po->kinds[i]);
    free(po->kinds);
    for (size_t i = 0; i < po->nsteps; i++)
        free(po->steps[i].template);
    free(po->steps);
    free(po->name);
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->npolicies; i++)
        policy_free(&cfg->policies[i]);
    free(cfg->policies);
    free(cfg->path);
    free(cfg->text);
    free(cfg->templates_dir);
    templates_free(cfg->templates);
    free(cfg->conninfo);
    free(cfg->instance);
    free(cfg->timezone);
    free(cfg->inbox_url);
    free(cfg->email.server);
    free(cfg->email.from);
    free(cfg->email.username);
    free(cfg->email.password);
    free(cfg->email.helo);
    free(cfg->email.return_path);
    free(cfg->sms.url);
    free(cfg->sms.username);
    free(cfg->sms.password);
    free(cfg->sms.sender);
    free(cfg->sms.default_country);
    free(cfg->sms.dlr_base);
    free(cfg->paper.spool);
    free(cfg->paper.sender_address);
    free(cfg->paper.contact);
    free(cfg->http.listen);
    free(cfg->holidays.extra);
    free(cfg);
}

const struct policy *config_policy_for_kind(const struct config *cfg, const char *kind)
{
    const struct policy *wildcard = NULL;

    for (size_t i = 0; i < cfg->npolicies; i++) {
        const struct policy *po = &cfg->policies[i];
        for (size_t k = 0; k < po->nkinds; k++) {
            if (strcmp(po->kinds[k], kind) == 0)
                return po;
            if (strcmp(po->kinds[k], "*") == 0 && wildcard == NULL)
                wildcard = po;
        }
    }
    if (wildcard == NULL)
        wildcard = config_policy_by_name(cfg, "default");
    return wildcard;
}

const struct policy *config_policy_by_name(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npolicies; i++)
        if (strcmp(cfg->policies[i].name, name) == 0)
            return &cfg->policies[i];
    return NULL;
}
