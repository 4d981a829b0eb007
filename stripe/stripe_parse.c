/*
 * stripe_parse.c - Stripe JSON (untrusted) -> plain structs.
 *
 * Interface (stripe_int.h): stripe_parse_customers(), _subscriptions(), _charges(),
 *	_products(), _error(), stripe_copy_text().
 *
 * Rules: the body must be a JSON object holding a "data" array, else -1 (malformed).
 *	Inside, every field is optional: a missing field, null or wrong type reads as 0, ""
 *	or false; strings are cut at a UTF-8 boundary to their array size and control
 *	characters become spaces (no CR, LF or NUL leaves this file). A list element that is
 *	not an object, or an object whose id is missing or too long, is skipped. Strings with
 *	\u0000 are accepted (JSON_ALLOW_NUL) and the NUL becomes a space.
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

/* An id: non-empty, fits, [A-Za-z0-9_] only (it goes into URLs and headers). */
static bool stripe_jid(json_t *obj, const char *key, char *out, size_t len)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	size_t n, i;

	out[0] = '\0';
	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 || n >= len)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	memcpy(out, s, n + 1);
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

int stripe_parse_customers(const char *buf, size_t len, char meta_keys[][STRIPE_META_KEY_MAX + 1],
    int nmeta_keys, struct stripe_customer *out, int max, int *n, char *msg, size_t msglen)
{
	json_t *root, *data, *o;
	size_t i;
	int rc = -1;

	*n = 0;
	data = stripe_load_list(buf, len, &root, NULL, msg, msglen);
	if (data == NULL)
		goto out;
	json_array_foreach(data, i, o) {
		struct stripe_customer *c = &out[*n];

		if (*n >= max)
			break;
		memset(c, 0, sizeof(*c));
		if (!json_is_object(o) || !stripe_jid(o, "id", c->id, sizeof(c->id)))
			continue;
		stripe_jtext(o, "email", c->email, sizeof(c->email));
		stripe_jtext(o, "name", c->name, sizeof(c->name));
		c->created = stripe_jint(o, "created");
		c->delinquent = stripe_jbool(o, "delinquent");
		c->livemode = stripe_jbool(o, "livemode");
		c->balance.amount = stripe_jint(o, "balance");
		stripe_jcurrency(o, "currency", c->balance.currency);
		stripe_parse_meta(o, meta_keys, nmeta_keys, c);
		(*n)++;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* The price of the first item (or its legacy plan) and the period end. */
static void stripe_parse_first_item(json_t *sub, struct stripe_subscription *s)
{
	json_t *items = json_object_get(json_object_get(sub, "items"), "data");
	json_t *item = json_array_get(items, 0), *price, *product, *rec;

	s->item_count = json_is_array(items) ? (int)(json_array_size(items) > 10000 ? 10000 :
	    json_array_size(items)) : 0;
	s->period_end = stripe_jint(item, "current_period_end");
	if (s->period_end == 0)
		s->period_end = stripe_jint(sub, "current_period_end");
	if (!json_is_object(item))
		return;
	s->quantity = (int)(stripe_jint(item, "quantity") & 0x7fffffff);
	price = json_object_get(item, "price");
	if (!json_is_object(price))
		price = json_object_get(item, "plan");
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
	s->unit_amount.amount = stripe_jint(price, "unit_amount");
	if (s->unit_amount.amount == 0)
		s->unit_amount.amount = stripe_jint(price, "amount");	/* legacy plan */
	stripe_jcurrency(price, "currency", s->unit_amount.currency);
	rec = json_object_get(price, "recurring");
	if (!json_is_object(rec))
		rec = price;	/* a legacy plan carries interval itself */
	stripe_jtext(rec, "interval", s->interval, sizeof(s->interval));
	s->interval_count = (int)(stripe_jint(rec, "interval_count") & 0x7fffffff);
}

int stripe_parse_subscriptions(const char *buf, size_t len, struct stripe_subscription *out,
    int max, int *n, bool *has_more, char *msg, size_t msglen)
{
	json_t *root, *data, *o;
	size_t i;
	int rc = -1;
	char status[STRIPE_CODE_MAX];

	*n = 0;
	data = stripe_load_list(buf, len, &root, has_more, msg, msglen);
	if (data == NULL)
		goto out;
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
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* Adds amount to the currency's total (a new currency past the cap is dropped). */
static void stripe_add_total(struct stripe_charges *acc, const char *cur, int64_t amount)
{
	int i;

	for (i = 0; i < acc->ntotals; i++) {
		if (strcmp(acc->totals[i].currency, cur) == 0) {
			if (__builtin_add_overflow(acc->totals[i].amount, amount, &acc->totals[i].amount))
				acc->totals[i].amount = amount < 0 ? INT64_MIN : INT64_MAX;
			return;
		}
	}
	if (acc->ntotals >= STRIPE_TOTALS_MAX)
		return;
	sm_strlcpy(acc->totals[acc->ntotals].currency, cur, STRIPE_CUR_MAX);
	acc->totals[acc->ntotals].amount = amount;
	acc->ntotals++;
}

static void stripe_count_charge(json_t *o, struct stripe_charges *acc)
{
	char status[16], cur[STRIPE_CUR_MAX];
	int64_t amount = stripe_jint(o, "amount"), refunded = stripe_jint(o, "amount_refunded");
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
	if (strcmp(status, "succeeded") == 0 && cur[0] && amount >= 0 && refunded >= 0)
		stripe_add_total(acc, cur, amount - (refunded < amount ? refunded : amount));
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

int stripe_parse_charges(const char *buf, size_t len, struct stripe_charges *acc, int max,
    bool *has_more, char *last_id, size_t last_id_len, char *msg, size_t msglen)
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
    size_t permlen)
{
	json_t *root = buf ? json_loadb(buf, len, JSON_ALLOW_NUL, NULL) : NULL;
	json_t *err = json_object_get(root, "error");
	char raw[512];

	msg[0] = '\0';
	perm[0] = '\0';
	stripe_jtext(err, "message", raw, sizeof(raw));
	stripe_sanitise_message(raw, msg, msglen);
	stripe_find_permission(raw, perm, permlen);
	json_decref(root);
}
