/* Building a safe RFC 5322 message: encoded-word headers (RFC 2047), quoted-printable bodies,
 * and the rule that data can never break out of the header it belongs to. Pure functions. */
#ifndef HERINNERD_MIME_H
#define HERINNERD_MIME_H

#include <stddef.h>
#include <time.h>

/* Replace CR, LF and other control characters by spaces, in place: a subject from the database
 * can never start a header of its own. */
void mime_strip_controls(char *s);

/* "Name: value" for VALUE (UTF-8), as plain text when it is printable ASCII, else as UTF-8
 * encoded-words; folded so no line exceeds 78 characters; lines joined with CRLF, no final CRLF. */
char *mime_header(const char *name, const char *value);

/* A mailbox "display <addr>" with the display name quoted or encoded as needed. */
char *mime_mailbox(const char *display, const char *addr);

/* Split "Display Name <addr@host>" (or a bare address) into malloc'd parts. */
int mime_parse_mailbox(const char *text, char **display, char **addr);

/* A plausible address for the envelope: one @, no spaces, controls or angle brackets. */
int mime_address_ok(const char *addr);

/* Quoted-printable (RFC 2045) with CRLF line ends; input lines end in LF. */
char *mime_quoted_printable(const char *text);

/* A Message-ID unique to one attempt, "<herinnerd.R@DOMAIN>" where R is 128 random bits in hex:
 * a second deployment with the same domain or a re-created database (ids start again) never
 * repeats one, and large providers drop mail whose Message-ID they have seen. It carries no
 * database ids; the stable (message, step) travels in a header of its own (X-Herinnerd-Message).
 * 0, or -1 with errno (no randomness; ERANGE when it does not fit LEN). */
int mime_message_id(char *buf, size_t len, const char *domain);

/* A host name for EHLO: letters, digits, '-' and '.' in labels of 1-63 characters (253 in all),
 * or an address literal like "[192.0.2.1]". */
int mime_helo_ok(const char *name);

/* RFC 5322 date, e.g. "Mon, 23 Nov 2026 10:02:11 +0100". */
void mime_date(time_t t, char *buf, size_t len);

#endif
