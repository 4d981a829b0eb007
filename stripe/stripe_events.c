/*
 * stripe_events.c - Stripe event objects: parsing (webhook bodies, GET /v1/events pages)
 * and the events list request.
 *
 * Interface (stripe.h): stripe_event_parse(), stripe_events_list(); stripe_int.h:
 *	stripe_events_page_parse() (the body of one GET /v1/events page, fuzzed on its own).
 *
 * What is kept of an event is what invalidation needs: id, type, created, the customer the
 * object belongs to (data.object.id for a customer, else data.object.customer, an id or an
 * expanded object) and the addresses the object names (customer email; invoice
 * customer_email; charge billing_details.email and receipt_email) plus, for
 * customer.updated, the previous address (data.previous_attributes.email).
 *
 * Rules: untrusted input; an event needs "object":"event", an id and a type, else -1.
 *	Everything else is optional. Ids must pass stripe_id_ok() (they become Redis keys).
 *	Strings are cut to their arrays and control characters become spaces.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/sm_util.h"
#include "stripe/stripe_int.h"

#define STRIPE_EVENTS_PAGE_MAX 100

static bool stripe_ev_id(json_t *v, char *out, size_t len)
{
	const char *s;
	size_t n;

	out[0] = '\0';
	if (json_is_object(v))
		v = json_object_get(v, "id");
	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 || n >= len || !stripe_id_ok(s, n))
		return false;
	memcpy(out, s, n + 1);
	return true;
}

static void stripe_ev_email(struct stripe_event *ev, json_t *v)
{
	char tmp[STRIPE_TEXT_MAX];
	int i;

	if (!json_is_string(v) || json_string_length(v) == 0 || ev->nemails >= STRIPE_EVENT_EMAILS)
		return;
	stripe_copy_text(tmp, sizeof(tmp), json_string_value(v), json_string_length(v));
	if (strchr(tmp, '@') == NULL)
		return;
	for (i = 0; i < ev->nemails; i++)
		if (strcmp(ev->emails[i], tmp) == 0)
			return;
	memcpy(ev->emails[ev->nemails++], tmp, sizeof(tmp));
}

/* Fills ev from a parsed event object. 0 or -1 (not an event). */
static int stripe_event_from_json(json_t *root, struct stripe_event *ev, char *err, size_t errlen)
{
	json_t *data, *obj, *prev, *v;

	memset(ev, 0, sizeof(*ev));
	v = json_object_get(root, "object");
	if (!json_is_object(root) || !json_is_string(v) || strcmp(json_string_value(v), "event") != 0) {
		snprintf(err, errlen, "not an event object");
		return -1;
	}
	if (!stripe_ev_id(json_object_get(root, "id"), ev->id, sizeof(ev->id))) {
		snprintf(err, errlen, "event without a usable id");
		return -1;
	}
	v = json_object_get(root, "type");
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) >= sizeof(ev->type)) {
		snprintf(err, errlen, "event %s without a usable type", ev->id);
		return -1;
	}
	stripe_copy_text(ev->type, sizeof(ev->type), json_string_value(v), json_string_length(v));
	v = json_object_get(root, "created");
	ev->created = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
	ev->livemode = json_is_true(json_object_get(root, "livemode"));
	stripe_ev_id(json_object_get(root, "account"), ev->account, sizeof(ev->account));
	data = json_object_get(root, "data");
	obj = json_is_object(data) ? json_object_get(data, "object") : NULL;
	if (!json_is_object(obj))
		return 0;
	v = json_object_get(obj, "object");
	if (json_is_string(v))
		stripe_copy_text(ev->object, sizeof(ev->object), json_string_value(v), json_string_length(v));
	if (strcmp(ev->object, "customer") == 0) {
		stripe_ev_id(json_object_get(obj, "id"), ev->customer_id, sizeof(ev->customer_id));
		stripe_ev_email(ev, json_object_get(obj, "email"));
		prev = json_object_get(data, "previous_attributes");
		if (json_is_object(prev))
			stripe_ev_email(ev, json_object_get(prev, "email"));
		return 0;
	}
	stripe_ev_id(json_object_get(obj, "customer"), ev->customer_id, sizeof(ev->customer_id));
	stripe_ev_email(ev, json_object_get(obj, "customer_email"));
	stripe_ev_email(ev, json_object_get(obj, "receipt_email"));
	v = json_object_get(obj, "billing_details");
	if (json_is_object(v))
		stripe_ev_email(ev, json_object_get(v, "email"));
	return 0;
}

int stripe_event_parse(const char *buf, size_t len, struct stripe_event *ev, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(buf ? buf : "", len, JSON_ALLOW_NUL, &je);
	int rc;

	if (root == NULL) {
		memset(ev, 0, sizeof(*ev));
		snprintf(err, errlen, "not JSON: %s", je.text);
		return -1;
	}
	rc = stripe_event_from_json(root, ev, err, errlen);
	json_decref(root);
	return rc;
}

int stripe_events_page_parse(const char *buf, size_t len, struct stripe_event *out, int max,
    int *n, bool *has_more, char *err, size_t errlen)
{
	json_t *root = json_loadb(buf ? buf : "", len, JSON_ALLOW_NUL, NULL), *data;
	char why[128];
	size_t i;
	int rc = 0;

	*n = 0;
	*has_more = false;
	data = json_is_object(root) ? json_object_get(root, "data") : NULL;
	if (!json_is_array(data)) {
		snprintf(err, errlen, "events list without a data array");
		rc = -1;
		goto out;
	}
	*has_more = json_is_true(json_object_get(root, "has_more"));
	for (i = 0; i < json_array_size(data) && *n < max; i++)
		if (stripe_event_from_json(json_array_get(data, i), &out[*n], why, sizeof(why)) == 0)
			(*n)++;
out:
	json_decref(root);
	return rc;
}

/* Builds the query of one events page. -1 when it does not fit. */
static int stripe_events_path(char *path, size_t len, int64_t created_gt, const char *const *types,
    int ntypes, const char *starting_after, int limit)
{
	size_t off;
	int i, n;

	n = snprintf(path, len, "/v1/events?limit=%d&created%%5Bgt%%5D=%lld", limit, (long long)created_gt);
	if (n < 0 || (size_t)n >= len)
		return -1;
	off = (size_t)n;
	for (i = 0; i < ntypes; i++) {
		char enc[STRIPE_EVENT_TYPE_MAX * 3];

		if (stripe_url_encode(types[i], enc, sizeof(enc)) != 0)
			return -1;
		n = snprintf(path + off, len - off, "&types%%5B%%5D=%s", enc);
		if (n < 0 || (size_t)n >= len - off)
			return -1;
		off += (size_t)n;
	}
	if (starting_after && starting_after[0]) {
		n = snprintf(path + off, len - off, "&starting_after=%s", starting_after);
		if (n < 0 || (size_t)n >= len - off)
			return -1;
	}
	return 0;
}

enum stripe_errclass stripe_events_list(struct stripe_client *c, int64_t created_gt,
    const char *const *types, int ntypes, const char *starting_after, int limit,
    int64_t deadline_ms, struct stripe_event *out, int max, int *n, bool *has_more,
    struct stripe_result *res)
{
	char path[STRIPE_PATH_MAX];
	struct stripe_call call;

	memset(res, 0, sizeof(*res));
	*n = 0;
	*has_more = false;
	stripe_call_init(&call);
	if (limit < 1 || limit > STRIPE_EVENTS_PAGE_MAX)
		limit = STRIPE_EVENTS_PAGE_MAX;
	if (stripe_events_path(path, sizeof(path), created_gt, types, ntypes, starting_after, limit) != 0) {
		res->err = STRIPE_E_INTERNAL;
		snprintf(res->message, sizeof(res->message), "events request too long");
		goto out;
	}
	res->err = stripe_http_get(c, path, deadline_ms, &call);
	res->requests = call.requests;
	res->http_status = (int)call.status;
	sm_strlcpy(res->request_id, call.request_id, sizeof(res->request_id));
	sm_strlcpy(res->message, call.message, sizeof(res->message));
	sm_strlcpy(res->permission, call.permission, sizeof(res->permission));
	if (res->err != STRIPE_OK)
		goto out;
	if (stripe_events_page_parse(call.body.data, call.body.len, out, max, n, has_more,
	    res->message, sizeof(res->message)) != 0)
		res->err = STRIPE_E_MALFORMED;
out:
	stripe_call_free(&call);
	return res->err;
}
