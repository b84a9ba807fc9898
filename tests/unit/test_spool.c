/* test_spool.c — the paper spool contract (DESIGN.md §8), including a concurrent hand-over. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* timegm, mkdtemp, nftw */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cairo.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "letter.h"
#include "spool.h"

#define DATE "2026-11-23"

struct fixture {
    char base[64];       /* mkdtemp'd, removed afterwards */
    char root[128];      /* the spool inside it */
    char path[PATH_MAX]; /* scratch */
};

struct reports {
    int n;
    int64_t ids[64];
    int steps[64];
    char paths[64][PATH_MAX];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];

    if (!f)
        return -1;
    strcpy(f->base, "/tmp/test_spool.XXXXXX");
    if (!mkdtemp(f->base))
        return -1;
    snprintf(f->root, sizeof f->root, "%s/spool", f->base);
    *state = f;
    if (spool_open(f->root, err, sizeof err) != SPOOL_OK) {
        fprintf(stderr, "spool_open: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = nftw(f->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

    free(f);
    return rc;
}

static const char *sub(struct fixture *f, const char *rel)
{
    snprintf(f->path, sizeof f->path, "%s/%s", f->root, rel);
    return f->path;
}

static int count_entries(const char *dir)
{
    struct dirent *e;
    DIR *d = opendir(dir);
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    if (len)
        *len = (size_t)n;
    return buf;
}

static void sha256_hex(const char *data, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    assert_int_equal(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    for (unsigned i = 0; i < mdlen; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
}

/* ---- renderers ---------------------------------------------------------------------------- */

static int render_fake(const char *tmp_path, struct spool_facts *facts, void *arg, char *err,
                       size_t errlen)
{
    int *calls = arg;
    FILE *fp = fopen(tmp_path, "w");

    (void)err, (void)errlen, (void)facts;
    if (calls)
        (*calls)++;
    if (!fp)
        return -1;
    fprintf(fp, "%%PDF-1.4 fake letter %s\n", tmp_path);
    return fclose(fp) == 0 ? 0 : -1;
}

static int render_enospc(const char *tmp_path, struct spool_facts *facts, void *arg, char *err,
                         size_t errlen)
{
    FILE *fp = fopen(tmp_path, "w");

    (void)arg, (void)facts;
    if (fp) {
        fputs("%PDF-1.4 half a let", fp); /* a partial file that must not survive */
        fclose(fp);
    }
    snprintf(err, errlen, "%s: No space left on device", tmp_path);
    errno = ENOSPC;
    return -1;
}

static int render_nothing(const char *tmp_path, struct spool_facts *facts, void *arg, char *err,
                          size_t errlen)
{
    (void)tmp_path, (void)arg, (void)err, (void)errlen, (void)facts;
    return 0;
}

static int render_letter(const char *tmp_path, struct spool_facts *facts, void *arg, char *err,
                         size_t errlen)
{
    struct letter l = *(const struct letter *)arg;
    struct letter_facts lf;

    l.facts = &lf;
    if (letter_render_pdf(&l, tmp_path, err, errlen) < 0)
        return -1;
    memcpy(facts->country, lf.country, sizeof facts->country);
    facts->pages = lf.pages;
    return 0;
}

static void on_handover(int64_t message_id, int step, const char *path, void *arg)
{
    struct reports *r = arg;

    assert_true(r->n < 64);
    r->ids[r->n] = message_id;
    r->steps[r->n] = step;
    snprintf(r->paths[r->n], sizeof r->paths[r->n], "%s", path);
    r->n++;
}

static void write_ok(struct fixture *f, int64_t id, int step)
{
    char err[256] = "";
    int rc = spool_write_pending(f->root, id, step, render_fake, NULL, NULL, 0, err, sizeof err);

    if (rc != SPOOL_OK)
        fail_msg("write_pending %" PRId64 "-%d: %d %s", id, step, rc, err);
}

/* the manifest's data lines (header checked), malloc'd array of malloc'd strings */
static int manifest_lines(struct fixture *f, char ***out)
{
    char path[PATH_MAX], *text, *save = NULL, **lines = NULL;
    int n = 0;

    snprintf(path, sizeof path, "%s/handed-over/" DATE "/manifest.csv", f->root);
    text = slurp(path, NULL);
    /* country and pages are appended: the first five columns stay where readers expect them */
    assert_true(strncmp(text, "file,message_id,step,sha256,bytes,country,pages\n", 48) == 0);
    for (char *l = strtok_r(text + 48, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lines = realloc(lines, (size_t)(n + 1) * sizeof *lines);
        assert_non_null(lines);
        lines[n++] = strdup(l);
    }
    free(text);
    *out = lines;
    return n;
}

static void free_lines(char **lines, int n)
{
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_open_creates_directories(void **state)
{
    struct fixture *f = *state;
    const char *dirs[] = { "pending", "handed-over", "withdrawn", "tmp", "facts" };
    char err[256] = "", nested[PATH_MAX];
    struct stat st;

    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        assert_int_equal(stat(sub(f, dirs[i]), &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0027, 0); /* 0750 (or tighter by umask) */
    }
    assert_int_equal(count_entries(sub(f, "tmp")), 0);                /* the probe file is gone */
    assert_int_equal(spool_open(f->root, err, sizeof err), SPOOL_OK); /* again: fine */
    snprintf(nested, sizeof nested, "%s/a/b/c", f->base);
    assert_int_equal(spool_open(nested, err, sizeof err), SPOOL_OK);
    snprintf(nested, sizeof nested, "%s/a/b/c/pending", f->base);
    assert_true(exists(nested));
}

static void test_open_below_a_file_fails(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", path[PATH_MAX];
    int fd;

    snprintf(path, sizeof path, "%s/plain", f->base);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof path, "%s/plain/spool", f->base);
    assert_int_equal(spool_open(path, err, sizeof err), SPOOL_ERROR);
    assert_int_equal(errno, ENOTDIR);
    assert_true(strlen(err) > 0);

    /* a spool whose sub-directory is a file */
    assert_int_equal(rmdir(sub(f, "withdrawn")), 0);
    fd = open(sub(f, "withdrawn"), O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(spool_open(f->root, err, sizeof err), SPOOL_ERROR);
    assert_int_equal(errno, ENOTDIR);
    assert_non_null(strstr(err, "withdrawn"));
}

static void test_write_pending(void **state)
{
    struct fixture *f = *state;
    char out[PATH_MAX], err[256];
    struct stat st;
    int calls = 0;

    assert_int_equal(
        spool_write_pending(f->root, 7, 1, render_fake, &calls, out, sizeof out, err, sizeof err),
        SPOOL_OK);
    assert_int_equal(calls, 1);
    assert_string_equal(out, sub(f, "pending/7-1.pdf"));
    assert_int_equal(stat(out, &st), 0);
    assert_true(S_ISREG(st.st_mode) && st.st_size > 0 && st.st_nlink == 1);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(count_entries(sub(f, "tmp")), 0);
    assert_int_equal(count_entries(sub(f, "pending")), 1);
    assert_int_equal(spool_locate(f->root, 7, 1, out, sizeof out, err, sizeof err), SPOOL_PENDING);
    assert_int_equal(spool_locate(f->root, 7, 2, out, sizeof out, err, sizeof err), SPOOL_ABSENT);
    assert_string_equal(out, "");
}

static void test_write_twice_is_exists(void **state)
{
    struct fixture *f = *state;
    char out[PATH_MAX], err[256], *before, *after;
    struct stat st1, st2;
    size_t l1, l2;
    int calls = 0;

    write_ok(f, 8, 2);
    assert_int_equal(stat(sub(f, "pending/8-2.pdf"), &st1), 0);
    before = slurp(f->path, &l1);
    assert_int_equal(
        spool_write_pending(f->root, 8, 2, render_fake, &calls, out, sizeof out, err, sizeof err),
        SPOOL_EXISTS);
    assert_int_equal(calls, 0); /* not even rendered */
    assert_string_equal(out, sub(f, "pending/8-2.pdf"));
    assert_int_equal(stat(f->path, &st2), 0);
    after = slurp(f->path, &l2);
    assert_int_equal(st1.st_ino, st2.st_ino);
    assert_int_equal(l1, l2);
    assert_memory_equal(before, after, l1);
    assert_int_equal(count_entries(sub(f, "tmp")), 0);
    free(before);
    free(after);
}

static void test_render_failure_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    char out[PATH_MAX] = "x", err[256] = "";

    assert_int_equal(
        spool_write_pending(f->root, 9, 1, render_enospc, NULL, out, sizeof out, err, sizeof err),
        SPOOL_ERROR);
    assert_int_equal(errno, ENOSPC);
    assert_non_null(strstr(err, "No space left"));
    assert_string_equal(out, "");
    assert_int_equal(count_entries(sub(f, "pending")), 0);
    assert_int_equal(count_entries(sub(f, "tmp")), 0);

    err[0] = '\0';
    assert_int_equal(
        spool_write_pending(f->root, 9, 1, render_nothing, NULL, NULL, 0, err, sizeof err),
        SPOOL_ERROR);
    assert_int_equal(errno, EIO);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(count_entries(sub(f, "pending")), 0);
    assert_int_equal(count_entries(sub(f, "tmp")), 0);

    /* and the letter can still be written afterwards */
    write_ok(f, 9, 1);
}

static void test_bad_arguments(void **state)
{
    struct fixture *f = *state;
    char err[256];

    assert_int_equal(
        spool_write_pending(f->root, -1, 1, render_fake, NULL, NULL, 0, err, sizeof err),
        SPOOL_ERROR);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(spool_write_pending(f->root, 1, 1, NULL, NULL, NULL, 0, err, sizeof err),
                     SPOOL_ERROR);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(spool_withdraw(f->root, 1, -2, err, sizeof err), SPOOL_ERROR);
    assert_int_equal(errno, EINVAL);
    const char *bad[] = { "2026-13-01", "20261123",   "2026-11-2",  "../../etc",  "2026-11-23/..",
                          "",           "2026-02-29", "2026-04-31", "2026-00-10", "2026-11-23 " };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(spool_handover(f->root, bad[i], NULL, NULL, NULL, err, sizeof err),
                         SPOOL_ERROR);
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(spool_handover(f->root, "2028-02-29", NULL, NULL, NULL, err, sizeof err),
                     SPOOL_OK);
}

static void test_real_letter(void **state)
{
    struct fixture *f = *state;
    struct letter l = {
        .message_id = 1234,
        .step = 4,
        .sender = "Belastingdienst",
        .recipient_name = "Jan de Vriës",
        .postal_address = "Kerkstraat 1\n1234 AB Ĳsselstein",
        .subject = "Aanslag 2025",
        .language = "nl",
        .date = 1795392000,
    };
    char out[PATH_MAX], err[256] = "", *pdf;
    size_t len;

    if (spool_write_pending(f->root, 1234, 4, render_letter, &l, out, sizeof out, err,
                            sizeof err) != SPOOL_OK)
        fail_msg("%s", err);
    pdf = slurp(out, &len);
    assert_true(len > 1000 && memcmp(pdf, "%PDF-", 5) == 0);
    free(pdf);

    /* a letter that cannot be rendered (no address) leaves nothing */
    l.postal_address = "";
    assert_int_equal(
        spool_write_pending(f->root, 1235, 4, render_letter, &l, out, sizeof out, err, sizeof err),
        SPOOL_ERROR);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, "postal address"));
    assert_int_equal(count_entries(sub(f, "pending")), 1);
    assert_int_equal(count_entries(sub(f, "tmp")), 0);
}

static void test_withdraw(void **state)
{
    struct fixture *f = *state;
    char out[PATH_MAX], err[256];

    write_ok(f, 10, 3);
    assert_int_equal(spool_withdraw(f->root, 10, 3, err, sizeof err), SPOOL_OK);
    assert_false(exists(sub(f, "pending/10-3.pdf")));
    assert_true(exists(sub(f, "withdrawn/10-3.pdf")));
    assert_int_equal(
        spool_write_pending(f->root, 10, 3, render_fake, NULL, out, sizeof out, err, sizeof err),
        SPOOL_EXISTS);
    assert_string_equal(out, sub(f, "withdrawn/10-3.pdf"));
    assert_int_equal(count_entries(sub(f, "pending")), 0);
    assert_int_equal(spool_withdraw(f->root, 10, 3, err, sizeof err), SPOOL_NOT_PENDING);
    assert_int_equal(spool_withdraw(f->root, 11, 1, err, sizeof err), SPOOL_NOT_PENDING);
    assert_int_equal(spool_locate(f->root, 10, 3, NULL, 0, err, sizeof err), SPOOL_WITHDRAWN);
}

static void check_manifest(struct fixture *f, int expect)
{
    char **lines, name[64], hex[65], dir[PATH_MAX], path[PATH_MAX * 2], *data;
    int n = manifest_lines(f, &lines), step;
    int64_t id;
    size_t len;
    unsigned long long bytes;

    snprintf(dir, sizeof dir, "%s/handed-over/" DATE, f->root);
    assert_int_equal(n, expect);
    assert_int_equal(count_entries(dir), expect + 1); /* the letters and manifest.csv */
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++)
            assert_string_not_equal(lines[i], lines[j]);
        assert_int_equal(sscanf(lines[i], "%63[^,],%" SCNd64 ",%d,%64[0-9a-f],%llu", name, &id,
                                &step, hex, &bytes),
                         5);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        data = slurp(path, &len);
        char want[65];
        sha256_hex(data, len, want);
        assert_string_equal(hex, want);
        assert_int_equal(bytes, len);
        snprintf(path, sizeof path, "%" PRId64 "-%d.pdf", id, step);
        assert_string_equal(name, path);
        free(data);
    }
    free_lines(lines, n);
}

static void test_handover(void **state)
{
    struct fixture *f = *state;
    struct reports r = { 0 };
    char err[256] = "", *m1, *m2, out[PATH_MAX];
    int moved = -1;

    write_ok(f, 20, 1);
    write_ok(f, 3, 2);
    write_ok(f, 100, 4);
    assert_int_equal(spool_handover(f->root, DATE, on_handover, &r, &moved, err, sizeof err),
                     SPOOL_OK);
    assert_int_equal(moved, 3);
    assert_int_equal(r.n, 3);
    for (int i = 0; i < r.n; i++) {
        char want[PATH_MAX];
        snprintf(want, sizeof want, "%s/handed-over/" DATE "/%" PRId64 "-%d.pdf", f->root, r.ids[i],
                 r.steps[i]);
        assert_string_equal(r.paths[i], want);
        assert_true(exists(want));
    }
    assert_int_equal(count_entries(sub(f, "pending")), 0);
    assert_int_equal(count_entries(sub(f, "tmp")), 0);
    check_manifest(f, 3);
    m1 = slurp(sub(f, "handed-over/" DATE "/manifest.csv"), NULL);
    assert_non_null(strstr(m1, "\n3-2.pdf,3,2,")); /* sorted by message id */
    assert_true(strstr(m1, "3-2.pdf") < strstr(m1, "20-1.pdf") &&
                strstr(m1, "20-1.pdf") < strstr(m1, "100-4.pdf"));

    /* a second run the same day: nothing new, nothing duplicated */
    r.n = 0;
    assert_int_equal(spool_handover(f->root, DATE, on_handover, &r, &moved, err, sizeof err),
                     SPOOL_OK);
    assert_int_equal(moved, 0);
    assert_int_equal(r.n, 0);
    m2 = slurp(sub(f, "handed-over/" DATE "/manifest.csv"), NULL);
    assert_string_equal(m1, m2);
    free(m1);
    free(m2);

    /* handed over is final */
    assert_int_equal(spool_withdraw(f->root, 20, 1, err, sizeof err), SPOOL_NOT_PENDING);
    assert_int_equal(
        spool_write_pending(f->root, 20, 1, render_fake, NULL, out, sizeof out, err, sizeof err),
        SPOOL_EXISTS);
    assert_string_equal(out, sub(f, "handed-over/" DATE "/20-1.pdf"));
    assert_int_equal(spool_locate(f->root, 20, 1, NULL, 0, err, sizeof err), SPOOL_HANDED_OVER);

    /* a later letter the same day joins the same manifest */
    write_ok(f, 21, 1);
    assert_int_equal(spool_handover(f->root, DATE, on_handover, &r, &moved, err, sizeof err),
                     SPOOL_OK);
    assert_int_equal(moved, 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ids[0], 21);
    check_manifest(f, 4);
    assert_int_equal(count_entries(sub(f, "tmp")), 0);

    /* a letter handed over on another day is not written again either */
    assert_int_equal(
        spool_handover(f->root, "2026-11-24", on_handover, &r, &moved, err, sizeof err), SPOOL_OK);
    assert_false(exists(sub(f, "handed-over/2026-11-24"))); /* nothing to do: nothing created */
    assert_int_equal(
        spool_write_pending(f->root, 3, 2, render_fake, NULL, NULL, 0, err, sizeof err),
        SPOOL_EXISTS);
}

static void test_handover_after_crash(void **state)
{
    struct fixture *f = *state;
    struct reports r = { 0 };
    char err[256], from[PATH_MAX], to[PATH_MAX];
    int moved, fd;

    /* a crash after moving 30-1 but before the manifest, with a stale manifest from earlier */
    write_ok(f, 30, 1);
    write_ok(f, 31, 1);
    assert_int_equal(mkdir(sub(f, "handed-over/" DATE), 0750), 0);
    snprintf(from, sizeof from, "%s/pending/30-1.pdf", f->root);
    snprintf(to, sizeof to, "%s/handed-over/" DATE "/30-1.pdf", f->root);
    assert_int_equal(rename(from, to), 0);
    fd = open(sub(f, "handed-over/" DATE "/manifest.csv"), O_CREAT | O_WRONLY, 0640);
    assert_true(fd >= 0);
    assert_true(write(fd,
                      "file,message_id,step,sha256,bytes\n30-1.pdf,30,1,00,1\n30-1.pdf,30,1,00,1\n",
                      72) == 72);
    close(fd);
    /* and a manifest temp file the crash left in tmp/ */
    fd = open(sub(f, "tmp/manifest.csv.abcdef"), O_CREAT | O_WRONLY, 0640);
    assert_true(fd >= 0);
    close(fd);

    assert_int_equal(spool_clean_tmp(f->root), 1);
    assert_int_equal(spool_handover(f->root, DATE, on_handover, &r, &moved, err, sizeof err),
                     SPOOL_OK);
    assert_int_equal(moved, 1); /* only 31-1: 30-1 was moved by the crashed run */
    assert_int_equal(r.ids[0], 31);
    check_manifest(f, 2);
}

static void test_handover_ignores_strangers(void **state)
{
    struct fixture *f = *state;
    const char *junk[] = { "junk.pdf",          "007-1.pdf",
                           "1-02.pdf",          "12-3.pdf.tmp",
                           "12-3.PDF",          "-1-2.pdf",
                           "1-2.pdfx",          "99999999999999999999-1.pdf",
                           "1-99999999999.pdf", ".5-1.pdf" };
    struct reports r = { 0 };
    char err[256];
    int moved;

    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "pending/%s", junk[i]);
        int fd = open(sub(f, rel), O_CREAT | O_WRONLY, 0640);
        assert_true(fd >= 0);
        close(fd);
    }
    assert_int_equal(spool_handover(f->root, DATE, on_handover, &r, &moved, err, sizeof err),
                     SPOOL_OK);
    assert_int_equal(moved, 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(count_entries(sub(f, "pending")), (int)(sizeof junk / sizeof *junk));
    assert_false(exists(sub(f, "handed-over/" DATE)));

    write_ok(f, 0, 0); /* zero is a valid (if unlikely) id */
    assert_int_equal(spool_handover(f->root, DATE, on_handover, &r, &moved, err, sizeof err),
                     SPOOL_OK);
    assert_int_equal(moved, 1);
    check_manifest(f, 1);
}

static void test_clean_tmp(void **state)
{
    struct fixture *f = *state;
    int fd, busy;

    for (int i = 0; i < 3; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "tmp/%d-1.pdf.leftover%d", i, i);
        fd = open(sub(f, rel), O_CREAT | O_WRONLY, 0640);
        assert_true(fd >= 0);
        close(fd);
    }
    /* one still being written: its writer holds an flock */
    busy = open(sub(f, "tmp/5-1.pdf.inuse"), O_CREAT | O_WRONLY, 0640);
    assert_true(busy >= 0);
    assert_int_equal(flock(busy, LOCK_EX), 0);
    assert_int_equal(symlink("/etc/passwd", sub(f, "tmp/link")), 0);

    assert_int_equal(spool_clean_tmp(f->root), 4);
    assert_int_equal(count_entries(sub(f, "tmp")), 1);
    assert_true(exists(sub(f, "tmp/5-1.pdf.inuse")));
    assert_true(exists("/etc/passwd"));
    close(busy);
    assert_int_equal(spool_clean_tmp(f->root), 1);
    assert_int_equal(count_entries(sub(f, "tmp")), 0);
    assert_int_equal(spool_clean_tmp(f->root), 0);
}

/* The child hands over in a loop while the parent writes 50 letters and withdraws some; every
 * letter must end up in exactly one place and be reported exactly once. */
static void child_report(int64_t message_id, int step, const char *path, void *arg)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%" PRId64 "-%d\n", message_id, step);

    (void)path;
    if (write(*(int *)arg, line, (size_t)n) != n)
        _exit(3);
}

static void test_concurrent_handover(void **state)
{
    struct fixture *f = *state;
    char err[256], report[PATH_MAX], *text, *save = NULL, name[64], dated[256];
    int stop[2], rfd, status, seen[51] = { 0 }, withdrawn_ok[51] = { 0 }, handed = 0;
    pid_t pid;

    snprintf(report, sizeof report, "%s/report", f->base);
    rfd = open(report, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
    assert_true(rfd >= 0);
    assert_int_equal(pipe(stop), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct pollfd p = { .fd = stop[0], .events = POLLIN };
        close(stop[1]);
        do {
            if (spool_handover(f->root, DATE, child_report, &rfd, NULL, err, sizeof err) !=
                SPOOL_OK) {
                fprintf(stderr, "child: %s\n", err);
                _exit(2);
            }
            usleep(200);
        } while (poll(&p, 1, 0) == 0);
        _exit(0);
    }
    close(stop[0]);
    for (int i = 1; i <= 50; i++) {
        write_ok(f, i, 4);
        if (i % 7 == 0) {
            int rc = spool_withdraw(f->root, i, 4, err, sizeof err);
            assert_true(rc == SPOOL_OK || rc == SPOOL_NOT_PENDING);
            withdrawn_ok[i] = rc == SPOOL_OK;
        }
        if (i % 10 == 0) /* let the child get a few runs in */
            usleep(2000);
    }
    close(stop[1]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* the parent finishes what is left, reporting into the same file */
    assert_int_equal(spool_handover(f->root, DATE, child_report, &rfd, NULL, err, sizeof err),
                     SPOOL_OK);
    close(rfd);

    text = slurp(report, NULL);
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        int id, step;
        assert_int_equal(sscanf(l, "%d-%d", &id, &step), 2);
        assert_true(id >= 1 && id <= 50 && step == 4);
        seen[id]++;
    }
    free(text);
    snprintf(dated, sizeof dated, "%s/handed-over/" DATE, f->root);
    for (int i = 1; i <= 50; i++) {
        char p[3][PATH_MAX];
        snprintf(name, sizeof name, "%d-4.pdf", i);
        snprintf(p[0], sizeof p[0], "%s/pending/%s", f->root, name);
        snprintf(p[1], sizeof p[1], "%s/withdrawn/%s", f->root, name);
        snprintf(p[2], sizeof p[2], "%s/%s", dated, name);
        int places = exists(p[0]) + exists(p[1]) + exists(p[2]);
        assert_int_equal(places, 1);
        assert_false(exists(p[0])); /* the final hand-over took the rest */
        assert_int_equal(exists(p[1]), withdrawn_ok[i]);
        assert_int_equal(seen[i], exists(p[2]) ? 1 : 0);
        handed += exists(p[2]);
    }
    assert_int_equal(count_entries(sub(f, "tmp")), 0);
    check_manifest(f, handed);
}

/* Threads of one process: the same letter written by eight at once exists once; real letters
 * rendered in parallel (cairo in worker threads) all arrive. */
struct racer {
    struct fixture *f;
    int64_t id;
    int rc;
    struct letter l;
};

static void *race_fake(void *arg)
{
    struct racer *r = arg;
    char err[256];

    r->rc = spool_write_pending(r->f->root, r->id, 1, render_fake, NULL, NULL, 0, err, sizeof err);
    return NULL;
}

static void *race_letter(void *arg)
{
    struct racer *r = arg;
    char err[256];

    r->rc =
        spool_write_pending(r->f->root, r->id, 2, render_letter, &r->l, NULL, 0, err, sizeof err);
    return NULL;
}

static void test_threads(void **state)
{
    struct fixture *f = *state;
    struct racer r[8];
    pthread_t t[8];
    int ok = 0, exists = 0;

    for (int i = 0; i < 8; i++) {
        r[i] = (struct racer){ .f = f, .id = 77 };
        assert_int_equal(pthread_create(&t[i], NULL, race_fake, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        ok += r[i].rc == SPOOL_OK;
        exists += r[i].rc == SPOOL_EXISTS;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(exists, 7);

    for (int i = 0; i < 8; i++) {
        r[i] = (struct racer){ .f = f, .id = 200 + i };
        r[i].l = (struct letter){
            .message_id = 200 + i,
            .step = 2,
            .sender = "Gemeente Ĳsselstein",
            .recipient_name = "Jan de Vriës",
            .postal_address = "Kerkstraat 1\n1234 AB Ĳsselstein",
            .subject = "Parkeervergunning",
            .language = i % 2 ? "en" : "nl",
            .date = 1795392000,
        };
        assert_int_equal(pthread_create(&t[i], NULL, race_letter, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(r[i].rc, SPOOL_OK);
    }
    assert_int_equal(count_entries(sub(f, "pending")), 9);
    assert_int_equal(count_entries(sub(f, "tmp")), 0);
}

/* The manifest says where each letter goes and how many sheets it has: from the renderer's
 * facts, kept in facts/ while the letter waits; empty for a letter without facts. */
static void test_manifest_country_and_pages(void **state)
{
    struct fixture *f = *state;
    struct letter l = {
        .message_id = 7, .step = 2, .sender = "Belastingdienst", .recipient_name = "Jan Peeters",
        .postal_address = "Wetstraat 16\n1000 Brussel\nBELGIË", .subject = "Aanslag",
        .language = "nl", .date = 1795392000,
    };
    char err[256] = "", *m;
    int moved;

    assert_int_equal(spool_write_pending(f->root, 7, 2, render_letter, &l, NULL, 0, err, sizeof err),
                     SPOOL_OK);
    l.message_id = 8;
    l.postal_address = "Kerkstraat 1\n1234 AB Utrecht";
    assert_int_equal(spool_write_pending(f->root, 8, 2, render_letter, &l, NULL, 0, err, sizeof err),
                     SPOOL_OK);
    write_ok(f, 9, 2); /* a renderer that says nothing */
    assert_true(exists(sub(f, "facts/7-2")));
    assert_int_equal(spool_handover(f->root, DATE, NULL, NULL, &moved, err, sizeof err), SPOOL_OK);
    assert_int_equal(moved, 3);
    check_manifest(f, 3);
    m = slurp(sub(f, "handed-over/" DATE "/manifest.csv"), NULL);
    if (!strstr(m, ",BE,1\n") || !strstr(m, ",NL,1\n") || !strstr(m, "9-2.pdf,9,2,"))
        fail_msg("manifest:\n%s", m);
    char *nine = strstr(m, "9-2.pdf,9,2,");
    assert_non_null(strstr(nine, ",,\n")); /* no facts: both columns empty */
    assert_true(strstr(m, "7-2.pdf") < strstr(m, ",BE,1\n") && strstr(m, ",BE,1\n") < strstr(m, "8-2.pdf"));
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_directories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_below_a_file_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_twice_is_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_failure_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_withdraw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_country_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handover_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handover_ignores_strangers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    cairo_debug_reset_static_data();
    return rc;
}
