/*
 * mf_runtime.h - a refcounted snapshot of everything a message needs: the config, the
 * Stripe client, the cache, the parsed policy lists and header options.
 *
 * Interface:
 *	mf_runtime_new(conf, prev)	builds a snapshot from a loaded config (taking ownership
 *		of conf). The Stripe client and the cache of prev are reused when the options
 *		they depend on (and the key) are unchanged, so counters and the in-process cache
 *		survive a reload. Reads the Stripe key and the Redis password files.
 *	mf_runtime_install(rt)		makes rt current; the previous snapshot is released
 *		when its last message lets go.
 *	mf_runtime_get() / mf_runtime_put()	take / release a reference to the current one.
 *		A message holds one from MAIL FROM to its end, so a reload never changes the
 *		config under a message in flight.
 *
 * Diagnostics: mf_runtime_new() returns NULL with the reason in err (bad key, bad list,
 *	unreadable password file); it never logs the key.
 */
#ifndef MF_RUNTIME_H
#define MF_RUNTIME_H

#include <stdbool.h>

#include "cache/cache.h"
#include "milter/mf_conf.h"
#include "milter/mf_hdr.h"
#include "milter/mf_policy.h"
#include "stripe/stripe.h"

struct mf_shared;	/* a refcounted stripe client or cache, shared across snapshots */

struct mf_runtime {
	int rt_refs;
	struct mf_conf *rt_conf;
	struct stripe_client *rt_stripe;
	struct cache *rt_cache;		/* sender lookups */
	struct cache *rt_products;	/* plan names (Stripe products) */
	struct mf_shared *rt_stripe_ref;
	struct mf_shared *rt_cache_ref;
	struct mf_cidr_list *rt_internal;
	struct mf_match_list *rt_recipients;
	struct mf_match_list *rt_skip_domains;
	struct mf_match_list *rt_authserv;
	struct mf_hdr_opts rt_hdr;
	bool rt_livemode;
	char rt_mode[8];		/* "live" or "test" */
	char rt_account[64];		/* StripeAccount or "-" */
	char rt_key_masked[48];
};

#define MF_RT_NO_PUBLISH	0x01	/* a tool, not an instance (statistics are published by
				 * the daemon's mf_fleet_start() only) */
struct mf_runtime *mf_runtime_new(struct mf_conf *conf, const struct mf_runtime *prev,
    unsigned flags, char *err, size_t errlen);
void mf_runtime_install(struct mf_runtime *rt);
struct mf_runtime *mf_runtime_get(void);
void mf_runtime_put(struct mf_runtime *rt);
/* Releases the current snapshot (at exit). */
void mf_runtime_shutdown(void);

/* Parses a HeaderGroups value into MF_HG_* bits; -1 with err on an unknown word. */
int mf_runtime_groups(const char *list, unsigned *out, char *err, size_t errlen);

#endif
