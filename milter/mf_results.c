/*
 * mf_results.c - per-message result counters. See mf_results.h.
 *
 * Error classes are matched by name against the Stripe client's classes (so a class added
 * there is counted without a change here as long as the table has room; else "other").
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "milter/mf_results.h"

static struct mf_results mf_res;

static const char *const mf_res_skips[MF_RES_NSKIP] = {
	"authenticated", "internal-host", "recipient", "sender-domain", "null-sender", "bounce",
	"no-sender", "malformed-sender", "multiple-from", "unverified", "other",
};

static const unsigned mf_res_parts[MF_RES_NPERM] = {
	STRIPE_PART_CUSTOMER, STRIPE_PART_SUBSCRIPTIONS, STRIPE_PART_PLAN_NAMES, STRIPE_PART_CHARGES,
	STRIPE_PART_INVOICES, STRIPE_PART_GUEST,
};

const char *mf_results_error_name(int i)
{
	if (i < 0 || i >= MF_RES_NERR)
		return NULL;
	if (i == MF_RES_NERR - 1)
		return "other";
	if (i == MF_RES_NERR - 2)
		return "overloaded";
	/* slot i holds Stripe class i + 1 (class 0 is "ok") */
	return stripe_errclass_name((enum stripe_errclass)(i + 1));
}

const char *mf_results_skip_name(int i)
{
	return i >= 0 && i < MF_RES_NSKIP ? mf_res_skips[i] : NULL;
}

const char *mf_results_perm_name(int i)
{
	return i >= 0 && i < MF_RES_NPERM ? stripe_part_permission(mf_res_parts[i]) : NULL;
}

int64_t mf_results_lat_bound(int i)
{
	return i >= 0 && i < MF_RES_LAT_BUCKETS - 1 ? stripe_latency_bounds_ms[i] : -1;
}

static int mf_res_slot(const char *name, const char *(*namer)(int), int n)
{
	int i;

	for (i = 0; name && i < n - 1; i++)
		if (strcmp(namer(i), name) == 0)
			return i;
	return n - 1;
}

#define MF_RES_INC(f) __atomic_add_fetch(&(f), 1, __ATOMIC_RELAXED)

void mf_results_count(const struct mf_lookup_info *li, const struct stripe_summary *sum,
    int64_t latency_ms)
{
	int i;

	switch (li->state) {
	case LK_FOUND:
		MF_RES_INC(mf_res.found);
		for (i = 0; sum && i < MF_RES_NPERM; i++)
			if (sum->parts_missing & mf_res_parts[i])
				MF_RES_INC(mf_res.missing_perm[i]);
		break;
	case LK_NOT_FOUND:
		for (i = 0; sum && i < MF_RES_NPERM; i++)	/* missing=guest */
			if (sum->parts_missing & mf_res_parts[i])
				MF_RES_INC(mf_res.missing_perm[i]);
		/* a guest buyer: no customer, but completed Checkout Sessions by email */
		if (sum != NULL && !sum->found && sum->found_by == STRIPE_BY_GUEST)
			MF_RES_INC(mf_res.guest);
		else
			MF_RES_INC(mf_res.not_found);
		break;
	case LK_ERROR:
		MF_RES_INC(mf_res.error[mf_res_slot(li->error_class ? li->error_class : "internal",
		    mf_results_error_name, MF_RES_NERR)]);
		break;
	case LK_SKIPPED:
		MF_RES_INC(mf_res.skipped[mf_res_slot(li->skip_reason, mf_results_skip_name, MF_RES_NSKIP)]);
		break;
	}
	if (latency_ms < 0)
		return;
	for (i = 0; i < MF_RES_LAT_BUCKETS - 1 && latency_ms > stripe_latency_bounds_ms[i]; i++)
		;
	MF_RES_INC(mf_res.lat_hist[i]);
	__atomic_add_fetch(&mf_res.lat_sum_ms, (uint64_t)latency_ms, __ATOMIC_RELAXED);
}

/* Per-account counts: names are added under the lock and never removed. */
static struct {
	char name[64];
	struct mf_acct_results r;
} mf_res_acct[MF_RES_ACCOUNTS];
static int mf_res_nacct;
static pthread_mutex_t mf_res_acct_mu = PTHREAD_MUTEX_INITIALIZER;

static struct mf_acct_results *mf_res_account(const char *account, bool add)
{
	struct mf_acct_results *r = NULL;
	int i;

	pthread_mutex_lock(&mf_res_acct_mu);
	for (i = 0; i < mf_res_nacct && r == NULL; i++)
		if (strcmp(mf_res_acct[i].name, account) == 0)
			r = &mf_res_acct[i].r;
	if (r == NULL && add && mf_res_nacct < MF_RES_ACCOUNTS && strlen(account) < sizeof(mf_res_acct[0].name)) {
		strcpy(mf_res_acct[mf_res_nacct].name, account);
		r = &mf_res_acct[mf_res_nacct++].r;
	}
	pthread_mutex_unlock(&mf_res_acct_mu);
	return r;
}

struct mf_acct_results *mf_results_account(const char *account)
{
	return mf_res_account(account, true);
}

void mf_results_account_count(struct mf_acct_results *r, const struct mf_lookup_info *li,
    const struct stripe_summary *sum)
{
	if (r == NULL)
		return;
	switch (li->state) {
	case LK_FOUND: MF_RES_INC(r->found); break;
	case LK_NOT_FOUND:
		if (sum != NULL && !sum->found && sum->found_by == STRIPE_BY_GUEST)
			MF_RES_INC(r->guest);
		else
			MF_RES_INC(r->not_found);
		break;
	case LK_ERROR:
		MF_RES_INC(r->error[mf_res_slot(li->error_class ? li->error_class : "internal",
		    mf_results_error_name, MF_RES_NERR)]);
		break;
	default:
		break;
	}
}

void mf_results_account_get(const char *account, struct mf_acct_results *out)
{
	struct mf_acct_results *r = mf_res_account(account, false);
	const uint64_t *src = (const uint64_t *)r;
	uint64_t *dst = (uint64_t *)out;
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; r && i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void mf_results_get(struct mf_results *out)
{
	const uint64_t *src = (const uint64_t *)&mf_res;
	uint64_t *dst = (uint64_t *)out;
	size_t i;

	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

uint64_t mf_results_errors(const struct mf_results *r)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < MF_RES_NERR; i++)
		n += r->error[i];
	return n;
}

uint64_t mf_results_skips(const struct mf_results *r)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < MF_RES_NSKIP; i++)
		n += r->skipped[i];
	return n;
}

_Static_assert(sizeof(struct mf_results) % sizeof(uint64_t) == 0, "uint64_t fields only");
_Static_assert(MF_RES_LAT_BUCKETS == STRIPE_LATENCY_BUCKETS, "same buckets as Stripe requests");
