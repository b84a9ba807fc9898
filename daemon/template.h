/* Message texts per channel, template and language, with placeholder expansion: the files of
 * the `templates` directory (template_files.h) first, then the built-in texts. */
#ifndef HERINNERD_TEMPLATE_H
#define HERINNERD_TEMPLATE_H

#include <stddef.h>

#include "config.h"

/* Longest values in characters; longer ones are cut with "…" (see template_render). */
#define TEMPLATE_NAME_MAX 100
#define TEMPLATE_SENDER_MAX 100
#define TEMPLATE_SUBJECT_MAX 150
#define TEMPLATE_SMS_NAME_MAX 40
#define TEMPLATE_SMS_SENDER_MAX 60

/* Messages a bundled notice names one by one; the rest are "and N more". */
#define TEMPLATE_BUNDLE_NAMED 10

/* Dates outside [1990-01-01, 2200-01-01) are not printed (e.g. created_at = '-infinity') */
#define TEMPLATE_DATE_MIN 631152000.0
#define TEMPLATE_DATE_MAX 7258118400.0

/* What a template may mention. Strings may be NULL (expanded as ""). */
struct template_vars {
    const char *name;          /* recipient */
    const char *sender;
    const char *subject;       /* NULL when the policy hides it */
    const char *link;          /* NULL: no link in this text (link = false) */
    const char *created;       /* date the message arrived, local, e.g. "23-11-2026"; NULL or
                                * "" when unknown */
    const char *due_date;      /* the message's due date, the same way; NULL or "" when none */
    const char *count;         /* messages this notice is about; NULL: "1". Above 1 (a bundle)
                                * the built-in wording is the one that names them all */
    const char *messages;      /* one line per message ("sender: subject"); NULL: this one */
};

struct templates;

/* One message of a bundled notice: SUBJECT is NULL when its policy hides it. */
struct template_item {
    const char *sender, *subject;
};

/* {messages} for a notice about the N messages in ITEMS: one line each, "- sender: subject",
 * at most TEMPLATE_BUNDLE_NAMED of them, then "- en 3 andere berichten" (LANGUAGE "en": "- and
 * 3 more messages"). Values are cut like the e-mail's and kept on their line. Caller frees. */
char *template_message_list(const struct template_item *items, size_t n, const char *language);

/* Has CHANNEL a text called NAME, in SET (may be NULL) or built in? */
int template_exists(const struct templates *set, enum channel_id channel, const char *name);

/* Expand the subject line and body for CHANNEL into freshly malloc'd strings (caller frees).
 * Name, sender and subject are first cut to the channel's limits on a character boundary.
 * Values are inserted as plain text on one line (control characters become spaces); escaping
 * for a medium is the caller's job. */
int template_render(enum channel_id channel, const char *name, const char *language,
                    const struct template_vars *vars, char **subject, char **body);
/* The same with the texts of SET (the templates directory's; NULL: built-in only) first. */
int template_render_with(const struct templates *set, enum channel_id channel, const char *name,
                         const char *language, const struct template_vars *vars, char **subject,
                         char **body);

/* Expand "{key}" placeholders in FORMAT; unknown keys stay as they are. "[A|B]" gives A when
 * every placeholder in A has a value, else B; "[A]" gives A or nothing. A line that mentions
 * {subject} outside "[...]" is dropped when the subject is hidden (NULL). Exposed for tests. */
char *template_expand(const char *format, const struct template_vars *vars);

/* T (seconds since the epoch) as the local date "23-11-2026" in OUT. -1 and "" when T is not a
 * sane date (NaN, infinite, before 1990 or from 2200 on): never print garbage to a citizen. */
int template_date(double t, char *out, size_t len);

#endif
