/*
 * sm_util.h - small helpers shared by every module (clocks, bounded strings and buffers).
 *
 * Interface:
 *	sm_now_ms()	monotonic clock in milliseconds (deadlines are absolute values of it).
 *	sm_wall_ms()	wall clock (Unix epoch) in milliseconds.
 *		Both live alone in sm_clock.c, the only place the libraries read the time from,
 *		so that a test can link its own clock in their place (tests/harness/th_clock.c).
 *	sm_ms_left(deadline) milliseconds until a deadline, 0 when past.
 *	sm_strlcpy()	bounded copy, always NUL-terminated; returns strlen(src) (>= size means cut).
 *	sm_parse_long()	strict decimal parse with range check (the replacement for atoi).
 *	sm_parse_inet4()	"a.b.c.d:port" (a listener's address) into a sockaddr_in.
 *	struct sm_buf	a growable byte buffer with a hard cap; sm_buf_append() fails (-1)
 *			past the cap and never reallocates beyond it. Owner frees with sm_buf_free().
 *
 * Diagnostics: functions return -1 (or false) on bad input or out of memory; none logs.
 */
#ifndef SM_UTIL_H
#define SM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int64_t sm_now_ms(void);
int64_t sm_wall_ms(void);
int64_t sm_ms_left(int64_t deadline_ms);

size_t sm_strlcpy(char *dst, const char *src, size_t size);
/* Parses all of s as a decimal long in [min, max]; 0 on success, -1 otherwise. */
int sm_parse_long(const char *s, long min, long max, long *out);
/* Parses "a.b.c.d:port" (port 1..65535) into *out; 0, or -1 with what is wrong in err. */
struct sockaddr_in;
int sm_parse_inet4(const char *addr, struct sockaddr_in *out, char *err, size_t errlen);

struct sm_buf {
	char *data;	/* NUL-terminated when len > 0; owned */
	size_t len;
	size_t alloc;
	size_t cap;	/* hard limit on len */
	bool overflow;	/* an append was refused because of cap */
};

void sm_buf_init(struct sm_buf *b, size_t cap);
int sm_buf_append(struct sm_buf *b, const void *data, size_t len);
int sm_buf_printf(struct sm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sm_buf_reset(struct sm_buf *b);
void sm_buf_free(struct sm_buf *b);

#endif
