/*
 * lookup.h - the path from a sender address to a customer summary: cache key, cache,
 * Stripe, summary codec, plan names, the worker pool and prefetch.
 *
 * This is the whole interface of lookup/. It is the one module that knows both the cache
 * (opaque keys and bytes, cache/) and the Stripe client (a struct stripe_summary,
 * stripe/), and nothing of milters or headers.
 *
 * Interface:
 *	lk_new(cfg, prev) / lk_hold() / lk_put()	a lookup service: the Stripe client,
 *		the summary cache and the plan-name cache, refcounted. Built from plain
 *		settings; the client and the caches of prev are reused when every setting they
 *		depend on is unchanged (compared field by field, the key included), so counters
 *		and the in-process cache survive a reload and any change takes effect on it.
 *	lk_key()		the cache key of an address (see "Keys" below).
 *	lk_summary_encode() / lk_summary_decode()	the summary's bytes in the cache:
 *		versioned compact JSON, exact round trip; unknown versions are rejected.
 *	lk_pool_start(n, q) / lk_pool_stop()	the worker threads (once per process).
 *	lk_start(lk, addr)	queues a lookup, never blocks; a full queue gives a job already
 *		done with error=overloaded. lk_wait(), lk_job_result(), lk_release().
 *	lk_prefetch() / lk_prefetch_probe() / lk_prefetch_result() / lk_prefetch_release()
 *		the jobs of one message: start a lookup (or a cache-only probe, for an address
 *		the message may not use) as soon as an address is known, then wait for the one
 *		the message reports on (starting it if nobody did).
 *	lk_sync(lk, addr, deadline, &res)	one lookup on the calling thread (the ctl).
 *	lk_purge(lk, addr)	deletes an address's entry (L1 and Redis).
 *
 * Keys: "<prefix>:v1:sum<N>:<mode>:<account>:<hex SHA-256 of the address, ASCII-lowercased>".
 *	The address is lowercased in ASCII only (whatever the locale), the hash is OpenSSL's
 *	SHA-256, mode is "live" or "test", account the Connect account or "-". "<prefix>:v1:"
 *	is the cache's name space (cache_key_name(): the version of the cache entry's own
 *	header); N is LK_SUMMARY_VERSION, the summary codec's version, also inside the value
 *	("v"): a daemon reads and writes only the entries its codec wrote, so two versions on
 *	one Redis (a rolling upgrade) never meet each other's summaries. Plan names live under
 *	"<prefix>:v1:product:<prod_id>" (their value is the name itself, no codec).
 *
 * Deadlines: every deadline is an sm_now_ms() value (monotonic). A lookup waited for is
 *	bounded by the caller's deadline; the job itself runs until stripe_timeout_ms after it
 *	started, so a lookup that outlives a message still fills the cache. A plan name is
 *	read from its cache within the lookup's deadline and at most 500 ms.
 *
 * Memory: results are fixed-size structs owned by the job (valid until lk_release) or by
 *	the caller (lk_sync). lk_summary_encode() returns malloc'd bytes.
 *
 * Diagnostics: a cache entry in Redis that does not decode is logged by the cache ("cache
 *	entry KEY unreadable (why): purged" at LOG_WARNING), deleted and treated as a miss by
 *	every reader, so the lookup fills from Stripe; lk_new() returns NULL with the reason
 *	in err. Nothing here logs an address (keys are hashes) or the Stripe key.
 */
#ifndef LOOKUP_H
#define LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "stripe/stripe.h"

/* The summary codec's version: in every summary ("v") and in its cache key ("sum<N>"),
 * so that daemons of two versions on one Redis each read their own entries. A build may
 * set another (CPPFLAGS=-DLK_SUMMARY_VERSION=N, N >= 1), as the upgrade test does. */
#ifndef LK_SUMMARY_VERSION
#define LK_SUMMARY_VERSION	1
#endif
#if LK_SUMMARY_VERSION < 1
#error "LK_SUMMARY_VERSION must be 1 or more"
#endif
#define LK_ADDR_MAX		320

/* What a lookup came to (SKIPPED is the milter's: no lookup was made). */
enum lk_state { LK_FOUND, LK_NOT_FOUND, LK_ERROR, LK_SKIPPED };

struct lk_result {
	enum lk_state lr_state;			/* FOUND, NOT_FOUND or ERROR */
	const char *lr_error;			/* error class word when ERROR (or stale) */
	enum cache_source lr_source;
	int64_t lr_fetched_at_ms;		/* wall clock */
	bool lr_stale;
	int64_t lr_latency_ms;
	char lr_request_id[STRIPE_ID_MAX];	/* Stripe's Request-Id when Stripe failed */
	char lr_error_message[256];
	struct stripe_summary lr_summary;	/* valid for FOUND (and stale) */
};

/* Settings of a lookup service. Strings are copied by the parts that keep them. */
struct lk_config {
	struct stripe_config stripe;	/* product_get/put/arg are lookup/'s own: leave NULL */
	struct cache_config cache;	/* sender summaries; plan names get a cache of their own
					 * on the same Redis (2000 entries, an hour at least,
					 * two connections) */
	const char *mode;		/* "live" or "test" */
	const char *account;		/* Connect account, NULL or "" = "-" */
	int64_t stripe_timeout_ms;	/* how long a job may run in the background */
	/* Called after a fill stored a found customer's summary under key (e.g. so that
	 * Stripe events about that customer can purge it); NULL = none. Any thread. */
	void (*on_fill)(void *arg, const char *customer_id, const char *key);
	void *on_fill_arg;
	/* Another service whose caches (summaries and plan names, one Redis pool) this one
	 * uses when its cache settings are the same: the accounts of one instance share
	 * them (their keys differ by account). NULL = prev's, else new ones. */
	const struct lk *cache_from;
};

struct lk;
typedef void (*lk_fill_fn)(void *arg, const char *customer_id, const char *key);

struct lk *lk_new(const struct lk_config *cfg, const struct lk *prev, char *err, size_t errlen);
void lk_hold(struct lk *lk);
void lk_put(struct lk *lk);
/* The parts, for statistics and the ctl (owned by lk). */
struct stripe_client *lk_stripe(const struct lk *lk);
struct cache *lk_cache(const struct lk *lk);

/* 0, or -1 when a part does not fit or has blanks or ':' (mode, account). */
int lk_key(const struct cache *c, const char *mode, const char *account, const char *address,
    char *buf, size_t len);
/* Deletes the address's cached summary (its key is written to key when not NULL); 0, or
 * -1 (Redis failed, bad address). */
int lk_purge(struct lk *lk, const char *address, char *key, size_t keylen);

/* Serialises a summary; *buf is malloc'd (caller frees). 0, or -1 on out of memory or a
 * string that is not UTF-8. */
int lk_summary_encode(const struct stripe_summary *s, char **buf, size_t *len);
/* Parses what encode wrote. 0, or -1 with a reason in err for anything else, including an
 * unknown version. */
int lk_summary_decode(const char *buf, size_t len, struct stripe_summary *out,
    char *err, size_t errlen);

/* ---- jobs ---- */

struct lk_job;

int lk_pool_start(int threads, int queue_max);
void lk_pool_stop(void);
/* NULL only when out of memory. The caller holds a reference (lk_release). */
struct lk_job *lk_start(struct lk *lk, const char *addr);
/* True when the job is done by the deadline (monotonic wait). */
bool lk_wait(struct lk_job *job, int64_t deadline_ms);
/* Valid only after lk_wait() returned true. */
const struct lk_result *lk_job_result(const struct lk_job *job);
const char *lk_job_addr(const struct lk_job *job);
int64_t lk_job_started(const struct lk_job *job);
void lk_release(struct lk_job *job);

void lk_sync(struct lk *lk, const char *addr, int64_t deadline_ms, struct lk_result *res);

/* The lookups of one message: zero it before use. */
#define LK_PREFETCH_MAX 2
struct lk_prefetch {
	struct lk_job *pf_jobs[LK_PREFETCH_MAX];
};
/* Starts addr's lookup unless one is running for it (or every slot is taken); a probe of
 * addr becomes a lookup unless it found addr cached. */
void lk_prefetch(struct lk_prefetch *p, struct lk *lk, const char *addr);
/* Starts a probe of the caches only (L1, Redis) for an address the message may not use:
 * no Stripe request until lk_prefetch() or lk_prefetch_result() asks for that address. */
void lk_prefetch_probe(struct lk_prefetch *p, struct lk *lk, const char *addr);
/* addr's result, waiting until timeout_ms after its lookup started; a lookup is started
 * when none was. NULL with *why ("timeout", counted; "internal") when there is none. */
const struct lk_result *lk_prefetch_result(struct lk_prefetch *p, struct lk *lk, const char *addr,
    int64_t timeout_ms, const char **why);
void lk_prefetch_release(struct lk_prefetch *p);

/* Counters of the pool (for metrics). */
struct lk_counters {
	uint64_t started, found, not_found, errors, stale, overloaded, timed_out_waits;
	uint64_t probes, probe_hits, probe_upgrades;	/* prefetch probes (not lookups) */
	uint64_t queued, running;
};
void lk_counters_get(struct lk_counters *out);

#endif
