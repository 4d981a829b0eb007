/*
 * sm_clock.c - the clocks every library reads: sm_now_ms() (monotonic) and sm_wall_ms()
 * (wall clock). See sm_util.h.
 *
 * This file holds these two functions and nothing else, on purpose: a test program that
 * links tests/harness/th_clock.c gets that file's definitions instead (the linker then never
 * pulls this member out of libsmcommon.a), and can move time forward to check TTLs without
 * sleeping. The daemon has no setting for it and always runs on these.
 */
#include "config.h"

#include <time.h>

#include "common/sm_util.h"

int64_t sm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sm_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
