/* Logging backend. Under systemd (JOURNAL_STREAM names our stderr) we talk to the journal directly
 * so fields survive; otherwise plain lines on stderr with a timestamp. */
#include "log.h"

#include <inttypes.h>
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
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ld %s[%s]: %s\n", stamp, ts.tv_nsec / 1000000, logger.ident,
            priority_name(priority), text);
}

static void log_emit(int priority, int64_t message_id, const char *fmt, va_list ap)
{
    char text[2048];

    if (priority == LOG_DEBUG && !logger.debug)
        return;
    vsnprintf(text, sizeof(text), fmt, ap);
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

#define LOG_FN(name, prio)                      \
    void name(const char *fmt, ...)             \
    {                                           \
        va_list ap;                             \
        va_start(ap, fmt);                      \
        log_emit(prio, 0, fmt, ap);             \
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
    log_emit(LOG_ERR, 0, fmt, ap);
    va_end(ap);
    exit(1);
}

void log_message(int priority, int64_t message_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(priority, message_id, fmt, ap);
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
