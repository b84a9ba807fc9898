/* The wording admins own: a directory (top-level `templates = "DIR"`) of plain UTF-8 files named
 * TEMPLATE.CHANNEL.LANGUAGE, e.g. notice.email.nl, reminder.sms.en, final.letter.nl. An e-mail
 * or letter file starts with header lines, then a blank line, then the text:
 *
 *   Subject: Nieuw bericht van {sender}: {subject}
 *   Subject-Hidden: Nieuw bericht van {sender}      (needed when Subject mentions {subject})
 *
 *   Beste {name}, ...
 *
 * an SMS file is the text alone. Placeholders: TEMPLATE_PLACEHOLDERS; "[A|B]" as in template.h.
 *
 * The files' text becomes part of the configuration: appended to its effective text as comment
 * lines ("#@template NAME", "#|" + each line, "#@end"), so the SHA-256, the stored configuration
 * and an audit cover the wording, and a stored configuration loads with the very wording it had. */
#ifndef HERINNERD_TEMPLATE_FILES_H
#define HERINNERD_TEMPLATE_FILES_H

#include <stddef.h>

#include "config.h"

#define TEMPLATE_PLACEHOLDERS "{name} {sender} {subject} {link} {created} {due_date} {count} {messages}"

struct template_file {
    char *name, *language;
    enum channel_id channel;           /* CHANNEL_PAPER for ".letter" */
    char *subject, *subject_hidden;    /* NULL for SMS; subject_hidden NULL: as subject */
    char *body;
};

struct templates {
    struct template_file *v;
    size_t n;
};

/* Read every file in DIR (names starting with '.' are skipped). *BLOCK gets the comment lines
 * to append to the configuration's text. -1 with "FILE:LINE: what" in ERR. */
int templates_read_dir(const char *dir, struct templates **out, char **block, char *err,
                       size_t errlen);
/* The templates appended to TEXT (a stored configuration); an empty set when there are none.
 * -1 with "NAME:LINE: what" in ERR. */
int templates_from_text(const char *name, const char *text, struct templates **out, char *err,
                        size_t errlen);
struct templates *templates_dup(const struct templates *t);
void templates_free(struct templates *t);

/* The file for (CHANNEL, NAME, LANGUAGE), or NULL. */
const struct template_file *templates_find(const struct templates *t, enum channel_id channel,
                                           const char *name, const char *language);

#endif
