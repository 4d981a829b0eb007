/*
 * hdr_dump.c - test driver: renders summaries given as JSON lines on stdin and prints the
 * header lines mf_hdr_render() made, one JSON array of [name, value] pairs per input line.
 * Used by test_hdr_property.py, which checks what it prints with its own RFC 2047 decoder
 * and with Python's email package.
 *
 * Input object (every field optional): name, customer_id, delinquent, created, matches,
 * balance [amount, "usd"], subs [{status, plan, amount, currency, interval,
 * interval_count, period_end, cancel_at_period_end, quantity}], meta [[key, value], ...],
 * charges (bool: the fixed example charges), privacy, max_subs, max_value, groups.
 * Strings may hold NUL (JSON "\u0000"): copied byte for byte, as Stripe text could be.
 * Diagnostics: a line that is not such an object prints {"error": "..."}.
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_util.h"
#include "milter/mf_hdr.h"

static void copy(char *dst, size_t size, json_t *v)
{
	size_t n;

	memset(dst, 0, size);
	if (!json_is_string(v))
		return;
	n = json_string_length(v);
	if (n > size - 1) {
		/* cut at a character boundary, as stripe/ does */
		n = size - 1;
		while (n > 0 && ((unsigned char)json_string_value(v)[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, json_string_value(v), n);
}

static void sub_from(struct stripe_subscription *sub, json_t *o)
{
	memset(sub, 0, sizeof(*sub));
	sub->status = stripe_sub_status_parse(json_string_value(json_object_get(o, "status")) ?
	    json_string_value(json_object_get(o, "status")) : "active");
	copy(sub->plan, sizeof(sub->plan), json_object_get(o, "plan"));
	sub->unit_amount.amount = json_integer_value(json_object_get(o, "amount"));
	copy(sub->unit_amount.currency, sizeof(sub->unit_amount.currency),
	    json_object_get(o, "currency"));
	copy(sub->interval, sizeof(sub->interval), json_object_get(o, "interval"));
	sub->interval_count = (int)json_integer_value(json_object_get(o, "interval_count"));
	sub->period_end = json_integer_value(json_object_get(o, "period_end"));
	sub->cancel_at_period_end = json_is_true(json_object_get(o, "cancel_at_period_end"));
	sub->quantity = (int)json_integer_value(json_object_get(o, "quantity"));
	sub->item_count = 1;
}

static void render(json_t *in)
{
	struct stripe_summary *s = calloc(1, sizeof(*s));
	struct mf_hdr_list *l = calloc(1, sizeof(*l));
	struct mf_lookup_info li = { .state = LK_FOUND, .cache = "miss", .from_count = 1 };
	struct mf_hdr_opts o = { .prefix = "X-Stripe-", .groups = MF_HG_ALL, .max_subs = 4 };
	json_t *subs = json_object_get(in, "subs"), *meta = json_object_get(in, "meta"), *v, *out;
	size_t i;
	char *txt;

	if (s == NULL || l == NULL)
		abort();
	s->found = true;
	copy(s->customer_id, sizeof(s->customer_id), json_object_get(in, "customer_id"));
	copy(s->name, sizeof(s->name), json_object_get(in, "name"));
	s->delinquent = json_is_true(json_object_get(in, "delinquent"));
	s->created = json_integer_value(json_object_get(in, "created"));
	s->matches = (int)json_integer_value(json_object_get(in, "matches"));
	if ((v = json_object_get(in, "balance")) != NULL) {
		s->balance.amount = json_integer_value(json_array_get(v, 0));
		copy(s->balance.currency, sizeof(s->balance.currency), json_array_get(v, 1));
	}
	json_array_foreach(subs, i, v) {
		if (i >= STRIPE_SUBS_MAX)
			break;
		sub_from(&s->subs[i], v);
		s->subs_by_status[s->subs[i].status]++;
		s->nsubs++;
	}
	json_array_foreach(meta, i, v) {
		if (i >= STRIPE_META_MAX)
			break;
		copy(s->meta[i].key, sizeof(s->meta[i].key), json_array_get(v, 0));
		copy(s->meta[i].value, sizeof(s->meta[i].value), json_array_get(v, 1));
		s->nmeta++;
	}
	if (json_is_true(json_object_get(in, "charges"))) {
		s->charges.window_days = 90;
		s->charges.count = 2;
		s->charges.succeeded = 2;
		s->charges.ntotals = 1;
		s->charges.totals[0].amount = 9800;
		sm_strlcpy(s->charges.totals[0].currency, "usd", sizeof(s->charges.totals[0].currency));
	}
	o.privacy = json_is_true(json_object_get(in, "privacy"));
	if ((v = json_object_get(in, "max_subs")) != NULL)
		o.max_subs = (int)json_integer_value(v);
	o.max_value = (size_t)json_integer_value(json_object_get(in, "max_value"));
	if ((v = json_object_get(in, "groups")) != NULL)
		o.groups = (unsigned)json_integer_value(v);
	out = json_array();
	if (mf_hdr_render(&o, &li, s, l) < 0) {
		json_decref(out);
		out = json_pack("{s:s}", "error", "render failed");
	} else {
		for (i = 0; i < (size_t)l->n; i++)
			json_array_append_new(out, json_pack("[ss]", l->h[i].name, l->h[i].value));
	}
	txt = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
	printf("%s\n", txt != NULL ? txt : "{\"error\":\"dump\"}");
	free(txt);
	json_decref(out);
	free(s);
	free(l);
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		json_error_t err;
		json_t *in = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &err);

		if (!json_is_object(in))
			printf("{\"error\":\"bad input line: %s\"}\n", json_is_object(in) ? "" : "not an object");
		else
			render(in);
		json_decref(in);
		fflush(stdout);
	}
	free(line);
	return 0;
}
