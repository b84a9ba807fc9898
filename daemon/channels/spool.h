/* spool.h — the paper spool (DESIGN.md §8, a contract):
 *
 *   SPOOL/pending/<message_id>-<step>.pdf                   rendered, waiting for the cut-off
 *   SPOOL/handed-over/<YYYY-MM-DD>/<message_id>-<step>.pdf  plus manifest.csv for the print house
 *   SPOOL/withdrawn/<message_id>-<step>.pdf                 the message was read before the cut-off
 *   SPOOL/tmp/                                              private: letters being written
 *   SPOOL/facts/<message_id>-<step>                         private: the letter's manifest facts
 *   SPOOL/.lock                                             flock(LOCK_EX) around every move
 *
 * A letter for (message, step) is written at most once and is always in exactly one place. Other
 * processes (herinnerctl paper handover, a second daemon) may use the spool at the same time.
 * Letter names parse strictly as ^(0|[1-9][0-9]*)-(0|[1-9][0-9]*)\.pdf$ (no leading zeros, so
 * each (message, step) has exactly one name); anything else in the spool is ignored.
 * All functions are thread-safe; they block on disk I/O and the lock, so never call them on the
 * event loop.
 */
#ifndef HERINNERD_SPOOL_H
#define HERINNERD_SPOOL_H

#include <stddef.h>
#include <stdint.h>

enum spool_result {
    SPOOL_OK = 0,
    SPOOL_EXISTS = 1,      /* write_pending: the letter was written before (path_out says where) */
    SPOOL_NOT_PENDING = 2, /* withdraw: absent, or already handed over */
    SPOOL_ERROR = -1,      /* errno says why, err in words */
};

/* Where a letter is, as told by spool_locate. */
enum spool_place {
    SPOOL_ABSENT = 0,
    SPOOL_PENDING = 1,
    SPOOL_HANDED_OVER = 2,
    SPOOL_WITHDRAWN = 3,
};

/* Create root and its four directories (0750) as needed and check that they are writable.
 * 0, or SPOOL_ERROR (e.g. ENOTDIR when root lies under a regular file). */
int spool_open(const char *root, char *err, size_t errlen);

/* What manifest.csv says about a letter besides its file. The renderer fills it in; left as it
 * is (pages 0), the manifest leaves both columns empty. */
struct spool_facts {
    char country[3];           /* ISO 3166-1 alpha-2, e.g. "NL", "BE" */
    int pages;
};

/* Writes a complete letter to tmp_path (which exists, empty) and, if it can, its facts; 0, or -1
 * with errno and err set. */
typedef int (*spool_render_fn)(const char *tmp_path, struct spool_facts *facts, void *arg,
                               char *err, size_t errlen);

/* Write the letter for (message_id, step) into pending/ exactly once: render into tmp/, fsync,
 * link() into pending/ (never overwrites), fsync pending/. If the letter already exists in
 * pending/, withdrawn/ or any handed-over/<date>/: SPOOL_EXISTS, nothing is rendered or written,
 * and path_out names the existing file. On SPOOL_ERROR (render failure, ENOSPC, ...) errno is
 * kept and nothing is left behind in pending/ or tmp/. path_out may be NULL. */
int spool_write_pending(const char *root, int64_t message_id, int step, spool_render_fn render,
                        void *arg, char *path_out, size_t path_len, char *err, size_t errlen);

/* The message was read before the cut-off: move pending/ -> withdrawn/. SPOOL_OK, or
 * SPOOL_NOT_PENDING when the letter is not in pending/ (absent or already handed over). */
int spool_withdraw(const char *root, int64_t message_id, int step, char *err, size_t errlen);

/* Called once for each letter this call moved to handed-over/, after the manifest is written
 * and the lock released. path is the letter's new name. */
typedef void (*spool_handover_fn)(int64_t message_id, int step, const char *path, void *arg);

/* The daily cut-off: move every pending letter into handed-over/<date>/ (date is YYYY-MM-DD) and
 * regenerate manifest.csv there from the directory's contents (columns file,message_id,step,
 * sha256,bytes,country,pages -- the last two from facts/, empty for letters written before
 * there were facts; temp file, fsync, rename, fsync dir). Idempotent and crash-safe: a second run, or a
 * run after a crash between moves and manifest, never duplicates a line, and letters already in
 * the date directory are not reported again. With nothing pending and no date directory yet,
 * nothing is created. *moved (may be NULL) counts the letters moved. cb may be NULL.
 * If some moves fail, the ones that succeeded are still put in the manifest and reported. */
int spool_handover(const char *root, const char *date, spool_handover_fn cb, void *arg, int *moved,
                   char *err, size_t errlen);

/* At start-up: remove temp files left by a crash mid-write. Files another process or thread is
 * still writing (they hold an flock) are left alone. Returns how many were removed, or -1. */
int spool_clean_tmp(const char *root);

/* Where is the letter for (message_id, step)? An enum spool_place, or SPOOL_ERROR. path_out (may
 * be NULL) gets its file name. For reconciling the attempts table after a crash and for
 * `herinnerctl status`. */
int spool_locate(const char *root, int64_t message_id, int step, char *path_out, size_t path_len,
                 char *err, size_t errlen);

#endif
