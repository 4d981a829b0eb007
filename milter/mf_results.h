/*
 * mf_results.h - what each message got: counters of the X-Stripe-Lookup result.
 *
 * One count per message that reached end-of-message, by the result its X-Stripe-Lookup
 * header says: found, not-found, guest, error=<class>, skipped=<reason>; plus messages
 * whose key lacked a permission (by rak_* name) and a histogram of how long the lookup
 * behind a message took. These are the figures an operator reads first ("is mail being
 * enriched?"); the cache and Stripe counters explain them.
 *
 * Interface:
 *	mf_results_count(li, sum, latency_ms)	counts one message (the milter, at EOM).
 *		latency_ms < 0: nothing to observe (skipped messages).
 *	mf_results_get(out)	a copy of the counters (relaxed atomic reads).
 *	mf_results_error_name(i), mf_results_skip_name(i)	label of each slot.
 *	mf_results_account(name), mf_results_account_count(slot, li, sum),
 *	mf_results_account_get(name, &out)	what
 *		each Stripe account answered (a message asks every account: one count per
 *		account per looked-up message), by account name; at most MF_RES_ACCOUNTS names
 *		for the life of the process (more are not counted).
 *
 * "guest" counts not-found senders whose completed Checkout Sessions were found by email (a guest
 * buyer, GuestLookup); it is counted so even under HeaderPrivacy, where the header itself
 * says only not-found.
 * Unknown error classes and skip reasons are counted as "other", never dropped.
 *
 * Thread safety: any thread; counters are process-wide and survive reloads.
 */
#ifndef MF_RESULTS_H
#define MF_RESULTS_H

#include <stdint.h>

#include "milter/mf_hdr.h"
#include "stripe/stripe.h"

#define MF_RES_NERR	(STRIPE_E__COUNT + 1)	/* Stripe's classes but "ok", "overloaded", "other" */
#define MF_RES_NSKIP	11	/* skip reasons, the last "other" */
#define MF_RES_NPERM	6	/* STRIPE_PART_* bits */
#define MF_RES_LAT_BUCKETS 12	/* upper bounds in ms: 5..10000, +Inf (as Stripe's) */

struct mf_results {
	uint64_t found, not_found, guest;
	uint64_t error[MF_RES_NERR];
	uint64_t skipped[MF_RES_NSKIP];
	uint64_t missing_perm[MF_RES_NPERM];	/* found, but a part could not be read */
	uint64_t lat_hist[MF_RES_LAT_BUCKETS];	/* per looked-up message, not cumulative */
	uint64_t lat_sum_ms;
};

void mf_results_count(const struct mf_lookup_info *li, const struct stripe_summary *sum,
    int64_t latency_ms);

#define MF_RES_ACCOUNTS 64
struct mf_acct_results {
	uint64_t found, not_found, guest;
	uint64_t error[MF_RES_NERR];
};
/* The counters of an account name (made on first use; NULL past MF_RES_ACCOUNTS names):
 * looked up once per config snapshot, not per message. */
struct mf_acct_results *mf_results_account(const char *account);
/* Counts one answer into r (NULL: nothing): li->state FOUND, NOT_FOUND (guest when sum
 * says so) or ERROR; others are not counted. Lock-free. */
void mf_results_account_count(struct mf_acct_results *r, const struct mf_lookup_info *li,
    const struct stripe_summary *sum);
/* Zeros when the account has no count yet. */
void mf_results_account_get(const char *account, struct mf_acct_results *out);
void mf_results_get(struct mf_results *out);
/* "auth", ..., "overloaded", "other"; NULL past the end. */
const char *mf_results_error_name(int i);
/* "authenticated", ..., "other"; NULL past the end. */
const char *mf_results_skip_name(int i);
/* "rak_customer_read", ...: permission of missing_perm[i]. */
const char *mf_results_perm_name(int i);
/* Upper bound of latency bucket i in ms, -1 for +Inf. */
int64_t mf_results_lat_bound(int i);
/* Totals over the arrays. */
uint64_t mf_results_errors(const struct mf_results *r);
uint64_t mf_results_skips(const struct mf_results *r);

#endif
