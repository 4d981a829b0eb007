/*
 * lk_service.c - a lookup service: the Stripe client and the two caches. See lookup.h.
 *
 * Interface: lk_new(), lk_hold(), lk_put(), lk_stripe(), lk_cache(), lk_purge().
 *
 * Sharing: the Stripe client is keyed by a signature of every field of struct
 *	stripe_config (the key and the parts switched off included, so HeaderPrivacy or
 *	HeaderGroups changes rebuild it); the caches by every field of struct cache_config.
 *	A new service whose signatures match prev's takes a reference to prev's objects
 *	instead of building new ones, so counters and the in-process cache survive a reload.
 *	The client is reused only with the caches (it holds the plan-name cache). Each shared
 *	object has its own refcount and is freed with the last service using it.
 *
 * Memory: signatures hold secrets (the key, the Redis password) and are zeroed on free.
 *
 * Diagnostics: lk_new() returns NULL with the reason in err; it never echoes the key.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_util.h"
#include "lookup/lk_int.h"

struct lk_shared {
	int refs;
	void *obj;
	char *sig;
	void (*free_fn)(void *);
};

/* The address cache and the plan-name cache: one shared object, so that a reload keeps
 * both or rebuilds both. Plan names have a cache of their own so that their lookups do
 * not count as sender lookups in the statistics. */
struct lk_caches {
	struct cache *addrs;
	struct cache *products;
};

static void lk_stripe_free(void *p) { stripe_client_free(p); }

static void lk_caches_free(void *p)
{
	struct lk_caches *cs = p;

	if (cs == NULL)
		return;
	cache_free(cs->addrs);
	cache_free(cs->products);
	free(cs);
}

static void lk_sig_free(char *sig)
{
	if (sig) {
		explicit_bzero(sig, strlen(sig));
		free(sig);
	}
}

/* Takes obj and sig; frees both when out of memory. */
static struct lk_shared *lk_shared_new(void *obj, char *sig, void (*free_fn)(void *))
{
	struct lk_shared *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		free_fn(obj);
		lk_sig_free(sig);
		return NULL;
	}
	s->refs = 1;
	s->obj = obj;
	s->sig = sig;
	s->free_fn = free_fn;
	return s;
}

static struct lk_shared *lk_shared_ref(struct lk_shared *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
	return s;
}

static void lk_shared_put(struct lk_shared *s)
{
	if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	s->free_fn(s->obj);
	lk_sig_free(s->sig);
	free(s);
}

#define NS(x) ((x) ? (x) : "")

/* Appends printf output to a signature; sets *bad on failure. */
static void lk_sig_add(struct sm_buf *b, bool *bad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void lk_sig_add(struct sm_buf *b, bool *bad, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp) || sm_buf_append(b, tmp, (size_t)n) != 0)
		*bad = true;
	explicit_bzero(tmp, sizeof(tmp));
}

/* Every field of a cache config, '|'-separated (NULL and "" differ). malloc'd or NULL. */
static char *lk_cache_sig(const struct cache_config *k)
{
	struct sm_buf b;
	bool bad = false;

	sm_buf_init(&b, 16384);
	lk_sig_add(&b, &bad, "%s|%zu|%zu|%d|%d|%d|%d|", NS(k->prefix), k->l1_max_entries,
	    k->l1_max_bytes, k->l1_ttl_s, k->ttl_positive_s, k->ttl_negative_s, k->stale_grace_s);
	lk_sig_add(&b, &bad, "%d%s|%d|%d%s|%d%s|%d%s|%d|%d|%d|%d|", k->redis_host != NULL,
	    NS(k->redis_host), k->redis_port, k->redis_unix != NULL, NS(k->redis_unix),
	    k->redis_user != NULL, NS(k->redis_user), k->redis_password != NULL,
	    NS(k->redis_password), k->redis_db, k->connect_timeout_ms, k->command_timeout_ms,
	    k->pool_size);
	lk_sig_add(&b, &bad, "%s|%s|%d%s|%d|%d|%s|%d", NS(k->sentinels),
	    NS(k->sentinel_master), k->sentinel_password != NULL, NS(k->sentinel_password),
	    k->lock_ttl_ms, k->lock_wait_ms, NS(k->redis_password_file), k->reconnect_max_ms);
	if (bad || b.data == NULL) {
		if (b.data)
			explicit_bzero(b.data, b.len);
		sm_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* Every field of a Stripe config but the product hooks (the gate by address: an account's
 * gate is the same for the life of the process). malloc'd or NULL. */
static char *lk_stripe_sig(const struct stripe_config *s)
{
	struct sm_buf b;
	bool bad = false;
	int i;

	sm_buf_init(&b, 16384);
	lk_sig_add(&b, &bad, "%s|%s|%s|%d%s|%s|%ld|%zu|%d|%d|%ld|%ld|%.6f|%d|%d|%d|%d|%d%d%d|%d"
	    "|%.6f|%d%d%d",
	    NS(s->api_key), NS(s->base_url), NS(s->api_version), s->account != NULL,
	    NS(s->account), NS(s->ca_file), s->connect_timeout_ms, s->max_response_bytes,
	    s->max_retries, s->retry_rate_limited, s->retry_base_ms, s->retry_max_ms, s->rate_limit,
	    s->rate_burst, s->max_concurrent, s->charges_window_days, s->charges_max,
	    s->no_subscriptions, s->no_charges, s->no_plan_names, s->nmetadata_keys,
	    s->search_rate, s->no_search, s->no_guest, s->no_invoices);
	for (i = 0; i < s->nmetadata_keys; i++)
		lk_sig_add(&b, &bad, "|%zu:%s", strlen(s->metadata_keys[i]), s->metadata_keys[i]);
	lk_sig_add(&b, &bad, "|%p", (const void *)s->gate);
	if (bad || b.data == NULL) {
		if (b.data)
			explicit_bzero(b.data, b.len);
		sm_buf_free(&b);
		return NULL;
	}
	return b.data;
}

static int lk_new_caches(struct lk *lk, const struct lk_config *cfg, const struct lk *prev,
    char *err, size_t errlen)
{
	struct cache_config cc = cfg->cache;
	struct lk_caches *cs = NULL;
	char *sig = lk_cache_sig(&cfg->cache);
	int rc = -1;

	if (sig == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (cfg->cache_from && cfg->cache_from->cache_ref && strcmp(cfg->cache_from->cache_ref->sig, sig) == 0) {
		lk->cache_ref = lk_shared_ref(cfg->cache_from->cache_ref);
		rc = 0;
		goto set;
	}
	if (prev && prev->cache_ref && strcmp(prev->cache_ref->sig, sig) == 0) {
		lk->cache_ref = lk_shared_ref(prev->cache_ref);
		rc = 0;
		goto set;
	}
	if ((cs = calloc(1, sizeof(*cs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* summaries from Redis that this version cannot decode are a miss (lk_flow.c) */
	cc.check = lk_entry_check;
	cc.check_arg = NULL;
	if ((cs->addrs = cache_new(&cc, err, errlen)) == NULL)
		goto out;
	/* Plan names: same Redis and prefix, an hour at least; their bytes are the name. */
	cc.check = NULL;
	cc.l1_max_entries = 2000;
	cc.ttl_positive_s = cc.ttl_positive_s > 3600 ? cc.ttl_positive_s : 3600;
	cc.pool_size = 2;
	if ((cs->products = cache_new(&cc, err, errlen)) == NULL)
		goto out;
	lk->cache_ref = lk_shared_new(cs, sig, lk_caches_free);
	sig = NULL;
	cs = NULL;
	if (lk->cache_ref == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
set:
	lk->cache = ((struct lk_caches *)lk->cache_ref->obj)->addrs;
	lk->products = ((struct lk_caches *)lk->cache_ref->obj)->products;
out:
	lk_caches_free(cs);
	lk_sig_free(sig);
	return rc;
}

static int lk_new_stripe(struct lk *lk, const struct lk_config *cfg, const struct lk *prev,
    char *err, size_t errlen)
{
	struct stripe_config sc = cfg->stripe;
	struct stripe_client *client;
	char why[256], *sig = lk_stripe_sig(&cfg->stripe);
	int rc = -1;

	if (sig == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (prev && prev->stripe_ref && prev->products == lk->products &&
	    strcmp(prev->stripe_ref->sig, sig) == 0) {
		lk->stripe_ref = lk_shared_ref(prev->stripe_ref);
		lk->stripe = lk->stripe_ref->obj;
		rc = 0;
		goto out;
	}
	sc.product_get = lk_product_get;
	sc.product_put = lk_product_put;
	sc.product_arg = lk->products;
	client = stripe_client_new(&sc, why, sizeof(why));
	if (client == NULL) {
		snprintf(err, errlen, "Stripe client: %s", why);
		goto out;
	}
	lk->stripe_ref = lk_shared_new(client, sig, lk_stripe_free);
	sig = NULL;
	if (lk->stripe_ref == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	lk->stripe = client;
	rc = 0;
out:
	lk_sig_free(sig);
	return rc;
}

static void lk_free(struct lk *lk)
{
	lk_shared_put(lk->stripe_ref);
	lk_shared_put(lk->cache_ref);
	free(lk);
}

struct lk *lk_new(const struct lk_config *cfg, const struct lk *prev, char *err, size_t errlen)
{
	struct lk *lk = calloc(1, sizeof(*lk));

	if (lk == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	lk->refs = 1;
	lk->stripe_timeout_ms = cfg->stripe_timeout_ms;
	lk->on_fill = cfg->on_fill;
	lk->on_fill_arg = cfg->on_fill_arg;
	lk_key_init();
	if (sm_strlcpy(lk->mode, NS(cfg->mode), sizeof(lk->mode)) >= sizeof(lk->mode) ||
	    sm_strlcpy(lk->account, cfg->account && cfg->account[0] ? cfg->account : "-",
	    sizeof(lk->account)) >= sizeof(lk->account)) {
		snprintf(err, errlen, "Stripe mode or account too long");
		goto fail;
	}
	if (lk_new_caches(lk, cfg, prev, err, errlen) != 0 || lk_new_stripe(lk, cfg, prev, err, errlen) != 0)
		goto fail;
	return lk;
fail:
	lk_free(lk);
	return NULL;
}

void lk_hold(struct lk *lk)
{
	__atomic_add_fetch(&lk->refs, 1, __ATOMIC_ACQ_REL);
}

void lk_put(struct lk *lk)
{
	if (lk && __atomic_sub_fetch(&lk->refs, 1, __ATOMIC_ACQ_REL) == 0)
		lk_free(lk);
}

struct stripe_client *lk_stripe(const struct lk *lk)
{
	return lk->stripe;
}

struct cache *lk_cache(const struct lk *lk)
{
	return lk->cache;
}

int lk_purge(struct lk *lk, const char *address, char *key, size_t keylen)
{
	char k[CACHE_KEY_MAX];

	if (lk_key(lk->cache, lk->mode, lk->account, address, k, sizeof(k)) != 0)
		return -1;
	if (key)
		sm_strlcpy(key, k, keylen);
	return cache_purge(lk->cache, k);
}
