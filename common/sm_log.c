/*
 * sm_log.c - see sm_log.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/sm_log.h"

#define SM_LOG_LINE_MAX 1024

static int sm_log_level = LOG_INFO;
static int sm_log_stderr = 1;
static int sm_log_copy_errors;

void sm_log_open(const char *ident, int facility, bool to_stderr)
{
	__atomic_store_n(&sm_log_stderr, to_stderr ? 1 : 0, __ATOMIC_RELAXED);
	/* To stderr: our lines are written below; LOG_PERROR makes the lines that libraries
	 * (libmilter) send with syslog(3) appear there too, as "ident[pid]: text". */
	if (to_stderr)
		openlog(ident, LOG_PID | LOG_PERROR, facility);
	else
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void sm_log_errors_to_stderr(bool on)
{
	__atomic_store_n(&sm_log_copy_errors, on ? 1 : 0, __ATOMIC_RELAXED);
}

void sm_log_set_level(int level)
{
	__atomic_store_n(&sm_log_level, level, __ATOMIC_RELAXED);
}

int sm_log_get_level(void)
{
	return __atomic_load_n(&sm_log_level, __ATOMIC_RELAXED);
}

static const char *sm_log_level_tag(int level)
{
	switch (level) {
	case LOG_EMERG: case LOG_ALERT: case LOG_CRIT: case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_NOTICE: return "notice";
	case LOG_INFO: return "info";
	default: return "debug";
	}
}

static void sm_vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void sm_vlog(int level, const char *fmt, va_list ap)
{
	char line[SM_LOG_LINE_MAX];
	char *p;

	if (level > sm_log_get_level())
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	for (p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (__atomic_load_n(&sm_log_stderr, __ATOMIC_RELAXED)) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s: %s\n", stamp, ts.tv_nsec / 1000000L,
		    sm_log_level_tag(level), line);
	} else {
		syslog(level, "%s: %s", sm_log_level_tag(level), line);
		if (level <= LOG_ERR && __atomic_load_n(&sm_log_copy_errors, __ATOMIC_RELAXED))
			fprintf(stderr, "stripe-milter: %s\n", line);
	}
}

void sm_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sm_vlog(level, fmt, ap);
	va_end(ap);
}

bool sm_log_once(int *flag, int level, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_exchange_n(flag, 1, __ATOMIC_ACQ_REL))
		return false;
	va_start(ap, fmt);
	sm_vlog(level, fmt, ap);
	va_end(ap);
	return true;
}

void sm_log_once_reset(int *flag)
{
	__atomic_store_n(flag, 0, __ATOMIC_RELEASE);
}

int sm_log_level_from_name(const char *name)
{
	static const struct { const char *name; int level; } levels[] = {
		{ "err", LOG_ERR }, { "error", LOG_ERR }, { "warning", LOG_WARNING },
		{ "notice", LOG_NOTICE }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcasecmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -1;
}

int sm_log_facility_from_name(const char *name)
{
	static const struct { const char *name; int facility; } facs[] = {
		{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
		{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};
	size_t i;

	for (i = 0; i < sizeof(facs) / sizeof(facs[0]); i++)
		if (strcasecmp(name, facs[i].name) == 0)
			return facs[i].facility;
	return -1;
}
