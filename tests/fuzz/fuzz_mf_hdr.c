/*
 * fuzz_mf_hdr.c - libFuzzer harness for header rendering with random summaries.
 *
 * The input fills a struct stripe_summary byte for byte (strings then NUL-terminated at
 * their last byte, as stripe/ guarantees), plus options and lookup info. Every rendered value
 * must hold the contract's invariants: printable US-ASCII, "\n\t" as the only line break,
 * not longer than the cap, not empty, not ending in a separator; names carry the prefix;
 * Lookup starts with "v=2; "; token lines (all but Name, Plan and Metadata-*) never hold
 * '"' or "=?" (no free text reaches them). The text encoder has its own harness
 * (fuzz_mail_text.c).
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter/mf_hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TERM(a) ((a)[sizeof(a) - 1] = '\0')
/* A bool filled from raw bytes: only 0 and 1 are values of the type (stripe/ and the codec
 * never store another; any other byte is undefined behaviour in the reader, not a finding). */
#define BOOL(b) (*(unsigned char *)&(b) &= 1)

static void terminate(struct stripe_summary *s)
{
	int i;

	BOOL(s->search_skipped);
	BOOL(s->matches_capped);
	BOOL(s->charges.truncated);
	BOOL(s->charges.has_last);
	BOOL(s->invoices.checked);
	TERM(s->customer_id);
	TERM(s->email);
	TERM(s->name);
	TERM(s->balance.currency);
	for (i = 0; i < STRIPE_META_MAX; i++) {
		TERM(s->meta[i].key);
		TERM(s->meta[i].value);
	}
	for (i = 0; i < STRIPE_SUBS_MAX; i++) {
		struct stripe_subscription *b = &s->subs[i];

		BOOL(b->cancel_at_period_end);
		TERM(b->id);
		TERM(b->price_id);
		TERM(b->product_id);
		TERM(b->plan);
		TERM(b->unit_amount.currency);
		TERM(b->interval);
	}
	for (i = 0; i < STRIPE_TOTALS_MAX; i++)
		TERM(s->charges.totals[i].currency);
	TERM(s->charges.last_status);
	TERM(s->charges.last_amount.currency);
	TERM(s->charges.last_failure_code);
}

static void check(const struct mf_hdr_list *l, size_t cap, const char *prefix)
{
	int i;

	if (l->n < 1 || l->n > MF_HDR_LINES_MAX)
		abort();
	for (i = 0; i < l->n; i++) {
		const char *v = l->h[i].value;
		size_t j, len = strlen(v);

		const char *n = l->h[i].name + strlen(prefix);
		bool text = strcmp(n, "Name") == 0 || strcmp(n, "Plan") == 0 ||
		    strncmp(n, "Metadata-", 9) == 0;

		if (strncmp(l->h[i].name, prefix, strlen(prefix)) != 0)
			abort();
		if (i == 0 && (strcmp(n, "Lookup") != 0 || strncmp(v, "v=2; ", 5) != 0))
			abort();
		if (!text && (strchr(v, '"') != NULL || strstr(v, "=?") != NULL))
			abort();
		if (len == 0 || len > cap || v[len - 1] == ' ' || v[len - 1] == ';')
			abort();
		for (j = 0; j < len; j++) {
			unsigned char c = (unsigned char)v[j];

			if (c == '\n' && v[j + 1] == '\t')
				continue;
			if (c < 0x20 && c != '\t')
				abort();
			if (c >= 0x7f)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stripe_summary s;
	struct mf_lookup_info li;
	struct mf_hdr_opts o;
	struct mf_hdr_list l;
	uint8_t ctl[8];
	static const char *const words[] = { "hit", "miss", "stale", "timeout", "bad word", NULL };
	size_t cap;

	if (size < sizeof(ctl))
		return 0;
	memcpy(ctl, data, sizeof(ctl));
	data += sizeof(ctl);
	size -= sizeof(ctl);
	memset(&s, 0, sizeof(s));
	memcpy(&s, data, size < sizeof(s) ? size : sizeof(s));
	terminate(&s);
	s.found = ctl[0] & 1;
	s.livemode = ctl[0] & 2;
	s.delinquent = ctl[0] & 4;
	memset(&li, 0, sizeof(li));
	li.state = (enum lk_state)(ctl[1] % 4);
	li.cache = words[ctl[2] % 6];
	li.error_class = words[(ctl[2] >> 3) % 6];
	li.skip_reason = words[(ctl[2] >> 5) % 6];
	li.age_s = (long)ctl[3] * 100 - 1000;
	li.stale = ctl[0] & 8;
	li.from_count = ctl[4] % 4;
	memset(&o, 0, sizeof(o));
	o.prefix = (ctl[0] & 16) ? "X-Billing-" : "X-Stripe-";
	o.groups = ctl[5];
	o.max_value = (size_t)ctl[6] * 5;
	o.max_subs = (int)(ctl[7] % 7) - 1;
	o.privacy = ctl[0] & 32;
	cap = o.max_value == 0 ? MF_HDR_MAX_VALUE_DEFAULT : o.max_value < 32 ? 32 : o.max_value;
	if (cap > MF_HDR_VALUE_MAX - 1)
		cap = MF_HDR_VALUE_MAX - 1;
	if (mf_hdr_render(&o, &li, (ctl[0] & 64) ? NULL : &s, &l) < 0)
		abort();
	check(&l, cap, o.prefix);
	return 0;
}
