/*
 * test_stripe_lookup.c - stripe_lookup() against the Stripe stand-in
 * (tests/standin/stripe_standin.py): data shapes, customer choice, every error class and
 * retry rule (counting the requests the stand-in served), deadlines, restricted keys,
 * hostile data, the token bucket, concurrency, product-name cache hooks.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stripe/stripe_int.h"
#include "tests/harness/th.h"

static struct th_standin S;
static char *S_key;	/* sk_test key used unless a test says otherwise */

static void cfg_default(struct stripe_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->api_key = S_key;
	cfg->base_url = S.base_url;
	cfg->max_retries = -1;
	cfg->retry_base_ms = 20;	/* fast tests; the rule itself is unit-tested */
	cfg->retry_max_ms = 100;
	cfg->rate_limit = 1000;
}

static struct stripe_client *client(const struct stripe_config *cfg)
{
	char err[256];
	struct stripe_client *c = stripe_client_new(cfg, err, sizeof(err));

	ck_assert_msg(c != NULL, "stripe_client_new: %s", err);
	return c;
}

/* Loads state, clears faults and counters. */
static void given(const char *state)
{
	ck_assert_int_eq(th_standin_state(&S, state), 0);
	ck_assert_int_eq(th_standin_faults(&S, "{}"), 0);
	th_standin_reset_counts(&S);
}

static void faults(const char *json)
{
	ck_assert_int_eq(th_standin_faults(&S, json), 0);
}

static enum stripe_errclass lookup_ms(struct stripe_client *c, const char *email, int ms,
    struct stripe_summary *s, struct stripe_result *r)
{
	return stripe_lookup(c, email, sm_now_ms() + ms, s, r);
}

static long served(const char *ep)
{
	return th_standin_count(&S, ep);
}

#define BASIC_STATE \
	"{\"products\":[{\"id\":\"prod_pro\",\"name\":\"Pro\"}]," \
	"\"customers\":[{\"id\":\"cus_jenny\",\"email\":\"jenny@example.com\",\"name\":\"Jenny Rosen\"," \
	"\"created\":1709251200,\"delinquent\":true,\"balance\":-500,\"currency\":\"usd\"," \
	"\"metadata\":{\"tier\":\"gold\",\"secret\":\"no\"}," \
	"\"subscriptions\":[{\"id\":\"sub_pro\",\"status\":\"active\",\"cancel_at_period_end\":true," \
	"\"items\":[{\"price\":{\"id\":\"price_pro\",\"unit_amount\":4900,\"currency\":\"usd\"," \
	"\"nickname\":\"Pro monthly\",\"product\":\"prod_pro\",\"recurring\":{\"interval\":\"month\"," \
	"\"interval_count\":1}},\"quantity\":2}]}]," \
	"\"charges\":[{\"id\":\"ch_ok\",\"amount\":4900,\"currency\":\"usd\",\"status\":\"succeeded\"}," \
	"{\"id\":\"ch_fail\",\"amount\":4900,\"currency\":\"usd\",\"status\":\"failed\"}]}]}"

START_TEST(found_with_every_part)
{
	static const char *const mk[] = { "tier", "absent" };
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	char *log = NULL;

	given(BASIC_STATE);
	cfg_default(&cfg);
	cfg.metadata_keys = mk;
	cfg.nmetadata_keys = 2;
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert_str_eq(s.customer_id, "cus_jenny");
	ck_assert_str_eq(s.name, "Jenny Rosen");
	ck_assert_str_eq(s.email, "jenny@example.com");
	ck_assert_int_eq(s.created, 1709251200);
	ck_assert(s.delinquent);
	ck_assert(!s.livemode);
	ck_assert_int_eq(s.balance.amount, -500);
	ck_assert_str_eq(s.balance.currency, "usd");
	ck_assert_int_eq(s.matches, 1);
	ck_assert_int_eq(s.nmeta, 1);
	ck_assert_str_eq(s.meta[0].key, "tier");
	ck_assert_str_eq(s.meta[0].value, "gold");
	ck_assert_uint_eq(s.parts_missing, 0);
	ck_assert_int_eq(s.nsubs, 1);
	ck_assert_int_eq(s.subs_total, 1);
	ck_assert_str_eq(s.subs[0].id, "sub_pro");
	ck_assert_int_eq(s.subs[0].status, STRIPE_SUB_ACTIVE);
	ck_assert_str_eq(s.subs[0].plan, "Pro");
	ck_assert_str_eq(s.subs[0].product_id, "prod_pro");
	ck_assert_int_eq(s.subs[0].unit_amount.amount, 4900);
	ck_assert_int_eq(s.subs[0].quantity, 2);
	ck_assert_str_eq(s.subs[0].interval, "month");
	ck_assert(s.subs[0].cancel_at_period_end);
	ck_assert_int_gt(s.subs[0].period_end, time(NULL));	/* on the item (basil) */
	ck_assert_int_eq(s.charges.count, 2);
	ck_assert_int_eq(s.charges.succeeded, 1);
	ck_assert_int_eq(s.charges.failed, 1);
	ck_assert_int_eq(s.charges.window_days, 90);
	ck_assert_int_eq(s.charges.totals[0].amount, 4900);
	ck_assert_int_ge(s.fetched_at, time(NULL) - 5);
	/* customers (subscriptions expanded), then products, charges and (delinquent) open
	 * invoices at once */
	ck_assert_int_eq(r.requests, 4);
	ck_assert_int_eq(served("customers"), 1);
	ck_assert_int_eq(served("subscriptions"), 0);
	ck_assert_int_eq(served("products"), 1);
	ck_assert_int_eq(served("charges"), 1);
	ck_assert_int_eq(served("invoices"), 1);
	ck_assert(s.invoices.checked);
	ck_assert_int_eq(s.invoices.open, 0);
	ck_assert_int_eq(s.found_by, STRIPE_BY_EMAIL);
	ck_assert_int_eq(strncmp(r.request_id, "req_", 4), 0);
	/* What went over the wire: pinned version, product UA, bearer auth, status=all. */
	ck_assert_int_eq(th_standin_call(&S, "GET", "/_standin/requests", NULL, &log), 200);
	ck_assert_ptr_nonnull(strstr(log, STRIPE_API_VERSION_DEFAULT));
	ck_assert_ptr_nonnull(strstr(log, "stripe-milter/" PACKAGE_VERSION));
	ck_assert_ptr_nonnull(strstr(log, "Bearer sk_test_"));
	ck_assert_ptr_nonnull(strstr(log, "expand[]=data.subscriptions"));
	ck_assert_ptr_nonnull(strstr(log, "status=open"));
	ck_assert_ptr_nonnull(strstr(log, "created[gte]="));
	ck_assert_ptr_null(strstr(log, "Stripe-Account"));
	free(log);
	stripe_client_free(c);
}
END_TEST

START_TEST(not_found_is_not_an_error)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;

	given(BASIC_STATE);
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "nobody@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert(!s.found);
	ck_assert_int_eq(s.found_by, STRIPE_BY_NONE);
	/* the exact list, then customer search and the guest's checkout sessions at once;
	 * nothing Stripe refuses (no search on a field Stripe does not have) */
	ck_assert_int_eq(r.requests, 3);
	ck_assert_int_eq(served("*"), 3);
	ck_assert_int_eq(served("customers_search"), 1);
	ck_assert_int_eq(served("checkout_sessions"), 1);
	ck_assert_int_eq(served("charges_search"), 0);
	stripe_client_free(c);
	/* Without the search fallback: the exact list and the guest's sessions. */
	cfg.no_search = true;
	c = client(&cfg);
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "nobody@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(r.requests, 2);
	ck_assert_int_eq(served("customers_search"), 0);
	stripe_client_free(c);
	/* Without either: one request. */
	cfg.no_guest = true;
	c = client(&cfg);
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "nobody@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(r.requests, 1);
	stripe_client_free(c);
}
END_TEST

START_TEST(case_variants)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;

	given("{\"customers\":[{\"id\":\"cus_lower\",\"email\":\"jenny@example.com\",\"created\":100}]}");
	cfg_default(&cfg);
	c = client(&cfg);
	/* Stripe's filter is exact: only the lowercased variant finds her. */
	ck_assert_int_eq(lookup_ms(c, "Jenny@Example.COM", 3000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert_str_eq(s.customer_id, "cus_lower");
	ck_assert_int_eq(s.matches, 1);
	ck_assert_int_eq(served("customers"), 2);
	/* Both spellings exist: both count, the newest wins. */
	given("{\"customers\":[{\"id\":\"cus_lower\",\"email\":\"jenny@example.com\",\"created\":100},"
	    "{\"id\":\"cus_mixed\",\"email\":\"Jenny@Example.COM\",\"created\":200}]}");
	ck_assert_int_eq(lookup_ms(c, "Jenny@Example.COM", 3000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.matches, 2);
	ck_assert_str_eq(s.customer_id, "cus_mixed");
	/* An all-lowercase address is asked for once. */
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(served("customers"), 1);
	ck_assert_int_eq(s.matches, 1);
	stripe_client_free(c);
}
END_TEST

START_TEST(several_customers_choose_by_subscription)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;

	given("{\"customers\":["
	    "{\"id\":\"cus_old_active\",\"email\":\"x@example.com\",\"created\":100,"
	    "\"subscriptions\":[{\"status\":\"active\"}]},"
	    "{\"id\":\"cus_mid_pastdue\",\"email\":\"x@example.com\",\"created\":200,"
	    "\"subscriptions\":[{\"status\":\"past_due\"}]},"
	    "{\"id\":\"cus_newest\",\"email\":\"x@example.com\",\"created\":300,"
	    "\"subscriptions\":[{\"status\":\"canceled\"}]}]}");
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "x@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_str_eq(s.customer_id, "cus_old_active");
	ck_assert_int_eq(s.matches, 3);
	ck_assert_int_eq(s.subs[0].status, STRIPE_SUB_ACTIVE);
	/* The customer list brought every candidate's subscriptions: none asked for. */
	ck_assert_int_eq(served("subscriptions"), 0);
	ck_assert_int_eq(served("customers"), 1);
	ck_assert_int_eq(served("charges"), 1);
	/* Without a live subscription anywhere: past_due, then the newest. */
	given("{\"customers\":["
	    "{\"id\":\"cus_a\",\"email\":\"x@example.com\",\"created\":100,\"subscriptions\":[{\"status\":\"past_due\"}]},"
	    "{\"id\":\"cus_b\",\"email\":\"x@example.com\",\"created\":300}]}");
	ck_assert_int_eq(lookup_ms(c, "x@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_str_eq(s.customer_id, "cus_a");
	given("{\"customers\":["
	    "{\"id\":\"cus_a\",\"email\":\"x@example.com\",\"created\":100,\"subscriptions\":[{\"status\":\"unpaid\"}]},"
	    "{\"id\":\"cus_b\",\"email\":\"x@example.com\",\"created\":300}]}");
	ck_assert_int_eq(lookup_ms(c, "x@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_str_eq(s.customer_id, "cus_b");
	ck_assert_int_eq(s.matches, 2);
	stripe_client_free(c);
}
END_TEST

START_TEST(zero_and_three_decimal_currencies)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	char buf[64];

	given("{\"products\":[{\"id\":\"prod_k\",\"name\":\"Kuwait plan\"}],"
	    "\"customers\":[{\"id\":\"cus_jp\",\"email\":\"jp@example.com\",\"balance\":1200,\"currency\":\"jpy\","
	    "\"subscriptions\":[{\"status\":\"active\",\"items\":[{\"price\":{\"unit_amount\":1500,"
	    "\"currency\":\"kwd\",\"product\":\"prod_k\",\"recurring\":{\"interval\":\"year\",\"interval_count\":1}}}]}],"
	    "\"charges\":[{\"amount\":1200,\"currency\":\"jpy\"},{\"amount\":800,\"currency\":\"jpy\"},"
	    "{\"amount\":1001,\"currency\":\"bhd\"}]}]}");
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "jp@example.com", 3000, &s, &r), STRIPE_OK);
	stripe_money_format(s.balance.amount, s.balance.currency, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1200 JPY");
	stripe_money_format(s.subs[0].unit_amount.amount, s.subs[0].unit_amount.currency, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1.500 KWD");
	ck_assert_str_eq(s.subs[0].plan, "Kuwait plan");
	ck_assert_int_eq(s.charges.ntotals, 2);
	/* Totals come in the order the currencies were first seen (newest charge first). */
	ck_assert_str_eq(s.charges.totals[0].currency, "bhd");
	stripe_money_format(s.charges.totals[0].amount, s.charges.totals[0].currency, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1.001 BHD");
	ck_assert_str_eq(s.charges.totals[1].currency, "jpy");
	ck_assert_int_eq(s.charges.totals[1].amount, 2000);
	stripe_client_free(c);
}
END_TEST

START_TEST(subscriptions_in_every_status)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;

	given("{\"customers\":[{\"id\":\"cus_s\",\"email\":\"s@example.com\",\"subscriptions\":["
	    "{\"status\":\"canceled\"},{\"status\":\"incomplete_expired\"},{\"status\":\"paused\"},"
	    "{\"status\":\"incomplete\"},{\"status\":\"unpaid\"},{\"status\":\"past_due\"},"
	    "{\"status\":\"trialing\"},{\"status\":\"active\"}]}]}");
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "s@example.com", 3000, &s, &r), STRIPE_OK);
	/* the current ones, from the customer list (Stripe leaves canceled ones out) */
	ck_assert_int_eq(s.subs_total, 7);
	ck_assert_int_eq(served("subscriptions"), 0);
	ck_assert_int_eq(s.nsubs, STRIPE_SUBS_MAX);
	ck_assert_int_eq(s.subs[0].status, STRIPE_SUB_ACTIVE);
	ck_assert_int_eq(s.subs[1].status, STRIPE_SUB_TRIALING);
	ck_assert_int_gt(s.subs[1].trial_end, 0);
	ck_assert_int_eq(s.subs[2].status, STRIPE_SUB_PAST_DUE);
	ck_assert_int_eq(s.subs[3].status, STRIPE_SUB_UNPAID);
	ck_assert_int_eq(s.subs_by_status[STRIPE_SUB_CANCELED], 0);
	ck_assert_int_eq(s.subs_by_status[STRIPE_SUB_INCOMPLETE_EXPIRED], 1);
	ck_assert_int_eq(s.subs_by_status[STRIPE_SUB_PAUSED], 1);
	ck_assert_int_eq(s.subs_by_status[STRIPE_SUB_INCOMPLETE], 1);
	ck_assert_int_eq(s.subs_by_status[STRIPE_SUB_ACTIVE], 1);
	/* Only canceled ones: the full list (status=all) is read to say so. */
	given("{\"customers\":[{\"id\":\"cus_s\",\"email\":\"s@example.com\",\"subscriptions\":["
	    "{\"status\":\"canceled\"},{\"status\":\"canceled\"}]}]}");
	ck_assert_int_eq(lookup_ms(c, "s@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(served("subscriptions"), 1);
	ck_assert_int_eq(s.subs_total, 2);
	ck_assert_int_eq(s.subs[0].status, STRIPE_SUB_CANCELED);
	/* A pre-basil subscription keeps its period on the subscription. */
	given("{\"customers\":[{\"id\":\"cus_s\",\"email\":\"s@example.com\",\"subscriptions\":["
	    "{\"status\":\"active\",\"current_period_end\":1900000000}]}]}");
	ck_assert_int_eq(lookup_ms(c, "s@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.subs[0].period_end, 1900000000);
	stripe_client_free(c);
}
END_TEST

START_TEST(charges_of_every_kind_in_the_window)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	char state[2048];
	long now = (long)time(NULL);

	snprintf(state, sizeof(state), "{\"customers\":[{\"id\":\"cus_c\",\"email\":\"c@example.com\",\"charges\":["
	    "{\"amount\":1000,\"status\":\"succeeded\",\"created\":%ld},"
	    "{\"amount\":2000,\"status\":\"failed\",\"created\":%ld},"
	    "{\"amount\":300,\"status\":\"pending\",\"created\":%ld},"
	    "{\"amount\":500,\"refunded\":true,\"created\":%ld},"
	    "{\"amount\":800,\"amount_refunded\":300,\"disputed\":true,\"created\":%ld},"
	    "{\"amount\":9999,\"created\":%ld}]}]}",
	    now - 500, now - 100, now - 600, now - 700, now - 800, now - 91L * 86400);
	given(state);
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "c@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.charges.count, 5);	/* the 91-day-old one is outside */
	ck_assert_int_eq(s.charges.succeeded, 3);
	ck_assert_int_eq(s.charges.failed, 1);
	ck_assert_int_eq(s.charges.pending, 1);
	ck_assert_int_eq(s.charges.refunded, 1);
	ck_assert_int_eq(s.charges.partially_refunded, 1);
	ck_assert_int_eq(s.charges.disputed, 1);
	ck_assert_int_eq(s.charges.totals[0].amount, 1000 + 0 + 500);
	ck_assert(s.charges.has_last);
	ck_assert_int_eq(s.charges.last_created, now - 100);
	ck_assert_str_eq(s.charges.last_status, "failed");
	ck_assert_str_eq(s.charges.last_failure_code, "card_declined");
	ck_assert(!s.charges.truncated);
	stripe_client_free(c);
	/* At most charges_max, paged. */
	cfg.charges_max = 3;
	c = client(&cfg);
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "c@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.charges.count, 3);
	ck_assert(s.charges.truncated);
	ck_assert_int_eq(served("charges"), 1);
	stripe_client_free(c);
	cfg.charges_max = 150;
	cfg.charges_window_days = 365;
	c = client(&cfg);
	{
		struct sm_buf b;
		int i;

		sm_buf_init(&b, 1 << 20);
		sm_buf_printf(&b, "{\"customers\":[{\"id\":\"cus_c\",\"email\":\"c@example.com\",\"charges\":[");
		for (i = 0; i < 120; i++)
			sm_buf_printf(&b, "%s{\"amount\":1}", i ? "," : "");
		sm_buf_printf(&b, "]}]}");
		given(b.data);
		sm_buf_free(&b);
	}
	ck_assert_int_eq(lookup_ms(c, "c@example.com", 5000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.charges.count, 120);
	ck_assert(!s.charges.truncated);
	ck_assert_int_eq(s.charges.window_days, 365);
	ck_assert_int_eq(served("charges"), 2);
	stripe_client_free(c);
}
END_TEST

/* One fault on customers, one lookup; returns the error and how many requests served. */
static enum stripe_errclass with_fault(struct stripe_config *cfg, const char *fault, long *n,
    struct stripe_result *r)
{
	struct stripe_client *c = client(cfg);
	struct stripe_summary s;
	enum stripe_errclass e;

	given(BASIC_STATE);
	faults(fault);
	e = lookup_ms(c, "jenny@example.com", 3000, &s, r);
	*n = served("customers");
	ck_assert_int_eq(r->requests, served("*"));
	if (e != STRIPE_OK)
		ck_assert(!s.found);
	stripe_client_free(c);
	return e;
}

START_TEST(error_classes_and_retry_rules)
{
	struct stripe_config cfg;
	struct stripe_result r;
	long n;

	cfg_default(&cfg);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":500}}", &n, &r), STRIPE_E_SERVER);
	ck_assert_int_eq(n, 3);	/* 1 + 2 retries */
	ck_assert_int_eq(r.http_status, 500);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":503,\"should_retry\":false}}", &n, &r), STRIPE_E_SERVER);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":409,\"times\":1}}", &n, &r), STRIPE_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":409}}", &n, &r), STRIPE_E_SERVER);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"reset\":true,\"times\":2}}", &n, &r), STRIPE_OK);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"reset\":true}}", &n, &r), STRIPE_E_NETWORK);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":429}}", &n, &r), STRIPE_E_RATELIMIT);
	ck_assert_int_eq(n, 1);	/* not retried by default */
	/* Stripe-Should-Retry: true is consulted first, also for a 429 (issue #11) */
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":429,\"should_retry\":true}}", &n, &r), STRIPE_E_RATELIMIT);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":429,\"should_retry\":true,\"times\":1}}", &n, &r), STRIPE_OK);
	ck_assert_int_eq(n, 2);
	/* a 429 lock_timeout is retried (stripe-go does) */
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":429,\"code\":\"lock_timeout\",\"times\":1}}", &n, &r), STRIPE_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":400,\"should_retry\":true}}", &n, &r), STRIPE_E_REQUEST);
	ck_assert_int_eq(n, 3);	/* Stripe-Should-Retry: true wins */
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":400}}", &n, &r), STRIPE_E_REQUEST);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":404}}", &n, &r), STRIPE_E_REQUEST);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":401}}", &n, &r), STRIPE_E_AUTH);
	ck_assert_int_eq(n, 1);
	/* Even if Stripe echoed the whole key, the result never carries it. */
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":401,\"message\":"
	    "\"Invalid API Key provided: sk_test_4eC39HqLyjWDarjtT1zdp7dc\"}}", &n, &r), STRIPE_E_AUTH);
	ck_assert_ptr_null(strstr(r.message, "4eC39HqLyjWDarjtT1zdp7dc"));
	ck_assert_ptr_nonnull(strstr(r.message, "Invalid API Key provided: sk_test_***"));
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"malformed\":true}}", &n, &r), STRIPE_E_MALFORMED);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"body\":\"[1,2,3]\"}}", &n, &r), STRIPE_E_MALFORMED);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"partial\":true}}", &n, &r), STRIPE_E_NETWORK);
	cfg.max_response_bytes = 256 * 1024;
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"huge_mb\":2}}", &n, &r), STRIPE_E_MALFORMED);
	ck_assert_int_eq(n, 1);
	cfg.max_response_bytes = 0;
	cfg.retry_rate_limited = true;
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":429}}", &n, &r), STRIPE_E_RATELIMIT);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":429,\"times\":1}}", &n, &r), STRIPE_OK);
	ck_assert_int_eq(n, 2);
	cfg.retry_rate_limited = false;
	cfg.max_retries = 0;
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":500}}", &n, &r), STRIPE_E_SERVER);
	ck_assert_int_eq(n, 1);
	cfg.max_retries = 4;
	ck_assert_int_eq(with_fault(&cfg, "{\"customers\":{\"status\":500}}", &n, &r), STRIPE_E_SERVER);
	ck_assert_int_eq(n, 5);
}
END_TEST

START_TEST(errors_on_later_calls_fail_the_lookup)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;

	cfg_default(&cfg);
	c = client(&cfg);
	given(BASIC_STATE);
	faults("{\"charges\":{\"status\":500}}");
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_E_SERVER);
	ck_assert(!s.found);
	ck_assert_int_eq(served("charges"), 3);
	ck_assert_int_eq(r.requests, served("*"));
	given(BASIC_STATE);
	faults("{\"products\":{\"malformed\":true}}");
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_E_MALFORMED);
	given(BASIC_STATE);
	faults("{\"invoices\":{\"status\":401}}");
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_E_AUTH);
	/* A 403 that names no rak_* permission is not a missing part: an error. */
	given(BASIC_STATE);
	faults("{\"charges\":{\"status\":403,\"message\":\"No access to this account.\"}}");
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_E_PERMISSION);
	ck_assert_str_eq(r.permission, "");
	ck_assert_str_eq(r.message, "No access to this account.");
	/* One that does (a fault rule this time, not a key) is. */
	given(BASIC_STATE);
	faults("{\"products\":{\"permission\":\"rak_product_read\"}}");
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_uint_eq(s.parts_missing, STRIPE_PART_PLAN_NAMES);
	stripe_client_free(c);
}
END_TEST

START_TEST(deadline_held_when_stripe_hangs)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	int64_t t0;

	cfg_default(&cfg);
	c = client(&cfg);
	/* Stripe hangs for 30 s (or answers after 30 s) and the lookup's deadline is 1 s: it
	 * answers long before Stripe would. The bound is generous (10x the deadline, a third of
	 * the hang), so load cannot break it while a lookup that waited for Stripe still fails. */
	given(BASIC_STATE);
	faults("{\"customers\":{\"hang\":true,\"hang_s\":30}}");
	t0 = sm_now_ms();
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 1000, &s, &r), STRIPE_E_TIMEOUT);
	ck_assert_int_lt(sm_now_ms() - t0, 10000);
	/* the first attempt stalls for half the time left, so a retry still fits */
	ck_assert_int_ge(r.requests, 2);
	/* a stalled first attempt, then an answer: the lookup succeeds in time */
	given(BASIC_STATE);
	faults("{\"customers\":{\"hang\":true,\"hang_s\":30,\"times\":1}}");
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert_int_eq(served("customers"), 2);
	/* A hang on one of the parallel calls. */
	given(BASIC_STATE);
	faults("{\"charges\":{\"hang\":true,\"hang_s\":30}}");
	t0 = sm_now_ms();
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 1000, &s, &r), STRIPE_E_TIMEOUT);
	ck_assert_int_lt(sm_now_ms() - t0, 10000);
	/* Slow but within the deadline: fine. */
	given(BASIC_STATE);
	faults("{\"*\":{\"latency_ms\":50}}");
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 10000, &s, &r), STRIPE_OK);
	/* Latency longer than the deadline on every attempt. */
	given(BASIC_STATE);
	faults("{\"customers\":{\"latency_ms\":30000}}");
	t0 = sm_now_ms();
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 1000, &s, &r), STRIPE_E_TIMEOUT);
	ck_assert_int_lt(sm_now_ms() - t0, 10000);
	/* A deadline already past makes no request. */
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", -1, &s, &r), STRIPE_E_TIMEOUT);
	ck_assert_int_eq(r.requests, 0);
	stripe_client_free(c);
	/* A backoff that would cross the deadline is not slept: no retry, the server error is
	 * answered before the deadline (a lookup that slept would reach it and say timeout). */
	cfg.retry_base_ms = 60000;
	cfg.retry_max_ms = 60000;
	c = client(&cfg);
	given(BASIC_STATE);
	faults("{\"customers\":{\"status\":500}}");
	t0 = sm_now_ms();
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 10000, &s, &r), STRIPE_E_SERVER);
	ck_assert_int_lt(sm_now_ms() - t0, 10000);
	ck_assert_int_eq(served("customers"), 1);
	stripe_client_free(c);
}
END_TEST

START_TEST(restricted_key_missing_each_permission)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	const char *keys = "\"keys\":{\"rk_test_nocust\":{\"missing\":[\"rak_customer_read\"]},"
	    "\"rk_test_nosub\":{\"missing\":[\"rak_subscription_read\"]},"
	    "\"rk_test_noprod\":{\"missing\":[\"rak_product_read\"]},"
	    "\"rk_test_nocharge\":{\"missing\":[\"rak_charge_read\"]},"
	    "\"sk_test_revoked\":{\"revoked\":true}}";
	char state[4096];

	snprintf(state, sizeof(state), "%.*s,%s}", (int)strlen(BASIC_STATE) - 1, BASIC_STATE, keys);
	cfg_default(&cfg);
	cfg.api_key = "rk_test_nocust";
	c = client(&cfg);
	given(state);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_E_PERMISSION);
	ck_assert_str_eq(r.permission, "rak_customer_read");
	ck_assert_int_eq(r.http_status, 403);
	ck_assert_ptr_null(strstr(r.message, "nocust"));
	ck_assert_int_eq(served("customers"), 1);	/* a 403 is not retried */
	stripe_client_free(c);

	cfg.api_key = "rk_test_nosub";
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert_uint_eq(s.parts_missing, STRIPE_PART_SUBSCRIPTIONS);
	ck_assert_int_eq(s.nsubs, 0);
	ck_assert_int_eq(s.charges.count, 2);
	stripe_client_free(c);

	cfg.api_key = "rk_test_noprod";
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_uint_eq(s.parts_missing, STRIPE_PART_PLAN_NAMES);
	ck_assert_str_eq(s.subs[0].plan, "Pro monthly");	/* the price's nickname instead */
	ck_assert_int_eq(s.charges.count, 2);
	stripe_client_free(c);

	cfg.api_key = "rk_test_nocharge";
	c = client(&cfg);
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_uint_eq(s.parts_missing, STRIPE_PART_CHARGES);
	ck_assert_int_eq(s.charges.count, 0);
	ck_assert_str_eq(s.subs[0].plan, "Pro");
	ck_assert_int_eq(served("charges"), 1);
	stripe_client_free(c);

	cfg.api_key = "sk_test_revoked";
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_E_AUTH);
	ck_assert_int_eq(r.http_status, 401);
	stripe_client_free(c);
}
END_TEST

START_TEST(check_permissions_table)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_perm p[STRIPE_PERMS];
	struct stripe_result r;
	int i;

	given("{\"keys\":{\"rk_test_two\":{\"missing\":[\"rak_charge_read\",\"rak_product_read\"]}}}");
	cfg_default(&cfg);
	cfg.api_key = "rk_test_two";
	c = client(&cfg);
	ck_assert_int_eq(stripe_check_permissions(c, sm_now_ms() + 3000, p, &r), 0);
	ck_assert_int_eq(r.requests, 7);
	for (i = 0; i < STRIPE_PERMS; i++) {
		ck_assert_int_eq(p[i].err, STRIPE_OK);
		ck_assert_str_eq(p[i].message, "");
		ck_assert_ptr_nonnull(p[i].permission);
		ck_assert_ptr_nonnull(p[i].dashboard);
	}
	ck_assert_uint_eq(p[0].part, STRIPE_PART_CUSTOMER);
	ck_assert(p[0].granted);
	ck_assert(p[1].granted);
	ck_assert_str_eq(p[2].permission, "rak_product_read");
	ck_assert(!p[2].granted);
	ck_assert_str_eq(p[3].permission, "rak_charge_read");
	ck_assert(!p[3].granted);
	ck_assert_str_eq(p[4].permission, "rak_invoice_read");
	ck_assert(p[4].granted);
	ck_assert_uint_eq(p[5].part, STRIPE_PART_GUEST);
	ck_assert_str_eq(p[5].permission, "rak_checkout_session_read");
	ck_assert_str_eq(p[5].dashboard, "Checkout Sessions: Read");
	ck_assert(p[5].granted);
	ck_assert_uint_eq(p[6].part, STRIPE_PERM_EVENTS);
	ck_assert_str_eq(p[6].permission, "rak_event_read");
	ck_assert(p[6].granted);
	/* A 403 that names no permission: Stripe's (sanitised) message, not "grant rak_*". */
	faults("{\"charges\":{\"status\":403,\"message\":\"The required permissions are not "
	    "available for use by restricted keys (key rk_test_secretsecret).\"}}");
	ck_assert_int_eq(stripe_check_permissions(c, sm_now_ms() + 3000, p, &r), -1);
	ck_assert_int_eq(r.err, STRIPE_E_PERMISSION);
	ck_assert_int_eq(p[3].err, STRIPE_E_PERMISSION);
	ck_assert(!p[3].granted);
	ck_assert_ptr_nonnull(strstr(p[3].message, "not available for use by restricted keys"));
	ck_assert_ptr_null(strstr(p[3].message, "secretsecret"));
	faults("{\"subscriptions\":{\"status\":500,\"should_retry\":false}}");
	ck_assert_int_eq(stripe_check_permissions(c, sm_now_ms() + 3000, p, &r), -1);
	ck_assert_int_eq(r.err, STRIPE_E_SERVER);
	ck_assert_int_eq(p[1].err, STRIPE_E_SERVER);
	ck_assert(!p[1].granted);
	stripe_client_free(c);
}
END_TEST

START_TEST(hostile_data_from_stripe)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	struct sm_buf b;
	int i;

	sm_buf_init(&b, 1 << 20);
	sm_buf_printf(&b, "{\"products\":[{\"id\":\"prod_h\",\"name\":\"Plan\\r\\nX-Stripe-Lookup: forged\"}],"
	    "\"customers\":[{\"id\":\"cus_h\",\"email\":\"h@example.com\",\"name\":\"J\\u00f6rg \\u65e5\\u672c\\u0000\\r\\nBcc: x\","
	    "\"description\":\"");
	for (i = 0; i < 20000; i++)
		sm_buf_printf(&b, "xxxxxxxxxx");
	sm_buf_printf(&b, "\",\"subscriptions\":[{\"status\":\"active\",\"items\":[{\"price\":{\"product\":\"prod_h\"}}]}]}]}");
	given(b.data);
	sm_buf_free(&b);
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "h@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_str_eq(s.name, "J\xc3\xb6rg \xe6\x97\xa5\xe6\x9c\xac   Bcc: x");
	ck_assert_str_eq(s.subs[0].plan, "Plan  X-Stripe-Lookup: forged");
	ck_assert_ptr_null(strpbrk(s.subs[0].plan, "\r\n"));
	stripe_client_free(c);
	/* An address with URL metacharacters reaches Stripe as one email value. */
	given("{\"customers\":[{\"id\":\"cus_amp\",\"email\":\"a&limit=1+b@example.com\"}]}");
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "a&limit=1+b@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert_str_eq(s.customer_id, "cus_amp");
	stripe_client_free(c);
}
END_TEST

START_TEST(token_bucket_caps_the_rate)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	int64_t t0;

	given(BASIC_STATE);
	cfg_default(&cfg);
	cfg.rate_limit = 0.5;
	cfg.rate_burst = 1;
	c = client(&cfg);
	t0 = sm_now_ms();
	ck_assert_int_eq(lookup_ms(c, "nobody@example.com", 10000, &s, &r), STRIPE_OK);
	/* The bucket is empty for 2 s: a 1 s deadline cannot wait for it, and says so at once
	 * (before its deadline: waiting for the token would pass it). */
	ck_assert_int_eq(lookup_ms(c, "nobody@example.com", 1000, &s, &r), STRIPE_E_RATELIMIT);
	ck_assert_int_eq(r.requests, 0);
	ck_assert_int_eq(served("customers"), 1);
	/* A longer deadline waits for the token: no earlier than 2 s after the first request
	 * (a lower bound: load only makes it later). */
	ck_assert_int_eq(lookup_ms(c, "nobody@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_ge(sm_now_ms() - t0, 1900);
	stripe_client_free(c);
}
END_TEST

START_TEST(fetches_run_concurrently)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;

	/* Proven by what the stand-in saw, not by a clock: each request below is held until the
	 * other is in flight too ("gather"), so a client that sent them one after the other would
	 * wait 30 s for a partner that never comes and miss its 10 s deadline. */
	cfg_default(&cfg);
	c = client(&cfg);
	/* Plan names and charges at once. */
	given(BASIC_STATE);
	faults("{\"products\":{\"gather\":2},\"charges\":{\"gather\":2}}");
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_ge(th_standin_max_in_flight(&S), 2);
	ck_assert_int_eq(s.charges.count, 2);
	ck_assert_str_eq(s.subs[0].plan, "Pro");
	/* Both email variants at once. */
	given(BASIC_STATE);
	faults("{\"customers\":{\"gather\":2}}");
	ck_assert_int_eq(lookup_ms(c, "Jenny@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_ge(th_standin_max_in_flight(&S), 2);
	ck_assert_int_eq(served("customers"), 2);
	stripe_client_free(c);
}
END_TEST

struct worker {
	struct stripe_client *c;
	int ok;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct stripe_summary s;
	struct stripe_result r;
	int i;

	for (i = 0; i < 3; i++)
		if (stripe_lookup(w->c, i % 2 ? "jenny@example.com" : "Jenny@example.com",
		    sm_now_ms() + 10000, &s, &r) == STRIPE_OK && s.found &&
		    strcmp(s.subs[0].plan, "Pro") == 0)
			w->ok++;
	return NULL;
}

START_TEST(many_threads_share_one_client)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_stats st;
	struct worker w[6];
	pthread_t t[6];
	uint64_t total = 0;
	int i;

	/* The first request is held until a second one is in flight (the stand-in's "gather"),
	 * so the requests overlap for sure; the stand-in's count of requests in flight at once
	 * (a lower bound of the client's) shows the cap held. No clock, no sampling. */
	given(BASIC_STATE);
	faults("{\"customers\":{\"gather\":2,\"times\":1},\"*\":{\"latency_ms\":10}}");
	cfg_default(&cfg);
	cfg.max_concurrent = 3;
	c = client(&cfg);
	for (i = 0; i < 6; i++) {
		w[i].c = c;
		w[i].ok = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].ok, 3);
	}
	/* The cap held, and requests did overlap. */
	ck_assert_int_le(th_standin_max_in_flight(&S), 3);
	ck_assert_int_ge(th_standin_max_in_flight(&S), 2);
	stripe_stats_get(c, &st);
	ck_assert_uint_eq(st.lookups, 18);
	ck_assert_uint_eq(st.inflight, 0);
	for (i = 0; i < STRIPE_OUT__COUNT; i++)
		total += st.requests[i];
	ck_assert_uint_eq(total, (uint64_t)served("*"));
	ck_assert_uint_eq(st.requests[STRIPE_OUT_OK], total);
	ck_assert_uint_gt(st.latency_hist[1] + st.latency_hist[2] + st.latency_hist[3] + st.latency_hist[4], 0);
	stripe_client_free(c);
}
END_TEST

struct pcache {
	int gets, puts;
	char last_put[64];
	int64_t deadline_ms;		/* the deadline the last get was given */
};

static int pc_get(void *arg, const char *id, int64_t deadline_ms, char *name, size_t len)
{
	struct pcache *p = arg;

	p->gets++;
	p->deadline_ms = deadline_ms;
	if (strcmp(id, "prod_pro") == 0 && p->puts > 0) {
		snprintf(name, len, "Cached Pro");
		return 0;
	}
	return -1;
}

static void pc_put(void *arg, const char *id, const char *name)
{
	struct pcache *p = arg;

	p->puts++;
	snprintf(p->last_put, sizeof(p->last_put), "%s=%s", id, name);
}

START_TEST(product_cache_hooks)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	struct pcache pc = { 0, 0, "", 0 };
	int64_t t0 = sm_now_ms();

	given(BASIC_STATE);
	cfg_default(&cfg);
	cfg.product_get = pc_get;
	cfg.product_put = pc_put;
	cfg.product_arg = &pc;
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_str_eq(s.subs[0].plan, "Pro");
	/* the hook is given the lookup's own deadline (3 s after the lookup started) */
	ck_assert(pc.deadline_ms >= t0 + 3000 && pc.deadline_ms <= sm_now_ms() + 3000);
	ck_assert_int_eq(pc.puts, 1);
	ck_assert_str_eq(pc.last_put, "prod_pro=Pro");
	ck_assert_int_eq(served("products"), 1);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_str_eq(s.subs[0].plan, "Cached Pro");
	ck_assert_int_eq(served("products"), 1);	/* not asked again */
	stripe_client_free(c);
}
END_TEST

START_TEST(parts_turned_off_and_connect_account)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	char state[4096], *log = NULL;

	snprintf(state, sizeof(state), "%.*s,\"connected_accounts\":[\"acct_good\"]}",
	    (int)strlen(BASIC_STATE) - 1, BASIC_STATE);
	given(state);
	cfg_default(&cfg);
	cfg.no_charges = true;
	cfg.no_plan_names = true;
	cfg.account = "acct_good";
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_str_eq(s.subs[0].plan, "Pro monthly");
	ck_assert_int_eq(s.charges.count, 0);
	ck_assert_uint_eq(s.parts_missing, 0);
	ck_assert_int_eq(served("charges"), 0);
	ck_assert_int_eq(served("products"), 0);
	ck_assert_int_eq(th_standin_call(&S, "GET", "/_standin/requests", NULL, &log), 200);
	ck_assert_ptr_nonnull(strstr(log, "acct_good"));
	free(log);
	stripe_client_free(c);
	cfg.account = "acct_other";
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_E_PERMISSION);
	stripe_client_free(c);
	cfg.account = NULL;
	cfg.no_subscriptions = true;
	cfg.no_charges = false;
	c = client(&cfg);
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 3000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.nsubs, 0);
	ck_assert_int_eq(s.charges.count, 2);
	ck_assert_int_eq(served("subscriptions"), 0);
	stripe_client_free(c);
}
END_TEST


/* ---- issue #11: real accounts ---- */

START_TEST(mixed_case_found_by_search)
{
	static const char *const casings[] = {
		"some.one@example.com", "Some.One@example.com", "SOME.ONE@example.com"
	};
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	char *log = NULL;
	size_t i;

	/* Stored as typed at checkout; a decoy shares the words "one@example.com". */
	given("{\"customers\":[{\"id\":\"cus_mixed\",\"email\":\"Some.One@Example.COM\",\"created\":100},"
	    "{\"id\":\"cus_decoy\",\"email\":\"one@example.com\",\"created\":200},"
	    "{\"id\":\"cus_decoy2\",\"email\":\"x.some.one@example.com\",\"created\":300}]}");
	cfg_default(&cfg);
	c = client(&cfg);
	for (i = 0; i < sizeof(casings) / sizeof(casings[0]); i++) {
		th_standin_reset_counts(&S);
		ck_assert_int_eq(lookup_ms(c, casings[i], 10000, &s, &r), STRIPE_OK);
		ck_assert_msg(s.found, "%s not found", casings[i]);
		ck_assert_str_eq(s.customer_id, "cus_mixed");
		ck_assert_int_eq(s.found_by, STRIPE_BY_SEARCH);
		ck_assert_int_eq(s.matches, 1);
		ck_assert_int_eq(served("customers_search"), 1);
	}
	/* the search literal is quoted and escaped, the query percent-encoded */
	ck_assert_int_eq(th_standin_call(&S, "GET", "/_standin/requests?endpoint=customers_search",
	    NULL, &log), 200);
	ck_assert_ptr_nonnull(strstr(log, "email%3A%27SOME.ONE%40example.com%27"));
	free(log);
	/* A quote in the address cannot break out of the literal. */
	given("{\"customers\":[{\"id\":\"cus_q\",\"email\":\"O'Brien@example.com\"}]}");
	ck_assert_int_eq(lookup_ms(c, "o'brien@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert_str_eq(s.customer_id, "cus_q");
	stripe_client_free(c);
}
END_TEST

START_TEST(search_unavailable_budget_and_off)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	struct stripe_stats st;

	given("{\"customers\":[{\"id\":\"cus_mixed\",\"email\":\"Some.One@Example.COM\"}],"
	    "\"checkout_sessions\":[{\"customer_details\":{\"email\":\"guest@example.com\"}}]}");
	cfg_default(&cfg);
	c = client(&cfg);
	/* A refused customer search is a defect report, not a switch: counted, the lookup
	 * answers (search=skipped), and the guest's sessions still work. */
	faults("{\"customers_search\":{\"status\":400,\"message\":\"Search is not available for "
	    "your account.\"}}");
	ck_assert_int_eq(lookup_ms(c, "some.one@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(!s.found);
	ck_assert(s.search_skipped);
	stripe_stats_get(c, &st);
	ck_assert(!st.search_off);
	ck_assert_uint_eq(st.rejected[STRIPE_EP_CUSTOMERS_SEARCH][STRIPE_REJ_400], 1);
	ck_assert_int_eq(lookup_ms(c, "guest@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.found_by, STRIPE_BY_GUEST);
	ck_assert_int_eq(s.checkout.sessions, 1);
	ck_assert(s.search_skipped);
	/* the third refusal in a row backs customer search (only it) off, logged */
	ck_assert_int_eq(lookup_ms(c, "some.one@example.com", 10000, &s, &r), STRIPE_OK);
	stripe_stats_get(c, &st);
	ck_assert(st.search_off);
	ck_assert_uint_eq(st.search_backoffs, 1);
	ck_assert_uint_eq(st.rejected[STRIPE_EP_CUSTOMERS_SEARCH][STRIPE_REJ_400], 3);
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "guest@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.found_by, STRIPE_BY_GUEST);
	ck_assert(s.search_skipped);
	ck_assert_int_eq(served("customers_search"), 0);
	ck_assert_int_eq(served("checkout_sessions"), 1);
	stripe_client_free(c);
	/* The reverse: refused guest requests, any number of them, leave customer search
	 * (case-insensitive) working and switch nothing off. */
	c = client(&cfg);
	faults("{\"checkout_sessions\":{\"status\":400,\"message\":\"Received unknown "
	    "parameter: customer_details[email]\"}}");
	for (int k = 0; k < 6; k++) {
		ck_assert_int_eq(lookup_ms(c, "nobody@example.com", 10000, &s, &r), STRIPE_OK);
		ck_assert(!s.found);
		ck_assert_int_eq(s.found_by, STRIPE_BY_NONE);
		ck_assert(!s.search_skipped);
		ck_assert_uint_eq(s.parts_refused, STRIPE_PART_GUEST);
		ck_assert_uint_eq(s.parts_missing, 0);
	}
	ck_assert_int_eq(lookup_ms(c, "some.one@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert_int_eq(s.found_by, STRIPE_BY_SEARCH);
	ck_assert_str_eq(s.customer_id, "cus_mixed");
	stripe_stats_get(c, &st);
	ck_assert(!st.search_off);
	/* 7: the search that found cus_mixed ran beside a guest request too */
	ck_assert_uint_eq(st.rejected[STRIPE_EP_CHECKOUT_SESSIONS][STRIPE_REJ_400], 7);
	ck_assert_uint_eq(st.rejected[STRIPE_EP_CUSTOMERS_SEARCH][STRIPE_REJ_400], 0);
	/* a found customer whose charges request is refused keeps everything else */
	faults("{\"charges\":{\"status\":400,\"message\":\"Invalid integer: created\"}}");
	ck_assert_int_eq(lookup_ms(c, "Some.One@Example.COM", 10000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert_str_eq(s.customer_id, "cus_mixed");
	ck_assert_uint_eq(s.parts_refused, STRIPE_PART_CHARGES);
	ck_assert_int_eq(s.charges.window_days, 0);
	stripe_stats_get(c, &st);
	ck_assert_uint_eq(st.rejected[STRIPE_EP_CHARGES][STRIPE_REJ_400], 1);
	faults("{}");
	stripe_client_free(c);
	/* Its own budget: one search a second; past it the fallback is skipped, not waited for. */
	cfg.search_rate = 1;
	cfg.no_guest = true;
	c = client(&cfg);
	faults("{}");
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "some.one@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert(!s.search_skipped);
	ck_assert_int_eq(lookup_ms(c, "nobody@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(!s.found);
	ck_assert(s.search_skipped);
	ck_assert_int_eq(served("customers_search"), 1);
	stripe_client_free(c);
	/* A search failing for a passing reason fails the lookup (the caller serves stale). */
	cfg.search_rate = 0;
	c = client(&cfg);
	faults("{\"customers_search\":{\"status\":503,\"should_retry\":false}}");
	ck_assert_int_eq(lookup_ms(c, "some.one@example.com", 10000, &s, &r), STRIPE_E_SERVER);
	stripe_stats_get(c, &st);
	ck_assert(!st.search_off);
	/* Stripe's search rate limit (429): the search is skipped, not an error for the mail. */
	faults("{\"customers_search\":{\"status\":429,\"should_retry\":false}}");
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "some.one@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(!s.found);
	ck_assert(s.search_skipped);
	ck_assert_int_eq(served("customers_search"), 1);
	stripe_stats_get(c, &st);
	ck_assert(!st.search_off);
	stripe_client_free(c);
}
END_TEST

START_TEST(thirty_customers_oldest_subscribed)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	struct sm_buf b;
	int i;

	sm_buf_init(&b, 1 << 20);
	sm_buf_printf(&b, "{\"products\":[{\"id\":\"prod_pro\",\"name\":\"Pro\"}],\"customers\":[");
	for (i = 0; i < 30; i++)
		sm_buf_printf(&b, "%s{\"id\":\"cus_%02d\",\"email\":\"many@example.com\",\"created\":%d%s}",
		    i ? "," : "", i, 1000 + i, i == 0 ? ",\"subscriptions\":[{\"id\":\"sub_old\","
		    "\"status\":\"active\",\"items\":[{\"price\":{\"product\":\"prod_pro\"}}]}]" : "");
	sm_buf_printf(&b, "]}");
	given(b.data);
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "many@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_str_eq(s.customer_id, "cus_00");
	ck_assert_int_eq(s.matches, 30);
	ck_assert(!s.matches_capped);
	ck_assert_int_eq(s.subs[0].status, STRIPE_SUB_ACTIVE);
	ck_assert_str_eq(s.subs[0].id, "sub_old");
	ck_assert_str_eq(s.subs[0].plan, "Pro");
	ck_assert_int_eq(served("customers"), 1);
	/* 130 customers: the documented cap, matches=100 and capped ("100+"). */
	sm_buf_reset(&b);
	sm_buf_printf(&b, "{\"customers\":[");
	for (i = 0; i < 130; i++)
		sm_buf_printf(&b, "%s{\"id\":\"cus_%03d\",\"email\":\"many@example.com\",\"created\":%d}",
		    i ? "," : "", i, 1000 + i);
	sm_buf_printf(&b, "]}");
	given(b.data);
	ck_assert_int_eq(lookup_ms(c, "many@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.matches, STRIPE_CUSTOMERS_CAP);
	ck_assert(s.matches_capped);
	ck_assert_str_eq(s.customer_id, "cus_129");	/* none subscribed: the newest */
	sm_buf_free(&b);
	stripe_client_free(c);
}
END_TEST

START_TEST(subscriptions_paged_past_100)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	struct sm_buf b;
	int i;

	/* 130 subscriptions, the only active one the oldest: the expanded list (10) is
	 * incomplete, so the full list is read, in two pages. */
	sm_buf_init(&b, 1 << 20);
	sm_buf_printf(&b, "{\"customers\":[{\"id\":\"cus_p\",\"email\":\"p@example.com\",\"subscriptions\":[");
	for (i = 0; i < 130; i++)
		sm_buf_printf(&b, "%s{\"id\":\"sub_%03d\",\"status\":\"%s\",\"created\":%d}", i ? "," : "",
		    i, i == 0 ? "active" : "incomplete", 1000 + i);
	sm_buf_printf(&b, "]}]}");
	given(b.data);
	sm_buf_free(&b);
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "p@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.subs_total, 130);
	ck_assert_str_eq(s.subs[0].id, "sub_000");
	ck_assert_int_eq(s.subs[0].status, STRIPE_SUB_ACTIVE);
	ck_assert_int_eq(s.subs_by_status[STRIPE_SUB_INCOMPLETE], 129);
	ck_assert_int_eq(served("subscriptions"), 2);
	stripe_client_free(c);
}
END_TEST

START_TEST(tiered_price_custom_ids)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	char *log = NULL;

	given("{\"products\":[{\"id\":\"gold-plan\",\"name\":\"Gold\"}],"
	    "\"customers\":[{\"id\":\"cus-legacy\",\"email\":\"t@example.com\",\"subscriptions\":["
	    "{\"id\":\"sub-custom\",\"status\":\"active\",\"items\":[{\"price\":{\"id\":\"price-tiered\","
	    "\"billing_scheme\":\"tiered\",\"tiers_mode\":\"volume\",\"unit_amount\":null,"
	    "\"unit_amount_decimal\":null,\"product\":\"gold-plan\"}}]}],"
	    "\"charges\":[{\"amount\":4900,\"amount_captured\":0,\"captured\":false,\"currency\":\"usd\"}]}]}");
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "t@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_str_eq(s.customer_id, "cus-legacy");
	ck_assert_str_eq(s.subs[0].id, "sub-custom");
	ck_assert_str_eq(s.subs[0].product_id, "gold-plan");
	ck_assert_str_eq(s.subs[0].plan, "Gold");
	ck_assert_int_eq(s.subs[0].amount_kind, STRIPE_AMOUNT_TIERED);
	/* an uncaptured authorisation adds nothing to the total */
	ck_assert_int_eq(s.charges.succeeded, 1);
	ck_assert_int_eq(s.charges.ntotals, 1);
	ck_assert_int_eq(s.charges.totals[0].amount, 0);
	ck_assert_int_eq(th_standin_call(&S, "GET", "/_standin/requests", NULL, &log), 200);
	ck_assert_ptr_nonnull(strstr(log, "customer=cus-legacy"));
	ck_assert_ptr_nonnull(strstr(log, "ids[]=gold-plan"));
	free(log);
	stripe_client_free(c);
}
END_TEST

START_TEST(open_invoice_after_failed_attempts)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;

	given("{\"customers\":[{\"id\":\"cus_late\",\"email\":\"late@example.com\",\"delinquent\":true,"
	    "\"subscriptions\":[{\"id\":\"sub_late\",\"status\":\"past_due\"}],"
	    "\"invoices\":[{\"id\":\"in_late\",\"subscription\":\"sub_late\",\"amount_due\":4900,"
	    "\"currency\":\"usd\",\"attempt_count\":2,\"next_payment_attempt\":1796083200},"
	    "{\"id\":\"in_paid\",\"status\":\"paid\"}]},"
	    "{\"id\":\"cus_fine\",\"email\":\"fine@example.com\",\"subscriptions\":[{\"status\":\"active\"}],"
	    "\"invoices\":[{\"id\":\"in_draft_x\",\"status\":\"open\"}]}]}");
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "late@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(s.invoices.checked);
	ck_assert_int_eq(s.invoices.open, 1);
	ck_assert_int_eq(s.invoices.past_due, 1);
	ck_assert_str_eq(s.invoices.id, "in_late");
	ck_assert_int_eq(s.invoices.amount_remaining.amount, 4900);
	ck_assert_str_eq(s.invoices.amount_remaining.currency, "usd");
	ck_assert_int_eq(s.invoices.attempts, 2);
	ck_assert_int_eq(s.invoices.next_attempt, 1796083200);
	ck_assert_int_eq(strncmp(s.invoices.url, "https://invoice.stripe.com/i/", 29), 0);
	/* A customer in good standing costs no invoices request. */
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "fine@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(!s.invoices.checked);
	ck_assert_int_eq(served("invoices"), 0);
	stripe_client_free(c);
	/* Without rak_invoice_read: the part is missing, the rest is there; not asked again. */
	ck_assert_int_eq(th_standin_call(&S, "POST", "/_standin/state",
	    "{\"keys\":{\"rk_test_noinv\":{\"missing\":[\"rak_invoice_read\"]}}}", NULL), 200);
	cfg.api_key = "rk_test_noinv";
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "late@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert_uint_eq(s.parts_missing, STRIPE_PART_INVOICES);
	ck_assert(!s.invoices.checked);
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "late@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_uint_eq(s.parts_missing, STRIPE_PART_INVOICES);
	ck_assert_int_eq(served("invoices"), 0);
	stripe_client_free(c);
}
END_TEST

START_TEST(guest_buyer_by_checkout_sessions)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	char state[4096];
	int64_t now = sm_wall_ms() / 1000;

	/* sessions newest first: a paid subscription one (EUR), a paid one (USD) in the
	 * window, an expired one, another buyer's, one older than the window (90 days) */
	snprintf(state, sizeof(state), "{\"checkout_sessions\":["
	    "{\"id\":\"cs_old\",\"created\":%lld,\"amount_total\":9900,"
	    "\"customer_details\":{\"email\":\"guest.buyer@example.com\"}},"
	    "{\"id\":\"cs_usd\",\"created\":%lld,\"amount_total\":1500,"
	    "\"customer_details\":{\"email\":\"Guest.Buyer@Example.com\"}},"
	    "{\"id\":\"cs_expired\",\"created\":%lld,\"status\":\"expired\","
	    "\"customer_details\":{\"email\":\"guest.buyer@example.com\"}},"
	    "{\"id\":\"cs_other\",\"created\":%lld,"
	    "\"customer_details\":{\"email\":\"buyer@example.com\"}},"
	    "{\"id\":\"cs_sub\",\"created\":%lld,\"amount_total\":2500,\"currency\":\"eur\","
	    "\"mode\":\"subscription\",\"customer_details\":{\"email\":\"guest.buyer@example.com\"}}],"
	    "\"keys\":{\"rk_test_nocs\":{\"missing\":[\"rak_checkout_session_read\"]}}}",
	    (long long)(now - 100 * 86400), (long long)(now - 5000), (long long)(now - 4000),
	    (long long)(now - 3000), (long long)(now - 2000));
	given(state);
	cfg_default(&cfg);
	c = client(&cfg);
	/* mixed case: both exact forms are asked, in one round trip */
	ck_assert_int_eq(lookup_ms(c, "Guest.Buyer@Example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(!s.found);
	ck_assert_int_eq(s.found_by, STRIPE_BY_GUEST);
	ck_assert_int_eq(s.checkout.window_days, 90);
	ck_assert_int_eq(s.checkout.sessions, 2);
	ck_assert_int_eq(s.checkout.paid, 2);
	ck_assert_int_eq(s.checkout.subscriptions, 1);
	ck_assert_int_eq(s.checkout.ntotals, 2);
	ck_assert(s.checkout.has_last);
	ck_assert_int_eq(s.checkout.last_created, now - 2000);
	ck_assert_str_eq(s.checkout.last_payment_status, "paid");
	ck_assert_str_eq(s.checkout.last_mode, "subscription");
	ck_assert(!s.checkout.truncated);
	ck_assert_int_eq(s.charges.count, 0);
	/* 2 customer lists, 1 search, 2 session lists */
	ck_assert_int_eq(r.requests, 5);
	ck_assert_int_eq(served("checkout_sessions"), 2);
	ck_assert_int_eq(served("charges_search"), 0);
	/* a lowercase sender: one form, one request, only its own sessions */
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "guest.buyer@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.found_by, STRIPE_BY_GUEST);
	ck_assert_int_eq(s.checkout.sessions, 1);
	ck_assert_int_eq(s.checkout.totals[0].amount, 2500);
	ck_assert_str_eq(s.checkout.totals[0].currency, "eur");
	ck_assert_int_eq(served("checkout_sessions"), 1);
	/* one page of ChargesMax: a full page still inside the window is truncated */
	stripe_client_free(c);
	cfg.charges_max = 1;
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "guest.buyer@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.checkout.sessions, 1);
	ck_assert(s.checkout.truncated);
	stripe_client_free(c);
	/* another buyer has their own sessions; an unknown address has none */
	cfg.charges_max = 0;
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "buyer@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.found_by, STRIPE_BY_GUEST);
	ck_assert_int_eq(lookup_ms(c, "nobody@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.found_by, STRIPE_BY_NONE);
	ck_assert_uint_eq(s.parts_missing, 0);
	stripe_client_free(c);
	/* Without rak_checkout_session_read the guest part is missing (missing=guest), asked
	 * once and then remembered; the rest of the lookup works. */
	cfg.api_key = "rk_test_nocs";
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "guest.buyer@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_int_eq(s.found_by, STRIPE_BY_NONE);
	ck_assert_uint_eq(s.parts_missing, STRIPE_PART_GUEST);
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "guest.buyer@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_uint_eq(s.parts_missing, STRIPE_PART_GUEST);
	ck_assert_int_eq(served("checkout_sessions"), 0);
	ck_assert_int_eq(served("customers_search"), 1);
	stripe_client_free(c);
}
END_TEST

START_TEST(expansion_permission_lost)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	char state[4096];

	snprintf(state, sizeof(state), "%.*s,\"keys\":{\"rk_test_nosub\":{\"missing\":"
	    "[\"rak_subscription_read\"]}}}", (int)strlen(BASIC_STATE) - 1, BASIC_STATE);
	given(state);
	cfg_default(&cfg);
	cfg.api_key = "rk_test_nosub";
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert(s.found);
	ck_assert_uint_eq(s.parts_missing, STRIPE_PART_SUBSCRIPTIONS);
	ck_assert_int_eq(served("customers"), 2);	/* with, then without the expansion */
	th_standin_reset_counts(&S);
	ck_assert_int_eq(lookup_ms(c, "jenny@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_uint_eq(s.parts_missing, STRIPE_PART_SUBSCRIPTIONS);
	ck_assert_int_eq(served("customers"), 1);	/* remembered */
	stripe_client_free(c);
}
END_TEST

struct flight_arg {
	struct stripe_client *c;
	char email[64];
	struct stripe_summary s;
	enum stripe_errclass e;
};

static void *flight_run(void *arg)
{
	struct flight_arg *a = arg;
	struct stripe_result r;

	a->e = lookup_ms(a->c, a->email, 5000, &a->s, &r);
	return NULL;
}

START_TEST(plan_names_single_flight)
{
	struct stripe_config cfg;
	struct flight_arg a[8];
	pthread_t t[8];
	struct sm_buf b;
	int i;

	sm_buf_init(&b, 1 << 16);
	sm_buf_printf(&b, "{\"products\":[{\"id\":\"prod_one\",\"name\":\"One\"}],\"customers\":[");
	for (i = 0; i < 8; i++)
		sm_buf_printf(&b, "%s{\"email\":\"f%d@example.com\",\"subscriptions\":[{\"status\":"
		    "\"active\",\"items\":[{\"price\":{\"product\":\"prod_one\"}}]}]}", i ? "," : "", i);
	sm_buf_printf(&b, "]}");
	given(b.data);
	sm_buf_free(&b);
	/* The first products request is slow, so the others find it in flight. */
	faults("{\"products\":{\"latency_ms\":400}}");
	cfg_default(&cfg);
	cfg.max_concurrent = 32;
	for (i = 0; i < 8; i++) {
		a[i].c = client(&cfg);
		if (i > 0) {
			stripe_client_free(a[i].c);
			a[i].c = a[0].c;
		}
		snprintf(a[i].email, sizeof(a[i].email), "f%d@example.com", i);
		ck_assert_int_eq(pthread_create(&t[i], NULL, flight_run, &a[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(a[i].e, STRIPE_OK);
		ck_assert_str_eq(a[i].s.subs[0].plan, "One");
	}
	/* Customers are answered at once; the one products request is in flight while the
	 * others want the same name (a lookup arriving after it ended may ask again). */
	ck_assert_int_lt(served("products"), 8);
	ck_assert_int_eq(served("customers"), 8);
	stripe_client_free(a[0].c);
}
END_TEST


START_TEST(lists_that_repeat_themselves_end)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;

	/* A list that always says has_more and repeats itself (a mock, a broken proxy): the
	 * client stops when the cursor does not move, counts each id once. */
	given("{}");
	faults("{\"customers\":{\"body\":{\"object\":\"list\",\"has_more\":true,\"url\":\"/v1/customers\","
	    "\"data\":[{\"id\":\"cus_loop\",\"object\":\"customer\",\"email\":\"loop@example.com\"}]}},"
	    "\"subscriptions\":{\"body\":{\"object\":\"list\",\"has_more\":true,\"url\":\"/v1/subscriptions\","
	    "\"data\":[{\"id\":\"sub_loop\",\"object\":\"subscription\",\"status\":\"active\"}]}},"
	    "\"charges\":{\"body\":{\"object\":\"list\",\"has_more\":true,\"url\":\"/v1/charges\","
	    "\"data\":[{\"id\":\"ch_loop\",\"object\":\"charge\",\"status\":\"succeeded\","
	    "\"amount\":100,\"amount_captured\":100,\"currency\":\"usd\"}]}}}");
	cfg_default(&cfg);
	c = client(&cfg);
	ck_assert_int_eq(lookup_ms(c, "loop@example.com", 10000, &s, &r), STRIPE_OK);
	ck_assert_str_eq(s.customer_id, "cus_loop");
	ck_assert_int_eq(s.matches, 1);
	ck_assert(s.matches_capped);
	ck_assert_int_eq(served("customers"), 2);
	ck_assert_int_eq(s.subs_total, 1);
	ck_assert_int_eq(served("subscriptions"), 2);
	ck_assert_int_eq(served("charges"), 2);
	ck_assert(s.charges.truncated);
	stripe_client_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stripe-lookup");
	TCase *tc = tcase_create("standin");
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	S_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
	if (th_standin_start(&S) != 0)
		th_skip_all("the Stripe stand-in (tests/standin/stripe_standin.py) did not start");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, found_with_every_part);
	tcase_add_test(tc, not_found_is_not_an_error);
	tcase_add_test(tc, case_variants);
	tcase_add_test(tc, several_customers_choose_by_subscription);
	tcase_add_test(tc, zero_and_three_decimal_currencies);
	tcase_add_test(tc, subscriptions_in_every_status);
	tcase_add_test(tc, charges_of_every_kind_in_the_window);
	tcase_add_test(tc, error_classes_and_retry_rules);
	tcase_add_test(tc, errors_on_later_calls_fail_the_lookup);
	tcase_add_test(tc, deadline_held_when_stripe_hangs);
	tcase_add_test(tc, restricted_key_missing_each_permission);
	tcase_add_test(tc, check_permissions_table);
	tcase_add_test(tc, hostile_data_from_stripe);
	tcase_add_test(tc, token_bucket_caps_the_rate);
	tcase_add_test(tc, fetches_run_concurrently);
	tcase_add_test(tc, many_threads_share_one_client);
	tcase_add_test(tc, product_cache_hooks);
	tcase_add_test(tc, parts_turned_off_and_connect_account);
	tcase_add_test(tc, mixed_case_found_by_search);
	tcase_add_test(tc, search_unavailable_budget_and_off);
	tcase_add_test(tc, thirty_customers_oldest_subscribed);
	tcase_add_test(tc, subscriptions_paged_past_100);
	tcase_add_test(tc, tiered_price_custom_ids);
	tcase_add_test(tc, open_invoice_after_failed_attempts);
	tcase_add_test(tc, guest_buyer_by_checkout_sessions);
	tcase_add_test(tc, expansion_permission_lost);
	tcase_add_test(tc, plan_names_single_flight);
	tcase_add_test(tc, lists_that_repeat_themselves_end);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_standin_stop(&S);
	curl_global_cleanup();
	return rc;
}
