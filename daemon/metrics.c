#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

const double metrics_latency_bounds[LATENCY_BUCKETS] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };

static int known_outcome(int o)
{
    return o >= 0 && o < METRICS_OUTCOMES && strcmp(outcome_name((enum outcome)o), "?") != 0;
}

void metrics_attempt(struct metrics *m, enum channel_id ch, enum outcome o)
{
    if ((unsigned)ch < CHANNEL_COUNT && known_outcome((int)o))
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

    if (!known_outcome((int)o))
        return 0;
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        n += m->attempts[ch][o];
    return n;
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(FILE *f, const char *name, const char *help, const char *value)
{
    family(f, name, "gauge", help);
    fprintf(f, "%s %s\n", name, value);
}

static void counter(FILE *f, const char *name, const char *help, unsigned long value)
{
    family(f, name, "counter", help);
    fprintf(f, "%s %lu\n", name, value);
}

char *metrics_render(const struct metrics *m, const struct metrics_state *st,
                     const struct pg_result *gauges)
{
    char *out = NULL;
    size_t len;
    FILE *f = open_memstream(&out, &len);

    if (f == NULL)
        return NULL;
    gauge(f, "herinnerd_database_up", "1 when the database connection is up.",
          st->db_up ? "1" : "0");
    gauge(f, "herinnerd_ready", "1 when connected to a database with the schema this herinnerd needs.",
          st->ready ? "1" : "0");
    family(f, "herinnerd_start_time_seconds", "gauge", "When this process started, in seconds since the epoch.");
    fprintf(f, "herinnerd_start_time_seconds %.3f\n", st->start_time);
    family(f, "herinnerd_in_flight_sends", "gauge", "Sends started by this process whose outcome is not yet recorded.");
    fprintf(f, "herinnerd_in_flight_sends %d\n", st->in_flight);

    family(f, "herinnerd_attempts_total", "counter",
           "Attempts recorded by this process, by channel and outcome.");
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        for (int o = 0; known_outcome(o); o++)
            fprintf(f, "herinnerd_attempts_total{channel=\"%s\",outcome=\"%s\"} %lu\n",
                    channel_name(ch), outcome_name(o), m->attempts[ch][o]);

    family(f, "herinnerd_send_latency_seconds", "histogram", "Time from claim to outcome, by channel.");
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

    counter(f, "herinnerd_letters_without_address_total",
            "Paper steps that failed for want of a postal address.", m->no_postal_address);
    counter(f, "herinnerd_read_stops_total", "Escalations stopped because the message was read.",
            m->read_stops);
    counter(f, "herinnerd_config_reload_failures_total", "Reloads refused.",
            m->config_reload_failures);

    if (gauges != NULL && PQntuples((const PGresult *)gauges) == 1) {
        const PGresult *res = (const PGresult *)gauges;
        gauge(f, "herinnerd_due_backlog",
              "Active escalations whose step is due now, all instances (counted up to 10000).",
              PQgetvalue(res, 0, 0));
        gauge(f, "herinnerd_oldest_due_age_seconds",
              "How long the longest-waiting due step has waited, all instances.",
              PQgetvalue(res, 0, 1));
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}
