/* The /dlr query parser: the only input anyone on the network can send us. */
#include <stdio.h>

#include "fuzz.h"
#include "sms_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = fuzz_string(data, size);
    struct sms_dlr r;
    const char *reason = NULL, *detail;
    enum outcome o;

    if (q == NULL)
        return 0;
    if (sms_dlr_parse(q, &r, &reason) == 0) {
        if (r.message_id < 1 || strlen(r.token) != SMS_TOKEN_LEN)
            abort();
        sms_dlr_outcome(r.type, &o, &detail);
        /* what we hand Kannel must parse back to the same report */
        char *url = sms_dlr_url("http://127.0.0.1:9187", r.message_id, r.step, r.try_no, r.token);
        if (url) {
            char *query = strchr(url, '?'), *type = query ? strstr(query, "%d") : NULL;
            if (type) {
                char buf[512];
                snprintf(buf, sizeof(buf), "%.*s%d%s", (int)(type - query - 1), query + 1,
                         r.type, type + 2);
                struct sms_dlr back;
                if (sms_dlr_parse(buf, &back, &reason) != 0 ||
                    back.message_id != r.message_id || back.step != r.step ||
                    back.try_no != r.try_no || strcmp(back.token, r.token) != 0)
                    abort();
            }
            free(url);
        }
    } else if (reason == NULL) {
        abort();
    }
    free(sms_url_decode(q, size));
    free(q);
    return 0;
}
