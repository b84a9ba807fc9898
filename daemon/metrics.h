/* Counters for /metrics and STATUS=. Updated on the loop thread only. */
#ifndef HERINNERD_METRICS_H
#define HERINNERD_METRICS_H

#include "config.h"
#include "outcome.h"

#define LATENCY_BUCKETS 10

struct metrics {
    unsigned long attempts[CHANNEL_COUNT][OUTCOME_COUNT];
    unsigned long latency_count[CHANNEL_COUNT];
    double latency_sum[CHANNEL_COUNT];
    unsigned long latency_bucket[CHANNEL_COUNT][LATENCY_BUCKETS];   /* cumulative, le bounds */
    unsigned long no_postal_address;    /* letters that could not be sent: alert on this */
    unsigned long read_stops;           /* escalations stopped because the message was read */
    unsigned long config_reload_failures;
};

extern const double metrics_latency_bounds[LATENCY_BUCKETS];

void metrics_attempt(struct metrics *m, enum channel_id ch, enum outcome o);
void metrics_latency(struct metrics *m, enum channel_id ch, double seconds);
unsigned long metrics_total(const struct metrics *m, enum outcome o);

/* Prometheus text format. STATES: rows (state, count, due, oldest due age) or NULL. */
struct pg_result;
char *metrics_render(const struct metrics *m, const struct pg_result *states, int db_up);

#endif
