/* The SMS text encoder: the sendsms query for any text, sender and number; the GSM-7 check;
 * percent-encoding round trips; number normalisation; judging the gateway's reply. */
#include <stdio.h>

#include "fuzz.h"
#include "sms_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *part[3];
    char *block = fuzz_split(data, size, part, 3);
    char number[32], detail[512];
    const char *reason;

    if (block == NULL)
        return 0;
    sms_text_is_gsm7(part[0]);
    char *enc = sms_url_encode(part[0]);
    if (enc) {
        char *dec = sms_url_decode(enc, strlen(enc));
        if (dec == NULL || strcmp(dec, part[0]) != 0)     /* a round trip */
            abort();
        free(dec);
        free(enc);
    }
    struct sms_request r = { "user", "pass", part[1], "+31612345678", part[0],
                             size & 1 ? "http://127.0.0.1:9187/dlr?m=1&s=0&t=1&k=x&type=%d" : NULL };
    char *query = sms_sendsms_query(&r);
    /* only URL-safe bytes: nothing can add a parameter or break the request line */
    for (const char *p = query; p && *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            abort();
    free(query);
    if (sms_number_e164(part[2], "31", number, sizeof(number), &reason) == 0 &&
        (number[0] != '+' || strlen(number) > 1 + E164_MAX_DIGITS))
        abort();
    sms_judge_reply(size % 600, part[0], strlen(part[0]), detail, sizeof(detail));
    free(block);
    return 0;
}
