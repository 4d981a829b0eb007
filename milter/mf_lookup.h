/*
 * mf_lookup.h - lookups that run beside the SMTP dialogue.
 *
 * A message starts a lookup as soon as it knows the address (MAIL FROM or RCPT TO), a pool
 * of worker threads runs it (cache get-or-fill around the Stripe client), and end-of-message
 * waits for the result only until the lookup's deadline. A lookup that outlives the wait
 * keeps running in the background (bounded by StripeTimeout) and fills the cache for the
 * next message from that sender.
 *
 * Interface:
 *	mf_lookup_pool_start(n) / mf_lookup_pool_stop()	the worker threads (once per process).
 *	mf_lookup_start(rt, addr)	queues a lookup; returns a job holding a reference for the
 *		caller. Never blocks. A full queue gives a job already done with error=overloaded.
 *	mf_lookup_wait(job, deadline_ms)	true when the job is done by the deadline.
 *	mf_lookup_release(job)		drops the caller's reference (the worker holds its own).
 *	mf_lookup_sync(rt, addr, deadline_ms, &res)	runs one lookup on the calling thread
 *		(for stripe-milterctl).
 *
 * Result fields are valid once the job is done and never change after that.
 */
#ifndef MF_LOOKUP_H
#define MF_LOOKUP_H

#include <stdbool.h>
#include <stdint.h>

#include "milter/mf_hdr.h"
#include "milter/mf_runtime.h"
#include "stripe/stripe.h"

struct mf_lookup_result {
	enum mf_lookup_state lr_state;		/* FOUND, NOT_FOUND or ERROR */
	const char *lr_error;			/* error class word when ERROR (or stale) */
	enum cache_source lr_source;
	int64_t lr_fetched_at_ms;		/* wall clock */
	bool lr_stale;
	int64_t lr_latency_ms;
	char lr_request_id[STRIPE_ID_MAX];	/* Stripe's Request-Id when Stripe failed */
	char lr_error_message[256];
	struct stripe_summary lr_summary;	/* valid for FOUND (and stale) */
};

struct mf_job;

int mf_lookup_pool_start(int threads, int queue_max);
void mf_lookup_pool_stop(void);
struct mf_job *mf_lookup_start(struct mf_runtime *rt, const char *addr);
bool mf_lookup_wait(struct mf_job *job, int64_t deadline_ms);
/* The job's result; only valid after mf_lookup_wait() returned true. */
const struct mf_lookup_result *mf_lookup_result(const struct mf_job *job);
const char *mf_lookup_addr(const struct mf_job *job);
int64_t mf_lookup_started(const struct mf_job *job);
void mf_lookup_release(struct mf_job *job);

/* Fills the header renderer's view of a finished lookup (state, cache word, age, stale,
 * error) and returns the summary to render, NULL unless a customer was found. */
const struct stripe_summary *mf_lookup_info_fill(const struct mf_lookup_result *res,
    struct mf_lookup_info *li);

void mf_lookup_sync(struct mf_runtime *rt, const char *addr, int64_t deadline_ms,
    struct mf_lookup_result *res);

/* Counters of the pool (for metrics). */
struct mf_lookup_counters {
	uint64_t started, found, not_found, errors, stale, overloaded, timed_out_waits;
	uint64_t queued, running;
};
void mf_lookup_counters_get(struct mf_lookup_counters *out);
/* Called by the milter when a wait gave up. */
void mf_lookup_count_timeout(void);

#endif
