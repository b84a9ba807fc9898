/* Shared by the libFuzzer targets: turn the fuzzer's bytes into what the code under test takes. */
#ifndef HERINNERD_FUZZ_H
#define HERINNERD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated copy (the functions take C strings); NULL only when out of memory. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

/* Split the input at the first NUL bytes into up to N strings (missing ones are ""). The
 * strings point into one malloc'd block, returned for free(). */
static inline char *fuzz_split(const uint8_t *data, size_t size, const char **out, int n)
{
    char *s = fuzz_string(data, size), *p = s;

    for (int i = 0; i < n; i++) {
        out[i] = p && p <= s + size ? p : "";
        if (p && p <= s + size)
            p += strlen(p) + 1;
    }
    return s;
}

#endif
