/* The ledger: the only writer of herinnerd.attempts (DESIGN.md §5). Engine outcomes, in-doubt
 * takeovers, reads, delivery reports and letter moves all become one INSERT shape (ledger_sql.h),
 * each row de-duplicated on a key that names the fact, appended to this process's own chain.
 *
 * Entries queued in one loop turn go to the database together, in order, one statement per
 * batch; an entry that refers to an earlier send starts a new statement, so the send is
 * committed before the report that names it. An entry that cannot be written (the database
 * refused it, or is gone at exit) is logged in full and counted: nothing is dropped silently. */
#ifndef HERINNERD_LEDGER_H
#define HERINNERD_LEDGER_H

#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "outcome.h"

struct db;
struct ledger;

/* One fact for herinnerd.attempts. Strings are copied. */
struct attempt {
    int64_t message_id;
    int step;
    int try_no;                /* 0: the escalation's current try */
    enum channel_id channel;   /* CHANNEL_COUNT: no channel (a stop before any was chosen) */
    enum outcome outcome;
    const char *detail;
    const char *address;       /* NULL: none (for a report: the address of the send it names) */
    const char *external_id;
    const char *config_sha256; /* NULL: the escalation's */
    const char *claim;         /* the claim it was made under, or NULL */
    const char *fact;          /* de-duplication key: the same fact is never written twice */
    const char *refers;        /* a report: written only if the send with this external id is */
};

/* Where an outcome moves its escalation: only while ATTEMPT.claim is still the current claim. */
struct advance {
    int step, tries;
    double next_at;            /* epoch seconds; ignored unless state is active */
    const char *state;         /* "active", "done", "failed", "read" */
    const char *channel;       /* channel of the step now due ("" when none) */
};

/* RECORDED: the statement ran (the row is there, or was there already). MOVED: the escalation
 * moved (we held the claim). KNOWN: for a report, the send it names is recorded. */
typedef void (*ledger_done_fn)(void *arg, int recorded, int moved, int known);

struct ledger *ledger_new(struct event_base *base, struct db *db, const char *instance,
                          const char *chain);
/* Queue A (and ADV, or NULL) for writing; DONE (or NULL) is called once with the result. */
void ledger_write(struct ledger *l, const struct attempt *a, const struct advance *adv,
                  ledger_done_fn done, void *arg);
/* Send what is queued now rather than at the end of this loop turn. */
void ledger_flush(struct ledger *l);
/* Entries not yet written, or on their way. */
int ledger_pending(const struct ledger *l);
/* Entries that could not be written during this run (each was logged). */
unsigned long ledger_lost(const struct ledger *l);
/* The label new entries carry (a reload may rename nothing: chains stay with the process). */
const char *ledger_chain(const struct ledger *l);
/* Logs whatever is still queued; call after the database is gone. Returns how many entries
 * could not be written during the whole run. */
unsigned long ledger_free(struct ledger *l);

#endif
