#include "workers.h"

#include <pthread.h>
#include <sys/queue.h>
#include <stdlib.h>

#include "log.h"

struct work_item {
    work_fn work, done;
    void *arg;
    STAILQ_ENTRY(work_item) entry;
};

STAILQ_HEAD(item_queue, work_item);

struct workers {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct item_queue todo, finished;
    int stopping;
    int pending;               /* loop thread only */
    int nthreads;
    pthread_t *threads;
    struct event *finished_ev; /* activated by threads, runs DONEs on the loop */
};

static struct work_item *queue_pop(struct item_queue *q)
{
    struct work_item *it = STAILQ_FIRST(q);

    if (it)
        STAILQ_REMOVE_HEAD(q, entry);
    return it;
}

static void *worker_main(void *arg)
{
    struct workers *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct work_item *it;
        while ((it = queue_pop(&w->todo)) == NULL && !w->stopping)
            pthread_cond_wait(&w->wake, &w->lock);
        if (it == NULL)
            break;
        pthread_mutex_unlock(&w->lock);
        it->work(it->arg);
        pthread_mutex_lock(&w->lock);
        STAILQ_INSERT_TAIL(&w->finished, it, entry);
        event_active(w->finished_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void run_finished(evutil_socket_t fd, short what, void *arg)
{
    struct workers *w = arg;
    struct item_queue done = STAILQ_HEAD_INITIALIZER(done);

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->lock);
    STAILQ_CONCAT(&done, &w->finished);
    pthread_mutex_unlock(&w->lock);

    struct work_item *it;
    while ((it = queue_pop(&done)) != NULL) {
        w->pending--;
        it->done(it->arg);
        free(it);
    }
}

struct workers *workers_new(struct event_base *base, int nthreads, const char *name)
{
    struct workers *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    STAILQ_INIT(&w->todo);
    STAILQ_INIT(&w->finished);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->finished_ev = event_new(base, -1, 0, run_finished, w);
    w->threads = calloc(nthreads, sizeof(pthread_t));
    if (w->finished_ev == NULL || w->threads == NULL)
        goto fail;
    for (; w->nthreads < nthreads; w->nthreads++)
        if (pthread_create(&w->threads[w->nthreads], NULL, worker_main, w) != 0) {
            log_err("%s: cannot start worker thread", name);
            goto fail;
        }
    return w;
fail:
    workers_free(w);
    return NULL;
}

int workers_submit(struct workers *w, work_fn work, work_fn done, void *arg)
{
    struct work_item *it = malloc(sizeof(*it));

    if (it == NULL)
        return -1;
    it->work = work;
    it->done = done;
    it->arg = arg;
    pthread_mutex_lock(&w->lock);
    STAILQ_INSERT_TAIL(&w->todo, it, entry);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    w->pending++;
    return 0;
}

int workers_pending(const struct workers *w)
{
    return w->pending;
}

void workers_free(struct workers *w)
{
    struct work_item *it;

    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    while ((it = queue_pop(&w->finished)) != NULL)
        free(it);
    while ((it = queue_pop(&w->todo)) != NULL)
        free(it);
    if (w->finished_ev)
        event_free(w->finished_ev);
    free(w->threads);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
