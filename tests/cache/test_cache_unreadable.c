/*
 * test_cache_unreadable.c - entries in Redis that the cache's user cannot read
 * (cache_config.check fails), met by a read-only probe, a filler, a flight's waiter and
 * another instance in every order, against a real redis-server started here.
 *
 * The order is driven, not timed: the check is the hook. The test's check holds the first
 * reader that enters it at a gate until the test opens it, and the test waits for the
 * conditions it needs (a reader held, a waiter joined) before it lets the next step run.
 * Whatever the order, every lookup that may fill gets a fresh fill's answer, a probe gets
 * a miss, the unreadable bytes are never served and never come back into L1 or Redis,
 * and a good entry stored meanwhile is never deleted by a reader of the bad one.
 *
 * (Before the check existed, the lookup purged unreadable bytes after the cache had
 * already stored them in L1: a reader that had read them from Redis before the purge
 * stored them again after it, and the next lookup got them from L1: the message said
 * error=malformed; cache=hit, the entry "purged" three times.)
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tests/cache/tc.h"
#include "tests/harness/th.h"

static struct th_redis R;

/* The check: bytes starting "BAD" are unreadable. hold: the next caller waits at the gate. */
struct hold {
	int hold;			/* atomic: 1 = hold the next caller */
	int held;			/* atomic: a caller waits at the gate now (or did) */
	int open;			/* atomic: the gate */
	int calls;			/* atomic */
	int failed;			/* atomic: checks that said unreadable */
};

static struct hold H;

static int test_check(void *arg, const unsigned char *data, size_t len, char *why, size_t whylen)
{
	struct hold *h = arg;

	__atomic_fetch_add(&h->calls, 1, __ATOMIC_SEQ_CST);
	if (__atomic_exchange_n(&h->hold, 0, __ATOMIC_SEQ_CST) == 1) {
		__atomic_store_n(&h->held, 1, __ATOMIC_SEQ_CST);
		while (!__atomic_load_n(&h->open, __ATOMIC_SEQ_CST))
			tc_sleep_ms(1);	/* a gate the test opens, not a wait for time to pass */
	}
	if (len >= 3 && memcmp(data, "BAD", 3) == 0) {
		__atomic_fetch_add(&h->failed, 1, __ATOMIC_SEQ_CST);
		snprintf(why, whylen, "test: bad bytes");
		return -1;
	}
	return 0;
}

static bool held(void *arg)
{
	return __atomic_load_n(&((struct hold *)arg)->held, __ATOMIC_SEQ_CST) != 0;
}

static void hold_next(void)
{
	memset(&H, 0, sizeof(H));
	__atomic_store_n(&H.hold, 1, __ATOMIC_SEQ_CST);
}

static void open_gate(void)
{
	__atomic_store_n(&H.open, 1, __ATOMIC_SEQ_CST);
}

static struct cache *new_cache(const char *prefix, bool checked)
{
	struct cache_config k;
	char err[256] = "";
	struct cache *c;

	tc_config(&k, prefix);
	k.redis_host = "127.0.0.1";
	k.redis_port = R.port;
	k.command_timeout_ms = 2000;	/* a loaded machine: no Redis timeout in these orders */
	if (checked) {
		k.check = test_check;
		k.check_arg = &H;
	}
	c = cache_new(&k, err, sizeof(err));
	ck_assert_msg(c != NULL, "cache_new: %s", err);
	return c;
}

/* Stores bytes as a well-formed cache entry (another program's, without a check). */
static void plant(const char *prefix, const char *key, const char *bytes)
{
	struct cache *w = new_cache(prefix, false);

	ck_assert_int_eq(cache_put(w, key, bytes, strlen(bytes), CACHE_POSITIVE), 0);
	cache_free(w);
}

/* The bytes Redis holds for key, as a cache entry ("" when none or unreadable). */
static void redis_value(const char *prefix, const char *key, char *out, size_t len)
{
	struct cache *r = new_cache(prefix, false);
	struct cache_value v;

	out[0] = '\0';
	cache_local_clear(r);
	if (cache_get_or_fill(r, key, NULL, NULL, sm_now_ms() + 2000, &v) == 0 && v.data) {
		snprintf(out, len, "%.*s", (int)v.len, (const char *)v.data);
		ck_assert_int_eq(v.source, CACHE_SRC_REDIS);
	}
	cache_value_free(&v);
	cache_free(r);
}

struct job {
	struct cache *c;
	const char *key;
	struct tc_fill *f;		/* NULL: a read-only probe */
	int rc;
	struct cache_value v;
};

static void *job_main(void *p)
{
	struct job *j = p;

	j->rc = cache_get_or_fill(j->c, j->key, j->f ? tc_fill_fn : NULL, j->f, sm_now_ms() + 20000, &j->v);
	return NULL;
}

static void job_start(pthread_t *th, struct job *j)
{
	ck_assert_int_eq(pthread_create(th, NULL, job_main, j), 0);
}

static void expect_fresh(const struct job *j, const char *data)
{
	ck_assert_int_eq(j->rc, 0);
	ck_assert_int_eq(j->v.source, CACHE_SRC_FILL);
	ck_assert_int_eq((int)j->v.len, (int)strlen(data));
	ck_assert(memcmp(j->v.data, data, j->v.len) == 0);
}

/* The next lookup gets the good bytes from L1 and nothing more is filled. */
static void expect_settled(struct cache *c, const char *key, struct tc_fill *f, int fills)
{
	struct cache_value v;

	ck_assert_int_eq(tc_get(c, key, f, 5000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_L1);
	ck_assert(v.len >= 4 && memcmp(v.data, "GOOD", 4) == 0);
	cache_value_free(&v);
	ck_assert_int_eq(tc_calls(f), fills);
}

static struct job job(struct cache *c, const char *key, struct tc_fill *f)
{
	struct job j;

	memset(&j, 0, sizeof(j));
	j.c = c;
	j.key = key;
	j.f = f;
	return j;
}

/* Probe first, then the lookup: the probe misses, the lookup fills. */
START_TEST(probe_then_lookup)
{
	struct tc_fill f = { .data = "GOOD1", .len = 5 };
	struct cache *c = new_cache("u1", true);
	struct job p = job(c, "u1:v1:k", NULL), l = job(c, "u1:v1:k", &f);
	char out[64];

	memset(&H, 0, sizeof(H));
	plant("u1", "u1:v1:k", "BAD1");
	job_main(&p);
	ck_assert_int_eq(p.rc, -1);
	ck_assert_int_eq(__atomic_load_n(&H.failed, __ATOMIC_SEQ_CST), 1);
	redis_value("u1", "u1:v1:k", out, sizeof(out));
	ck_assert_str_eq(out, "");		/* purged */
	job_main(&l);
	expect_fresh(&l, "GOOD1");
	expect_settled(c, "u1:v1:k", &f, 1);
	cache_value_free(&p.v);
	cache_value_free(&l.v);
	cache_free(c);
}
END_TEST

/* A probe has read the bad bytes and is held before it decides; meanwhile a lookup reads
 * them too, fills and stores good bytes; then the probe goes on. The probe's delete must
 * not take the good entry, and the bad bytes must not come back (the old race). */
START_TEST(probe_held_while_lookup_fills)
{
	struct tc_fill f = { .data = "GOOD2", .len = 5 };
	struct cache *c = new_cache("u2", true);
	struct job p = job(c, "u2:v1:k", NULL), l = job(c, "u2:v1:k", &f);
	pthread_t tp;
	char out[64];

	plant("u2", "u2:v1:k", "BAD2");
	hold_next();
	job_start(&tp, &p);
	ck_assert(th_wait_until(held, &H, 20000));
	job_main(&l);				/* not held: the gate holds one caller */
	expect_fresh(&l, "GOOD2");
	open_gate();
	pthread_join(tp, NULL);
	ck_assert_int_eq(p.rc, -1);		/* the probe: a miss, never the bad bytes */
	redis_value("u2", "u2:v1:k", out, sizeof(out));
	ck_assert_str_eq(out, "GOOD2");	/* the good entry stayed */
	expect_settled(c, "u2:v1:k", &f, 1);
	ck_assert_int_eq(__atomic_load_n(&H.failed, __ATOMIC_SEQ_CST), 2);
	cache_value_free(&p.v);
	cache_value_free(&l.v);
	cache_free(c);
}
END_TEST

static bool joined(void *arg)
{
	struct cache_counters n;

	cache_counters_get(arg, &n);
	return n.flight_joins >= 1;
}

/* A lookup leads and is held in the check; a second lookup joins its flight; a probe reads
 * and purges the bad bytes meanwhile; then the leader goes on: one fill, and both lookups
 * get its answer. */
START_TEST(leader_held_waiter_and_probe)
{
	struct tc_fill f = { .data = "GOOD3", .len = 5 };
	struct cache *c = new_cache("u3", true);
	struct job a = job(c, "u3:v1:k", &f), b = job(c, "u3:v1:k", &f), p = job(c, "u3:v1:k", NULL);
	struct cache_counters n;
	pthread_t ta, tb;

	plant("u3", "u3:v1:k", "BAD3");
	hold_next();
	job_start(&ta, &a);
	ck_assert(th_wait_until(held, &H, 20000));
	job_start(&tb, &b);
	ck_assert(th_wait_until(joined, c, 20000));	/* b waits for a's flight */
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.flight_joins, 1);
	job_main(&p);
	ck_assert_int_eq(p.rc, -1);
	open_gate();
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	expect_fresh(&a, "GOOD3");
	ck_assert_int_eq(b.rc, 0);		/* the waiter: the leader's fill */
	ck_assert_int_eq(b.v.source, CACHE_SRC_FILL);
	ck_assert(b.v.len == 5 && memcmp(b.v.data, "GOOD3", 5) == 0);
	expect_settled(c, "u3:v1:k", &f, 1);
	cache_value_free(&a.v);
	cache_value_free(&b.v);
	cache_value_free(&p.v);
	cache_free(c);
}
END_TEST

/* A lookup is held in the check; another instance (its own cache, its own fill) meets the
 * bad bytes, fills and stores; then the first goes on: it reads the other's entry under
 * the lock instead of filling again, and nothing deletes it. */
START_TEST(lookup_held_while_other_instance_fills)
{
	struct tc_fill f = { .data = "GOOD4", .len = 5 }, g = { .data = "GOOD4", .len = 5 };
	struct cache *c = new_cache("u4", true), *d = new_cache("u4", true);
	struct job a = job(c, "u4:v1:k", &f), b = job(d, "u4:v1:k", &g);
	pthread_t ta;
	char out[64];

	plant("u4", "u4:v1:k", "BAD4");
	hold_next();
	job_start(&ta, &a);
	ck_assert(th_wait_until(held, &H, 20000));
	job_main(&b);
	expect_fresh(&b, "GOOD4");
	open_gate();
	pthread_join(ta, NULL);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(a.v.source, CACHE_SRC_REDIS);
	ck_assert(a.v.len == 5 && memcmp(a.v.data, "GOOD4", 5) == 0);
	ck_assert_int_eq(tc_calls(&f), 0);	/* one fill across both instances */
	redis_value("u4", "u4:v1:k", out, sizeof(out));
	ck_assert_str_eq(out, "GOOD4");
	expect_settled(c, "u4:v1:k", &f, 0);
	cache_value_free(&a.v);
	cache_value_free(&b.v);
	cache_free(c);
	cache_free(d);
}
END_TEST

/* The fill fails with a temporary error: the unreadable bytes are no stale candidate
 * either; the lookup fails (no bytes to serve) and they are gone. */
START_TEST(unreadable_never_served_as_stale)
{
	struct tc_fill f = { .errclass = 2, .temporary = true };
	struct cache *c = new_cache("u5", true);
	struct job l = job(c, "u5:v1:k", &f);
	char out[64];

	memset(&H, 0, sizeof(H));
	plant("u5", "u5:v1:k", "BAD5");
	job_main(&l);
	ck_assert_int_eq(l.rc, -1);
	ck_assert_int_eq(l.v.fill_errclass, 2);
	ck_assert_int_eq(tc_calls(&f), 1);
	redis_value("u5", "u5:v1:k", out, sizeof(out));
	ck_assert_str_eq(out, "");
	cache_value_free(&l.v);
	cache_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_unreadable");
	TCase *tc = tcase_create("orders");
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (th_redis_start(&R, 0, NULL) != 0)
		th_skip_all("redis-server not available");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, probe_then_lookup);
	tcase_add_test(tc, probe_held_while_lookup_fills);
	tcase_add_test(tc, leader_held_waiter_and_probe);
	tcase_add_test(tc, lookup_held_while_other_instance_fills);
	tcase_add_test(tc, unreadable_never_served_as_stale);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_redis_stop(&R);
	return rc;
}
