/* Logging backend. Under systemd (JOURNAL_STREAM names our stderr) we talk to the journal directly
 * so fields survive; otherwise plain lines on stderr with a timestamp. */
#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

static struct {
    const char *ident;
    int debug;
    int journal;
} logger = { "herinnerd", 0, 0 };

/* JOURNAL_STREAM is "device:inode" of the stream systemd connected; only trust it if it is still our stderr. */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) == -1)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident, int debug)
{
    logger.ident = ident;
    logger.debug = debug;
    logger.journal = stderr_is_journal();
}

/* Rate limit. One kind of line (a format string: one call site) may appear LIMIT_BURST times per
 * LIMIT_WINDOW seconds; the rest are counted, and the count is logged once that window is over
 * (with the next line logged). A flood (accept() failing thousands of times a second) then costs
 * a few lines, not the disk. Lines about one message (log_message) are that message's story and
 * are never dropped; nor is the line before a fatal exit. */
#define LIMIT_WINDOW 10
#define LIMIT_BURST 20
#define LIMIT_SLOTS 64
#define LIMIT_SAMPLE 160        /* bytes of the first suppressed line quoted in the count */

struct limit_slot {
    const char *fmt;            /* NULL: free */
    int priority;
    time_t start;               /* CLOCK_MONOTONIC seconds */
    unsigned long lines, suppressed;
    char sample[LIMIT_SAMPLE];
};

static struct limit_slot limits[LIMIT_SLOTS];
/* workers log from their threads */
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_write(int priority, int64_t message_id, const char *text);

static time_t monotonic_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Report and free the slots whose window is over. */
static void limit_sweep(time_t now)
{
    for (size_t i = 0; i < LIMIT_SLOTS; i++) {
        struct limit_slot *l = &limits[i];
        char text[LIMIT_SAMPLE + 100];

        if (l->fmt == NULL || now - l->start < LIMIT_WINDOW)
            continue;
        if (l->suppressed > 0) {
            snprintf(text, sizeof(text), "%lu similar lines suppressed in %lds, the first: %s",
                     l->suppressed, (long)(now - l->start), l->sample);
            log_write(l->priority, 0, text);
        }
        l->fmt = NULL;
    }
}

/* 1: log this line, 0: count it. Called with limit_lock held. */
static int limit_admit(int priority, const char *fmt, const char *text)
{
    time_t now = monotonic_seconds();
    struct limit_slot *l = NULL, *free_slot = NULL;

    limit_sweep(now);
    for (size_t i = 0; i < LIMIT_SLOTS && l == NULL; i++) {
        if (limits[i].fmt == fmt)
            l = &limits[i];
        else if (limits[i].fmt == NULL && free_slot == NULL)
            free_slot = &limits[i];
    }
    if (l == NULL) {
        if (free_slot == NULL)
            return 1;   /* 64 kinds of lines within one window are no flood of one kind */
        l = free_slot;
        *l = (struct limit_slot){ .fmt = fmt, .priority = priority, .start = now };
    }
    if (++l->lines <= LIMIT_BURST)
        return 1;
    if (l->suppressed++ == 0)
        snprintf(l->sample, sizeof(l->sample), "%.*s", LIMIT_SAMPLE - 1, text);
    return 0;
}

static const char *priority_name(int priority)
{
    switch (priority) {
    case LOG_ERR: return "error";
    case LOG_WARNING: return "warning";
    case LOG_DEBUG: return "debug";
    default: return "info";
    }
}

/* One line on stderr: time, who, how bad, what. */
static void stderr_line(int priority, const char *text)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32], zone[8];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    strftime(zone, sizeof(zone), "%z", &tm);  /* the config's zone, with its offset (issue 9) */
    fprintf(stderr, "%s.%03ld%s %s[%s]: %s\n", stamp, ts.tv_nsec / 1000000, zone, logger.ident,
            priority_name(priority), text);
}

static void log_write(int priority, int64_t message_id, const char *text)
{
    if (logger.journal) {
        if (message_id > 0)
            sd_journal_send("MESSAGE=%s", text, "PRIORITY=%d", priority,
                            "SYSLOG_IDENTIFIER=%s", logger.ident,
                            "HERINNERD_MESSAGE=%" PRId64, message_id, NULL);
        else
            sd_journal_send("MESSAGE=%s", text, "PRIORITY=%d", priority,
                            "SYSLOG_IDENTIFIER=%s", logger.ident, NULL);
        return;
    }

    stderr_line(priority, text);
}

/* limit: subject to the rate limit (see above) */
static void log_emit(int priority, int64_t message_id, int limit, const char *fmt, va_list ap)
{
    char text[2048];

    if (priority == LOG_DEBUG && !logger.debug)
        return;
    vsnprintf(text, sizeof(text), fmt, ap);
    pthread_mutex_lock(&limit_lock);
    if (!limit || limit_admit(priority, fmt, text))
        log_write(priority, message_id, text);
    pthread_mutex_unlock(&limit_lock);
}

#define LOG_FN(name, prio)                      \
    void name(const char *fmt, ...)             \
    {                                           \
        va_list ap;                             \
        va_start(ap, fmt);                      \
        log_emit(prio, 0, 1, fmt, ap);           \
        va_end(ap);                             \
    }

LOG_FN(log_debug, LOG_DEBUG)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_warn, LOG_WARNING)
LOG_FN(log_err, LOG_ERR)

void fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_ERR, 0, 0, fmt, ap);
    va_end(ap);
    exit(1);
}

void log_message(int priority, int64_t message_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(priority, message_id, priority < LOG_INFO, fmt, ap);
    va_end(ap);
}

void log_with_id(int priority, const char *message_id, const char *text)
{
    if (logger.journal) {
        sd_journal_send("MESSAGE=%s", text, "MESSAGE_ID=%s", message_id, "PRIORITY=%d", priority,
                        "SYSLOG_IDENTIFIER=%s", logger.ident, NULL);
        return;
    }
    stderr_line(priority, text);
}
