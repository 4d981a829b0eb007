/*
 * test_stripe_unit.c - unit tests of stripe/ that need no server: money, keys, names,
 * hostile JSON, customer choice, subscription ranking, retry rules (the summary codec is
 * lookup/'s: tests/lookup/test_lookup.c).
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stripe/stripe_int.h"
#include "tests/harness/th.h"

/* ---- money ---- */

static const char *fmt(int64_t minor, const char *cur)
{
	static char buf[64];

	ck_assert_int_gt(stripe_money_format(minor, cur, buf, sizeof(buf)), 0);
	return buf;
}

START_TEST(money_by_exponent)
{
	ck_assert_str_eq(fmt(4900, "usd"), "49.00 USD");
	ck_assert_str_eq(fmt(5, "usd"), "0.05 USD");
	ck_assert_str_eq(fmt(0, "eur"), "0.00 EUR");
	ck_assert_str_eq(fmt(-500, "usd"), "-5.00 USD");
	ck_assert_str_eq(fmt(-1, "usd"), "-0.01 USD");
	ck_assert_str_eq(fmt(1200, "jpy"), "1200 JPY");
	ck_assert_str_eq(fmt(-1200, "JPY"), "-1200 JPY");
	ck_assert_str_eq(fmt(50000, "krw"), "50000 KRW");
	ck_assert_str_eq(fmt(1500, "kwd"), "1.500 KWD");
	ck_assert_str_eq(fmt(1, "bhd"), "0.001 BHD");
	ck_assert_str_eq(fmt(-12345, "bhd"), "-12.345 BHD");
	ck_assert_str_eq(fmt(100, ""), "1.00 XXX");
	ck_assert_str_eq(fmt(100, "u$d"), "1.00 XXX");
	ck_assert_str_eq(fmt(INT64_MIN, "usd"), "-92233720368547758.08 USD");
	ck_assert_str_eq(fmt(INT64_MAX, "jpy"), "9223372036854775807 JPY");
	ck_assert_int_eq(stripe_currency_exponent("vnd"), 0);
	ck_assert_int_eq(stripe_currency_exponent("omr"), 3);
	ck_assert_int_eq(stripe_currency_exponent("gbp"), 2);
	ck_assert_int_eq(stripe_currency_exponent("ugx"), 2);	/* Stripe's special case: 500 = 5 UGX */
	/* Stripe keeps ISK two-decimal in its API (100 = 1 krona). */
	ck_assert_str_eq(fmt(4000, "isk"), "40.00 ISK");
	ck_assert_int_eq(stripe_currency_exponent(NULL), 2);
}
END_TEST

START_TEST(money_buffer_too_small)
{
	char buf[6];

	ck_assert_int_eq(stripe_money_format(4900, "usd", buf, sizeof(buf)), -1);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(stripe_money_format(4900, "usd", NULL, 10), -1);
}
END_TEST

/* ---- keys ---- */

START_TEST(key_check_and_mask)
{
	char err[256], m[64];

	ck_assert_int_eq(stripe_key_check("sk_live_abcdefghijklmnop1234", err, sizeof(err)), 0);
	ck_assert_int_eq(stripe_key_check("rk_test_nocharge", err, sizeof(err)), 0);
	ck_assert_int_eq(stripe_key_check("pk_live_abcdefghijkl", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "publishable"));
	ck_assert_int_eq(stripe_key_check("sk_live_", err, sizeof(err)), -1);
	ck_assert_int_eq(stripe_key_check("xk_live_abc", err, sizeof(err)), -1);
	ck_assert_int_eq(stripe_key_check("sk_live_abc def", err, sizeof(err)), -1);
	ck_assert_ptr_null(strstr(err, "abc"));
	ck_assert_int_eq(stripe_key_check("", err, sizeof(err)), -1);
	ck_assert_int_eq(stripe_key_check(NULL, err, sizeof(err)), -1);
	stripe_key_mask("sk_live_abcdefghijklmnopabcd", m, sizeof(m));
	ck_assert_str_eq(m, "sk_live_...abcd");
	stripe_key_mask("rk_test_short", m, sizeof(m));
	ck_assert_str_eq(m, "rk_test_...");
	stripe_key_mask("pk_live_abcdefghijklmnop", m, sizeof(m));
	ck_assert_str_eq(m, "pk_...");
	stripe_key_mask("garbage-secret", m, sizeof(m));
	ck_assert_str_eq(m, "***");
	ck_assert(stripe_key_livemode("rk_live_x"));
	ck_assert(!stripe_key_livemode("sk_test_x"));
}
END_TEST

static void write_key_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(key_load_file_rules)
{
	char dir[256], path[512], key[STRIPE_KEY_MAX], err[256];

	ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/key", dir);
	write_key_file(path, "  sk_test_abcdefghijkl1234  \n", 0600);
	ck_assert_int_eq(stripe_key_load(path, NULL, "rk_test_ignored", key, sizeof(key), err, sizeof(err)), 0);
	ck_assert_str_eq(key, "sk_test_abcdefghijkl1234");
	/* one secret reader (common/sm_secret.h): a second line is refused, not ignored */
	write_key_file(path, "sk_test_abcdefghijkl1234\nsecond line\n", 0600);
	ck_assert_int_eq(stripe_key_load(path, NULL, NULL, key, sizeof(key), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than one line"));
	write_key_file(path, "sk_test_abcdefghijkl1234\n", 0644);
	ck_assert_int_eq(stripe_key_load(path, NULL, NULL, key, sizeof(key), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "group or others"));
	ck_assert_ptr_null(strstr(err, "abcdefghijkl"));
	ck_assert_str_eq(key, "");
	write_key_file(path, "sk_test_abcdefghijkl1234\n", 0604);
	ck_assert_int_eq(stripe_key_load(path, NULL, NULL, key, sizeof(key), err, sizeof(err)), -1);
	write_key_file(path, "pk_test_abcdefghijkl1234\n", 0400);
	ck_assert_int_eq(stripe_key_load(path, NULL, NULL, key, sizeof(key), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "publishable"));
	write_key_file(path, "", 0600);
	ck_assert_int_eq(stripe_key_load(path, NULL, NULL, key, sizeof(key), err, sizeof(err)), -1);
	snprintf(path, sizeof(path), "%s/missing", dir);
	ck_assert_int_eq(stripe_key_load(path, NULL, NULL, key, sizeof(key), err, sizeof(err)), -1);
	ck_assert_int_eq(stripe_key_load(dir, NULL, NULL, key, sizeof(key), err, sizeof(err)), -1);
	th_rmdir(dir);
}
END_TEST

START_TEST(key_load_inline_and_env)
{
	char key[STRIPE_KEY_MAX], err[256];

	unsetenv("STRIPE_API_KEY");
	ck_assert_int_eq(stripe_key_load(NULL, NULL, "rk_live_abcdef", key, sizeof(key), err, sizeof(err)), 0);
	ck_assert_str_eq(key, "rk_live_abcdef");
	ck_assert_int_eq(stripe_key_load(NULL, NULL, NULL, key, sizeof(key), err, sizeof(err)), -1);
	setenv("STRIPE_API_KEY", "sk_test_fromenv", 1);
	ck_assert_int_eq(stripe_key_load(NULL, NULL, "", key, sizeof(key), err, sizeof(err)), 0);
	ck_assert_str_eq(key, "sk_test_fromenv");
	setenv("STRIPE_API_KEY", "pk_test_fromenv", 1);
	ck_assert_int_eq(stripe_key_load(NULL, NULL, NULL, key, sizeof(key), err, sizeof(err)), -1);
	unsetenv("STRIPE_API_KEY");
	ck_assert_int_eq(stripe_key_load(NULL, NULL, "sk_test_abc", key, 8, err, sizeof(err)), -1);
}
END_TEST

/* ---- names ---- */

START_TEST(names_and_ranks)
{
	int i;

	ck_assert_str_eq(stripe_errclass_name(STRIPE_E_RATELIMIT), "rate-limited");
	ck_assert_str_eq(stripe_errclass_name(STRIPE_OK), "ok");
	ck_assert_str_eq(stripe_errclass_name((enum stripe_errclass)99), "internal");
	ck_assert(stripe_errclass_temporary(STRIPE_E_TIMEOUT));
	ck_assert(stripe_errclass_temporary(STRIPE_E_SERVER));
	ck_assert(!stripe_errclass_temporary(STRIPE_E_AUTH));
	ck_assert(!stripe_errclass_temporary(STRIPE_E_PERMISSION));
	for (i = STRIPE_SUB_INCOMPLETE_EXPIRED; i < STRIPE_SUB__COUNT; i++)
		ck_assert_int_eq(stripe_sub_status_parse(stripe_sub_status_name(i)), i);
	ck_assert_int_eq(stripe_sub_status_parse("bogus"), STRIPE_SUB_UNKNOWN);
	ck_assert_int_eq(stripe_sub_status_parse(NULL), STRIPE_SUB_UNKNOWN);
	ck_assert_int_eq(stripe_sub_status_parse("none"), STRIPE_SUB_UNKNOWN);
	/* The issue's order: active > trialing > past_due > unpaid > incomplete > paused > canceled */
	ck_assert_int_gt(STRIPE_SUB_ACTIVE, STRIPE_SUB_TRIALING);
	ck_assert_int_gt(STRIPE_SUB_TRIALING, STRIPE_SUB_PAST_DUE);
	ck_assert_int_gt(STRIPE_SUB_PAST_DUE, STRIPE_SUB_UNPAID);
	ck_assert_int_gt(STRIPE_SUB_UNPAID, STRIPE_SUB_INCOMPLETE);
	ck_assert_int_gt(STRIPE_SUB_INCOMPLETE, STRIPE_SUB_PAUSED);
	ck_assert_int_gt(STRIPE_SUB_PAUSED, STRIPE_SUB_CANCELED);
	ck_assert_str_eq(stripe_part_permission(STRIPE_PART_CHARGES), "rak_charge_read");
	ck_assert_str_eq(stripe_part_permission(STRIPE_PART_PLAN_NAMES), "rak_product_read");
	ck_assert_ptr_null(stripe_part_permission(3));
	ck_assert_str_eq(stripe_part_name(STRIPE_PART_PLAN_NAMES), "plan-names");
	ck_assert_str_eq(stripe_outcome_name(STRIPE_OUT_5XX), "5xx");
	ck_assert_int_eq(stripe_latency_bounds_ms[0], 5);
	/* issue 18: the guest part, events, endpoints as fixed templates */
	ck_assert_str_eq(stripe_part_permission(STRIPE_PART_GUEST), "rak_checkout_session_read");
	ck_assert_str_eq(stripe_part_name(STRIPE_PART_GUEST), "guest");
	ck_assert_str_eq(stripe_part_dashboard(STRIPE_PART_GUEST), "Checkout Sessions: Read");
	ck_assert_str_eq(stripe_part_permission(STRIPE_PERM_EVENTS), "rak_event_read");
	ck_assert_str_eq(stripe_part_dashboard(STRIPE_PERM_EVENTS), "Events: Read");
	ck_assert_ptr_null(stripe_part_dashboard(0x80));
	ck_assert_int_eq(stripe_endpoint_of("/v1/customers?email=a%40b.c&limit=100"), STRIPE_EP_CUSTOMERS);
	ck_assert_int_eq(stripe_endpoint_of("/v1/customers/search?query=x"), STRIPE_EP_CUSTOMERS_SEARCH);
	ck_assert_int_eq(stripe_endpoint_of("/v1/checkout/sessions?customer_details%5Bemail%5D=x"),
	    STRIPE_EP_CHECKOUT_SESSIONS);
	ck_assert_int_eq(stripe_endpoint_of("/v1/account"), STRIPE_EP_ACCOUNT);
	/* an id in the path is not a template: other (bounded labels) */
	ck_assert_int_eq(stripe_endpoint_of("/v1/customers/cus_123"), STRIPE_EP_OTHER);
	ck_assert_int_eq(stripe_endpoint_of("/v1/customersX"), STRIPE_EP_OTHER);
	ck_assert_int_eq(stripe_endpoint_of(NULL), STRIPE_EP_OTHER);
	ck_assert_str_eq(stripe_endpoint_name(STRIPE_EP_CHECKOUT_SESSIONS), "/v1/checkout/sessions");
	ck_assert_str_eq(stripe_endpoint_name(STRIPE_EP__COUNT), "other");
	ck_assert_str_eq(stripe_rejected_name(STRIPE_REJ_404), "404");
	ck_assert_str_eq(stripe_rejected_name(STRIPE_REJ_OTHER), "4xx");
}
END_TEST

/* Checkout Sessions of a guest: only this exact address, complete ones in the window, the
 * list ends at the first older one; wrong types read as nothing, never as a match. */
START_TEST(parse_checkout_sessions)
{
	static const char js[] = "{\"object\":\"list\",\"has_more\":true,\"data\":["
	    "{\"id\":\"cs_1\",\"created\":3000,\"status\":\"complete\",\"payment_status\":\"paid\","
	    "\"mode\":\"subscription\",\"amount_total\":2500,\"currency\":\"EUR\","
	    "\"customer_details\":{\"email\":\"g@x.test\"}},"
	    "{\"id\":\"cs_2\",\"created\":2900,\"status\":\"complete\",\"payment_status\":\"unpaid\","
	    "\"mode\":\"payment\",\"amount_total\":100,\"currency\":\"usd\","
	    "\"customer_details\":{\"email\":\"g@x.test\"}},"
	    "{\"id\":\"cs_3\",\"created\":2800,\"status\":\"expired\",\"payment_status\":\"paid\","
	    "\"amount_total\":999,\"currency\":\"usd\",\"customer_details\":{\"email\":\"g@x.test\"}},"
	    "{\"id\":\"cs_4\",\"created\":2700,\"status\":\"complete\",\"payment_status\":\"paid\","
	    "\"amount_total\":5,\"currency\":\"usd\",\"customer_details\":{\"email\":\"G@x.test\"}},"
	    "{\"id\":\"cs_5\",\"created\":2600,\"status\":\"complete\",\"payment_status\":\"paid\","
	    "\"amount_total\":null,\"currency\":null,\"customer_details\":{\"email\":\"g@x.test\"}},"
	    "{\"id\":\"cs_6\",\"created\":2500,\"status\":\"complete\",\"payment_status\":\"paid\","
	    "\"amount_total\":7,\"currency\":\"usd\",\"customer_details\":{\"email\":5}},"
	    "{\"id\":\"cs_7\",\"created\":2400,\"status\":\"complete\",\"customer_details\":null},"
	    "{\"id\":\"cs_old\",\"created\":1000,\"status\":\"complete\",\"payment_status\":\"paid\","
	    "\"amount_total\":7777,\"currency\":\"usd\",\"customer_details\":{\"email\":\"g@x.test\"}},"
	    "{\"id\":\"cs_after\",\"created\":2300,\"status\":\"complete\",\"payment_status\":\"paid\","
	    "\"amount_total\":8888,\"currency\":\"usd\",\"customer_details\":{\"email\":\"g@x.test\"}}]}";
	struct stripe_checkout co, other;
	bool more = false;
	char msg[128];

	memset(&co, 0, sizeof(co));
	ck_assert_int_eq(stripe_parse_sessions(js, strlen(js), "g@x.test", 2000, &co, &more, msg,
	    sizeof(msg)), 0);
	ck_assert(more);
	ck_assert_int_eq(co.sessions, 3);	/* cs_1, cs_2, cs_5 */
	ck_assert_int_eq(co.paid, 2);
	ck_assert_int_eq(co.subscriptions, 1);
	ck_assert_int_eq(co.ntotals, 1);	/* cs_5 has no currency: counted, no money */
	ck_assert_str_eq(co.totals[0].currency, "eur");
	ck_assert_int_eq(co.totals[0].amount, 2500);
	ck_assert(co.has_last);
	ck_assert_int_eq(co.last_created, 3000);
	ck_assert_str_eq(co.last_payment_status, "paid");
	ck_assert_str_eq(co.last_mode, "subscription");
	ck_assert(!co.truncated);	/* an older one ended the page: nothing more in the window */
	/* a full page still inside the window: truncated */
	memset(&other, 0, sizeof(other));
	ck_assert_int_eq(stripe_parse_sessions(js, strlen(js), "G@x.test", 0, &other, &more, msg,
	    sizeof(msg)), 0);
	ck_assert_int_eq(other.sessions, 1);
	ck_assert(other.truncated);
	stripe_checkout_merge(&co, &other);
	ck_assert_int_eq(co.sessions, 4);
	ck_assert_int_eq(co.paid, 3);
	ck_assert_int_eq(co.ntotals, 2);
	ck_assert_int_eq(co.last_created, 3000);	/* the newer last stays */
	ck_assert(co.truncated);
	/* not a list: malformed */
	ck_assert_int_eq(stripe_parse_sessions("{\"data\":{}}", 11, "g@x.test", 0, &co, &more, msg,
	    sizeof(msg)), -1);
	ck_assert_int_eq(stripe_parse_sessions("nope", 4, "g@x.test", 0, &co, &more, msg,
	    sizeof(msg)), -1);
}
END_TEST

/* ---- retry rules ---- */

START_TEST(retry_rules)
{
	ck_assert_int_eq(stripe_http_class(200), STRIPE_OK);
	ck_assert_int_eq(stripe_http_class(401), STRIPE_E_AUTH);
	ck_assert_int_eq(stripe_http_class(403), STRIPE_E_PERMISSION);
	ck_assert_int_eq(stripe_http_class(404), STRIPE_E_REQUEST);
	ck_assert_int_eq(stripe_http_class(400), STRIPE_E_REQUEST);
	ck_assert_int_eq(stripe_http_class(409), STRIPE_E_SERVER);
	ck_assert_int_eq(stripe_http_class(429), STRIPE_E_RATELIMIT);
	ck_assert_int_eq(stripe_http_class(503), STRIPE_E_SERVER);
	ck_assert(stripe_http_retryable(STRIPE_E_SERVER, 500, "", -1, false));
	ck_assert(stripe_http_retryable(STRIPE_E_SERVER, 409, "", -1, false));
	ck_assert(stripe_http_retryable(STRIPE_E_NETWORK, 0, "", -1, false));
	ck_assert(!stripe_http_retryable(STRIPE_E_SERVER, 500, "", 0, false));
	ck_assert(stripe_http_retryable(STRIPE_E_REQUEST, 400, "", 1, false));
	ck_assert(!stripe_http_retryable(STRIPE_E_REQUEST, 400, "", -1, false));
	ck_assert(!stripe_http_retryable(STRIPE_E_AUTH, 401, "", -1, false));
	ck_assert(!stripe_http_retryable(STRIPE_E_RATELIMIT, 429, "rate_limit", -1, false));
	/* Stripe-Should-Retry is consulted first: true retries even a 429 (issue #11) */
	ck_assert(stripe_http_retryable(STRIPE_E_RATELIMIT, 429, "rate_limit", 1, false));
	ck_assert(!stripe_http_retryable(STRIPE_E_RATELIMIT, 429, "lock_timeout", 0, true));
	/* a 429 lock_timeout is retried like stripe-go does */
	ck_assert(stripe_http_retryable(STRIPE_E_RATELIMIT, 429, "lock_timeout", -1, false));
	ck_assert(stripe_http_retryable(STRIPE_E_RATELIMIT, 429, "", -1, true));
	ck_assert(!stripe_http_retryable(STRIPE_E_RATELIMIT, 429, NULL, -1, false));
	ck_assert(!stripe_http_retryable(STRIPE_E_TIMEOUT, 0, "", 1, true));
	ck_assert(!stripe_http_retryable(STRIPE_E_MALFORMED, 200, "", 1, true));
	ck_assert(!stripe_http_retryable(STRIPE_OK, 200, "", 1, true));
	/* each attempt that may be retried gets half of what is left */
	ck_assert_int_eq(stripe_http_attempt_ms(4000, 0, 2), 2000);
	ck_assert_int_eq(stripe_http_attempt_ms(1900, 1, 2), 950);
	ck_assert_int_eq(stripe_http_attempt_ms(900, 2, 2), 900);
	ck_assert_int_eq(stripe_http_attempt_ms(900, 0, 0), 900);
	ck_assert_int_eq(stripe_http_attempt_ms(1, 0, 2), 1);
	ck_assert_int_eq(stripe_http_attempt_ms(0, 0, 2), 0);
	/* min(0.5 s * 2^(n-1), 5 s), jitter 50-100% */
	ck_assert_int_eq(stripe_http_backoff_ms(1, 500, 5000, 0.999999), 499);
	ck_assert_int_eq(stripe_http_backoff_ms(1, 500, 5000, 0.0), 250);
	ck_assert_int_eq(stripe_http_backoff_ms(2, 500, 5000, 0.0), 500);
	ck_assert_int_eq(stripe_http_backoff_ms(3, 500, 5000, 0.0), 1000);
	ck_assert_int_eq(stripe_http_backoff_ms(5, 500, 5000, 0.0), 2500);
	ck_assert_int_eq(stripe_http_backoff_ms(30, 500, 5000, 0.0), 2500);
}
END_TEST

START_TEST(url_encode_and_sanitise)
{
	char out[64];

	ck_assert_int_eq(stripe_url_encode("A+b@x.com", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "A%2Bb%40x.com");
	ck_assert_int_eq(stripe_url_encode("a&email=b c", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a%26email%3Db%20c");
	ck_assert_int_eq(stripe_url_encode("\xc3\xa9", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "%C3%A9");
	ck_assert_int_eq(stripe_url_encode("@@@@", out, 12), -1);
	ck_assert_int_eq(stripe_url_encode("@@@", out, 10), 0);
	stripe_sanitise_message("Invalid API Key provided: sk_live_abcdefgh1234\r\nX: y", out, sizeof(out));
	ck_assert_str_eq(out, "Invalid API Key provided: sk_live_***  X: y");
	stripe_sanitise_message("key 'rk_test_***...x1' lacks", out, sizeof(out));
	ck_assert_str_eq(out, "key 'rk_test_***' lacks");
	stripe_sanitise_message("desk_live_ is a word", out, sizeof(out));
	ck_assert_str_eq(out, "desk_live_ is a word");
}
END_TEST

/* ---- parsing hostile JSON ---- */

START_TEST(parse_customers_hostile)
{
	char keys[2][STRIPE_META_KEY_MAX + 1] = { "plan_tier", "absent" };
	struct stripe_customer c[4];
	char msg[160], last[STRIPE_ID_MAX];
	int n;
	const char *js = "{\"object\":\"list\",\"data\":["
	    "{\"id\":\"cus_A\",\"email\":\"a@x.com\",\"name\":\"Jenny\\r\\nX-Evil: 1\\u0000z\","
	    "\"created\":123,\"delinquent\":true,\"balance\":-500,\"currency\":\"USD\","
	    "\"livemode\":true,\"metadata\":{\"plan_tier\":\"gold\",\"other\":\"x\"}},"
	    "{\"id\":null,\"name\":\"skipped\"}, 42, \"str\","
	    "{\"id\":\"cus_B\",\"email\":7,\"name\":[1],\"created\":\"9\",\"delinquent\":\"yes\","
	    "\"balance\":1.5,\"currency\":\"toolong\",\"metadata\":[]},"
	    "{\"id\":\"cus_bad/../x\"},"
	    "{\"id\":\"cus_C\",\"created\":1e3,\"balance\":null,\"currency\":null,\"metadata\":{\"plan_tier\":5}}"
	    "],\"has_more\":false}";

	ck_assert_int_eq((n = 0, stripe_parse_customers(js, strlen(js), keys, 2, NULL, c, 4, &n, NULL, last, sizeof(last), NULL, 0, msg, sizeof(msg))), 0);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(c[0].id, "cus_A");
	ck_assert_str_eq(c[0].name, "Jenny  X-Evil: 1 z");
	ck_assert_int_eq(c[0].created, 123);
	ck_assert(c[0].delinquent);
	ck_assert(c[0].livemode);
	ck_assert_int_eq(c[0].balance.amount, -500);
	ck_assert_str_eq(c[0].balance.currency, "usd");
	ck_assert_int_eq(c[0].nmeta, 1);
	ck_assert_str_eq(c[0].meta[0].key, "plan_tier");
	ck_assert_str_eq(c[0].meta[0].value, "gold");
	ck_assert_str_eq(c[1].id, "cus_B");
	ck_assert_str_eq(c[1].email, "");
	ck_assert_str_eq(c[1].name, "");
	ck_assert_int_eq(c[1].created, 0);
	ck_assert(!c[1].delinquent);
	ck_assert_int_eq(c[1].balance.amount, 0);
	ck_assert_str_eq(c[1].balance.currency, "");
	ck_assert_int_eq(c[1].nmeta, 0);
	ck_assert_str_eq(c[2].id, "cus_C");
	ck_assert_int_eq(c[2].created, 0);
	ck_assert_int_eq(c[2].nmeta, 0);
}
END_TEST

START_TEST(parse_rejects_wrong_shapes)
{
	static const char *bad[] = {
		"", "not json", "[]", "{}", "{\"data\":{}}", "{\"data\":null}", "{\"data\":[",
		"{\"error\":{\"message\":\"x\"}}", "\"data\"", "null",
	};
	struct stripe_customer c[2];
	struct stripe_subscription s[2];
	struct stripe_charges ch;
	struct stripe_product p[2];
	char msg[160], last[STRIPE_ID_MAX];
	bool more;
	size_t i;
	int n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&ch, 0, sizeof(ch));
		ck_assert_int_eq((n = 0, stripe_parse_customers(bad[i], strlen(bad[i]), NULL, 0, NULL, c, 2, &n, &more, last, sizeof(last), NULL, 0, msg, sizeof(msg))), -1);
		ck_assert_int_eq((n = 0, stripe_parse_subscriptions(bad[i], strlen(bad[i]), s, 2, &n, &more, msg, sizeof(msg))), -1);
		ck_assert_int_eq(stripe_parse_charges(bad[i], strlen(bad[i]), NULL, 0, &ch, 10, &more, last, sizeof(last), msg, sizeof(msg)), -1);
		ck_assert_int_eq(stripe_parse_products(bad[i], strlen(bad[i]), p, 2, &n, msg, sizeof(msg)), -1);
		ck_assert_int_eq(ch.count, 0);
	}
	ck_assert_int_eq(stripe_parse_customers(NULL, 0, NULL, 0, NULL, c, 2, &n, &more, last, sizeof(last), NULL, 0, msg, sizeof(msg)), -1);
}
END_TEST

START_TEST(parse_deep_nesting_and_huge_strings)
{
	struct sm_buf b;
	struct stripe_customer c[1];
	char msg[160], last[STRIPE_ID_MAX];
	int i, n;

	/* 100000 levels of nesting inside a customer: jansson refuses, we say malformed. */
	sm_buf_init(&b, 1u << 22);
	sm_buf_printf(&b, "{\"data\":[{\"id\":\"cus_D\",\"metadata\":");
	for (i = 0; i < 100000; i++)
		sm_buf_append(&b, "[", 1);
	for (i = 0; i < 100000; i++)
		sm_buf_append(&b, "]", 1);
	sm_buf_printf(&b, "}]}");
	ck_assert_int_eq((n = 0, stripe_parse_customers(b.data, b.len, NULL, 0, NULL, c, 1, &n, NULL, last, sizeof(last), NULL, 0, msg, sizeof(msg))), -1);
	/* A 1 MB name of 3-byte characters is cut at a character boundary. */
	sm_buf_reset(&b);
	sm_buf_printf(&b, "{\"data\":[{\"id\":\"cus_E\",\"name\":\"");
	for (i = 0; i < 350000; i++)
		sm_buf_append(&b, "\xe2\x82\xac", 3);
	sm_buf_printf(&b, "\"}]}");
	ck_assert_int_eq((n = 0, stripe_parse_customers(b.data, b.len, NULL, 0, NULL, c, 1, &n, NULL, last, sizeof(last), NULL, 0, msg, sizeof(msg))), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(strlen(c[0].name), 255);	/* 85 euro signs */
	ck_assert_int_eq(memcmp(c[0].name + 252, "\xe2\x82\xac", 3), 0);
	sm_buf_free(&b);
}
END_TEST

START_TEST(copy_text_utf8_boundary)
{
	char out[5];

	stripe_copy_text(out, sizeof(out), "ab\xc3\xa9z", 5);	/* "abéz" is 5 bytes: cut */
	ck_assert_str_eq(out, "ab\xc3\xa9");
	stripe_copy_text(out, sizeof(out), "abc\xc3\xa9", 5);	/* é would straddle: dropped */
	ck_assert_str_eq(out, "abc");
	stripe_copy_text(out, sizeof(out), "\xf0\x9f\x98\x80!", 5);	/* 4-byte emoji fits */
	ck_assert_str_eq(out, "\xf0\x9f\x98\x80");
	stripe_copy_text(out, sizeof(out), "a\tb\x7f", 4);
	ck_assert_str_eq(out, "a b ");
	stripe_copy_text(out, sizeof(out), NULL, 3);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(parse_subscriptions_both_period_places)
{
	const char *js = "{\"object\":\"list\",\"has_more\":true,\"data\":["
	    /* basil: period on the item, price with product id and recurring */
	    "{\"id\":\"sub_1\",\"status\":\"active\",\"created\":10,\"cancel_at_period_end\":true,"
	    "\"cancel_at\":500,\"trial_end\":null,\"items\":{\"data\":[{\"quantity\":3,"
	    "\"current_period_end\":1700,\"price\":{\"id\":\"price_1\",\"product\":\"prod_1\","
	    "\"nickname\":\"Nick\",\"unit_amount\":4900,\"currency\":\"usd\","
	    "\"recurring\":{\"interval\":\"month\",\"interval_count\":1}}},{\"quantity\":1}]}},"
	    /* pre-basil: period on the subscription, legacy plan, expanded product */
	    "{\"id\":\"sub_2\",\"status\":\"weird_new\",\"current_period_end\":1800,"
	    "\"items\":{\"data\":[{\"plan\":{\"id\":\"plan_2\",\"amount\":1500,\"currency\":\"kwd\","
	    "\"interval\":\"year\",\"interval_count\":2,\"product\":{\"id\":\"prod_2\",\"name\":\"Gold\"}}}]}},"
	    /* hostile: items not a list, price one-off with null amount */
	    "{\"id\":\"sub_3\",\"status\":\"canceled\",\"items\":\"x\"},"
	    "{\"id\":\"sub_4\",\"status\":7,\"items\":{\"data\":[{\"price\":{\"unit_amount\":null,"
	    "\"recurring\":null,\"currency\":\"jpy\",\"product\":\"prod with space\"}}]}}"
	    "]}";
	struct stripe_subscription s[8];
	char msg[160];
	bool more = false;
	int n;

	ck_assert_int_eq((n = 0, stripe_parse_subscriptions(js, strlen(js), s, 8, &n, &more, msg, sizeof(msg))), 0);
	ck_assert_int_eq(n, 4);
	ck_assert(more);
	ck_assert_int_eq(s[0].status, STRIPE_SUB_ACTIVE);
	ck_assert(s[0].cancel_at_period_end);
	ck_assert_int_eq(s[0].cancel_at, 500);
	ck_assert_int_eq(s[0].trial_end, 0);
	ck_assert_int_eq(s[0].period_end, 1700);
	ck_assert_int_eq(s[0].item_count, 2);
	ck_assert_int_eq(s[0].quantity, 3);
	ck_assert_str_eq(s[0].price_id, "price_1");
	ck_assert_str_eq(s[0].product_id, "prod_1");
	ck_assert_str_eq(s[0].plan, "Nick");
	ck_assert_int_eq(s[0].unit_amount.amount, 4900);
	ck_assert_str_eq(s[0].interval, "month");
	ck_assert_int_eq(s[0].interval_count, 1);
	ck_assert_int_eq(s[1].status, STRIPE_SUB_UNKNOWN);
	ck_assert_int_eq(s[1].period_end, 1800);
	ck_assert_str_eq(s[1].product_id, "prod_2");
	ck_assert_str_eq(s[1].plan, "Gold");
	ck_assert_int_eq(s[1].unit_amount.amount, 1500);
	ck_assert_str_eq(s[1].unit_amount.currency, "kwd");
	ck_assert_str_eq(s[1].interval, "year");
	ck_assert_int_eq(s[1].interval_count, 2);
	ck_assert_int_eq(s[2].status, STRIPE_SUB_CANCELED);
	ck_assert_int_eq(s[2].item_count, 0);
	ck_assert_int_eq(s[3].status, STRIPE_SUB_UNKNOWN);
	ck_assert_str_eq(s[3].interval, "");
	ck_assert_str_eq(s[3].product_id, "");
	ck_assert_int_eq(s[3].unit_amount.amount, 0);
}
END_TEST

START_TEST(parse_charges_every_kind)
{
	const char *js = "{\"object\":\"list\",\"has_more\":true,\"data\":["
	    "{\"id\":\"ch_1\",\"status\":\"succeeded\",\"amount\":1000,\"amount_captured\":1000,"
	    "\"currency\":\"usd\",\"created\":50},"
	    "{\"id\":\"ch_2\",\"status\":\"failed\",\"amount\":2000,\"currency\":\"usd\",\"created\":90,"
	    "\"failure_code\":\"card_declined\"},"
	    "{\"id\":\"ch_3\",\"status\":\"pending\",\"amount\":300,\"currency\":\"eur\",\"created\":40},"
	    "{\"id\":\"ch_4\",\"status\":\"succeeded\",\"amount\":500,\"amount_refunded\":500,\"amount_captured\":500,"
	    "\"refunded\":true,\"currency\":\"usd\",\"created\":30},"
	    "{\"id\":\"ch_5\",\"status\":\"succeeded\",\"amount\":800,\"amount_refunded\":300,\"amount_captured\":800,"
	    "\"currency\":\"usd\",\"created\":20,\"disputed\":true},"
	    "{\"id\":\"ch_6\",\"status\":\"succeeded\",\"amount\":1200,\"amount_captured\":1200,\"currency\":\"jpy\",\"created\":10},"
	    /* an authorisation not captured: succeeded, but no money moved */
	    "{\"id\":\"ch_8\",\"status\":\"succeeded\",\"amount\":9900,\"amount_captured\":0,\"captured\":false,\"currency\":\"usd\",\"created\":6},"
	    "{\"id\":\"ch_7\",\"status\":\"succeeded\",\"amount\":\"lots\",\"currency\":5,\"created\":5}"
	    "]}";
	struct stripe_charges ch;
	char msg[160], last[STRIPE_ID_MAX];
	bool more = false;

	memset(&ch, 0, sizeof(ch));
	ck_assert_int_eq(stripe_parse_charges(js, strlen(js), NULL, 0, &ch, 100, &more, last, sizeof(last), msg, sizeof(msg)), 0);
	ck_assert(more);
	ck_assert_str_eq(last, "ch_7");
	ck_assert_int_eq(ch.count, 8);
	ck_assert_int_eq(ch.succeeded, 6);
	ck_assert_int_eq(ch.failed, 1);
	ck_assert_int_eq(ch.pending, 1);
	ck_assert_int_eq(ch.refunded, 1);
	ck_assert_int_eq(ch.partially_refunded, 1);
	ck_assert_int_eq(ch.disputed, 1);
	ck_assert_int_eq(ch.ntotals, 2);
	ck_assert_str_eq(ch.totals[0].currency, "usd");
	ck_assert_int_eq(ch.totals[0].amount, 1000 + 0 + 500);
	ck_assert_str_eq(ch.totals[1].currency, "jpy");
	ck_assert_int_eq(ch.totals[1].amount, 1200);
	ck_assert(ch.has_last);
	ck_assert_int_eq(ch.last_created, 90);
	ck_assert_str_eq(ch.last_status, "failed");
	ck_assert_int_eq(ch.last_amount.amount, 2000);
	ck_assert_str_eq(ch.last_failure_code, "card_declined");
	/* The cap: a second page with max already reached is truncated. */
	ck_assert_int_eq(stripe_parse_charges(js, strlen(js), NULL, 0, &ch, 9, &more, last, sizeof(last), msg, sizeof(msg)), 0);
	ck_assert_int_eq(ch.count, 9);
	ck_assert(ch.truncated);
}
END_TEST

START_TEST(parse_products_and_errors)
{
	const char *js = "{\"data\":[{\"id\":\"prod_1\",\"name\":\"Pro \\u00e9\"},{\"id\":\"prod_2\",\"name\":null},{\"name\":\"x\"}]}";
	const char *err403 = "{\"error\":{\"type\":\"invalid_request_error\",\"message\":\"The provided "
	    "key 'rk_test_***abcd' does not have the required permissions for this endpoint on "
	    "account 'acct_1'. Having the 'rak_charge_read' permission would allow this request "
	    "to continue.\"}}";
	struct stripe_product p[4];
	char msg[256], perm[STRIPE_CODE_MAX], code[STRIPE_CODE_MAX];
	int n;

	ck_assert_int_eq(stripe_parse_products(js, strlen(js), p, 4, &n, msg, sizeof(msg)), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(p[0].name, "Pro \xc3\xa9");
	ck_assert_str_eq(p[1].name, "");
	stripe_parse_error(err403, strlen(err403), msg, sizeof(msg), perm, sizeof(perm), code, sizeof(code));
	ck_assert_str_eq(perm, "rak_charge_read");
	ck_assert_ptr_nonnull(strstr(msg, "rk_test_***"));
	stripe_parse_error("garbage", 7, msg, sizeof(msg), perm, sizeof(perm), code, sizeof(code));
	ck_assert_str_eq(msg, "");
	ck_assert_str_eq(perm, "");
	{
		const char *two = "{\"error\":{\"message\":\"rak_ alone and rak_x\"}}";

		stripe_parse_error(two, strlen(two), msg, sizeof(msg), perm, sizeof(perm), code, sizeof(code));
	}
	ck_assert_str_eq(perm, "rak_x");
}
END_TEST

/* ---- choice and ranking ---- */

static struct stripe_customer cust(const char *id, int64_t created, enum stripe_sub_status best)
{
	struct stripe_customer c;

	memset(&c, 0, sizeof(c));
	sm_strlcpy(c.id, id, sizeof(c.id));
	c.created = created;
	c.best = best;
	return c;
}

START_TEST(choose_among_customers)
{
	struct stripe_customer c[5];

	memset(c, 0, sizeof(c));
	ck_assert_int_eq(stripe_choose_customer(c, 0), -1);
	c[0] = cust("cus_new", 300, STRIPE_SUB_NONE);
	c[1] = cust("cus_pd", 200, STRIPE_SUB_PAST_DUE);
	c[2] = cust("cus_old", 100, STRIPE_SUB_CANCELED);
	ck_assert_int_eq(stripe_choose_customer(c, 3), 1);	/* past_due beats newest */
	c[3] = cust("cus_trial", 50, STRIPE_SUB_TRIALING);
	ck_assert_int_eq(stripe_choose_customer(c, 4), 3);	/* trialing beats past_due */
	c[4] = cust("cus_act", 40, STRIPE_SUB_ACTIVE);
	ck_assert_int_eq(stripe_choose_customer(c, 5), 3);	/* active = trialing: newer wins */
	c[0] = cust("cus_b", 300, STRIPE_SUB_NONE);
	c[1] = cust("cus_a", 300, STRIPE_SUB_CANCELED);
	ck_assert_int_eq(stripe_choose_customer(c, 2), 1);	/* tie: smallest id */
	c[0] = cust("cus_a", 100, STRIPE_SUB_UNPAID);
	c[1] = cust("cus_b", 200, STRIPE_SUB_INCOMPLETE);
	ck_assert_int_eq(stripe_choose_customer(c, 2), 1);	/* neither ranks: newest */
}
END_TEST

/* Customers of two accounts compare in the same order as customers of one. */
static void summ(struct stripe_summary *s, const char *id, int64_t created, enum stripe_sub_status st)
{
	memset(s, 0, sizeof(*s));
	s->found = true;
	sm_strlcpy(s->customer_id, id, sizeof(s->customer_id));
	s->created = created;
	if (st != STRIPE_SUB_NONE) {
		s->subs_by_status[st] = 1;
		s->nsubs = 1;
		s->subs[0].status = st;
	}
}

START_TEST(summary_cmp_is_the_choice_order)
{
	static const struct { const char *id; int64_t created; enum stripe_sub_status st; } v[] = {
		{ "cus_new", 300, STRIPE_SUB_NONE }, { "cus_pd", 200, STRIPE_SUB_PAST_DUE },
		{ "cus_old", 100, STRIPE_SUB_CANCELED }, { "cus_trial", 50, STRIPE_SUB_TRIALING },
		{ "cus_act", 40, STRIPE_SUB_ACTIVE }, { "cus_b", 300, STRIPE_SUB_UNPAID },
		{ "cus_a", 300, STRIPE_SUB_INCOMPLETE },
	};
	struct stripe_customer c[2];
	struct stripe_summary a, b;
	size_t i, j;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		for (j = 0; j < sizeof(v) / sizeof(v[0]); j++) {
			summ(&a, v[i].id, v[i].created, v[i].st);
			summ(&b, v[j].id, v[j].created, v[j].st);
			c[0] = cust(v[i].id, v[i].created, v[i].st);
			c[1] = cust(v[j].id, v[j].created, v[j].st);
			ck_assert_int_eq(stripe_summary_cmp(&a, &b) <= 0, stripe_choose_customer(c, 2) == 0);
			ck_assert_int_eq(stripe_summary_cmp(&a, &b) == 0, i == j);
		}
	summ(&a, "cus_x", 1, STRIPE_SUB_NONE);
	ck_assert_int_eq(stripe_summary_best_status(&a), STRIPE_SUB_NONE);
	a.subs_by_status[STRIPE_SUB_CANCELED] = 2;
	a.subs_by_status[STRIPE_SUB_PAST_DUE] = 1;
	ck_assert_int_eq(stripe_summary_best_status(&a), STRIPE_SUB_PAST_DUE);
}
END_TEST

START_TEST(subs_ranking_and_summary)
{
	static const enum stripe_sub_status st[] = {
		STRIPE_SUB_CANCELED, STRIPE_SUB_PAUSED, STRIPE_SUB_ACTIVE, STRIPE_SUB_INCOMPLETE,
		STRIPE_SUB_UNPAID, STRIPE_SUB_PAST_DUE, STRIPE_SUB_TRIALING, STRIPE_SUB_ACTIVE,
		STRIPE_SUB_INCOMPLETE_EXPIRED, STRIPE_SUB_UNKNOWN
	};
	struct stripe_subscription subs[10];
	struct stripe_summary s;
	int i;

	memset(subs, 0, sizeof(subs));
	memset(&s, 0, sizeof(s));
	for (i = 0; i < 10; i++) {
		snprintf(subs[i].id, sizeof(subs[i].id), "sub_%d", i);
		subs[i].status = st[i];
		subs[i].created = 1000 + i;
	}
	stripe_subs_summarise(&s, subs, 10);
	ck_assert_int_eq(s.subs_total, 10);
	ck_assert_int_eq(s.nsubs, STRIPE_SUBS_MAX);
	ck_assert_str_eq(s.subs[0].id, "sub_7");	/* the newer active one */
	ck_assert_str_eq(s.subs[1].id, "sub_2");
	ck_assert_int_eq(s.subs[2].status, STRIPE_SUB_TRIALING);
	ck_assert_int_eq(s.subs[3].status, STRIPE_SUB_PAST_DUE);
	ck_assert_int_eq(s.subs_by_status[STRIPE_SUB_ACTIVE], 2);
	ck_assert_int_eq(s.subs_by_status[STRIPE_SUB_CANCELED], 1);
	ck_assert_int_eq(s.subs_by_status[STRIPE_SUB_UNKNOWN], 1);
	ck_assert_int_eq(s.subs_by_status[STRIPE_SUB_NONE], 0);
}
END_TEST

/* ---- issue #11: ids, prices, money, invoices, search ---- */

START_TEST(ids_with_dash_up_to_255)
{
	char id255[300], id256[300], js[1200], msg[160], last[STRIPE_ID_MAX];
	struct stripe_customer c[4];
	int n = 0;

	memset(id255, 'a', 255);
	id255[255] = '\0';
	memcpy(id255, "cus-", 4);
	memset(id256, 'b', 256);
	id256[256] = '\0';
	ck_assert(stripe_id_ok("cus-legacy", 10));
	ck_assert(stripe_id_ok("gold-plan", 9));
	ck_assert(stripe_id_ok(id255, 255));
	ck_assert(!stripe_id_ok(id256, 256));
	ck_assert(!stripe_id_ok("cus/x", 5));
	ck_assert(!stripe_id_ok("cus x", 5));
	ck_assert(!stripe_id_ok("", 0));
	snprintf(js, sizeof(js), "{\"data\":[{\"id\":\"cus-legacy\"},{\"id\":\"%s\"},{\"id\":\"%s\"},"
	    "{\"id\":\"cus_%%2F\"}]}", id255, id256);
	ck_assert_int_eq(stripe_parse_customers(js, strlen(js), NULL, 0, NULL, c, 4, &n, NULL, last,
	    sizeof(last), NULL, 0, msg, sizeof(msg)), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(c[0].id, "cus-legacy");
	ck_assert_str_eq(c[1].id, id255);
	/* ids go into URLs percent-encoded; '-' stays as it is */
	ck_assert_int_eq(stripe_url_encode("gold-plan", js, sizeof(js)), 0);
	ck_assert_str_eq(js, "gold-plan");
}
END_TEST

START_TEST(prices_tiered_metered_decimal_legacy)
{
	const char *js = "{\"data\":["
	    "{\"id\":\"sub_t\",\"status\":\"active\",\"items\":{\"data\":[{\"price\":{\"id\":\"price_t\","
	    "\"billing_scheme\":\"tiered\",\"tiers_mode\":\"graduated\",\"unit_amount\":null,"
	    "\"unit_amount_decimal\":null,\"currency\":\"usd\",\"product\":\"gold-plan\","
	    "\"recurring\":{\"interval\":\"month\",\"interval_count\":1,\"usage_type\":\"licensed\"}}}]}},"
	    "{\"id\":\"sub_m\",\"status\":\"active\",\"items\":{\"data\":[{\"price\":{\"id\":\"price_m\","
	    "\"billing_scheme\":\"per_unit\",\"unit_amount\":10,\"currency\":\"eur\","
	    "\"recurring\":{\"interval\":\"month\",\"usage_type\":\"metered\"}}}]}},"
	    "{\"id\":\"sub_d\",\"status\":\"active\",\"items\":{\"data\":[{\"price\":{\"id\":\"price_d\","
	    "\"billing_scheme\":\"per_unit\",\"unit_amount\":null,\"unit_amount_decimal\":\"0.5\","
	    "\"currency\":\"usd\",\"recurring\":{\"interval\":\"month\"}}}]}},"
	    "{\"id\":\"sub_bad\",\"status\":\"active\",\"items\":{\"data\":[{\"price\":{"
	    "\"unit_amount_decimal\":\"1e5\",\"currency\":\"usd\"}}]}},"
	    "{\"id\":\"sub_legacy\",\"status\":\"active\",\"items\":{\"data\":[{\"plan\":{"
	    "\"id\":\"gold-monthly\",\"nickname\":\"Gold (legacy)\",\"amount\":null,"
	    "\"amount_decimal\":\"1999.5\",\"currency\":\"usd\",\"interval\":\"month\","
	    "\"interval_count\":1,\"billing_scheme\":\"per_unit\",\"usage_type\":\"licensed\"}}]}},"
	    "{\"id\":\"sub_nick\",\"status\":\"active\",\"items\":{\"data\":[{\"price\":{\"id\":\"p\","
	    "\"unit_amount\":100,\"currency\":\"usd\",\"nickname\":null},\"plan\":{\"nickname\":\"Old name\"}}]}}"
	    "]}";
	struct stripe_subscription s[8];
	char msg[160], out[64];
	bool more;
	int n = 0;

	ck_assert_int_eq(stripe_parse_subscriptions(js, strlen(js), s, 8, &n, &more, msg, sizeof(msg)), 0);
	ck_assert_int_eq(n, 6);
	ck_assert_int_eq(s[0].amount_kind, STRIPE_AMOUNT_TIERED);
	ck_assert_str_eq(s[0].product_id, "gold-plan");
	ck_assert_str_eq(s[0].unit_amount.currency, "usd");
	ck_assert_int_eq(s[1].amount_kind, STRIPE_AMOUNT_METERED);
	ck_assert_int_eq(s[1].unit_amount.amount, 10);
	ck_assert_int_eq(s[2].amount_kind, STRIPE_AMOUNT_DECIMAL);
	ck_assert_str_eq(s[2].amount_decimal, "0.5");
	ck_assert_int_eq(s[3].amount_kind, STRIPE_AMOUNT_UNKNOWN);
	ck_assert_str_eq(s[3].amount_decimal, "");
	ck_assert_int_eq(s[4].amount_kind, STRIPE_AMOUNT_DECIMAL);
	ck_assert_str_eq(s[4].amount_decimal, "1999.5");
	ck_assert_str_eq(s[4].plan, "Gold (legacy)");
	ck_assert_str_eq(s[4].price_id, "gold-monthly");
	ck_assert_str_eq(s[4].interval, "month");
	ck_assert_str_eq(s[5].plan, "Old name");
	ck_assert_int_eq(s[5].amount_kind, STRIPE_AMOUNT_FIXED);
	/* decimal minor units formatted by the currency's exponent */
	ck_assert_int_eq(stripe_money_format_decimal("0.5", "usd", out, sizeof(out)), 9);
	ck_assert_str_eq(out, "0.005 USD");
	stripe_money_format_decimal("1999.5", "usd", out, sizeof(out));
	ck_assert_str_eq(out, "19.995 USD");
	stripe_money_format_decimal("2000", "usd", out, sizeof(out));
	ck_assert_str_eq(out, "20.00 USD");
	stripe_money_format_decimal("12.25", "jpy", out, sizeof(out));
	ck_assert_str_eq(out, "12.25 JPY");
	stripe_money_format_decimal("1500.0001", "kwd", out, sizeof(out));
	ck_assert_str_eq(out, "1.5000001 KWD");
	stripe_money_format_decimal("000.50", "usd", out, sizeof(out));
	ck_assert_str_eq(out, "0.005 USD");
	ck_assert_int_eq(stripe_money_format_decimal("1e5", "usd", out, sizeof(out)), -1);
	ck_assert_int_eq(stripe_money_format_decimal(".5", "usd", out, sizeof(out)), -1);
	ck_assert_int_eq(stripe_money_format_decimal("5.", "usd", out, sizeof(out)), -1);
	ck_assert_int_eq(stripe_money_format_decimal("", "usd", out, sizeof(out)), -1);
	ck_assert_int_eq(stripe_money_format_decimal("1.5", "usd", out, 4), -1);
	/* UGX: two decimals in the API (500 = 5 UGX), ISK too */
	stripe_money_format(500, "ugx", out, sizeof(out));
	ck_assert_str_eq(out, "5.00 UGX");
	stripe_money_format(4000, "isk", out, sizeof(out));
	ck_assert_str_eq(out, "40.00 ISK");
	ck_assert_int_eq(stripe_amount_kind_parse("tiered"), STRIPE_AMOUNT_TIERED);
	ck_assert_int_eq(stripe_amount_kind_parse("nonsense"), STRIPE_AMOUNT_UNKNOWN);
	ck_assert_str_eq(stripe_amount_kind_name(STRIPE_AMOUNT_METERED), "metered");
	ck_assert_str_eq(stripe_found_by_name(STRIPE_BY_GUEST), "guest");
	ck_assert_str_eq(stripe_part_permission(STRIPE_PART_INVOICES), "rak_invoice_read");
	ck_assert_str_eq(stripe_part_name(STRIPE_PART_INVOICES), "invoices");
}
END_TEST

START_TEST(parse_open_invoices)
{
	const char *js = "{\"data\":["
	    "{\"id\":\"in_new\",\"status\":\"open\",\"amount_remaining\":1000,\"currency\":\"usd\","
	    "\"attempt_count\":0,\"created\":300,\"due_date\":null,\"next_payment_attempt\":5000},"
	    "{\"id\":\"in_failed\",\"status\":\"open\",\"amount_remaining\":4900,\"currency\":\"usd\","
	    "\"attempt_count\":2,\"created\":200,\"next_payment_attempt\":1764633600,"
	    "\"hosted_invoice_url\":\"https://invoice.stripe.com/i/acct_1/x\"},"
	    "{\"id\":\"in_late\",\"status\":\"open\",\"amount_remaining\":300,\"currency\":\"eur\","
	    "\"attempt_count\":0,\"created\":100,\"due_date\":900},"
	    "{\"id\":\"in_paid\",\"status\":\"paid\",\"amount_remaining\":0,\"currency\":\"usd\"},"
	    "{\"id\":\"in_evil\",\"status\":\"open\",\"amount_remaining\":1,\"currency\":\"usd\","
	    "\"attempt_count\":1,\"created\":400,\"hosted_invoice_url\":\"javascript:x\"}]}";
	struct stripe_invoices inv;
	char msg[160];
	bool more = true;

	memset(&inv, 0, sizeof(inv));
	ck_assert_int_eq(stripe_parse_invoices(js, strlen(js), 1000, &inv, &more, msg, sizeof(msg)), 0);
	ck_assert(inv.checked);
	ck_assert(!more);
	ck_assert_int_eq(inv.open, 4);
	ck_assert_int_eq(inv.past_due, 3);	/* two with attempts, one past its due date */
	ck_assert_int_eq(inv.ndue, 2);
	ck_assert_int_eq(inv.due[0].amount, 1000 + 4900 + 1);
	ck_assert_str_eq(inv.due[1].currency, "eur");
	ck_assert_str_eq(inv.id, "in_failed");	/* oldest with a failed attempt */
	ck_assert_int_eq(inv.amount_remaining.amount, 4900);
	ck_assert_int_eq(inv.attempts, 2);
	ck_assert_int_eq(inv.next_attempt, 1764633600);
	ck_assert_str_eq(inv.url, "https://invoice.stripe.com/i/acct_1/x");
	ck_assert_int_eq(stripe_parse_invoices("{}", 2, 0, &inv, &more, msg, sizeof(msg)), -1);
}
END_TEST

START_TEST(search_escape_and_filter)
{
	char out[64], last[STRIPE_ID_MAX], page[64], msg[160];
	struct stripe_customer c[4];
	bool more = false;
	int n = 0;
	const char *js = "{\"object\":\"search_result\",\"has_more\":true,\"next_page\":\"pg2\",\"data\":["
	    "{\"id\":\"cus_1\",\"email\":\"Some.One@Example.COM\"},"
	    "{\"id\":\"cus_2\",\"email\":\"some.one@example.com.evil\"},"
	    "{\"id\":\"cus_3\",\"email\":\"one@example.com\"},"
	    "{\"id\":\"cus_4\",\"email\":\"SOME.ONE@EXAMPLE.COM\",\"subscriptions\":{\"object\":\"list\","
	    "\"has_more\":false,\"data\":[{\"id\":\"sub_x\",\"status\":\"past_due\"},"
	    "{\"id\":\"sub_y\",\"status\":\"active\"}]}}]}";

	ck_assert_int_eq(stripe_search_escape("o'brien\\x@y", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "o\\'brien\\\\x@y");
	ck_assert_int_eq(stripe_search_escape("\x27\x27\x27\x27", out, 8), -1);
	ck_assert_int_eq(stripe_parse_customers(js, strlen(js), NULL, 0, "some.one@example.com", c, 4,
	    &n, &more, last, sizeof(last), page, sizeof(page), msg, sizeof(msg)), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(c[0].id, "cus_1");
	ck_assert_str_eq(c[1].id, "cus_4");
	ck_assert(more);
	ck_assert_str_eq(page, "pg2");
	ck_assert_str_eq(last, "cus_4");
	ck_assert_ptr_null(c[0].subs);
	ck_assert_ptr_nonnull(c[1].subs);
	ck_assert_int_eq(c[1].best, STRIPE_SUB_ACTIVE);
	stripe_customers_release(c, n);
	ck_assert_ptr_null(c[1].subs);
}
END_TEST

/* ---- client config ---- */

START_TEST(client_config_checks)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	char err[256];
	static const char *bad_urls[] = {
		"http://api.stripe.com", "ftp://127.0.0.1", "http://127.0.0.1.evil.com",
		"http://localhostx:1", "https://x/?a=b", "file:///etc/passwd",
	};
	static const char *good_urls[] = {
		"https://api.stripe.com", "http://127.0.0.1:4010", "http://localhost", "http://[::1]:9/",
	};
	size_t i;

	memset(&cfg, 0, sizeof(cfg));
	cfg.max_retries = -1;
	cfg.api_key = "pk_live_abcdefghijklmnop";
	ck_assert_ptr_null(stripe_client_new(&cfg, err, sizeof(err)));
	ck_assert_ptr_null(strstr(err, "abcdefgh"));
	cfg.api_key = "sk_test_abcdefghijklmnop";
	for (i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		cfg.base_url = bad_urls[i];
		ck_assert_msg(stripe_client_new(&cfg, err, sizeof(err)) == NULL, "accepted %s", bad_urls[i]);
	}
	for (i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++) {
		cfg.base_url = good_urls[i];
		c = stripe_client_new(&cfg, err, sizeof(err));
		ck_assert_msg(c != NULL, "refused %s: %s", good_urls[i], err);
		stripe_client_free(c);
	}
	cfg.base_url = NULL;
	cfg.account = "not_an_account";
	ck_assert_ptr_null(stripe_client_new(&cfg, err, sizeof(err)));
	cfg.account = "acct_123";
	cfg.api_version = "2024-01-01\r\nX-Evil: 1";
	ck_assert_ptr_null(stripe_client_new(&cfg, err, sizeof(err)));
	cfg.api_version = NULL;
	cfg.nmetadata_keys = STRIPE_META_MAX + 1;
	ck_assert_ptr_null(stripe_client_new(&cfg, err, sizeof(err)));
	cfg.nmetadata_keys = 0;
	c = stripe_client_new(&cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	stripe_client_free(c);
	stripe_client_free(NULL);
}
END_TEST

START_TEST(lookup_rejects_bad_address_without_requests)
{
	struct stripe_config cfg;
	struct stripe_client *c;
	struct stripe_summary s;
	struct stripe_result r;
	char err[256], big[600];

	memset(&cfg, 0, sizeof(cfg));
	cfg.max_retries = -1;
	cfg.api_key = "sk_test_abcdefghijklmnop";
	cfg.base_url = "http://127.0.0.1:1";
	c = stripe_client_new(&cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(stripe_lookup(c, "", sm_now_ms() + 1000, &s, &r), STRIPE_E_REQUEST);
	ck_assert_int_eq(stripe_lookup(c, "a\r\nb@x", sm_now_ms() + 1000, &s, &r), STRIPE_E_REQUEST);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(stripe_lookup(c, big, sm_now_ms() + 1000, &s, &r), STRIPE_E_REQUEST);
	ck_assert_int_eq(r.requests, 0);
	/* Nothing listens on port 1: a network error, fast. */
	ck_assert_int_eq(stripe_lookup(c, "a@x.com", sm_now_ms() + 2000, &s, &r), STRIPE_E_NETWORK);
	ck_assert(!s.found);
	ck_assert_int_ge(r.requests, 1);
	stripe_client_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stripe-unit");
	TCase *tc = tcase_create("unit");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, money_by_exponent);
	tcase_add_test(tc, money_buffer_too_small);
	tcase_add_test(tc, key_check_and_mask);
	tcase_add_test(tc, key_load_file_rules);
	tcase_add_test(tc, key_load_inline_and_env);
	tcase_add_test(tc, names_and_ranks);
	tcase_add_test(tc, retry_rules);
	tcase_add_test(tc, url_encode_and_sanitise);
	tcase_add_test(tc, parse_customers_hostile);
	tcase_add_test(tc, parse_rejects_wrong_shapes);
	tcase_add_test(tc, parse_deep_nesting_and_huge_strings);
	tcase_add_test(tc, copy_text_utf8_boundary);
	tcase_add_test(tc, parse_subscriptions_both_period_places);
	tcase_add_test(tc, parse_charges_every_kind);
	tcase_add_test(tc, parse_products_and_errors);
	tcase_add_test(tc, choose_among_customers);
	tcase_add_test(tc, summary_cmp_is_the_choice_order);
	tcase_add_test(tc, subs_ranking_and_summary);
	tcase_add_test(tc, client_config_checks);
	tcase_add_test(tc, lookup_rejects_bad_address_without_requests);
	tcase_add_test(tc, ids_with_dash_up_to_255);
	tcase_add_test(tc, prices_tiered_metered_decimal_legacy);
	tcase_add_test(tc, parse_open_invoices);
	tcase_add_test(tc, parse_checkout_sessions);
	tcase_add_test(tc, search_escape_and_filter);
	suite_add_tcase(s, tc);
	{
		int rc = th_run(s);

		curl_global_cleanup();
		return rc;
	}
}
