/* Message texts per channel, template and language, with placeholder expansion. The built-in
 * templates are the only ones a step may name; the config check rejects anything else. */
#ifndef HERINNERD_TEMPLATE_H
#define HERINNERD_TEMPLATE_H

#include <stddef.h>

#include "config.h"

/* What a template may mention. Strings may be NULL (expanded as ""). */
struct template_vars {
    const char *name;          /* recipient */
    const char *sender;
    const char *subject;       /* NULL when the policy hides it */
    const char *link;
    const char *created;       /* date the message arrived, local, e.g. "23-11-2026" */
};

int template_exists(const char *name);

/* Expand the subject line and body for CHANNEL into freshly malloc'd strings (caller frees).
 * Values are inserted as plain text on one line (control characters become spaces); escaping
 * for a medium is the caller's job. */
int template_render(enum channel_id channel, const char *name, const char *language,
                    const struct template_vars *vars, char **subject, char **body);

/* Expand "{key}" placeholders in FORMAT; unknown keys stay as they are. Exposed for tests. */
char *template_expand(const char *format, const struct template_vars *vars);

#endif
