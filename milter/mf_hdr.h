/*
 * mf_hdr.h - renders a lookup result into the X-Stripe-* header lines (the header contract,
 * version 2: token headers and free-text headers never share a value).
 *
 * Interface:
 *	mf_hdr_render(opts, info, summary, &list)	the header lines to add, in order.
 *	mf_hdr_has_prefix(name, prefix)			case-insensitive prefix test, for stripping.
 *	mf_hdr_info_fill(result, &info)			a lookup's result (lookup/) as the
 *							renderer's input.
 *	mf_hdr_pick(accounts, n)			which account's answer to show.
 *
 * The exact forms are documented at the top of mf_hdr.c; the RFC 2047 encoding and folding
 * are mail/'s (mail_text_value, mail_fold). Pure functions: no allocation beyond the
 * caller's structs, no logging; thread-safe.
 */
#ifndef MF_HDR_H
#define MF_HDR_H

#include <stdbool.h>
#include <stddef.h>

#include "lookup/lookup.h"
#include "stripe/stripe.h"

#define MF_HG_LOOKUP		0x01	/* always on */
#define MF_HG_CUSTOMER_ID	0x02
#define MF_HG_CUSTOMER		0x04	/* -Customer (created, delinquent, balance, matches), -Name */
#define MF_HG_SUBSCRIPTION	0x08	/* -Subscription-Status, -Subscription and -Plan lines */
#define MF_HG_CHARGES		0x10
#define MF_HG_METADATA		0x20	/* -Metadata-<key> lines */
#define MF_HG_INVOICE		0x40	/* -Invoice and -Invoice-Url lines */
#define MF_HG_ALL		0x7f

#define MF_HDR_VERSION		2	/* "v=2", the first item of the Lookup line */
#define MF_HDR_PREFIX_MAX	60
#define MF_HDR_NAME_MAX		128	/* prefix + "Metadata-" + a 40-byte key fits */
#define MF_HDR_VALUE_MAX	1024
#define MF_HDR_LINES_MAX	32
#define MF_HDR_MAX_VALUE_DEFAULT 900
#define MF_HDR_FOLD_COLUMN	78

struct mf_hdr_opts {
	const char *prefix;	/* "X-Stripe-"; NULL = that default */
	unsigned groups;	/* MF_HG_*; MF_HG_LOOKUP is added */
	size_t max_value;	/* cap per header value; 0 = 900; at most 1023 */
	int max_subs;		/* subscription lines; <= 0 = 1; at most STRIPE_SUBS_MAX */
	bool privacy;		/* statuses only: no names, amounts, ids */
};

struct mf_lookup_info;

/* One Stripe account's answer, for the Accounts line (AccountTable). */
struct mf_hdr_account {
	const char *name;			/* [a-z0-9_-] */
	const struct mf_lookup_info *li;	/* its state, error, stale */
	const struct stripe_summary *s;		/* as mf_hdr_info_fill() returned it */
};

struct mf_lookup_info {
	enum lk_state state;		/* lookup/lookup.h */
	const char *error_class;	/* "timeout", "rate-limited", ... (LK_ERROR) */
	const char *skip_reason;	/* "authenticated", "internal-host", ... (LK_SKIPPED) */
	const char *cache;		/* "hit", "miss", "stale"; NULL = not said */
	long age_s;			/* age of cached data; shown unless cache is "miss" */
	bool livemode;
	bool stale;			/* data served past its TTL (with an error, usually) */
	int from_count;			/* > 1: several From addresses, say so */
	const char *account;		/* the account the shown data is from: "account=" on
					 * Lookup (found, guest); NULL = not said */
	const struct mf_hdr_account *accounts;	/* every account's answer: the Accounts line */
	int naccounts;			/* 0 = no Accounts line */
};

struct mf_hdr {
	char name[MF_HDR_NAME_MAX];
	char value[MF_HDR_VALUE_MAX];	/* printable US-ASCII, folded with "\n\t" only */
};

struct mf_hdr_list {
	int n;
	struct mf_hdr h[MF_HDR_LINES_MAX];
};

/* Fills out (n = number of lines) and returns n, or -1 when the options are unusable (a
 * prefix that is not a header field name or too long); out->n is 0 then. s may be NULL
 * unless data is to be shown (state FOUND/NOT_FOUND, or ERROR with stale data). */
int mf_hdr_render(const struct mf_hdr_opts *o, const struct mf_lookup_info *li,
    const struct stripe_summary *s, struct mf_hdr_list *out);

/* Which account's answer the headers show: a customer (stale data too) over a guest buyer
 * over an error (the sender may be a customer there) over not-found; among customers,
 * the lookup's own order (stripe_summary_cmp: subscription status, then newest); else
 * the first in the array. 0 when n <= 1. */
int mf_hdr_pick(const struct mf_hdr_account *a, int n);

/* True when header_name starts with prefix, ignoring case. False for an empty prefix. */
bool mf_hdr_has_prefix(const char *header_name, const char *prefix);

/* Fills the renderer's view of a finished lookup (state, cache word, age, stale, error)
 * and returns the summary to render: NULL unless found or not-found (a not-found summary
 * carries a guest buyer's charges and search=skipped). */
const struct stripe_summary *mf_hdr_info_fill(const struct lk_result *res, struct mf_lookup_info *li);

#endif
