/* The database schema this build of herinnerd needs: the number of the highest sql/NNN_*.sql.
 * Adding a schema file means raising this one line (tests/integration/test_ops.py checks that
 * it matches sql/). The daemon refuses to report ready below it; herinnerctl db upgrade gets
 * there. */
#ifndef HERINNERD_SCHEMA_VERSION_H
#define HERINNERD_SCHEMA_VERSION_H

#define SCHEMA_VERSION 13

#endif
