/* Bounces: the envelope sender that names an attempt (VERP) and the delivery status notification
 * that comes back to it. Pure functions, no I/O.
 *
 * A DSN is read the way MTAs really write them: a multipart/report (RFC 6522) whose
 * message/delivery-status part (RFC 3464; message/global-delivery-status, RFC 6533) holds a
 * per-message group and one group per recipient (Final-Recipient, Action, Status,
 * Diagnostic-Code), followed by the returned message or its headers (Postfix, Exim 4.8x and
 * later); and Exim's older plain-text bounce (X-Failed-Recipients, the SMTP reply in the text,
 * "------ This is a copy of the message"). */
#ifndef HERINNERD_DSN_H
#define HERINNERD_DSN_H

#include <stddef.h>

#define DSN_TOKEN_MAX 64
#define DSN_ENVELOPE_MAX 4

struct dsn {
    char action[16];           /* failed | delayed | delivered | relayed | expanded */
    char status[16];           /* "5.1.1": class 2 success, 4 transient, 5 permanent */
    char diagnostic[512];      /* the remote's reply, unfolded: "550 5.1.1 <a@b>: User unknown" */
    char recipient[256];       /* the address the report is about */
    char message_id[256];      /* Message-ID of the returned message, or "" */
    /* where the report was delivered: Delivered-To, X-Original-To, Envelope-to, To */
    char envelope[DSN_ENVELOPE_MAX][256];
    int nenvelope;
};

/* Read the report in TEXT (LEN bytes, CRLF or LF line ends). 0, or -1 with *WHY saying why it
 * is not a delivery status notification we can read. Strings in OUT are valid UTF-8 without
 * control characters. */
int dsn_parse(const char *text, size_t len, struct dsn *out, const char **why);

/* "bounces+{token}@gemeente.example": is PATTERN a usable return path (one {token}, in the
 * local part of an address)? NULL if so, else what is wrong. */
const char *dsn_return_path_problem(const char *pattern);
/* PATTERN with {token} replaced by TOKEN, into OUT. -1 if it does not fit. */
int dsn_return_path(const char *pattern, const char *token, char *out, size_t len);
/* The token in ADDRESS if it has PATTERN's shape (prefix and suffix compared without case;
 * "<...>" and a "rfc822;" type are allowed around it), else -1. The token is lower-case hex. */
int dsn_token_from_address(const char *pattern, const char *address, char *token, size_t len);
/* The token in a Message-ID of ours, "<herinnerd.TOKEN@domain>", else -1. */
int dsn_token_from_message_id(const char *message_id, char *token, size_t len);

#endif
