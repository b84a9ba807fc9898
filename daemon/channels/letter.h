/* letter.h — render the paper reminder as a one-sheet A4 PDF (cairo). */
#ifndef HERINNERD_LETTER_H
#define HERINNERD_LETTER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct templates;

/* What the print house's manifest says about a rendered letter. */
struct letter_facts {
    int pages;
    char country[3]; /* ISO 3166-1 alpha-2: letter_country() of the postal address */
};

/* Everything the letter says. All strings are plain data (UTF-8); none is ever used as a format.
 * Invalid UTF-8 and control characters are replaced, so a bad database row cannot break the
 * render. Dates are printed in the process's time zone (TZ), which the daemon and herinnerctl
 * set from the config's `timezone` before any thread starts. */
struct letter {
    int64_t message_id;
    int step;
    const char *sender;         /* sending organisation, e.g. "Belastingdienst" */
    const char *return_address; /* printed under the letterhead (lines by \n, at most 3); NULL = none */
    const char *recipient_name; /* printed above the address, unless its first line already
                                   is the name or ends in it ("Dhr. J. de Vries") */
    const char *postal_address; /* lines separated by \n; must fit the envelope window: long
                                   lines wrap at spaces, the size shrinks from 10 to 7 pt */
    const char *subject;        /* NULL or "" when the policy hides it: "an important message" */
    const char *link;           /* where to read it; NULL (or absurdly long) -> mijn.overheid.nl */
    const char *language;       /* "nl" or "en"; anything else -> "nl" */
    time_t date;                /* the letter's date */
    time_t received;            /* when the message arrived ("since ..."); 0 = leave it out */
    const char *contact;        /* paper.contact: a line for questions; NULL = none */
    const struct templates *templates; /* the wording: the templates directory's, else built in */
    const char *template;       /* the step's template; NULL = "notice" */
    time_t due;                 /* the message's due date ({due_date}); 0 = none */
    int count;                  /* messages the letter names ({count}); 0 or 1: this one */
    const char *messages;       /* {messages}: one line each; NULL: this one */
    struct letter_facts *facts; /* filled in on success when not NULL */
};

/* The country a postal address goes to, for sorting domestic from foreign mail: the ISO code of
 * its last line when that line is a known country name (Dutch, English or the country's own,
 * any case, e.g. "BELGIË", "Germany", "Deutschland", "CURAÇAO"), otherwise "NL" (a Dutch
 * address has no country line; a foreign country this table does not know also gives "NL", so
 * write the name the post uses). */
void letter_country(const char *postal_address, char cc[3]);

/* Render l into a PDF at path (created, or truncated if it exists). Returns 0, or -1 with a
 * message in err and errno set (ENOSPC, EACCES, EINVAL for an address that does not fit, ...).
 * A file this call created is removed again on failure. Thread-safe. */
int letter_render_pdf(const struct letter *l, const char *path, char *err, size_t errlen);

#endif
