/*
 * lk_codec.c - struct stripe_summary <-> compact versioned JSON: the bytes of a sender's
 * entry in the cache (moved here from stripe/, which knows no cache format).
 *
 * Interface (lookup.h): lk_summary_encode() writes {"v":1,...} (malloc'd, compact, short keys);
 *	lk_summary_decode() reads it back into an identical struct (the
 *	round trip is exact for any summary whose strings are valid UTF-8).
 *
 * Rules for decode: "v" must be LK_SUMMARY_VERSION (anything else is rejected with
 *	"unknown summary version N"); a field of the wrong type is rejected; a missing field
 *	reads as zero (so fields can be added within a version); strings longer than their
 *	array are cut at a UTF-8 boundary; array counts are capped at the struct's sizes.
 *
 * Diagnostics: encode returns -1 on out of memory or a string that is not UTF-8.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/sm_util.h"
#include "lookup/lk_int.h"

/* ---- encode ---- */

static json_t *lk_enc_money(const struct stripe_money *m)
{
	return json_pack("[Is]", (json_int_t)m->amount, m->currency);
}

static json_t *lk_enc_sub(const struct stripe_subscription *s)
{
	return json_pack("{ss ss sb sI sI sI sI si ss ss ss so si ss si ss ss}",
	    "id", s->id, "st", stripe_sub_status_name(s->status),
	    "cape", s->cancel_at_period_end, "ca", (json_int_t)s->cancel_at,
	    "te", (json_int_t)s->trial_end, "pe", (json_int_t)s->period_end,
	    "cr", (json_int_t)s->created, "ni", s->item_count, "pr", s->price_id,
	    "prod", s->product_id, "plan", s->plan, "ua", lk_enc_money(&s->unit_amount),
	    "q", s->quantity, "iv", s->interval, "ic", s->interval_count,
	    "ak", stripe_amount_kind_name(s->amount_kind), "ad", s->amount_decimal);
}

static json_t *lk_enc_invoices(const struct stripe_invoices *v)
{
	json_t *due = json_array();
	int i;

	for (i = 0; due && i < v->ndue && i < STRIPE_TOTALS_MAX; i++)
		json_array_append_new(due, lk_enc_money(&v->due[i]));
	return json_pack("{sb si si so ss so si sI sI sI ss}", "chk", v->checked, "open", v->open,
	    "pd", v->past_due, "due", due, "id", v->id,
	    "rem", lk_enc_money(&v->amount_remaining), "att", v->attempts,
	    "na", (json_int_t)v->next_attempt, "dd", (json_int_t)v->due_date,
	    "cr", (json_int_t)v->created, "url", v->url);
}

/* Money per currency as an array; NULL when out of memory (json_pack then fails too). */
static json_t *lk_enc_totals(const struct stripe_money *m, int n)
{
	json_t *totals = json_array();
	int i;

	for (i = 0; totals && i < n && i < STRIPE_TOTALS_MAX; i++)
		json_array_append_new(totals, lk_enc_money(&m[i]));
	return totals;
}

static json_t *lk_enc_charges(const struct stripe_charges *c)
{
	json_t *totals = lk_enc_totals(c->totals, c->ntotals);

	return json_pack("{si si sb si si si si si si so sb sI ss so ss}",
	    "win", c->window_days, "n", c->count, "trunc", c->truncated, "ok", c->succeeded,
	    "fail", c->failed, "pend", c->pending, "ref", c->refunded,
	    "pref", c->partially_refunded, "disp", c->disputed, "tot", totals,
	    "hl", c->has_last, "lc", (json_int_t)c->last_created, "ls", c->last_status,
	    "la", lk_enc_money(&c->last_amount), "lf", c->last_failure_code);
}

static json_t *lk_enc_checkout(const struct stripe_checkout *c)
{
	json_t *totals = lk_enc_totals(c->totals, c->ntotals);

	return json_pack("{si si si si sb so sb sI ss ss}", "win", c->window_days,
	    "n", c->sessions, "paid", c->paid, "subs", c->subscriptions, "trunc", c->truncated,
	    "tot", totals, "hl", c->has_last, "lc", (json_int_t)c->last_created,
	    "lp", c->last_payment_status, "lm", c->last_mode);
}

/* Whether the checkout part holds anything: a part with a zero window but other fields
 * set (only a corrupt or hand-made entry has one) is written too, so that decode gives
 * back exactly what was encoded. */
static bool lk_checkout_set(const struct stripe_checkout *c)
{
	return c->window_days != 0 || c->sessions != 0 || c->paid != 0 || c->subscriptions != 0 ||
	    c->truncated || c->ntotals != 0 || c->has_last || c->last_created != 0 ||
	    c->last_payment_status[0] != '\0' || c->last_mode[0] != '\0';
}

static json_t *lk_enc_lists(const struct stripe_summary *s, json_t **meta, json_t **subs)
{
	json_t *by = json_object();
	int i;

	*meta = json_array();
	*subs = json_array();
	for (i = 0; *meta && i < s->nmeta && i < STRIPE_META_MAX; i++)
		json_array_append_new(*meta, json_pack("[ss]", s->meta[i].key, s->meta[i].value));
	for (i = 0; *subs && i < s->nsubs && i < STRIPE_SUBS_MAX; i++)
		json_array_append_new(*subs, lk_enc_sub(&s->subs[i]));
	for (i = 0; by && i < STRIPE_SUB__COUNT; i++)
		if (s->subs_by_status[i] != 0)
			json_object_set_new(by, stripe_sub_status_name(i),
			    json_integer(s->subs_by_status[i]));
	return by;
}

int lk_summary_encode(const struct stripe_summary *s, char **buf, size_t *len)
{
	json_t *root, *meta, *subs, *by;
	int rc = -1;

	*buf = NULL;
	*len = 0;
	by = lk_enc_lists(s, &meta, &subs);
	/* "o" steals references, also on failure, so nothing leaks when pack fails. */
	root = json_pack("{si sb sb sI si si ss ss ss sI sb so so si so so so ss sb sb so}",
	    "v", LK_SUMMARY_VERSION, "found", s->found, "live", s->livemode,
	    "at", (json_int_t)s->fetched_at, "miss", (int)s->parts_missing, "m", s->matches,
	    "id", s->customer_id, "email", s->email, "name", s->name,
	    "cr", (json_int_t)s->created, "dq", s->delinquent, "bal", lk_enc_money(&s->balance),
	    "meta", meta, "st", s->subs_total, "by", by, "subs", subs,
	    "ch", lk_enc_charges(&s->charges), "fb", stripe_found_by_name(s->found_by),
	    "ssk", s->search_skipped, "mc", s->matches_capped,
	    "inv", lk_enc_invoices(&s->invoices));
	/* parts Stripe refused ("ref") and a guest's checkout ("co"), only when there are
	 * any: other entries stay as they were. Both bit sets are written as "miss" is, as a
	 * 32-bit int, so a decoded one (read as int32) encodes to the same value. */
	if (root != NULL && s->parts_refused != 0 &&
	    json_object_set_new(root, "ref", json_integer((int)s->parts_refused)) != 0)
		goto out;
	if (root != NULL && lk_checkout_set(&s->checkout) &&
	    json_object_set_new(root, "co", lk_enc_checkout(&s->checkout)) != 0)
		goto out;
	if (root == NULL)
		goto out;
	*buf = json_dumps(root, JSON_COMPACT);
	if (*buf == NULL)
		goto out;
	*len = strlen(*buf);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---- decode ---- */

struct lk_dec {
	bool bad;
	char what[64];	/* first bad field */
};

static json_t *lk_dec_get(struct lk_dec *d, json_t *o, const char *k, json_type type)
{
	json_t *v = json_object_get(o, k);

	if (v == NULL)
		return NULL;
	if ((type == JSON_TRUE && !json_is_boolean(v)) || (type != JSON_TRUE && json_typeof(v) != type)) {
		if (!d->bad)
			snprintf(d->what, sizeof(d->what), "field %s has the wrong type", k);
		d->bad = true;
		return NULL;
	}
	return v;
}

static int64_t lk_dec_int(struct lk_dec *d, json_t *o, const char *k)
{
	json_t *v = lk_dec_get(d, o, k, JSON_INTEGER);

	return v ? (int64_t)json_integer_value(v) : 0;
}

static int lk_dec_i32(struct lk_dec *d, json_t *o, const char *k)
{
	int64_t v = lk_dec_int(d, o, k);

	if (v < INT32_MIN || v > INT32_MAX) {
		if (!d->bad)
			snprintf(d->what, sizeof(d->what), "field %s is out of range", k);
		d->bad = true;
		return 0;
	}
	return (int)v;
}

static bool lk_dec_bool(struct lk_dec *d, json_t *o, const char *k)
{
	return json_is_true(lk_dec_get(d, o, k, JSON_TRUE));
}

/* Exact copy (no control-character rewriting: encode wrote what the struct held), cut
 * at a UTF-8 boundary when too long. */
static void lk_dec_copy(char *out, size_t len, const char *s)
{
	size_t n = strlen(s);

	if (n > len - 1) {
		n = len - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

static void lk_dec_str(struct lk_dec *d, json_t *o, const char *k, char *out, size_t len)
{
	json_t *v = lk_dec_get(d, o, k, JSON_STRING);

	lk_dec_copy(out, len, v ? json_string_value(v) : "");
}

static void lk_dec_money(struct lk_dec *d, json_t *v, struct stripe_money *m)
{
	if (v == NULL)
		return;
	if (!json_is_array(v) || json_array_size(v) != 2 ||
	    !json_is_integer(json_array_get(v, 0)) || !json_is_string(json_array_get(v, 1))) {
		if (!d->bad)
			snprintf(d->what, sizeof(d->what), "a money field is malformed");
		d->bad = true;
		return;
	}
	m->amount = (int64_t)json_integer_value(json_array_get(v, 0));
	lk_dec_copy(m->currency, sizeof(m->currency), json_string_value(json_array_get(v, 1)));
}

static enum stripe_sub_status lk_dec_status(const char *name)
{
	return strcmp(name, "none") == 0 ? STRIPE_SUB_NONE : stripe_sub_status_parse(name);
}

static void lk_dec_sub(struct lk_dec *d, json_t *o, struct stripe_subscription *s)
{
	char st[STRIPE_CODE_MAX];

	if (!json_is_object(o)) {
		d->bad = true;
		return;
	}
	lk_dec_str(d, o, "id", s->id, sizeof(s->id));
	lk_dec_str(d, o, "st", st, sizeof(st));
	s->status = lk_dec_status(st);
	s->cancel_at_period_end = lk_dec_bool(d, o, "cape");
	s->cancel_at = lk_dec_int(d, o, "ca");
	s->trial_end = lk_dec_int(d, o, "te");
	s->period_end = lk_dec_int(d, o, "pe");
	s->created = lk_dec_int(d, o, "cr");
	s->item_count = lk_dec_i32(d, o, "ni");
	lk_dec_str(d, o, "pr", s->price_id, sizeof(s->price_id));
	lk_dec_str(d, o, "prod", s->product_id, sizeof(s->product_id));
	lk_dec_str(d, o, "plan", s->plan, sizeof(s->plan));
	lk_dec_money(d, lk_dec_get(d, o, "ua", JSON_ARRAY), &s->unit_amount);
	s->quantity = lk_dec_i32(d, o, "q");
	lk_dec_str(d, o, "iv", s->interval, sizeof(s->interval));
	s->interval_count = lk_dec_i32(d, o, "ic");
	lk_dec_str(d, o, "ak", st, sizeof(st));
	s->amount_kind = stripe_amount_kind_parse(st);
	lk_dec_str(d, o, "ad", s->amount_decimal, sizeof(s->amount_decimal));
}

static void lk_dec_invoices(struct lk_dec *d, json_t *o, struct stripe_invoices *v)
{
	json_t *due, *x;
	size_t i;

	if (o == NULL)
		return;
	v->checked = lk_dec_bool(d, o, "chk");
	v->open = lk_dec_i32(d, o, "open");
	v->past_due = lk_dec_i32(d, o, "pd");
	due = lk_dec_get(d, o, "due", JSON_ARRAY);
	json_array_foreach(due, i, x) {
		if (v->ndue >= STRIPE_TOTALS_MAX)
			break;
		lk_dec_money(d, x, &v->due[v->ndue++]);
	}
	lk_dec_str(d, o, "id", v->id, sizeof(v->id));
	lk_dec_money(d, lk_dec_get(d, o, "rem", JSON_ARRAY), &v->amount_remaining);
	v->attempts = lk_dec_i32(d, o, "att");
	v->next_attempt = lk_dec_int(d, o, "na");
	v->due_date = lk_dec_int(d, o, "dd");
	v->created = lk_dec_int(d, o, "cr");
	lk_dec_str(d, o, "url", v->url, sizeof(v->url));
}

static enum stripe_found_by lk_dec_found_by(const char *name)
{
	int i;

	for (i = 0; i < STRIPE_BY__COUNT; i++)
		if (strcmp(name, stripe_found_by_name((enum stripe_found_by)i)) == 0)
			return (enum stripe_found_by)i;
	return STRIPE_BY_NONE;
}

/* The "tot" array of o into m[0..*n) (at most STRIPE_TOTALS_MAX). */
static void lk_dec_totals(struct lk_dec *d, json_t *o, struct stripe_money *m, int *n)
{
	json_t *tot = lk_dec_get(d, o, "tot", JSON_ARRAY), *v;
	size_t i;

	json_array_foreach(tot, i, v) {
		if (*n >= STRIPE_TOTALS_MAX)
			break;
		lk_dec_money(d, v, &m[(*n)++]);
	}
}

static void lk_dec_charges(struct lk_dec *d, json_t *o, struct stripe_charges *c)
{
	if (o == NULL)
		return;
	c->window_days = lk_dec_i32(d, o, "win");
	c->count = lk_dec_i32(d, o, "n");
	c->truncated = lk_dec_bool(d, o, "trunc");
	c->succeeded = lk_dec_i32(d, o, "ok");
	c->failed = lk_dec_i32(d, o, "fail");
	c->pending = lk_dec_i32(d, o, "pend");
	c->refunded = lk_dec_i32(d, o, "ref");
	c->partially_refunded = lk_dec_i32(d, o, "pref");
	c->disputed = lk_dec_i32(d, o, "disp");
	lk_dec_totals(d, o, c->totals, &c->ntotals);
	c->has_last = lk_dec_bool(d, o, "hl");
	c->last_created = lk_dec_int(d, o, "lc");
	lk_dec_str(d, o, "ls", c->last_status, sizeof(c->last_status));
	lk_dec_money(d, lk_dec_get(d, o, "la", JSON_ARRAY), &c->last_amount);
	lk_dec_str(d, o, "lf", c->last_failure_code, sizeof(c->last_failure_code));
}

static void lk_dec_checkout(struct lk_dec *d, json_t *o, struct stripe_checkout *c)
{
	if (o == NULL)
		return;
	c->window_days = lk_dec_i32(d, o, "win");
	c->sessions = lk_dec_i32(d, o, "n");
	c->paid = lk_dec_i32(d, o, "paid");
	c->subscriptions = lk_dec_i32(d, o, "subs");
	c->truncated = lk_dec_bool(d, o, "trunc");
	lk_dec_totals(d, o, c->totals, &c->ntotals);
	c->has_last = lk_dec_bool(d, o, "hl");
	c->last_created = lk_dec_int(d, o, "lc");
	lk_dec_str(d, o, "lp", c->last_payment_status, sizeof(c->last_payment_status));
	lk_dec_str(d, o, "lm", c->last_mode, sizeof(c->last_mode));
}

static void lk_dec_lists(struct lk_dec *d, json_t *root, struct stripe_summary *s)
{
	json_t *meta = lk_dec_get(d, root, "meta", JSON_ARRAY);
	json_t *subs = lk_dec_get(d, root, "subs", JSON_ARRAY);
	json_t *by = lk_dec_get(d, root, "by", JSON_OBJECT), *v;
	size_t i;
	const char *k;

	json_array_foreach(meta, i, v) {
		if (s->nmeta >= STRIPE_META_MAX)
			break;
		if (!json_is_array(v) || !json_is_string(json_array_get(v, 0)) ||
		    !json_is_string(json_array_get(v, 1))) {
			d->bad = true;
			break;
		}
		lk_dec_copy(s->meta[s->nmeta].key, sizeof(s->meta[0].key),
		    json_string_value(json_array_get(v, 0)));
		lk_dec_copy(s->meta[s->nmeta].value, sizeof(s->meta[0].value),
		    json_string_value(json_array_get(v, 1)));
		s->nmeta++;
	}
	json_array_foreach(subs, i, v) {
		if (s->nsubs >= STRIPE_SUBS_MAX)
			break;
		lk_dec_sub(d, v, &s->subs[s->nsubs++]);
	}
	json_object_foreach(by, k, v) {
		enum stripe_sub_status st = lk_dec_status(k);

		s->subs_by_status[st] = lk_dec_i32(d, by, k);
	}
}

int lk_summary_decode(const char *buf, size_t len, struct stripe_summary *out,
    char *err, size_t errlen)
{
	struct lk_dec d = { false, "" };
	json_t *root = NULL, *v;
	json_error_t je;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	root = buf ? json_loadb(buf, len, 0, &je) : NULL;
	if (!json_is_object(root)) {
		snprintf(err, errlen, "summary is not a JSON object");
		goto out;
	}
	v = json_object_get(root, "v");
	if (!json_is_integer(v) || json_integer_value(v) != LK_SUMMARY_VERSION) {
		snprintf(err, errlen, "unknown summary version %lld",
		    json_is_integer(v) ? (long long)json_integer_value(v) : -1LL);
		goto out;
	}
	out->found = lk_dec_bool(&d, root, "found");
	out->livemode = lk_dec_bool(&d, root, "live");
	out->fetched_at = lk_dec_int(&d, root, "at");
	out->parts_missing = (unsigned)lk_dec_i32(&d, root, "miss");
	out->parts_refused = (unsigned)lk_dec_i32(&d, root, "ref");
	out->matches = lk_dec_i32(&d, root, "m");
	lk_dec_str(&d, root, "id", out->customer_id, sizeof(out->customer_id));
	lk_dec_str(&d, root, "email", out->email, sizeof(out->email));
	lk_dec_str(&d, root, "name", out->name, sizeof(out->name));
	out->created = lk_dec_int(&d, root, "cr");
	out->delinquent = lk_dec_bool(&d, root, "dq");
	lk_dec_money(&d, lk_dec_get(&d, root, "bal", JSON_ARRAY), &out->balance);
	out->subs_total = lk_dec_i32(&d, root, "st");
	lk_dec_lists(&d, root, out);
	lk_dec_charges(&d, lk_dec_get(&d, root, "ch", JSON_OBJECT), &out->charges);
	lk_dec_invoices(&d, lk_dec_get(&d, root, "inv", JSON_OBJECT), &out->invoices);
	lk_dec_checkout(&d, lk_dec_get(&d, root, "co", JSON_OBJECT), &out->checkout);
	{
		char fb[16];

		lk_dec_str(&d, root, "fb", fb, sizeof(fb));
		out->found_by = lk_dec_found_by(fb);
	}
	out->search_skipped = lk_dec_bool(&d, root, "ssk");
	out->matches_capped = lk_dec_bool(&d, root, "mc");
	if (d.bad) {
		snprintf(err, errlen, "malformed summary: %s", d.what[0] ? d.what : "bad element");
		memset(out, 0, sizeof(*out));
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}
