/*
 * test_hdr.c - the header contract (v2), byte for byte: every group, each lookup state, hostile
 * and non-ASCII Stripe text in text headers of its own, folding and caps, currencies, privacy
 * mode, prefix. The RFC 2047 encoder itself is tested in tests/mail/test_text.c; the
 * contract's properties over random hostile text in tests/milter/test_hdr_property.py.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_util.h"
#include "milter/mf_hdr.h"
#include "tests/harness/th.h"

#define T_2024_03_01 1709294400
#define T_2026_12_01 1796126400
#define T_2026_11_20 1795176000
#define T_2026_12_15 1797336000

/* The contract's example customer. */
static void jenny(struct stripe_summary *s)
{
	struct stripe_subscription *sub = &s->subs[0];

	memset(s, 0, sizeof(*s));
	s->found = true;
	s->livemode = true;
	s->matches = 1;
	sm_strlcpy(s->customer_id, "cus_NffrFeUfNV2Hib", sizeof(s->customer_id));
	sm_strlcpy(s->email, "jenny.rosen@example.com", sizeof(s->email));
	sm_strlcpy(s->name, "Jenny Rosen", sizeof(s->name));
	s->created = T_2024_03_01;
	sm_strlcpy(s->balance.currency, "usd", sizeof(s->balance.currency));
	s->subs_total = 1;
	s->subs_by_status[STRIPE_SUB_ACTIVE] = 1;
	s->nsubs = 1;
	sm_strlcpy(sub->id, "sub_1", sizeof(sub->id));
	sub->status = STRIPE_SUB_ACTIVE;
	sub->period_end = T_2026_12_01;
	sub->item_count = 1;
	sm_strlcpy(sub->plan, "Pro", sizeof(sub->plan));
	sub->unit_amount.amount = 4900;
	sm_strlcpy(sub->unit_amount.currency, "usd", sizeof(sub->unit_amount.currency));
	sub->quantity = 1;
	sm_strlcpy(sub->interval, "month", sizeof(sub->interval));
	sub->interval_count = 1;
	s->charges.window_days = 90;
	s->charges.count = 3;
	s->charges.succeeded = 2;
	s->charges.failed = 1;
	s->charges.ntotals = 1;
	s->charges.totals[0].amount = 9800;
	sm_strlcpy(s->charges.totals[0].currency, "usd", sizeof(s->charges.totals[0].currency));
	s->charges.has_last = true;
	s->charges.last_created = T_2026_11_20;
	sm_strlcpy(s->charges.last_status, "failed", sizeof(s->charges.last_status));
	sm_strlcpy(s->charges.last_failure_code, "card_declined", sizeof(s->charges.last_failure_code));
}

static const struct mf_lookup_info found_hit = {
	.state = LK_FOUND, .cache = "hit", .age_s = 120, .livemode = true, .from_count = 1
};

static struct mf_hdr_opts opts_all(void)
{
	struct mf_hdr_opts o = { .prefix = "X-Stripe-", .groups = MF_HG_ALL, .max_value = 900,
		.max_subs = 1, .privacy = false };

	return o;
}

/* Checks the rules every value obeys, then the line count. */
static void check_list(const struct mf_hdr_list *l, size_t cap)
{
	int i;

	for (i = 0; i < l->n; i++) {
		const char *v = l->h[i].value;
		size_t col = strlen(l->h[i].name) + 2, j, len = strlen(v);

		ck_assert_msg(len > 0 && len <= cap, "%s: length %zu, cap %zu", l->h[i].name, len, cap);
		for (j = 0; v[j] != '\0'; j++) {
			unsigned char c = (unsigned char)v[j];

			if (c == '\n') {
				ck_assert_msg(v[j + 1] == '\t', "%s: newline without tab", l->h[i].name);
				col = 0;
				continue;
			}
			ck_assert_msg((c >= 0x20 && c < 0x7f) || c == '\t', "%s: byte 0x%02x at %zu",
			    l->h[i].name, c, j);
			col++;
		}
		ck_assert_msg(v[len - 1] != ' ' && v[len - 1] != ';' && v[len - 1] != '\t',
		    "%s: value ends in a separator: [%s]", l->h[i].name, v);
		(void)col;
	}
}

/* Physical lines of a folded value are at most 78 columns (tokens allowing). */
static void check_folded_width(const struct mf_hdr *h)
{
	const char *v = h->value, *nl;
	size_t col = strlen(h->name) + 2;

	for (;;) {
		nl = strchr(v, '\n');
		size_t n = nl != NULL ? (size_t)(nl - v) : strlen(v);

		ck_assert_msg(col + n <= MF_HDR_FOLD_COLUMN, "%s: line of %zu columns: [%.*s]",
		    h->name, col + n, (int)n, v);
		if (nl == NULL)
			break;
		v = nl + 1;
		col = 0;
	}
}

static void want(const struct mf_hdr_list *l, int i, const char *name, const char *value)
{
	ck_assert_msg(i < l->n, "line %d missing (have %d)", i, l->n);
	ck_assert_str_eq(l->h[i].name, name);
	ck_assert_msg(strcmp(l->h[i].value, value) == 0, "%s:\n got [%s]\nwant [%s]", name,
	    l->h[i].value, value);
}

static const char *find(const struct mf_hdr_list *l, const char *name)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->h[i].name, name) == 0)
			return l->h[i].value;
	return NULL;
}

START_TEST(contract_full)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 8);
	check_list(&l, 900);
	want(&l, 0, "X-Stripe-Lookup", "v=2; found; cache=hit; age=120; mode=live");
	want(&l, 1, "X-Stripe-Customer-Id", "cus_NffrFeUfNV2Hib");
	want(&l, 2, "X-Stripe-Customer",
	    "created=2024-03-01; delinquent=no; balance=0.00 USD;\n"
	    "\tmatches=1");
	want(&l, 3, "X-Stripe-Name", "Jenny Rosen");
	want(&l, 4, "X-Stripe-Subscription-Status", "active");
	want(&l, 5, "X-Stripe-Subscription",
	    "amount=49.00 USD/month; status=active;\n"
	    "\tperiod_end=2026-12-01; cancel_at_period_end=no");
	want(&l, 6, "X-Stripe-Plan", "Pro");
	want(&l, 7, "X-Stripe-Charges",
	    "window=90d; count=3; succeeded=2; failed=1; refunded=0;\n"
	    "\tdisputed=0; total=98.00 USD; last=2026-11-20 failed card_declined");
	for (int i = 0; i < l.n; i++)
		check_folded_width(&l.h[i]);
}
END_TEST

START_TEST(lookup_states)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;
	struct mf_lookup_info li;

	memset(&li, 0, sizeof(li));
	li.state = LK_NOT_FOUND;
	li.cache = "miss";
	li.age_s = 0;
	ck_assert_int_eq(mf_hdr_render(&o, &li, NULL, &l), 1);
	want(&l, 0, "X-Stripe-Lookup", "v=2; not-found; cache=miss; mode=test");

	li.cache = "hit";
	li.age_s = 30;
	li.livemode = true;
	ck_assert_int_eq(mf_hdr_render(&o, &li, NULL, &l), 1);
	want(&l, 0, "X-Stripe-Lookup", "v=2; not-found; cache=hit; age=30; mode=live");

	memset(&li, 0, sizeof(li));
	li.state = LK_ERROR;
	li.error_class = "timeout";
	ck_assert_int_eq(mf_hdr_render(&o, &li, NULL, &l), 1);
	want(&l, 0, "X-Stripe-Lookup", "v=2; error=timeout");
	li.error_class = "rate-limited";
	ck_assert_int_eq(mf_hdr_render(&o, &li, NULL, &l), 1);
	want(&l, 0, "X-Stripe-Lookup", "v=2; error=rate-limited");
	li.error_class = "bad;class\r\nX: y";
	ck_assert_int_eq(mf_hdr_render(&o, &li, NULL, &l), 1);
	want(&l, 0, "X-Stripe-Lookup", "v=2; error=internal");

	memset(&li, 0, sizeof(li));
	li.state = LK_SKIPPED;
	li.skip_reason = "authenticated";
	jenny(&s);
	ck_assert_int_eq(mf_hdr_render(&o, &li, &s, &l), 1);	/* data ignored when skipped */
	want(&l, 0, "X-Stripe-Lookup", "v=2; skipped=authenticated");
	li.skip_reason = "internal-host";
	ck_assert_int_eq(mf_hdr_render(&o, &li, NULL, &l), 1);
	want(&l, 0, "X-Stripe-Lookup", "v=2; skipped=internal-host");
	li.skip_reason = NULL;
	ck_assert_int_eq(mf_hdr_render(&o, &li, NULL, &l), 1);
	want(&l, 0, "X-Stripe-Lookup", "v=2; skipped=unknown");

	/* FOUND without a summary is a caller bug: say so, add nothing else */
	memset(&li, 0, sizeof(li));
	li.state = LK_FOUND;
	li.cache = "hit";
	ck_assert_int_eq(mf_hdr_render(&o, &li, NULL, &l), 1);
	want(&l, 0, "X-Stripe-Lookup", "v=2; error=internal");
}
END_TEST

START_TEST(stale_missing_from_count)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;
	struct mf_lookup_info li = { .state = LK_ERROR, .error_class = "timeout", .cache = "stale",
		.age_s = 4000, .livemode = true, .stale = true, .from_count = 2 };

	jenny(&s);
	s.parts_missing = STRIPE_PART_CHARGES | STRIPE_PART_PLAN_NAMES;
	ck_assert_int_eq(mf_hdr_render(&o, &li, &s, &l), 6);
	check_list(&l, 900);
	want(&l, 0, "X-Stripe-Lookup",
	    "v=2; found; cache=stale; age=4000; mode=live; stale=yes;\n"
	    "\terror=timeout; missing=plan-names,charges; from-count=2");
	want(&l, 5, "X-Stripe-Subscription",
	    "amount=49.00 USD/month; status=active;\n"
	    "\tperiod_end=2026-12-01; cancel_at_period_end=no");
	ck_assert_ptr_null(find(&l, "X-Stripe-Plan"));	/* no rak_product_read */
	ck_assert_ptr_null(find(&l, "X-Stripe-Charges"));

	/* the same, passed as FOUND with stale set */
	li.state = LK_FOUND;
	ck_assert_int_eq(mf_hdr_render(&o, &li, &s, &l), 6);
	want(&l, 0, "X-Stripe-Lookup",
	    "v=2; found; cache=stale; age=4000; mode=live; stale=yes;\n"
	    "\terror=timeout; missing=plan-names,charges; from-count=2");
	li.error_class = NULL;
	ck_assert_int_eq(mf_hdr_render(&o, &li, &s, &l), 6);
	want(&l, 0, "X-Stripe-Lookup",
	    "v=2; found; cache=stale; age=4000; mode=live; stale=yes;\n"
	    "\tmissing=plan-names,charges; from-count=2");
	li.state = LK_ERROR;
	li.error_class = "timeout";

	/* stale negative entry */
	s.found = false;
	ck_assert_int_eq(mf_hdr_render(&o, &li, &s, &l), 1);
	want(&l, 0, "X-Stripe-Lookup",
	    "v=2; not-found; cache=stale; age=4000; mode=live; stale=yes;\n\terror=timeout; from-count=2");

	/* fresh found with missing subscriptions: no status line claiming "none" */
	jenny(&s);
	s.parts_missing = STRIPE_PART_SUBSCRIPTIONS;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 5);
	want(&l, 0, "X-Stripe-Lookup", "v=2; found; cache=hit; age=120; mode=live;\n\tmissing=subscriptions");
	ck_assert_ptr_null(find(&l, "X-Stripe-Subscription-Status"));
	ck_assert_ptr_null(find(&l, "X-Stripe-Subscription"));
}
END_TEST

START_TEST(groups_select_lines)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	s.nmeta = 1;
	sm_strlcpy(s.meta[0].key, "tier", sizeof(s.meta[0].key));
	sm_strlcpy(s.meta[0].value, "gold", sizeof(s.meta[0].value));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 9);
	want(&l, 8, "X-Stripe-Metadata-tier", "gold");
	o.groups = 0;	/* Lookup is always on */
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 1);
	want(&l, 0, "X-Stripe-Lookup", "v=2; found; cache=hit; age=120; mode=live");
	o.groups = MF_HG_CUSTOMER_ID;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 2);
	want(&l, 1, "X-Stripe-Customer-Id", "cus_NffrFeUfNV2Hib");
	o.groups = MF_HG_SUBSCRIPTION | MF_HG_METADATA;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 5);
	want(&l, 1, "X-Stripe-Subscription-Status", "active");
	ck_assert_str_eq(l.h[2].name, "X-Stripe-Subscription");
	want(&l, 3, "X-Stripe-Plan", "Pro");
	want(&l, 4, "X-Stripe-Metadata-tier", "gold");
	o.groups = MF_HG_CUSTOMER;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 3);
	ck_assert_str_eq(l.h[1].name, "X-Stripe-Customer");
	want(&l, 2, "X-Stripe-Name", "Jenny Rosen");
	o.groups = MF_HG_CHARGES;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 2);
	ck_assert_str_eq(l.h[1].name, "X-Stripe-Charges");
}
END_TEST

START_TEST(prefix_change_and_validation)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;
	char longp[80];

	jenny(&s);
	o.prefix = "X-Billing-";
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 8);
	ck_assert_str_eq(l.h[0].name, "X-Billing-Lookup");
	ck_assert_str_eq(l.h[3].name, "X-Billing-Name");
	ck_assert_str_eq(l.h[4].name, "X-Billing-Subscription-Status");
	o.prefix = NULL;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 8);
	ck_assert_str_eq(l.h[0].name, "X-Stripe-Lookup");
	o.prefix = "X Bad-";
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), -1);
	ck_assert_int_eq(l.n, 0);
	o.prefix = "X:Bad-";
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), -1);
	o.prefix = "";
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), -1);
	o.prefix = "X-\xc3\xa9-";
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), -1);
	memset(longp, 'X', 60);
	longp[60] = '\0';
	o.prefix = longp;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 8);
	longp[61] = '\0';
	longp[60] = 'X';
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), -1);
}
END_TEST

START_TEST(non_ascii_names)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	o.groups = MF_HG_CUSTOMER;
	sm_strlcpy(s.name, "Jürgen Müller", sizeof(s.name));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 3);
	want(&l, 1, "X-Stripe-Customer",
	    "created=2024-03-01; delinquent=no; balance=0.00 USD;\n\tmatches=1");
	want(&l, 2, "X-Stripe-Name", "=?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?=");
	sm_strlcpy(s.name, "Zoë Smith-Johnson Enterprises", sizeof(s.name));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 3);
	want(&l, 2, "X-Stripe-Name", "=?UTF-8?Q?Zo=C3=AB_Smith-Johnson_Enterprises?=");
	sm_strlcpy(s.name, "田中太郎", sizeof(s.name));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 3);
	want(&l, 2, "X-Stripe-Name", "=?UTF-8?B?55Sw5Lit5aSq6YOO?=");
	check_list(&l, 900);
}
END_TEST

/* Text headers hold the text and nothing else; token headers never change with it. */
START_TEST(hostile_text_cleaned)
{
	static const char *const customer =
	    "created=2024-03-01; delinquent=no; balance=0.00 USD;\n\tmatches=1";
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	o.groups = MF_HG_CUSTOMER;
	/* the contract's own grammar and a header line: encoded, CR LF removed */
	sm_strlcpy(s.name, "Jenny\"; delinquent=yes\r\nX-Stripe-Lookup: found", sizeof(s.name));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 3);
	ck_assert_str_eq(find(&l, "X-Stripe-Customer"), customer);
	ck_assert_str_eq(find(&l, "X-Stripe-Name"),
	    "=?UTF-8?Q?Jenny=22=3B_delinquent=3DyesX-Stripe-Lookup=3A_foun?=\n\t=?UTF-8?Q?d?=");
	/* an encoded-word look-alike is itself encoded, never passed through */
	sm_strlcpy(s.name, "=?UTF-8?Q?a=0D=0AX:_y?=", sizeof(s.name));
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_str_eq(find(&l, "X-Stripe-Name"), "=?UTF-8?B?PT9VVEYtOD9RP2E9MEQ9MEFYOl95Pz0=?=");
	/* quotes, backslashes, tabs, DEL, doubled and outer spaces: kept, so encoded */
	sm_strlcpy(s.name, " a \"b\" \\c\t\x7f d  ", sizeof(s.name));
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_str_eq(find(&l, "X-Stripe-Name"), "=?UTF-8?B?IGEgImIiIFxjCX8gZCAg?=");
	/* an embedded NUL ends the string */
	memcpy(s.name, "Jen\0ny", 7);
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_str_eq(find(&l, "X-Stripe-Name"), "Jen");
	/* C1 controls, U+2028, bidi overrides and a BOM are the customer's text: encoded */
	sm_strlcpy(s.name, "a\xc2\x85" "b\xe2\x80\xa8" "c\xe2\x80\xae" "d\xef\xbb\xbf", sizeof(s.name));
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_str_eq(find(&l, "X-Stripe-Name"), "=?UTF-8?B?YcKFYuKAqGPigK5k77u/?=");
	/* invalid UTF-8 becomes U+FFFD (then it is non-ASCII: encoded) */
	sm_strlcpy(s.name, "a\xff" "b\xc0\xaf", sizeof(s.name));
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_str_eq(find(&l, "X-Stripe-Name"), "=?UTF-8?B?Ye+/vWLvv73vv70=?=");
	/* only CR LF: no name line at all */
	sm_strlcpy(s.name, "\r\n\r", sizeof(s.name));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 2);
	ck_assert_ptr_null(find(&l, "X-Stripe-Name"));
	ck_assert_str_eq(find(&l, "X-Stripe-Customer"), customer);
	check_list(&l, 900);
}
END_TEST

START_TEST(hostile_ids_and_words)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	sm_strlcpy(s.customer_id, "cus_1\r\nX-Evil: 1", sizeof(s.customer_id));
	sm_strlcpy(s.charges.last_status, "fail;ed", sizeof(s.charges.last_status));
	sm_strlcpy(s.subs[0].interval, "mo nth", sizeof(s.subs[0].interval));
	s.subs[0].status = (enum stripe_sub_status)99;
	s.subs_by_status[STRIPE_SUB_ACTIVE] = 0;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 7);
	ck_assert_ptr_null(find(&l, "X-Stripe-Customer-Id"));
	ck_assert_str_eq(find(&l, "X-Stripe-Subscription-Status"), "unknown");
	ck_assert_str_eq(find(&l, "X-Stripe-Subscription"),
	    "amount=49.00 USD; status=unknown;\n"
	    "\tperiod_end=2026-12-01; cancel_at_period_end=no");
	ck_assert_str_eq(find(&l, "X-Stripe-Charges"),
	    "window=90d; count=3; succeeded=2; failed=1; refunded=0;\n"
	    "\tdisputed=0; total=98.00 USD");
	sm_strlcpy(s.customer_id, "", sizeof(s.customer_id));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 7);
	ck_assert_ptr_null(find(&l, "X-Stripe-Customer-Id"));
	/* an unterminated id is dropped, not over-read */
	memset(s.customer_id, 'A', sizeof(s.customer_id));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 7);
	ck_assert_ptr_null(find(&l, "X-Stripe-Customer-Id"));
}
END_TEST

START_TEST(currencies)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	s.balance.amount = 1200;
	sm_strlcpy(s.balance.currency, "jpy", sizeof(s.balance.currency));
	s.subs[0].unit_amount.amount = 1500;
	sm_strlcpy(s.subs[0].unit_amount.currency, "kwd", sizeof(s.subs[0].unit_amount.currency));
	s.subs[0].interval_count = 3;
	s.charges.ntotals = 3;
	s.charges.totals[0].amount = -500;
	s.charges.totals[1].amount = 98000;
	sm_strlcpy(s.charges.totals[1].currency, "jpy", sizeof(s.charges.totals[1].currency));
	s.charges.totals[2].amount = 12345;
	sm_strlcpy(s.charges.totals[2].currency, "bhd", sizeof(s.charges.totals[2].currency));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 8);
	ck_assert_str_eq(find(&l, "X-Stripe-Customer"),
	    "created=2024-03-01; delinquent=no; balance=1200 JPY;\n"
	    "\tmatches=1");
	ck_assert_str_eq(find(&l, "X-Stripe-Subscription"),
	    "amount=1.500 KWD/3 months; status=active;\n"
	    "\tperiod_end=2026-12-01; cancel_at_period_end=no");
	ck_assert_str_eq(find(&l, "X-Stripe-Charges"),
	    "window=90d; count=3; succeeded=2; failed=1; refunded=0;\n"
	    "\tdisputed=0; total=-5.00 USD, 98000 JPY, 12.345 BHD;\n"
	    "\tlast=2026-11-20 failed card_declined");
	/* no currency: no balance; no totals: total=none (no money has no currency); one-off
	 * price: no interval */
	s.balance.currency[0] = '\0';
	s.charges.ntotals = 0;
	s.charges.has_last = false;
	s.subs[0].interval[0] = '\0';
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_str_eq(find(&l, "X-Stripe-Customer"),
	    "created=2024-03-01; delinquent=no; matches=1");
	ck_assert_str_eq(find(&l, "X-Stripe-Subscription"),
	    "amount=1.500 KWD; status=active; period_end=2026-12-01;\n"
	    "\tcancel_at_period_end=no");
	ck_assert_str_eq(find(&l, "X-Stripe-Charges"),
	    "window=90d; count=3; succeeded=2; failed=1; refunded=0;\n\tdisputed=0; total=none");
}
END_TEST

START_TEST(subscriptions_detail)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	o.groups = MF_HG_SUBSCRIPTION;
	s.delinquent = true;
	s.nsubs = 3;
	s.subs_by_status[STRIPE_SUB_TRIALING] = 1;
	s.subs_by_status[STRIPE_SUB_PAST_DUE] = 1;
	s.subs[1] = s.subs[0];
	s.subs[1].status = STRIPE_SUB_TRIALING;
	s.subs[1].trial_end = T_2026_12_15;
	s.subs[1].cancel_at_period_end = true;
	s.subs[1].cancel_at = T_2026_12_15;
	s.subs[1].quantity = 5;
	s.subs[1].item_count = 2;
	sm_strlcpy(s.subs[1].interval, "year", sizeof(s.subs[1].interval));
	s.subs[2] = s.subs[0];
	s.subs[2].status = STRIPE_SUB_PAST_DUE;
	sm_strlcpy(s.subs[1].plan, "Team", sizeof(s.subs[1].plan));
	s.subs[2].plan[0] = '\0';	/* no plan name: no Plan line after its Subscription line */
	o.max_subs = 2;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 6);
	want(&l, 1, "X-Stripe-Subscription-Status", "active");
	want(&l, 3, "X-Stripe-Plan", "Pro");
	want(&l, 4, "X-Stripe-Subscription",
	    "amount=49.00 USD/year; status=trialing;\n"
	    "\tperiod_end=2026-12-01; cancel_at_period_end=yes; trial_end=2026-12-15;\n"
	    "\tcancel_at=2026-12-15; quantity=5; items=2");
	want(&l, 5, "X-Stripe-Plan", "Team");
	o.max_subs = 0;		/* default: one line */
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 4);
	o.max_subs = 99;	/* at most what the summary holds */
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 7);
	want(&l, 6, "X-Stripe-Subscription",
	    "amount=49.00 USD/month; status=past_due;\n"
	    "\tperiod_end=2026-12-01; cancel_at_period_end=no");
	/* no subscriptions at all */
	memset(s.subs_by_status, 0, sizeof(s.subs_by_status));
	s.nsubs = 0;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 2);
	want(&l, 1, "X-Stripe-Subscription-Status", "none");
	/* best status from the counts, even when fewer are kept */
	s.subs_by_status[STRIPE_SUB_PAST_DUE] = 2;
	s.subs_by_status[STRIPE_SUB_CANCELED] = 5;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 2);
	want(&l, 1, "X-Stripe-Subscription-Status", "past_due");
}
END_TEST

START_TEST(charges_extras)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	o.groups = MF_HG_CHARGES;
	s.charges.pending = 1;
	s.charges.partially_refunded = 2;
	s.charges.truncated = true;
	s.charges.disputed = 1;
	s.charges.last_failure_code[0] = '\0';
	sm_strlcpy(s.charges.last_status, "succeeded", sizeof(s.charges.last_status));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 2);
	want(&l, 1, "X-Stripe-Charges",
	    "window=90d; count=3; succeeded=2; failed=1; refunded=0;\n"
	    "\tdisputed=1; total=98.00 USD; last=2026-11-20 succeeded; pending=1;\n"
	    "\tpartially_refunded=2; truncated=yes");
	/* charges not fetched (window 0): no line */
	s.charges.window_days = 0;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 1);
}
END_TEST

START_TEST(metadata_forms)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;
	static const char *const kv[][2] = {
		{ "tier", "gold" }, { "note", "two words; x=y" }, { "empty", "" },
		{ "bad key", "dropped" }, { "city", "Zürich" }, { "acct", "A-12/b.c@d" },
		{ "k:v", "dropped" }, { "last", "x" },
	};
	int i;

	jenny(&s);
	o.groups = MF_HG_METADATA;
	for (i = 0; i < 8; i++) {
		sm_strlcpy(s.meta[i].key, kv[i][0], sizeof(s.meta[i].key));
		sm_strlcpy(s.meta[i].value, kv[i][1], sizeof(s.meta[i].value));
	}
	s.nmeta = 8;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 6);
	want(&l, 1, "X-Stripe-Metadata-tier", "gold");
	want(&l, 2, "X-Stripe-Metadata-note", "=?UTF-8?Q?two_words=3B_x=3Dy?=");
	want(&l, 3, "X-Stripe-Metadata-city", "=?UTF-8?Q?Z=C3=BCrich?=");
	want(&l, 4, "X-Stripe-Metadata-acct", "A-12/b.c@d");
	want(&l, 5, "X-Stripe-Metadata-last", "x");
	/* a 40-byte key with a 60-byte prefix: the name fits */
	memset(s.meta[0].key, 'k', STRIPE_META_KEY_MAX);
	s.meta[0].key[STRIPE_META_KEY_MAX] = '\0';
	o.prefix = "X-Stripe-Metadata-Prefix-That-Is-Sixty-Characters-Long-XXXX-";
	ck_assert_int_eq(strlen(o.prefix), 60);
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 6);
	ck_assert_int_eq(strlen(l.h[1].name), 60 + 9 + STRIPE_META_KEY_MAX);
	/* past column 78 before the value: encoded, so the rule "plain only on the first line"
	 * holds */
	ck_assert_str_eq(l.h[1].value, "=?UTF-8?Q?gold?=");
	s.nmeta = 0;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 1);
}
END_TEST

START_TEST(privacy_mode)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	s.delinquent = true;
	s.nmeta = 1;
	sm_strlcpy(s.meta[0].key, "tier", sizeof(s.meta[0].key));
	sm_strlcpy(s.meta[0].value, "gold", sizeof(s.meta[0].value));
	o.privacy = true;
	o.max_subs = 4;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 3);
	want(&l, 0, "X-Stripe-Lookup", "v=2; found; cache=hit; age=120; mode=live");
	want(&l, 1, "X-Stripe-Customer", "delinquent=yes");
	ck_assert_ptr_null(find(&l, "X-Stripe-Name"));
	want(&l, 2, "X-Stripe-Subscription-Status", "active");
	o.groups = MF_HG_SUBSCRIPTION | MF_HG_CHARGES;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 2);
	want(&l, 1, "X-Stripe-Subscription-Status", "active");
}
END_TEST

START_TEST(long_plan_folded_and_capped)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;
	char plan[STRIPE_TEXT_MAX];
	const char *v;
	size_t i;

	jenny(&s);
	o.groups = MF_HG_SUBSCRIPTION;
	/* a long non-ASCII plan name: several encoded words, one per line, the first sized to
	 * what "X-Stripe-Plan: " leaves of 78 columns */
	plan[0] = '\0';
	for (i = 0; i < 20; i++)
		strncat(plan, "Prämie ", sizeof(plan) - strlen(plan) - 1);
	sm_strlcpy(s.subs[0].plan, plan, sizeof(s.subs[0].plan));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 4);
	check_list(&l, 900);
	for (i = 0; i < (size_t)l.n; i++)
		check_folded_width(&l.h[i]);
	want(&l, 2, "X-Stripe-Subscription",
	    "amount=49.00 USD/month; status=active;\n"
	    "\tperiod_end=2026-12-01; cancel_at_period_end=no");
	want(&l, 3, "X-Stripe-Plan",
	    "=?UTF-8?B?UHLDpG1pZSBQcsOkbWllIFByw6RtaWUgUHLDpG1pZSBQcsOk?=\n"
	    "\t=?UTF-8?B?bWllIFByw6RtaWUgUHLDpG1pZSBQcsOkbWllIFByw6RtaWUgUHLDpG1pZSBQ?=\n"
	    "\t=?UTF-8?B?csOkbWllIFByw6RtaWUgUHLDpG1pZSBQcsOkbWllIFByw6RtaWUgUHLDpG1p?=\n"
	    "\t=?UTF-8?B?ZSBQcsOkbWllIFByw6RtaWUgUHLDpG1pZSBQcsOkbWllIA==?=");	/* the trailing space kept */

	/* a small cap: the plan is shortened at a character boundary; the token line is a
	 * header of its own and keeps every item */
	o.max_value = 160;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 4);
	check_list(&l, 160);
	want(&l, 2, "X-Stripe-Subscription",
	    "amount=49.00 USD/month; status=active;\n"
	    "\tperiod_end=2026-12-01; cancel_at_period_end=no");
	want(&l, 3, "X-Stripe-Plan",
	    "=?UTF-8?B?UHLDpG1pZSBQcsOkbWllIFByw6RtaWUgUHLDpG1pZSBQcsOk?=\n"
	    "\t=?UTF-8?B?bWllIFByw6RtaWUgUHLDpG1pZSBQcsOkbWllIFByw6RtaWUgUHLDpG1pZSBQ?=\n"
	    "\t=?UTF-8?B?csOkbWllIFBy?=");

	/* a long ASCII plan with quotes: encoded (Q), never cut inside an escape */
	memset(plan, 'A', sizeof(plan) - 1);
	plan[sizeof(plan) - 1] = '\0';
	for (i = 7; i < sizeof(plan) - 1; i += 8)
		plan[i] = '"';
	sm_strlcpy(s.subs[0].plan, plan, sizeof(s.subs[0].plan));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 4);
	check_list(&l, 160);
	v = l.h[3].value;
	ck_assert_msg(strncmp(v, "=?UTF-8?Q?AAAAAAA=22AAAAAAA=22", 30) == 0, "[%s]", v);
	ck_assert_msg(strlen(v) > 140 && strstr(v, "?=\n\t=?UTF-8?Q?") != NULL, "[%s]", v);
	ck_assert_msg(v[strlen(v) - 3] != '=' && v[strlen(v) - 4] != '=', "cut escape [%s]", v);
	o.max_value = 0;	/* default 900: the whole name */
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 4);
	check_list(&l, 900);
	ck_assert_uint_gt(strlen(l.h[3].value), 300);
	o.max_value = 5000;	/* at most 1023 */
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 4);
	check_list(&l, 1023);
	for (i = 0; i < (size_t)l.n; i++)
		check_folded_width(&l.h[i]);
}
END_TEST

START_TEST(metadata_capped)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;
	int i;

	jenny(&s);
	o.groups = MF_HG_METADATA;
	o.max_value = 64;
	for (i = 0; i < STRIPE_META_MAX; i++) {
		snprintf(s.meta[i].key, sizeof(s.meta[i].key), "key%d", i);
		memset(s.meta[i].value, 'v', 100);
		s.meta[i].value[100] = '\0';
	}
	s.nmeta = STRIPE_META_MAX;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 1 + STRIPE_META_MAX);
	check_list(&l, 64);
	/* shortened to the longest prefix that fits: plain again once it fits the first line */
	want(&l, 1, "X-Stripe-Metadata-key0",
	    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
	want(&l, 8, "X-Stripe-Metadata-key7",
	    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
	/* the smallest cap (32): whole characters only */
	o.max_value = 1;
	memcpy(s.meta[0].value, "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 17);
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 1 + STRIPE_META_MAX);
	want(&l, 1, "X-Stripe-Metadata-key0", "=?UTF-8?B?8J+YgPCfmIDwn5iA?=");
}
END_TEST

START_TEST(has_prefix)
{
	ck_assert(mf_hdr_has_prefix("X-Stripe-Lookup", "X-Stripe-"));
	ck_assert(mf_hdr_has_prefix("x-stripe-customer", "X-Stripe-"));
	ck_assert(mf_hdr_has_prefix("X-STRIPE-", "X-Stripe-"));
	ck_assert(!mf_hdr_has_prefix("X-Stripe", "X-Stripe-"));
	ck_assert(!mf_hdr_has_prefix("X-Stripes-Lookup", "X-Stripe-"));
	ck_assert(!mf_hdr_has_prefix("Subject", "X-Stripe-"));
	ck_assert(!mf_hdr_has_prefix("Subject", ""));
	ck_assert(!mf_hdr_has_prefix(NULL, "X-Stripe-"));
	ck_assert(!mf_hdr_has_prefix("X-Stripe-A", NULL));
}
END_TEST

START_TEST(odd_arguments)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	ck_assert_int_eq(mf_hdr_render(NULL, &found_hit, &s, &l), -1);
	ck_assert_int_eq(l.n, 0);
	ck_assert_int_eq(mf_hdr_render(&o, NULL, &s, &l), -1);
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, NULL), -1);
	/* a cap below 32 is raised to 32; whole items only */
	o.max_value = 10;
	o.groups = 0;
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 1);
	want(&l, 0, "X-Stripe-Lookup", "v=2; found; cache=hit; age=120");
	/* a total without a currency is left out */
	o = opts_all();
	o.groups = MF_HG_CHARGES;
	s.charges.ntotals = 2;
	s.charges.totals[0].currency[0] = '\0';
	s.charges.totals[1].amount = 100;
	sm_strlcpy(s.charges.totals[1].currency, "eur", sizeof(s.charges.totals[1].currency));
	ck_assert_int_eq(mf_hdr_render(&o, &found_hit, &s, &l), 2);
	want(&l, 1, "X-Stripe-Charges",
	    "window=90d; count=3; succeeded=2; failed=1; refunded=0;\n"
	    "\tdisputed=0; total=1.00 EUR; last=2026-11-20 failed card_declined");
}
END_TEST


/* ---- issue #11: invoices, guests, amounts, matches, ids ---- */

START_TEST(invoice_line)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&s);
	s.delinquent = true;
	s.invoices.checked = true;
	s.invoices.open = 1;
	s.invoices.past_due = 1;
	s.invoices.ndue = 1;
	s.invoices.due[0].amount = 4900;
	sm_strlcpy(s.invoices.due[0].currency, "usd", sizeof(s.invoices.due[0].currency));
	s.invoices.attempts = 2;
	s.invoices.next_attempt = T_2026_12_01;
	s.invoices.due_date = T_2026_12_15;
	sm_strlcpy(s.invoices.id, "in_1Pgc6tB7WZ01zgkW", sizeof(s.invoices.id));
	sm_strlcpy(s.invoices.url, "https://invoice.stripe.com/i/acct_1/test_x", sizeof(s.invoices.url));
	ck_assert_int_ge(mf_hdr_render(&o, &found_hit, &s, &l), 0);
	check_list(&l, 900);
	ck_assert_str_eq(find(&l, "X-Stripe-Invoice"), "open=1; past_due=1; due=49.00 USD; attempts=2;\n"
	    "\tnext_attempt=2026-12-01; due_date=2026-12-15; id=in_1Pgc6tB7WZ01zgkW");
	/* a text header: the URL has ':' so it is RFC 2047 encoded words (decoding to it) */
	ck_assert_ptr_nonnull(find(&l, "X-Stripe-Invoice-Url"));
	ck_assert_int_eq(strncmp(find(&l, "X-Stripe-Invoice-Url"), "=?UTF-8?", 8), 0);
	/* none open: open=0 and no URL */
	s.invoices.open = 0;
	ck_assert_int_ge(mf_hdr_render(&o, &found_hit, &s, &l), 0);
	ck_assert_str_eq(find(&l, "X-Stripe-Invoice"), "open=0");
	ck_assert_ptr_null(find(&l, "X-Stripe-Invoice-Url"));
	/* not read (customer in good standing): no line */
	s.invoices.checked = false;
	ck_assert_int_ge(mf_hdr_render(&o, &found_hit, &s, &l), 0);
	ck_assert_ptr_null(find(&l, "X-Stripe-Invoice"));
	/* permission missing: no line, and Lookup says why */
	s.invoices.checked = true;
	s.parts_missing = STRIPE_PART_INVOICES;
	ck_assert_int_ge(mf_hdr_render(&o, &found_hit, &s, &l), 0);
	ck_assert_ptr_null(find(&l, "X-Stripe-Invoice"));
	ck_assert_str_eq(find(&l, "X-Stripe-Lookup"),
	    "v=2; found; cache=hit; age=120; mode=live; missing=invoices");
	/* group off, and privacy mode: no line */
	s.parts_missing = 0;
	o.groups = MF_HG_ALL & ~MF_HG_INVOICE;
	ck_assert_int_ge(mf_hdr_render(&o, &found_hit, &s, &l), 0);
	ck_assert_ptr_null(find(&l, "X-Stripe-Invoice"));
	o = opts_all();
	o.privacy = true;
	ck_assert_int_ge(mf_hdr_render(&o, &found_hit, &s, &l), 0);
	ck_assert_ptr_null(find(&l, "X-Stripe-Invoice"));
}
END_TEST

START_TEST(guest_and_search_words)
{
	static const struct mf_lookup_info nf = {
		.state = LK_NOT_FOUND, .cache = "miss", .livemode = false, .from_count = 1
	};
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	memset(&s, 0, sizeof(s));
	s.found_by = STRIPE_BY_GUEST;
	s.checkout.window_days = 90;
	s.checkout.sessions = 3;
	s.checkout.paid = 2;
	s.checkout.subscriptions = 1;
	s.checkout.ntotals = 2;
	s.checkout.totals[0].amount = 2500;
	sm_strlcpy(s.checkout.totals[0].currency, "eur", sizeof(s.checkout.totals[0].currency));
	s.checkout.totals[1].amount = 1500;
	sm_strlcpy(s.checkout.totals[1].currency, "usd", sizeof(s.checkout.totals[1].currency));
	s.checkout.has_last = true;
	s.checkout.last_created = 1764547200;	/* 2025-12-01 */
	sm_strlcpy(s.checkout.last_payment_status, "paid", sizeof(s.checkout.last_payment_status));
	sm_strlcpy(s.checkout.last_mode, "subscription", sizeof(s.checkout.last_mode));
	s.charges.window_days = 90;	/* a guest shows no Charges line */
	s.parts_missing = STRIPE_PART_SUBSCRIPTIONS;	/* a customer's part: not shown */
	ck_assert_int_eq(mf_hdr_render(&o, &nf, &s, &l), 2);
	ck_assert_str_eq(find(&l, "X-Stripe-Lookup"), "v=2; guest; cache=miss; mode=test");
	ck_assert_str_eq(find(&l, "X-Stripe-Checkout"), "window=90d; sessions=3; paid=2; "
	    "subscriptions=1;\n\ttotal=25.00 EUR, 15.00 USD; last=2025-12-01 paid subscription");
	ck_assert_ptr_null(find(&l, "X-Stripe-Charges"));
	/* Stripe's words that do not fit the grammar are dropped, never passed on */
	sm_strlcpy(s.checkout.last_mode, "sub; found", sizeof(s.checkout.last_mode));
	s.checkout.truncated = true;
	s.checkout.ntotals = 0;
	ck_assert_int_eq(mf_hdr_render(&o, &nf, &s, &l), 2);
	ck_assert_str_eq(find(&l, "X-Stripe-Checkout"), "window=90d; sessions=3; paid=2; "
	    "subscriptions=1;\n\ttotal=none; last=2025-12-01 paid; truncated=yes");
	/* the charges group off: no Checkout line */
	o.groups &= ~(unsigned)MF_HG_CHARGES;
	ck_assert_int_eq(mf_hdr_render(&o, &nf, &s, &l), 1);
	o = opts_all();
	/* privacy: a guest is not-found, no checkout */
	o.privacy = true;
	ck_assert_int_eq(mf_hdr_render(&o, &nf, &s, &l), 1);
	ck_assert_str_eq(find(&l, "X-Stripe-Lookup"), "v=2; not-found; cache=miss; mode=test");
	/* a key without rak_checkout_session_read: not-found says missing=guest */
	o = opts_all();
	memset(&s, 0, sizeof(s));
	s.parts_missing = STRIPE_PART_GUEST | STRIPE_PART_SUBSCRIPTIONS;
	ck_assert_int_eq(mf_hdr_render(&o, &nf, &s, &l), 1);
	ck_assert_str_eq(find(&l, "X-Stripe-Lookup"), "v=2; not-found; cache=miss; mode=test; "
	    "missing=guest");
	/* a part whose request Stripe refused reads the same, and its line is left out */
	s.parts_missing = 0;
	s.parts_refused = STRIPE_PART_GUEST;
	ck_assert_int_eq(mf_hdr_render(&o, &nf, &s, &l), 1);
	ck_assert_str_eq(find(&l, "X-Stripe-Lookup"), "v=2; not-found; cache=miss; mode=test; "
	    "missing=guest");
	jenny(&s);
	s.parts_refused = STRIPE_PART_CHARGES;
	ck_assert_int_ge(mf_hdr_render(&o, &found_hit, &s, &l), 0);
	ck_assert_ptr_nonnull(strstr(find(&l, "X-Stripe-Lookup"), "; missing=charges"));
	ck_assert_ptr_null(find(&l, "X-Stripe-Charges"));
	ck_assert_ptr_nonnull(find(&l, "X-Stripe-Subscription-Status"));
	/* plain not-found, search skipped */
	o = opts_all();
	memset(&s, 0, sizeof(s));
	s.search_skipped = true;
	ck_assert_int_eq(mf_hdr_render(&o, &nf, &s, &l), 1);
	ck_assert_str_eq(find(&l, "X-Stripe-Lookup"), "v=2; not-found; cache=miss; mode=test; "
	    "search=skipped");
	/* found by search; matches at the cap */
	jenny(&s);
	s.found_by = STRIPE_BY_SEARCH;
	s.matches = STRIPE_CUSTOMERS_CAP;
	s.matches_capped = true;
	ck_assert_int_ge(mf_hdr_render(&o, &found_hit, &s, &l), 0);
	ck_assert_str_eq(find(&l, "X-Stripe-Lookup"), "v=2; found; cache=hit; age=120; mode=live; "
	    "by=search");
	ck_assert_ptr_nonnull(strstr(find(&l, "X-Stripe-Customer"), "matches=100+"));
}
END_TEST

START_TEST(amount_kinds_and_ids)
{
	struct stripe_summary s;
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;
	const char *sub;

	jenny(&s);
	sm_strlcpy(s.customer_id, "cus-legacy", sizeof(s.customer_id));
	s.subs[0].amount_kind = STRIPE_AMOUNT_TIERED;
	ck_assert_int_ge(mf_hdr_render(&o, &found_hit, &s, &l), 0);
	ck_assert_str_eq(find(&l, "X-Stripe-Customer-Id"), "cus-legacy");
	sub = find(&l, "X-Stripe-Subscription");
	ck_assert_int_eq(strncmp(sub, "amount=tiered/month; status=active", 34), 0);
	s.subs[0].amount_kind = STRIPE_AMOUNT_METERED;
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_int_eq(strncmp(find(&l, "X-Stripe-Subscription"), "amount=metered/month;", 21), 0);
	s.subs[0].amount_kind = STRIPE_AMOUNT_DECIMAL;
	sm_strlcpy(s.subs[0].amount_decimal, "0.5", sizeof(s.subs[0].amount_decimal));
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_int_eq(strncmp(find(&l, "X-Stripe-Subscription"), "amount=0.005 USD/month;", 23), 0);
	s.subs[0].amount_kind = STRIPE_AMOUNT_CUSTOM;
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_int_eq(strncmp(find(&l, "X-Stripe-Subscription"), "amount=custom; status", 21), 0);
	/* a fixed amount without a currency is not shown as a bare number */
	s.subs[0].amount_kind = STRIPE_AMOUNT_FIXED;
	s.subs[0].unit_amount.currency[0] = '\0';
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_int_eq(strncmp(find(&l, "X-Stripe-Subscription"), "amount=unknown; status", 22), 0);
	/* an id outside Stripe's alphabet is dropped */
	sm_strlcpy(s.customer_id, "cus_x;y", sizeof(s.customer_id));
	mf_hdr_render(&o, &found_hit, &s, &l);
	ck_assert_ptr_null(find(&l, "X-Stripe-Customer-Id"));
}
END_TEST

/* AccountTable: "account=" on Lookup and the Accounts line right after it, byte for byte;
 * every state of an account; privacy; the choice among accounts (mf_hdr_pick). */
START_TEST(accounts_line)
{
	struct stripe_summary eu, us, guest;
	struct mf_lookup_info li_eu = found_hit, li_us = found_hit, li_nf = { .state = LK_NOT_FOUND, .cache = "miss" };
	struct mf_lookup_info li_err = { .state = LK_ERROR, .error_class = "timeout" };
	struct mf_lookup_info li_g = { .state = LK_NOT_FOUND, .cache = "miss" }, li;
	struct mf_hdr_account a[4];
	struct mf_hdr_opts o = opts_all();
	struct mf_hdr_list l;

	jenny(&eu);
	eu.subs_by_status[STRIPE_SUB_ACTIVE] = 0;
	eu.subs_by_status[STRIPE_SUB_PAST_DUE] = 1;
	eu.subs[0].status = STRIPE_SUB_PAST_DUE;
	eu.delinquent = true;
	eu.parts_missing = STRIPE_PART_CHARGES;
	jenny(&us);
	sm_strlcpy(us.customer_id, "cus_us", sizeof(us.customer_id));
	memset(&guest, 0, sizeof(guest));
	guest.found_by = STRIPE_BY_GUEST;
	guest.checkout.sessions = 1;
	a[0] = (struct mf_hdr_account){ "eu", &li_eu, &eu };
	a[1] = (struct mf_hdr_account){ "us", &li_us, &us };
	a[2] = (struct mf_hdr_account){ "apac", &li_err, NULL };
	a[3] = (struct mf_hdr_account){ "uk", &li_nf, &guest };
	li_nf.state = LK_NOT_FOUND;
	memset(&guest.charges, 0, sizeof(guest.charges));
	/* active at us beats past_due at eu; a guest or an error never beats a customer */
	ck_assert_int_eq(mf_hdr_pick(a, 4), 1);
	ck_assert_int_eq(mf_hdr_pick(a, 1), 0);
	ck_assert_int_eq(mf_hdr_pick(&a[2], 2), 1);	/* a guest over an error */
	li = li_us;
	li.account = "us";
	li.accounts = a;
	li.naccounts = 4;
	ck_assert_int_eq(mf_hdr_render(&o, &li, &us, &l), l.n);
	check_list(&l, 900);
	want(&l, 0, "X-Stripe-Lookup", "v=2; found; cache=hit; age=120; mode=live; account=us");
	want(&l, 1, "X-Stripe-Accounts", "eu=found; eu.status=past_due; eu.delinquent=yes;\n"
	    "\teu.missing=charges; us=found; us.status=active; us.delinquent=no; apac=error;\n"
	    "\tapac.error=timeout; uk=guest");
	ck_assert_str_eq(find(&l, "X-Stripe-Customer-Id"), "cus_us");
	/* privacy: statuses only, a guest reads not-found */
	o.privacy = true;
	mf_hdr_render(&o, &li, &us, &l);
	want(&l, 1, "X-Stripe-Accounts", "eu=found; eu.status=past_due; eu.delinquent=yes;\n"
	    "\teu.missing=charges; us=found; us.status=active; us.delinquent=no; apac=error;\n"
	    "\tapac.error=timeout; uk=not-found");
	/* groups off: no status or delinquent items */
	o = opts_all();
	o.groups = MF_HG_LOOKUP;
	mf_hdr_render(&o, &li, &us, &l);
	want(&l, 1, "X-Stripe-Accounts", "eu=found; eu.missing=charges; us=found; apac=error;\n"
	    "\tapac.error=timeout; uk=guest");
	/* a guest shown: account= names it; no customer anywhere */
	o = opts_all();
	li_g.account = "uk";
	li_g.accounts = &a[2];
	li_g.naccounts = 2;
	mf_hdr_render(&o, &li_g, &guest, &l);
	ck_assert_str_eq(l.h[0].value, "v=2; guest; cache=miss; mode=test; account=uk");
	want(&l, 1, "X-Stripe-Accounts", "apac=error; apac.error=timeout; uk=guest");
	/* an error shown (nothing found anywhere): no account=, every account listed */
	li = li_err;
	li.account = "apac";
	li.accounts = &a[2];
	li.naccounts = 1;
	mf_hdr_render(&o, &li, NULL, &l);
	want(&l, 0, "X-Stripe-Lookup", "v=2; error=timeout");
	want(&l, 1, "X-Stripe-Accounts", "apac=error; apac.error=timeout");
	/* skipped: no Accounts line; a name outside the grammar is left out */
	li.state = LK_SKIPPED;
	li.skip_reason = "bounce";
	mf_hdr_render(&o, &li, NULL, &l);
	ck_assert_int_eq(l.n, 1);
	a[0].name = "E U";
	li = li_us;
	li.accounts = a;
	li.naccounts = 2;
	mf_hdr_render(&o, &li, &us, &l);
	ck_assert_str_eq(find(&l, "X-Stripe-Accounts"), "us=found; us.status=active; us.delinquent=no");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mf_hdr");
	TCase *tc = tcase_create("hdr");

	tcase_add_test(tc, contract_full);
	tcase_add_test(tc, lookup_states);
	tcase_add_test(tc, stale_missing_from_count);
	tcase_add_test(tc, groups_select_lines);
	tcase_add_test(tc, prefix_change_and_validation);
	tcase_add_test(tc, non_ascii_names);
	tcase_add_test(tc, hostile_text_cleaned);
	tcase_add_test(tc, hostile_ids_and_words);
	tcase_add_test(tc, currencies);
	tcase_add_test(tc, subscriptions_detail);
	tcase_add_test(tc, charges_extras);
	tcase_add_test(tc, metadata_forms);
	tcase_add_test(tc, privacy_mode);
	tcase_add_test(tc, long_plan_folded_and_capped);
	tcase_add_test(tc, metadata_capped);
	tcase_add_test(tc, has_prefix);
	tcase_add_test(tc, odd_arguments);
	tcase_add_test(tc, invoice_line);
	tcase_add_test(tc, guest_and_search_words);
	tcase_add_test(tc, amount_kinds_and_ids);
	tcase_add_test(tc, accounts_line);
	suite_add_tcase(s, tc);
	return th_run(s);
}
