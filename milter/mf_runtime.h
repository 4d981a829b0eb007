/*
 * mf_runtime.h - a refcounted snapshot of everything a message needs: the config, the
 * lookup service (Stripe client and caches, lookup/), the parsed policy lists and header
 * options.
 *
 * Interface:
 *	mf_runtime_new(conf, prev)	builds a snapshot from a loaded config (taking ownership
 *		of conf). The lookup service reuses prev's Stripe client and caches when the
 *		settings they depend on (and the key) are unchanged, so counters and the
 *		in-process cache survive a reload; any other change (HeaderPrivacy and
 *		HeaderGroups included) takes effect on the reload. Reads the Stripe key and the
 *		Redis password files.
 *	mf_runtime_install(rt)		makes rt current; the previous snapshot is released
 *		when its last message lets go.
 *	mf_runtime_get() / mf_runtime_put()	take / release a reference to the current one.
 *		A message holds one from MAIL FROM to its end, so a reload never changes the
 *		config under a message in flight.
 *	mf_runtime_conf(), _lookup(), _hdr(), _internal(), _recipients(), _skip_domains(),
 *	_authserv(), _livemode(), _mode(), _key_masked()	read-only views (the struct is
 *		private); valid while the caller holds its reference. _lookup(), _fleet() and
 *		_key_masked() are the first account's.
 *	mf_runtime_accounts(), _account_name(i), _account_lookup(i), _account_fleet(i),
 *	_account_connect(i), _account_key_masked(i), _account_find(name)	the Stripe
 *		accounts (mf_accounts.h): a table of one named "default" unless AccountTable
 *		is set (mf_runtime_named()). Each has its own Stripe client and fleet; the
 *		caches are shared (cache keys differ by account). Every account's key must be
 *		of the same mode (live or test).
 *
 * Diagnostics: mf_runtime_new() returns NULL with the reason in err (bad key, bad list,
 *	unreadable password file); it never logs the key.
 */
#ifndef MF_RUNTIME_H
#define MF_RUNTIME_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>

#include "lookup/lookup.h"
#include "milter/mf_accounts.h"
#include "milter/mf_conf.h"
#include "milter/mf_hdr.h"
#include "milter/mf_policy.h"

struct mf_runtime;

#define MF_RT_NO_PUBLISH	0x01	/* a tool, not an instance (statistics are published by
				 * the daemon's mf_fleet_start() only) */
struct mf_runtime *mf_runtime_new(struct mf_conf *conf, const struct mf_runtime *prev,
    unsigned flags, char *err, size_t errlen);
void mf_runtime_install(struct mf_runtime *rt);
struct mf_runtime *mf_runtime_get(void);
void mf_runtime_put(struct mf_runtime *rt);
/* Releases the current snapshot (at exit). */
void mf_runtime_shutdown(void);

const struct mf_conf *mf_runtime_conf(const struct mf_runtime *rt);
struct lk *mf_runtime_lookup(const struct mf_runtime *rt);
const struct mf_hdr_opts *mf_runtime_hdr(const struct mf_runtime *rt);
/* Policy lists; NULL when the option is not set. */
const struct mf_cidr_list *mf_runtime_internal(const struct mf_runtime *rt);
const struct mf_match_list *mf_runtime_recipients(const struct mf_runtime *rt);
const struct mf_match_list *mf_runtime_skip_domains(const struct mf_runtime *rt);
const struct mf_match_list *mf_runtime_authserv(const struct mf_runtime *rt);
bool mf_runtime_livemode(const struct mf_runtime *rt);
const char *mf_runtime_mode(const struct mf_runtime *rt);	/* "live" or "test" */
const char *mf_runtime_key_masked(const struct mf_runtime *rt);	/* safe to log */
/* What a permission (a STRIPE_PART_* bit or STRIPE_PERM_EVENTS) feeds in this
 * configuration, i.e. what is lost without it ("X-Stripe-Checkout (guest buyers:
 * missing=guest)"); NULL when the configuration does not use it. */
const char *mf_runtime_perm_need(const struct mf_runtime *rt, unsigned part);
/* Probes every permission (stripe_check_permissions) and prints one "# " line per
 * permission the configuration needs (for -n); 0 when all are granted, 1 otherwise. */
int mf_runtime_print_perms(const struct mf_runtime *rt, FILE *out);
/* "Stripe key sk_live_...abcd", or with AccountTable "Stripe accounts eu (key ...), us
 * (key ..., Connect acct_...)": safe to log. */
void mf_runtime_describe(const struct mf_runtime *rt, char *buf, size_t len);
/* Budget, breaker and invalidation shared with the other instances (mf_coord.c). */
struct fleet *mf_runtime_fleet(const struct mf_runtime *rt);

int mf_runtime_accounts(const struct mf_runtime *rt);
bool mf_runtime_named(const struct mf_runtime *rt);	/* AccountTable is set */
const char *mf_runtime_account_name(const struct mf_runtime *rt, int i);
const char *mf_runtime_account_connect(const struct mf_runtime *rt, int i);	/* "" = none */
struct lk *mf_runtime_account_lookup(const struct mf_runtime *rt, int i);
struct fleet *mf_runtime_account_fleet(const struct mf_runtime *rt, int i);
const char *mf_runtime_account_key_masked(const struct mf_runtime *rt, int i);
struct mf_acct_results;
/* Account i's answer counters (mf_results.h), NULL when the name table was full. */
struct mf_acct_results *mf_runtime_account_results(const struct mf_runtime *rt, int i);
/* Index of the account of that name, -1 when none. */
int mf_runtime_account_find(const struct mf_runtime *rt, const char *name);

/* Parses a HeaderGroups value into MF_HG_* bits; -1 with err on an unknown word. */
int mf_runtime_groups(const char *list, unsigned *out, char *err, size_t errlen);

#endif
