/* Template expansion: a format (a template file's text, in future) and the values a message
 * brings (sender, subject, link, name: all from the database). */
#include "fuzz.h"
#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *part[7];
    char *block = fuzz_split(data, size, part, 7);
    struct template_vars vars = { part[1], part[2], part[3], part[4], part[5] };
    static const char *const templates[] = { "default", "reminder", "nonexistent" };
    static const char *const languages[] = { "nl", "en", "xx" };
    char *subject = NULL, *body = NULL;

    if (block == NULL)
        return 0;
    free(template_expand(part[0], &vars));
    unsigned pick = size ? data[0] : 0;
    for (enum channel_id ch = CHANNEL_NULL; ch < CHANNEL_COUNT; ch++) {
        if (template_render(ch, templates[pick % 3], languages[(pick / 3) % 3], &vars, &subject,
                            &body) == 0) {
            /* a value never brings a line break into a subject */
            if (subject && strpbrk(subject, "\r\n"))
                abort();
            free(subject);
            free(body);
        }
        subject = body = NULL;
    }
    free(block);
    return 0;
}
