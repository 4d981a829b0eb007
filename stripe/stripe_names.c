/*
 * stripe_names.c - the fixed vocabularies of stripe.h: error classes, subscription
 * statuses, summary parts (and their permissions), request outcomes, endpoints and the 4xx
 * statuses counted apart.
 *
 * Interface: stripe_errclass_name(), stripe_errclass_temporary(), stripe_sub_status_name(),
 *	stripe_sub_status_parse(), stripe_part_permission(), stripe_part_name(),
 *	stripe_part_dashboard(), stripe_endpoint_name()/_of(), stripe_rejected_name(),
 *	stripe_amount_kind_name()/_parse(), stripe_found_by_name(), stripe_outcome_name(),
 *	stripe_latency_bounds_ms[].
 *
 * Diagnostics: none; out-of-range values map to "unknown" (or NULL for parts).
 */
#include "config.h"

#include <string.h>

#include "stripe/stripe.h"

const int64_t stripe_latency_bounds_ms[STRIPE_LATENCY_BUCKETS] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, INT64_MAX
};

static const char *const stripe_errclass_names[STRIPE_E__COUNT] = {
	"ok", "auth", "permission", "rate-limited", "timeout", "network", "server",
	"malformed", "request", "internal", "unavailable"
};

const char *stripe_errclass_name(enum stripe_errclass e)
{
	if ((int)e < 0 || e >= STRIPE_E__COUNT)
		return "internal";
	return stripe_errclass_names[e];
}

bool stripe_errclass_temporary(enum stripe_errclass e)
{
	return e == STRIPE_E_RATELIMIT || e == STRIPE_E_TIMEOUT || e == STRIPE_E_NETWORK ||
	    e == STRIPE_E_SERVER || e == STRIPE_E_UNAVAILABLE;
}

static const char *const stripe_sub_status_names[STRIPE_SUB__COUNT] = {
	"none", "unknown", "incomplete_expired", "canceled", "paused", "incomplete", "unpaid",
	"past_due", "trialing", "active"
};

const char *stripe_sub_status_name(enum stripe_sub_status s)
{
	if ((int)s < 0 || s >= STRIPE_SUB__COUNT)
		return "unknown";
	return stripe_sub_status_names[s];
}

enum stripe_sub_status stripe_sub_status_parse(const char *s)
{
	int i;

	if (s == NULL || *s == '\0')
		return STRIPE_SUB_UNKNOWN;
	/* "none" is ours, not Stripe's: a subscription always has a status. */
	for (i = STRIPE_SUB_INCOMPLETE_EXPIRED; i < STRIPE_SUB__COUNT; i++)
		if (strcmp(s, stripe_sub_status_names[i]) == 0)
			return (enum stripe_sub_status)i;
	return STRIPE_SUB_UNKNOWN;
}

static const struct {
	unsigned part;
	const char *name, *permission, *dashboard;
} stripe_parts[] = {
	{ STRIPE_PART_CUSTOMER, "customer", "rak_customer_read", "Customers: Read" },
	{ STRIPE_PART_SUBSCRIPTIONS, "subscriptions", "rak_subscription_read", "Subscriptions: Read" },
	{ STRIPE_PART_PLAN_NAMES, "plan-names", "rak_product_read", "Products: Read" },
	{ STRIPE_PART_CHARGES, "charges", "rak_charge_read", "Charges: Read" },
	{ STRIPE_PART_INVOICES, "invoices", "rak_invoice_read", "Invoices: Read" },
	{ STRIPE_PART_GUEST, "guest", "rak_checkout_session_read", "Checkout Sessions: Read" },
	{ STRIPE_PERM_EVENTS, "events", "rak_event_read", "Events: Read" },
};

static const char *const stripe_amount_kind_names[STRIPE_AMOUNT__COUNT] = {
	"fixed", "decimal", "tiered", "metered", "custom", "unknown"
};

const char *stripe_amount_kind_name(enum stripe_amount_kind k)
{
	if ((int)k < 0 || k >= STRIPE_AMOUNT__COUNT)
		return "unknown";
	return stripe_amount_kind_names[k];
}

enum stripe_amount_kind stripe_amount_kind_parse(const char *s)
{
	int i;

	for (i = 0; s != NULL && i < STRIPE_AMOUNT__COUNT; i++)
		if (strcmp(s, stripe_amount_kind_names[i]) == 0)
			return (enum stripe_amount_kind)i;
	return STRIPE_AMOUNT_UNKNOWN;
}

static const char *const stripe_found_by_names[STRIPE_BY__COUNT] = {
	"none", "email", "search", "guest"
};

const char *stripe_found_by_name(enum stripe_found_by b)
{
	if ((int)b < 0 || b >= STRIPE_BY__COUNT)
		return "none";
	return stripe_found_by_names[b];
}

const char *stripe_part_permission(unsigned part)
{
	size_t i;

	for (i = 0; i < sizeof(stripe_parts) / sizeof(stripe_parts[0]); i++)
		if (stripe_parts[i].part == part)
			return stripe_parts[i].permission;
	return NULL;
}

const char *stripe_part_name(unsigned part)
{
	size_t i;

	for (i = 0; i < sizeof(stripe_parts) / sizeof(stripe_parts[0]); i++)
		if (stripe_parts[i].part == part)
			return stripe_parts[i].name;
	return NULL;
}

const char *stripe_part_dashboard(unsigned part)
{
	size_t i;

	for (i = 0; i < sizeof(stripe_parts) / sizeof(stripe_parts[0]); i++)
		if (stripe_parts[i].part == part)
			return stripe_parts[i].dashboard;
	return NULL;
}

/* Longest prefix first where one template starts another. */
static const char *const stripe_endpoint_names[STRIPE_EP__COUNT] = {
	"/v1/customers", "/v1/customers/search", "/v1/subscriptions", "/v1/products",
	"/v1/charges", "/v1/invoices", "/v1/checkout/sessions", "/v1/events", "/v1/account",
	"other"
};

const char *stripe_endpoint_name(enum stripe_endpoint e)
{
	if ((int)e < 0 || e >= STRIPE_EP__COUNT)
		return "other";
	return stripe_endpoint_names[e];
}

enum stripe_endpoint stripe_endpoint_of(const char *path_query)
{
	size_t n = path_query ? strcspn(path_query, "?") : 0;
	int i;

	/* the path alone, exactly (an id after the collection is another endpoint: other) */
	for (i = 0; i < STRIPE_EP_OTHER; i++)
		if (strlen(stripe_endpoint_names[i]) == n &&
		    strncmp(path_query, stripe_endpoint_names[i], n) == 0)
			return (enum stripe_endpoint)i;
	return STRIPE_EP_OTHER;
}

static const char *const stripe_rejected_names[STRIPE_REJ__COUNT] = { "400", "404", "4xx" };

const char *stripe_rejected_name(enum stripe_rejected r)
{
	if ((int)r < 0 || r >= STRIPE_REJ__COUNT)
		return "4xx";
	return stripe_rejected_names[r];
}

static const char *const stripe_outcome_names[STRIPE_OUT__COUNT] = {
	"ok", "not_found", "401", "403", "429", "5xx", "timeout", "network", "other"
};

const char *stripe_outcome_name(enum stripe_outcome o)
{
	if ((int)o < 0 || o >= STRIPE_OUT__COUNT)
		return "other";
	return stripe_outcome_names[o];
}
