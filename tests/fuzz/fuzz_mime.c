/* The MIME header encoder and friends: whatever the subject or sender holds, the header stays
 * one header (no bare CR or LF that would start another), folded to 78 characters. */
#include <stdio.h>

#include "fuzz.h"
#include "mime.h"

static void check_header(const char *h)
{
    size_t line = 0;

    for (const char *p = h; *p; p++) {
        if (*p == '\r') {
            /* only as CRLF followed by folding white space */
            if (p[1] != '\n' || (p[2] != ' ' && p[2] != '\t'))
                abort();
            line = 0;
            p++;
            continue;
        }
        if (*p == '\n')
            abort();
        if (++line > 998)   /* RFC 5322's hard limit */
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *part[2];
    char *block = fuzz_split(data, size, part, 2);
    char *s, *display = NULL, *addr = NULL;

    if (block == NULL)
        return 0;
    if ((s = mime_header("Subject", part[0])) != NULL) {
        check_header(s);
        free(s);
    }
    /* callers check the address first (mime_address_ok); the display name is anything */
    if (mime_address_ok(part[1]) && (s = mime_mailbox(part[0], part[1])) != NULL) {
        check_header(s);
        free(s);
    }
    /* email.from from the config: parsed, then printed as the From: mailbox */
    if (mime_parse_mailbox(part[0], &display, &addr) == 0) {
        if ((s = mime_mailbox(display, addr)) != NULL) {
            check_header(s);
            free(s);
        }
        free(display);
        free(addr);
    }
    mime_address_ok(part[1]);
    free(mime_quoted_printable(part[0]));
    char *copy = strdup(part[0]);
    if (copy) {
        mime_strip_controls(copy);
        for (char *p = copy; *p; p++)
            if (*p == '\r' || *p == '\n')
                abort();
        free(copy);
    }
    free(block);
    return 0;
}
