/*
 * th_clock.c - a test clock: sm_now_ms() and sm_wall_ms() for the libraries under test, the
 * real clocks plus an offset that only the test moves (th_clock_advance_ms()). Tests only.
 *
 * A test program that lists this file among its sources links these definitions instead of
 * common/sm_clock.c (which holds nothing else, so the linker never pulls it from
 * libsmcommon.a): the cache's TTLs, its L1 lifetimes and fetch times then follow the test
 * clock, and a TTL test moves time forward instead of sleeping through it. Time still runs
 * (the offset is added to the real clocks), so deadlines and timeouts keep working.
 *
 * th_clock_freeze(true) makes time stand still for the code under test (both clocks keep
 * the value they had) until th_clock_freeze(false), which carries on from that value: a
 * backoff or TTL then cannot run out while a test checks it, however loaded the machine.
 * Timeouts the code under test leaves to the kernel or a library (socket timeouts) still run.
 *
 * Known limits: advance only while the code under test is idle (between calls). A library
 * that turns an sm_now_ms() deadline into an absolute time for pthread_cond_timedwait() on
 * the real clock would wait the offset longer; no test advances during such a wait. Redis
 * expires keys by its own clock: check the PX the cache sets (PTTL), not the expiry.
 * The harness's own deadlines use th_now_ms(), the real clock.
 */
#include "config.h"

#include <time.h>

#include "common/sm_util.h"
#include "tests/harness/th.h"

static int64_t th_clock_offset_ms;	/* read and moved atomically */
static int th_clock_frozen;		/* atomic: 1 while time stands still */
static int64_t th_frozen_mono, th_frozen_wall, th_frozen_real;

static int64_t th_clock_real(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t th_clock_read(clockid_t id)
{
	if (__atomic_load_n(&th_clock_frozen, __ATOMIC_SEQ_CST))
		return id == CLOCK_MONOTONIC ? th_frozen_mono : th_frozen_wall;
	return th_clock_real(id) + __atomic_load_n(&th_clock_offset_ms, __ATOMIC_SEQ_CST);
}

void th_clock_freeze(bool on)
{
	if (on && !th_clock_frozen) {
		th_frozen_mono = th_clock_read(CLOCK_MONOTONIC);
		th_frozen_wall = th_clock_read(CLOCK_REALTIME);
		th_frozen_real = th_clock_real(CLOCK_MONOTONIC);
		__atomic_store_n(&th_clock_frozen, 1, __ATOMIC_SEQ_CST);
	} else if (!on && th_clock_frozen) {
		/* carry on from where time stood: the real time spent frozen is taken back */
		__atomic_sub_fetch(&th_clock_offset_ms, th_clock_real(CLOCK_MONOTONIC) - th_frozen_real,
		    __ATOMIC_SEQ_CST);
		__atomic_store_n(&th_clock_frozen, 0, __ATOMIC_SEQ_CST);
	}
}

int64_t sm_now_ms(void)
{
	return th_clock_read(CLOCK_MONOTONIC);
}

int64_t sm_wall_ms(void)
{
	return th_clock_read(CLOCK_REALTIME);
}

void th_clock_advance_ms(int64_t ms)
{
	__atomic_add_fetch(&th_clock_offset_ms, ms, __ATOMIC_SEQ_CST);
}

int64_t th_clock_offset(void)
{
	return __atomic_load_n(&th_clock_offset_ms, __ATOMIC_SEQ_CST);
}
