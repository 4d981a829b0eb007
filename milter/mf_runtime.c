/*
 * mf_runtime.c - config snapshots and their shared Stripe client and cache. See mf_runtime.h.
 *
 * Sharing: a Stripe client is keyed by a signature of every option it reads plus the key;
 * a cache by every cache option. A reload that changes neither keeps both, so counters
 * and the in-process cache survive it. Each shared object carries its own refcount and
 * is freed with the last snapshot using it.
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
#include "milter/mf_runtime.h"

struct mf_shared {
	int refs;
	void *obj;
	char *sig;
	void (*free_fn)(void *);
};

static pthread_mutex_t mf_rt_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mf_runtime *mf_rt_current;

/* The address cache and the plan-name cache: one shared object, so that a reload keeps
 * both or rebuilds both. Plan names have a cache of their own so that their lookups do
 * not count as sender lookups in the statistics. */
struct mf_caches {
	struct cache *addrs;
	struct cache *products;
};

static void mf_stripe_free(void *p) { stripe_client_free(p); }
static void mf_caches_free(void *p)
{
	struct mf_caches *cs = p;

	cache_free(cs->addrs);
	cache_free(cs->products);
	free(cs);
}

static struct mf_shared *mf_shared_new(void *obj, char *sig, void (*free_fn)(void *))
{
	struct mf_shared *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		free_fn(obj);
		free(sig);
		return NULL;
	}
	s->refs = 1;
	s->obj = obj;
	s->sig = sig;
	s->free_fn = free_fn;
	return s;
}

static struct mf_shared *mf_shared_ref(struct mf_shared *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
	return s;
}

static void mf_shared_put(struct mf_shared *s)
{
	if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	s->free_fn(s->obj);
	if (s->sig)
		explicit_bzero(s->sig, strlen(s->sig));
	free(s->sig);
	free(s);
}

#define NS(x) ((x) ? (x) : "")

/* Product-name cache hooks for the Stripe client: plan names live in the same cache. */
static int mf_product_get(void *arg, const char *id, char *name, size_t len)
{
	struct cache *c = arg;
	struct cache_value v;
	char key[CACHE_KEY_MAX];
	int rc = -1;

	if (cache_key_raw(c, "product", id, key, sizeof(key)) != 0)
		return -1;
	if (cache_get_or_fill(c, key, NULL, NULL, sm_now_ms() + 500, &v) != 0)
		return -1;
	if (v.kind == CACHE_POSITIVE && !v.stale && v.len < len) {
		memcpy(name, v.data ? (const char *)v.data : "", v.len);
		name[v.len] = '\0';
		rc = 0;
	}
	cache_value_free(&v);
	return rc;
}

static void mf_product_put(void *arg, const char *id, const char *name)
{
	char key[CACHE_KEY_MAX];

	if (cache_key_raw(arg, "product", id, key, sizeof(key)) == 0)
		cache_put(arg, key, name, strlen(name), CACHE_POSITIVE);
}

static char *mf_sig(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *mf_sig(const char *fmt, ...)
{
	struct sm_buf b;
	va_list ap;
	char tmp[4096];

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	sm_buf_init(&b, sizeof(tmp));
	if (sm_buf_append(&b, tmp, strlen(tmp)) != 0) {
		sm_buf_free(&b);
		return NULL;
	}
	explicit_bzero(tmp, sizeof(tmp));
	return b.data;
}

static int mf_rt_cache(struct mf_runtime *rt, const struct mf_runtime *prev, unsigned flags,
    char *err, size_t errlen)
{
	const struct mf_conf *c = rt->rt_conf;
	struct cache_config cc;
	char *password = NULL, *sig = NULL;
	struct mf_caches *cs = NULL;
	int rc = -1;

	if (c->redis_password_file) {
		password = mf_conf_read_secret(c, c->redis_password_file, err, errlen);
		if (password == NULL)
			goto out;
	} else if (c->redis_password) {
		password = strdup(c->redis_password);
	}
	(void)flags;	/* the cache publishes nothing: the daemon does (mf_fleet.c) */
	sig = mf_sig("%s|%ld|%s|%s|%s|%ld|%ld|%ld|%ld|%s|%s|%s|%s|%ld|%ld|%ld|%ld|%ld|%ld|%ld",
	    NS(c->redis_host), c->redis_port, NS(c->redis_socket), NS(c->redis_user), NS(password),
	    c->redis_db, c->redis_connect_timeout_ms, c->redis_timeout_ms, c->redis_pool_size,
	    NS(c->redis_sentinels), NS(c->redis_sentinel_master), NS(c->redis_sentinel_password),
	    NS(c->cache_prefix), c->cache_ttl_s, c->cache_negative_ttl_s, c->cache_stale_grace_s,
	    c->cache_l1_entries, c->cache_l1_ttl_s, c->cache_lock_ttl_ms, c->cache_lock_wait_ms);
	if (sig == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (prev && prev->rt_cache_ref && strcmp(prev->rt_cache_ref->sig, sig) == 0) {
		rt->rt_cache_ref = mf_shared_ref(prev->rt_cache_ref);
		rt->rt_cache = ((struct mf_caches *)rt->rt_cache_ref->obj)->addrs;
		rt->rt_products = ((struct mf_caches *)rt->rt_cache_ref->obj)->products;
		rc = 0;
		goto out;
	}
	memset(&cc, 0, sizeof(cc));
	cc.prefix = c->cache_prefix;
	cc.l1_max_entries = (size_t)c->cache_l1_entries;
	cc.l1_ttl_s = c->cache_l1_entries == 0 ? -1 : (int)c->cache_l1_ttl_s;
	cc.ttl_positive_s = (int)c->cache_ttl_s;
	cc.ttl_negative_s = (int)c->cache_negative_ttl_s;
	cc.stale_grace_s = c->cache_stale_grace_s == 0 ? -1 : (int)c->cache_stale_grace_s; /* 0 = none */
	cc.redis_host = c->redis_host;
	cc.redis_port = (int)c->redis_port;
	cc.redis_unix = c->redis_socket;
	cc.redis_user = c->redis_user;
	cc.redis_password = password;
	cc.redis_db = (int)c->redis_db;
	cc.connect_timeout_ms = (int)c->redis_connect_timeout_ms;
	cc.command_timeout_ms = (int)c->redis_timeout_ms;
	cc.pool_size = (int)c->redis_pool_size;
	cc.sentinels = c->redis_sentinels;
	cc.sentinel_master = c->redis_sentinel_master;
	cc.sentinel_password = c->redis_sentinel_password;
	cc.lock_ttl_ms = (int)c->cache_lock_ttl_ms;
	cc.lock_wait_ms = (int)c->cache_lock_wait_ms;
	cs = calloc(1, sizeof(*cs));
	if (cs == NULL || (cs->addrs = cache_new(&cc, err, errlen)) == NULL)
		goto out;
	/* Plan names: same Redis and prefix, an hour at least. */
	cc.l1_max_entries = 2000;
	cc.ttl_positive_s = cc.ttl_positive_s > 3600 ? cc.ttl_positive_s : 3600;
	cc.pool_size = 2;
	if ((cs->products = cache_new(&cc, err, errlen)) == NULL)
		goto out;
	rt->rt_cache_ref = mf_shared_new(cs, sig, mf_caches_free);
	sig = NULL;
	rt->rt_cache = cs->addrs;
	rt->rt_products = cs->products;
	cs = NULL;
	if (rt->rt_cache_ref == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (cs) {
		if (cs->addrs)
			cache_free(cs->addrs);
		free(cs);
	}
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	if (sig) {
		explicit_bzero(sig, strlen(sig));
		free(sig);
	}
	return rc;
}

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

static int mf_rt_stripe(struct mf_runtime *rt, const struct mf_runtime *prev, char *err, size_t errlen)
{
	const struct mf_conf *c = rt->rt_conf;
	char key[STRIPE_KEY_MAX], why[512];
	struct sm_secret_who who;
	struct stripe_config sc;
	struct stripe_client *client;
	char **meta = NULL, *sig = NULL;
	int nmeta = 0, rc = -1;

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
	sig = mf_sig("%s|%s|%s|%s|%s|%ld|%ld|%d|%ld|%ld|%ld|%ld|%ld|%ld|%s|%s",
	    key, NS(c->stripe_api_base), NS(c->stripe_api_version), NS(c->stripe_account),
	    NS(c->stripe_ca_file), c->stripe_connect_timeout_ms, c->stripe_max_retries,
	    c->stripe_retry_rate_limited, c->stripe_rate_limit, c->stripe_rate_burst,
	    c->stripe_max_concurrent, c->charges_window_days, c->charges_max, (long)nmeta,
	    NS(c->metadata_keys), NS(c->header_groups));
	if (sig == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (prev && prev->rt_stripe_ref && prev->rt_products == rt->rt_products &&
	    strcmp(prev->rt_stripe_ref->sig, sig) == 0) {
		rt->rt_stripe_ref = mf_shared_ref(prev->rt_stripe_ref);
		rt->rt_stripe = rt->rt_stripe_ref->obj;
		rc = 0;
		goto out;
	}
	memset(&sc, 0, sizeof(sc));
	sc.api_key = key;
	sc.base_url = c->stripe_api_base;
	sc.api_version = c->stripe_api_version;
	sc.account = c->stripe_account;
	sc.ca_file = c->stripe_ca_file;
	sc.connect_timeout_ms = c->stripe_connect_timeout_ms;
	sc.max_retries = (int)c->stripe_max_retries;
	sc.retry_rate_limited = c->stripe_retry_rate_limited;
	sc.rate_limit = (double)c->stripe_rate_limit;
	sc.rate_burst = (int)c->stripe_rate_burst;
	sc.max_concurrent = (int)c->stripe_max_concurrent;
	sc.charges_window_days = (int)c->charges_window_days;
	sc.charges_max = (int)c->charges_max;
	sc.no_subscriptions = !(rt->rt_hdr.groups & MF_HG_SUBSCRIPTION);
	sc.no_charges = !(rt->rt_hdr.groups & MF_HG_CHARGES);
	sc.no_plan_names = sc.no_subscriptions || rt->rt_hdr.privacy;
	sc.metadata_keys = (const char *const *)meta;
	sc.nmetadata_keys = nmeta;
	sc.product_get = mf_product_get;
	sc.product_put = mf_product_put;
	sc.product_arg = rt->rt_products;
	client = stripe_client_new(&sc, why, sizeof(why));
	if (client == NULL) {
		snprintf(err, errlen, "Stripe client: %s", why);
		goto out;
	}
	rt->rt_stripe_ref = mf_shared_new(client, sig, mf_stripe_free);
	sig = NULL;
	if (rt->rt_stripe_ref == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rt->rt_stripe = client;
	rc = 0;
out:
	explicit_bzero(key, sizeof(key));
	if (sig) {
		explicit_bzero(sig, strlen(sig));
		free(sig);
	}
	free(meta);
	return rc;
}

int mf_runtime_groups(const char *list, unsigned *out, char *err, size_t errlen)
{
	static const struct { const char *name; unsigned bit; } words[] = {
		{ "all", MF_HG_ALL }, { "lookup", MF_HG_LOOKUP }, { "customer-id", MF_HG_CUSTOMER_ID },
		{ "customer", MF_HG_CUSTOMER }, { "subscription", MF_HG_SUBSCRIPTION },
		{ "charges", MF_HG_CHARGES }, { "metadata", MF_HG_METADATA },
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
	mf_shared_put(rt->rt_stripe_ref);
	mf_shared_put(rt->rt_cache_ref);
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
	sm_strlcpy(rt->rt_account, conf->stripe_account ? conf->stripe_account : "-", sizeof(rt->rt_account));
	if (mf_rt_policy(rt, err, errlen) != 0 || mf_rt_cache(rt, prev, flags, err, errlen) != 0 ||
	    mf_rt_stripe(rt, prev, err, errlen) != 0) {
		mf_runtime_free(rt);
		return NULL;
	}
	return rt;
}

void mf_runtime_install(struct mf_runtime *rt)
{
	struct mf_runtime *old;

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
