/* The escalation engine: adopts unread messages, arms one timer for the earliest due step,
 * claims due work in batches (FOR UPDATE SKIP LOCKED, fenced by a claim token under a renewed
 * lease), hands jobs to channels and has the ledger record each outcome while it advances the
 * escalation. */
#ifndef HERINNERD_ENGINE_H
#define HERINNERD_ENGINE_H

#include <stdint.h>

struct daemon;
struct engine;
struct send_job;

struct engine *engine_new(struct daemon *d);
void engine_free(struct engine *e);

/* database events */
void engine_connected(struct engine *e);
void engine_notify(struct engine *e, const char *payload);

/* Stop claiming new work; in-flight sends still complete and get recorded. */
void engine_drain(struct engine *e);
/* Sends dispatched or outcomes not yet recorded. */
int engine_busy(const struct engine *e);
int engine_in_flight(const struct engine *e);
/* Outcomes handed to the ledger, not yet written. */
int engine_recording(const struct engine *e);

/* The loop has stopped: log every job whose outcome is not known and journal any outcome that
 * arrives from now on instead of recording it. Returns how many jobs were unfinished. */
unsigned long engine_stop(struct engine *e);
/* Jobs whose outcome never reached the ledger (each logged). */
unsigned long engine_unfinished(const struct engine *e);

/* The database's clock, estimated from the last query that reported now(). */
double engine_now(const struct engine *e);

#endif
