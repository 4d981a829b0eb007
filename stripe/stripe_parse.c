/*
 * stripe_parse.c - Stripe JSON (untrusted) -> plain structs.
 *
 * Interface (stripe_int.h): stripe_parse_customers(), _subscriptions(),
 *	_subscription_list(), _charges(), _invoices(), _products(), _error(),
 *	stripe_copy_text(), stripe_id_ok().
 *
 * Rules: the body must be a JSON object holding a "data" array, else -1 (malformed).
 *	Inside, every field is optional: a missing field, null or wrong type reads as 0, ""
 *	or false; strings are cut at a UTF-8 boundary to their array size and control
 *	characters become spaces (no CR, LF or NUL leaves this file). A list element that is
 *	not an object, or an object whose id is missing or not a Stripe id (1-255 of
 *	[A-Za-z0-9_-], custom ids such as "gold-plan" included), is skipped. Strings with
 *	\u0000 are accepted (JSON_ALLOW_NUL) and the NUL becomes a space.
 *	Prices: per_unit with unit_amount is FIXED; with only unit_amount_decimal (sub-cent)
 *	DECIMAL; billing_scheme=tiered TIERED; recurring.usage_type=metered METERED (its
 *	unit amount kept); custom_unit_amount set CUSTOM. A legacy plan (no price) is read
 *	the same way from plan.amount/_decimal, plan.usage_type, plan.billing_scheme.
 *	Charge totals add amount_captured - amount_refunded of succeeded charges (an
 *	uncaptured authorisation adds nothing).
 *
 * Known limits: jansson's parser caps nesting depth (2048); deeper input is malformed.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/sm_util.h"
#include "stripe/stripe_int.h"

void stripe_copy_text(char *out, size_t len, const char *s, size_t n)
{
	size_t i;

	if (out == NULL || len == 0)
		return;
	if (s == NULL)
		n = 0;
	if (n > len - 1) {
		n = len - 1;
		/* Back up over continuation bytes, then drop the cut lead byte. */
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	out[n] = '\0';
}

static void stripe_jtext(json_t *obj, const char *key, char *out, size_t len)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		stripe_copy_text(out, len, json_string_value(v), json_string_length(v));
	else if (len > 0)
		out[0] = '\0';
}

bool stripe_id_ok(const char *s, size_t n)
{
	size_t i;

	if (s == NULL || n == 0 || n >= STRIPE_ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* An id: a Stripe id that fits (it goes into URLs, percent-encoded, and headers). */
static bool stripe_jid(json_t *obj, const char *key, char *out, size_t len)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	size_t n;

	out[0] = '\0';
	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n >= len || !stripe_id_ok(s, n))
		return false;
	memcpy(out, s, n + 1);
	return true;
}

/* ASCII case-insensitive equality of a JSON string with s (search matches words, so its
 * results are checked against the whole address). */
static bool stripe_jeq_nocase(json_t *v, const char *s)
{
	size_t n = strlen(s), i;
	const char *t;

	if (!json_is_string(v) || json_string_length(v) != n)
		return false;
	t = json_string_value(v);
	for (i = 0; i < n; i++)
		if (tolower((unsigned char)t[i]) != tolower((unsigned char)s[i]))
			return false;
	return true;
}

static int64_t stripe_jint(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static bool stripe_jbool(json_t *obj, const char *key)
{
	return json_is_true(json_object_get(obj, key));
}

/* Lowercase three-letter ISO code, else "". */
static void stripe_jcurrency(json_t *obj, const char *key, char out[STRIPE_CUR_MAX])
{
	json_t *v = json_object_get(obj, key);
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	int i;

	out[0] = '\0';
	if (json_string_length(v) != 3)
		return;
	for (i = 0; i < 3; i++) {
		if (!isalpha((unsigned char)s[i])) {
			out[0] = '\0';
			return;
		}
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[3] = '\0';
}

/* Loads buf as an object with a "data" array; *root must be json_decref'd. */
static json_t *stripe_load_list(const char *buf, size_t len, json_t **root, bool *has_more,
    char *msg, size_t msglen)
{
	json_error_t je;
	json_t *data;

	*root = buf ? json_loadb(buf, len, JSON_ALLOW_NUL, &je) : NULL;
	if (*root == NULL) {
		snprintf(msg, msglen, "response is not JSON (line %d: %.80s)", buf ? je.line : 0,
		    buf ? je.text : "empty");
		return NULL;
	}
	data = json_object_get(*root, "data");
	if (!json_is_object(*root) || !json_is_array(data)) {
		snprintf(msg, msglen, "response is not a Stripe list");
		return NULL;
	}
	if (has_more)
		*has_more = stripe_jbool(*root, "has_more");
	return data;
}

static void stripe_parse_meta(json_t *obj, char keys[][STRIPE_META_KEY_MAX + 1], int nkeys,
    struct stripe_customer *c)
{
	json_t *meta = json_object_get(obj, "metadata");
	int i;

	if (!json_is_object(meta))
		return;
	for (i = 0; i < nkeys && c->nmeta < STRIPE_META_MAX; i++) {
		json_t *v = json_object_get(meta, keys[i]);
		struct stripe_meta *m = &c->meta[c->nmeta];

		if (!json_is_string(v))
			continue;
		sm_strlcpy(m->key, keys[i], sizeof(m->key));
		stripe_copy_text(m->value, sizeof(m->value), json_string_value(v),
		    json_string_length(v));
		c->nmeta++;
	}
}

void stripe_customers_release(struct stripe_customer *c, int n)
{
	int i;

	for (i = 0; c != NULL && i < n; i++) {
		json_decref(c[i].subs);
		c[i].subs = NULL;
	}
}

/* The best status among an expanded subscriptions list (NONE when empty). */
static enum stripe_sub_status stripe_best_status(json_t *list)
{
	enum stripe_sub_status best = STRIPE_SUB_NONE, st;
	json_t *o, *data = json_object_get(list, "data");
	size_t i;
	char status[STRIPE_CODE_MAX];

	json_array_foreach(data, i, o) {
		stripe_jtext(o, "status", status, sizeof(status));
		st = stripe_sub_status_parse(status);
		if (st > best)
			best = st;
	}
	return best;
}

int stripe_parse_customers(const char *buf, size_t len, char meta_keys[][STRIPE_META_KEY_MAX + 1],
    int nmeta_keys, const char *only_email, struct stripe_customer *out, int max, int *n,
    bool *has_more, char *last_id, size_t last_id_len, char *next_page, size_t next_page_len,
    char *msg, size_t msglen)
{
	json_t *root, *data, *o, *subs;
	size_t i;
	int rc = -1;
	char id[STRIPE_ID_MAX];

	last_id[0] = '\0';
	if (next_page_len > 0)
		next_page[0] = '\0';
	data = stripe_load_list(buf, len, &root, has_more, msg, msglen);
	if (data == NULL)
		goto out;
	if (next_page_len > 0)
		stripe_jtext(root, "next_page", next_page, next_page_len);
	json_array_foreach(data, i, o) {
		struct stripe_customer *c = &out[*n];

		if (!json_is_object(o) || !stripe_jid(o, "id", id, sizeof(id)))
			continue;
		sm_strlcpy(last_id, id, last_id_len);
		if (only_email && !stripe_jeq_nocase(json_object_get(o, "email"), only_email))
			continue;
		if (*n >= max) {
			if (has_more)
				*has_more = true;	/* more exist than are kept */
			break;
		}
		memset(c, 0, sizeof(*c));
		memcpy(c->id, id, sizeof(c->id));
		stripe_jtext(o, "email", c->email, sizeof(c->email));
		stripe_jtext(o, "name", c->name, sizeof(c->name));
		c->created = stripe_jint(o, "created");
		c->delinquent = stripe_jbool(o, "delinquent");
		c->livemode = stripe_jbool(o, "livemode");
		c->balance.amount = stripe_jint(o, "balance");
		stripe_jcurrency(o, "currency", c->balance.currency);
		stripe_parse_meta(o, meta_keys, nmeta_keys, c);
		subs = json_object_get(o, "subscriptions");
		if (json_is_object(subs) && json_is_array(json_object_get(subs, "data"))) {
			c->subs = json_incref(subs);
			c->best = stripe_best_status(subs);
		}
		(*n)++;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* The amount of a price (or of a legacy plan: amount_key "amount"). */
static void stripe_parse_amount(json_t *price, const char *amount_key, struct stripe_subscription *s)
{
	char key[32], scheme[16], usage[16];
	json_t *rec = json_object_get(price, "recurring"), *ua, *cua;

	if (!json_is_object(rec))
		rec = price;	/* a legacy plan carries usage_type itself */
	stripe_jtext(price, "billing_scheme", scheme, sizeof(scheme));
	stripe_jtext(rec, "usage_type", usage, sizeof(usage));
	stripe_jcurrency(price, "currency", s->unit_amount.currency);
	ua = json_object_get(price, amount_key);
	snprintf(key, sizeof(key), "%s_decimal", amount_key);
	cua = json_object_get(price, "custom_unit_amount");
	if (json_is_integer(ua))
		s->unit_amount.amount = (int64_t)json_integer_value(ua);
	if (strcmp(scheme, "tiered") == 0)
		s->amount_kind = STRIPE_AMOUNT_TIERED;
	else if (strcmp(usage, "metered") == 0)
		s->amount_kind = STRIPE_AMOUNT_METERED;
	else if (json_is_integer(ua))
		s->amount_kind = STRIPE_AMOUNT_FIXED;
	else if (json_is_string(json_object_get(price, key)))
		s->amount_kind = STRIPE_AMOUNT_DECIMAL;
	else if (json_is_object(cua))
		s->amount_kind = STRIPE_AMOUNT_CUSTOM;
	else
		s->amount_kind = STRIPE_AMOUNT_UNKNOWN;
	if (s->amount_kind == STRIPE_AMOUNT_DECIMAL) {
		json_t *d = json_object_get(price, key);
		const char *t = json_string_value(d);
		size_t n = json_string_length(d), k = strspn(t, "0123456789.");

		/* digits and at most one point, else unknown */
		if (n == 0 || k != n || n >= sizeof(s->amount_decimal) || t[0] == '.' ||
		    strchr(t, '.') != strrchr(t, '.') || t[n - 1] == '.')
			s->amount_kind = STRIPE_AMOUNT_UNKNOWN;
		else
			memcpy(s->amount_decimal, t, n + 1);
	}
}

/* The price of the first item (or its legacy plan) and the period end. */
static void stripe_parse_first_item(json_t *sub, struct stripe_subscription *s)
{
	json_t *items = json_object_get(json_object_get(sub, "items"), "data");
	json_t *item = json_array_get(items, 0), *price, *product, *rec;
	bool legacy = false;

	s->item_count = json_is_array(items) ? (int)(json_array_size(items) > 10000 ? 10000 :
	    json_array_size(items)) : 0;
	s->period_end = stripe_jint(item, "current_period_end");
	if (s->period_end == 0)
		s->period_end = stripe_jint(sub, "current_period_end");
	if (!json_is_object(item))
		return;
	s->quantity = (int)(stripe_jint(item, "quantity") & 0x7fffffff);
	price = json_object_get(item, "price");
	if (!json_is_object(price)) {
		price = json_object_get(item, "plan");
		legacy = true;
	}
	if (!json_is_object(price))
		return;
	stripe_jid(price, "id", s->price_id, sizeof(s->price_id));
	product = json_object_get(price, "product");
	if (json_is_object(product)) {	/* expanded */
		stripe_jid(product, "id", s->product_id, sizeof(s->product_id));
		stripe_jtext(product, "name", s->plan, sizeof(s->plan));
	} else {
		stripe_jid(price, "product", s->product_id, sizeof(s->product_id));
	}
	if (s->plan[0] == '\0')
		stripe_jtext(price, "nickname", s->plan, sizeof(s->plan));
	if (s->plan[0] == '\0' && !legacy)	/* the legacy plan may be named when the price is not */
		stripe_jtext(json_object_get(item, "plan"), "nickname", s->plan, sizeof(s->plan));
	stripe_parse_amount(price, legacy ? "amount" : "unit_amount", s);
	rec = json_object_get(price, "recurring");
	if (!json_is_object(rec))
		rec = price;	/* a legacy plan carries interval itself */
	stripe_jtext(rec, "interval", s->interval, sizeof(s->interval));
	s->interval_count = (int)(stripe_jint(rec, "interval_count") & 0x7fffffff);
}

static int stripe_parse_sub_array(json_t *data, struct stripe_subscription *out, int max, int *n)
{
	json_t *o;
	size_t i;
	char status[STRIPE_CODE_MAX];

	json_array_foreach(data, i, o) {
		struct stripe_subscription *s = &out[*n];

		if (*n >= max)
			break;
		memset(s, 0, sizeof(*s));
		if (!json_is_object(o) || !stripe_jid(o, "id", s->id, sizeof(s->id)))
			continue;
		stripe_jtext(o, "status", status, sizeof(status));
		s->status = stripe_sub_status_parse(status);
		s->cancel_at_period_end = stripe_jbool(o, "cancel_at_period_end");
		s->cancel_at = stripe_jint(o, "cancel_at");
		s->trial_end = stripe_jint(o, "trial_end");
		s->created = stripe_jint(o, "created");
		stripe_parse_first_item(o, s);
		(*n)++;
	}
	return 0;
}

int stripe_parse_subscription_list(json_t *list, struct stripe_subscription *out, int max,
    int *n, bool *has_more)
{
	json_t *data = json_object_get(list, "data");

	*n = 0;
	if (has_more)
		*has_more = stripe_jbool(list, "has_more");
	if (!json_is_array(data))
		return -1;
	return stripe_parse_sub_array(data, out, max, n);
}

int stripe_parse_subscriptions(const char *buf, size_t len, struct stripe_subscription *out,
    int max, int *n, bool *has_more, char *msg, size_t msglen)
{
	json_t *root, *data;
	int rc = -1;

	data = stripe_load_list(buf, len, &root, has_more, msg, msglen);
	if (data == NULL)
		goto out;
	rc = stripe_parse_sub_array(data, out, max, n);
out:
	json_decref(root);
	return rc;
}

/* Adds amount to the currency's total (a new currency past the cap is dropped). */
static void stripe_add_money(struct stripe_money *totals, int *ntotals, const char *cur,
    int64_t amount)
{
	int i;

	for (i = 0; i < *ntotals; i++) {
		if (strcmp(totals[i].currency, cur) == 0) {
			if (__builtin_add_overflow(totals[i].amount, amount, &totals[i].amount))
				totals[i].amount = amount < 0 ? INT64_MIN : INT64_MAX;
			return;
		}
	}
	if (*ntotals >= STRIPE_TOTALS_MAX)
		return;
	sm_strlcpy(totals[*ntotals].currency, cur, STRIPE_CUR_MAX);
	totals[*ntotals].amount = amount;
	(*ntotals)++;
}

static void stripe_count_charge(json_t *o, struct stripe_charges *acc)
{
	char status[16], cur[STRIPE_CUR_MAX];
	int64_t amount = stripe_jint(o, "amount"), refunded = stripe_jint(o, "amount_refunded");
	int64_t captured = stripe_jint(o, "amount_captured");
	int64_t created = stripe_jint(o, "created");

	stripe_jtext(o, "status", status, sizeof(status));
	stripe_jcurrency(o, "currency", cur);
	acc->count++;
	if (strcmp(status, "succeeded") == 0)
		acc->succeeded++;
	else if (strcmp(status, "failed") == 0)
		acc->failed++;
	else if (strcmp(status, "pending") == 0)
		acc->pending++;
	if (stripe_jbool(o, "refunded"))
		acc->refunded++;
	else if (refunded > 0)
		acc->partially_refunded++;
	if (stripe_jbool(o, "disputed"))
		acc->disputed++;
	/* captured minus refunded: an uncaptured authorisation has captured 0 */
	if (strcmp(status, "succeeded") == 0 && cur[0] && captured >= 0 && refunded >= 0)
		stripe_add_money(acc->totals, &acc->ntotals, cur,
		    captured - (refunded < captured ? refunded : captured));
	if (!acc->has_last || created > acc->last_created) {
		acc->has_last = true;
		acc->last_created = created;
		sm_strlcpy(acc->last_status, status, sizeof(acc->last_status));
		acc->last_amount.amount = amount;
		sm_strlcpy(acc->last_amount.currency, cur, sizeof(acc->last_amount.currency));
		stripe_jtext(o, "failure_code", acc->last_failure_code,
		    sizeof(acc->last_failure_code));
	}
}

int stripe_parse_charges(const char *buf, size_t len, const char *only_email,
    int64_t min_created, struct stripe_charges *acc, int max, bool *has_more, char *last_id,
    size_t last_id_len, char *msg, size_t msglen)
{
	json_t *root, *data, *o;
	size_t i;
	int rc = -1;
	char id[STRIPE_ID_MAX];

	last_id[0] = '\0';
	data = stripe_load_list(buf, len, &root, has_more, msg, msglen);
	if (data == NULL)
		goto out;
	json_array_foreach(data, i, o) {
		if (!json_is_object(o) || !stripe_jid(o, "id", id, sizeof(id)))
			continue;
		sm_strlcpy(last_id, id, last_id_len);
		if (only_email && !stripe_jeq_nocase(json_object_get(json_object_get(o,
		    "billing_details"), "email"), only_email))
			continue;
		if (min_created > 0 && stripe_jint(o, "created") < min_created)
			continue;
		if (acc->count >= max) {
			acc->truncated = true;
			break;
		}
		stripe_count_charge(o, acc);
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int stripe_parse_sessions(const char *buf, size_t len, const char *email, int64_t min_created,
    struct stripe_checkout *acc, bool *has_more, char *msg, size_t msglen)
{
	json_t *root, *data, *o;
	size_t i;
	int rc = -1;
	bool older = false;
	char id[STRIPE_ID_MAX], status[16], pay[sizeof(acc->last_payment_status)];
	char mode[sizeof(acc->last_mode)], cur[STRIPE_CUR_MAX];

	data = stripe_load_list(buf, len, &root, has_more, msg, msglen);
	if (data == NULL)
		goto out;
	json_array_foreach(data, i, o) {
		json_t *em = json_object_get(json_object_get(o, "customer_details"), "email");
		int64_t created = stripe_jint(o, "created"), total = stripe_jint(o, "amount_total");

		if (!json_is_object(o) || !stripe_jid(o, "id", id, sizeof(id)))
			continue;
		/* the filter is exact: anything else is not this buyer */
		if (!json_is_string(em) || strcmp(json_string_value(em), email) != 0)
			continue;
		if (created < min_created) {
			older = true;	/* newest first: the rest is older still */
			break;
		}
		stripe_jtext(o, "status", status, sizeof(status));
		if (strcmp(status, "complete") != 0)
			continue;	/* open (abandoned) or expired: nothing bought */
		stripe_jtext(o, "payment_status", pay, sizeof(pay));
		stripe_jtext(o, "mode", mode, sizeof(mode));
		stripe_jcurrency(o, "currency", cur);
		acc->sessions++;
		if (strcmp(mode, "subscription") == 0)
			acc->subscriptions++;
		if (strcmp(pay, "paid") == 0) {
			acc->paid++;
			if (cur[0] && total >= 0)
				stripe_add_money(acc->totals, &acc->ntotals, cur, total);
		}
		if (!acc->has_last || created > acc->last_created) {
			acc->has_last = true;
			acc->last_created = created;
			sm_strlcpy(acc->last_payment_status, pay, sizeof(acc->last_payment_status));
			sm_strlcpy(acc->last_mode, mode, sizeof(acc->last_mode));
		}
	}
	if (*has_more && !older)
		acc->truncated = true;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void stripe_checkout_merge(struct stripe_checkout *into, const struct stripe_checkout *from)
{
	int i;

	into->sessions += from->sessions;
	into->paid += from->paid;
	into->subscriptions += from->subscriptions;
	into->truncated |= from->truncated;
	for (i = 0; i < from->ntotals && i < STRIPE_TOTALS_MAX; i++)
		stripe_add_money(into->totals, &into->ntotals, from->totals[i].currency,
		    from->totals[i].amount);
	if (from->has_last && (!into->has_last || from->last_created > into->last_created)) {
		into->has_last = true;
		into->last_created = from->last_created;
		sm_strlcpy(into->last_payment_status, from->last_payment_status,
		    sizeof(into->last_payment_status));
		sm_strlcpy(into->last_mode, from->last_mode, sizeof(into->last_mode));
	}
}

/* Is invoice o more urgent than the one kept in inv? Failed attempts first, then oldest. */
static bool stripe_invoice_more_urgent(json_t *o, const struct stripe_invoices *inv)
{
	int64_t att = stripe_jint(o, "attempt_count"), cr = stripe_jint(o, "created");

	if (inv->id[0] == '\0')
		return true;
	if ((att > 0) != (inv->attempts > 0))
		return att > 0;
	return cr < inv->created;
}

int stripe_parse_invoices(const char *buf, size_t len, int64_t now, struct stripe_invoices *inv,
    bool *has_more, char *msg, size_t msglen)
{
	json_t *root, *data, *o;
	size_t i;
	int rc = -1;
	char status[16], cur[STRIPE_CUR_MAX], id[STRIPE_ID_MAX];

	data = stripe_load_list(buf, len, &root, has_more, msg, msglen);
	if (data == NULL)
		goto out;
	inv->checked = true;
	json_array_foreach(data, i, o) {
		int64_t due = stripe_jint(o, "due_date"), rem = stripe_jint(o, "amount_remaining");

		if (!json_is_object(o) || !stripe_jid(o, "id", id, sizeof(id)))
			continue;
		stripe_jtext(o, "status", status, sizeof(status));
		if (strcmp(status, "open") != 0)
			continue;
		stripe_jcurrency(o, "currency", cur);
		inv->open++;
		if ((due > 0 && due < now) || stripe_jint(o, "attempt_count") > 0)
			inv->past_due++;
		if (cur[0] && rem >= 0)
			stripe_add_money(inv->due, &inv->ndue, cur, rem);
		if (!stripe_invoice_more_urgent(o, inv))
			continue;
		sm_strlcpy(inv->id, id, sizeof(inv->id));
		inv->amount_remaining.amount = rem;
		sm_strlcpy(inv->amount_remaining.currency, cur, sizeof(inv->amount_remaining.currency));
		inv->attempts = (int)(stripe_jint(o, "attempt_count") & 0x7fffffff);
		inv->next_attempt = stripe_jint(o, "next_payment_attempt");
		inv->due_date = due;
		inv->created = stripe_jint(o, "created");
		stripe_jtext(o, "hosted_invoice_url", inv->url, sizeof(inv->url));
		if (strncmp(inv->url, "https://", 8) != 0 || strpbrk(inv->url, " \"<>\\") != NULL)
			inv->url[0] = '\0';	/* only a plain https URL is passed on */
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int stripe_parse_products(const char *buf, size_t len, struct stripe_product *out, int max,
    int *n, char *msg, size_t msglen)
{
	json_t *root, *data, *o;
	size_t i;
	int rc = -1;

	*n = 0;
	data = stripe_load_list(buf, len, &root, NULL, msg, msglen);
	if (data == NULL)
		goto out;
	json_array_foreach(data, i, o) {
		struct stripe_product *p = &out[*n];

		if (*n >= max)
			break;
		memset(p, 0, sizeof(*p));
		if (!json_is_object(o) || !stripe_jid(o, "id", p->id, sizeof(p->id)))
			continue;
		stripe_jtext(o, "name", p->name, sizeof(p->name));
		(*n)++;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* Finds "rak_<lowercase/underscore>" in text. */
static void stripe_find_permission(const char *text, char *perm, size_t permlen)
{
	const char *p = text;

	perm[0] = '\0';
	while ((p = strstr(p, "rak_")) != NULL) {
		size_t n = 4;

		while ((p[n] >= 'a' && p[n] <= 'z') || p[n] == '_')
			n++;
		if (n > 4 && n < permlen) {
			memcpy(perm, p, n);
			perm[n] = '\0';
			return;
		}
		p += n;
	}
}

void stripe_parse_error(const char *buf, size_t len, char *msg, size_t msglen, char *perm,
    size_t permlen, char *code, size_t codelen)
{
	json_t *root = buf ? json_loadb(buf, len, JSON_ALLOW_NUL, NULL) : NULL;
	json_t *err = json_object_get(root, "error");
	char raw[512];
	size_t i;

	msg[0] = '\0';
	perm[0] = '\0';
	stripe_jtext(err, "code", code, codelen);
	for (i = 0; code[i]; i++)	/* a code is a word: anything else is dropped */
		if (!islower((unsigned char)code[i]) && code[i] != '_') {
			code[0] = '\0';
			break;
		}
	stripe_jtext(err, "message", raw, sizeof(raw));
	stripe_sanitise_message(raw, msg, msglen);
	stripe_find_permission(raw, perm, permlen);
	json_decref(root);
}
