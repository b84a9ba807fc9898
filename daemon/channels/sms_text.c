/* Pure helpers of the SMS channel (see sms_text.h). Kannel facts they rely on were checked
 * against Kannel 1.4.5 with its fake SMSC: see the comments at each function. */
#include "sms_text.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"
#include "utf8.h"

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

/* Mobile numbers of the countries whose citizens we text most, by ITU-T E.164 national
 * numbering plans: country code, the prefixes of mobile numbers (space-separated), and the
 * length of the national significant number. A number in one of these countries that breaks its
 * rule is a typo (or not a mobile) and is never texted; other countries get E.164's general
 * limits only. */
#define RULE(cc, prefixes, min, max, what) \
    { cc, prefixes, min, max, { "not " what, "too short for " what, "too long for " what } }
static const struct mobile_rule {
    const char *cc, *prefixes;
    size_t min_nsn, max_nsn;
    const char *why[3];        /* wrong prefix, too short, too long */
} mobile_rules[] = {
    RULE("31", "6", 9, 9, "a Dutch mobile number (+31 6 and 8 digits)"),
    RULE("32", "4", 9, 9, "a Belgian mobile number (+32 4 and 8 digits)"),
    RULE("33", "6 7", 9, 9, "a French mobile number (+33 6 or 7 and 8 digits)"),
    RULE("34", "6 7", 9, 9, "a Spanish mobile number (+34 6 or 7 and 8 digits)"),
    RULE("352", "6", 9, 9, "a Luxembourg mobile number (+352 6 and 8 digits)"),
    RULE("44", "7", 10, 10, "a UK mobile number (+44 7 and 9 digits)"),
    RULE("49", "15 16 17", 10, 11, "a German mobile number (+49 15, 16 or 17 and 7 to 9 digits)"),
};
#undef RULE

static int prefix_listed(const char *nsn, const char *prefixes)
{
    for (const char *p = prefixes; *p;) {
        size_t n = strcspn(p, " ");
        if (strncmp(nsn, p, n) == 0)
            return 1;
        p += n + (p[n] == ' ');
    }
    return 0;
}

/* FULL: country code and number, digits only. */
static int mobile_rule_check(const char *full, const char **reason)
{
    for (size_t i = 0; i < sizeof(mobile_rules) / sizeof(mobile_rules[0]); i++) {
        const struct mobile_rule *r = &mobile_rules[i];
        size_t cclen = strlen(r->cc);
        if (strncmp(full, r->cc, cclen) != 0)
            continue;
        const char *nsn = full + cclen;
        size_t len = strlen(nsn);
        int k = !prefix_listed(nsn, r->prefixes) ? 0 : len < r->min_nsn ? 1
                : len > r->max_nsn ? 2 : -1;
        if (k == -1)
            return 0;
        *reason = r->why[k];
        return -1;
    }
    return 0;
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
    if (mobile_rule_check(full, reason) == -1)
        return -1;
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
    while (*text)
        if (!gsm_has(utf8_next(&text)))
            return 0;
    return 1;
}

/* Latin Extended-A (U+0100..U+017F) by its base letter; '?' marks the few spelled out below. */
static const char latin_ext_a[] =
    "AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIi??JjKkkLlLlLlLlLlNnNnNn?NnOoOoOo??RrRrRr"
    "SsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs";

/* Latin-1 letters outside GSM (U+00C0..U+00FF), the GSM ones as themselves (marked '*') */
static const char *const latin1_letters[64] = {
    "A", "A", "A", "A", "*", "*", "*", "*", "E", "*", "E", "E", "I", "I", "I", "I",
    "D", "*", "O", "O", "O", "O", "*", "x", "*", "U", "U", "U", "*", "Y", "TH", "*",
    "*", "a", "a", "a", "*", "*", "*", "c", "*", "*", "e", "e", "*", "i", "i", "i",
    "d", "*", "*", "o", "o", "o", "*", "/", "*", "*", "u", "u", "*", "y", "th", "y",
};

static const struct {
    long cp;
    const char *ascii;
} translit[] = {
    { '\t', " " }, { '`', "'" }, { 0xA0, " " }, { 0xA2, "c" }, { 0xA6, "|" }, { 0xA8, "\"" },
    { 0xA9, "(c)" }, { 0xAA, "a" }, { 0xAB, "\"" }, { 0xAC, "-" }, { 0xAD, "" }, { 0xAE, "(R)" },
    { 0xAF, "-" }, { 0xB0, "o" }, { 0xB1, "+/-" }, { 0xB2, "2" }, { 0xB3, "3" }, { 0xB4, "'" },
    { 0xB5, "u" }, { 0xB7, "." }, { 0xB8, "," }, { 0xB9, "1" }, { 0xBA, "o" }, { 0xBB, "\"" },
    { 0xBC, "1/4" }, { 0xBD, "1/2" }, { 0xBE, "3/4" },
    { 0x132, "IJ" }, { 0x133, "ij" }, { 0x149, "'n" }, { 0x152, "OE" }, { 0x153, "oe" },
    { 0x218, "S" }, { 0x219, "s" }, { 0x21A, "T" }, { 0x21B, "t" },
    { 0x2002, " " }, { 0x2003, " " }, { 0x2009, " " }, { 0x200A, " " }, { 0x200B, "" },
    { 0x2010, "-" }, { 0x2011, "-" }, { 0x2012, "-" }, { 0x2013, "-" }, { 0x2014, "-" },
    { 0x2015, "-" }, { 0x2018, "'" }, { 0x2019, "'" }, { 0x201A, "'" }, { 0x201B, "'" },
    { 0x201C, "\"" }, { 0x201D, "\"" }, { 0x201E, "\"" }, { 0x201F, "\"" }, { 0x2022, "-" },
    { 0x2026, "..." }, { 0x2039, "'" }, { 0x203A, "'" }, { 0x202F, " " }, { 0x20AC, "EUR" },
    { 0x2122, "TM" }, { 0xFB01, "fi" }, { 0xFB02, "fl" }, { 0xFEFF, "" },
};

/* What to write for CP in a GSM-7 text, or NULL when nothing fits. */
static const char *gsm_spelling(long cp, char own[5])
{
    if (cp == 0x20AC)
        return "EUR";           /* the extension table's euro sign is lost on some phones */
    if (gsm_has(cp)) {
        /* the character itself, as UTF-8 */
        const char *start = own;
        if (cp < 0x80)
            *own++ = (char)cp;
        else if (cp < 0x800) {
            *own++ = (char)(0xC0 | cp >> 6);
            *own++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *own++ = (char)(0xE0 | cp >> 12);
            *own++ = (char)(0x80 | (cp >> 6 & 0x3F));
            *own++ = (char)(0x80 | (cp & 0x3F));
        }
        *own = '\0';
        return start;
    }
    if (cp >= 0x300 && cp <= 0x36F)
        return "";              /* a combining accent: the letter before it stays */
    if (cp >= 0xC0 && cp <= 0xFF && latin1_letters[cp - 0xC0][0] != '*')
        return latin1_letters[cp - 0xC0];
    if (cp >= 0x100 && cp <= 0x17F && latin_ext_a[cp - 0x100] != '?') {
        own[0] = latin_ext_a[cp - 0x100];
        own[1] = '\0';
        return own;
    }
    for (size_t i = 0; i < sizeof(translit) / sizeof(translit[0]); i++)
        if (translit[i].cp == cp)
            return translit[i].ascii;
    return NULL;
}

char *sms_text_gsm7(const char *text)
{
    char *out = NULL, own[5];
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    int complete = 1;

    if (f == NULL)
        return NULL;
    while (*text && complete) {
        const char *spelled = gsm_spelling(utf8_next(&text), own);
        if (spelled == NULL)
            complete = 0;
        else
            fputs(spelled, f);
    }
    if (fclose(f) != 0 || !complete) {
        free(out);
        return NULL;
    }
    return out;
}

/* GSM 03.38 characters that take an escape and a septet of the extension table */
static int gsm_extended(long cp)
{
    return cp == 0x20AC || cp == '\f' || (cp < 0x80 && strchr("^{}\\[~]|", (int)cp) != NULL);
}

int sms_text_parts(const char *text)
{
    size_t units = 0;
    int gsm = sms_text_is_gsm7(text);

    for (const char *p = text; *p;) {
        long cp = utf8_next(&p);
        /* septets in GSM-7; UTF-16 code units in UCS-2 */
        units += gsm ? 1 + gsm_extended(cp) : 1 + (cp > 0xFFFF);
    }
    size_t single = gsm ? 160 : 70, part = gsm ? 153 : 67;
    return units <= single ? 1 : (int)((units + part - 1) / part);
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

/* ---- the text of a notice ---- */

/* Render C with name and sender cut to at most K characters; GSM-7 when it can be. */
static char *compose_once(const struct sms_compose *c, const char *link, size_t k)
{
    char *name = c->name ? utf8_cut(c->name, k) : NULL;
    char *sender = c->sender ? utf8_cut(c->sender, k) : NULL;
    char *body = NULL, *gsm = NULL;
    struct template_vars vars = { .name = name, .sender = sender, .link = link,
                                  .created = c->created, .due_date = c->due_date,
                                  .count = c->count };

    if ((c->name && name == NULL) || (c->sender && sender == NULL) ||
        template_render_with(c->templates, CHANNEL_SMS, c->template, c->language, &vars,
                             NULL, &body) == -1)
        goto out;
    for (size_t n = strlen(body); n > 0 && (body[n - 1] == '\n' || body[n - 1] == ' '); n--)
        body[n - 1] = '\0';
    /* characters GSM-7 lacks are spelled with ones it has; where one cannot be (a name in
     * another script), the text stays as it is and goes as UCS-2 */
    if ((gsm = sms_text_gsm7(body)) != NULL && sms_text_is_gsm7(gsm)) {
        free(body);
        body = gsm;
    } else
        free(gsm);
out:
    free(name);
    free(sender);
    return body;
}

/* The longest cut K in [SMS_NAME_MIN, HI] whose text fits, by bisection (parts grow with K).
 * Shorter than that a sender says nothing: better a clear failure and the next step. */
static char *compose_fitting(const struct sms_compose *c, const char *link, size_t hi)
{
    char *best = NULL;
    size_t lo = SMS_NAME_MIN;

    while (lo <= hi) {
        size_t mid = lo + (hi - lo) / 2;
        char *text = compose_once(c, link, mid);
        if (text == NULL)
            break;
        if (sms_text_parts(text) <= c->max_parts) {
            free(best);
            best = text;
            lo = mid + 1;
        } else {
            free(text);
            hi = mid - 1;
        }
    }
    return best;
}

int sms_compose(const struct sms_compose *c, char **out, char *note, size_t notelen, char *err,
                size_t errlen)
{
    size_t longest = 0;
    char *text;
    const char *link = c->link;

    *out = NULL;
    note[0] = err[0] = '\0';
    if (c->name)
        longest = utf8_chars(c->name);
    if (c->sender && utf8_chars(c->sender) > longest)
        longest = utf8_chars(c->sender);
    if (longest > TEMPLATE_SMS_SENDER_MAX)
        longest = TEMPLATE_SMS_SENDER_MAX;
    for (int round = 0; round < 2; round++) {
        if ((text = compose_once(c, link, longest)) == NULL)
            goto nomem;
        if (sms_text_parts(text) <= c->max_parts) {
            *out = text;
            return 0;
        }
        free(text);
        /* never the fixed sentence: only name and sender get shorter */
        if ((text = compose_fitting(c, link, longest)) != NULL) {
            size_t used = strlen(note);
            snprintf(note + used, notelen - used, "%ssender and name shortened to fit "
                     "sms.max_parts = %d", used ? "; " : "", c->max_parts);
            *out = text;
            return 0;
        }
        /* a message's own long link may not fit at all: the inbox's does */
        if (link == NULL || c->fallback_link == NULL || strcmp(link, c->fallback_link) == 0)
            break;
        link = c->fallback_link;
        snprintf(note, notelen, "link replaced: too long for sms.max_parts = %d", c->max_parts);
    }
    if ((text = compose_once(c, link, SMS_NAME_MIN)) == NULL)
        goto nomem;
    snprintf(err, errlen, "the text needs %d parts even with the sender cut short; "
             "sms.max_parts is %d",
             sms_text_parts(text), c->max_parts);
    free(text);
    return -1;
nomem:
    snprintf(err, errlen, "could not build the SMS text");
    return -2;
}
