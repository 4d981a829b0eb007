/*
 * tc.h - helpers shared by the cache tests: a scriptable fill function, a config with
 * short settings, sleeping, and thread start barriers. TTL tests move the test clock
 * (th_clock_advance_ms(), tests/harness/th_clock.c) instead of sleeping.
 */
#ifndef TC_H
#define TC_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "common/sm_util.h"

/* What the fill does: sleep delay_ms (or, when gated, wait until the test opens the gate),
 * then succeed with data (kind) or fail. Either wait ends at the fill's deadline. */
struct tc_fill {
	int calls;			/* atomic */
	int delay_ms;
	bool gated;
	int open;			/* atomic: the gate, set by tc_open() */
	const char *data;
	size_t len;
	enum cache_kind kind;
	int errclass;
	bool temporary;
};

static inline void tc_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static inline void tc_fill_fn(void *arg, int64_t deadline_ms, struct cache_fill_out *out)
{
	struct tc_fill *f = arg;

	__atomic_fetch_add(&f->calls, 1, __ATOMIC_SEQ_CST);
	while (f->gated && !__atomic_load_n(&f->open, __ATOMIC_SEQ_CST) && sm_ms_left(deadline_ms) > 0)
		tc_sleep_ms(1);		/* the stand-in for a slow Stripe, not the test's synchronisation */
	if (f->delay_ms > 0) {
		int64_t left = sm_ms_left(deadline_ms);

		tc_sleep_ms(f->delay_ms < left ? f->delay_ms : left);
	}
	if (f->errclass) {
		out->errclass = f->errclass;
		out->temporary = f->temporary;
		return;
	}
	out->kind = f->kind;
	if (f->data) {
		out->data = malloc(f->len ? f->len : 1);
		memcpy(out->data, f->data, f->len);
		out->len = f->len;
	}
}

static inline int tc_calls(struct tc_fill *f)
{
	return __atomic_load_n(&f->calls, __ATOMIC_SEQ_CST);
}

static inline void tc_open(struct tc_fill *f)
{
	__atomic_store_n(&f->open, 1, __ATOMIC_SEQ_CST);
}

/* For th_wait_until(): the fill has been called at least once. */
static inline bool tc_fill_started(void *arg)
{
	return tc_calls(arg) > 0;
}

/* Short settings every test starts from; no Redis. */
static inline void tc_config(struct cache_config *k, const char *prefix)
{
	memset(k, 0, sizeof(*k));
	k->prefix = prefix;
	k->ttl_positive_s = 60;
	k->ttl_negative_s = 30;
	k->stale_grace_s = 60;
	k->command_timeout_ms = 300;
	k->connect_timeout_ms = 300;
}

/* A lookup with a deadline ms from now. */
static inline int tc_get(struct cache *c, const char *key, struct tc_fill *f, int ms,
    struct cache_value *v)
{
	return cache_get_or_fill(c, key, f ? tc_fill_fn : NULL, f, sm_now_ms() + ms, v);
}

#endif
