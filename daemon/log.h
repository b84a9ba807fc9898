/* Logging: to the journal (with structured fields) when stderr is connected to it, else to stderr.
 * Modelled on OpenSMTPD's log.h. Each kind of line (format string) is rate-limited: 20 lines per
 * 10 s, then a count of the suppressed ones (see log.c); info lines about one message are not. */
#ifndef HERINNERD_LOG_H
#define HERINNERD_LOG_H

#include <stdint.h>

void log_init(const char *ident, int debug);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_err and exit(1) */
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* An event about one message: the journal gets HERINNERD_MESSAGE=<id> so
 * `journalctl HERINNERD_MESSAGE=42` shows its whole story. */
void log_message(int priority, int64_t message_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* TEXT as it is (no format, no length limit, never dropped) with the journal field MESSAGE_ID
 * (32 hex digits), for lines people look up by kind, e.g. the audit checkpoints. */
void log_with_id(int priority, const char *message_id, const char *text);

#endif
