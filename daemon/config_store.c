#include "config_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "pgarray.h"

#define SQL_SAVE_CONFIG \
    "INSERT INTO herinnerd.configs (sha256, body, first_loaded_by) VALUES ($1, $2, $3)" \
    " ON CONFLICT (sha256) DO NOTHING"

/* $1: the SHA-256s we have, as a text array literal. */
#define SQL_FROZEN_CONFIGS \
    "SELECT c.sha256, c.body FROM herinnerd.configs c" \
    " WHERE c.sha256 IN (SELECT DISTINCT config_sha256 FROM herinnerd.escalations" \
    "                     WHERE state = 'active')" \
    "   AND NOT (c.sha256 = ANY ($1::text[]))"

static void saved(PGresult *res, void *arg)
{
    (void)arg;
    if (res && !db_result_ok(res))
        log_warn("saving the configuration in herinnerd.configs failed: %s",
                 PQresultErrorMessage(res));
}

void config_store_save(struct daemon *d, const struct config *cfg)
{
    const char *params[] = { cfg->sha256, cfg->text, cfg->instance };

    db_query(d->db, 0, SQL_SAVE_CONFIG, 3, params, saved, NULL);
}

/* Older configs go to the end of the history: the current one stays the head. */
static void remember(struct daemon *d, struct config *cfg)
{
    struct config_entry *c = calloc(1, sizeof(*c)), **tail = &d->configs;

    if (c == NULL) {
        config_free(cfg);
        return;
    }
    c->cfg = cfg;
    while (*tail)
        tail = &(*tail)->next;
    *tail = c;
}

static void frozen_loaded(PGresult *res, void *arg)
{
    struct daemon *d = arg;

    if (!db_result_ok(res)) {
        if (res)
            log_warn("loading the configurations of running escalations failed: %s",
                     PQresultErrorMessage(res));
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *sha = PQgetvalue(res, i, 0), *body = PQgetvalue(res, i, 1);
        char name[96], err[1024];
        snprintf(name, sizeof(name), "herinnerd.configs:%.12s", sha);
        struct config *cfg = config_load_text(name, body, strlen(body), err, sizeof(err));
        if (cfg == NULL || strcmp(cfg->sha256, sha) != 0) {
            log_warn("escalations started under configuration %.12s continue with today's "
                     "policies: it no longer loads (%s)", sha, cfg ? "hash differs" : err);
            config_free(cfg);
            continue;
        }
        log_info("escalations started under configuration %.12s keep its policies", sha);
        remember(d, cfg);
    }
}

void config_store_load_frozen(struct daemon *d)
{
    struct pg_array known;

    if (pg_array_open(&known) == -1)
        return;
    for (const struct config_entry *c = d->configs; c; c = c->next)
        pg_array_add(&known, c->cfg->sha256);
    char *list = pg_array_close(&known);
    const char *params[] = { list };
    db_query(d->db, 0, SQL_FROZEN_CONFIGS, 1, params, frozen_loaded, d);
    free(list);
}
