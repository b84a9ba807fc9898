/* Durations, clock times and clock ranges from the config. */
#include "duration.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size);
    long seconds;
    int a, b;

    if (s == NULL)
        return 0;
    if (duration_parse(s, &seconds) == 0 && seconds < 0)
        abort();
    if (clock_parse(s, &a) == 0 && (a < 0 || a >= 24 * 60))
        abort();
    if (clock_range_parse(s, &a, &b) == 0 && (a < 0 || a >= 24 * 60 || b < 0 || b >= 24 * 60))
        abort();
    free(s);
    return 0;
}
