/* Pure helpers of the SMS channel: mobile numbers to E.164, the text of a notice (GSM-7,
 * parts), the Kannel sendsms request, its reply, and delivery-report callbacks. No I/O, so every rule here is unit-tested. */
#ifndef HERINNERD_SMS_TEXT_H
#define HERINNERD_SMS_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "outcome.h"

#define E164_MAX_DIGITS 15
#define E164_MIN_DIGITS 7
#define SMS_TOKEN_LEN 16            /* hex digits of the per-send token */
/* the detail of the report after which nothing more can happen to an SMS */
#define SMS_DLR_DELIVERED "delivered to the phone (DLR 1)"

/* Normalise a mobile number to E.164 ("+31612345678"). Accepted: "+<cc>...", "00<cc>...", a
 * national "0..." (DEFAULT_COUNTRY's calling code is put in front), and bare digits that already
 * start with DEFAULT_COUNTRY. Spaces, '-', '.', '/', '(' ')' and a "(0)" after the country code
 * are dropped. Numbers of countries with a known mobile plan (NL: +31 6 and 8 digits; BE, FR,
 * ES, LU, UK, DE) must follow it; others E.164's limits. Returns 0, or -1 with *REASON a short
 * phrase an auditor reads ("too short for a Dutch mobile number (+31 6 and 8 digits)"). */
int sms_number_e164(const char *in, const char *default_country, char *out, size_t outlen,
                    const char **reason);

/* 1 if every character of the UTF-8 TEXT is in the GSM 03.38 alphabet (basic or extension
 * table): then the SMS goes as 7-bit text (160 characters); else as UCS-2 (70). */
int sms_text_is_gsm7(const char *text);

/* TEXT with every character GSM 03.38 lacks spelled with ones it has: "ú" -> "u",
 * "ĳ" -> "ij", "€" -> "EUR", "’" -> "'", "…" -> "...". NULL when a character has no such
 * spelling (another script) or without memory. Malloc'd. */
char *sms_text_gsm7(const char *text);

/* How many SMS parts TEXT takes: GSM-7 160 septets in one, 153 per part of a longer one
 * (extension characters such as '[' take two); UCS-2 70 and 67 UTF-16 units. */
int sms_text_parts(const char *text);

#define SMS_NAME_MIN 10      /* characters a sender or name keeps at least when cut to fit */

/* What an SMS notice is made of. */
struct templates;

struct sms_compose {
    const struct templates *templates;  /* the templates directory's, or NULL */
    const char *template, *language;
    const char *name, *sender, *created;
    const char *due_date;
    const char *count;          /* messages the notice is about (a bundle); NULL: one */
    const char *link;           /* NULL: no link in the text (link = false) */
    const char *fallback_link;  /* the inbox URL, used when LINK alone would not fit */
    int max_parts;              /* sms.max_parts */
};

/* The text of an SMS notice into *TEXT (malloc'd): the template rendered, in GSM-7 wherever
 * transliteration allows, within MAX_PARTS parts by cutting name and sender (never the fixed
 * sentence), then by using the fallback link. NOTE gets "" or what was changed, for the
 * attempt's detail. Returns 0; -1 with ERR when even that does not fit; -2 without memory. */
int sms_compose(const struct sms_compose *c, char **text, char *note, size_t notelen, char *err,
                size_t errlen);

/* Percent-encode S for a query component: everything but RFC 3986 unreserved characters.
 * Returns a malloc'd string or NULL. */
char *sms_url_encode(const char *s);

/* Decode LEN bytes of a query component ('+' is a space). Returns a malloc'd string, or NULL
 * on a bad %-escape, an embedded NUL or no memory. */
char *sms_url_decode(const char *s, size_t len);

/* The callback Kannel calls for delivery reports: BASE (no trailing '/' needed) + "/dlr?m=..&s=..
 * &t=..&k=TOKEN&type=%d"; Kannel replaces the %d with the report type. Malloc'd or NULL. */
char *sms_dlr_url(const char *base, int64_t message_id, int step, int try_no, const char *token);

struct sms_request {
    const char *username, *password, *from, *to, *text;
    const char *dlr_url;        /* NULL: no delivery reports asked for */
};

/* The query string of a Kannel sendsms GET (without '?'). The text travels as UTF-8
 * (charset=UTF-8); when it does not fit the GSM alphabet coding=2 asks for UCS-2, else Kannel
 * would turn such characters into '?'. Malloc'd or NULL. */
char *sms_sendsms_query(const struct sms_request *r);

/* Judge Kannel's reply to sendsms: 2xx with "0: Accepted" or "3: Queued" -> sent; 401/403 (our
 * credentials) and 5xx -> temporary failure; other 4xx (e.g. 400 "Number(s) has/have been denied
 * by white- and/or black-lists.") -> permanent failure. DETAIL gets the reply in words.
 * BODY may be NULL; it need not be NUL-terminated (BODYLEN bytes). */
enum outcome sms_judge_reply(int http_code, const char *body, size_t bodylen, char *detail,
                             size_t detaillen);

/* A delivery report callback's query, parsed. */
struct sms_dlr {
    int64_t message_id;
    int step, try_no, type;
    char token[SMS_TOKEN_LEN + 1];
};

/* Parse "m=..&s=..&t=..&k=..&type=.." (any order; other keys ignored, repeated ones refused).
 * Returns 0, or -1 with *REASON set. */
int sms_dlr_parse(const char *query, struct sms_dlr *out, const char **reason);

/* What a report type means: returns 1 and sets *OUTCOME and *DETAIL ("delivered to the phone
 * (DLR 1)") for a report worth an attempt row; 0 for one that is only logged (4: buffered),
 * with *DETAIL still set. */
int sms_dlr_outcome(int type, enum outcome *outcome, const char **detail);

#endif
