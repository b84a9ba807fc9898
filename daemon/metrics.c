#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

const double metrics_latency_bounds[LATENCY_BUCKETS] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };

void metrics_attempt(struct metrics *m, enum channel_id ch, enum outcome o)
{
    if ((unsigned)ch < CHANNEL_COUNT && (unsigned)o < OUTCOME_COUNT)
        m->attempts[ch][o]++;
}

void metrics_latency(struct metrics *m, enum channel_id ch, double seconds)
{
    if ((unsigned)ch >= CHANNEL_COUNT)
        return;
    m->latency_count[ch]++;
    m->latency_sum[ch] += seconds;
    for (int i = 0; i < LATENCY_BUCKETS; i++)
        if (seconds <= metrics_latency_bounds[i])
            m->latency_bucket[ch][i]++;
}

unsigned long metrics_total(const struct metrics *m, enum outcome o)
{
    unsigned long n = 0;

    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        n += m->attempts[ch][o];
    return n;
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *metrics_render(const struct metrics *m, const struct pg_result *states, int db_up)
{
    char *out = NULL;
    size_t len;
    FILE *f = open_memstream(&out, &len);

    if (f == NULL)
        return NULL;
    family(f, "herinnerd_database_up", "gauge", "1 when the database connection is up.");
    fprintf(f, "herinnerd_database_up %d\n", db_up ? 1 : 0);

    family(f, "herinnerd_attempts_total", "counter", "Attempts recorded by this process.");
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        for (int o = 0; o < OUTCOME_COUNT; o++)
            fprintf(f, "herinnerd_attempts_total{channel=\"%s\",outcome=\"%s\"} %lu\n",
                    channel_name(ch), outcome_name(o), m->attempts[ch][o]);

    family(f, "herinnerd_send_latency_seconds", "histogram", "Time from claim to outcome.");
    for (int ch = 0; ch < CHANNEL_COUNT; ch++) {
        for (int i = 0; i < LATENCY_BUCKETS; i++)
            fprintf(f, "herinnerd_send_latency_seconds_bucket{channel=\"%s\",le=\"%g\"} %lu\n",
                    channel_name(ch), metrics_latency_bounds[i], m->latency_bucket[ch][i]);
        fprintf(f, "herinnerd_send_latency_seconds_bucket{channel=\"%s\",le=\"+Inf\"} %lu\n",
                channel_name(ch), m->latency_count[ch]);
        fprintf(f, "herinnerd_send_latency_seconds_sum{channel=\"%s\"} %.6f\n", channel_name(ch),
                m->latency_sum[ch]);
        fprintf(f, "herinnerd_send_latency_seconds_count{channel=\"%s\"} %lu\n",
                channel_name(ch), m->latency_count[ch]);
    }

    family(f, "herinnerd_letters_without_address_total", "counter",
           "Paper steps that failed for want of a postal address.");
    fprintf(f, "herinnerd_letters_without_address_total %lu\n", m->no_postal_address);
    family(f, "herinnerd_read_stops_total", "counter", "Escalations stopped because the message was read.");
    fprintf(f, "herinnerd_read_stops_total %lu\n", m->read_stops);
    family(f, "herinnerd_config_reload_failures_total", "counter", "Reloads refused.");
    fprintf(f, "herinnerd_config_reload_failures_total %lu\n", m->config_reload_failures);

    if (states != NULL) {
        const PGresult *res = (const PGresult *)states;
        static const char *const all[] = { "active", "read", "done", "failed" };
        double backlog = 0, oldest = 0;
        family(f, "herinnerd_escalations", "gauge", "Escalations by state (all instances).");
        for (size_t s = 0; s < sizeof(all) / sizeof(all[0]); s++) {
            const char *n = "0";
            for (int i = 0; i < PQntuples(res); i++)
                if (strcmp(PQgetvalue(res, i, 0), all[s]) == 0) {
                    n = PQgetvalue(res, i, 1);
                    backlog += strtod(PQgetvalue(res, i, 2), NULL);
                    double age = strtod(PQgetvalue(res, i, 3), NULL);
                    if (age > oldest)
                        oldest = age;
                }
            fprintf(f, "herinnerd_escalations{state=\"%s\"} %s\n", all[s], n);
        }
        family(f, "herinnerd_due_backlog", "gauge", "Active escalations whose step is due now.");
        fprintf(f, "herinnerd_due_backlog %.0f\n", backlog);
        family(f, "herinnerd_oldest_due_age_seconds", "gauge", "How long the oldest due step has waited.");
        fprintf(f, "herinnerd_oldest_due_age_seconds %.3f\n", oldest);
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}
