/* The outcomes an attempt row may record (DESIGN.md section 3, a contract) and escalation states. */
#ifndef HERINNERD_OUTCOME_H
#define HERINNERD_OUTCOME_H

enum outcome {
    OUTCOME_SENT,
    OUTCOME_DELIVERED,
    OUTCOME_TEMPORARY_FAILURE,
    OUTCOME_PERMANENT_FAILURE,
    OUTCOME_SKIPPED,
    OUTCOME_QUEUED,
    OUTCOME_WITHDRAWN,
    OUTCOME_HANDED_OVER,
    OUTCOME_ACCEPTED,          /* the SMSC took it (a delivery report), not yet delivered */
    OUTCOME_IN_DOUBT,          /* a send under a claim whose outcome was never recorded */
    OUTCOME_COUNT
};

static inline const char *outcome_name(enum outcome o)
{
    static const char *const names[] = { "sent", "delivered", "temporary-failure",
                                         "permanent-failure", "skipped", "queued", "withdrawn",
                                         "handed-over", "accepted", "in-doubt" };
    return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}

enum escalation_state { STATE_ACTIVE, STATE_READ, STATE_DONE, STATE_FAILED };

static inline const char *state_name(enum escalation_state s)
{
    static const char *const names[] = { "active", "read", "done", "failed" };
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

#endif
