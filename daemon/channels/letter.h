/* letter.h — render the paper reminder as a one-sheet A4 PDF (cairo). */
#ifndef HERINNERD_LETTER_H
#define HERINNERD_LETTER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Everything the letter says. All strings are plain data (UTF-8); none is ever used as a format.
 * Invalid UTF-8 and control characters are replaced, so a bad database row cannot break the
 * render. Dates are printed in the process's time zone (TZ), which the daemon and herinnerctl
 * set from the config's `timezone` before any thread starts. */
struct letter {
    int64_t message_id;
    int step;
    const char *sender;         /* sending organisation, e.g. "Belastingdienst" */
    const char *return_address; /* printed under the letterhead (lines by \n, at most 3); NULL = none */
    const char *recipient_name;
    const char *postal_address; /* lines separated by \n; must fit the envelope window */
    const char *subject;        /* NULL or "" when the policy hides it: "an important message" */
    const char *link;           /* where to read it; NULL (or absurdly long) -> mijn.overheid.nl */
    const char *language;       /* "nl" or "en"; anything else -> "nl" */
    time_t date;                /* the letter's date */
    time_t received;            /* when the message arrived ("since ..."); 0 = leave it out */
};

/* Render l into a PDF at path (created, or truncated if it exists). Returns 0, or -1 with a
 * message in err and errno set (ENOSPC, EACCES, EINVAL for an address that does not fit, ...).
 * A file this call created is removed again on failure. Thread-safe. */
int letter_render_pdf(const struct letter *l, const char *path, char *err, size_t errlen);

#endif
