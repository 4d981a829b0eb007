/*
 * lk_flow.c - one lookup, from address to result. See lookup.h.
 *
 * Interface (lk_int.h): lk_run(), lk_run_l1(); (lookup.h) lk_sync().
 *
 * Flow: lk_key() of the address -> cache_get_or_fill(), whose fill calls stripe_lookup()
 *	and stores the encoded summary (positive when a customer matched, negative when none
 *	did); the bytes that come back are decoded into the result. Stripe's temporary errors
 *	let the cache serve a stale entry. Bytes that cannot be decoded (another version,
 *	garbage in Redis) are purged and the lookup is tried once more, which fills from
 *	Stripe. lk_run_l1() is the part that needs neither Redis nor Stripe: a fresh L1
 *	entry, decoded; the worker pool runs it on the caller's thread before queueing.
 *
 * Diagnostics: "cache entry KEY unreadable (why): purged" at LOG_WARNING; the result says
 *	error=<class> (a stripe_errclass name, "timeout" when the deadline passed with no
 *	fill error, "malformed", "internal").
 */
#include "config.h"

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

/* One pass through the cache. Returns 1 when the cached bytes could not be read (they are
 * purged, and the caller may try once more, which fills from Stripe), else 0. */
static int lk_pass(struct lk *lk, const char *key, struct lk_fill_ctx *f, int64_t deadline_ms,
    struct lk_result *res)
{
	struct cache_value v;
	char why[128];
	int again = 0;

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
		/* Written by another version, or garbage in Redis: drop it and ask again. */
		sm_log(LOG_WARNING, "cache entry %s unreadable (%s): purged", key, why);
		cache_purge(lk->cache, key);
		res->lr_error = "malformed";
		again = f != NULL && v.source != CACHE_SRC_FILL;
		goto out;
	}
	res->lr_state = res->lr_summary.found ? LK_FOUND : LK_NOT_FOUND;
	if (v.source == CACHE_SRC_FILL && res->lr_summary.found && lk->on_fill)
		lk->on_fill(lk->on_fill_arg, res->lr_summary.customer_id, key);
out:
	cache_value_free(&v);
	return again;
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
	} else if (lk_pass(lk, key, fill ? &f : NULL, deadline_ms, res) != 0) {
		memset(res, 0, sizeof(*res));
		lk_pass(lk, key, &f, deadline_ms, res);
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
	/* bytes that do not decode: lk_run() logs, purges and looks up again */
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
