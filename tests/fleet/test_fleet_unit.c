/*
 * test_fleet_unit.c - unit tests of fleet/ that need no server: Stripe-Signature
 * verification (a vector computed with Python's hmac, every v1 tried, two secrets, the
 * tolerance both ways, malformed headers), event parsing (customer.updated with the
 * previous address, subscription, invoice, charge, hostile input), and webhook deliveries
 * rejected and counted without Redis.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet/fl_sig.h"
#include "fleet/fleet.h"
#include "stripe/stripe.h"
#include "tests/harness/th.h"

#define BODY "{\"id\":\"evt_1\"}"
#define T0 1700000000
/* hmac.new(b'whsec_test_secret', b'1700000000.{"id":"evt_1"}', sha256).hexdigest() */
#define GOOD "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
/* same with b'whsec_other' */
#define OTHER "d8d091c76b586cff4dbd317fc47ebddff4b86de3ce18d3c03753c3c1901d475a"

static const char *const one[] = { "whsec_test_secret" };

static enum fl_sig_rc v(const char *hdr, const char *const *sec, int n, int64_t now)
{
	return fl_sig_verify(hdr, BODY, strlen(BODY), sec, n, now, 300, NULL);
}

START_TEST(sig_vector)
{
	char hex[FL_SIG_HEX_LEN + 1];

	ck_assert_int_eq(fl_sig_sign("whsec_test_secret", T0, BODY, strlen(BODY), hex), 0);
	ck_assert_str_eq(hex, GOOD);
	ck_assert_int_eq(v("t=1700000000,v1=" GOOD, one, 1, T0), FL_SIG_OK);
	/* upper-case hex is the same bytes */
	ck_assert_int_eq(v("t=1700000000,v1=248A374F50F943A28B0F6AB50FAF9A7E7E29B710FA26DF9FB1618B9BF8EA9C9A",
	    one, 1, T0), FL_SIG_OK);
	/* spaces around items, as some proxies fold them */
	ck_assert_int_eq(v(" t=1700000000 , v1=" GOOD " ", one, 1, T0), FL_SIG_OK);
}
END_TEST

START_TEST(sig_every_v1_and_scheme)
{
	/* the matching one second, after a wrong one; v0 ignored */
	ck_assert_int_eq(v("t=1700000000,v1=" OTHER ",v1=" GOOD, one, 1, T0), FL_SIG_OK);
	ck_assert_int_eq(v("t=1700000000,v0=" GOOD ",v1=" OTHER, one, 1, T0), FL_SIG_MISMATCH);
	ck_assert_int_eq(v("t=1700000000,v0=" GOOD, one, 1, T0), FL_SIG_MALFORMED);
	ck_assert_int_eq(v("t=1700000000,v1=" OTHER, one, 1, T0), FL_SIG_MISMATCH);
}
END_TEST

START_TEST(sig_two_secrets)
{
	const char *const rot[] = { "whsec_new_one", "whsec_other" };
	const char *const gap[] = { NULL, "whsec_test_secret" };

	ck_assert_int_eq(v("t=1700000000,v1=" OTHER, rot, 2, T0), FL_SIG_OK);
	ck_assert_int_eq(v("t=1700000000,v1=" GOOD, rot, 2, T0), FL_SIG_MISMATCH);
	ck_assert_int_eq(v("t=1700000000,v1=" GOOD, gap, 2, T0), FL_SIG_OK);
	ck_assert_int_eq(v("t=1700000000,v1=" GOOD, gap, 1, T0), FL_SIG_NO_SECRET);
}
END_TEST

START_TEST(sig_tolerance_both_ways)
{
	ck_assert_int_eq(v("t=1700000000,v1=" GOOD, one, 1, T0 + 300), FL_SIG_OK);
	ck_assert_int_eq(v("t=1700000000,v1=" GOOD, one, 1, T0 + 301), FL_SIG_STALE);
	ck_assert_int_eq(v("t=1700000000,v1=" GOOD, one, 1, T0 - 300), FL_SIG_OK);
	ck_assert_int_eq(v("t=1700000000,v1=" GOOD, one, 1, T0 - 301), FL_SIG_STALE);
	/* a stale timestamp with a wrong signature is still stale (checked first) */
	ck_assert_int_eq(v("t=1600000000,v1=" OTHER, one, 1, T0), FL_SIG_STALE);
}
END_TEST

START_TEST(sig_body_and_timestamp_bound)
{
	const char *tampered = "{\"id\":\"evt_2\"}";
	char longhdr[FL_SIG_HEADER_MAX + 64];

	ck_assert_int_eq(fl_sig_verify("t=1700000000,v1=" GOOD, tampered, strlen(tampered), one, 1, T0, 300,
	    NULL), FL_SIG_MISMATCH);
	/* the signature covers the timestamp: another t with the same v1 fails */
	ck_assert_int_eq(v("t=1700000001,v1=" GOOD, one, 1, T0), FL_SIG_MISMATCH);
	/* the body is bytes: a NUL inside counts */
	ck_assert_int_eq(fl_sig_verify("t=1700000000,v1=" GOOD, BODY "\0", strlen(BODY) + 1, one, 1, T0, 300,
	    NULL), FL_SIG_MISMATCH);
	memset(longhdr, 'x', sizeof(longhdr) - 1);
	longhdr[sizeof(longhdr) - 1] = '\0';
	ck_assert_int_eq(v(longhdr, one, 1, T0), FL_SIG_MALFORMED);
}
END_TEST

START_TEST(sig_malformed)
{
	static const char *const bad[] = {
		"", "v1=" GOOD, "t=,v1=" GOOD, "t=abc,v1=" GOOD, "t=-5,v1=" GOOD, "t=1700000000",
		"t=1700000000,v1=", "t=1700000000,v1=zz" GOOD, "t=1700000000,v1=" GOOD "00",
		"t=1700000000,t=1700000000,v1=" GOOD, "t=1700000000;v1=" GOOD,
		"t=1700000000,v1=1,v1=2,v1=3,v1=4,v1=5,v1=6,v1=7,v1=8,v1=9",
	};
	size_t i;

	ck_assert_int_eq(v(NULL, one, 1, T0), FL_SIG_MALFORMED);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(v(bad[i], one, 1, T0) == FL_SIG_MALFORMED, "%s", bad[i]);
	ck_assert_str_eq(fl_sig_rc_name(FL_SIG_STALE), "stale");
}
END_TEST

/* ---- events ---- */

START_TEST(event_customer_updated_previous_email)
{
	const char *j = "{\"id\":\"evt_1Abc\",\"object\":\"event\",\"type\":\"customer.updated\",\"created\":1700000001,"
	    "\"livemode\":false,\"data\":{\"object\":{\"id\":\"cus_X1\",\"object\":\"customer\",\"email\":\"new@example.com\"},"
	    "\"previous_attributes\":{\"email\":\"Old@Example.com\"}}}";
	struct stripe_event ev;
	char err[128];

	ck_assert_int_eq(stripe_event_parse(j, strlen(j), &ev, err, sizeof(err)), 0);
	ck_assert_str_eq(ev.id, "evt_1Abc");
	ck_assert_str_eq(ev.type, "customer.updated");
	ck_assert_int_eq(ev.created, 1700000001);
	ck_assert_str_eq(ev.object, "customer");
	ck_assert_str_eq(ev.customer_id, "cus_X1");
	ck_assert_int_eq(ev.nemails, 2);
	ck_assert_str_eq(ev.emails[0], "new@example.com");
	ck_assert_str_eq(ev.emails[1], "Old@Example.com");
	ck_assert(fleet_event_relevant(ev.type));
}
END_TEST

START_TEST(event_other_objects)
{
	const char *sub = "{\"id\":\"evt_2\",\"object\":\"event\",\"type\":\"customer.subscription.updated\","
	    "\"data\":{\"object\":{\"id\":\"sub_1\",\"object\":\"subscription\",\"customer\":\"cus_Y\"},"
	    "\"previous_attributes\":{\"status\":\"past_due\",\"email\":\"x@y.z\"}}}";
	const char *inv = "{\"id\":\"evt_3\",\"object\":\"event\",\"type\":\"invoice.paid\",\"data\":{\"object\":"
	    "{\"object\":\"invoice\",\"customer\":{\"id\":\"cus_Z\",\"object\":\"customer\"},\"customer_email\":\"a@b.c\"}}}";
	const char *ch = "{\"id\":\"evt_4\",\"object\":\"event\",\"type\":\"charge.refunded\",\"data\":{\"object\":"
	    "{\"object\":\"charge\",\"customer\":null,\"receipt_email\":\"r@b.c\",\"billing_details\":{\"email\":\"r@b.c\"}}}}";
	struct stripe_event ev;
	char err[128];

	ck_assert_int_eq(stripe_event_parse(sub, strlen(sub), &ev, err, sizeof(err)), 0);
	ck_assert_str_eq(ev.customer_id, "cus_Y");
	ck_assert_int_eq(ev.nemails, 0);	/* previous_attributes only count for customers */
	ck_assert_int_eq(stripe_event_parse(inv, strlen(inv), &ev, err, sizeof(err)), 0);
	ck_assert_str_eq(ev.customer_id, "cus_Z");
	ck_assert_int_eq(ev.nemails, 1);
	ck_assert_str_eq(ev.emails[0], "a@b.c");
	ck_assert_int_eq(stripe_event_parse(ch, strlen(ch), &ev, err, sizeof(err)), 0);
	ck_assert_str_eq(ev.customer_id, "");
	ck_assert_int_eq(ev.nemails, 1);	/* the same address twice is kept once */
	ck_assert(!fleet_event_relevant("product.updated"));
	ck_assert(fleet_event_relevant("invoice.paid"));
}
END_TEST

START_TEST(event_hostile)
{
	static const char *const bad[] = {
		"", "[]", "null", "{\"object\":\"event\",\"type\":\"x\"}",
		"{\"id\":\"evt_1\",\"object\":\"customer\",\"type\":\"x\"}",
		"{\"id\":\"evt 1\",\"object\":\"event\",\"type\":\"x\"}",
		"{\"id\":\"evt_1\",\"object\":\"event\"}",
		"{\"id\":\"evt_1\",\"object\":\"event\",\"type\":\"\"}",
		"{\"id\":\"evt_1\",\"object\":\"event\",\"type\":\"customer.updated\"",
	};
	const char *odd = "{\"id\":\"evt_1\",\"object\":\"event\",\"type\":\"customer.updated\",\"data\":{\"object\":"
	    "{\"object\":\"customer\",\"id\":\"cus_1\\r\\nX\",\"email\":\"a\\u0000b@c.d\"}}}";
	struct stripe_event ev;
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(stripe_event_parse(bad[i], strlen(bad[i]), &ev, err, sizeof(err)) == -1, "%s", bad[i]);
	ck_assert_int_eq(stripe_event_parse(odd, strlen(odd), &ev, err, sizeof(err)), 0);
	ck_assert_str_eq(ev.customer_id, "");		/* not an id: never a Redis key */
	ck_assert_int_eq(ev.nemails, 1);
	ck_assert_ptr_null(strchr(ev.emails[0], '\r'));
	ck_assert_str_eq(ev.emails[0], "a b@c.d");
}
END_TEST

/* ---- webhook without Redis ---- */

static struct fleet *fleet_plain(const char *secret)
{
	struct fleet_config fc;
	struct fleet_hooks fh;
	char err[128];
	struct fleet *f;

	memset(&fc, 0, sizeof(fc));
	memset(&fh, 0, sizeof(fh));
	fc.secrets[0] = secret;
	fc.max_body = 4096;
	f = fleet_new(&fc, &fh, err, sizeof(err));
	ck_assert_msg(f != NULL, "%s", err);
	return f;
}

START_TEST(webhook_rejections_counted)
{
	const char *ev = "{\"id\":\"evt_9\",\"object\":\"event\",\"type\":\"customer.updated\",\"created\":1,"
	    "\"data\":{\"object\":{\"object\":\"customer\",\"id\":\"cus_1\",\"email\":\"a@b.c\"}}}";
	struct fleet *f = fleet_plain("whsec_unit");
	struct fleet_counters c;
	char hdr[200], hex[FL_SIG_HEX_LEN + 1], why[64];
	int64_t now = (int64_t)time(NULL);

	ck_assert_int_eq(fl_sig_sign("whsec_unit", now, ev, strlen(ev), hex), 0);
	snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s", (long long)now, hex);
	ck_assert_int_eq(fleet_webhook(f, NULL, ev, strlen(ev), false, why, sizeof(why)), 400);
	ck_assert_str_eq(why, "malformed");
	ck_assert_int_eq(fleet_webhook(f, hdr, ev, strlen(ev) - 1, false, why, sizeof(why)), 400);
	ck_assert_str_eq(why, "signature");
	ck_assert_int_eq(fleet_webhook(f, hdr, ev, strlen(ev), true, why, sizeof(why)), 400);
	ck_assert_str_eq(why, "too_large");
	ck_assert_int_eq(fl_sig_sign("whsec_unit", now - 400, ev, strlen(ev), hex), 0);
	snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s", (long long)(now - 400), hex);
	ck_assert_int_eq(fleet_webhook(f, hdr, ev, strlen(ev), false, why, sizeof(why)), 400);
	ck_assert_str_eq(why, "stale");
	/* signed, but not an event */
	ck_assert_int_eq(fl_sig_sign("whsec_unit", now, "{}", 2, hex), 0);
	snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s", (long long)now, hex);
	ck_assert_int_eq(fleet_webhook(f, hdr, "{}", 2, false, why, sizeof(why)), 400);
	ck_assert_str_eq(why, "malformed");
	fleet_counters_get(f, &c);
	ck_assert_int_eq(c.events_rejected[FLEET_REJ_MALFORMED], 2);
	ck_assert_int_eq(c.events_rejected[FLEET_REJ_SIGNATURE], 1);
	ck_assert_int_eq(c.events_rejected[FLEET_REJ_TOO_LARGE], 1);
	ck_assert_int_eq(c.events_rejected[FLEET_REJ_STALE], 1);
	ck_assert_int_eq(c.events_applied, 0);
	ck_assert_int_eq(c.events_received[FLEET_SRC_WEBHOOK], 0);
	/* the good one applies (no Redis: this process only) */
	ck_assert_int_eq(fl_sig_sign("whsec_unit", now, ev, strlen(ev), hex), 0);
	snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s", (long long)now, hex);
	ck_assert_int_eq(fleet_webhook(f, hdr, ev, strlen(ev), false, why, sizeof(why)), 200);
	ck_assert_str_eq(why, "applied");
	fleet_counters_get(f, &c);
	ck_assert_int_eq(c.events_applied, 1);
	ck_assert_int_eq(c.last_event_created, 1);
	fleet_free(f);
}
END_TEST

START_TEST(webhook_without_secret)
{
	struct fleet *f = fleet_plain(NULL);
	struct fleet_counters c;
	char why[64];

	ck_assert_int_eq(fleet_webhook(f, "t=1,v1=" GOOD, BODY, strlen(BODY), false, why, sizeof(why)), 400);
	ck_assert_str_eq(why, "no_secret");
	fleet_counters_get(f, &c);
	ck_assert_int_eq(c.events_rejected[FLEET_REJ_NO_SECRET], 1);
	fleet_free(f);
}
END_TEST

/* Several accounts on one listener: which fleet's secret signs a delivery, and for a
 * Connect account whether the event is its own (fleet_webhook_match counts nothing). */
START_TEST(webhook_match_by_secret_and_account)
{
	const char *plat = "{\"id\":\"evt_1\",\"object\":\"event\",\"type\":\"customer.updated\",\"created\":1,"
	    "\"data\":{\"object\":{\"object\":\"customer\",\"id\":\"cus_1\"}}}";
	const char *conn = "{\"id\":\"evt_2\",\"object\":\"event\",\"type\":\"customer.updated\",\"created\":1,"
	    "\"account\":\"acct_B\",\"data\":{\"object\":{\"object\":\"customer\",\"id\":\"cus_2\"}}}";
	struct fleet_config fc;
	struct fleet_hooks fh;
	struct fleet *eu = fleet_plain("whsec_eu"), *a, *b;
	struct fleet_counters c;
	char hdr[200], hex[FL_SIG_HEX_LEN + 1], err[128];
	int64_t now = (int64_t)time(NULL);

	memset(&fc, 0, sizeof(fc));
	memset(&fh, 0, sizeof(fh));
	fc.secrets[0] = "whsec_platform";
	fc.max_body = 4096;
	fc.connect = "acct_A";
	ck_assert_ptr_nonnull(a = fleet_new(&fc, &fh, err, sizeof(err)));
	fc.connect = "acct_B";
	ck_assert_ptr_nonnull(b = fleet_new(&fc, &fh, err, sizeof(err)));
	/* the Connect endpoint's secret, an event of acct_B: b's only */
	ck_assert_int_eq(fl_sig_sign("whsec_platform", now, conn, strlen(conn), hex), 0);
	snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s", (long long)now, hex);
	ck_assert_int_eq(fleet_webhook_match(b, hdr, conn, strlen(conn)), 2);
	ck_assert_int_eq(fleet_webhook_match(a, hdr, conn, strlen(conn)), 0);
	ck_assert_int_eq(fleet_webhook_match(eu, hdr, conn, strlen(conn)), 0);
	/* eu's own endpoint: eu's (no connect account: whatever the event says) */
	ck_assert_int_eq(fl_sig_sign("whsec_eu", now, plat, strlen(plat), hex), 0);
	snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s", (long long)now, hex);
	ck_assert_int_eq(fleet_webhook_match(eu, hdr, plat, strlen(plat)), 1);
	ck_assert_int_eq(fleet_webhook_match(a, hdr, plat, strlen(plat)), 0);
	/* stale, tampered or oversized: nobody's */
	ck_assert_int_eq(fleet_webhook_match(eu, hdr, plat, strlen(plat) - 1), 0);
	ck_assert_int_eq(fl_sig_sign("whsec_eu", now - 400, plat, strlen(plat), hex), 0);
	snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s", (long long)(now - 400), hex);
	ck_assert_int_eq(fleet_webhook_match(eu, hdr, plat, strlen(plat)), 0);
	ck_assert_int_eq(fleet_webhook_match(eu, NULL, plat, strlen(plat)), 0);
	ck_assert_int_eq(fleet_webhook_match(eu, hdr, plat, 5000), 0);
	/* the platform's own event on the Connect secret: no connected account's */
	ck_assert_int_eq(fl_sig_sign("whsec_platform", now, plat, strlen(plat), hex), 0);
	snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s", (long long)now, hex);
	ck_assert_int_eq(fleet_webhook_match(a, hdr, plat, strlen(plat)), 0);
	ck_assert_int_eq(fleet_webhook_match(b, hdr, plat, strlen(plat)), 0);
	fleet_counters_get(eu, &c);
	for (int i = 0; i < FLEET_REJ__COUNT; i++)
		ck_assert_int_eq(c.events_rejected[i], 0);
	fleet_free(a);
	fleet_free(b);
	fleet_free(eu);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fleet_unit");
	TCase *tc = tcase_create("unit");

	tcase_add_test(tc, sig_vector);
	tcase_add_test(tc, sig_every_v1_and_scheme);
	tcase_add_test(tc, sig_two_secrets);
	tcase_add_test(tc, sig_tolerance_both_ways);
	tcase_add_test(tc, sig_body_and_timestamp_bound);
	tcase_add_test(tc, sig_malformed);
	tcase_add_test(tc, event_customer_updated_previous_email);
	tcase_add_test(tc, event_other_objects);
	tcase_add_test(tc, event_hostile);
	tcase_add_test(tc, webhook_rejections_counted);
	tcase_add_test(tc, webhook_without_secret);
	tcase_add_test(tc, webhook_match_by_secret_and_account);
	suite_add_tcase(s, tc);
	return th_run(s);
}
