/* Which link a citizen may be shown. Message data comes from senders we do not control: only an
 * https: URL (http: where the config allows it) that is plain, printable and short reaches an
 * e-mail, an SMS or a letter; anything else is replaced by the inbox URL, and the attempt says
 * why. One rule for every channel. */
#ifndef HERINNERD_LINK_H
#define HERINNERD_LINK_H

#include <stddef.h>

#define LINK_MAX 2000           /* bytes; longer links break in mail clients and on paper */

/* 0 if URL may be shown to a citizen, else -1 with *REASON a short phrase ("not https"). */
int link_check(const char *url, int allow_http, const char **reason);

/* The link to show for a message whose own link is LINK (may be NULL or blank): LINK when
 * link_check accepts it, else FALLBACK (the inbox URL, checked by the config). NOTE gets "" or,
 * when LINK was replaced, a phrase for the attempt's detail: "link replaced: not https". */
const char *link_for_citizen(const char *link, const char *fallback, int allow_http,
                             char *note, size_t notelen);

#endif
