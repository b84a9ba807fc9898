/* Counters for /metrics and STATUS=. Updated on the loop thread only.
 *
 * /metrics is served from these counters plus a few gauges that cost one index lookup each
 * (http.c): a scrape never scans a table, however large the history grows. Names follow the
 * Prometheus conventions: counters end in _total, durations are in seconds. */
#ifndef HERINNERD_METRICS_H
#define HERINNERD_METRICS_H

#include "config.h"
#include "outcome.h"

#define LATENCY_BUCKETS 10
/* room for every outcome outcome_name() knows (it answers "?" past the last one), so a new
 * outcome appears in /metrics without touching this file */
#define METRICS_OUTCOMES 16

struct metrics {
    unsigned long attempts[CHANNEL_COUNT][METRICS_OUTCOMES];
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

/* What the daemon knows without asking the database. */
struct metrics_state {
    int db_up;                  /* connected */
    int ready;                  /* connected and the schema is right */
    int in_flight;              /* sends started, outcome not yet recorded */
    double start_time;          /* seconds since the epoch */
};

/* Prometheus text format. GAUGES: the row of SQL_METRICS_GAUGES (http.c) or NULL. */
struct pg_result;
char *metrics_render(const struct metrics *m, const struct metrics_state *st,
                     const struct pg_result *gauges);

#endif
