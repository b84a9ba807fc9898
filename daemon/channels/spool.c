/* spool.c — the paper spool: letters written once, moved under a lock, handed over with a manifest.
 *
 * "Exactly once" rests on three things: link() into pending/ never overwrites, every move is
 * rename(RENAME_NOREPLACE) (or link+unlink) under flock(SPOOL/.lock), and before linking a new
 * letter we look for it everywhere, under that same lock. The database decides which instance
 * renders a letter (DESIGN.md §5); the spool only makes sure that the files never contradict it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* renameat2, mkostemp, GNU strerror_r */
#endif

#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"

#include <openssl/evp.h>

#define DIR_MODE 0750
#define FILE_MODE 0640 /* the print house's pick-up account reads through the group */
#define MANIFEST "manifest.csv"
/* country and pages came later: appended, so readers of the first five columns keep working */
#define MANIFEST_HEADER "file,message_id,step,sha256,bytes,country,pages\n"

static const char *const SUBDIRS[] = { "pending", "handed-over", "withdrawn", "tmp", "facts" };

struct letter_id {
    int64_t message_id;
    int step;
};

struct id_list {
    struct letter_id *v;
    size_t n, cap;
};

static int path_fmt(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


/* "PATH: strerror(errno)" into err; errno is left as it was */
static void set_errno_err(char *err, size_t errlen, const char *what)
{
    int saved = errno;
    char buf[128];

    errmsg_set(err, errlen, "%s: %s", what, strerror_r(saved, buf, sizeof buf));
    errno = saved;
}

static int path_fmt(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static void letter_name(char *out, size_t len, int64_t message_id, int step)
{
    snprintf(out, len, "%" PRId64 "-%d.pdf", message_id, step);
}

/* digits without leading zeros, at most max; returns the end or NULL */
static const char *parse_number(const char *s, int64_t max, int64_t *v)
{
    int64_t x = 0;
    const char *b = s;

    for (; *s >= '0' && *s <= '9'; s++) {
        if (x > (max - (*s - '0')) / 10)
            return NULL;
        x = x * 10 + (*s - '0');
    }
    if (s == b || (*b == '0' && s - b > 1))
        return NULL;
    *v = x;
    return s;
}

/* ^(0|[1-9][0-9]*)-(0|[1-9][0-9]*)\.pdf$ */
static bool parse_letter_name(const char *name, struct letter_id *id)
{
    int64_t step;

    if (!(name = parse_number(name, INT64_MAX, &id->message_id)) || *name++ != '-' ||
        !(name = parse_number(name, INT_MAX, &step)) || strcmp(name, ".pdf") != 0)
        return false;
    id->step = (int)step;
    return true;
}

/* YYYY-MM-DD and a real day: it becomes a directory name the print house relies on */
static bool valid_date(const char *d)
{
    static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int year, month, day;

    for (int i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? d[i] != '-' : (d[i] < '0' || d[i] > '9'))
            return false;
    if (d[10] != '\0')
        return false;
    year = atoi(d);
    month = (d[5] - '0') * 10 + d[6] - '0';
    day = (d[8] - '0') * 10 + d[9] - '0';
    if (month < 1 || month > 12 || day < 1 || day > mdays[month - 1])
        return false;
    return month != 2 || day < 29 || (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0));
}

static int id_list_add(struct id_list *l, struct letter_id id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct letter_id *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return 0;
}

static int id_cmp(const void *a, const void *b)
{
    const struct letter_id *x = a, *y = b;

    if (x->message_id != y->message_id)
        return x->message_id < y->message_id ? -1 : 1;
    return (x->step > y->step) - (x->step < y->step);
}

/* The letters in dir (strict names only), sorted. */
static int list_letters(const char *dir, struct id_list *out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int saved;

    if (!d)
        return -1;
    errno = 0;
    while ((e = readdir(d))) {
        struct letter_id id;
        if (parse_letter_name(e->d_name, &id) && id_list_add(out, id) < 0)
            goto fail;
        errno = 0;
    }
    if (errno)
        goto fail;
    closedir(d);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, id_cmp);
    return 0;
fail:
    saved = errno;
    closedir(d);
    errno = saved;
    return -1;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc, saved;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* mkdir that accepts an existing directory (and only a directory) */
static int ensure_dir(const char *path)
{
    struct stat st;

    if (mkdir(path, DIR_MODE) == 0)
        return 1;
    if (errno != EEXIST)
        return -1;
    if (stat(path, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];

    if (path_fmt(buf, sizeof buf, "%s", path) < 0)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (ensure_dir(buf) < 0)
            return -1;
        *p = '/';
    }
    return ensure_dir(buf) < 0 ? -1 : 0;
}

/* Rename that never replaces an existing target; link+unlink where the file system lacks it. */
static int move_noreplace(const char *from, const char *to)
{
    int saved;

    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (link(from, to) < 0)
        return -1;
    if (unlink(from) == 0)
        return 0;
    saved = errno;
    unlink(to);
    errno = saved;
    return -1;
}

/* Exclusive lock on SPOOL/.lock: a descriptor to close, or -1. flock belongs to the open file
 * description, so it excludes other threads of this process as well as other processes. */
static int spool_lock(const char *root, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int fd;

    if (path_fmt(path, sizeof path, "%s/.lock", root) < 0)
        goto fail;
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, FILE_MODE)) < 0)
        goto fail;
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int saved = errno;
            close(fd);
            errno = saved;
            goto fail;
        }
    }
    return fd;
fail:
    set_errno_err(err, errlen, "spool lock");
    return -1;
}

static void spool_unlock(int fd)
{
    int saved = errno;

    if (fd >= 0)
        close(fd);
    errno = saved;
}

/* ---- public ------------------------------------------------------------------------------ */

int spool_open(const char *root, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int fd, lock;

    if (!root || !*root) {
        errno = EINVAL;
        set_errno_err(err, errlen, "spool");
        return SPOOL_ERROR;
    }
    if (mkdir_p(root) < 0) {
        set_errno_err(err, errlen, root);
        return SPOOL_ERROR;
    }
    for (size_t i = 0; i < sizeof SUBDIRS / sizeof *SUBDIRS; i++) {
        if (path_fmt(path, sizeof path, "%s/%s", root, SUBDIRS[i]) < 0 || ensure_dir(path) < 0) {
            set_errno_err(err, errlen, path);
            return SPOOL_ERROR;
        }
    }
    if ((lock = spool_lock(root, err, errlen)) < 0)
        return SPOOL_ERROR;
    /* access(W_OK) says nothing for root or a read-only mount: really create a file */
    if (path_fmt(path, sizeof path, "%s/tmp/.probe.XXXXXX", root) < 0 ||
        (fd = mkostemp(path, O_CLOEXEC)) < 0) {
        set_errno_err(err, errlen, path);
        spool_unlock(lock);
        return SPOOL_ERROR;
    }
    close(fd);
    unlink(path);
    spool_unlock(lock);
    return SPOOL_OK;
}

int spool_locate(const char *root, int64_t message_id, int step, char *path_out, size_t path_len,
                 char *err, size_t errlen)
{
    static const struct {
        const char *dir;
        enum spool_place place;
    } flat[] = { { "pending", SPOOL_PENDING }, { "withdrawn", SPOOL_WITHDRAWN } };
    char name[64], path[PATH_MAX], dir[PATH_MAX];
    struct stat st;
    struct dirent *e;
    DIR *d = NULL;
    int place = SPOOL_ABSENT;

    letter_name(name, sizeof name, message_id, step);
    for (size_t i = 0; i < sizeof flat / sizeof *flat; i++) {
        if (path_fmt(path, sizeof path, "%s/%s/%s", root, flat[i].dir, name) < 0)
            goto fail;
        if (lstat(path, &st) == 0) {
            place = flat[i].place;
            goto found;
        }
        if (errno != ENOENT)
            goto fail;
    }
    if (path_fmt(dir, sizeof dir, "%s/handed-over", root) < 0 || !(d = opendir(dir))) {
        snprintf(path, sizeof path, "%s", dir);
        goto fail;
    }
    for (errno = 0; (e = readdir(d)); errno = 0) {
        if (e->d_name[0] == '.')
            continue;
        if (path_fmt(path, sizeof path, "%s/%s/%s", dir, e->d_name, name) < 0)
            goto fail;
        if (lstat(path, &st) == 0) {
            place = SPOOL_HANDED_OVER;
            goto found;
        }
        if (errno != ENOENT && errno != ENOTDIR)
            goto fail;
    }
    if (errno) {
        snprintf(path, sizeof path, "%s", dir);
        goto fail;
    }
    path[0] = '\0';
found:
    if (d)
        closedir(d);
    if (path_out && path_len)
        snprintf(path_out, path_len, "%s", path);
    return place;
fail:
    set_errno_err(err, errlen, path);
    if (d) {
        int saved = errno;
        closedir(d);
        errno = saved;
    }
    return SPOOL_ERROR;
}

/* facts/<message_id>-<step>: "CC PAGES\n". Written under the spool lock (so spool_clean_tmp
 * cannot take its temp file): temp file, fsync, rename, fsync facts/ -- durable before the letter
 * is linked, so a letter in the spool always has its facts. A letter never linked leaves at most
 * a stale facts file, which the next write of that letter replaces. */
static int write_facts(const char *root, int64_t message_id, int step,
                       const struct spool_facts *facts, char *err, size_t errlen)
{
    char tmp[PATH_MAX], path[PATH_MAX], dir[PATH_MAX], line[32];
    int fd, n, saved;

    n = snprintf(line, sizeof line, "%.2s %d\n", facts->country, facts->pages);
    if (path_fmt(tmp, sizeof tmp, "%s/tmp/facts.XXXXXX", root) < 0 ||
        path_fmt(dir, sizeof dir, "%s/facts", root) < 0 ||
        path_fmt(path, sizeof path, "%s/%" PRId64 "-%d", dir, message_id, step) < 0 ||
        (fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        set_errno_err(err, errlen, root);
        return -1;
    }
    errno = 0;
    if (fchmod(fd, FILE_MODE) < 0 || write(fd, line, (size_t)n) != n || fsync(fd) < 0) {
        if (errno == 0)
            errno = EIO;
        saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
        set_errno_err(err, errlen, tmp);
        return -1;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        saved = errno;
        unlink(tmp);
        errno = saved;
        set_errno_err(err, errlen, path);
        return -1;
    }
    if (fsync_dir(dir) < 0) {
        set_errno_err(err, errlen, dir);
        return -1;
    }
    return 0;
}

/* The facts of a letter for the manifest: ",CC,PAGES", or "," when there are none. */
static void read_facts(const char *root, int64_t message_id, int step, char *out, size_t len)
{
    char path[PATH_MAX], cc[3];
    int pages;
    FILE *f;

    snprintf(out, len, ",");
    if (path_fmt(path, sizeof path, "%s/facts/%" PRId64 "-%d", root, message_id, step) < 0 ||
        !(f = fopen(path, "re")))
        return;
    if (fscanf(f, "%2[A-Z] %d", cc, &pages) == 2 && pages > 0)
        snprintf(out, len, "%s,%d", cc, pages);
    fclose(f);
}

int spool_write_pending(const char *root, int64_t message_id, int step, spool_render_fn render,
                        void *arg, char *path_out, size_t path_len, char *err, size_t errlen)
{
    char name[64], tmp[PATH_MAX], dst[PATH_MAX], pending[PATH_MAX];
    int lock = -1, tfd = -1, fd, place, rc = SPOOL_ERROR, saved = 0;
    bool have_tmp = false, linked = false;
    struct spool_facts facts = { "", 0 };
    struct stat st;

    if (path_out && path_len)
        path_out[0] = '\0';
    if (!root || !render || message_id < 0 || step < 0) {
        errno = EINVAL;
        set_errno_err(err, errlen, "spool_write_pending");
        return SPOOL_ERROR;
    }
    letter_name(name, sizeof name, message_id, step);
    if (path_fmt(pending, sizeof pending, "%s/pending", root) < 0 ||
        path_fmt(dst, sizeof dst, "%s/%s", pending, name) < 0 ||
        path_fmt(tmp, sizeof tmp, "%s/tmp/%s.XXXXXX", root, name) < 0) {
        set_errno_err(err, errlen, root);
        return SPOOL_ERROR;
    }
    /* cheap look first: no need to render a letter that exists (checked again under the lock) */
    place = spool_locate(root, message_id, step, path_out, path_len, err, errlen);
    if (place != SPOOL_ABSENT)
        return place == SPOOL_ERROR ? SPOOL_ERROR : SPOOL_EXISTS;

    /* create and flock the temp file under the spool lock, so spool_clean_tmp (which holds
     * the spool lock while it looks) never mistakes it for a crash's leftover */
    if ((lock = spool_lock(root, err, errlen)) < 0)
        goto fail;
    if ((tfd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        set_errno_err(err, errlen, tmp);
        goto fail;
    }
    have_tmp = true;
    if (flock(tfd, LOCK_EX) < 0 || fchmod(tfd, FILE_MODE) < 0) {
        set_errno_err(err, errlen, tmp);
        goto fail;
    }
    spool_unlock(lock);
    lock = -1;

    if (err && errlen)
        err[0] = '\0';
    errno = 0;
    if (render(tmp, &facts, arg, err, errlen) != 0) {
        if (!errno)
            errno = EIO;
        if (err && errlen && !err[0])
            set_errno_err(err, errlen, "rendering the letter");
        goto fail;
    }
    /* sync whatever the name holds now: the renderer may have replaced the file */
    if ((fd = open(tmp, O_RDONLY | O_CLOEXEC)) < 0) {
        set_errno_err(err, errlen, tmp);
        goto fail;
    }
    if (fstat(fd, &st) < 0 || fsync(fd) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        set_errno_err(err, errlen, tmp);
        goto fail;
    }
    close(fd);
    if (st.st_size == 0) {
        errno = EIO;
        errmsg_set(err, errlen, "the rendered letter is empty");
        goto fail;
    }

    if ((lock = spool_lock(root, err, errlen)) < 0)
        goto fail;
    place = spool_locate(root, message_id, step, path_out, path_len, err, errlen);
    if (place == SPOOL_ERROR)
        goto fail;
    if (place == SPOOL_ABSENT && facts.pages > 0 &&
        write_facts(root, message_id, step, &facts, err, errlen) < 0)
        goto fail;
    if (place == SPOOL_ABSENT && link(tmp, dst) < 0) { /* link, unlike rename, never overwrites */
        if (errno != EEXIST) {
            set_errno_err(err, errlen, dst);
            goto fail;
        }
        place = SPOOL_PENDING; /* put there by something that ignored the lock */
        if (path_out && path_len)
            snprintf(path_out, path_len, "%s", dst);
    }
    if (place != SPOOL_ABSENT) {
        rc = SPOOL_EXISTS; /* someone else was quicker */
        goto out;
    }
    linked = true;
    if (fsync_dir(pending) < 0) {
        set_errno_err(err, errlen, pending);
        goto fail;
    }
    if (path_out && path_len)
        snprintf(path_out, path_len, "%s", dst);
    rc = SPOOL_OK;
    goto out;
fail:
    saved = errno;
    if (linked) /* an error means no letter: do not leave one that was not made durable */
        unlink(dst);
    errno = saved;
out:
    saved = errno;
    if (have_tmp)
        unlink(tmp);
    if (tfd >= 0)
        close(tfd);
    spool_unlock(lock);
    errno = saved;
    return rc;
}

int spool_withdraw(const char *root, int64_t message_id, int step, char *err, size_t errlen)
{
    char name[64], from[PATH_MAX], to[PATH_MAX], pending[PATH_MAX], withdrawn[PATH_MAX];
    struct stat st;
    int lock, rc = SPOOL_ERROR;

    if (!root || message_id < 0 || step < 0) {
        errno = EINVAL;
        set_errno_err(err, errlen, "spool_withdraw");
        return SPOOL_ERROR;
    }
    letter_name(name, sizeof name, message_id, step);
    if (path_fmt(pending, sizeof pending, "%s/pending", root) < 0 ||
        path_fmt(withdrawn, sizeof withdrawn, "%s/withdrawn", root) < 0 ||
        path_fmt(from, sizeof from, "%s/%s", pending, name) < 0 ||
        path_fmt(to, sizeof to, "%s/%s", withdrawn, name) < 0) {
        set_errno_err(err, errlen, root);
        return SPOOL_ERROR;
    }
    if ((lock = spool_lock(root, err, errlen)) < 0)
        return SPOOL_ERROR;
    if (lstat(from, &st) < 0) {
        if (errno == ENOENT)
            rc = SPOOL_NOT_PENDING;
        else
            set_errno_err(err, errlen, from);
        goto out;
    }
    if (move_noreplace(from, to) < 0) {
        set_errno_err(err, errlen, errno == EEXIST ? to : from);
        goto out;
    }
    if (fsync_dir(withdrawn) < 0 || fsync_dir(pending) < 0) {
        set_errno_err(err, errlen, "syncing the spool");
        goto out;
    }
    rc = SPOOL_OK;
out:
    spool_unlock(lock);
    return rc;
}

/* sha256 (hex) and size of one file */
static int hash_file(const char *path, char hex[65], uint64_t *bytes)
{
    unsigned char buf[16384], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int fd = -1, rc = -1, saved;
    ssize_t n;

    *bytes = 0;
    if (!ctx) {
        errno = ENOMEM;
        return -1;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        goto out;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto crypto;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
            goto crypto;
        *bytes += (uint64_t)n;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
        goto crypto;
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    rc = 0;
    goto out;
crypto:
    errno = EIO;
out:
    saved = errno;
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(ctx);
    errno = saved;
    return rc;
}

/* Regenerate dir/manifest.csv from the letters in dir: temp in SPOOL/tmp, fsync, rename, fsync. */
static int write_manifest(const char *root, const char *dir, char *err, size_t errlen)
{
    char tmp[PATH_MAX], path[PATH_MAX], name[64], hex[65], facts[32];
    struct id_list ids = { 0 };
    FILE *f = NULL;
    uint64_t bytes;
    int fd = -1, rc = -1, saved;
    bool have_tmp = false;

    if (list_letters(dir, &ids) < 0) {
        set_errno_err(err, errlen, dir);
        goto out;
    }
    if (path_fmt(tmp, sizeof tmp, "%s/tmp/" MANIFEST ".XXXXXX", root) < 0 ||
        (fd = mkostemp(tmp, O_CLOEXEC)) < 0 || fchmod(fd, FILE_MODE) < 0 ||
        !(f = fdopen(fd, "w"))) {
        set_errno_err(err, errlen, tmp);
        goto out;
    }
    have_tmp = true;
    fd = -1; /* owned by f now */
    fputs(MANIFEST_HEADER, f);
    for (size_t i = 0; i < ids.n; i++) {
        letter_name(name, sizeof name, ids.v[i].message_id, ids.v[i].step);
        if (path_fmt(path, sizeof path, "%s/%s", dir, name) < 0 ||
            hash_file(path, hex, &bytes) < 0) {
            set_errno_err(err, errlen, path);
            goto out;
        }
        read_facts(root, ids.v[i].message_id, ids.v[i].step, facts, sizeof facts);
        fprintf(f, "%s,%" PRId64 ",%d,%s,%" PRIu64 ",%s\n", name, ids.v[i].message_id,
                ids.v[i].step, hex, bytes, facts);
    }
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) < 0) {
        set_errno_err(err, errlen, tmp);
        goto out;
    }
    saved = fclose(f);
    f = NULL;
    if (saved != 0) {
        set_errno_err(err, errlen, tmp);
        goto out;
    }
    if (path_fmt(path, sizeof path, "%s/" MANIFEST, dir) < 0 || rename(tmp, path) < 0) {
        set_errno_err(err, errlen, path);
        goto out;
    }
    have_tmp = false;
    if (fsync_dir(dir) < 0) {
        set_errno_err(err, errlen, dir);
        goto out;
    }
    rc = 0;
out:
    saved = errno;
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (have_tmp)
        unlink(tmp);
    free(ids.v);
    errno = saved;
    return rc;
}

int spool_handover(const char *root, const char *date, spool_handover_fn cb, void *arg, int *moved,
                   char *err, size_t errlen)
{
    char pending[PATH_MAX], base[PATH_MAX], dir[PATH_MAX], from[PATH_MAX], to[PATH_MAX], name[64];
    struct id_list todo = { 0 }, done = { 0 };
    struct stat st;
    int lock = -1, rc = SPOOL_ERROR, failed = 0, first_errno = 0, made;

    if (moved)
        *moved = 0;
    if (!root || !date || !valid_date(date)) {
        errno = EINVAL;
        set_errno_err(err, errlen, "spool_handover: date must be YYYY-MM-DD");
        return SPOOL_ERROR;
    }
    if (path_fmt(pending, sizeof pending, "%s/pending", root) < 0 ||
        path_fmt(base, sizeof base, "%s/handed-over", root) < 0 ||
        path_fmt(dir, sizeof dir, "%s/%s", base, date) < 0) {
        set_errno_err(err, errlen, root);
        return SPOOL_ERROR;
    }
    if ((lock = spool_lock(root, err, errlen)) < 0)
        return SPOOL_ERROR;
    if (list_letters(pending, &todo) < 0) {
        set_errno_err(err, errlen, pending);
        goto out;
    }
    if (todo.n == 0 && stat(dir, &st) < 0 && errno == ENOENT) {
        rc = SPOOL_OK; /* nothing to hand over, nothing to (re)write */
        goto out;
    }
    /* room to report every move, so a letter that moved is never left unreported */
    if (todo.n && !(done.v = calloc(todo.n, sizeof *done.v))) {
        set_errno_err(err, errlen, "spool_handover");
        goto out;
    }
    if ((made = ensure_dir(dir)) < 0 || (made && fsync_dir(base) < 0)) {
        set_errno_err(err, errlen, dir);
        goto out;
    }
    for (size_t i = 0; i < todo.n; i++) {
        letter_name(name, sizeof name, todo.v[i].message_id, todo.v[i].step);
        if (path_fmt(from, sizeof from, "%s/%s", pending, name) < 0 ||
            path_fmt(to, sizeof to, "%s/%s", dir, name) < 0 || move_noreplace(from, to) < 0) {
            if (!failed++) { /* keep going: one odd file must not hold back the others */
                first_errno = errno;
                set_errno_err(err, errlen, from);
            }
            continue;
        }
        done.v[done.n++] = todo.v[i];
    }
    /* new names durable before the old ones disappear */
    if ((fsync_dir(dir) < 0 || fsync_dir(pending) < 0) && !failed++) {
        first_errno = errno;
        set_errno_err(err, errlen, "syncing the spool");
    }
    if (write_manifest(root, dir, failed ? NULL : err, errlen) < 0 && !failed++)
        first_errno = errno;
    rc = failed ? SPOOL_ERROR : SPOOL_OK;
    errno = first_errno;
out:
    first_errno = errno;
    spool_unlock(lock);
    /* the files have moved whatever else failed: report every one, outside the lock */
    for (size_t i = 0; i < done.n; i++) {
        letter_name(name, sizeof name, done.v[i].message_id, done.v[i].step);
        if (cb && path_fmt(to, sizeof to, "%s/%s", dir, name) == 0)
            cb(done.v[i].message_id, done.v[i].step, to, arg);
    }
    if (moved)
        *moved = (int)done.n;
    free(todo.v);
    free(done.v);
    if (rc == SPOOL_ERROR)
        errno = first_errno ? first_errno : EIO;
    return rc;
}

int spool_clean_tmp(const char *root)
{
    char dir[PATH_MAX];
    struct dirent *e;
    DIR *d = NULL;
    int lock, count = 0, saved;

    if (!root || path_fmt(dir, sizeof dir, "%s/tmp", root) < 0) {
        errno = root ? errno : EINVAL;
        return -1;
    }
    if ((lock = spool_lock(root, NULL, 0)) < 0)
        return -1;
    if (!(d = opendir(dir)))
        goto fail;
    for (errno = 0; (e = readdir(d)); errno = 0) {
        int fd;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno != ELOOP)
            continue; /* vanished, or not ours to judge */
        /* a writer holds an flock on its temp file for as long as it works on it */
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
            close(fd);
            continue;
        }
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            count++;
        if (fd >= 0)
            close(fd);
    }
    if (errno)
        goto fail;
    closedir(d);
    spool_unlock(lock);
    return count;
fail:
    saved = errno;
    if (d)
        closedir(d);
    spool_unlock(lock);
    errno = saved;
    return -1;
}
