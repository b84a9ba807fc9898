/* A channel delivers one step of an escalation: e-mail, SMS, paper or null. Channels are
 * pluggable backends chosen by name (after OpenSMTPD's queue backends). Every send completes by
 * calling job->done exactly once, on the event loop thread. */
#ifndef HERINNERD_CHANNEL_H
#define HERINNERD_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include "config.h"
#include "outcome.h"

struct claim;
struct daemon;
struct engine;

struct send_job {
    /* what to send: filled by the engine, owned by the job */
    int64_t message_id;
    int step;
    int try_no;                /* 1 for the first try of a step */
    enum channel_id channel;
    char *policy;              /* frozen policy name */
    char *template;
    int hide_subject;
    int step_link;             /* the step's 'link': 1 yes, -1 no, 0 the channel's setting */
    char *recipient_name, *email, *mobile, *postal_address, *language;
    char *sender, *kind, *subject, *link;
    double created_at, due_at;
    char config_sha256[65];
    char claim[96];            /* the claim token: every write about this job carries it */
    /* one notice about several messages (a policy's bundle): the other messages it names, each
     * recorded with this send's outcome and external id; COUNT and LIST fill {count} and
     * {messages} (COUNT 0: this message alone) */
    struct send_job **members;
    size_t nmembers;
    int bundle_count;
    char *bundle_list;
    int own_outcome;           /* a member the channel gave an outcome of its own: it dropped
                                * out of the notice (its letter exists already, ...) */

    /* what happened: filled by the channel */
    enum outcome outcome;
    char detail[512];          /* in words an auditor reads */
    char address[256];         /* where it went: e-mail address, number, spool file */
    char external_id[128];     /* Message-ID, SMS id, ... */
    char notes[192];           /* what the text builder changed ("link replaced: not https"):
                                * job_set_outcome appends it to the detail */

    struct timespec started;   /* for the latency histogram */
    void (*done)(struct send_job *job, void *arg);
    void *done_arg;
    struct send_job *next;     /* for the channel's own queues */

    /* the engine's: which of its lists the job is on, and the claim it counts against */
    struct engine *engine;
    void *engine_list;
    TAILQ_ENTRY(send_job) engine_link;
    struct claim *claim_ref;
    int stop_state;            /* enum escalation_state: the ladder ends with this outcome */
};

struct channel_ops {
    const char *name;
    /* start with the daemon's current config; returns state or NULL */
    void *(*start)(struct daemon *d);
    void (*send)(void *state, struct send_job *job);
    /* A reload in two steps, so that a refused reload changes nothing. prepare checks CFG and
     * builds what the channel takes from it, changing nothing (STATE is NULL for --check);
     * -1 with ERR filled in refuses the whole reload. commit adopts what prepare built (before
     * CFG becomes the daemon's current config) and cannot fail; discard (optional when prepare
     * builds nothing) drops it when another part of the reload was refused. */
    int (*prepare)(void *state, const struct config *cfg, void **prepared, char *err,
                   size_t errlen);
    void (*commit)(void *state, const struct config *cfg, void *prepared);
    void (*discard)(void *prepared);
    /* optional: a message was read (MESSAGE_ID as text), or NULL after (re)connecting to look
     * at all of them; the paper channel withdraws letters still waiting for the cut-off */
    void (*message_read)(void *state, const char *message_id);
    /* sends not yet completed (graceful drain waits for 0) */
    int (*in_flight)(void *state);
    void (*stop)(void *state);
};

/* Record an outcome on a job (printf-style detail, then "; " and the job's notes if any). */
void job_set_outcome(struct send_job *job, enum outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void job_free(struct send_job *job);
/* Fill JOB's bundle_count and bundle_list from itself and the members still in its notice (no
 * outcome of their own). 0, or -1 out of memory (the old text stays). */
int job_bundle_text(struct send_job *job);

extern const struct channel_ops email_channel;
extern const struct channel_ops sms_channel;
extern const struct channel_ops paper_channel;

#endif
