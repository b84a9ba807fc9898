/* The escalation engine: adopts unread messages, arms one timer for the earliest due step,
 * claims due work in batches (FOR UPDATE SKIP LOCKED with a lease), hands jobs to channels and
 * records each outcome as an attempt while advancing the escalation. */
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

/* Record a follow-up outcome for an earlier send (a delivery report, a letter handed over or
 * withdrawn) without moving the escalation. TRY is the try it belongs to. */
void engine_record_followup(struct engine *e, int64_t message_id, int step, int try_no,
                            int channel, int outcome, const char *detail, const char *address,
                            const char *external_id, const char *config_sha256);

/* Queue the outcomes still waiting to be written now. A channel calls this before a query that
 * relies on its outcome being recorded (a delivery report): the connection runs them in order. */
void engine_flush_records(struct engine *e);

/* The database's clock, estimated from the last query that reported now(). */
double engine_now(const struct engine *e);

#endif
