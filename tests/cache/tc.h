/*
 * tc.h - helpers shared by the cache tests: a scriptable fill function, a config with
 * short settings, sleeping, and thread start barriers.
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

/* What the fill does: sleep delay_ms, then succeed with data (kind) or fail. */
struct tc_fill {
	int calls;			/* atomic */
	int delay_ms;
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
