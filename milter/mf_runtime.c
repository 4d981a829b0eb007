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
#include "milter/mf_accounts.h"
#include "milter/mf_coord.h"
#include "milter/mf_results.h"
#include "milter/mf_runtime.h"

/* One Stripe account of the snapshot: its lookup service (its own Stripe client, the
 * caches shared with the other accounts) and its fleet. */
struct mf_rt_account {
	char name[MF_ACCOUNT_NAME_MAX];
	char connect[64];		/* "" = none */
	struct lk *lk;
	struct mf_coord *coord;		/* budget, breaker, invalidation, polling */
	struct mf_acct_results *results;	/* its answers' counters (mf_results.h) */
	char key_masked[48];
};

struct mf_runtime {
	int rt_refs;
	struct mf_conf *rt_conf;
	int rt_naccts;
	bool rt_named;			/* AccountTable: headers name the accounts */
	struct mf_rt_account rt_acct[MF_ACCOUNTS_MAX];
	struct mf_cidr_list *rt_internal;
	struct mf_match_list *rt_recipients;
	struct mf_match_list *rt_skip_domains;
	struct mf_match_list *rt_authserv;
	struct mf_hdr_opts rt_hdr;
	bool rt_livemode;
	char rt_mode[8];		/* "live" or "test" (every account's) */
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

/* The Stripe client's settings every account shares (the metadata list is the caller's;
 * key, base URL and connected account are each account's: mf_rt_account()). */
static void mf_rt_stripe_config(const struct mf_runtime *rt, char **meta, int nmeta, struct stripe_config *sc)
{
	const struct mf_conf *c = rt->rt_conf;

	memset(sc, 0, sizeof(*sc));
	sc->api_version = c->stripe_api_version;
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

/* The MetadataKeys list, checked: each key names a header. *meta is malloc'd (one block). */
static int mf_rt_meta(const struct mf_conf *c, char ***meta, int *nmeta, char *err, size_t errlen)
{
	*meta = NULL;
	*nmeta = 0;
	if (c->metadata_keys && (*meta = mf_split(c->metadata_keys, nmeta)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < *nmeta; i++) {
		/* each key names a header (X-Stripe-Metadata-<key>): no ':' or spaces in it */
		if ((*meta)[i][strspn((*meta)[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789._+/@-")] != '\0') {
			snprintf(err, errlen, "MetadataKeys: '%s' cannot be part of a header name "
			    "(letters, digits and . _ + / @ - only)", (*meta)[i]);
			return -1;
		}
	}
	return 0;
}

/* The previous snapshot's account of that name, NULL when none. */
static const struct mf_rt_account *mf_rt_prev_account(const struct mf_runtime *prev, const char *name)
{
	int i;

	for (i = 0; prev && i < prev->rt_naccts; i++)
		if (strcmp(prev->rt_acct[i].name, name) == 0)
			return &prev->rt_acct[i];
	return NULL;
}

/* Account i's lookup service and fleet: its key read, the caches shared with account 0,
 * the client and fleet of the previous snapshot's account of that name reused when
 * unchanged. lc has the settings every account shares. */
static int mf_rt_account(struct mf_runtime *rt, const struct mf_account_table *t, int i, struct lk_config *lc,
    const struct mf_runtime *prev, const struct sm_secret_who *who, unsigned flags, char *err, size_t errlen)
{
	const struct mf_conf *c = rt->rt_conf;
	const struct mf_account_spec *a = &t->a[i];
	const struct mf_rt_account *pa = mf_rt_prev_account(prev, a->name);
	struct mf_rt_account *ra = &rt->rt_acct[i];
	struct mf_coord_account ca;
	char key[STRIPE_KEY_MAX], why[512], prefix[128];
	const char *mode;
	int rc = -1;

	sm_strlcpy(ra->name, a->name, sizeof(ra->name));
	sm_strlcpy(ra->connect, a->connect ? a->connect : "", sizeof(ra->connect));
	ra->results = mf_results_account(a->name);
	if (stripe_key_load(a->key_file, who, t->from_table ? NULL : c->stripe_key, key, sizeof(key), why,
	    sizeof(why)) != 0) {
		if (t->from_table)
			snprintf(err, errlen, "account %s: Stripe key: %s", a->name, why);
		else
			snprintf(err, errlen, "Stripe key: %s", why);
		goto out;
	}
	stripe_key_mask(key, ra->key_masked, sizeof(ra->key_masked));
	mode = stripe_key_livemode(key) ? "live" : "test";
	if (i == 0) {
		rt->rt_livemode = stripe_key_livemode(key);
		sm_strlcpy(rt->rt_mode, mode, sizeof(rt->rt_mode));
	} else if (strcmp(mode, rt->rt_mode) != 0) {
		snprintf(err, errlen, "account %s: a %s key among %s ones: one instance serves one mode "
		    "(run a second instance for the other)", a->name, mode, rt->rt_mode);
		goto out;
	}
	lc->stripe.api_key = key;
	lc->stripe.base_url = a->api_base;
	lc->stripe.account = a->connect;
	/* a table's accounts are told apart by name in cache keys; a table of one keeps the
	 * keys it always had (the Connect account or "-") */
	lc->account = t->from_table ? a->name : a->connect;
	lc->stripe.gate = mf_coord_gate(a->name, err, errlen);
	if (lc->stripe.gate == NULL)
		goto out;
	lc->on_fill_arg = lc->stripe.gate->arg;
	lc->cache_from = i > 0 ? rt->rt_acct[0].lk : NULL;
	ra->lk = lk_new(lc, pa ? pa->lk : prev ? prev->rt_acct[0].lk : NULL, why, sizeof(why));
	if (ra->lk == NULL) {
		if (t->from_table)
			snprintf(err, errlen, "account %s: %s", a->name, why);
		else
			sm_strlcpy(err, why, errlen);
		goto out;
	}
	/* a table of one keeps the fleet keys it always had */
	if (t->from_table)
		snprintf(prefix, sizeof(prefix), "%s:acct:%s", c->cache_prefix, a->name);
	else
		sm_strlcpy(prefix, c->cache_prefix, sizeof(prefix));
	ca = (struct mf_coord_account){ .name = a->name, .key_part = lc->account, .fleet_prefix = prefix,
		.connect = a->connect, .secret_file = a->webhook_secret_file,
		.previous_secret_file = a->webhook_previous_secret_file };
	ra->coord = mf_coord_get(c, ra->lk, rt->rt_mode, &ca, pa ? pa->coord : NULL, flags, err, errlen);
	if (ra->coord != NULL)
		rc = 0;
out:
	explicit_bzero(key, sizeof(key));
	lc->stripe.api_key = NULL;
	return rc;
}

/* The lookup services and fleets of every account. */
static int mf_rt_lookup(struct mf_runtime *rt, const struct mf_runtime *prev, unsigned flags,
    char *err, size_t errlen)
{
	const struct mf_conf *c = rt->rt_conf;
	struct mf_account_table t;
	struct lk_config lc;
	struct sm_secret_who who;
	char **meta = NULL, *password = NULL;
	int nmeta = 0, rc = -1, i;

	memset(&lc, 0, sizeof(lc));
	if (mf_accounts_load(c, &t, err, errlen) != 0)
		return -1;
	rt->rt_named = t.from_table;
	if (mf_conf_secret_who(c, &who, err, errlen) != 0 || mf_rt_meta(c, &meta, &nmeta, err, errlen) != 0 ||
	    mf_rt_cache_config(c, flags, &lc.cache, &password, err, errlen) != 0)
		goto out;
	mf_rt_stripe_config(rt, meta, nmeta, &lc.stripe);
	lc.on_fill = mf_coord_on_fill;
	lc.mode = rt->rt_mode;
	lc.stripe_timeout_ms = c->stripe_timeout_ms;
	for (i = 0; i < t.n; i++) {
		rt->rt_naccts = i + 1;
		if (mf_rt_account(rt, &t, i, &lc, prev, &who, flags, err, errlen) != 0)
			goto out;
	}
	rc = 0;
out:
	mf_accounts_free(&t);
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
	int i;

	for (i = rt->rt_naccts - 1; i >= 0; i--) {
		mf_coord_put(rt->rt_acct[i].coord);	/* first: it uses the service's cache and client */
		lk_put(rt->rt_acct[i].lk);
	}
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

	struct mf_coord *coords[MF_ACCOUNTS_MAX];
	int i, n = rt ? rt->rt_naccts : 0;

	for (i = 0; i < n; i++)
		coords[i] = rt->rt_acct[i].coord;
	mf_coord_install(coords, n);
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

/* mf_runtime_print_perms() for account i; "what" prefixes the lines ("" or "account eu: "). */
static int mf_rt_print_perms_one(const struct mf_runtime *rt, int a, const char *what, FILE *out)
{
	struct stripe_perm perms[STRIPE_PERMS];
	struct stripe_result res;
	int i, rc = 0;

	stripe_check_permissions(lk_stripe(rt->rt_acct[a].lk), sm_now_ms() + 10000, perms, &res);
	for (i = 0; i < STRIPE_PERMS; i++) {
		const char *need = mf_runtime_perm_need(rt, perms[i].part);

		if (need == NULL)
			continue;
		if (perms[i].err != STRIPE_OK) {
			fprintf(out, "# %spermission %s (%s): not probed: %s%s%s\n", what, perms[i].permission,
			    perms[i].dashboard, stripe_errclass_name(perms[i].err),
			    perms[i].message[0] || res.message[0] ? ": " : "",
			    perms[i].message[0] ? perms[i].message : res.message);
			rc = 1;
		} else if (perms[i].granted) {
			fprintf(out, "# %spermission %s (%s): granted\n", what, perms[i].permission,
			    perms[i].dashboard);
		} else {
			fprintf(out, "# warning: %spermission %s (%s) MISSING: without it, %s\n", what,
			    perms[i].permission, perms[i].dashboard, need);
			rc = 1;
		}
	}
	return rc;
}

int mf_runtime_print_perms(const struct mf_runtime *rt, FILE *out)
{
	char what[MF_ACCOUNT_NAME_MAX + 16] = "";
	int a, rc = 0;

	for (a = 0; a < rt->rt_naccts; a++) {
		if (rt->rt_named)
			snprintf(what, sizeof(what), "account %s: ", rt->rt_acct[a].name);
		rc |= mf_rt_print_perms_one(rt, a, what, out);
	}
	return rc;
}

void mf_runtime_describe(const struct mf_runtime *rt, char *buf, size_t len)
{
	size_t n = 0;
	int a;

	if (!rt->rt_named) {
		snprintf(buf, len, "Stripe key %s", rt->rt_acct[0].key_masked);
		return;
	}
	n = (size_t)snprintf(buf, len, "Stripe accounts");
	for (a = 0; a < rt->rt_naccts && n < len; a++)
		n += (size_t)snprintf(buf + n, len - n, "%s %s (key %s%s%s)", a ? "," : "", rt->rt_acct[a].name,
		    rt->rt_acct[a].key_masked, rt->rt_acct[a].connect[0] ? ", Connect " : "",
		    rt->rt_acct[a].connect);
}

const struct mf_conf *mf_runtime_conf(const struct mf_runtime *rt) { return rt->rt_conf; }
struct fleet *mf_runtime_fleet(const struct mf_runtime *rt) { return mf_coord_fleet(rt->rt_acct[0].coord); }
struct lk *mf_runtime_lookup(const struct mf_runtime *rt) { return rt->rt_acct[0].lk; }
int mf_runtime_accounts(const struct mf_runtime *rt) { return rt->rt_naccts; }
bool mf_runtime_named(const struct mf_runtime *rt) { return rt->rt_named; }
const char *mf_runtime_account_name(const struct mf_runtime *rt, int i) { return rt->rt_acct[i].name; }
const char *mf_runtime_account_connect(const struct mf_runtime *rt, int i) { return rt->rt_acct[i].connect; }
struct lk *mf_runtime_account_lookup(const struct mf_runtime *rt, int i) { return rt->rt_acct[i].lk; }
struct fleet *mf_runtime_account_fleet(const struct mf_runtime *rt, int i)
{
	return mf_coord_fleet(rt->rt_acct[i].coord);
}
const char *mf_runtime_account_key_masked(const struct mf_runtime *rt, int i) { return rt->rt_acct[i].key_masked; }
struct mf_acct_results *mf_runtime_account_results(const struct mf_runtime *rt, int i)
{
	return rt->rt_acct[i].results;
}

int mf_runtime_account_find(const struct mf_runtime *rt, const char *name)
{
	int i;

	for (i = 0; i < rt->rt_naccts; i++)
		if (strcmp(rt->rt_acct[i].name, name) == 0)
			return i;
	return -1;
}
const struct mf_hdr_opts *mf_runtime_hdr(const struct mf_runtime *rt) { return &rt->rt_hdr; }
const struct mf_cidr_list *mf_runtime_internal(const struct mf_runtime *rt) { return rt->rt_internal; }
const struct mf_match_list *mf_runtime_recipients(const struct mf_runtime *rt) { return rt->rt_recipients; }
const struct mf_match_list *mf_runtime_skip_domains(const struct mf_runtime *rt) { return rt->rt_skip_domains; }
const struct mf_match_list *mf_runtime_authserv(const struct mf_runtime *rt) { return rt->rt_authserv; }
bool mf_runtime_livemode(const struct mf_runtime *rt) { return rt->rt_livemode; }
const char *mf_runtime_mode(const struct mf_runtime *rt) { return rt->rt_mode; }
const char *mf_runtime_key_masked(const struct mf_runtime *rt) { return rt->rt_acct[0].key_masked; }
