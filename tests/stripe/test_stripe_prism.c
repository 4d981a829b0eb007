/*
 * test_stripe_prism.c - conformance: every request stripe/ can make is sent to Prism
 * serving Stripe's OpenAPI spec (strict: an invalid request gets 422) and none is
 * rejected. Prism's placeholder data is not meaningful; only request validity is tested.
 * Skipped, with the reason, when Prism or tests/data/stripe is absent.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stripe/stripe_int.h"
#include "tests/harness/th.h"

static struct th_prism P;

static void cfg_default(struct stripe_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->api_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
	cfg->base_url = P.base_url;
	cfg->max_retries = 0;
	cfg->rate_limit = 1000;
}

/* Runs one lookup through Prism; asserts no request was refused. */
static void lookup_accepted(const struct stripe_config *cfg, const char *email, int min_requests)
{
	char err[256];
	struct stripe_client *c = stripe_client_new(cfg, err, sizeof(err));
	struct stripe_summary s;
	struct stripe_result r;
	enum stripe_errclass e;

	ck_assert_msg(c != NULL, "%s", err);
	e = stripe_lookup(c, email, sm_now_ms() + 120000, &s, &r);
	ck_assert_msg(e == STRIPE_OK, "lookup %s: %s (HTTP %d: %s)", email, stripe_errclass_name(e),
	    r.http_status, r.message);
	ck_assert_msg(r.requests >= min_requests, "only %d requests", r.requests);
	ck_assert(s.found);
	stripe_client_free(c);
}

START_TEST(lookup_requests_are_valid)
{
	static const char *const mk[] = { "tier" };
	struct stripe_config cfg;

	cfg_default(&cfg);
	/* customers, subscriptions, products, charges */
	lookup_accepted(&cfg, "jenny.rosen@example.com", 4);
	/* two email variants, odd characters in the address */
	lookup_accepted(&cfg, "J.Rosen+tag&x=1@Example.COM", 5);
	/* charges paged with starting_after; metadata keys; Connect */
	cfg.charges_max = 250;
	cfg.charges_window_days = 30;
	cfg.metadata_keys = mk;
	cfg.nmetadata_keys = 1;
	cfg.account = "acct_1032D82eZvKYlo2C";
	lookup_accepted(&cfg, "paged@example.com", 5);
}
END_TEST

START_TEST(request_shapes_are_valid)
{
	/* The shapes the flow builds, with several ids and a second page. */
	static const char *const paths[] = {
		"/v1/customers?email=a%40b.com&limit=100&expand[]=data.subscriptions",
		"/v1/customers?email=a%40b.com&limit=100&expand[]=data.subscriptions&starting_after=cus-legacy",
		"/v1/customers?email=a%40b.com&limit=100",
		"/v1/customers/search?query=email%3A%27O%5C%27Brien%40b.com%27&limit=100"
		    "&expand[]=data.subscriptions",
		"/v1/customers/search?query=email%3A%27a%40b.com%27&limit=100&page=page_100",
		"/v1/subscriptions?customer=cus_NffrFeUfNV2Hib&status=all&limit=100",
		"/v1/subscriptions?customer=cus-legacy&status=all&limit=100&starting_after=sub-x",
		"/v1/products?limit=4&ids[]=prod_a&ids[]=prod_b&ids[]=prod_c&ids[]=gold-plan",
		"/v1/charges?customer=cus_NffrFeUfNV2Hib&created[gte]=1700000000&limit=100",
		"/v1/charges?customer=cus_NffrFeUfNV2Hib&created[gte]=1700000000&limit=50&starting_after=ch_1",
		"/v1/checkout/sessions?customer_details%5Bemail%5D=a%40b.com&limit=100",
		"/v1/invoices?customer=cus-legacy&status=open&limit=100",
		"/v1/invoices?limit=1",
	};
	struct stripe_config cfg;
	struct stripe_client *c;
	char err[256];
	size_t i;

	cfg_default(&cfg);
	c = stripe_client_new(&cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct stripe_call call;

		stripe_call_init(&call);
		stripe_http_get(c, paths[i], sm_now_ms() + 60000, &call);
		ck_assert_msg(call.status == 200, "%s -> HTTP %ld %.300s", paths[i], call.status,
		    call.body.data ? call.body.data : "");
		stripe_call_free(&call);
	}
	/* The harness itself can tell a bad request: Prism does reject one. */
	{
		struct stripe_call call;

		stripe_call_init(&call);
		stripe_http_get(c, "/v1/subscriptions?status=bogus", sm_now_ms() + 60000, &call);
		ck_assert_int_eq(call.status, 422);
		ck_assert_int_eq(call.err, STRIPE_E_REQUEST);
		stripe_call_free(&call);
		/* ... also on the operations added from Stripe's spec (invoices, search) */
		stripe_call_init(&call);
		stripe_http_get(c, "/v1/invoices?status=bogus", sm_now_ms() + 60000, &call);
		ck_assert_int_eq(call.status, 422);
		stripe_call_free(&call);
		stripe_call_init(&call);
		stripe_http_get(c, "/v1/charges/search?limit=1", sm_now_ms() + 60000, &call);
		ck_assert_int_eq(call.status, 422);	/* query is required */
		stripe_call_free(&call);
	}
	stripe_client_free(c);
}
END_TEST

START_TEST(permission_probes_are_valid)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_perm p[STRIPE_PERMS];
	struct stripe_result r;
	char err[256];
	int i;

	cfg_default(&cfg);
	c = stripe_client_new(&cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(stripe_check_permissions(c, sm_now_ms() + 120000, p, &r) == 0,
	    "HTTP %d: %s", r.http_status, r.message);
	for (i = 0; i < STRIPE_PERMS; i++)
		ck_assert_msg(p[i].granted, "%s probe refused", p[i].permission);
	stripe_client_free(c);
}
END_TEST

START_TEST(account_request_is_valid)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_result r;
	char err[256], id[STRIPE_ID_MAX];

	cfg_default(&cfg);
	c = stripe_client_new(&cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(stripe_account_id(c, sm_now_ms() + 120000, id, sizeof(id), &r) == 0,
	    "HTTP %d: %s", r.http_status, r.message);
	ck_assert(id[0] != '\0');
	stripe_client_free(c);
}
END_TEST

/* The events poller's requests: created[gt], 20 types[], limit, and a second page. */
START_TEST(events_requests_are_valid)
{
	static const char *const types[] = {
		"customer.created", "customer.updated", "customer.deleted",
		"customer.subscription.created", "customer.subscription.updated",
		"customer.subscription.deleted", "customer.subscription.paused",
		"customer.subscription.resumed", "invoice.paid", "invoice.payment_failed",
		"invoice.payment_succeeded", "invoice.marked_uncollectible", "invoice.voided",
		"invoice.finalized", "charge.succeeded", "charge.failed", "charge.refunded",
		"charge.captured", "charge.dispute.created", "charge.dispute.closed",
	};
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_event ev[100];
	struct stripe_result r;
	char err[256];
	bool more;
	int n;

	cfg_default(&cfg);
	c = stripe_client_new(&cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(stripe_events_list(c, 1700000000, types, 20, NULL, 100, sm_now_ms() + 60000, ev, 100, &n,
	    &more, &r) == STRIPE_OK, "HTTP %d: %s", r.http_status, r.message);
	ck_assert_msg(stripe_events_list(c, 1700000000, types, 20, "evt_1NG8Du2eZvKYlo2CUI79vXWy", 100,
	    sm_now_ms() + 60000, ev, 100, &n, &more, &r) == STRIPE_OK, "HTTP %d: %s", r.http_status, r.message);
	stripe_client_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stripe-prism");
	TCase *tc = tcase_create("prism");
	char why[512];
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (th_prism_start(&P, why, sizeof(why)) != 0)
		th_skip_all(why);
	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, lookup_requests_are_valid);
	tcase_add_test(tc, request_shapes_are_valid);
	tcase_add_test(tc, permission_probes_are_valid);
	tcase_add_test(tc, account_request_is_valid);
	tcase_add_test(tc, events_requests_are_valid);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_prism_stop(&P);
	curl_global_cleanup();
	return rc;
}
