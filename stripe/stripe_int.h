/*
 * stripe_int.h - internals shared by the stripe/ sources (and their unit tests).
 *
 * Interface:
 *	struct stripe_client	the client behind stripe.h's opaque pointer.
 *	stripe_http_get()	one GET with token bucket, concurrency cap, retries, deadline
 *				(stripe_http.c).
 *	stripe_parse_*()	untrusted JSON -> plain structs (stripe_parse.c).
 *	stripe_choose_customer(), stripe_subs_rank()	pure selection logic (stripe_lookup.c).
 *	stripe_copy_text()	bounded copy, truncated at a UTF-8 boundary, control chars -> ' '.
 *
 * Nothing here is part of the library's public interface; it may change at any time.
 */
#ifndef STRIPE_INT_H
#define STRIPE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/sm_util.h"
#include "stripe/stripe.h"

#define STRIPE_URL_MAX		256
#define STRIPE_PATH_MAX		4096	/* path + query of one request (ids percent-encoded) */
#define STRIPE_EMAIL_MAX	512	/* Stripe's maxLength for the email filter */
#define STRIPE_CUSTOMERS_PAGE	100	/* customers asked for per request (Stripe's maximum) */
#define STRIPE_CUSTOMERS_PAGES	5	/* pages of customers read per address form at most */
#define STRIPE_CANDIDATES_MAX	(2 * STRIPE_CUSTOMERS_CAP)	/* both exact forms */
#define STRIPE_SUBS_FETCH	100	/* subscriptions per page */
#define STRIPE_SUBS_CAP		1000	/* subscriptions read per customer */
#define STRIPE_INVOICES_FETCH	100	/* open invoices read (one page) */
#define STRIPE_POOL_MAX		64	/* idle curl handles kept */
#define STRIPE_LOST_RETRY_MS	600000	/* a permission lost on an expansion is tried again */
#define STRIPE_SEARCH_FAILS	3	/* customer searches refused (4xx) in a row ... */
#define STRIPE_SEARCH_BACKOFF_MS 600000	/* ... back customer search off this long */
#define STRIPE_REJECTED_LOGGED	64	/* distinct 4xx messages logged per client */

struct stripe_client {
	/* configuration, immutable after stripe_client_new() */
	char key[STRIPE_KEY_MAX];
	char masked[48];
	bool livemode;
	char base_url[STRIPE_URL_MAX];
	bool allow_http;
	char api_version[64];
	char account[STRIPE_ID_MAX];
	char ca_file[512];
	long connect_timeout_ms;
	size_t max_response_bytes;
	int max_retries;
	bool retry_rate_limited;
	int64_t retry_base_ms, retry_max_ms;
	int charges_window_days, charges_max;
	bool no_subscriptions, no_charges, no_plan_names;
	bool no_search, no_guest, no_invoices;
	char meta_keys[STRIPE_META_MAX][STRIPE_META_KEY_MAX + 1];
	int nmeta_keys;
	stripe_product_get_fn product_get;
	stripe_product_put_fn product_put;
	void *product_arg;
	struct stripe_gate gate;	/* admit == NULL: no gate */
	struct curl_slist *headers;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	/* mutable, under lock */
	pthread_mutex_t lock;
	pthread_cond_t slot_cond;
	int inflight, max_concurrent;
	CURL *idle[STRIPE_POOL_MAX];
	int nidle;
	double tokens, rate, burst;
	int64_t bucket_ms;
	double search_tokens, search_rate;	/* the search budget (no waiting for it) */
	int64_t search_bucket_ms;
	int search_fails;			/* customer searches refused with a 4xx in a
						 * row (a success resets it) */
	int64_t search_off_until_ms;		/* customer search backed off until then */
	unsigned lost;				/* parts whose expansion got a 403 */
	int64_t lost_until_ms;			/* ... until then (sm_now_ms) */
	struct stripe_stats stats;
	uint64_t rng;
	/* product names being fetched now (single flight), under lock */
	struct stripe_flight *flights;
	pthread_cond_t flight_cond;
	/* log-once flags, one per STRIPE_PART_* bit */
	int perm_logged[STRIPE_PARTS];
	/* 4xx messages logged already (a hash of endpoint, status and message), under lock */
	uint64_t rejected_seen[STRIPE_REJECTED_LOGGED];
	int nrejected_seen;
};

/* A lookup's reserved budget (struct stripe_gate's reserve()): its first attempts, on
 * whichever of its threads, each take the next slot and wait for its time. The lookup's
 * thread sets stripe_tl_credit; jobs carry it to the threads they run on. */
struct stripe_credit {
	pthread_mutex_t mu;
	int left;			/* slots not taken yet */
	int64_t next_ms;		/* sm_now_ms() of the next slot */
	int64_t step_ms;
};
extern __thread struct stripe_credit *stripe_tl_credit;
/* stripe_http.c: reserve n slots before deadline_ms (0: go on without a credit, cr->left
 * 0; -1: no room in the budget, res filled) / hand back what was not used. */
int stripe_credit_begin(struct stripe_client *c, struct stripe_credit *cr, int n, int64_t deadline_ms,
    struct stripe_result *res);
void stripe_credit_end(struct stripe_client *c, struct stripe_credit *cr);

/* Outcome of one logical GET (all its attempts). */
struct stripe_call {
	enum stripe_errclass err;
	long status;
	int requests;
	char request_id[STRIPE_ID_MAX];
	char permission[STRIPE_CODE_MAX];
	char code[STRIPE_CODE_MAX];	/* Stripe's error code ("lock_timeout", ...) */
	bool attempt_timed_out;		/* the last attempt used up its share of the deadline */
	char message[256];
	struct sm_buf body;	/* the final response body, owned (sm_buf_free) */
};

void stripe_call_init(struct stripe_call *call);
void stripe_call_free(struct stripe_call *call);
/* GET base_url + path_query. Fills call; returns call->err. 404 is STRIPE_E_REQUEST. */
enum stripe_errclass stripe_http_get(struct stripe_client *c, const char *path_query,
    int64_t deadline_ms, struct stripe_call *call);
/* Percent-encodes s for a query value (or a path segment) into out: everything but
 * [A-Za-z0-9._~-] becomes %XX. -1 when it does not fit. */
int stripe_url_encode(const char *s, char *out, size_t len);
/* Escapes s for a search query string literal ('...'): ' and \ get a backslash. -1 when
 * it does not fit. */
int stripe_search_escape(const char *s, char *out, size_t len);
/* Takes a search token if one is there now (never waits). 0, or -1 when none. */
int stripe_search_take(struct stripe_client *c);
/* Classifies a finished HTTP status; permission-less, no retries. */
enum stripe_errclass stripe_http_class(long status);
/* Should an attempt that ended with err/status (and Stripe's error code, "" when none) be
 * retried? should_retry is Stripe-Should-Retry: -1 absent, 0 false, 1 true; it is
 * consulted first, as Stripe's own clients do. */
bool stripe_http_retryable(enum stripe_errclass err, long status, const char *code,
    int should_retry, bool retry_rate_limited);
/* Time allowed for one attempt: all that is left for the last allowed attempt; otherwise
 * at most half of it, so that a stalled attempt still leaves time for a retry. */
int64_t stripe_http_attempt_ms(int64_t left_ms, int attempt, int max_retries);
/* Backoff before retry n (1-based) with jitter in [50%, 100%]; rnd in [0, 1). */
int64_t stripe_http_backoff_ms(int n, int64_t base_ms, int64_t max_ms, double rnd);
/* Copies Stripe's message into out, dropping anything that looks like an API key. */
void stripe_sanitise_message(const char *in, char *out, size_t len);

/* stripe_parse.c: all return 0 on success, -1 (with msg) when the body is not the
 * expected shape; fields of wrong type read as 0/""/false. */
struct stripe_customer {
	json_t *subs;			/* the expanded "subscriptions" list object (a
					 * reference), NULL when not expanded */
	char id[STRIPE_ID_MAX];
	char email[STRIPE_TEXT_MAX];
	char name[STRIPE_TEXT_MAX];
	int64_t created;
	bool delinquent;
	bool livemode;
	struct stripe_money balance;
	int nmeta;
	struct stripe_meta meta[STRIPE_META_MAX];
	/* filled by the lookup, not the parser */
	enum stripe_sub_status best;
};
/* Appends the customers of one list or search page to out[*n..max). only_email: keep only
 * customers whose email equals it ignoring ASCII case (search results), NULL = all.
 * Each customer's expanded subscriptions list is kept as a reference (free with
 * stripe_customers_release()); its best status is set in ->best. *last_id: the page's
 * last id (for starting_after); *next_page: search's next_page ("" when none). */
int stripe_parse_customers(const char *buf, size_t len, char meta_keys[][STRIPE_META_KEY_MAX + 1],
    int nmeta_keys, const char *only_email, struct stripe_customer *out, int max, int *n,
    bool *has_more, char *last_id, size_t last_id_len, char *next_page, size_t next_page_len,
    char *msg, size_t msglen);
void stripe_customers_release(struct stripe_customer *c, int n);
/* Appends to out[*n..max) (paging: *n is not reset). */
int stripe_parse_subscriptions(const char *buf, size_t len, struct stripe_subscription *out,
    int max, int *n, bool *has_more, char *msg, size_t msglen);
/* The same from an already parsed list object (an expanded customer.subscriptions). */
int stripe_parse_subscription_list(json_t *list, struct stripe_subscription *out, int max,
    int *n, bool *has_more);
/* Adds up to max - acc->count charges to acc; *last_id is the list's last id (for paging).
 * only_email: count only charges whose billing_details.email equals it ignoring ASCII case
 * (a guest search), NULL = all. min_created: skip older charges (0 = none). */
int stripe_parse_charges(const char *buf, size_t len, const char *only_email,
    int64_t min_created, struct stripe_charges *acc, int max, bool *has_more, char *last_id,
    size_t last_id_len, char *msg, size_t msglen);
/* Adds the completed Checkout Sessions of one list page to acc: only those whose
 * customer_details.email is exactly email (the list filter is exact) and created at or
 * after min_created; the list is newest first, so an older one ends the page (and the
 * paging). A page that says has_more without reaching an older one sets acc->truncated. */
int stripe_parse_sessions(const char *buf, size_t len, const char *email, int64_t min_created,
    struct stripe_checkout *acc, bool *has_more, char *msg, size_t msglen);
/* Adds from's counts and totals to into; the newer last session wins. */
void stripe_checkout_merge(struct stripe_checkout *into, const struct stripe_checkout *from);
/* Open invoices into inv (checked set); now: Unix seconds, for "past due". */
int stripe_parse_invoices(const char *buf, size_t len, int64_t now, struct stripe_invoices *inv,
    bool *has_more, char *msg, size_t msglen);
struct stripe_product {
	char id[STRIPE_ID_MAX];
	char name[STRIPE_TEXT_MAX];
};
int stripe_parse_products(const char *buf, size_t len, struct stripe_product *out, int max,
    int *n, char *msg, size_t msglen);
/* Stripe's error object: message (sanitised), the rak_* permission it names and its code. */
void stripe_parse_error(const char *buf, size_t len, char *msg, size_t msglen, char *perm,
    size_t permlen, char *code, size_t codelen);
/* A Stripe id: 1..STRIPE_ID_MAX-1 bytes of [A-Za-z0-9_-]. */
bool stripe_id_ok(const char *s, size_t n);

/* Copies at most len-1 bytes of s (n bytes long) into out, cut at a UTF-8 boundary,
 * with control characters (C0, DEL) replaced by spaces. */
void stripe_copy_text(char *out, size_t len, const char *s, size_t n);
/* The body of one GET /v1/events page: the events of "data" that parse go into out[max]
 * (*n of them, the others skipped), *has_more as the page says. 0, or -1 with err when the
 * body has no "data" array (*n 0). Untrusted bytes (stripe_events.c). */
int stripe_events_page_parse(const char *buf, size_t len, struct stripe_event *out, int max,
    int *n, bool *has_more, char *err, size_t errlen);

/* stripe_lookup.c: pure logic, exposed for tests. */
/* Index of the customer to use: the best subscription status group (active/trialing, then
 * past_due, then the rest), then the newest, then the smallest id. -1 when n == 0. */
int stripe_choose_customer(const struct stripe_customer *c, int n);
/* Sorts subs best first (status rank, then newest, then id). */
void stripe_subs_sort(struct stripe_subscription *subs, int n);
/* Fills the summary's subscription fields from all subscriptions (sorted here). */
void stripe_subs_summarise(struct stripe_summary *s, struct stripe_subscription *subs, int n);

/* stripe_products.c: plan names for subs[0..n) from the caller's cache, else one
 * GET /v1/products?ids[]=... per set of missing ids, single-flighted across threads (a
 * lookup that needs a name another lookup is fetching waits for that answer instead of
 * asking again). Adds its requests to *requests; a 403 naming rak_product_read sets
 * STRIPE_PART_PLAN_NAMES in *missing. Returns the error class (OK when names are
 * simply unknown). */
struct stripe_flight;
enum stripe_errclass stripe_plan_names(struct stripe_client *c, struct stripe_subscription *subs,
    int n, int64_t deadline_ms, struct stripe_call *call, int *requests, unsigned *missing);
void stripe_flights_init(struct stripe_client *c);
void stripe_flights_destroy(struct stripe_client *c);

/* stripe_client.c: counts one HTTP request in the client's stats. */
void stripe_stats_count(struct stripe_client *c, enum stripe_outcome o, int64_t ms);

#endif
