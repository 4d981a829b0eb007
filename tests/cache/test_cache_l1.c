/*
 * test_cache_l1.c - the cache without Redis: the key name space, the entry format, L1
 * bounds, eviction and TTLs, single-flight across threads, stale-on-error, deadlines, bad
 * config. (Address keys are lookup/'s: tests/lookup/test_lookup.c.)
 */
#include "config.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "tests/cache/tc.h"
#include "tests/harness/th.h"

static struct cache *new_cache(struct cache_config *k)
{
	char err[256] = "";
	struct cache *c = cache_new(k, err, sizeof(err));

	ck_assert_msg(c != NULL, "cache_new: %s", err);
	return c;
}

START_TEST(key_name_space)
{
	struct cache_config k;
	struct cache *c;
	char a[CACHE_KEY_MAX], small[20];

	tc_config(&k, "pfx");
	c = new_cache(&k);
	ck_assert_int_eq(cache_key_name(c, "product:prod_123", a, sizeof(a)), 0);
	ck_assert_str_eq(a, "pfx:v1:product:prod_123");
	ck_assert_int_eq(cache_key_name(c, "has space", a, sizeof(a)), -1);
	ck_assert_int_eq(cache_key_name(c, "tab\there", a, sizeof(a)), -1);
	ck_assert_int_eq(cache_key_name(c, "", a, sizeof(a)), -1);
	ck_assert_int_eq(cache_key_name(c, "0123456789abcdef", small, sizeof(small)), -1);
	cache_free(c);
	tc_config(&k, NULL);
	c = new_cache(&k);
	ck_assert_int_eq(cache_key_name(c, "x", a, sizeof(a)), 0);
	ck_assert_str_eq(a, "stripe-milter:v1:x");
	cache_free(c);
}
END_TEST

START_TEST(entry_round_trip_and_bad_headers)
{
	struct cache_entry e = { (unsigned char *)"a\0b", 3, CACHE_NEGATIVE, 1700000000123LL, 5000, 7000 };
	struct cache_entry d;
	unsigned char *buf;
	size_t len;

	buf = cache_entry_encode(&e, &len);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq((int)len, CACHE_ENTRY_HDR_LEN + 3);
	ck_assert_int_eq(cache_entry_decode(buf, len, &d), 0);
	ck_assert_int_eq(d.kind, CACHE_NEGATIVE);
	ck_assert(d.fetched_ms == 1700000000123LL);
	ck_assert(d.ttl_ms == 5000 && d.grace_ms == 7000);
	ck_assert_int_eq((int)d.len, 3);
	ck_assert(memcmp(d.data, "a\0b", 3) == 0);
	cache_entry_clear(&d);
	buf[3] = 2;		/* another version */
	ck_assert_int_eq(cache_entry_decode(buf, len, &d), -1);
	buf[3] = 1;
	ck_assert_int_eq(cache_entry_decode(buf, 10, &d), -1);
	buf[0] = 'X';
	ck_assert_int_eq(cache_entry_decode(buf, len, &d), -1);
	free(buf);
}
END_TEST

START_TEST(l1_entry_bound_evicts_least_recent)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct cache *c;

	tc_config(&k, "t");
	k.l1_max_entries = 3;
	c = new_cache(&k);
	ck_assert_int_eq(cache_put(c, "a", "1", 1, CACHE_POSITIVE), 0);
	ck_assert_int_eq(cache_put(c, "b", "2", 1, CACHE_POSITIVE), 0);
	ck_assert_int_eq(cache_put(c, "c", "3", 1, CACHE_POSITIVE), 0);
	/* touch a: b is now the least recent */
	ck_assert_int_eq(tc_get(c, "a", NULL, 100, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_L1);
	cache_value_free(&v);
	ck_assert_int_eq(cache_put(c, "d", "4", 1, CACHE_POSITIVE), 0);
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.l1_entries, 3);
	ck_assert_int_eq(tc_get(c, "b", NULL, 100, &v), -1);
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(c, "a", NULL, 100, &v), 0);
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(c, "c", NULL, 100, &v), 0);
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(c, "d", NULL, 100, &v), 0);
	ck_assert_int_eq((int)v.len, 1);
	ck_assert(v.data[0] == '4');
	cache_value_free(&v);
	cache_free(c);
}
END_TEST

START_TEST(l1_byte_bound)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct cache *c;
	static char big[4000];

	tc_config(&k, "t");
	k.l1_max_bytes = 10000;
	c = new_cache(&k);
	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(cache_put(c, "k1", big, sizeof(big), CACHE_POSITIVE), 0);
	ck_assert_int_eq(cache_put(c, "k2", big, sizeof(big), CACHE_POSITIVE), 0);
	ck_assert_int_eq(cache_put(c, "k3", big, sizeof(big), CACHE_POSITIVE), 0);
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.l1_entries, 2);
	ck_assert_uint_le(n.l1_bytes, 10000);
	ck_assert_uint_ge(n.l1_bytes, 8000);
	ck_assert_int_eq(tc_get(c, "k1", NULL, 100, &v), -1);
	cache_value_free(&v);
	/* bigger than the whole bound: not kept */
	{
		static char huge[20000];

		cache_put(c, "huge", huge, sizeof(huge), CACHE_POSITIVE);
		ck_assert_int_eq(tc_get(c, "huge", NULL, 100, &v), -1);
		cache_value_free(&v);
	}
	cache_free(c);
}
END_TEST

START_TEST(l1_ttl_and_per_kind_ttl)
{
	struct cache_config k;
	struct cache_value v;
	struct tc_fill pos = { .data = "P", .len = 1 }, neg = { .kind = CACHE_NEGATIVE };
	struct cache *c;

	tc_config(&k, "t");
	k.l1_ttl_s = 30;		/* longer than the entries' own TTLs */
	k.ttl_positive_s = 2;
	k.ttl_negative_s = 1;
	c = new_cache(&k);
	ck_assert_int_eq(tc_get(c, "p", &pos, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(c, "n", &neg, 1000, &v), 0);
	ck_assert_int_eq(v.kind, CACHE_NEGATIVE);
	ck_assert_ptr_null(v.data);
	cache_value_free(&v);
	th_clock_advance_ms(1100);
	/* negative expired after 1 s, positive still fresh */
	ck_assert_int_eq(tc_get(c, "n", &neg, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(c, "p", &pos, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_L1);
	cache_value_free(&v);
	th_clock_advance_ms(1000);
	ck_assert_int_eq(tc_get(c, "p", &pos, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	ck_assert_int_eq(tc_calls(&pos), 2);
	ck_assert_int_eq(tc_calls(&neg), 2);
	cache_free(c);
}
END_TEST

START_TEST(l1_own_ttl_shorter_than_entry)
{
	struct cache_config k;
	struct cache_value v;
	struct tc_fill f = { .data = "v", .len = 1 };
	struct cache *c;

	tc_config(&k, "t");
	k.l1_ttl_s = 1;
	c = new_cache(&k);
	ck_assert_int_eq(tc_get(c, "k", &f, 1000, &v), 0);
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(c, "k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_L1);
	cache_value_free(&v);
	th_clock_advance_ms(1100);
	ck_assert_int_eq(tc_get(c, "k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	ck_assert_int_eq(tc_calls(&f), 2);
	cache_free(c);
}
END_TEST

struct sf_arg {
	struct cache *c;
	struct tc_fill *fill;
	pthread_barrier_t *bar;
	int rc;
	bool ok_value;
};

static void *sf_thread(void *p)
{
	struct sf_arg *a = p;
	struct cache_value v;

	pthread_barrier_wait(a->bar);
	a->rc = tc_get(a->c, "shared", a->fill, 60000, &v);
	a->ok_value = a->rc == 0 && v.len == 5 && memcmp(v.data, "hello", 5) == 0;
	cache_value_free(&v);
	return NULL;
}

struct joins_arg {
	struct cache *c;
	int want;
};

/* For th_wait_until(): want lookups have joined the fill in flight. */
static bool joins_reached(void *p)
{
	struct joins_arg *j = p;
	struct cache_counters n;

	cache_counters_get(j->c, &n);
	return (int)n.flight_joins >= j->want;
}

START_TEST(single_flight_many_threads_one_fill)
{
	enum { N = 24 };
	struct cache_config k;
	struct cache_counters n;
	struct tc_fill f = { .data = "hello", .len = 5, .gated = true };
	struct sf_arg args[N];
	pthread_t th[N];
	pthread_barrier_t bar;
	struct joins_arg ja;
	struct cache *c;
	int i;

	tc_config(&k, "t");
	c = new_cache(&k);
	pthread_barrier_init(&bar, NULL, N);
	for (i = 0; i < N; i++) {
		args[i] = (struct sf_arg){ c, &f, &bar, -9, false };
		ck_assert_int_eq(pthread_create(&th[i], NULL, sf_thread, &args[i]), 0);
	}
	/* The fill is held until every other lookup has joined it: no timing decides who
	 * joins and who finds the value in L1. */
	ja = (struct joins_arg){ c, N - 1 };
	ck_assert(th_wait_until(joins_reached, &ja, 30000));
	tc_open(&f);
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].rc, 0);
		ck_assert(args[i].ok_value);
	}
	pthread_barrier_destroy(&bar);
	ck_assert_int_eq(tc_calls(&f), 1);
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.fills, 1);
	ck_assert_int_eq((int)n.lookups, N);
	ck_assert_int_eq((int)(n.l1_hits + n.l2_hits + n.misses), N);
	ck_assert_int_eq((int)(n.flight_joins + n.l1_hits), N - 1);
	ck_assert_int_eq((int)n.flight_joins, N - 1);
	/* the misses add up: 1 filled by its own lookup, the rest waited for that fill */
	ck_assert_int_eq((int)n.flight_misses, (int)n.flight_joins);
	ck_assert_int_eq((int)(n.misses - n.flight_misses), 1);
	cache_free(c);
}
END_TEST

START_TEST(single_flight_shares_failure)
{
	enum { N = 8 };
	struct cache_config k;
	struct cache_counters n;
	struct tc_fill f = { .errclass = 3, .temporary = true, .gated = true };
	struct sf_arg args[N];
	pthread_t th[N];
	pthread_barrier_t bar;
	struct joins_arg ja;
	struct cache *c;
	int i;

	tc_config(&k, "t");
	c = new_cache(&k);
	pthread_barrier_init(&bar, NULL, N);
	for (i = 0; i < N; i++) {
		args[i] = (struct sf_arg){ c, &f, &bar, -9, false };
		pthread_create(&th[i], NULL, sf_thread, &args[i]);
	}
	ja = (struct joins_arg){ c, N - 1 };
	ck_assert(th_wait_until(joins_reached, &ja, 30000));
	tc_open(&f);
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].rc, -1);
	}
	pthread_barrier_destroy(&bar);
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.fills, tc_calls(&f));
	ck_assert_int_eq((int)n.fill_errors[3], tc_calls(&f));
	ck_assert_int_eq(tc_calls(&f), 1);
	ck_assert_int_eq((int)n.misses, N);
	cache_free(c);
}
END_TEST

START_TEST(stale_served_on_temporary_error_within_grace)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct tc_fill ok = { .data = "old", .len = 3 };
	struct tc_fill tmp = { .errclass = 2, .temporary = true };
	struct tc_fill perm = { .errclass = 4, .temporary = false };
	struct cache *c;
	int64_t fetched;

	tc_config(&k, "t");
	k.ttl_positive_s = 1;
	k.stale_grace_s = 1;
	c = new_cache(&k);
	ck_assert_int_eq(tc_get(c, "k", &ok, 1000, &v), 0);
	fetched = v.fetched_at_ms;
	cache_value_free(&v);
	th_clock_advance_ms(1100);
	/* past TTL, within grace: a permanent error serves nothing */
	ck_assert_int_eq(tc_get(c, "k", &perm, 1000, &v), -1);
	ck_assert_int_eq(v.fill_errclass, 4);
	ck_assert(!v.stale);
	cache_value_free(&v);
	/* a temporary error serves the stale copy, marked */
	ck_assert_int_eq(tc_get(c, "k", &tmp, 1000, &v), 0);
	ck_assert(v.stale);
	ck_assert_int_eq(v.source, CACHE_SRC_STALE);
	ck_assert_str_eq(cache_source_name(v.source), "stale");
	ck_assert_int_eq(v.fill_errclass, 2);
	ck_assert(v.fetched_at_ms == fetched);
	ck_assert_int_eq((int)v.len, 3);
	ck_assert(memcmp(v.data, "old", 3) == 0);
	cache_value_free(&v);
	th_clock_advance_ms(1000);
	/* past grace: nothing */
	ck_assert_int_eq(tc_get(c, "k", &tmp, 1000, &v), -1);
	ck_assert_int_eq(v.fill_errclass, 2);
	cache_value_free(&v);
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.stale_served, 1);
	ck_assert_int_eq((int)n.fill_errors[2], 2);
	ck_assert_int_eq((int)n.fill_errors[4], 1);
	ck_assert_int_eq((int)n.fills, 4);
	cache_free(c);
}
END_TEST

static void *slow_leader(void *p)
{
	struct sf_arg *a = p;
	struct cache_value v;

	a->rc = tc_get(a->c, "slow", a->fill, 60000, &v);
	cache_value_free(&v);
	return NULL;
}

START_TEST(waiter_held_to_its_deadline)
{
	struct cache_config k;
	struct cache_value v;
	struct tc_fill f = { .data = "x", .len = 1, .gated = true };
	struct sf_arg a;
	pthread_t th;
	struct cache *c;
	int64_t t0, took;

	tc_config(&k, "t");
	c = new_cache(&k);
	a = (struct sf_arg){ c, &f, NULL, -9, false };
	pthread_create(&th, NULL, slow_leader, &a);
	/* The leader's fill runs (and holds the flight) until the test opens its gate. */
	ck_assert(th_wait_until(tc_fill_started, &f, 20000));
	t0 = sm_now_ms();
	ck_assert_int_eq(tc_get(c, "slow", &f, 1000, &v), -1);
	took = sm_now_ms() - t0;
	ck_assert(v.deadline_passed);
	cache_value_free(&v);
	/* Only the waiter's own deadline could end its wait (the fill is still held): it waited
	 * that long (a lower bound), and a generous upper bound shows it did not wait for more. */
	ck_assert_int_ge((int)took, 990);
	ck_assert_int_lt((int)took, 10000);
	ck_assert_int_eq(tc_calls(&f), 1);
	tc_open(&f);
	pthread_join(th, NULL);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(tc_calls(&f), 1);
	/* a deadline already past: no fill at all */
	ck_assert_int_eq(cache_get_or_fill(c, "other", tc_fill_fn, &f, sm_now_ms() - 1, &v), -1);
	ck_assert(v.deadline_passed);
	ck_assert_int_eq(tc_calls(&f), 1);
	cache_value_free(&v);
	cache_free(c);
}
END_TEST

START_TEST(counters_match_l1_only)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct tc_fill pos = { .data = "p", .len = 1 }, neg = { .kind = CACHE_NEGATIVE };
	struct cache *c;
	int i;

	tc_config(&k, "t");
	c = new_cache(&k);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(tc_get(c, "p", &pos, 1000, &v), 0);
		cache_value_free(&v);
	}
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(tc_get(c, "n", &neg, 1000, &v), 0);
		cache_value_free(&v);
	}
	ck_assert_int_eq(tc_get(c, "none", NULL, 1000, &v), -1);	/* read-only miss: not counted */
	cache_value_free(&v);
	ck_assert_int_eq(cache_purge(c, "p"), 0);
	ck_assert_int_eq(tc_get(c, "p", &pos, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.lookups, 6);
	ck_assert_int_eq((int)n.l1_hits, 3);
	ck_assert_int_eq((int)n.l2_hits, 0);
	ck_assert_int_eq((int)n.misses, 3);
	ck_assert_int_eq((int)n.negative_hits, 1);
	ck_assert_int_eq((int)n.fills, 3);
	ck_assert_int_eq((int)n.redis_errors, 0);
	ck_assert_int_eq((int)n.l1_entries, 2);
	ck_assert(!cache_redis_ok(c));
	{
		long del = -1;

		ck_assert_int_eq(cache_flush(c, &del), 0);
		ck_assert_int_eq((int)del, 0);
		cache_counters_get(c, &n);
		ck_assert_int_eq((int)n.l1_entries, 0);
	}
	ck_assert_ptr_null(cache_redis(c));	/* no Redis */
	cache_free(c);
}
END_TEST

START_TEST(l1_off)
{
	struct cache_config k;
	struct cache_value v;
	struct tc_fill f = { .data = "v", .len = 1 };
	struct cache *c;

	tc_config(&k, "t");
	k.l1_ttl_s = -1;
	c = new_cache(&k);
	ck_assert_int_eq(tc_get(c, "k", &f, 1000, &v), 0);
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(c, "k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	ck_assert_int_eq(tc_calls(&f), 2);
	cache_free(c);
}
END_TEST

START_TEST(bad_config_refused)
{
	struct cache_config k;
	char err[256], dir[256], path[300];
	FILE *fp;

	tc_config(&k, "t");
	k.sentinels = "127.0.0.1:26379";
	ck_assert_ptr_null(cache_new(&k, err, sizeof(err)));
	ck_assert(strstr(err, "master") != NULL);
	k.sentinel_master = "m";
	k.sentinels = "nonsense";
	ck_assert_ptr_null(cache_new(&k, err, sizeof(err)));
	ck_assert(strstr(err, "sentinel") != NULL);
	tc_config(&k, "has space");
	ck_assert_ptr_null(cache_new(&k, err, sizeof(err)));
	tc_config(&k, "t");
	k.ttl_positive_s = -5;
	ck_assert_ptr_null(cache_new(&k, err, sizeof(err)));
	/* password file: world-readable refused, private accepted */
	ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/pw", dir);
	fp = fopen(path, "w");
	fputs("s3cret\n", fp);
	fclose(fp);
	chmod(path, 0644);
	tc_config(&k, "t");
	k.redis_host = "127.0.0.1";
	k.redis_port = 1;
	k.redis_password_file = path;
	ck_assert_ptr_null(cache_new(&k, err, sizeof(err)));
	ck_assert(strstr(err, "accessible by group or others") != NULL);
	chmod(path, 0600);
	{
		struct cache *c = cache_new(&k, err, sizeof(err));

		ck_assert_msg(c != NULL, "%s", err);
		ck_assert_str_eq(c->cfg.redis_password, "s3cret");
		cache_free(c);
	}
	th_rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_l1");
	TCase *tc = tcase_create("l1");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, key_name_space);
	tcase_add_test(tc, entry_round_trip_and_bad_headers);
	tcase_add_test(tc, l1_entry_bound_evicts_least_recent);
	tcase_add_test(tc, l1_byte_bound);
	tcase_add_test(tc, l1_ttl_and_per_kind_ttl);
	tcase_add_test(tc, l1_own_ttl_shorter_than_entry);
	tcase_add_test(tc, single_flight_many_threads_one_fill);
	tcase_add_test(tc, single_flight_shares_failure);
	tcase_add_test(tc, stale_served_on_temporary_error_within_grace);
	tcase_add_test(tc, waiter_held_to_its_deadline);
	tcase_add_test(tc, counters_match_l1_only);
	tcase_add_test(tc, l1_off);
	tcase_add_test(tc, bad_config_refused);
	suite_add_tcase(s, tc);
	return th_run(s);
}
