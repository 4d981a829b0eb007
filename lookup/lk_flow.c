/*
 * lk_flow.c - one lookup, from address to result. See lookup.h.
 *
 * Interface (lk_int.h): lk_run(), lk_run_l1(); (lookup.h) lk_sync().
 *
 * Flow: lk_key() of the address -> cache_get_or_fill(), whose fill calls stripe_lookup()
 *	and stores the encoded summary (positive when a customer matched, negative when none
 *	did); the bytes that come back are decoded into the result. Stripe's temporary errors
 *	let the cache serve a stale entry. Bytes in Redis that cannot be decoded (garbage, a
 *	hostile writer) never get this far: the cache runs lk_entry_check() on what it reads
 *	from Redis before it keeps or hands on anything, logs and deletes what fails and
 *	treats it as a miss, so the MAIL FROM probe, the From lookup and the fill all agree on
 *	one fresh lookup, whatever their order (cache_fill.c, "Unreadable entries"). Another
 *	codec version's entries live under other keys (lk_key.c). lk_run_l1() is the part
 *	that needs neither Redis nor Stripe: a fresh L1 entry, decoded; the worker pool runs
 *	it on the caller's thread before queueing.
 *
 * Diagnostics: the cache logs "cache entry KEY unreadable (why): purged" at LOG_WARNING;
 *	the result says error=<class> (a stripe_errclass name, "timeout" when the deadline
 *	passed with no fill error, "internal", also for bytes that checked and then did not
 *	decode: out of memory).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "lookup/lk_int.h"

/* What the fill callback needs and what it reports back. */
struct lk_fill_ctx {
	struct lk *lk;
	const char *addr;
	struct stripe_result sres;
	bool called;
};

static void lk_fill(void *arg, int64_t deadline_ms, struct cache_fill_out *out)
{
	struct lk_fill_ctx *f = arg;
	struct stripe_summary *s = malloc(sizeof(*s));
	enum stripe_errclass e;
	char *buf = NULL;
	size_t len = 0;

	f->called = true;
	memset(out, 0, sizeof(*out));
	if (s == NULL) {
		out->errclass = STRIPE_E_INTERNAL;
		return;
	}
	e = stripe_lookup(f->lk->stripe, f->addr, deadline_ms, s, &f->sres);
	if (e != STRIPE_OK) {
		out->errclass = (int)e;
		out->temporary = stripe_errclass_temporary(e);
		goto out;
	}
	if (lk_summary_encode(s, &buf, &len) != 0) {
		out->errclass = STRIPE_E_INTERNAL;
		goto out;
	}
	out->data = (unsigned char *)buf;
	out->len = len;
	out->kind = s->found ? CACHE_POSITIVE : CACHE_NEGATIVE;
out:
	free(s);
}

/* The error class word of a failed (or stale) cache lookup. */
static const char *lk_fill_error(const struct cache_value *v)
{
	if (v->fill_errclass == 0)
		return v->deadline_passed ? "timeout" : "internal";
	return stripe_errclass_name((enum stripe_errclass)v->fill_errclass);
}

int lk_entry_check(void *arg, const unsigned char *data, size_t len, char *why, size_t whylen)
{
	struct stripe_summary *s;
	int rc;

	(void)arg;
	if (data == NULL || len == 0)
		return 0;
	/* memoised: the decode that follows a hit finds the result here */
	if ((s = malloc(sizeof(*s))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	rc = lk_summary_decode_memo((const char *)data, len, s, why, whylen);
	free(s);
	return rc;
}

/* One pass through the cache into res. */
static void lk_pass(struct lk *lk, const char *key, struct lk_fill_ctx *f, int64_t deadline_ms,
    struct lk_result *res)
{
	struct cache_value v;
	char why[128];

	memset(&v, 0, sizeof(v));
	res->lr_state = LK_ERROR;
	if (cache_get_or_fill(lk->cache, key, f ? lk_fill : NULL, f, deadline_ms, &v) != 0) {
		res->lr_error = f ? lk_fill_error(&v) : "not-cached";
		goto out;
	}
	res->lr_source = v.source;
	res->lr_fetched_at_ms = v.fetched_at_ms;
	res->lr_stale = v.stale;
	if (v.stale)
		res->lr_error = lk_fill_error(&v);
	if (v.data == NULL || v.len == 0) {
		res->lr_state = LK_NOT_FOUND;
		goto out;
	}
	if (lk_summary_decode_memo((const char *)v.data, v.len, &res->lr_summary, why, sizeof(why)) != 0) {
		/* the cache checked these bytes (or a fill just encoded them): out of memory */
		sm_log(LOG_ERR, "cache entry %s passed its check but did not decode (%s)", key, why);
		res->lr_error = "internal";
		goto out;
	}
	res->lr_state = res->lr_summary.found ? LK_FOUND : LK_NOT_FOUND;
	if (v.source == CACHE_SRC_FILL && res->lr_summary.found && lk->on_fill)
		lk->on_fill(lk->on_fill_arg, res->lr_summary.customer_id, key);
out:
	cache_value_free(&v);
}

void lk_run(struct lk *lk, const char *addr, const char *known_key, bool fill, int64_t deadline_ms,
    struct lk_result *res)
{
	struct lk_fill_ctx f;
	char buf[CACHE_KEY_MAX];
	const char *key = known_key;
	int64_t t0 = sm_now_ms();

	memset(res, 0, sizeof(*res));
	memset(&f, 0, sizeof(f));
	f.lk = lk;
	f.addr = addr;
	if (key == NULL || *key == '\0')
		key = lk_key(lk->cache, lk->mode, lk->account, addr, buf, sizeof(buf)) == 0 ? buf : NULL;
	if (key == NULL) {
		res->lr_state = LK_ERROR;
		res->lr_error = "internal";
	} else {
		lk_pass(lk, key, fill ? &f : NULL, deadline_ms, res);
	}
	if (f.called && f.sres.err != STRIPE_OK) {
		sm_strlcpy(res->lr_request_id, f.sres.request_id, sizeof(res->lr_request_id));
		sm_strlcpy(res->lr_error_message, f.sres.message, sizeof(res->lr_error_message));
	}
	res->lr_latency_ms = sm_now_ms() - t0;
}

int lk_run_l1(struct lk *lk, const char *addr, char *key, struct lk_result *res)
{
	struct cache_value v;
	char why[128];
	int64_t t0 = sm_now_ms();
	int rc = -1;

	memset(res, 0, sizeof(*res));
	memset(&v, 0, sizeof(v));
	if (lk_key(lk->cache, lk->mode, lk->account, addr, key, CACHE_KEY_MAX) != 0) {
		*key = '\0';
		goto out;
	}
	if (cache_get_l1(lk->cache, key, &v) != 0)
		goto out;
	res->lr_source = v.source;
	res->lr_fetched_at_ms = v.fetched_at_ms;
	if (v.data == NULL || v.len == 0) {
		res->lr_state = LK_NOT_FOUND;
		rc = 0;
	} else if (lk_summary_decode_memo((const char *)v.data, v.len, &res->lr_summary, why,
	    sizeof(why)) == 0) {
		res->lr_state = res->lr_summary.found ? LK_FOUND : LK_NOT_FOUND;
		rc = 0;
	}
	/* L1 holds checked bytes only; if they do not decode (out of memory), lk_run() says so */
out:
	cache_value_free(&v);
	if (rc != 0)
		memset(res, 0, sizeof(*res));
	else
		res->lr_latency_ms = sm_now_ms() - t0;
	return rc;
}

void lk_sync(struct lk *lk, const char *addr, int64_t deadline_ms, struct lk_result *res)
{
	lk_run(lk, addr, NULL, true, deadline_ms, res);
}
