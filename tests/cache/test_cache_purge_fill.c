/*
 * test_cache_purge_fill.c - a purge that lands while a fill is in flight (the fill read
 * Stripe before the change the purge is about) keeps that fill's result out of Redis and
 * out of L1, against a real redis-server started here. The fill still answers the lookup
 * that made it.
 *
 * The order is driven, not timed: the test's fill function runs the purge itself, between
 * "Stripe answered" and "the cache stores", which is the window of the race. The purges
 * are the three a daemon makes: cache_purge() (stripe-milterctl purge, a lookup's own),
 * another instance's UNLINK of the key and its lock (fleet/fl_inval.c, for a Stripe
 * event), and this process's cache_local_purge() (the fleet's PUBLISH, received).
 *
 * Before the fix the fill stored its pre-event bytes after the purge: the next lookup got
 * them from L1 or Redis until their TTL (a customer who had just paid still read past_due).
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tests/cache/tc.h"
#include "tests/harness/th.h"

static struct th_redis R;

/* A fill that runs a purge (how) after "reading Stripe" and before returning. */
enum how { NONE, PURGE_OTHER, UNLINK_RAW, LOCAL_PURGE, LOCAL_PURGE_OTHER_KEY };

struct pfill {
	struct tc_fill f;
	enum how how;
	struct cache *self, *other;
	const char *key;
};

static void purge_fill(void *arg, int64_t deadline_ms, struct cache_fill_out *out)
{
	struct pfill *p = arg;
	char reply[64];

	tc_fill_fn(&p->f, deadline_ms, out);	/* "Stripe" answered: the old data */
	switch (p->how) {
	case NONE:
		break;
	case PURGE_OTHER:	/* another instance: cache_purge() */
		ck_assert_int_eq(cache_purge(p->other, p->key), 0);
		break;
	case UNLINK_RAW:	/* the fleet's event: UNLINK key and key:lock, by hand */
		ck_assert_int_eq(th_redis_cmd(&R, reply, sizeof(reply), "UNLINK %s %s" CACHE_LOCK_SUFFIX,
		    p->key, p->key), 0);
		break;
	case LOCAL_PURGE:	/* this process's subscriber got the purge message */
		cache_local_purge(p->self, p->key);
		break;
	case LOCAL_PURGE_OTHER_KEY:
		cache_local_purge(p->self, "p:v1:unrelated");
		break;
	}
}

static struct cache *new_cache(bool redis)
{
	struct cache_config k;
	char err[256] = "";
	struct cache *c;

	tc_config(&k, "p");
	if (redis) {
		k.redis_host = "127.0.0.1";
		k.redis_port = R.port;
		k.command_timeout_ms = 2000;	/* a loaded machine: no Redis timeout here */
	}
	c = cache_new(&k, err, sizeof(err));
	ck_assert_msg(c != NULL, "cache_new: %s", err);
	return c;
}

static int get(struct cache *c, struct pfill *p, struct cache_value *v)
{
	return cache_get_or_fill(c, p->key, purge_fill, p, sm_now_ms() + 10000, v);
}

/* Whether Redis holds the key ("1") or not ("0"). */
static const char *in_redis(const char *key)
{
	static char reply[64];

	ck_assert_int_eq(th_redis_cmd(&R, reply, sizeof(reply), "EXISTS %s", key), 0);
	return reply;
}

static uint64_t discarded(struct cache *c)
{
	struct cache_counters cc;

	cache_counters_get(c, &cc);
	return cc.fills_discarded;
}

/* One case: the first lookup fills (purge inside it) and answers from the fill; then what
 * the next lookup finds. want_next: where it comes from; fills: fills by then. */
static void run_case(bool redis, enum how how, const char *key, const char *want_redis,
    enum cache_source want_next, int fills, uint64_t want_discarded)
{
	struct cache *c = new_cache(redis), *o = redis ? new_cache(true) : NULL;
	struct pfill p;
	struct cache_value v;
	char reply[64];

	memset(&p, 0, sizeof(p));
	p.f.data = "OLD";
	p.f.len = 3;
	p.how = how;
	p.self = c;
	p.other = o;
	p.key = key;
	if (redis)
		ck_assert_int_eq(th_redis_cmd(&R, reply, sizeof(reply), "UNLINK %s", key), 0);
	ck_assert_int_eq(get(c, &p, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);	/* the lookup that filled gets its answer */
	ck_assert(v.len == 3 && memcmp(v.data, "OLD", 3) == 0);
	cache_value_free(&v);
	if (redis)
		ck_assert_str_eq(in_redis(key), want_redis);
	ck_assert_uint_eq(discarded(c), want_discarded);
	p.how = NONE;
	ck_assert_int_eq(get(c, &p, &v), 0);
	ck_assert_msg(v.source == want_next, "next lookup from %s, want %s",
	    cache_source_name(v.source), cache_source_name(want_next));
	cache_value_free(&v);
	ck_assert_int_eq(tc_calls(&p.f), fills);
	if (o)
		cache_free(o);
	cache_free(c);
}

/* Control: no purge during the fill: stored in Redis and L1; the next lookup hits L1. */
START_TEST(no_purge_stores)
{
	run_case(true, NONE, "p:v1:a", "1", CACHE_SRC_L1, 1, 0);
}
END_TEST

/* Another instance's cache_purge() during the fill: nothing stored; the next lookup fills. */
START_TEST(other_instance_purge_discards)
{
	run_case(true, PURGE_OTHER, "p:v1:b", "0", CACHE_SRC_FILL, 2, 1);
}
END_TEST

/* The fleet's UNLINK of key and lock (a Stripe event) during the fill: the same. */
START_TEST(fleet_unlink_discards)
{
	run_case(true, UNLINK_RAW, "p:v1:c", "0", CACHE_SRC_FILL, 2, 1);
}
END_TEST

/* This process's L1 purged during the fill (the purge message): kept out of L1. Redis
 * still took it here, because the test's purge left the lock alone (the fleet's never
 * does: fleet_unlink_discards), so the next lookup reads it from Redis. */
START_TEST(local_purge_keeps_out_of_l1)
{
	run_case(true, LOCAL_PURGE, "p:v1:d", "1", CACHE_SRC_REDIS, 1, 1);
}
END_TEST

/* Without Redis: a local purge during the fill keeps it out of L1; the next lookup fills. */
START_TEST(l1_only_local_purge_discards)
{
	run_case(false, LOCAL_PURGE, "p:v1:e", NULL, CACHE_SRC_FILL, 2, 1);
}
END_TEST

/* A purge of another key counts too (one global count): the cost is one Redis read. */
START_TEST(unrelated_local_purge_costs_one_redis_read)
{
	run_case(true, LOCAL_PURGE_OTHER_KEY, "p:v1:f", "1", CACHE_SRC_REDIS, 1, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_purge_fill");
	TCase *tc = tcase_create("purge during fill");
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (th_redis_start(&R, 0, NULL) != 0)
		th_skip_all("redis-server not available");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, no_purge_stores);
	tcase_add_test(tc, other_instance_purge_discards);
	tcase_add_test(tc, fleet_unlink_discards);
	tcase_add_test(tc, local_purge_keeps_out_of_l1);
	tcase_add_test(tc, l1_only_local_purge_discards);
	tcase_add_test(tc, unrelated_local_purge_costs_one_redis_read);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_redis_stop(&R);
	return rc;
}
