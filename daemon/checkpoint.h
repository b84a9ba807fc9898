/* Audit checkpoints on a timer (DESIGN.md §9): every `audit.checkpoint` the daemon asks the
 * database to commit to the head of every attempt chain (herinnerd.write_checkpoint) and sends
 * the line it gets back to the journal, so it lives outside the database. */
#ifndef HERINNERD_CHECKPOINT_H
#define HERINNERD_CHECKPOINT_H

#include <event2/event.h>

struct db;
struct checkpoint;

/* A checkpoint every INTERVAL seconds (0: none), recorded as written by WRITER (copied). The
 * first one comes after a minute (or INTERVAL, if shorter). NULL when out of memory. */
struct checkpoint *checkpoint_new(struct event_base *base, struct db *db, long interval,
                                  const char *writer);
/* A new interval (reload); counted from now. */
void checkpoint_set_interval(struct checkpoint *cp, long interval);
/* Write one now (e.g. before exit), unless one is under way. */
void checkpoint_now(struct checkpoint *cp);
/* After db_free(): a query still queued there must not call back into freed memory. */
void checkpoint_free(struct checkpoint *cp);

#endif
