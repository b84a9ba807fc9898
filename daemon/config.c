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

#include <openssl/evp.h>

#include "duration.h"
#include "mime.h"
#include "template.h"

struct parser {
    const char *path;
    char *err;
    size_t errlen;
};

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
    const char *file = s ? config_setting_source_file(s) : NULL;
    snprintf(p->err, p->errlen, "%s:%u: %s", file ? file : p->path,
             s ? config_setting_source_line(s) : 0, what);
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
        return fail(p, s, "'%s' must be a duration like \"30s\", \"15m\", \"2h\", \"3d\" or \"2w\"",
                    key);
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
    if (file == NULL)
        return 0;
    if (*out != NULL) {
        fail(p, config_setting_get_member(group, "password_file"),
             "give either 'password' or 'password_file', not both");
        goto out;
    }
    FILE *f = fopen(file, "r");
    char buf[512];
    if (f == NULL) {
        fail(p, config_setting_get_member(group, "password_file"), "cannot read '%s': %s", file,
             strerror(errno));
        goto out;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if ((*out = strdup(buf)) == NULL)
        goto out;
    rc = 0;
out:
    free(file);
    return rc;
}

static int parse_database(struct parser *p, const config_setting_t *g, struct config *cfg)
{
    static const char *const keys[] = { "conninfo", NULL };

    if (g == NULL) {
        fail(p, NULL, "missing required group 'database'");
        return -1;
    }
    if (check_keys(p, g, "database", keys) == -1)
        return -1;
    return get_string(p, g, "conninfo", 1, &cfg->conninfo);
}

static int parse_email(struct parser *p, const config_setting_t *g, struct email_config *e)
{
    static const char *const keys[] = { "server", "from", "starttls", "workers", "batch",
                                        "timeout", "username", "password", "password_file", NULL };
    char *starttls = NULL;
    int rc = -1;

    e->workers = 4;
    e->batch = 20;
    e->timeout = 60;
    if (g == NULL)
        return 0;
    e->enabled = 1;
    if (check_keys(p, g, "email", keys) == -1 || get_string(p, g, "server", 1, &e->server) == -1 ||
        get_string(p, g, "from", 1, &e->from) == -1 ||
        get_string(p, g, "starttls", 0, &starttls) == -1 ||
        get_int(p, g, "workers", 1, 64, &e->workers) == -1 ||
        get_int(p, g, "batch", 1, 1000, &e->batch) == -1 ||
        get_duration(p, g, "timeout", &e->timeout) == -1 ||
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
    free(display);
    free(addr);
    if (e->timeout < 1) {
        fail(p, config_setting_get_member(g, "timeout"), "'timeout' must be at least 1s");
        goto out;
    }
    rc = 0;
out:
    free(starttls);
    return rc;
}

static int parse_sms(struct parser *p, const config_setting_t *g, struct sms_config *s)
{
    static const char *const keys[] = { "url", "username", "password", "password_file", "sender",
                                        "default_country", "max_in_flight", "timeout", "dlr_base",
                                        NULL };
    s->max_in_flight = 16;
    s->timeout = 30;
    if (g == NULL)
        return 0;
    s->enabled = 1;
    if (check_keys(p, g, "sms", keys) == -1 || get_string(p, g, "url", 1, &s->url) == -1 ||
        get_string(p, g, "username", 1, &s->username) == -1 || get_secret(p, g, &s->password) == -1 ||
        get_string(p, g, "sender", 1, &s->sender) == -1 ||
        get_string(p, g, "default_country", 0, &s->default_country) == -1 ||
        get_int(p, g, "max_in_flight", 1, 1024, &s->max_in_flight) == -1 ||
        get_duration(p, g, "timeout", &s->timeout) == -1 ||
        get_string(p, g, "dlr_base", 0, &s->dlr_base) == -1)
        return -1;
    if (strncmp(s->url, "http://", 7) != 0)
        return fail(p, config_setting_get_member(g, "url"), "'url' must start with http://");
    if (s->dlr_base != NULL && (strncmp(s->dlr_base, "http://", 7) != 0 || strchr(s->dlr_base, '?')))
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
    return 0;
}

static int parse_paper(struct parser *p, const config_setting_t *g, struct paper_config *pc)
{
    static const char *const keys[] = { "spool", "cutoff", "sender_address", NULL };

    pc->cutoff = 17 * 60 + 30;
    if (g == NULL)
        return 0;
    pc->enabled = 1;
    if (check_keys(p, g, "paper", keys) == -1 || get_string(p, g, "spool", 1, &pc->spool) == -1 ||
        get_clock(p, g, "cutoff", &pc->cutoff) == -1 ||
        get_string(p, g, "sender_address", 0, &pc->sender_address) == -1)
        return -1;
    if (pc->spool[0] != '/')
        return fail(p, config_setting_get_member(g, "spool"), "'spool' must be an absolute path");
    return 0;
}

static int parse_http(struct parser *p, const config_setting_t *g, struct http_config *h)
{
    static const char *const keys[] = { "listen", "max_connections", NULL };

    if (g == NULL)
        return 0;
    if (check_keys(p, g, "http", keys) == -1 || get_string(p, g, "listen", 1, &h->listen) == -1)
        return -1;
    if (get_int(p, g, "max_connections", 4, 65536, &h->max_connections) == -1)
        return -1;
    if (strrchr(h->listen, ':') == NULL)
        return fail(p, config_setting_get_member(g, "listen"), "'listen' must be host:port");
    return 0;
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
                                        "quiet_hours", "business_days", "retry", NULL };
    static const char *const retry_keys[] = { "max", "backoff", NULL };
    char *channel = NULL, *quiet = NULL;
    const config_setting_t *retry;
    int rc = -1;

    st->line = config_setting_source_line(s);
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
    if (!template_exists(st->template)) {
        fail(p, config_setting_get_member(s, "template"),
             "unknown template '%s' (known: notice, reminder, final)", st->template);
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
            get_duration(p, retry, "backoff", &st->retry_backoff) == -1)
            goto out;
        if (st->retry_backoff < 1) {
            fail(p, config_setting_get_member(retry, "backoff"), "'backoff' must be at least 1s");
            goto out;
        }
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
    static const char *const keys[] = { "name", "kinds", "hide_subject", "steps", NULL };
    const config_setting_t *steps;

    if (config_setting_type(pol) != CONFIG_TYPE_GROUP)
        return fail(p, pol, "a policy must be a group { name = ...; steps = (...); }");
    if (check_keys(p, pol, "policy", keys) == -1 || get_string(p, pol, "name", 1, &po->name) == -1 ||
        parse_kinds(p, pol, po) == -1 || get_bool(p, pol, "hide_subject", &po->hide_subject) == -1)
        return -1;
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
    }
    return 0;
}

static int read_whole_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL)
        return -1;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = (cap ? cap * 2 : 8192));
            if (nb == NULL)
                goto fail;
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f))
        goto fail;
    fclose(f);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    fclose(f);
    return -1;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int parse_top(struct parser *p, const config_setting_t *root, struct config *cfg)
{
    static const char *const keys[] = { "database", "email", "sms", "paper", "http", "policies",
                                        "instance", "timezone", "inbox_url", NULL };
    const config_setting_t *db, *email, *sms, *paper, *http;

    if (check_keys(p, root, "the top level", keys) == -1 ||
        get_string(p, root, "instance", 0, &cfg->instance) == -1 ||
        get_string(p, root, "timezone", 0, &cfg->timezone) == -1 ||
        get_string(p, root, "inbox_url", 0, &cfg->inbox_url) == -1 ||
        get_group(p, root, "database", &db) == -1 || get_group(p, root, "email", &email) == -1 ||
        get_group(p, root, "sms", &sms) == -1 || get_group(p, root, "paper", &paper) == -1 ||
        get_group(p, root, "http", &http) == -1)
        return -1;
    if (parse_database(p, db, cfg) == -1 || parse_email(p, email, &cfg->email) == -1 ||
        parse_sms(p, sms, &cfg->sms) == -1 || parse_paper(p, paper, &cfg->paper) == -1 ||
        parse_http(p, http, &cfg->http) == -1)
        return -1;
    if (cfg->timezone != NULL) {
        char zone[PATH_MAX];
        snprintf(zone, sizeof(zone), "/usr/share/zoneinfo/%s", cfg->timezone);
        if (strstr(cfg->timezone, "..") != NULL || access(zone, R_OK) == -1)
            return fail(p, config_setting_get_member(root, "timezone"), "unknown time zone '%s'",
                        cfg->timezone);
    }
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
    return parse_policies(p, root, cfg);
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len;
    struct config *cfg;

    if (read_whole_file(path, &data, &len) == -1) {
        snprintf(err, errlen, "%s:0: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    cfg = config_load_text(path, data, len, err, errlen);
    free(data);
    return cfg;
}

struct config *config_load_text(const char *name, const char *text, size_t len, char *err,
                                size_t errlen)
{
    struct parser p = { name, err, errlen };
    struct config *cfg = calloc(1, sizeof(*cfg));
    config_t lc;
    char *dir = NULL;

    config_init(&lc);
    if (cfg == NULL || (cfg->path = strdup(name)) == NULL || (cfg->text = strndup(text, len)) == NULL) {
        snprintf(err, errlen, "%s:0: out of memory", name);
        goto fail;
    }
    if (strlen(cfg->text) != len) {
        snprintf(err, errlen, "%s:0: contains a NUL byte", name);
        goto fail;
    }
    sha256_hex(text, len, cfg->sha256);
    /* @include paths are relative to the file's directory, as with config_read_file */
    if ((dir = strdup(name)) != NULL && strrchr(dir, '/') != NULL) {
        *strrchr(dir, '/') = '\0';
        config_set_include_dir(&lc, dir[0] ? dir : "/");
    }
    if (config_read_string(&lc, cfg->text) != CONFIG_TRUE) {
        snprintf(err, errlen, "%s:%d: %s", config_error_file(&lc) ? config_error_file(&lc) : name,
                 config_error_line(&lc), config_error_text(&lc));
        goto fail;
    }
    if (parse_top(&p, config_root_setting(&lc), cfg) == -1)
        goto fail;
    config_destroy(&lc);
    free(dir);
    return cfg;
fail:
    config_destroy(&lc);
    free(dir);
    config_free(cfg);
    return NULL;
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
    free(cfg->conninfo);
    free(cfg->instance);
    free(cfg->timezone);
    free(cfg->inbox_url);
    free(cfg->email.server);
    free(cfg->email.from);
    free(cfg->email.username);
    free(cfg->email.password);
    free(cfg->sms.url);
    free(cfg->sms.username);
    free(cfg->sms.password);
    free(cfg->sms.sender);
    free(cfg->sms.default_country);
    free(cfg->sms.dlr_base);
    free(cfg->paper.spool);
    free(cfg->paper.sender_address);
    free(cfg->http.listen);
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
