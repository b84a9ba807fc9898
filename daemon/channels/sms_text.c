/* Pure helpers of the SMS channel (see sms_text.h). Kannel facts they rely on were checked
 * against Kannel 1.4.5 with its fake SMSC: see the comments at each function. */
#include "sms_text.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers ---- */

/* Keep the digits of IN (after an optional leading '+'), dropping the usual separators and a
 * "(0)" trunk marker. Returns the number of digits, or -1 with *reason set. */
static int collect_digits(const char *in, int *plus, char *digits, size_t cap, const char **reason)
{
    size_t n = 0;
    const char *p = in + strspn(in, " \t");

    *plus = *p == '+';
    if (*plus)
        p++;
    for (; *p; p++) {
        if (strncmp(p, "(0)", 3) == 0) {
            p += 2;
            continue;
        }
        if (isdigit((unsigned char)*p)) {
            if (n + 1 >= cap) {
                *reason = "too long (E.164 allows at most 15 digits)";
                return -1;
            }
            digits[n++] = *p;
        } else if (strchr(" \t-./()", *p) == NULL) {
            *reason = *p == '+' ? "'+' in the middle of the number"
                                : "contains characters other than digits";
            return -1;
        }
    }
    digits[n] = '\0';
    return (int)n;
}

int sms_number_e164(const char *in, const char *default_country, char *out, size_t outlen,
                    const char **reason)
{
    char digits[64], full[64];
    int plus;
    const char *cc = default_country ? default_country : "";

    if (in == NULL || in[strspn(in, " \t\r\n")] == '\0') {
        *reason = "empty";
        return -1;
    }
    if (collect_digits(in, &plus, digits, sizeof(digits), reason) == -1)
        return -1;
    if (digits[0] == '\0') {
        *reason = "has no digits";
        return -1;
    }
    if (plus)
        snprintf(full, sizeof(full), "%s", digits);
    else if (strncmp(digits, "00", 2) == 0)
        snprintf(full, sizeof(full), "%s", digits + 2);      /* international prefix */
    else if (digits[0] == '0')
        snprintf(full, sizeof(full), "%s%s", cc, digits + 1); /* national trunk prefix */
    else if (*cc && strncmp(digits, cc, strlen(cc)) == 0)
        snprintf(full, sizeof(full), "%s", digits);          /* country code without '+' */
    else {
        /* "612345678" could be a Dutch number without its 0 or a foreign one without its '+':
         * guessing could text a stranger */
        *reason = "has no country code (write it as +<country code><number> or with a leading 0)";
        return -1;
    }
    if (full[0] == '0' || full[0] == '\0') {
        *reason = "has no valid country code";
        return -1;
    }
    if (strlen(full) > E164_MAX_DIGITS) {
        *reason = "too long (E.164 allows at most 15 digits)";
        return -1;
    }
    if (strlen(full) < E164_MIN_DIGITS) {
        *reason = "too short";
        return -1;
    }
    if (strlen(full) + 2 > outlen) {
        *reason = "too long";
        return -1;
    }
    snprintf(out, outlen, "+%s", full);
    return 0;
}

/* ---- text ---- */

/* Next code point of UTF-8 S, advancing *S; -1 on a malformed sequence. */
static long utf8_next(const unsigned char **s)
{
    const unsigned char *p = *s;
    long cp;
    int extra;

    if (p[0] < 0x80) {
        *s = p + 1;
        return p[0];
    }
    if ((p[0] & 0xE0) == 0xC0) {
        cp = p[0] & 0x1F;
        extra = 1;
    } else if ((p[0] & 0xF0) == 0xE0) {
        cp = p[0] & 0x0F;
        extra = 2;
    } else if ((p[0] & 0xF8) == 0xF0) {
        cp = p[0] & 0x07;
        extra = 3;
    } else
        return -1;
    for (int i = 1; i <= extra; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    *s = p + extra + 1;
    return cp;
}

/* GSM 03.38 beyond ASCII: the basic table's Latin-1 and Greek letters, and the extension's €. */
static const long gsm_non_ascii[] = {
    0xA1, 0xA3, 0xA4, 0xA5, 0xA7, 0xBF, 0xC4, 0xC5, 0xC6, 0xC7, 0xC9, 0xD1, 0xD6, 0xD8, 0xDC,
    0xDF, 0xE0, 0xE4, 0xE5, 0xE6, 0xE8, 0xE9, 0xEC, 0xF1, 0xF2, 0xF6, 0xF8, 0xF9, 0xFC,
    0x393, 0x394, 0x398, 0x39B, 0x39E, 0x3A0, 0x3A3, 0x3A6, 0x3A8, 0x3A9, 0x20AC,
};

static int gsm_has(long cp)
{
    if (cp < 0x80)
        /* all printable ASCII but the backtick (some via the extension table), LF, CR, FF */
        return (cp >= 0x20 && cp < 0x7F && cp != '`') || cp == '\n' || cp == '\r' || cp == '\f';
    for (size_t i = 0; i < sizeof(gsm_non_ascii) / sizeof(gsm_non_ascii[0]); i++)
        if (gsm_non_ascii[i] == cp)
            return 1;
    return 0;
}

int sms_text_is_gsm7(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;

    while (*p) {
        long cp = utf8_next(&p);
        if (cp < 0 || !gsm_has(cp))
            return 0;
    }
    return 1;
}

/* ---- URLs ---- */

char *sms_url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

char *sms_url_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '+')
            c = ' ';
        else if (c == '%') {
            if (len - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                goto fail;
            c = hexval(s[i + 1]) << 4 | hexval(s[i + 2]);
            i += 2;
        }
        if (c == '\0')
            goto fail;
        *o++ = (char)c;
    }
    *o = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

char *sms_dlr_url(const char *base, int64_t message_id, int step, int try_no, const char *token)
{
    char *out = NULL;
    size_t blen = strlen(base);

    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    if (asprintf(&out, "%.*s/dlr?m=%" PRId64 "&s=%d&t=%d&k=%s&type=%%d", (int)blen, base,
                 message_id, step, try_no, token) == -1)
        return NULL;
    return out;
}

/* Append "&KEY=encoded VALUE" (no '&' for the first). */
static int add_param(FILE *f, const char *key, const char *value)
{
    char *enc = sms_url_encode(value ? value : "");

    if (enc == NULL)
        return -1;
    fprintf(f, "%s%s=%s", ftell(f) > 0 ? "&" : "", key, enc);
    free(enc);
    return 0;
}

char *sms_sendsms_query(const struct sms_request *r)
{
    char *out = NULL;
    size_t outlen;
    FILE *f = open_memstream(&out, &outlen);
    int rc = 0;

    if (f == NULL)
        return NULL;
    rc |= add_param(f, "username", r->username);
    rc |= add_param(f, "password", r->password);
    rc |= add_param(f, "from", r->from);
    rc |= add_param(f, "to", r->to);
    rc |= add_param(f, "text", r->text);
    /* Kannel converts from charset to the SMS alphabet; with coding=2 to UCS-2 (without charset
     * it would take our UTF-8 bytes for UCS-2) */
    rc |= add_param(f, "charset", "UTF-8");
    if (!sms_text_is_gsm7(r->text))
        rc |= add_param(f, "coding", "2");
    if (r->dlr_url) {
        /* 31 = every report type: delivered, failed, buffered, SMSC accepted, SMSC rejected */
        rc |= add_param(f, "dlr-mask", "31");
        rc |= add_param(f, "dlr-url", r->dlr_url);
    }
    if (fclose(f) != 0 || rc != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---- Kannel's reply ---- */

/* N, or less so that OUT[0..N) does not end in the middle of a UTF-8 character. */
static size_t utf8_whole(const char *out, size_t n)
{
    size_t lead = n;

    while (lead > 0 && ((unsigned char)out[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead == 0)
        return n;
    unsigned char c = (unsigned char)out[lead - 1];
    size_t want = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    return n - (lead - 1) >= want ? n : lead - 1;
}

/* The first line of BODY, printable, at most MAX bytes (cut on a UTF-8 boundary). */
static void first_line(const char *body, size_t len, char *out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; body && i < len && n + 1 < max; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c == '\r' || c == '\n' || c == '\0')
            break;
        out[n++] = c < 0x20 || c == 0x7F ? ' ' : (char)c;
    }
    n = utf8_whole(out, n);
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

enum outcome sms_judge_reply(int http_code, const char *body, size_t bodylen, char *detail,
                             size_t detaillen)
{
    char text[200];

    first_line(body, bodylen, text, sizeof(text));
    if (http_code >= 200 && http_code < 300 &&
        (strncmp(text, "0:", 2) == 0 || strncmp(text, "3:", 2) == 0)) {
        /* "3: Queued for later delivery": the SMSC is down, Kannel keeps it in its store */
        snprintf(detail, detaillen, "%s", text);
        return OUTCOME_SENT;
    }
    if (http_code == 401 || http_code == 403) {
        snprintf(detail, detaillen, "the SMS gateway refused our credentials (HTTP %d: %s); "
                 "check sms.username and sms.password", http_code, text);
        return OUTCOME_TEMPORARY_FAILURE;
    }
    if (http_code >= 400 && http_code < 500) {
        snprintf(detail, detaillen, "the SMS gateway refused this SMS (HTTP %d: %s)", http_code,
                 text);
        return OUTCOME_PERMANENT_FAILURE;
    }
    snprintf(detail, detaillen, "the SMS gateway answered HTTP %d: %s", http_code,
             *text ? text : "(no text)");
    return OUTCOME_TEMPORARY_FAILURE;
}

/* ---- delivery reports ---- */

static int parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int token_ok(const char *s)
{
    return strlen(s) == SMS_TOKEN_LEN && strspn(s, "0123456789abcdef") == SMS_TOKEN_LEN;
}

enum dlr_key { K_M, K_S, K_T, K_K, K_TYPE, K_COUNT };

/* Store one decoded key=value; 0 ok, -1 bad, 1 ignored key. */
static int dlr_field(struct sms_dlr *d, const char *key, const char *val, unsigned *seen,
                     const char **reason)
{
    static const char *const keys[K_COUNT] = { "m", "s", "t", "k", "type" };
    long long v = 0;
    int k;

    for (k = 0; k < K_COUNT && strcmp(key, keys[k]) != 0; k++)
        ;
    if (k == K_COUNT)
        return 1;
    if (*seen & (1u << k)) {
        *reason = "a field is repeated";
        return -1;
    }
    *seen |= 1u << k;
    switch (k) {
    case K_M:
        if (parse_int(val, 1, INT64_MAX, &v) == -1)
            goto bad;
        d->message_id = v;
        return 0;
    case K_S:
        if (parse_int(val, 0, 1000, &v) == -1)
            goto bad;
        d->step = (int)v;
        return 0;
    case K_T:
        if (parse_int(val, 1, 1000000, &v) == -1)
            goto bad;
        d->try_no = (int)v;
        return 0;
    case K_K:
        if (!token_ok(val))
            goto bad;
        memcpy(d->token, val, SMS_TOKEN_LEN + 1);
        return 0;
    default:
        if (parse_int(val, 1, 16, &v) == -1 || (v & (v - 1)) != 0)
            goto bad;
        d->type = (int)v;
        return 0;
    }
bad:
    *reason = k == K_K ? "bad token" : k == K_TYPE ? "bad report type" : "bad number in a field";
    return -1;
}

int sms_dlr_parse(const char *query, struct sms_dlr *out, const char **reason)
{
    unsigned seen = 0;
    const char *p = query;

    memset(out, 0, sizeof(*out));
    if (query == NULL) {
        *reason = "no query";
        return -1;
    }
    while (*p) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        char *key = NULL, *val = NULL;
        int rc = 0;
        if (len > 0) {
            if (eq == NULL) {
                *reason = "a field without '='";
                return -1;
            }
            key = sms_url_decode(p, eq - p);
            val = sms_url_decode(eq + 1, p + len - eq - 1);
            rc = key && val ? dlr_field(out, key, val, &seen, reason) : -1;
            if (key == NULL || val == NULL)
                *reason = "bad %-escape";
            free(key);
            free(val);
            if (rc == -1)
                return -1;
        }
        p += len + (p[len] == '&');
    }
    if (seen != (1u << K_COUNT) - 1) {
        *reason = "missing field (needs m, s, t, k and type)";
        return -1;
    }
    return 0;
}

int sms_dlr_outcome(int type, enum outcome *outcome, const char **detail)
{
    switch (type) {
    case 1:
        *outcome = OUTCOME_DELIVERED;
        *detail = SMS_DLR_DELIVERED;
        return 1;
    case 2:
        *outcome = OUTCOME_PERMANENT_FAILURE;
        *detail = "not delivered to the phone (DLR 2)";
        return 1;
    case 8:
        /* the SMSC took it: not yet on the phone (only DLR 1 says that) */
        *outcome = OUTCOME_ACCEPTED;
        *detail = "accepted by the SMSC (DLR 8)";
        return 1;
    case 16:
        *outcome = OUTCOME_PERMANENT_FAILURE;
        *detail = "rejected by the SMSC (DLR 16)";
        return 1;
    default:
        /* 4: still on its way; *outcome is left alone */
        *detail = type == 4 ? "buffered by the SMSC (DLR 4)" : "unknown report type";
        return 0;
    }
}
