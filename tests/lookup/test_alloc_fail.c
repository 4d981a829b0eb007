/*
 * test_alloc_fail.c - allocation failure, curl's "torture" way: one lookup (lk_new, a cold
 * lookup through the Stripe client against the stand-in, the summary codec, the two cache
 * levels on a real redis-server, then a warm lookup and lk_put) is run again and again, the
 * Nth allocation failing in run N, for N = 1, 2, ... until a run makes no injected failure
 * (after a first run that does the process's one-time set-ups, which are not failed).
 * Every run must end in a defined outcome: lk_new() refused with a reason, or a result that
 * is the customer (cus_jenny) or an error with its class word, never "not found" for a
 * customer who exists, never a crash; under ASan no run may leak (LeakSanitizer is asked after
 * every run, so a leak names its N).
 *
 * Counted allocations (while a run is armed, on any thread) and what is left out: see
 * tests/harness/th_alloc.h. Concurrent fetches of one lookup run on threads of their own, so
 * which allocation is the Nth can differ between two runs with the same N: the count of
 * distinct call sites that failed is printed (on stderr, into the test's log).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_util.h"
#include "lookup/lookup.h"
#include "tests/harness/th.h"
#include "tests/harness/th_alloc.h"

/* ---- the lookup under test ---- */

static struct th_standin S;
static struct th_redis R;

#define AF_STATE \
	"{\"products\":[{\"id\":\"prod_pro\",\"name\":\"Pro\"}]," \
	"\"customers\":[{\"id\":\"cus_jenny\",\"email\":\"jenny@example.com\",\"name\":\"Jenny Rosen\"," \
	"\"created\":1709251200,\"delinquent\":true,\"balance\":-500,\"currency\":\"usd\"," \
	"\"metadata\":{\"tier\":\"gold\"}," \
	"\"subscriptions\":[{\"id\":\"sub_pro\",\"status\":\"active\"," \
	"\"items\":[{\"price\":{\"id\":\"price_pro\",\"unit_amount\":4900,\"currency\":\"usd\"," \
	"\"product\":\"prod_pro\",\"recurring\":{\"interval\":\"month\",\"interval_count\":1}}," \
	"\"quantity\":1}]}]," \
	"\"charges\":[{\"id\":\"ch_ok\",\"amount\":4900,\"currency\":\"usd\",\"status\":\"succeeded\"}]}," \
	AF_OTHER "]}"

/* Another customer of the account, newer and with an open invoice and two charges: if a
 * list request went out without its filter (libcurl 7.88.1 dropped the query string when
 * an allocation in its URL handling failed), its answer would carry this customer's data,
 * and af_check() sees it. */
#define AF_OTHER \
	"{\"id\":\"cus_other\",\"email\":\"other@example.com\",\"name\":\"Other Person\"," \
	"\"created\":1790000000,\"delinquent\":true," \
	"\"subscriptions\":[{\"id\":\"sub_other\",\"status\":\"active\"," \
	"\"items\":[{\"price\":{\"id\":\"price_pro\",\"unit_amount\":4900,\"currency\":\"usd\"," \
	"\"product\":\"prod_pro\",\"recurring\":{\"interval\":\"month\",\"interval_count\":1}}," \
	"\"quantity\":1}]}]," \
	"\"charges\":[{\"id\":\"ch_o1\",\"amount\":100,\"currency\":\"usd\",\"status\":\"failed\"}," \
	"{\"id\":\"ch_o2\",\"amount\":200,\"currency\":\"usd\",\"status\":\"failed\"}]," \
	"\"invoices\":[{\"id\":\"in_other\",\"amount_due\":777,\"currency\":\"usd\"}]}"

/* Checks one lookup's result; what a run may end in. */
static void af_check(const struct lk_result *r, long n, const char *which)
{
	switch (r->lr_state) {
	case LK_FOUND:
		ck_assert_msg(strcmp(r->lr_summary.customer_id, "cus_jenny") == 0,
		    "N=%ld %s: found '%s'", n, which, r->lr_summary.customer_id);
		/* nothing of cus_other's: no list went out without its filter */
		ck_assert_msg(r->lr_summary.matches <= 1 && r->lr_summary.invoices.open == 0 &&
		    r->lr_summary.charges.count <= 1,
		    "N=%ld %s: another customer's data (matches %d, open invoices %d, charges %d): "
		    "a list request without its filter?", n, which, r->lr_summary.matches,
		    r->lr_summary.invoices.open, r->lr_summary.charges.count);
		break;
	case LK_ERROR:
		ck_assert_msg(r->lr_error != NULL && r->lr_error[0] != '\0',
		    "N=%ld %s: an error without a class", n, which);
		break;
	default:
		ck_abort_msg("N=%ld %s: state %d (a failed allocation read as 'no such customer'?)",
		    n, which, (int)r->lr_state);
	}
}

/* One armed run failing allocation n (0 = none). Returns the allocations it counted. */
static long af_run(long n, struct lk_result *cold)
{
	static const char *const keys[] = { "tier" };
	struct lk_result warm;
	struct lk_config lc;
	char err[256] = "", out[64];
	struct lk *lk;
	long count;

	memset(&lc, 0, sizeof(lc));
	lc.stripe.api_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
	lc.stripe.base_url = S.base_url;
	lc.stripe.max_retries = 1;
	lc.stripe.retry_base_ms = 5;
	lc.stripe.retry_max_ms = 20;
	lc.stripe.rate_limit = 10000;
	lc.stripe.metadata_keys = keys;
	lc.stripe.nmetadata_keys = 1;
	lc.cache.prefix = "allocfail";
	lc.cache.redis_host = "127.0.0.1";
	lc.cache.redis_port = R.port;
	lc.cache.connect_timeout_ms = 2000;
	lc.cache.command_timeout_ms = 2000;
	lc.mode = "test";
	lc.stripe_timeout_ms = 10000;
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "FLUSHALL"), 0);
	memset(cold, 0, sizeof(*cold));

	th_alloc_arm(n);
	lk = lk_new(&lc, NULL, err, sizeof(err));
	if (lk == NULL) {
		count = th_alloc_disarm();
		ck_assert_msg(n > 0 && err[0] != '\0', "N=%ld: lk_new failed without a reason", n);
		cold->lr_state = LK_ERROR;
		cold->lr_error = "lk_new";
		return count;
	}
	lk_sync(lk, "jenny@example.com", sm_now_ms() + 10000, cold);
	lk_sync(lk, "Jenny@Example.com", sm_now_ms() + 10000, &warm);
	lk_put(lk);
	count = th_alloc_disarm();
	af_check(cold, n, "cold lookup");
	af_check(&warm, n, "warm lookup");
	return count;
}

START_TEST(every_allocation_of_a_lookup_fails_once)
{
	struct lk_result r;
	long n, total, runs = 0, errors = 0, found = 0, refused = 0;

	ck_assert_int_eq(th_standin_state(&S, AF_STATE), 0);
	ck_assert_int_eq(th_standin_faults(&S, "{}"), 0);
	/* a first run does the process's one-time set-ups (OpenSSL's SHA-256 fetch, curl's
	 * and jansson's first uses): they are not part of a lookup and not failed here */
	(void)af_run(0, &r);
	/* the reference run: nothing fails, the customer with every part */
	total = af_run(0, &r);
	ck_assert_int_eq(r.lr_state, LK_FOUND);
	ck_assert_str_eq(r.lr_summary.subs[0].plan, "Pro");
	ck_assert_int_eq(r.lr_summary.parts_missing, 0);
	ck_assert_int_gt(total, 100);
	for (n = 1; ; n++) {
		long count = af_run(n, &r);

		runs++;
		ck_assert_msg(th_alloc_leak_check() == 0, "N=%ld: leaked (above)", n);
		if (!th_alloc_injected()) {
			/* past the last allocation: the run is the reference again */
			ck_assert_int_eq(r.lr_state, LK_FOUND);
			ck_assert_str_eq(r.lr_summary.subs[0].plan, "Pro");
			ck_assert_int_le(count, n);
			ck_assert_int_ge(n, total - total / 10);	/* every allocation had its turn */
			break;
		}
		if (r.lr_error && strcmp(r.lr_error, "lk_new") == 0)
			refused++;
		else if (r.lr_state == LK_FOUND)
			found++;
		else
			errors++;
		ck_assert_msg(n < 100000, "no end to the allocations of one lookup");
	}
	fprintf(stderr, "# alloc-fail lookup: %ld allocations in the reference run, %ld runs, %d distinct "
	    "call sites failed; outcomes: %ld lk_new refused, %ld found, %ld error\n", total, runs,
	    th_alloc_sites(), refused, found, errors);
	fflush(stderr);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("alloc-fail");
	TCase *tc = tcase_create("lookup");
	int rc;

	th_alloc_hooks();	/* before anything else allocates */
	if (th_redis_start(&R, 0, NULL) != 0)
		th_skip_all("redis-server did not start");
	if (th_standin_start(&S) != 0) {
		th_redis_stop(&R);
		th_skip_all("the Stripe stand-in (tests/standin/stripe_standin.py) did not start");
	}
	tcase_set_timeout(tc, 1800);
	tcase_add_test(tc, every_allocation_of_a_lookup_fails_once);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_standin_stop(&S);
	th_redis_stop(&R);
	return rc;
}
