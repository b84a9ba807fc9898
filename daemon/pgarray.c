#include "pgarray.h"

#include <stdlib.h>

int pg_array_open(struct pg_array *a)
{
    a->text = NULL;
    a->n = 0;
    if ((a->f = open_memstream(&a->text, &a->len)) == NULL)
        return -1;
    fputc('{', a->f);
    return 0;
}

void pg_array_add(struct pg_array *a, const char *value)
{
    if (a->f == NULL)
        return;                 /* out of memory at open: close says so */
    if (a->n++ > 0)
        fputc(',', a->f);
    if (value == NULL) {
        fputs("NULL", a->f);
        return;
    }
    fputc('"', a->f);
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', a->f);
        fputc(*p, a->f);
    }
    fputc('"', a->f);
}

char *pg_array_close(struct pg_array *a)
{
    FILE *f = a->f;

    if (f == NULL)
        return NULL;
    a->f = NULL;
    fputc('}', f);
    if (fclose(f) != 0) {
        free(a->text);
        return NULL;
    }
    return a->text;
}

void pg_array_discard(struct pg_array *a)
{
    if (a->f == NULL)
        return;
    fclose(a->f);
    free(a->text);
    a->f = NULL;
    a->text = NULL;
}
