/* A small pthread pool for blocking work (libesmtp, file I/O). Work runs on a worker thread;
 * its completion runs back on the event loop, so all state stays with the loop. */
#ifndef HERINNERD_WORKERS_H
#define HERINNERD_WORKERS_H

#include <event2/event.h>

struct workers;

typedef void (*work_fn)(void *arg);

/* Needs evthread_use_pthreads() before BASE was created. */
struct workers *workers_new(struct event_base *base, int nthreads, const char *name);
/* WORK(arg) on a thread, then DONE(arg) on the loop. */
int workers_submit(struct workers *w, work_fn work, work_fn done, void *arg);
/* Items submitted whose DONE has not run yet. */
int workers_pending(const struct workers *w);
/* Waits for the queue to empty and the threads to finish; pending DONEs are not run. */
void workers_free(struct workers *w);

#endif
