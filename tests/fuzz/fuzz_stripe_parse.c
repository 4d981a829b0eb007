/*
 * fuzz_stripe_parse.c - libFuzzer harness: untrusted Stripe JSON -> summary.
 *
 * The input is fed to every list parser of stripe/ (customers, subscriptions, charges, sessions,
 * products) and to the error parser; what they accept is assembled into a struct
 * stripe_summary the way a lookup does, which must then survive the cache encoding
 * exactly (lookup/'s codec: encode -> decode -> identical). Any crash, sanitizer report or mismatch is a bug.
 *
 * With FUZZ_DUMP_SUMMARY=DIR in the environment each encoded summary is also written to DIR
 * (tests/fuzz/seeds.py makes the seeds of fuzz_lk_summary and fuzz_cache_entry so).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookup/lookup.h"
#include "stripe/stripe_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_dump(const char *buf, size_t len)
{
	static unsigned seq;
	const char *dir = getenv("FUZZ_DUMP_SUMMARY");
	char path[4096];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/summary-%u", dir, seq++);
	f = fopen(path, "w");
	if (f == NULL)
		return;
	fwrite(buf, 1, len, f);
	fclose(f);
}

/* Copies a string field zero-padded: the parsers leave what a longer earlier value left
 * after the NUL (the arrays here are reused between runs), which the codec rightly drops. */
#define FUZZ_COPY(dst, src) strncpy((dst), (src), sizeof(dst) - 1)

/* Zeroes what follows the NUL of every string of s: the parsers overwrite a "last" value
 * with a shorter one in place (charges' last_status), bytes the codec rightly drops. */
#define Z(a) (memset((a) + strnlen((a), sizeof(a)), 0, sizeof(a) - strnlen((a), sizeof(a))))
static void fuzz_canon(struct stripe_summary *s)
{
	int i;

	Z(s->customer_id); Z(s->email); Z(s->name); Z(s->balance.currency);
	for (i = 0; i < STRIPE_META_MAX; i++) {
		Z(s->meta[i].key);
		Z(s->meta[i].value);
	}
	for (i = 0; i < STRIPE_SUBS_MAX; i++) {
		struct stripe_subscription *b = &s->subs[i];

		Z(b->id); Z(b->price_id); Z(b->product_id); Z(b->plan); Z(b->unit_amount.currency);
		Z(b->amount_decimal); Z(b->interval);
	}
	for (i = 0; i < STRIPE_TOTALS_MAX; i++) {
		Z(s->charges.totals[i].currency);
		Z(s->invoices.due[i].currency);
		Z(s->checkout.totals[i].currency);
	}
	Z(s->checkout.last_payment_status); Z(s->checkout.last_mode);
	Z(s->charges.last_status); Z(s->charges.last_amount.currency);
	Z(s->charges.last_failure_code); Z(s->invoices.id); Z(s->invoices.amount_remaining.currency);
	Z(s->invoices.url);
}

static void fuzz_round_trip(struct stripe_summary *s)
{
	struct stripe_summary back;
	char *buf = NULL, err[128];
	size_t len;

	fuzz_canon(s);

	if (lk_summary_encode(s, &buf, &len) != 0)
		abort();	/* parsed strings are valid UTF-8: encoding cannot fail */
	fuzz_dump(buf, len);
	if (lk_summary_decode(buf, len, &back, err, sizeof(err)) != 0 ||
	    memcmp(s, &back, sizeof(back)) != 0)
		abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char keys[2][STRIPE_META_KEY_MAX + 1] = { "tier", "plan" };
	static struct stripe_customer custs[STRIPE_CUSTOMERS_CAP];
	static struct stripe_subscription subs[STRIPE_SUBS_FETCH];
	struct stripe_product prods[STRIPE_SUBS_MAX];
	struct stripe_summary s;
	const char *buf = (const char *)data;
	char msg[160], perm[STRIPE_CODE_MAX], last[STRIPE_ID_MAX], code[STRIPE_CODE_MAX];
	char page[256];
	bool more;
	int n = 0, ns = 0, np;

	memset(&s, 0, sizeof(s));
	memset(subs, 0, sizeof(subs));	/* whole structs are summarised: no earlier run's bytes */
	if (stripe_parse_customers(buf, size, keys, 2, size % 2 ? "A@b.c" : NULL, custs,
	    STRIPE_CUSTOMERS_CAP, &n, &more, last, sizeof(last), page, sizeof(page), msg,
	    sizeof(msg)) == 0 && n > 0) {
		int k = stripe_choose_customer(custs, n);

		s.found = true;
		s.matches = n;
		FUZZ_COPY(s.customer_id, custs[k].id);
		FUZZ_COPY(s.email, custs[k].email);
		FUZZ_COPY(s.name, custs[k].name);
		s.created = custs[k].created;
		s.balance.amount = custs[k].balance.amount;
		FUZZ_COPY(s.balance.currency, custs[k].balance.currency);
		s.nmeta = custs[k].nmeta;
		for (int i = 0; i < s.nmeta && i < STRIPE_META_MAX; i++) {
			FUZZ_COPY(s.meta[i].key, custs[k].meta[i].key);
			FUZZ_COPY(s.meta[i].value, custs[k].meta[i].value);
		}
		if (custs[k].subs != NULL && stripe_parse_subscription_list(custs[k].subs, subs,
		    STRIPE_SUBS_FETCH, &ns, &more) == 0)
			stripe_subs_summarise(&s, subs, ns);
		ns = 0;
	}
	stripe_customers_release(custs, n);
	if (s.nsubs == 0 && stripe_parse_subscriptions(buf, size, subs, STRIPE_SUBS_FETCH, &ns,
	    &more, msg, sizeof(msg)) == 0)
		stripe_subs_summarise(&s, subs, ns);
	stripe_parse_charges(buf, size, size % 3 ? NULL : "a@b.c", 0, &s.charges, 100, &more,
	    last, sizeof(last), msg, sizeof(msg));
	stripe_parse_invoices(buf, size, 1700000000, &s.invoices, &more, msg, sizeof(msg));
	s.checkout.window_days = 90;
	stripe_parse_sessions(buf, size, "a@b.c", size % 2 ? 0 : 1700000000, &s.checkout, &more,
	    msg, sizeof(msg));
	if (stripe_parse_products(buf, size, prods, STRIPE_SUBS_MAX, &np, msg, sizeof(msg)) == 0 &&
	    np > 0 && s.nsubs > 0)
		FUZZ_COPY(s.subs[0].plan, prods[0].name);
	stripe_parse_error(buf, size, msg, sizeof(msg), perm, sizeof(perm), code, sizeof(code));
	fuzz_round_trip(&s);
	return 0;
}
