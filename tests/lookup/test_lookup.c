/*
 * test_lookup.c - lookup/ without the daemon: the cache key of an address (against a
 * published SHA-256 test vector and against sha256sum run on the lowercased address),
 * the summary codec, the plan-name hooks and their deadline against a real (stalled)
 * redis-server, and which parts a new service reuses from the previous one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_util.h"
#include "lookup/lk_int.h"
#include "tests/harness/th.h"

static struct th_redis R;
static bool have_redis;

static struct cache *new_cache(const char *prefix, bool redis, int cmd_timeout_ms)
{
	struct cache_config k;
	char err[256] = "";
	struct cache *c;

	memset(&k, 0, sizeof(k));
	k.prefix = prefix;
	k.command_timeout_ms = cmd_timeout_ms;
	k.connect_timeout_ms = 500;
	if (redis) {
		k.redis_host = "127.0.0.1";
		k.redis_port = R.port;
	}
	c = cache_new(&k, err, sizeof(err));
	ck_assert_msg(c != NULL, "cache_new: %s", err);
	return c;
}

/* ---- keys ---- */

START_TEST(key_format_and_lowercasing)
{
	struct cache *c = new_cache("pfx", false, 0);
	char a[CACHE_KEY_MAX], b[CACHE_KEY_MAX], small[40];

	ck_assert_int_eq(lk_key(c, "live", "acct_1", "Jenny@Example.COM", a, sizeof(a)), 0);
	ck_assert_int_eq(lk_key(c, "live", "acct_1", "jenny@example.com", b, sizeof(b)), 0);
	ck_assert_str_eq(a, b);
	ck_assert(strstr(a, "example") == NULL);
	ck_assert_int_eq((int)strlen(a), (int)strlen("pfx:v1:sum1:live:acct_1:") + 64);
	ck_assert_int_eq(lk_key(c, "test", NULL, "x@y", a, sizeof(a)), 0);
	ck_assert(strncmp(a, "pfx:v1:sum1:test:-:", 19) == 0);
	ck_assert_int_eq(lk_key(c, "live", "bad:acct", "x@y", a, sizeof(a)), -1);
	ck_assert_int_eq(lk_key(c, "live", "bad acct", "x@y", a, sizeof(a)), -1);
	ck_assert_int_eq(lk_key(c, "live", "acct", "x@y", small, sizeof(small)), -1);
	ck_assert_int_eq(lk_key(c, "live", "acct", NULL, a, sizeof(a)), -1);
	/* Non-ASCII bytes are hashed as they are: only A-Z is folded. */
	ck_assert_int_eq(lk_key(c, "live", "-", "\xc3\x89t\xc3\xa9@x.org", a, sizeof(a)), 0);
	ck_assert_int_eq(lk_key(c, "live", "-", "\xc3\xa9t\xc3\xa9@x.org", b, sizeof(b)), 0);
	ck_assert_str_ne(a, b);
	cache_free(c);
}
END_TEST

/* FIPS 180-2, appendix B.1: SHA-256("abc"). The key's last part is the digest. */
START_TEST(key_hash_is_sha256_known_vector)
{
	struct cache *c = new_cache(NULL, false, 0);
	char a[CACHE_KEY_MAX];

	ck_assert_int_eq(lk_key(c, "live", "-", "ABC", a, sizeof(a)), 0);
	ck_assert_str_eq(a, "stripe-milter:v1:sum1:live:-:"
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* and the empty-message vector: SHA-256("") */
	ck_assert_int_eq(lk_key(c, "test", "-", "", a, sizeof(a)), 0);
	ck_assert_str_eq(a, "stripe-milter:v1:sum1:test:-:"
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	cache_free(c);
}
END_TEST

/* sha256sum(1) of the lowercased address, computed outside this program. */
static void sha256sum_of(const char *text, char out[65])
{
	char cmd[512], line[128];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | sha256sum", text);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), p));
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_msg(strlen(line) > 64 && line[64] == ' ', "sha256sum said: %s", line);
	memcpy(out, line, 64);
	out[64] = '\0';
}

START_TEST(key_is_sha256sum_of_lowercased_address)
{
	static const struct { const char *addr, *lower; } cases[] = {
		{ "AbC@Example.org", "abc@example.org" },
		{ "Jenny.Rosen+Billing@EXAMPLE.COM", "jenny.rosen+billing@example.com" },
		{ "x@y", "x@y" },
	};
	struct cache *c = new_cache(NULL, false, 0);
	char a[CACHE_KEY_MAX], hex[65], want[CACHE_KEY_MAX];
	size_t i;

	if (system("command -v sha256sum >/dev/null 2>&1") != 0) {
		cache_free(c);
		ck_abort_msg("sha256sum (coreutils) is missing");
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(lk_key(c, "live", "acct_9", cases[i].addr, a, sizeof(a)), 0);
		sha256sum_of(cases[i].lower, hex);
		snprintf(want, sizeof(want), "stripe-milter:v1:sum1:live:acct_9:%s", hex);
		ck_assert_str_eq(a, want);
	}
	cache_free(c);
}
END_TEST

/* ---- summary round trip ---- */

static void full_summary(struct stripe_summary *s)
{
	int i;

	memset(s, 0, sizeof(*s));
	s->found = true;
	s->livemode = true;
	s->fetched_at = 1764000000;
	s->parts_missing = STRIPE_PART_PLAN_NAMES | STRIPE_PART_CHARGES;
	s->parts_refused = STRIPE_PART_INVOICES | STRIPE_PART_GUEST;
	s->matches = 3;
	sm_strlcpy(s->customer_id, "cus_NffrFeUfNV2Hib", sizeof(s->customer_id));
	sm_strlcpy(s->email, "Jenny.Rosen@example.com", sizeof(s->email));
	sm_strlcpy(s->name, "Jenny \"J\" Rosen \xc3\xa9\xe2\x82\xac \\ / end", sizeof(s->name));
	s->created = 1709251200;
	s->delinquent = true;
	s->balance.amount = -12345;
	sm_strlcpy(s->balance.currency, "kwd", sizeof(s->balance.currency));
	s->nmeta = STRIPE_META_MAX;
	for (i = 0; i < STRIPE_META_MAX; i++) {
		snprintf(s->meta[i].key, sizeof(s->meta[i].key), "key_%d_%s", i, "0123456789012345678901234567890");
		memset(s->meta[i].value, 'v', sizeof(s->meta[i].value) - 1);
	}
	s->subs_total = 17;
	for (i = 0; i < STRIPE_SUB__COUNT; i++)
		s->subs_by_status[i] = i * 3;
	s->nsubs = STRIPE_SUBS_MAX;
	for (i = 0; i < STRIPE_SUBS_MAX; i++) {
		struct stripe_subscription *u = &s->subs[i];

		snprintf(u->id, sizeof(u->id), "sub_%d", i);
		u->status = (enum stripe_sub_status)(STRIPE_SUB_ACTIVE - i * 2);
		u->cancel_at_period_end = i & 1;
		u->cancel_at = 1800000000 + i;
		u->trial_end = 1790000000 + i;
		u->period_end = INT64_MAX - i;
		u->created = INT64_MIN + i;
		u->item_count = 2 + i;
		snprintf(u->price_id, sizeof(u->price_id), "price_%d", i);
		snprintf(u->product_id, sizeof(u->product_id), "prod_%d", i);
		snprintf(u->plan, sizeof(u->plan), "Plan \xe6\x97\xa5\xe6\x9c\xac %d", i);
		u->unit_amount.amount = 4900 + i;
		sm_strlcpy(u->unit_amount.currency, "jpy", sizeof(u->unit_amount.currency));
		u->quantity = 7;
		sm_strlcpy(u->interval, i ? "year" : "month", sizeof(u->interval));
		u->interval_count = 1 + i;
	}
	s->subs[3].status = STRIPE_SUB_NONE;
	s->charges.window_days = 90;
	s->charges.count = 100;
	s->charges.truncated = true;
	s->charges.succeeded = 50;
	s->charges.failed = 20;
	s->charges.pending = 10;
	s->charges.refunded = 5;
	s->charges.partially_refunded = 4;
	s->charges.disputed = 3;
	s->charges.ntotals = STRIPE_TOTALS_MAX;
	for (i = 0; i < STRIPE_TOTALS_MAX; i++) {
		s->charges.totals[i].amount = -1000 * i;
		snprintf(s->charges.totals[i].currency, sizeof(s->charges.totals[i].currency), "c%02d", i);
	}
	s->charges.has_last = true;
	s->charges.last_created = 1763000000;
	sm_strlcpy(s->charges.last_status, "failed", sizeof(s->charges.last_status));
	s->charges.last_amount.amount = 9999;
	sm_strlcpy(s->charges.last_amount.currency, "bhd", sizeof(s->charges.last_amount.currency));
	sm_strlcpy(s->charges.last_failure_code, "card_declined", sizeof(s->charges.last_failure_code));
	/* issue #11 fields */
	s->found_by = STRIPE_BY_SEARCH;
	s->search_skipped = true;
	s->matches_capped = true;
	for (i = 0; i < STRIPE_SUBS_MAX; i++) {
		s->subs[i].amount_kind = (enum stripe_amount_kind)(i % STRIPE_AMOUNT__COUNT);
		snprintf(s->subs[i].amount_decimal, sizeof(s->subs[i].amount_decimal), "0.%d5", i);
	}
	s->invoices.checked = true;
	s->invoices.open = 3;
	s->invoices.past_due = 2;
	s->invoices.ndue = 2;
	s->invoices.due[0].amount = 4900;
	sm_strlcpy(s->invoices.due[0].currency, "usd", sizeof(s->invoices.due[0].currency));
	s->invoices.due[1].amount = 500;
	sm_strlcpy(s->invoices.due[1].currency, "ugx", sizeof(s->invoices.due[1].currency));
	sm_strlcpy(s->invoices.id, "in-custom-1", sizeof(s->invoices.id));
	s->invoices.amount_remaining = s->invoices.due[0];
	s->invoices.attempts = 3;
	s->invoices.next_attempt = 1764633600;
	s->invoices.due_date = 1764000000;
	s->invoices.created = 1763000000;
	sm_strlcpy(s->invoices.url, "https://invoice.stripe.com/i/acct_1/test_x", sizeof(s->invoices.url));
	/* issue #18: a guest's checkout */
	s->checkout.window_days = 30;
	s->checkout.sessions = 12;
	s->checkout.paid = 11;
	s->checkout.subscriptions = 4;
	s->checkout.truncated = true;
	s->checkout.ntotals = STRIPE_TOTALS_MAX;
	for (i = 0; i < STRIPE_TOTALS_MAX; i++) {
		s->checkout.totals[i].amount = 700 * i + 1;
		snprintf(s->checkout.totals[i].currency, sizeof(s->checkout.totals[i].currency), "k%02d", i);
	}
	s->checkout.has_last = true;
	s->checkout.last_created = 1764500000;
	sm_strlcpy(s->checkout.last_payment_status, "no_payment_required",
	    sizeof(s->checkout.last_payment_status));
	sm_strlcpy(s->checkout.last_mode, "subscription", sizeof(s->checkout.last_mode));
}

START_TEST(summary_round_trip_every_field)
{
	struct stripe_summary a, b;
	char *buf = NULL, err[128];
	size_t len;

	full_summary(&a);
	ck_assert_int_eq(lk_summary_encode(&a, &buf, &len), 0);
	ck_assert_uint_eq(len, strlen(buf));
	ck_assert_int_eq(lk_summary_decode(buf, len, &b, err, sizeof(err)), 0);
	ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);
	free(buf);
	/* The empty (not found) summary too. */
	memset(&a, 0, sizeof(a));
	ck_assert_int_eq(lk_summary_encode(&a, &buf, &len), 0);
	ck_assert_int_eq(lk_summary_decode(buf, len, &b, err, sizeof(err)), 0);
	ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);
	free(buf);
}
END_TEST

/* What the fuzzer found (CI, fuzz_lk_summary and fuzz_cache_entry): entries decode accepts
 * that did not encode back to themselves. A checkout part with a zero window but other
 * fields set was dropped by encode; a negative "ref" (read as int32) was written back as an
 * unsigned 2^32-1, which decode then refused as out of range. */
START_TEST(summary_round_trip_odd_entries)
{
	static const char *odd[] = {
		"{\"v\":1,\"co\":{\"win\":0,\"n\":2}}",
		"{\"v\":1,\"co\":{\"lm\":\"setup\"}}",
		"{\"v\":1,\"ref\":-1}",
		"{\"v\":1,\"ref\":-2147483648,\"miss\":-1}",
	};
	struct stripe_summary a, b;
	char *buf = NULL, err[128];
	size_t i, len;

	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		ck_assert_msg(lk_summary_decode(odd[i], strlen(odd[i]), &a, err, sizeof(err)) == 0,
		    "refused %s: %s", odd[i], err);
		ck_assert_int_eq(lk_summary_encode(&a, &buf, &len), 0);
		ck_assert_msg(lk_summary_decode(buf, len, &b, err, sizeof(err)) == 0,
		    "%s encoded as %s, which decode refused: %s", odd[i], buf, err);
		ck_assert_msg(memcmp(&a, &b, sizeof(a)) == 0, "%s encoded as %s", odd[i], buf);
		free(buf);
	}
}
END_TEST

START_TEST(summary_rejects_unknown_version_and_garbage)
{
	struct stripe_summary b;
	char err[128];
	static const char *bad[] = {
		"{\"v\":2,\"found\":true}", "{\"v\":0}", "{\"found\":true}", "{\"v\":\"1\"}",
		"[1]", "", "{\"v\":1,\"found\":\"yes\"}", "{\"v\":1,\"subs\":[1]}",
		"{\"v\":1,\"bal\":[1]}", "{\"v\":1,\"m\":99999999999}", "{\"v\":1,\"meta\":[[1,2]]}",
		"{\"v\":1,\"ch\":{\"tot\":[[\"x\",1]]}}", "{\"v\":1,\"co\":{\"tot\":[[\"x\",1]]}}",
		"{\"v\":1,\"co\":[]}", "{\"v\":1,\"co\":{\"n\":\"2\"}}",
	};
	size_t i;

	ck_assert_int_eq(lk_summary_decode("{\"v\":2}", 7, &b, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "unknown summary version 2");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&b, 0x55, sizeof(b));
		ck_assert_msg(lk_summary_decode(bad[i], strlen(bad[i]), &b, err, sizeof(err)) == -1,
		    "accepted %s", bad[i]);
		ck_assert(!b.found);
	}
	ck_assert_int_eq(lk_summary_decode(NULL, 0, &b, err, sizeof(err)), -1);
	/* Missing fields read as zero; a too-long name is cut at a UTF-8 boundary. */
	{
		struct sm_buf s;
		int k;

		sm_buf_init(&s, 1 << 16);
		sm_buf_printf(&s, "{\"v\":1,\"found\":true,\"name\":\"");
		for (k = 0; k < 200; k++)
			sm_buf_append(&s, "\xc3\xa9", 2);
		sm_buf_printf(&s, "\"}");
		ck_assert_int_eq(lk_summary_decode(s.data, s.len, &b, err, sizeof(err)), 0);
		ck_assert(b.found);
		ck_assert_uint_eq(strlen(b.name), 254);
		ck_assert_int_eq(b.matches, 0);
		sm_buf_free(&s);
	}
}
END_TEST

START_TEST(summary_encode_rejects_bad_utf8)
{
	struct stripe_summary a;
	char *buf = NULL;
	size_t len = 99;

	memset(&a, 0, sizeof(a));
	sm_strlcpy(a.name, "bad \xff utf8", sizeof(a.name));
	ck_assert_int_eq(lk_summary_encode(&a, &buf, &len), -1);
	ck_assert_ptr_null(buf);
	ck_assert_uint_eq(len, 0);
}
END_TEST

/* ---- plan names ---- */

/* Checked setup: Redis runs (a case that paused it and failed must not stall the next). */
static void redis_running(void)
{
	if (have_redis)
		th_redis_resume(&R);
}

START_TEST(product_names_round_trip_and_deadline)
{
	struct cache *c;
	char name[STRIPE_TEXT_MAX], out[64];
	int64_t t0;

	if (!have_redis)
		ck_abort_msg("redis-server did not start");
	/* a command timeout far above the deadline: the deadline must be what stops the read */
	c = new_cache("pn", true, 5000);
	lk_product_put(c, "prod_1", "Pro \xe2\x82\xac");
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "EXISTS %s", "pn:v1:product:prod_1"), 0);
	ck_assert_str_eq(out, "1");
	ck_assert_int_eq(lk_product_get(c, "prod_1", sm_now_ms() + 2000, name, sizeof(name)), 0);
	ck_assert_str_eq(name, "Pro \xe2\x82\xac");
	ck_assert_int_eq(lk_product_get(c, "prod_2", sm_now_ms() + 2000, name, sizeof(name)), -1);
	ck_assert_int_eq(lk_product_get(c, "has space", sm_now_ms() + 2000, name, sizeof(name)), -1);
	/* a deadline already past: no Redis call at all */
	ck_assert_int_eq(lk_product_get(c, "prod_1", sm_now_ms() - 1, name, sizeof(name)), -1);
	cache_free(c);
	/* Redis stalls (stopped until resumed: it never answers in between); a lookup with
	 * 300 ms left gets no name. The bounds are generous (a loaded machine): the 5 s
	 * command timeout is what they tell the deadline from. */
	c = new_cache("pn", true, 5000);
	ck_assert_int_eq(th_redis_pause(&R), 0);
	t0 = sm_now_ms();
	ck_assert_int_eq(lk_product_get(c, "prod_1", sm_now_ms() + 300, name, sizeof(name)), -1);
	ck_assert_msg(sm_now_ms() - t0 < 2500, "held %lld ms by a stalled Redis",
	    (long long)(sm_now_ms() - t0));
	/* a lookup with 10 s left still waits at most 500 ms for a plan name (a fresh pool:
	 * the first one backs off after its failure and would not even try) */
	cache_free(c);
	c = new_cache("pn", true, 5000);
	t0 = sm_now_ms();
	ck_assert_int_eq(lk_product_get(c, "prod_1", sm_now_ms() + 10000, name, sizeof(name)), -1);
	ck_assert_msg(sm_now_ms() - t0 < 2500, "held %lld ms by a stalled Redis",
	    (long long)(sm_now_ms() - t0));
	th_redis_resume(&R);
	cache_free(c);
}
END_TEST

/* ---- sharing across services ---- */

static void lk_cfg(struct lk_config *lc)
{
	memset(lc, 0, sizeof(*lc));
	lc->stripe.api_key = "sk_test_lookupshare";
	lc->stripe.base_url = "http://127.0.0.1:9";
	lc->cache.prefix = "share";
	lc->mode = "test";
	lc->stripe_timeout_ms = 1000;
}

static struct lk *svc(const struct lk_config *lc, const struct lk *prev)
{
	char err[256] = "";
	struct lk *lk = lk_new(lc, prev, err, sizeof(err));

	ck_assert_msg(lk != NULL, "lk_new: %s", err);
	return lk;
}

START_TEST(reuse_only_what_did_not_change)
{
	struct lk_config lc;
	struct lk *a, *b, *p, *g, *k, *t;
	static const char *meta1[] = { "tier" }, *meta2[] = { "plan" };

	lk_cfg(&lc);
	a = svc(&lc, NULL);
	b = svc(&lc, a);		/* nothing changed: both parts kept */
	ck_assert_ptr_eq(lk_stripe(b), lk_stripe(a));
	ck_assert_ptr_eq(lk_cache(b), lk_cache(a));
	lc.stripe.no_plan_names = true;	/* HeaderPrivacy yes */
	p = svc(&lc, b);
	ck_assert_ptr_ne(lk_stripe(p), lk_stripe(b));
	ck_assert_ptr_eq(lk_cache(p), lk_cache(b));
	lc.stripe.no_charges = true;	/* HeaderGroups without charges */
	g = svc(&lc, p);
	ck_assert_ptr_ne(lk_stripe(g), lk_stripe(p));
	lc.stripe.metadata_keys = meta1;
	lc.stripe.nmetadata_keys = 1;
	k = svc(&lc, g);
	ck_assert_ptr_ne(lk_stripe(k), lk_stripe(g));
	lc.stripe.metadata_keys = meta2;
	t = svc(&lc, k);
	ck_assert_ptr_ne(lk_stripe(t), lk_stripe(k));
	lk_put(g);
	g = svc(&lc, t);
	ck_assert_ptr_eq(lk_stripe(g), lk_stripe(t));
	/* a cache change rebuilds the caches and the client (which holds the plan-name cache) */
	lc.cache.ttl_positive_s = 77;
	lk_put(k);
	k = svc(&lc, g);
	ck_assert_ptr_ne(lk_cache(k), lk_cache(g));
	ck_assert_ptr_ne(lk_stripe(k), lk_stripe(g));
	/* the key is part of the client's settings */
	lc.stripe.api_key = "sk_test_other";
	lk_put(t);
	t = svc(&lc, k);
	ck_assert_ptr_ne(lk_stripe(t), lk_stripe(k));
	ck_assert_ptr_eq(lk_cache(t), lk_cache(k));
	/* released in any order: each part lives while a service holds it */
	lk_put(a);
	lk_put(p);
	lk_put(b);
	lk_put(k);
	lk_put(g);
	lk_put(t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lookup");
	TCase *tc = tcase_create("lookup");
	int rc;

	have_redis = th_redis_start(&R, 0, NULL) == 0;
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, redis_running, NULL);
	tcase_add_test(tc, key_format_and_lowercasing);
	tcase_add_test(tc, key_hash_is_sha256_known_vector);
	tcase_add_test(tc, key_is_sha256sum_of_lowercased_address);
	tcase_add_test(tc, summary_round_trip_every_field);
	tcase_add_test(tc, summary_round_trip_odd_entries);
	tcase_add_test(tc, summary_rejects_unknown_version_and_garbage);
	tcase_add_test(tc, summary_encode_rejects_bad_utf8);
	tcase_add_test(tc, product_names_round_trip_and_deadline);
	tcase_add_test(tc, reuse_only_what_did_not_change);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	if (have_redis)
		th_redis_stop(&R);
	return rc;
}
