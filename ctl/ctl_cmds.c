/*
 * ctl_cmds.c - stripe-milterctl lookup, purge, flush, check-key, check-config.
 *
 * lookup renders exactly what the milter would add (the same renderer, options and
 * lookup path: Redis, then Stripe through the fill, every account, the same choice among
 * them) and says where the data came from; the tool's in-process cache is empty, so "l1"
 * never shows. --no-cache asks Stripe. --account NAME (lookup, purge, check-key) works
 * on that account only; without it they work on every account of the config.
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sm_util.h"
#include "ctl/ctl.h"
#include "lookup/lookup.h"
#include "milter/mf_hdr.h"

#define CTL_TIMEOUT_MS 15000

static const char *ctl_arg(struct ctl *c, int i)
{
	int j, n = 0;

	for (j = 0; j < c->argc; j++) {
		if (c->argv[j][0] == '-' && c->argv[j][1] == '-')
			continue;
		if (j > 0 && strcmp(c->argv[j - 1], "--account") == 0)
			continue;	/* the option's value */
		if (n++ == i)
			return c->argv[j];
	}
	return NULL;
}

static bool ctl_flag(struct ctl *c, const char *flag)
{
	int j;

	for (j = 0; j < c->argc; j++)
		if (strcmp(c->argv[j], flag) == 0)
			return true;
	return false;
}

/* The accounts a command works on: [*first, *end); --account NAME (or --account=NAME)
 * narrows them to one. -1 (said on stderr) for an unknown name or a missing value. */
static int ctl_accounts(struct ctl *c, int *first, int *end)
{
	const char *name = NULL;
	int j, i;

	*first = 0;
	*end = mf_runtime_accounts(c->rt);
	for (j = 0; j < c->argc; j++) {
		if (strcmp(c->argv[j], "--account") == 0) {
			if (j + 1 >= c->argc) {
				fprintf(stderr, "stripe-milterctl: --account needs a name\n");
				return -1;
			}
			name = c->argv[j + 1];
		} else if (strncmp(c->argv[j], "--account=", 10) == 0) {
			name = c->argv[j] + 10;
		}
	}
	if (name == NULL)
		return 0;
	if ((i = mf_runtime_account_find(c->rt, name)) < 0) {
		fprintf(stderr, "stripe-milterctl: no account '%s' in the configuration (", name);
		for (j = 0; j < *end; j++)
			fprintf(stderr, "%s%s", j ? ", " : "", mf_runtime_account_name(c->rt, j));
		fprintf(stderr, ")\n");
		return -1;
	}
	*first = i;
	*end = i + 1;
	return 0;
}

static void ctl_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Where a lookup's data came from: "stripe" for a fill, else the cache level. */
static const char *ctl_source(const struct lk_result *r, bool no_cache)
{
	return no_cache || r->lr_source == CACHE_SRC_FILL ? "stripe" : cache_source_name(r->lr_source);
}

/* A direct Stripe lookup shaped like a cached one. */
static void ctl_lookup_direct(struct lk *lk, const char *addr, struct lk_result *r)
{
	struct stripe_result sr;
	enum stripe_errclass e;
	int64_t t0 = sm_now_ms();

	memset(r, 0, sizeof(*r));
	e = stripe_lookup(lk_stripe(lk), addr, sm_now_ms() + CTL_TIMEOUT_MS, &r->lr_summary, &sr);
	r->lr_source = CACHE_SRC_FILL;
	r->lr_fetched_at_ms = sm_wall_ms();
	r->lr_latency_ms = sm_now_ms() - t0;
	if (e != STRIPE_OK) {
		r->lr_state = LK_ERROR;
		r->lr_error = stripe_errclass_name(e);
		sm_strlcpy(r->lr_request_id, sr.request_id, sizeof(r->lr_request_id));
		sm_strlcpy(r->lr_error_message, sr.message, sizeof(r->lr_error_message));
	} else {
		r->lr_state = r->lr_summary.found ? LK_FOUND : LK_NOT_FOUND;
	}
}

static const char *ctl_result_word(const struct lk_result *r)
{
	return r->lr_state == LK_FOUND ? "found" : r->lr_state == LK_NOT_FOUND ?
	    (r->lr_summary.found_by == STRIPE_BY_GUEST ? "guest" : "not-found") : "error";
}

/* The accounts' own answers (AccountTable): one line each, or a JSON array. */
static json_t *ctl_lookup_accounts(const struct mf_lookup_info *li, const struct lk_result *const *rs, bool json)
{
	json_t *arr = json ? json_array() : NULL;
	int i;

	for (i = 0; i < li->naccounts; i++) {
		const struct lk_result *r = rs[i];

		if (json)
			json_array_append_new(arr, json_pack("{s:s,s:s,s:s?,s:s?}", "account", li->accounts[i].name,
			    "result", ctl_result_word(r), "error", r->lr_state == LK_ERROR && r->lr_error ?
			    r->lr_error : NULL, "customer", r->lr_state == LK_FOUND ? r->lr_summary.customer_id : NULL));
		else
			printf("account %-10s %s%s%s\n", li->accounts[i].name, ctl_result_word(r),
			    r->lr_state == LK_FOUND ? " " : r->lr_error ? " " : "",
			    r->lr_state == LK_FOUND ? r->lr_summary.customer_id : r->lr_error ? r->lr_error : "");
	}
	return arr;
}

static int ctl_lookup_print(struct ctl *c, const char *addr, const struct lk_result *r,
    bool no_cache, const struct mf_hdr_list *hl, const struct mf_lookup_info *li,
    const struct lk_result *const *rs)
{
	const struct stripe_summary *s = &r->lr_summary;
	char when[32];
	int i;

	ctl_time(r->lr_fetched_at_ms, when, sizeof(when));
	if (c->json) {
		json_t *o = json_object(), *hs = json_array(), *sum = NULL;
		char *enc = NULL, *out;
		size_t len;

		for (i = 0; i < hl->n; i++)
			json_array_append_new(hs, json_pack("{s:s,s:s}", "name", hl->h[i].name, "value", hl->h[i].value));
		if ((r->lr_state == LK_FOUND || s->found_by == STRIPE_BY_GUEST) &&
		    lk_summary_encode(s, &enc, &len) == 0)
			sum = json_loadb(enc, len, 0, NULL);
		free(enc);
		json_object_set_new(o, "address", json_string(addr));
		json_object_set_new(o, "result", json_string(ctl_result_word(r)));
		if (li->account)
			json_object_set_new(o, "account", json_string(li->account));
		if (li->naccounts > 0)
			json_object_set_new(o, "accounts", ctl_lookup_accounts(li, rs, true));
		json_object_set_new(o, "source", json_string(ctl_source(r, no_cache)));
		json_object_set_new(o, "fetched_at", json_string(when));
		json_object_set_new(o, "stale", json_boolean(r->lr_stale));
		if (r->lr_error)
			json_object_set_new(o, "error", json_string(r->lr_error));
		if (r->lr_request_id[0])
			json_object_set_new(o, "stripe_request_id", json_string(r->lr_request_id));
		json_object_set_new(o, "headers", hs);
		json_object_set_new(o, "summary", sum ? sum : json_null());
		out = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		printf("%s\n", out ? out : "{}");
		free(out);
		json_decref(o);
	} else {
		printf("address:     %s\nsource:      %s%s\nfetched at:  %s\n", addr, ctl_source(r, no_cache),
		    r->lr_stale ? " (stale: Stripe failed, cached data within its grace period)" : "", when);
		if (li->account)
			printf("account:     %s\n", li->account);
		ctl_lookup_accounts(li, rs, false);
		if (r->lr_state == LK_ERROR)
			printf("error:       %s%s%s%s%s\n", r->lr_error ? r->lr_error : "internal",
			    r->lr_error_message[0] ? ": " : "", r->lr_error_message,
			    r->lr_request_id[0] ? "; Stripe request id " : "", r->lr_request_id);
		if (r->lr_state == LK_FOUND)
			printf("customer:    %s (%d match%s), %d subscription%s, %d charge%s in %d days\n",
			    s->customer_id, s->matches, s->matches == 1 ? "" : "es", s->subs_total,
			    s->subs_total == 1 ? "" : "s", s->charges.count, s->charges.count == 1 ? "" : "s",
			    s->charges.window_days);
		if (r->lr_state == LK_NOT_FOUND && s->found_by == STRIPE_BY_GUEST)
			printf("guest buyer: no customer, %d completed checkout session%s in %d days "
			    "by the buyer's email\n", s->checkout.sessions, s->checkout.sessions == 1 ?
			    "" : "s", s->checkout.window_days);
		printf("headers the milter would add:\n");
		for (i = 0; i < hl->n; i++)
			printf("  %s: %s\n", hl->h[i].name, hl->h[i].value);
	}
	return r->lr_state == LK_ERROR ? CTL_PROBLEM : CTL_OK;
}

/* The lookups of ctl_lookup: one per account asked, their answers and the one shown. */
struct ctl_lookups {
	struct lk_result r[MF_ACCOUNTS_MAX];
	struct mf_lookup_info li[MF_ACCOUNTS_MAX];
	struct mf_hdr_account ha[MF_ACCOUNTS_MAX];
	const struct lk_result *rs[MF_ACCOUNTS_MAX];
	struct mf_hdr_list hl;
};

int ctl_lookup(struct ctl *c)
{
	const char *addr = ctl_arg(c, 0);
	bool no_cache = ctl_flag(c, "--no-cache");
	struct ctl_lookups *k;
	struct mf_lookup_info li;
	int rc = CTL_PROBLEM, first, end, i, n, best;

	if (addr == NULL || strchr(addr, '@') == NULL) {
		fprintf(stderr, "usage: stripe-milterctl lookup ADDRESS [--no-cache] [--account NAME]\n");
		return CTL_USAGE;
	}
	if (ctl_accounts(c, &first, &end) != 0)
		return CTL_USAGE;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return CTL_PROBLEM;
	for (n = 0, i = first; i < end; i++, n++) {
		if (no_cache)
			ctl_lookup_direct(mf_runtime_account_lookup(c->rt, i), addr, &k->r[n]);
		else
			lk_sync(mf_runtime_account_lookup(c->rt, i), addr, sm_now_ms() + CTL_TIMEOUT_MS, &k->r[n]);
		k->li[n].livemode = mf_runtime_livemode(c->rt);
		k->ha[n] = (struct mf_hdr_account){ mf_runtime_account_name(c->rt, i), &k->li[n],
			mf_hdr_info_fill(&k->r[n], &k->li[n]) };
		if (no_cache)
			k->li[n].cache = "miss";
		k->rs[n] = &k->r[n];
	}
	best = mf_hdr_pick(k->ha, n);
	li = k->li[best];
	if (mf_runtime_named(c->rt)) {
		li.account = k->ha[best].name;
		li.accounts = k->ha;
		li.naccounts = n;
	}
	if (mf_hdr_render(mf_runtime_hdr(c->rt), &li, k->ha[best].s, &k->hl) >= 0)
		rc = ctl_lookup_print(c, addr, &k->r[best], no_cache, &k->hl, &li, k->rs);
	free(k);
	return rc;
}

int ctl_purge(struct ctl *c)
{
	const char *addr = ctl_arg(c, 0);
	char key[CACHE_KEY_MAX], first_key[CACHE_KEY_MAX] = "";
	json_t *arr = json_array();
	int first, end, i, rc = CTL_OK;

	if (addr == NULL || ctl_accounts(c, &first, &end) != 0) {
		if (addr == NULL)
			fprintf(stderr, "usage: stripe-milterctl purge ADDRESS [--account NAME]\n");
		json_decref(arr);
		return CTL_USAGE;
	}
	for (i = first; i < end; i++) {
		if (lk_purge(mf_runtime_account_lookup(c->rt, i), addr, key, sizeof(key)) != 0) {
			fprintf(stderr, "stripe-milterctl: purge of %s in account %s failed (Redis unreachable?)\n",
			    addr, mf_runtime_account_name(c->rt, i));
			rc = CTL_PROBLEM;
			continue;
		}
		if (first_key[0] == '\0')
			sm_strlcpy(first_key, key, sizeof(first_key));
		json_array_append_new(arr, json_pack("{s:s,s:s}", "account", mf_runtime_account_name(c->rt, i),
		    "key", key));
		if (!c->json)
			printf("purged %s in account %s (key %s); instances drop their in-process copy within "
			    "CacheL1TTL\n", addr, mf_runtime_account_name(c->rt, i), key);
	}
	if (c->json) {
		json_t *o = json_pack("{s:b,s:s,s:o}", "purged", rc == CTL_OK, "key", first_key, "accounts", arr);
		char *out = json_dumps(o, 0);

		printf("%s\n", out ? out : "{}");
		free(out);
		json_decref(o);
	} else {
		json_decref(arr);
	}
	return rc;
}

int ctl_flush(struct ctl *c)
{
	long deleted = 0;

	if (!ctl_flag(c, "--yes")) {
		fprintf(stderr, "stripe-milterctl: flush deletes every cache entry under prefix '%s'; "
		    "say --yes to do it\n", mf_runtime_conf(c->rt)->cache_prefix);
		return CTL_USAGE;
	}
	if (cache_flush(lk_cache(mf_runtime_lookup(c->rt)), &deleted) != 0) {
		fprintf(stderr, "stripe-milterctl: flush failed (Redis unreachable?)\n");
		return CTL_PROBLEM;
	}
	if (c->json)
		printf("{\"deleted\": %ld}\n", deleted);
	else
		printf("deleted %ld keys under %s\n", deleted, mf_runtime_conf(c->rt)->cache_prefix);
	return CTL_OK;
}

/* What a permission feeds in this configuration (what is lost without it); NULL when
 * the configuration does not use it. */
static const char *ctl_feeds(const struct ctl *c, unsigned part)
{
	return mf_runtime_perm_need(c->rt, part);
}

/* check-key for account i: a table (or JSON object, *obj) of its key's permissions. */
static int ctl_check_key_one(struct ctl *c, int i_acct, json_t **obj)
{
	struct stripe_client *sc = lk_stripe(mf_runtime_account_lookup(c->rt, i_acct));
	const char *masked = mf_runtime_account_key_masked(c->rt, i_acct);
	const char *connect = mf_runtime_account_connect(c->rt, i_acct);
	struct stripe_perm perms[STRIPE_PERMS];
	struct stripe_result res;
	json_t *arr = json_array();
	int i, missing = 0, failed = 0;

	struct stripe_result ares;
	char account[STRIPE_ID_MAX + 64];

	if (stripe_account_id(sc, sm_now_ms() + CTL_TIMEOUT_MS, account, sizeof(account), &ares) != 0)
		snprintf(account, sizeof(account), "unknown (%s)", ares.err == STRIPE_E_PERMISSION ?
		    "the key may not read the account; not needed" : stripe_errclass_name(ares.err));
	stripe_check_permissions(sc, sm_now_ms() + CTL_TIMEOUT_MS, perms, &res);
	if (!c->json) {
		if (mf_runtime_named(c->rt))
			printf("== account %s%s%s\n", mf_runtime_account_name(c->rt, i_acct),
			    connect[0] ? ", Connect " : "", connect);
		printf("key %s (%s mode), account %s%s\n\n%-14s %-26s %-24s %-8s %s\n", masked,
		    mf_runtime_mode(c->rt), account, connect[0] && !mf_runtime_named(c->rt) ?
		    " (Connect, StripeAccount)" : "", "resource", "permission", "dashboard", "status",
		    "lost without it");
	}
	for (i = 0; i < STRIPE_PERMS; i++) {
		const char *feeds = ctl_feeds(c, perms[i].part);
		const char *status = feeds == NULL ? "unused" : perms[i].err != STRIPE_OK ? "error" :
		    perms[i].granted ? "granted" : "MISSING";

		if (feeds && perms[i].err != STRIPE_OK)
			failed++;
		else if (feeds && !perms[i].granted)
			missing++;
		if (c->json)
			json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?}",
			    "resource", stripe_part_name(perms[i].part), "permission", perms[i].permission,
			    "dashboard", perms[i].dashboard, "status", status, "feeds", feeds,
			    "error", perms[i].err != STRIPE_OK ? stripe_errclass_name(perms[i].err) : NULL,
			    "message", perms[i].message[0] ? perms[i].message : NULL));
		else
			printf("%-14s %-26s %-24s %-8s %s\n", stripe_part_name(perms[i].part), perms[i].permission,
			    perms[i].dashboard, status, feeds ? feeds : "(not used by this configuration)");
	}
	if (c->json) {
		*obj = json_pack("{s:s,s:s,s:s,s:s,s:o,s:i,s:i}", "name", mf_runtime_account_name(c->rt, i_acct),
		    "key", masked, "mode", mf_runtime_mode(c->rt), "account", account, "permissions", arr,
		    "missing", missing, "errors", failed);
	} else {
		json_decref(arr);
		printf("\n");
		for (i = 0; i < STRIPE_PERMS; i++)
			if (ctl_feeds(c, perms[i].part) && perms[i].err == STRIPE_OK &&
			    !perms[i].granted)
				printf("fix: edit the restricted key and grant %s (%s)\n", perms[i].dashboard,
				    perms[i].permission);
		/* A 403 that names no permission is not fixed by granting one: say what Stripe
		 * said (sanitised), e.g. no access to the Connect account. */
		for (i = 0; i < STRIPE_PERMS; i++)
			if (ctl_feeds(c, perms[i].part) && perms[i].message[0])
				printf("%s: Stripe refused without naming a permission: %s\n",
				    stripe_part_name(perms[i].part), perms[i].message);
		if (failed)
			printf("Stripe did not answer every probe: %s%s%s\n", stripe_errclass_name(res.err),
			    res.message[0] ? ": " : "", res.message);
		if (!missing && !failed)
			printf("every permission the configured headers need is granted\n");
	}
	return missing || failed ? CTL_PROBLEM : CTL_OK;
}

int ctl_check_key(struct ctl *c)
{
	json_t *all = json_array(), *o = NULL;
	int first, end, i, rc = CTL_OK;

	if (ctl_accounts(c, &first, &end) != 0) {
		json_decref(all);
		return CTL_USAGE;
	}
	for (i = first; i < end; i++) {
		if (!c->json && i > first)
			printf("\n");
		o = NULL;
		if (ctl_check_key_one(c, i, &o) != CTL_OK)
			rc = CTL_PROBLEM;
		if (o)
			json_array_append_new(all, o);
	}
	if (c->json) {
		/* a table of one keeps the object it always printed; a table prints them all */
		json_t *out_o = mf_runtime_named(c->rt) ? json_pack("{s:O}", "accounts", all) :
		    json_incref(json_array_get(all, 0));
		char *out = out_o ? json_dumps(out_o, JSON_INDENT(2)) : NULL;

		printf("%s\n", out ? out : "{}");
		free(out);
		json_decref(out_o);
	}
	json_decref(all);
	return rc;
}

/* Whether account i's key reads customers: "ok", or why not in why (*word: the error
 * class, "permission" when the key lacks Customers: Read). */
static bool ctl_stripe_ok(struct ctl *c, int i, char *why, size_t whylen, const char **word)
{
	struct stripe_perm perms[STRIPE_PERMS];
	struct stripe_result res;

	stripe_check_permissions(lk_stripe(mf_runtime_account_lookup(c->rt, i)), sm_now_ms() + CTL_TIMEOUT_MS,
	    perms, &res);
	*word = stripe_errclass_name(perms[0].err != STRIPE_OK ? perms[0].err : STRIPE_E_PERMISSION);
	if (perms[0].err == STRIPE_OK && perms[0].granted) {
		snprintf(why, whylen, "ok");
		*word = "ok";
		return true;
	}
	snprintf(why, whylen, "%s%s%s", perms[0].err != STRIPE_OK ? stripe_errclass_name(perms[0].err) :
	    "key lacks Customers: Read", res.message[0] ? ": " : "", res.message);
	return false;
}

int ctl_check_config(struct ctl *c)
{
	const struct mf_conf *conf = mf_runtime_conf(c->rt);
	struct cache_value v;
	bool redis_conf = conf->redis_host || conf->redis_socket || conf->redis_sentinels;
	bool redis_ok = true, stripe_ok = true, ok;
	char key[CACHE_KEY_MAX], why[512];
	const char *word = "ok", *first_fail = NULL;
	json_t *accts = json_object();
	int i;

	if (redis_conf) {
		cache_key_name(lk_cache(mf_runtime_lookup(c->rt)), "check:config", key, sizeof(key));
		memset(&v, 0, sizeof(v));
		cache_get_or_fill(lk_cache(mf_runtime_lookup(c->rt)), key, NULL, NULL, sm_now_ms() + 3000, &v);
		cache_value_free(&v);
		redis_ok = cache_redis_ok(lk_cache(mf_runtime_lookup(c->rt)));
	}
	if (!c->json) {
		printf("config:  %s: ok (key %s, %s mode)\n", conf->path, mf_runtime_key_masked(c->rt), mf_runtime_mode(c->rt));
		printf("redis:   %s\n", !redis_conf ? "not configured (in-process cache only)" :
		    redis_ok ? "ok" : "UNREACHABLE");
	}
	for (i = 0; i < mf_runtime_accounts(c->rt); i++) {
		ok = ctl_stripe_ok(c, i, why, sizeof(why), &word);
		stripe_ok = stripe_ok && ok;
		if (!ok && first_fail == NULL)
			first_fail = word;
		json_object_set_new(accts, mf_runtime_account_name(c->rt, i), json_string(ok ? "ok" : why));
		if (c->json)
			continue;
		if (mf_runtime_named(c->rt))
			printf("stripe:  account %s (key %s): %s\n", mf_runtime_account_name(c->rt, i),
			    mf_runtime_account_key_masked(c->rt, i), ok ? "ok" : why);
		else if (ok)
			printf("stripe:  ok (%s)\n", conf->stripe_api_base);
		else
			printf("stripe:  FAILED: %s\n", why);
	}
	if (c->json) {
		json_t *o = json_pack("{s:s,s:b,s:s,s:s,s:O}", "config", conf->path, 1, "redis",
		    !redis_conf ? "not configured" : redis_ok ? "ok" : "unreachable", "stripe",
		    first_fail ? first_fail : "ok", "accounts", accts);
		char *out = o ? json_dumps(o, 0) : NULL;

		printf("%s\n", out ? out : "{}");
		free(out);
		json_decref(o);
	}
	json_decref(accts);
	return redis_ok && stripe_ok ? CTL_OK : CTL_PROBLEM;
}
