/*
 * mf_runtime.c - config snapshots. See mf_runtime.h.
 *
 * A snapshot turns a loaded config into what the milter reads per message: the policy
 * lists, the header options, and a lookup service (lookup/) built from the Stripe and
 * cache settings; lookup/ decides what it can reuse from the previous snapshot's service.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sm_log.h"
#include "common/sm_secret.h"
#include "common/sm_util.h"
#include "milter/mf_coord.h"
#include "milter/mf_runtime.h"

struct mf_runtime {
	int rt_refs;
	struct mf_conf *rt_conf;
	struct lk *rt_lk;
	struct mf_coord *rt_coord;	/* the fleet: budget, breaker, invalidation */
	struct mf_cidr_list *rt_internal;
	struct mf_match_list *rt_recipients;
	struct mf_match_list *rt_skip_domains;
	struct mf_match_list *rt_authserv;
	struct mf_hdr_opts rt_hdr;
	bool rt_livemode;
	char rt_mode[8];		/* "live" or "test" */
	char rt_key_masked[48];
};

static pthread_mutex_t mf_rt_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mf_runtime *mf_rt_current;

/* Splits a comma list into an array of trimmed words (malloc'd, one block). */
static char **mf_split(const char *list, int *n)
{
	size_t len = strlen(list), words = 1, i;
	char **v, *copy, *p;

	for (i = 0; i < len; i++)
		words += list[i] == ',';
	v = malloc(words * sizeof(char *) + len + 1);
	if (v == NULL)
		return NULL;
	copy = (char *)(v + words);
	memcpy(copy, list, len + 1);
	*n = 0;
	for (p = copy; p; ) {
		char *next = strchr(p, ','), *e;

		if (next)
			*next++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strlen(p);
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (*p)
			v[(*n)++] = p;
		p = next;
	}
	return v;
}

/* The cache's settings from the config; the Redis password read (*password, malloc'd,
 * the caller zeroes and frees it). */
static int mf_rt_cache_config(const struct mf_conf *c, unsigned flags, struct cache_config *cc,
    char **password, char *err, size_t errlen)
{
	*password = NULL;
	if (c->redis_password_file) {
		*password = mf_conf_read_secret(c, c->redis_password_file, err, errlen);
		if (*password == NULL)
			return -1;
	} else if (c->redis_password && (*password = strdup(c->redis_password)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(cc, 0, sizeof(*cc));
	cc->prefix = c->cache_prefix;
	cc->l1_max_entries = (size_t)c->cache_l1_entries;
	cc->l1_ttl_s = c->cache_l1_entries == 0 ? -1 : (int)c->cache_l1_ttl_s;
	cc->ttl_positive_s = (int)c->cache_ttl_s;
	cc->ttl_negative_s = (int)c->cache_negative_ttl_s;
	cc->stale_grace_s = c->cache_stale_grace_s == 0 ? -1 : (int)c->cache_stale_grace_s; /* 0 = none */
	cc->redis_host = c->redis_host;
	cc->redis_port = (int)c->redis_port;
	cc->redis_unix = c->redis_socket;
	cc->redis_user = c->redis_user;
	cc->redis_password = *password;
	cc->redis_db = (int)c->redis_db;
	cc->connect_timeout_ms = (int)c->redis_connect_timeout_ms;
	cc->command_timeout_ms = (int)c->redis_timeout_ms;
	cc->pool_size = (int)c->redis_pool_size;
	cc->sentinels = c->redis_sentinels;
	cc->sentinel_master = c->redis_sentinel_master;
	cc->sentinel_password = c->redis_sentinel_password;
	cc->lock_ttl_ms = (int)c->cache_lock_ttl_ms;
	cc->lock_wait_ms = (int)c->cache_lock_wait_ms;
	(void)flags;	/* the cache publishes nothing: the daemon does (mf_fleet.c) */
	return 0;
}

/* The Stripe client's settings from the config (key and metadata list are the caller's). */
static void mf_rt_stripe_config(const struct mf_runtime *rt, const char *key, char **meta, int nmeta,
    struct stripe_config *sc)
{
	const struct mf_conf *c = rt->rt_conf;

	memset(sc, 0, sizeof(*sc));
	sc->api_key = key;
	sc->base_url = c->stripe_api_base;
	sc->api_version = c->stripe_api_version;
	sc->account = c->stripe_account;
	sc->ca_file = c->stripe_ca_file;
	sc->connect_timeout_ms = c->stripe_connect_timeout_ms;
	sc->max_retries = (int)c->stripe_max_retries;
	sc->retry_rate_limited = c->stripe_retry_rate_limited;
	sc->rate_limit = (double)c->stripe_rate_limit;
	sc->rate_burst = (int)c->stripe_rate_burst;
	sc->max_concurrent = (int)c->stripe_max_concurrent;
	sc->charges_window_days = (int)c->charges_window_days;
	sc->charges_max = (int)c->charges_max;
	sc->no_subscriptions = !(rt->rt_hdr.groups & MF_HG_SUBSCRIPTION);
	sc->no_charges = !(rt->rt_hdr.groups & MF_HG_CHARGES);
	sc->no_plan_names = sc->no_subscriptions || rt->rt_hdr.privacy;
	sc->no_invoices = !(rt->rt_hdr.groups & MF_HG_INVOICE) || rt->rt_hdr.privacy;
	sc->no_search = !c->stripe_search;
	sc->no_guest = !c->guest_lookup || rt->rt_hdr.privacy;
	sc->search_rate = (double)c->stripe_search_rate;
	sc->metadata_keys = (const char *const *)meta;
	sc->nmetadata_keys = nmeta;
}

/* The lookup service: key, client and cache settings; prev's parts reused when unchanged. */
static int mf_rt_lookup(struct mf_runtime *rt, const struct mf_runtime *prev, unsigned flags,
    char *err, size_t errlen)
{
	const struct mf_conf *c = rt->rt_conf;
	struct lk_config lc;
	char key[STRIPE_KEY_MAX], why[512];
	struct sm_secret_who who;
	char **meta = NULL, *password = NULL;
	int nmeta = 0, rc = -1;

	memset(&lc, 0, sizeof(lc));
	if (mf_conf_secret_who(c, &who, err, errlen) != 0)
		goto out;
	if (stripe_key_load(c->stripe_key_file, &who, c->stripe_key, key, sizeof(key), why, sizeof(why)) != 0) {
		snprintf(err, errlen, "Stripe key: %s", why);
		goto out;
	}
	stripe_key_mask(key, rt->rt_key_masked, sizeof(rt->rt_key_masked));
	rt->rt_livemode = stripe_key_livemode(key);
	sm_strlcpy(rt->rt_mode, rt->rt_livemode ? "live" : "test", sizeof(rt->rt_mode));
	if (c->metadata_keys && (meta = mf_split(c->metadata_keys, &nmeta)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (int i = 0; i < nmeta; i++) {
		/* each key names a header (X-Stripe-Metadata-<key>): no ':' or spaces in it */
		if (meta[i][strspn(meta[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789._+/@-")] != '\0') {
			snprintf(err, errlen, "MetadataKeys: '%s' cannot be part of a header name "
			    "(letters, digits and . _ + / @ - only)", meta[i]);
			goto out;
		}
	}
	if (mf_rt_cache_config(c, flags, &lc.cache, &password, err, errlen) != 0)
		goto out;
	mf_rt_stripe_config(rt, key, meta, nmeta, &lc.stripe);
	lc.stripe.gate = mf_coord_gate();
	lc.on_fill = mf_coord_on_fill;
	lc.mode = rt->rt_mode;
	lc.account = c->stripe_account;
	lc.stripe_timeout_ms = c->stripe_timeout_ms;
	rt->rt_lk = lk_new(&lc, prev ? prev->rt_lk : NULL, err, errlen);
	if (rt->rt_lk == NULL)
		goto out;
	rt->rt_coord = mf_coord_get(c, rt->rt_lk, rt->rt_mode, c->stripe_account,
	    prev ? prev->rt_coord : NULL, flags, err, errlen);
	if (rt->rt_coord != NULL)
		rc = 0;
out:
	explicit_bzero(key, sizeof(key));
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	free(meta);
	return rc;
}

int mf_runtime_groups(const char *list, unsigned *out, char *err, size_t errlen)
{
	static const struct { const char *name; unsigned bit; } words[] = {
		{ "all", MF_HG_ALL }, { "lookup", MF_HG_LOOKUP }, { "customer-id", MF_HG_CUSTOMER_ID },
		{ "customer", MF_HG_CUSTOMER }, { "subscription", MF_HG_SUBSCRIPTION },
		{ "charges", MF_HG_CHARGES }, { "invoice", MF_HG_INVOICE },
		{ "metadata", MF_HG_METADATA },
	};
	char **v;
	int n, i, rc = 0;
	size_t j;

	v = mf_split(list, &n);
	if (v == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*out = MF_HG_LOOKUP;
	for (i = 0; i < n && rc == 0; i++) {
		for (j = 0; j < sizeof(words) / sizeof(words[0]); j++)
			if (strcasecmp(v[i], words[j].name) == 0)
				break;
		if (j == sizeof(words) / sizeof(words[0])) {
			snprintf(err, errlen, "HeaderGroups: unknown group '%s' (all, lookup, customer-id, "
			    "customer, subscription, charges, metadata)", v[i]);
			rc = -1;
		} else {
			*out |= words[j].bit;
		}
	}
	free(v);
	return rc;
}

static int mf_rt_policy(struct mf_runtime *rt, char *err, size_t errlen)
{
	const struct mf_conf *c = rt->rt_conf;
	char why[256];

	if (c->internal_hosts && mf_cidr_parse(c->internal_hosts, &rt->rt_internal, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "InternalHosts: %s", why);
		return -1;
	}
	if (c->recipients && mf_match_parse(c->recipients, &rt->rt_recipients, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "Recipients: %s", why);
		return -1;
	}
	if (c->skip_sender_domains &&
	    mf_match_parse(c->skip_sender_domains, &rt->rt_skip_domains, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "SkipSenderDomains: %s", why);
		return -1;
	}
	if (c->trusted_authserv_ids &&
	    mf_match_parse(c->trusted_authserv_ids, &rt->rt_authserv, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "TrustedAuthservIDs: %s", why);
		return -1;
	}
	if (mf_runtime_groups(c->header_groups, &rt->rt_hdr.groups, err, errlen) != 0)
		return -1;
	rt->rt_hdr.prefix = c->header_prefix;
	rt->rt_hdr.privacy = c->header_privacy;
	rt->rt_hdr.max_value = (size_t)c->header_max_length;
	rt->rt_hdr.max_subs = (int)c->header_max_subscriptions;
	return 0;
}

static void mf_runtime_free(struct mf_runtime *rt)
{
	mf_coord_put(rt->rt_coord);	/* first: it uses the lookup service's cache and client */
	lk_put(rt->rt_lk);
	mf_cidr_free(rt->rt_internal);
	mf_match_free(rt->rt_recipients);
	mf_match_free(rt->rt_skip_domains);
	mf_match_free(rt->rt_authserv);
	mf_conf_free(rt->rt_conf);
	free(rt);
}

struct mf_runtime *mf_runtime_new(struct mf_conf *conf, const struct mf_runtime *prev,
    unsigned flags, char *err, size_t errlen)
{
	struct mf_runtime *rt = calloc(1, sizeof(*rt));

	if (rt == NULL) {
		mf_conf_free(conf);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rt->rt_refs = 1;
	rt->rt_conf = conf;
	if (mf_rt_policy(rt, err, errlen) != 0 || mf_rt_lookup(rt, prev, flags, err, errlen) != 0) {
		mf_runtime_free(rt);
		return NULL;
	}
	return rt;
}

void mf_runtime_install(struct mf_runtime *rt)
{
	struct mf_runtime *old;

	mf_coord_install(rt ? rt->rt_coord : NULL);
	pthread_mutex_lock(&mf_rt_lock);
	old = mf_rt_current;
	mf_rt_current = rt;
	pthread_mutex_unlock(&mf_rt_lock);
	if (old)
		mf_runtime_put(old);
}

struct mf_runtime *mf_runtime_get(void)
{
	struct mf_runtime *rt;

	pthread_mutex_lock(&mf_rt_lock);
	rt = mf_rt_current;
	if (rt)
		__atomic_add_fetch(&rt->rt_refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&mf_rt_lock);
	return rt;
}

void mf_runtime_put(struct mf_runtime *rt)
{
	if (rt && __atomic_sub_fetch(&rt->rt_refs, 1, __ATOMIC_ACQ_REL) == 0)
		mf_runtime_free(rt);
}

void mf_runtime_shutdown(void)
{
	mf_runtime_install(NULL);
}

const char *mf_runtime_perm_need(const struct mf_runtime *rt, unsigned part)
{
	unsigned g = rt->rt_hdr.groups | MF_HG_LOOKUP;
	const struct mf_conf *c = rt->rt_conf;

	if (rt->rt_hdr.privacy)
		g &= MF_HG_LOOKUP | MF_HG_CUSTOMER | MF_HG_SUBSCRIPTION;
	switch (part) {
	case STRIPE_PART_CUSTOMER: return "every lookup (X-Stripe-Lookup, -Customer-Id, -Customer, -Name, -Metadata-*)";
	case STRIPE_PART_SUBSCRIPTIONS:
		return g & MF_HG_SUBSCRIPTION ? "X-Stripe-Subscription-Status, -Subscription (missing=subscriptions)" : NULL;
	case STRIPE_PART_PLAN_NAMES:
		return (g & MF_HG_SUBSCRIPTION) && !rt->rt_hdr.privacy ? "X-Stripe-Plan (missing=plan-names)" : NULL;
	case STRIPE_PART_CHARGES: return g & MF_HG_CHARGES ? "X-Stripe-Charges (missing=charges)" : NULL;
	case STRIPE_PART_INVOICES: return g & MF_HG_INVOICE ? "X-Stripe-Invoice, -Invoice-Url (missing=invoices)" : NULL;
	case STRIPE_PART_GUEST:
		return c->guest_lookup && (g & MF_HG_CHARGES) ? "guest buyers, X-Stripe-Checkout (GuestLookup; missing=guest)" : NULL;
	case STRIPE_PERM_EVENTS:
		return c->events_poll_interval_s > 0 ? "events polling: changes seen only when the cache entry expires (EventsPollInterval)" : NULL;
	default: return NULL;
	}
}

int mf_runtime_print_perms(const struct mf_runtime *rt, FILE *out)
{
	struct stripe_perm perms[STRIPE_PERMS];
	struct stripe_result res;
	int i, rc = 0;

	stripe_check_permissions(lk_stripe(rt->rt_lk), sm_now_ms() + 10000, perms, &res);
	for (i = 0; i < STRIPE_PERMS; i++) {
		const char *need = mf_runtime_perm_need(rt, perms[i].part);

		if (need == NULL)
			continue;
		if (perms[i].err != STRIPE_OK) {
			fprintf(out, "# permission %s (%s): not probed: %s%s%s\n", perms[i].permission,
			    perms[i].dashboard, stripe_errclass_name(perms[i].err),
			    perms[i].message[0] || res.message[0] ? ": " : "",
			    perms[i].message[0] ? perms[i].message : res.message);
			rc = 1;
		} else if (perms[i].granted) {
			fprintf(out, "# permission %s (%s): granted\n", perms[i].permission,
			    perms[i].dashboard);
		} else {
			fprintf(out, "# warning: permission %s (%s) MISSING: without it, %s\n",
			    perms[i].permission, perms[i].dashboard, need);
			rc = 1;
		}
	}
	return rc;
}

const struct mf_conf *mf_runtime_conf(const struct mf_runtime *rt) { return rt->rt_conf; }
struct fleet *mf_runtime_fleet(const struct mf_runtime *rt) { return mf_coord_fleet(rt->rt_coord); }
struct lk *mf_runtime_lookup(const struct mf_runtime *rt) { return rt->rt_lk; }
const struct mf_hdr_opts *mf_runtime_hdr(const struct mf_runtime *rt) { return &rt->rt_hdr; }
const struct mf_cidr_list *mf_runtime_internal(const struct mf_runtime *rt) { return rt->rt_internal; }
const struct mf_match_list *mf_runtime_recipients(const struct mf_runtime *rt) { return rt->rt_recipients; }
const struct mf_match_list *mf_runtime_skip_domains(const struct mf_runtime *rt) { return rt->rt_skip_domains; }
const struct mf_match_list *mf_runtime_authserv(const struct mf_runtime *rt) { return rt->rt_authserv; }
bool mf_runtime_livemode(const struct mf_runtime *rt) { return rt->rt_livemode; }
const char *mf_runtime_mode(const struct mf_runtime *rt) { return rt->rt_mode; }
const char *mf_runtime_key_masked(const struct mf_runtime *rt) { return rt->rt_key_masked; }
