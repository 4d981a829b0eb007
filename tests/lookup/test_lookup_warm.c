/*
 * test_lookup_warm.c - the warm path of lookup/ (issue #14): cache_get_l1() (a fresh L1
 * entry or nothing, counted like cache_get_or_fill()), lk_summary_decode_memo() (exactly
 * lk_summary_decode()'s results and errors, across evictions and threads), and lk_start()
 * answering an L1 hit on the caller's thread (no worker pool started here: a hit is done
 * at once, a miss still goes to the queue, which answers error=overloaded).
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_util.h"
#include "lookup/lk_int.h"
#include "tests/harness/th.h"

/* A found customer whose bytes differ with i. */
static void summary_n(struct stripe_summary *s, int i)
{
	memset(s, 0, sizeof(*s));
	s->found = true;
	s->matches = 1;
	s->created = 1700000000 + i;
	snprintf(s->customer_id, sizeof(s->customer_id), "cus_warm%06d", i);
	snprintf(s->email, sizeof(s->email), "warm%d@example.com", i);
	snprintf(s->name, sizeof(s->name), "Customer \xc3\xa9 %d", i);
	s->balance.amount = -i;
	sm_strlcpy(s->balance.currency, "usd", sizeof(s->balance.currency));
	s->nsubs = 1;
	s->subs_total = 1;
	snprintf(s->subs[0].id, sizeof(s->subs[0].id), "sub_%d", i);
	s->subs[0].status = STRIPE_SUB_ACTIVE;
	snprintf(s->subs[0].plan, sizeof(s->subs[0].plan), "Plan %d", i % 7);
	s->subs[0].unit_amount.amount = 4900 + i;
	sm_strlcpy(s->subs[0].unit_amount.currency, "usd", sizeof(s->subs[0].unit_amount.currency));
	sm_strlcpy(s->subs[0].interval, "month", sizeof(s->subs[0].interval));
	s->subs[0].interval_count = 1;
	s->charges.window_days = 90;
	s->charges.count = i % 5;
}

static char *encode_n(int i, size_t *len)
{
	struct stripe_summary s;
	char *buf = NULL;

	summary_n(&s, i);
	ck_assert_int_eq(lk_summary_encode(&s, &buf, len), 0);
	return buf;
}

/* decode_memo must give what decode gives, byte for byte, and the same errors. */
static void same_as_decode(const char *buf, size_t len)
{
	struct stripe_summary *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	char ea[128] = "", eb[128] = "";
	int ra, rb;

	ck_assert(a && b);
	memset(a, 0x55, sizeof(*a));
	memset(b, 0xaa, sizeof(*b));
	ra = lk_summary_decode(buf, len, a, ea, sizeof(ea));
	rb = lk_summary_decode_memo(buf, len, b, eb, sizeof(eb));
	ck_assert_int_eq(ra, rb);
	if (ra == 0)
		ck_assert_int_eq(memcmp(a, b, sizeof(*a)), 0);
	else
		ck_assert_str_eq(ea, eb);
	free(a);
	free(b);
}

START_TEST(memo_gives_decode_results_across_evictions)
{
	enum { N = 600 };	/* more than the memo holds: every slot is replaced */
	char *bufs[N];
	size_t lens[N];
	int i, pass;

	for (i = 0; i < N; i++)
		bufs[i] = encode_n(i, &lens[i]);
	for (pass = 0; pass < 3; pass++)
		for (i = 0; i < N; i++)
			same_as_decode(bufs[i], lens[i]);
	for (i = 0; i < 50; i++)	/* the same bytes again and again: the hit path */
		same_as_decode(bufs[7], lens[7]);
	for (i = 0; i < N; i++)
		free(bufs[i]);
}
END_TEST

START_TEST(memo_never_keeps_what_does_not_decode)
{
	static const char *bad[] = { "{\"v\":2}", "{\"v\":1,\"found\":\"yes\"}", "[1]", "{" };
	struct sm_buf big;
	size_t i;
	int k;

	for (k = 0; k < 3; k++)
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			same_as_decode(bad[i], strlen(bad[i]));
	same_as_decode(NULL, 0);
	/* longer than the memo keeps: decoded every time, same result */
	sm_buf_init(&big, 1 << 16);
	sm_buf_printf(&big, "{\"v\":1,\"found\":true,\"id\":\"cus_big\"");
	for (k = 0; k < 6000; k++)
		sm_buf_append(&big, " ", 1);
	sm_buf_printf(&big, "}");
	same_as_decode(big.data, big.len);
	same_as_decode(big.data, big.len);
	sm_buf_free(&big);
}
END_TEST

struct memo_arg {
	int base;
	int errors;
};

static void *memo_thread(void *p)
{
	struct memo_arg *a = p;
	struct stripe_summary want, got;
	char err[128];
	int i;

	for (i = 0; i < 3000; i++) {
		int n = a->base + i % 40;
		size_t len;
		char *buf;

		summary_n(&want, n);
		buf = NULL;
		if (lk_summary_encode(&want, &buf, &len) != 0) {
			a->errors++;
			continue;
		}
		if (lk_summary_decode_memo(buf, len, &got, err, sizeof(err)) != 0 ||
		    memcmp(&want, &got, sizeof(want)) != 0)
			a->errors++;
		free(buf);
	}
	return NULL;
}

START_TEST(memo_is_safe_across_threads)
{
	pthread_t t[4];
	struct memo_arg a[4];
	int i;

	for (i = 0; i < 4; i++) {
		a[i].base = i * 20;	/* overlapping ranges: threads share entries */
		a[i].errors = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, memo_thread, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(a[i].errors, 0);
	}
}
END_TEST

static struct cache *l1_cache(int l1_ttl_s)
{
	struct cache_config k;
	char err[256] = "";
	struct cache *c;

	memset(&k, 0, sizeof(k));
	k.prefix = "warm";
	k.l1_ttl_s = l1_ttl_s;
	c = cache_new(&k, err, sizeof(err));
	ck_assert_msg(c != NULL, "cache_new: %s", err);
	return c;
}

START_TEST(cache_get_l1_fresh_entries_only)
{
	struct cache *c = l1_cache(0), *off = l1_cache(-1);
	struct cache_counters before, after;
	struct cache_value v;

	cache_counters_get(c, &before);
	ck_assert_int_eq(cache_get_l1(c, "warm:v1:k1", &v), -1);	/* a miss counts nothing */
	ck_assert_ptr_null(v.data);
	cache_counters_get(c, &after);
	ck_assert_uint_eq(after.lookups, before.lookups);
	ck_assert_int_eq(cache_put(c, "warm:v1:k1", "abc", 3, CACHE_POSITIVE), 0);
	ck_assert_int_eq(cache_put(c, "warm:v1:k2", NULL, 0, CACHE_NEGATIVE), 0);
	ck_assert_int_eq(cache_get_l1(c, "warm:v1:k1", &v), 0);
	ck_assert_uint_eq(v.len, 3);
	ck_assert_int_eq(memcmp(v.data, "abc", 3), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_L1);
	ck_assert(!v.stale);
	cache_value_free(&v);
	ck_assert_int_eq(cache_get_l1(c, "warm:v1:k2", &v), 0);
	ck_assert_uint_eq(v.len, 0);
	ck_assert_int_eq(v.kind, CACHE_NEGATIVE);
	cache_value_free(&v);
	cache_counters_get(c, &after);
	ck_assert_uint_eq(after.lookups, before.lookups + 2);
	ck_assert_uint_eq(after.l1_hits, before.l1_hits + 2);
	ck_assert_uint_eq(after.negative_hits, before.negative_hits + 1);
	/* L1 off: never answers, whatever was put */
	ck_assert_int_eq(cache_put(off, "warm:v1:k1", "abc", 3, CACHE_POSITIVE), 0);
	ck_assert_int_eq(cache_get_l1(off, "warm:v1:k1", &v), -1);
	ck_assert_int_eq(cache_get_l1(NULL, "warm:v1:k1", &v), -1);
	cache_free(c);
	cache_free(off);
}
END_TEST

START_TEST(hit_is_answered_without_a_worker)
{
	struct lk_config lc;
	struct lk *lk;
	struct lk_job *hit, *miss;
	const struct lk_result *r;
	char err[256] = "", key[CACHE_KEY_MAX], *buf;
	size_t len;

	memset(&lc, 0, sizeof(lc));
	lc.stripe.api_key = "sk_test_lookupwarm";
	lc.stripe.base_url = "http://127.0.0.1:9";
	lc.cache.prefix = "warm";
	lc.mode = "test";
	lc.stripe_timeout_ms = 1000;
	lk = lk_new(&lc, NULL, err, sizeof(err));
	ck_assert_msg(lk != NULL, "lk_new: %s", err);
	buf = encode_n(42, &len);
	ck_assert_int_eq(lk_key(lk_cache(lk), "test", NULL, "Warm42@Example.com", key, sizeof(key)), 0);
	ck_assert_int_eq(cache_put(lk_cache(lk), key, buf, len, CACHE_POSITIVE), 0);
	free(buf);
	/* no lk_pool_start(): only the caller's thread can have answered */
	hit = lk_start(lk, "warm42@example.com");
	ck_assert_ptr_nonnull(hit);
	ck_assert(lk_wait(hit, sm_now_ms()));		/* done already: no wait at all */
	r = lk_job_result(hit);
	ck_assert_int_eq(r->lr_state, LK_FOUND);
	ck_assert_int_eq(r->lr_source, CACHE_SRC_L1);
	ck_assert_str_eq(r->lr_summary.customer_id, "cus_warm000042");
	miss = lk_start(lk, "cold@example.com");
	ck_assert(lk_wait(miss, sm_now_ms()));
	ck_assert_int_eq(lk_job_result(miss)->lr_state, LK_ERROR);
	ck_assert_str_eq(lk_job_result(miss)->lr_error, "overloaded");
	lk_release(hit);
	lk_release(miss);
	lk_put(lk);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lookup-warm");
	TCase *tc = tcase_create("warm");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, memo_gives_decode_results_across_evictions);
	tcase_add_test(tc, memo_never_keeps_what_does_not_decode);
	tcase_add_test(tc, memo_is_safe_across_threads);
	tcase_add_test(tc, cache_get_l1_fresh_entries_only);
	tcase_add_test(tc, hit_is_answered_without_a_worker);
	suite_add_tcase(s, tc);
	return th_run(s);
}
