/*
 * stripe.h - read-only Stripe client that turns an email address into a customer summary.
 *
 * This is the whole interface of stripe/. It knows nothing of milters, caches or Redis:
 * JSON stays inside stripe/, callers see plain C structs (a struct stripe_summary; how it
 * is stored is lookup/'s business).
 *
 * Interface:
 *	stripe_client_new(cfg) / stripe_client_free()	a client: curl handle pool, token bucket,
 *		counters. Thread-safe: many threads may call stripe_lookup() at once.
 *	stripe_lookup(client, email, deadline, &summary, &result)
 *		customers (with their subscriptions) by the exact address forms, else by a
 *		case-insensitive search; then charges, plan names, open invoices and (when
 *		needed) the full subscription list concurrently; with no customer, a guest
 *		buyer's completed Checkout Sessions by customer_details[email]. Never runs past
 *		deadline_ms (an sm_now_ms() value). Not found is not an error; a 4xx on an
 *		optional request (search, guest) is logged and counted, not an error.
 *	stripe_money_format()	minor units -> "49.00 USD" by the currency's exponent.
 *	stripe_key_*()		load (file/config/env), validate, mask, mode.
 *
 * Memory: every struct here is fixed-size (strings are truncated at a UTF-8 boundary to
 * their array size), so a summary is copied by value and owns nothing. Functions that
 * return malloc'd memory say so.
 *
 * Diagnostics: failures come back as enum stripe_errclass in struct stripe_result with a
 * sanitised message (never the key) and Stripe's Request-Id; the library logs through
 * sm_log() only for once-per-process conditions (e.g. a missing permission).
 */
#ifndef STRIPE_H
#define STRIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STRIPE_ID_MAX		256	/* cus_..., sub_..., prod_..., req_...: Stripe allows custom
					 * ids up to 255 of [A-Za-z0-9_-] (e.g. "gold-plan") */
#define STRIPE_TEXT_MAX		256	/* names, plan names, emails: UTF-8, untrusted */
#define STRIPE_CUR_MAX		4	/* ISO 4217 lowercase + NUL */
#define STRIPE_META_MAX		8	/* metadata keys copied (those the config names) */
#define STRIPE_META_KEY_MAX	40	/* Stripe's own limit on metadata key length */
#define STRIPE_SUBS_MAX		4	/* subscriptions kept, best first */
#define STRIPE_TOTALS_MAX	8	/* currencies in charge totals */
#define STRIPE_CODE_MAX		48	/* failure_code, status words, permission names */
#define STRIPE_URL_TEXT_MAX	512	/* hosted invoice URL */
#define STRIPE_DECIMAL_MAX	32	/* a decimal amount in minor units, "0.5" */
#define STRIPE_CUSTOMERS_CAP	100	/* customers read per address (matches=100+ beyond) */

/* Error classes. Not found is STRIPE_OK with summary.found == false. */
enum stripe_errclass {
	STRIPE_OK = 0,
	STRIPE_E_AUTH,		/* 401: bad, expired or revoked key */
	STRIPE_E_PERMISSION,	/* 403: restricted key lacks a rak_* permission */
	STRIPE_E_RATELIMIT,	/* 429, or the local token bucket was empty until the deadline */
	STRIPE_E_TIMEOUT,	/* deadline reached */
	STRIPE_E_NETWORK,	/* connect/DNS/TLS/reset */
	STRIPE_E_SERVER,	/* 5xx, or 409 after retries */
	STRIPE_E_MALFORMED,	/* not JSON, wrong shape, too large */
	STRIPE_E_REQUEST,	/* other 4xx: our request was wrong (a bug or config error) */
	STRIPE_E_INTERNAL,	/* out of memory, curl init failure */
	STRIPE_E_UNAVAILABLE,	/* not asked: the circuit breaker is open (see stripe_gate) */
	STRIPE_E__COUNT
};
/* "ok", "auth", "permission", "rate-limited", "timeout", "network", "server", "malformed",
 * "request", "internal", "unavailable": fixed vocabulary used in headers, logs and metrics. */
const char *stripe_errclass_name(enum stripe_errclass e);
/* True for classes worth serving stale data for (rate-limit, timeout, network, server,
 * unavailable). */
bool stripe_errclass_temporary(enum stripe_errclass e);

/* Subscription statuses, ordered from worst to best (the enum value is the rank). */
enum stripe_sub_status {
	STRIPE_SUB_NONE = 0,
	STRIPE_SUB_UNKNOWN,		/* a status this version does not know */
	STRIPE_SUB_INCOMPLETE_EXPIRED,
	STRIPE_SUB_CANCELED,
	STRIPE_SUB_PAUSED,
	STRIPE_SUB_INCOMPLETE,
	STRIPE_SUB_UNPAID,
	STRIPE_SUB_PAST_DUE,
	STRIPE_SUB_TRIALING,
	STRIPE_SUB_ACTIVE,
	STRIPE_SUB__COUNT
};
/* "none", "unknown", "incomplete_expired", "canceled", ... as Stripe spells them. */
const char *stripe_sub_status_name(enum stripe_sub_status s);
enum stripe_sub_status stripe_sub_status_parse(const char *s);

/* Parts of a summary; a restricted key missing a permission loses only that part. */
#define STRIPE_PART_CUSTOMER		0x01u	/* rak_customer_read */
#define STRIPE_PART_SUBSCRIPTIONS	0x02u	/* rak_subscription_read */
#define STRIPE_PART_PLAN_NAMES		0x04u	/* rak_product_read */
#define STRIPE_PART_CHARGES		0x08u	/* rak_charge_read */
#define STRIPE_PART_INVOICES		0x10u	/* rak_invoice_read */
#define STRIPE_PART_GUEST		0x20u	/* rak_checkout_session_read (guest buyers) */
#define STRIPE_PARTS			6
/* Not a part of a summary: a permission only events polling needs (check-key probes it). */
#define STRIPE_PERM_EVENTS		0x40u	/* rak_event_read */
/* "rak_customer_read" etc. for one STRIPE_PART_* bit (or STRIPE_PERM_EVENTS), NULL for
 * anything else. */
const char *stripe_part_permission(unsigned part);
/* "customer", "subscriptions", "plan-names", "charges", "invoices", "guest" ("events"). */
const char *stripe_part_name(unsigned part);
/* "Customers: Read" etc.: the permission's name in the Dashboard's restricted-key form. */
const char *stripe_part_dashboard(unsigned part);

/* What a subscription's price is: a fixed unit amount, a sub-cent decimal one, tiers,
 * metered usage, a customer-chosen amount, or something this version does not know. */
enum stripe_amount_kind {
	STRIPE_AMOUNT_FIXED = 0, STRIPE_AMOUNT_DECIMAL, STRIPE_AMOUNT_TIERED, STRIPE_AMOUNT_METERED,
	STRIPE_AMOUNT_CUSTOM, STRIPE_AMOUNT_UNKNOWN, STRIPE_AMOUNT__COUNT
};
/* "fixed", "decimal", "tiered", "metered", "custom", "unknown". */
const char *stripe_amount_kind_name(enum stripe_amount_kind k);
enum stripe_amount_kind stripe_amount_kind_parse(const char *s);

/* How the customer (or buyer) was found. */
enum stripe_found_by {
	STRIPE_BY_NONE = 0,	/* not found */
	STRIPE_BY_EMAIL,	/* GET /v1/customers?email= (exact forms) */
	STRIPE_BY_SEARCH,	/* /v1/customers/search, case-insensitive */
	STRIPE_BY_GUEST,	/* no customer: Checkout Sessions by customer_details[email] */
	STRIPE_BY__COUNT
};
/* "none", "email", "search", "guest". */
const char *stripe_found_by_name(enum stripe_found_by b);

struct stripe_money {
	int64_t amount;			/* minor units */
	char currency[STRIPE_CUR_MAX];	/* lowercase ISO code, "" when unknown */
};

struct stripe_subscription {
	char id[STRIPE_ID_MAX];
	enum stripe_sub_status status;
	bool cancel_at_period_end;
	int64_t cancel_at;		/* Unix seconds, 0 = none */
	int64_t trial_end;		/* Unix seconds, 0 = none */
	int64_t period_end;		/* item's current_period_end (or the subscription's, pre-basil) */
	int64_t created;
	int item_count;
	/* From the first item's price: */
	char price_id[STRIPE_ID_MAX];
	char product_id[STRIPE_ID_MAX];
	char plan[STRIPE_TEXT_MAX];	/* product name; else price nickname; else "" */
	enum stripe_amount_kind amount_kind;
	struct stripe_money unit_amount;	/* FIXED (and METERED per unit); currency always */
	char amount_decimal[STRIPE_DECIMAL_MAX];	/* DECIMAL: minor units, e.g. "0.5" */
	int quantity;
	char interval[8];		/* "day", "week", "month", "year", "" when one-off */
	int interval_count;
};

struct stripe_charges {
	int window_days;		/* the window asked for */
	int count;			/* charges seen in the window (at most the configured max) */
	bool truncated;			/* more existed than the max */
	int succeeded, failed, pending;
	int refunded;			/* fully refunded */
	int partially_refunded;
	int disputed;
	int ntotals;
	struct stripe_money totals[STRIPE_TOTALS_MAX];	/* captured minus refunded, succeeded only */
	bool has_last;
	int64_t last_created;		/* Unix seconds */
	char last_status[16];		/* "succeeded", "failed", "pending" */
	struct stripe_money last_amount;
	char last_failure_code[STRIPE_CODE_MAX];	/* "" when none */
};

/* A guest buyer's Checkout Sessions (Stripe Checkout and Payment Links record the buyer's
 * address in customer_details.email): the completed ones created in the window. */
struct stripe_checkout {
	int window_days;		/* the window asked for (0: not read) */
	int sessions;			/* completed sessions in the window */
	int paid;			/* of those, payment_status "paid" */
	int subscriptions;		/* of those, mode "subscription" */
	bool truncated;			/* a full page still inside the window: more may exist */
	int ntotals;
	struct stripe_money totals[STRIPE_TOTALS_MAX];	/* amount_total of the paid ones */
	bool has_last;
	int64_t last_created;		/* the newest completed session, Unix seconds */
	char last_payment_status[24];	/* "paid", "unpaid", "no_payment_required" */
	char last_mode[16];		/* "payment", "subscription", "setup" */
};

/* Open invoices of the customer (read when it is delinquent or has a past_due, unpaid or
 * incomplete subscription). "Most urgent": the oldest open invoice that has had a failed
 * payment attempt, else the oldest open one. */
struct stripe_invoices {
	bool checked;			/* invoices were read (else nothing is known) */
	int open;			/* open invoices (at most one page of 100) */
	int past_due;			/* of those, past their due date or with failed attempts */
	int ndue;
	struct stripe_money due[STRIPE_TOTALS_MAX];	/* amount_remaining, per currency */
	/* the most urgent one: */
	char id[STRIPE_ID_MAX];
	struct stripe_money amount_remaining;
	int attempts;			/* attempt_count */
	int64_t next_attempt;		/* next_payment_attempt, Unix seconds, 0 = none */
	int64_t due_date;		/* Unix seconds, 0 = none (charge_automatically) */
	int64_t created;
	char url[STRIPE_URL_TEXT_MAX];	/* hosted_invoice_url, "" when none */
};

struct stripe_meta {
	char key[STRIPE_META_KEY_MAX + 1];
	char value[STRIPE_TEXT_MAX];
};

struct stripe_summary {
	bool found;			/* a customer matched */
	enum stripe_found_by found_by;	/* GUEST: found false, checkout of a guest buyer */
	bool search_skipped;		/* the search fallback was not tried (budget, off) */
	bool livemode;
	int64_t fetched_at;		/* Unix seconds when Stripe answered */
	unsigned parts_missing;		/* STRIPE_PART_* that could not be read (permission) */
	unsigned parts_refused;		/* STRIPE_PART_* whose request Stripe refused (a 4xx:
					 * logged and counted; the rest of the lookup stands) */
	/* customer */
	int matches;			/* customers with this email, up to STRIPE_CUSTOMERS_CAP */
	bool matches_capped;		/* more than matches exist ("N+") */
	char customer_id[STRIPE_ID_MAX];
	char email[STRIPE_TEXT_MAX];
	char name[STRIPE_TEXT_MAX];
	int64_t created;
	bool delinquent;
	struct stripe_money balance;	/* customer balance; negative = credit */
	int nmeta;
	struct stripe_meta meta[STRIPE_META_MAX];
	/* subscriptions, best first (see enum stripe_sub_status, then newest) */
	int subs_total;			/* subscriptions read: the current ones (Stripe's
					 * customer.subscriptions leaves canceled ones out) when
					 * there are any, else all of them, canceled included */
	int subs_by_status[STRIPE_SUB__COUNT];
	int nsubs;			/* kept in subs[] */
	struct stripe_subscription subs[STRIPE_SUBS_MAX];
	/* charges */
	struct stripe_charges charges;
	/* open invoices */
	struct stripe_invoices invoices;
	/* a guest buyer (found_by GUEST): completed Checkout Sessions */
	struct stripe_checkout checkout;
};

struct stripe_result {
	enum stripe_errclass err;
	int http_status;		/* last HTTP status, 0 when none */
	int requests;			/* HTTP requests this lookup made (retries included) */
	char request_id[STRIPE_ID_MAX];	/* Request-Id of the failing (or last) response */
	char permission[STRIPE_CODE_MAX];	/* rak_* name on STRIPE_E_PERMISSION ("" when
						 * Stripe named none: see message) */
	char message[256];		/* one line, sanitised, never contains the key */
};

/* Product-name cache hooks: the caller may keep plan names in its own cache. get returns
 * 0 and fills name when known (name may be "" for a product without one), -1 otherwise;
 * it must return by deadline_ms (the lookup's deadline, an sm_now_ms() value). */
typedef int (*stripe_product_get_fn)(void *arg, const char *product_id, int64_t deadline_ms,
    char *name, size_t len);
typedef void (*stripe_product_put_fn)(void *arg, const char *product_id, const char *name);

struct stripe_config {
	const char *api_key;		/* required: sk_/rk_ live/test (copied) */
	const char *base_url;		/* NULL = https://api.stripe.com; http:// only to loopback */
	const char *api_version;	/* NULL = STRIPE_API_VERSION_DEFAULT */
	const char *account;		/* Stripe-Account for Connect, NULL = none */
	const char *ca_file;		/* NULL = system store */
	long connect_timeout_ms;	/* 0 = 2000 */
	size_t max_response_bytes;	/* 0 = 4 MiB */
	int max_retries;		/* -1 = 2 */
	bool retry_rate_limited;	/* retry 429 within the deadline (default: report it,
					 * unless Stripe-Should-Retry: true or lock_timeout) */
	long retry_base_ms;		/* 0 = 500: backoff min(base * 2^(n-1), max), jitter 50-100% */
	long retry_max_ms;		/* 0 = 5000 */
	double rate_limit;		/* requests per second per process, 0 = 20 */
	int rate_burst;			/* 0 = rate_limit */
	int max_concurrent;		/* concurrent HTTP requests, 0 = 8 */
	double search_rate;		/* search requests per second per process, 0 = 5
					 * (Stripe allows 20/s per account for search) */
	bool no_search;			/* no /v1/customers/search fallback */
	bool no_guest;			/* no guest-buyer lookup (Checkout Sessions) */
	bool no_invoices;
	int charges_window_days;	/* 0 = 90 */
	int charges_max;		/* 0 = 100 (one page) */
	bool no_subscriptions;		/* header groups turned off: skip those calls */
	bool no_charges;
	bool no_plan_names;
	const char *const *metadata_keys;	/* copied */
	int nmetadata_keys;
	stripe_product_get_fn product_get;
	stripe_product_put_fn product_put;
	void *product_arg;
	const struct stripe_gate *gate;	/* NULL = the per-process token bucket only */
};

#define STRIPE_API_VERSION_DEFAULT "2025-03-31.basil"

struct stripe_client;

/* Returns NULL and writes why into err on bad config (never echoing the key). */
struct stripe_client *stripe_client_new(const struct stripe_config *cfg, char *err, size_t errlen);
void stripe_client_free(struct stripe_client *c);

/* Looks up email. Fills *out (zeroed first) and *res; returns res->err. On STRIPE_OK with
 * out->found false, no customer matched. A missing permission for subscriptions, plan names
 * or charges is not an error: the part is flagged in out->parts_missing. */
enum stripe_errclass stripe_lookup(struct stripe_client *c, const char *email, int64_t deadline_ms,
    struct stripe_summary *out, struct stripe_result *res);

/* The best status over a summary's subscriptions (STRIPE_SUB_NONE without any). */
enum stripe_sub_status stripe_summary_best_status(const struct stripe_summary *s);
/* Which of two found customers (e.g. of two accounts) comes first in the order a lookup
 * chooses among matches: subscription status group (active/trialing, past_due, the
 * rest), then newest, then smallest id. < 0: a first, > 0: b first, 0: the same. */
int stripe_summary_cmp(const struct stripe_summary *a, const struct stripe_summary *b);

/* Decimal places of a currency (0 for JPY, 3 for KWD, 2 for most). */
int stripe_currency_exponent(const char *currency);
/* Writes "49.00 USD", "-5.00 USD", "1200 JPY", "1.500 KWD". Returns chars written, or -1. */
int stripe_money_format(int64_t minor, const char *currency, char *buf, size_t len);
/* A decimal amount in minor units ("0.5", "12.345") -> "0.005 USD". -1 when minor is not
 * [0-9]+(.[0-9]+)? or does not fit. Trailing zeros past the currency's exponent are dropped. */
int stripe_money_format_decimal(const char *minor, const char *currency, char *buf, size_t len);

/* Keys. A key is sk_ or rk_, live or test; pk_ is refused. */
#define STRIPE_KEY_MAX 256
struct sm_secret_who;
/* Loads a key: from file when file is set (read by common/sm_secret.h's rules for the reader
 * who, NULL = the effective ids: one line, not accessible by others, group-readable only by
 * who's group), else from inline_key, else from the environment's STRIPE_API_KEY. 0 or -1
 * with err. */
int stripe_key_load(const char *file, const struct sm_secret_who *who, const char *inline_key,
    char *out, size_t outlen, char *err, size_t errlen);
/* 0 when key looks like a usable secret or restricted key, -1 with err otherwise. */
int stripe_key_check(const char *key, char *err, size_t errlen);
/* "sk_live_...abcd": safe to log. */
void stripe_key_mask(const char *key, char *out, size_t len);
bool stripe_key_livemode(const char *key);

/* Per-client counters, for stats and metrics. */
enum stripe_outcome {
	STRIPE_OUT_OK = 0, STRIPE_OUT_NOT_FOUND, STRIPE_OUT_401, STRIPE_OUT_403, STRIPE_OUT_429,
	STRIPE_OUT_5XX, STRIPE_OUT_TIMEOUT, STRIPE_OUT_NETWORK, STRIPE_OUT_OTHER, STRIPE_OUT__COUNT
};
/* "ok", "not_found", "401", "403", "429", "5xx", "timeout", "network", "other" */
const char *stripe_outcome_name(enum stripe_outcome o);
/* The endpoints the client calls, as fixed path templates (bounded metric labels). */
enum stripe_endpoint {
	STRIPE_EP_CUSTOMERS = 0, STRIPE_EP_CUSTOMERS_SEARCH, STRIPE_EP_SUBSCRIPTIONS,
	STRIPE_EP_PRODUCTS, STRIPE_EP_CHARGES, STRIPE_EP_INVOICES, STRIPE_EP_CHECKOUT_SESSIONS,
	STRIPE_EP_EVENTS, STRIPE_EP_ACCOUNT, STRIPE_EP_OTHER, STRIPE_EP__COUNT
};
/* "/v1/customers", "/v1/customers/search", ..., "other". */
const char *stripe_endpoint_name(enum stripe_endpoint e);
/* The endpoint of a request path ("/v1/customers?email=..." -> STRIPE_EP_CUSTOMERS). */
enum stripe_endpoint stripe_endpoint_of(const char *path_query);
/* 4xx statuses counted apart: 400, 404, and every other one (402, 405, 410, 413, ...). */
enum stripe_rejected { STRIPE_REJ_400 = 0, STRIPE_REJ_404, STRIPE_REJ_OTHER, STRIPE_REJ__COUNT };
/* "400", "404", "4xx". */
const char *stripe_rejected_name(enum stripe_rejected r);
#define STRIPE_LATENCY_BUCKETS 12	/* upper bounds in ms: 5,10,25,50,100,250,500,1000,2500,5000,10000,+Inf */
extern const int64_t stripe_latency_bounds_ms[STRIPE_LATENCY_BUCKETS];
struct stripe_stats {
	uint64_t requests[STRIPE_OUT__COUNT];	/* HTTP requests by outcome */
	uint64_t latency_hist[STRIPE_LATENCY_BUCKETS];	/* per request */
	uint64_t latency_sum_ms;
	uint64_t lookups;
	uint64_t inflight;			/* requests in flight now */
	uint64_t searches;			/* customer search requests sent */
	uint64_t search_skipped;		/* fallbacks not tried: no search token */
	bool search_off;			/* customer search backed off now (see
						 * STRIPE_SEARCH_FAILS in stripe_lookup.c) */
	uint64_t search_backoffs;		/* times it was backed off */
	/* 4xx answers (other than 401, 403, 429) to requests the client built: a defect
	 * report, by endpoint (stripe_endpoint_name) and status (stripe_rejected_name) */
	uint64_t rejected[STRIPE_EP__COUNT][STRIPE_REJ__COUNT];
};
void stripe_stats_get(struct stripe_client *c, struct stripe_stats *out);

/* Permission check for `stripe-milterctl check-key` and `stripe-milter -n`: one probe per
 * resource (GET ...?limit=1), every part and events. */
struct stripe_perm {
	unsigned part;			/* STRIPE_PART_* */
	const char *permission;		/* rak_* */
	const char *dashboard;		/* "Customers: Read" */
	bool granted;
	enum stripe_errclass err;	/* STRIPE_OK when the probe got an answer */
	char message[256];		/* Stripe's sanitised message when a 403 named no
					 * permission (e.g. Connect access), else "" */
};
#define STRIPE_PERMS (STRIPE_PARTS + 1)	/* the parts, then STRIPE_PERM_EVENTS */
/* The id of the account the key acts on (GET /v1/account; with Stripe-Account, the
 * connected account). 0, or -1 with res filled (a restricted key may not read it). */
int stripe_account_id(struct stripe_client *c, int64_t deadline_ms, char *out, size_t len,
    struct stripe_result *res);
int stripe_check_permissions(struct stripe_client *c, int64_t deadline_ms,
    struct stripe_perm out[STRIPE_PERMS], struct stripe_result *res);

/* ---- gate: a fleet-wide budget and circuit breaker around every HTTP attempt ----------
 * The client asks admit() before each attempt (retries included) and tells report() how
 * each attempt that reached Stripe ended. admit() gets the attempt's deadline: its own
 * work (e.g. a Redis call) ends by then, and the slot may come no later (a search's slot:
 * only at once). It returns:
 *	STRIPE_GATE_GO		send after *wait_ms (the budget reserved a slot; no local bucket)
 *	STRIPE_GATE_LOCAL	the gate has no budget to apply: use the local token bucket,
 *				as without a gate
 *	STRIPE_GATE_NO_BUDGET	no slot in time: the attempt fails rate-limited
 *	STRIPE_GATE_OPEN	the breaker is open: the attempt fails unavailable at once
 * flags: STRIPE_GATE_SEARCH for /v1/.../search requests (a budget of their own),
 * STRIPE_GATE_PREPAID for an attempt whose slot its lookup reserved (breaker only).
 * admit() may set *ticket, which report() gets back for that attempt (e.g. "this attempt
 * is the breaker's probe").
 * reserve() (optional) is asked once at the start of a lookup for the slots of its usual
 * requests, so that a scarce budget lets whole lookups through instead of starting many
 * and finishing none: GO with the wait before the first slot and the step between slots,
 * NO_BUDGET when the last would come after max_wait_ms (the lookup then sends nothing),
 * LOCAL when it cannot decide (attempts are then admitted one by one). refund() hands back
 * slots a lookup did not use. All are called from many threads at once. */
enum stripe_gate_verdict { STRIPE_GATE_GO = 0, STRIPE_GATE_LOCAL, STRIPE_GATE_NO_BUDGET, STRIPE_GATE_OPEN };
#define STRIPE_GATE_SEARCH	0x1u
#define STRIPE_GATE_PREPAID	0x2u
struct stripe_gate {
	enum stripe_gate_verdict (*admit)(void *arg, unsigned flags, int64_t deadline_ms, int64_t *wait_ms,
	    unsigned *ticket);
	void (*report)(void *arg, unsigned ticket, enum stripe_errclass err, long http_status);
	void *arg;
	enum stripe_gate_verdict (*reserve)(void *arg, int n, int64_t max_wait_ms, int64_t *wait_ms,
	    int64_t *step_ms);
	void (*refund)(void *arg, int n);
};

/* ---- events (GET /v1/events and webhook payloads) ----------------------------------- */
#define STRIPE_EVENT_TYPE_MAX	64
#define STRIPE_EVENT_EMAILS	3
struct stripe_event {
	char id[STRIPE_ID_MAX];		/* evt_... */
	char type[STRIPE_EVENT_TYPE_MAX];	/* "customer.updated" */
	int64_t created;		/* Unix seconds */
	bool livemode;
	char account[STRIPE_ID_MAX];	/* "account": the connected account a Connect event
					 * comes from, "" on the platform's own events */
	char object[32];		/* data.object.object: "customer", "subscription", ... */
	char customer_id[STRIPE_ID_MAX];	/* the customer the object belongs to, "" if none */
	int nemails;			/* addresses named: current, and the previous one on */
	char emails[STRIPE_EVENT_EMAILS][STRIPE_TEXT_MAX];	/* customer.updated */
};
/* Parses one event object (a webhook body). 0, or -1 with err when it is not an event
 * (no "object":"event", no id or type). Fields are bounded and sanitised. */
int stripe_event_parse(const char *buf, size_t len, struct stripe_event *ev, char *err, size_t errlen);
/* One page of GET /v1/events?created[gt]=..[&types[]=..]&limit=..[&starting_after=..],
 * newest first as Stripe lists them; ntypes 0 (types NULL) lists every type. *n events go into out[max]; *has_more as Stripe says.
 * Returns res->err. */
enum stripe_errclass stripe_events_list(struct stripe_client *c, int64_t created_gt,
    const char *const *types, int ntypes, const char *starting_after, int limit,
    int64_t deadline_ms, struct stripe_event *out, int max, int *n, bool *has_more,
    struct stripe_result *res);

#endif
