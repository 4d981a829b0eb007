/*
 * sm_log.h - logging shared by the daemon and its libraries.
 *
 * Interface:
 *	sm_log(level, fmt, ...) writes one line at a syslog level (LOG_ERR ... LOG_DEBUG).
 *	sm_log_open(ident, facility, to_stderr) picks the sink; before it is called, lines go
 *	to stderr. With to_stderr, syslog(3) lines of libraries (libmilter) go to stderr too
 *	(LOG_PERROR), prefixed "ident[pid]: ". sm_log_errors_to_stderr(on) copies error lines
 *	to stderr while logging to syslog (a daemon's start-up: a failed start says why on the
 *	terminal that started it). sm_log_set_level() drops lines less severe than the given level.
 *	sm_log_once(&flag, ...) logs only the first time a flag is raised (atomic), for
 *	"says why once" diagnostics.
 *
 * Diagnostics: none of its own; a line is cut at 1 KiB. Control characters in the
 *	formatted text are replaced by '?' so untrusted data cannot forge log lines.
 *
 * Known limits: the sink is process-wide; switching it while other threads log is safe
 *	but a line may go to the old sink.
 */
#ifndef SM_LOG_H
#define SM_LOG_H

#include <syslog.h>
#include <stdbool.h>

void sm_log_open(const char *ident, int facility, bool to_stderr);
void sm_log_errors_to_stderr(bool on);
void sm_log_set_level(int level);
int sm_log_get_level(void);
void sm_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs when *flag was 0 and sets it; returns true when it logged. */
bool sm_log_once(int *flag, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Lets *flag log again (after the condition cleared). */
void sm_log_once_reset(int *flag);
/* Parses "err", "warning", "notice", "info", "debug"; -1 when unknown. */
int sm_log_level_from_name(const char *name);
/* Parses "mail", "daemon", "local0".."local7", "user"; -1 when unknown. */
int sm_log_facility_from_name(const char *name);

#endif
