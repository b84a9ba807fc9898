/* The config loader on arbitrary text: it must refuse or accept, never crash or leak. */
#include <stdio.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    char *text = fuzz_string(data, size);
    struct config *cfg;

    if (text == NULL)
        return 0;
    cfg = config_load_text("fuzz.conf", text, size, err, sizeof(err));
    if (cfg) {
        /* what the daemon does with a loaded config */
        config_policy_for_kind(cfg, "aanslag");
        config_policy_by_name(cfg, "default");
        config_free(cfg);
    }
    free(text);
    return 0;
}
