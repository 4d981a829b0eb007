/*
 * lk_int.h - internals shared by the files of lookup/; not part of the interface.
 *
 *	lk_service.c	lk_new/hold/put: the Stripe client and the two caches, shared
 *			across services whose settings match.
 *	lk_key.c	cache keys (address normalisation, SHA-256 from libcrypto).
 *	lk_codec.c	struct stripe_summary <-> the bytes in the cache.
 *	lk_product.c	plan names: the Stripe client's product hooks on the second cache.
 *	lk_flow.c	one lookup: key -> cache get-or-fill (fill = Stripe) -> decode.
 *	lk_memo.c	decoded summaries remembered by their bytes (warm hits skip JSON).
 *	lk_pool.c	the worker pool, jobs, prefetch, counters.
 */
#ifndef LK_INT_H
#define LK_INT_H

#include "lookup/lookup.h"

struct lk_shared;	/* a refcounted client or pair of caches, shared across services */

struct lk {
	int refs;
	struct lk_shared *stripe_ref;
	struct lk_shared *cache_ref;
	struct stripe_client *stripe;
	struct cache *cache;		/* sender summaries */
	struct cache *products;		/* plan names */
	char mode[8];
	char account[64];
	int64_t stripe_timeout_ms;
	lk_fill_fn on_fill;		/* NULL = none */
	void *on_fill_arg;
};

/* lk_key.c: loads the SHA-256 implementation (once per process; thread-safe). */
void lk_key_init(void);

/* lk_product.c: the hooks of struct stripe_config; arg is the plan-name cache. */
int lk_product_get(void *arg, const char *product_id, int64_t deadline_ms, char *name, size_t len);
void lk_product_put(void *arg, const char *product_id, const char *name);

/* lk_flow.c: one lookup of addr on the calling thread; res is zeroed first. key is addr's
 * lk_key(), or NULL to compute it here. fill false: a probe of L1 and Redis only (a miss
 * is LK_ERROR with lr_error "not-cached"). */
void lk_run(struct lk *lk, const char *addr, const char *key, bool fill, int64_t deadline_ms,
    struct lk_result *res);
/* lk_flow.c: the same answered from a fresh in-process (L1) entry only, never blocking:
 * 0 with res filled, -1 when L1 cannot answer (res is then zeroed; run lk_run()). key
 * (CACHE_KEY_MAX bytes) gets addr's key, "" when it has none. */
int lk_run_l1(struct lk *lk, const char *addr, char *key, struct lk_result *res);

/* lk_flow.c: the summary cache's check of bytes read from Redis (struct cache_config's
 * check): 0 when they decode (or are empty: a negative entry), else -1 with why. */
int lk_entry_check(void *arg, const unsigned char *data, size_t len, char *why, size_t whylen);

/* lk_memo.c: lk_summary_decode() remembered by the exact bytes (same result, same errors). */
int lk_summary_decode_memo(const char *data, size_t len, struct stripe_summary *out, char *why,
    size_t whylen);

#endif
