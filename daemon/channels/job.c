/* Helpers shared by every channel for the job they are handed. */
#include "channel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

void job_set_outcome(struct send_job *job, enum outcome o, const char *fmt, ...)
{
    va_list ap;

    job->outcome = o;
    va_start(ap, fmt);
    vsnprintf(job->detail, sizeof(job->detail), fmt, ap);
    va_end(ap);
    if (job->notes[0]) {
        size_t used = strlen(job->detail);
        snprintf(job->detail + used, sizeof(job->detail) - used, "; %s", job->notes);
    }
}

void job_free(struct send_job *job)
{
    if (job == NULL)
        return;
    free(job->policy);
    free(job->template);
    free(job->recipient_name);
    free(job->email);
    free(job->mobile);
    free(job->postal_address);
    free(job->language);
    free(job->sender);
    free(job->kind);
    free(job->subject);
    free(job->link);
    free(job->members);        /* the array: each member is a job of its own */
    free(job->bundle_list);
    free(job);
}

int job_bundle_text(struct send_job *job)
{
    struct template_item *items = calloc(job->nmembers + 1, sizeof(*items));
    size_t n = 0;

    if (items == NULL)
        return -1;
    for (size_t i = 0; i <= job->nmembers; i++) {
        const struct send_job *j = i == 0 ? job : job->members[i - 1];
        if (j->own_outcome)
            continue;
        items[n].sender = j->sender;
        items[n++].subject = j->hide_subject ? NULL : j->subject;
    }
    char *list = template_message_list(items, n, job->language);
    free(items);
    if (list == NULL)
        return -1;
    free(job->bundle_list);
    job->bundle_list = list;
    job->bundle_count = (int)n;
    return 0;
}
