/* Building PostgreSQL array literals ('{"a","b",NULL}') for unnest()-based batch statements:
 * one round trip for many rows, with every value quoted so data can never change the array. */
#ifndef HERINNERD_PGARRAY_H
#define HERINNERD_PGARRAY_H

#include <stdio.h>

struct pg_array {
    FILE *f;
    char *text;
    size_t len;
    int n;
};

/* -1 when out of memory; adding is then a no-op and closing returns NULL. */
int pg_array_open(struct pg_array *a);
/* VALUE NULL is SQL NULL. */
void pg_array_add(struct pg_array *a, const char *value);
/* The literal (malloc'd, the caller frees it), or NULL when out of memory. */
char *pg_array_close(struct pg_array *a);
/* Free an array that was opened but never closed (a no-op after pg_array_close). */
void pg_array_discard(struct pg_array *a);

#endif
