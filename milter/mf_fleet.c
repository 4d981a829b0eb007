/*
 * mf_fleet.c - the daemon's fleet statistics: publisher thread and reader. See mf_fleet.h.
 *
 * Ownership (why this lives in the daemon and not in cache/): the thread belongs to the
 * process, not to a config snapshot. Each publication takes a reference to the current
 * snapshot and drops it when done; if that was the last reference the snapshot and its
 * cache are freed right there, which is safe because no cache owns or joins this thread.
 *
 * Every Redis command goes through mf_fleet_cmd(), the one place that knows which Redis
 * client the daemon has: the cache's pool (cache_redis(), a struct rds of redis/rds.h).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "cache/cache.h"
#include "common/sm_log.h"
#include "common/sm_util.h"
#include "fleet/fleet.h"
#include "lookup/lookup.h"
#include "milter/mf_fleet.h"
#include "milter/mf_results.h"
#include "milter/mf_stats.h"
#include "redis/rds.h"
#include "stripe/stripe.h"

#define MF_PUB_MAX	320	/* ~190 fields, and 8 per Stripe account */

struct mf_pub {
	int n;
	struct {
		char name[64];
		char val[24];
		uint64_t v;
	} f[MF_PUB_MAX];
};

static pthread_mutex_t mf_fl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mf_fl_cv;
static pthread_t mf_fl_thread;
static bool mf_fl_running, mf_fl_stop, mf_fl_failing;
static int64_t mf_fl_started_ms;
static int mf_fl_log_full;

/* ---- Redis ------------------------------------------------------------------------------ */

/* The daemon's one way to Redis for statistics: the pool of the snapshot's cache. */
static redisReply *mf_fleet_cmd(struct mf_runtime *rt, int argc, const char **argv, const size_t *lens)
{
	struct rds *pool = cache_redis(lk_cache(mf_runtime_lookup(rt)));

	return pool ? rds_argv(pool, INT64_MAX, argc, argv, lens) : NULL;
}

static redisReply *mf_fleet_cmdv(struct mf_runtime *rt, int argc, const char **argv)
{
	size_t lens[8];
	int i;

	for (i = 0; i < argc && i < 8; i++)
		lens[i] = strlen(argv[i]);
	return mf_fleet_cmd(rt, argc, argv, lens);
}

static const char *mf_fleet_prefix(const struct mf_runtime *rt)
{
	const char *p = mf_runtime_conf(rt)->cache_prefix;

	return p && *p ? p : "stripe-milter";
}

/* ---- collecting ------------------------------------------------------------------------- */

static void mf_pub_add(struct mf_pub *p, const char *name, uint64_t v)
{
	if (p->n == MF_PUB_MAX) {
		sm_log_once(&mf_fl_log_full, LOG_WARNING, "stats: more than %d fields; dropping %s and later ones",
		    MF_PUB_MAX, name);
		return;
	}
	sm_strlcpy(p->f[p->n].name, name, sizeof(p->f[p->n].name));
	snprintf(p->f[p->n].val, sizeof(p->f[p->n].val), "%llu", (unsigned long long)v);
	p->f[p->n].v = v;
	p->n++;
}

/* Adds "<prefix><word>". */
static void mf_pub_addf(struct mf_pub *p, uint64_t v, const char *prefix, const char *word)
{
	char name[64];

	snprintf(name, sizeof(name), "%s%s", prefix, word);
	mf_pub_add(p, name, v);
}

void mf_fleet_rejected_name(int ep, int st, char *buf, size_t len)
{
	const char *e = stripe_endpoint_name((enum stripe_endpoint)ep);
	size_t n;

	if (strncmp(e, "/v1/", 4) == 0)
		e += 4;
	snprintf(buf, len, "stripe_rej_%s_%s", e, stripe_rejected_name((enum stripe_rejected)st));
	for (n = 0; buf[n] != '\0'; n++)
		if (buf[n] == '/')
			buf[n] = '_';
}

void mf_fleet_bucket_name(const char *prefix, int i, char *buf, size_t len)
{
	if (i >= STRIPE_LATENCY_BUCKETS - 1)
		snprintf(buf, len, "%s_le_inf", prefix);
	else
		snprintf(buf, len, "%s_le_%lld", prefix, (long long)stripe_latency_bounds_ms[i]);
}

static void mf_pub_cache(struct mf_pub *p, struct cache *c)
{
	struct cache_counters k;
	uint64_t errs = 0;
	int i;

	cache_counters_get(c, &k);
#define MF_PUB(f) mf_pub_add(p, #f, k.f)
	MF_PUB(lookups); MF_PUB(l1_hits); MF_PUB(l2_hits); MF_PUB(misses);
	MF_PUB(negative_hits); MF_PUB(stale_served); MF_PUB(fills);
	MF_PUB(lock_waits); MF_PUB(lock_wait_hits); MF_PUB(redis_errors);
	MF_PUB(redis_reconnects); MF_PUB(l2_latency_ms_sum); MF_PUB(l2_calls);
	MF_PUB(l1_entries); MF_PUB(l1_bytes); MF_PUB(flight_joins); MF_PUB(flight_misses);
	MF_PUB(redis_skipped); MF_PUB(sentinel_discoveries);
#undef MF_PUB
	/* fill error classes are the Stripe client's */
	for (i = 1; i < STRIPE_E__COUNT && i < CACHE_ERRCLASS_MAX; i++) {
		errs += k.fill_errors[i];
		mf_pub_addf(p, k.fill_errors[i], "fill_errors_", stripe_errclass_name((enum stripe_errclass)i));
	}
	mf_pub_add(p, "fill_errors", errs);
}

static void mf_pub_results(struct mf_pub *p)
{
	struct lk_counters lc;
	struct mf_results r;
	char name[64];
	int i;

	lk_counters_get(&lc);
	mf_pub_add(p, "milter_wait_timeouts", lc.timed_out_waits);
	mf_pub_add(p, "milter_overloaded", lc.overloaded);
	mf_results_get(&r);
	mf_pub_add(p, "msg_found", r.found);
	mf_pub_add(p, "msg_not_found", r.not_found);
	mf_pub_add(p, "msg_guest", r.guest);
	for (i = 0; i < MF_RES_NERR; i++)
		mf_pub_addf(p, r.error[i], "msg_error_", mf_results_error_name(i));
	for (i = 0; i < MF_RES_NSKIP; i++)
		mf_pub_addf(p, r.skipped[i], "msg_skipped_", mf_results_skip_name(i));
	for (i = 0; i < MF_RES_NPERM; i++)
		mf_pub_addf(p, r.missing_perm[i], "msg_missing_", mf_results_perm_name(i));
	for (i = 0; i < MF_RES_LAT_BUCKETS; i++) {
		mf_fleet_bucket_name("msg_lat", i, name, sizeof(name));
		mf_pub_add(p, name, r.lat_hist[i]);
	}
	mf_pub_add(p, "msg_lat_sum_ms", r.lat_sum_ms);
}

/* The Stripe clients' counters summed over the accounts (the latency buckets too). */
static void mf_pub_stripe_sum(const struct mf_runtime *rt, struct stripe_stats *ss)
{
	struct stripe_stats one;
	uint64_t *dst = (uint64_t *)ss;
	const uint64_t *src = (const uint64_t *)&one;
	size_t k;
	int a;

	stripe_stats_get(lk_stripe(mf_runtime_account_lookup(rt, 0)), ss);
	for (a = 1; a < mf_runtime_accounts(rt); a++) {
		stripe_stats_get(lk_stripe(mf_runtime_account_lookup(rt, a)), &one);
		/* every field but search_off is a uint64_t counter, in order */
		for (k = 0; k < offsetof(struct stripe_stats, search_off) / sizeof(uint64_t); k++)
			dst[k] += src[k];
		ss->search_off = ss->search_off || one.search_off;
		ss->search_backoffs += one.search_backoffs;
		for (k = 0; k < (size_t)STRIPE_EP__COUNT * STRIPE_REJ__COUNT; k++)
			ss->rejected[k / STRIPE_REJ__COUNT][k % STRIPE_REJ__COUNT] +=
			    one.rejected[k / STRIPE_REJ__COUNT][k % STRIPE_REJ__COUNT];
	}
}

static void mf_pub_stripe(struct mf_pub *p, const struct mf_runtime *rt)
{
	struct stripe_stats ss;
	char name[64];
	int i;

	mf_pub_stripe_sum(rt, &ss);
	for (i = 0; i < STRIPE_OUT__COUNT; i++)
		mf_pub_addf(p, ss.requests[i], "stripe_req_", stripe_outcome_name((enum stripe_outcome)i));
	for (i = 0; i < STRIPE_LATENCY_BUCKETS; i++) {
		mf_fleet_bucket_name("stripe_lat", i, name, sizeof(name));
		mf_pub_add(p, name, ss.latency_hist[i]);
	}
	mf_pub_add(p, "stripe_lat_sum_ms", ss.latency_sum_ms);
	mf_pub_add(p, "stripe_lookups", ss.lookups);
	mf_pub_add(p, "stripe_search_backoffs", ss.search_backoffs);
	for (i = 0; i < STRIPE_EP__COUNT * STRIPE_REJ__COUNT; i++) {
		uint64_t v = ss.rejected[i / STRIPE_REJ__COUNT][i % STRIPE_REJ__COUNT];

		if (v == 0)
			continue;	/* absent reads as 0: publish what happened only */
		mf_fleet_rejected_name(i / STRIPE_REJ__COUNT, i % STRIPE_REJ__COUNT, name, sizeof(name));
		mf_pub_add(p, name, v);
	}
}

/* fleet/'s counters (events, poller, budget, breaker) as "fleet_*" fields; the listeners'. */
static void mf_pub_emit(void *ctx, const char *name, uint64_t v)
{
	mf_pub_add(ctx, name, v);
}

/* fleet/'s counters of every account into one set of "fleet_*" fields: counters add up,
 * the breaker state, the poller flag and the last event's time are the largest. */
static void mf_pub_emit_sum(void *ctx, const char *name, uint64_t v)
{
	struct mf_pub *p = ctx;
	bool gauge = strcmp(name, "fleet_breaker_state") == 0 || strcmp(name, "fleet_poller_owner") == 0 ||
	    strcmp(name, "fleet_last_event_created") == 0;
	int i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->f[i].name, name) == 0) {
			p->f[i].v = gauge ? (v > p->f[i].v ? v : p->f[i].v) : p->f[i].v + v;
			snprintf(p->f[i].val, sizeof(p->f[i].val), "%llu", (unsigned long long)p->f[i].v);
			return;
		}
	mf_pub_add(p, name, v);
}

/* Each account's own figures, "acct.<name>.<field>" ('.' is never in a name; stripe-milterctl
 * stats shows them). */
static void mf_pub_accounts(struct mf_pub *p, const struct mf_runtime *rt)
{
	char name[64];
	int a, i;

	for (a = 0; a < mf_runtime_accounts(rt); a++) {
		const char *an = mf_runtime_account_name(rt, a);
		struct mf_acct_results r;
		struct stripe_stats ss;
		struct fleet_counters fc;
		uint64_t err = 0, req = 0;

		mf_results_account_get(an, &r);
		stripe_stats_get(lk_stripe(mf_runtime_account_lookup(rt, a)), &ss);
		for (i = 0; i < MF_RES_NERR; i++)
			err += r.error[i];
		for (i = 0; i < STRIPE_OUT__COUNT; i++)
			req += ss.requests[i];
#define MF_PUB_A(field, v) do { snprintf(name, sizeof(name), "acct.%s.%s", an, field); mf_pub_add(p, name, v); } while (0)
		MF_PUB_A("found", r.found);
		MF_PUB_A("not_found", r.not_found);
		MF_PUB_A("guest", r.guest);
		MF_PUB_A("error", err);
		MF_PUB_A("requests", req);
		MF_PUB_A("req_429", ss.requests[STRIPE_OUT_429]);
		if (mf_runtime_account_fleet(rt, a)) {
			fleet_counters_get(mf_runtime_account_fleet(rt, a), &fc);
			MF_PUB_A("budget_denied", fc.budget_denied);
			MF_PUB_A("breaker_opened", fc.breaker_opened);
		}
#undef MF_PUB_A
	}
}

static void mf_fleet_instance_name(const struct mf_runtime *rt, char *buf, size_t len)
{
	char host[64];

	if (mf_runtime_conf(rt)->instance_name && mf_runtime_conf(rt)->instance_name[0]) {
		sm_strlcpy(buf, mf_runtime_conf(rt)->instance_name, len);
		return;
	}
	if (gethostname(host, sizeof(host)) != 0)
		sm_strlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, len, "%s:%ld", host, (long)getpid());
}

/* ---- publishing ------------------------------------------------------------------------- */

/* Every field of a publication, in a new struct the caller frees; NULL out of memory. */
static struct mf_pub *mf_fleet_gather(struct mf_runtime *rt, bool stopped)
{
	struct mf_pub *p = calloc(1, sizeof(*p));
	int i;

	if (p == NULL)
		return NULL;
	mf_pub_cache(p, lk_cache(mf_runtime_lookup(rt)));
	mf_pub_results(p);
	mf_pub_stripe(p, rt);
	for (i = 0; i < mf_runtime_accounts(rt); i++)
		if (mf_runtime_account_fleet(rt, i))
			fleet_emit(mf_runtime_account_fleet(rt, i), mf_pub_emit_sum, p);
	mf_pub_accounts(p, rt);
	mf_stats_emit_listeners(mf_pub_emit, p);
	mf_pub_add(p, "interval_s", (uint64_t)mf_runtime_conf(rt)->stats_interval_s);
	mf_pub_add(p, "started_ms", (uint64_t)(mf_fl_started_ms > 0 ? mf_fl_started_ms : sm_wall_ms()));
	mf_pub_add(p, "stopped", stopped ? 1 : 0);
	mf_pub_add(p, "ts", (uint64_t)sm_wall_ms());
	return p;
}

int mf_fleet_collect(struct mf_runtime *rt, bool stopped, struct mf_fleet_instance *out)
{
	struct mf_pub *p;
	int i, rc = -1;

	memset(out, 0, sizeof(*out));
	out->interval_s = 10;
	if (rt == NULL || (p = mf_fleet_gather(rt, stopped)) == NULL)
		return -1;
	mf_fleet_instance_name(rt, out->name, sizeof(out->name));
	for (i = 0; i < p->n; i++)
		if (mf_fleet_add(out, p->f[i].name, p->f[i].v) != 0)
			goto out;
	rc = 0;
out:
	free(p);
	return rc;
}

int mf_fleet_publish(struct mf_runtime *rt, bool stopped)
{
	const char *argv[2 + 2 * MF_PUB_MAX];
	size_t lens[2 + 2 * MF_PUB_MAX];
	char key[CACHE_KEY_MAX], inst[128], ttl[24];
	struct mf_pub *p = NULL;
	redisReply *r = NULL;
	int i, argc = 0, rc = -1;
	long keep;

	if (rt == NULL || (p = mf_fleet_gather(rt, stopped)) == NULL)
		return -1;
	mf_fleet_instance_name(rt, inst, sizeof(inst));
	snprintf(key, sizeof(key), "%s:stats:%s", mf_fleet_prefix(rt), inst);
	argv[argc++] = "HSET";
	argv[argc++] = key;
	for (i = 0; i < p->n; i++) {
		argv[argc++] = p->f[i].name;
		argv[argc++] = p->f[i].val;
	}
	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	if ((r = mf_fleet_cmd(rt, argc, argv, lens)) == NULL)
		goto out;
	freeReplyObject(r);
	/* live: until 3 intervals have passed without a publication; stopped: just the retention */
	keep = stopped ? 0 : 3 * mf_runtime_conf(rt)->stats_interval_s;
	snprintf(ttl, sizeof(ttl), "%ld", keep > MF_FLEET_RETAIN_S ? keep : (long)MF_FLEET_RETAIN_S);
	if ((r = mf_fleet_cmdv(rt, 3, (const char *[]){ "EXPIRE", key, ttl })) == NULL)
		goto out;
	freeReplyObject(r);
	rc = 0;
out:
	free(p);
	return rc;
}

/* One publication by the thread, with failure logging (once per streak). */
static void mf_fleet_tick(void)
{
	struct mf_runtime *rt = mf_runtime_get();
	bool has_redis;

	if (rt == NULL)
		return;
	mf_stats_snapshot_write(rt, false);	/* local, cheap: before Redis, which may be slow */
	has_redis = mf_runtime_conf(rt)->redis_host || mf_runtime_conf(rt)->redis_socket || mf_runtime_conf(rt)->redis_sentinels;
	if (has_redis && mf_fleet_publish(rt, false) != 0) {
		if (!mf_fl_failing)
			sm_log(LOG_WARNING, "stats: cannot publish to Redis; `stripe-milterctl stats` will show "
			    "this instance stale");
		mf_fl_failing = true;
	} else if (has_redis && mf_fl_failing) {
		sm_log(LOG_NOTICE, "stats: publishing to Redis again");
		mf_fl_failing = false;
	}
	mf_runtime_put(rt);	/* may free the snapshot and its cache: we own neither */
}

static long mf_fleet_interval(void)
{
	struct mf_runtime *rt = mf_runtime_get();
	long s = rt ? mf_runtime_conf(rt)->stats_interval_s : 10;

	mf_runtime_put(rt);
	return s > 0 ? s : 10;
}

static void *mf_fleet_main(void *arg)
{
	(void)arg;
	mf_fleet_tick();	/* visible at once, not one interval later */
	pthread_mutex_lock(&mf_fl_mu);
	while (!mf_fl_stop) {
		int64_t next;
		struct timespec ts;

		pthread_mutex_unlock(&mf_fl_mu);
		next = sm_now_ms() + mf_fleet_interval() * 1000;
		pthread_mutex_lock(&mf_fl_mu);
		ts.tv_sec = (time_t)(next / 1000);
		ts.tv_nsec = (long)(next % 1000) * 1000000L;
		while (!mf_fl_stop && sm_now_ms() < next)
			pthread_cond_timedwait(&mf_fl_cv, &mf_fl_mu, &ts);
		if (mf_fl_stop)
			break;
		pthread_mutex_unlock(&mf_fl_mu);
		mf_fleet_tick();
		pthread_mutex_lock(&mf_fl_mu);
	}
	pthread_mutex_unlock(&mf_fl_mu);
	return NULL;
}

int mf_fleet_start(void)
{
	pthread_condattr_t ca;

	if (mf_fl_running)
		return 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);	/* sm_now_ms() is monotonic */
	pthread_cond_init(&mf_fl_cv, &ca);
	pthread_condattr_destroy(&ca);
	mf_fl_started_ms = sm_wall_ms();
	mf_fl_stop = false;
	/* the caller (main) has blocked the daemon's signals: the thread inherits the mask */
	if (pthread_create(&mf_fl_thread, NULL, mf_fleet_main, NULL) != 0)
		return -1;
	mf_fl_running = true;
	return 0;
}

void mf_fleet_stop(void)
{
	struct mf_runtime *rt;

	if (!mf_fl_running)
		return;
	pthread_mutex_lock(&mf_fl_mu);
	mf_fl_stop = true;
	pthread_cond_broadcast(&mf_fl_cv);
	pthread_mutex_unlock(&mf_fl_mu);
	pthread_join(mf_fl_thread, NULL);
	mf_fl_running = false;
	pthread_cond_destroy(&mf_fl_cv);
	rt = mf_runtime_get();
	if (rt && (mf_runtime_conf(rt)->redis_host || mf_runtime_conf(rt)->redis_socket || mf_runtime_conf(rt)->redis_sentinels)) {
		if (mf_fleet_publish(rt, true) == 0)
			sm_log(LOG_INFO, "stats: final snapshot published");
		else
			sm_log(LOG_WARNING, "stats: cannot publish the final snapshot to Redis");
	}
	if (rt)
		mf_stats_snapshot_write(rt, true);	/* the local final snapshot; lets go of the file */
	mf_runtime_put(rt);
}

/* ---- reading ---------------------------------------------------------------------------- */

static int mf_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

int mf_fleet_add(struct mf_fleet_instance *in, const char *name, uint64_t v)
{
	struct mf_fleet_field *na;

	/* grows by doubling: nfields is a power of two exactly when the array is full */
	if (in->nfields == 0 || (in->nfields >= 16 && (in->nfields & (in->nfields - 1)) == 0)) {
		na = realloc(in->fields, (in->nfields < 16 ? 16 : 2 * in->nfields) * sizeof(*na));
		if (na == NULL)
			return -1;
		in->fields = na;
	}
	if (strcmp(name, "ts") == 0)
		in->ts_ms = (int64_t)v;
	else if (strcmp(name, "started_ms") == 0)
		in->started_ms = (int64_t)v;
	else if (strcmp(name, "interval_s") == 0 && v > 0 && v <= 86400)
		in->interval_s = (long)v;
	else if (strcmp(name, "stopped") == 0)
		in->stopped = v != 0;
	sm_strlcpy(in->fields[in->nfields].name, name, sizeof(in->fields[0].name));
	in->fields[in->nfields++].value = v;
	return 0;
}

uint64_t mf_fleet_get(const struct mf_fleet_instance *in, const char *name)
{
	size_t i;

	for (i = 0; i < in->nfields; i++)
		if (strcmp(in->fields[i].name, name) == 0)
			return in->fields[i].value;
	return 0;
}

/* HGETALL one hash into a new instance of f. */
static int mf_fleet_one(struct mf_runtime *rt, struct mf_fleet *f, const char *key, size_t skip)
{
	struct mf_fleet_instance *in, *na;
	redisReply *r;
	size_t i;
	int rc = -1;

	r = mf_fleet_cmdv(rt, 2, (const char *[]){ "HGETALL", key });
	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		rc = 0;		/* expired between SCAN and HGETALL */
		goto out;
	}
	na = realloc(f->in, (f->n + 1) * sizeof(*na));
	if (na == NULL)
		goto out;
	f->in = na;
	in = &na[f->n++];
	memset(in, 0, sizeof(*in));
	in->interval_s = 10;
	sm_strlcpy(in->name, key + skip, sizeof(in->name));
	for (i = 0; i + 1 < r->elements; i += 2) {
		const char *name = r->element[i]->str, *val = r->element[i + 1]->str;
		uint64_t v;

		if (name == NULL || mf_parse_u64(val, &v) != 0)
			continue;
		if (mf_fleet_add(in, name, v) != 0)
			goto out;
	}
	rc = 0;
out:
	freeReplyObject(r);
	return rc;
}

static int mf_fleet_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mf_fleet_instance *)a)->name, ((const struct mf_fleet_instance *)b)->name);
}

int mf_fleet_read(struct mf_runtime *rt, struct mf_fleet *out)
{
	char esc[160], pat[200], cursor[32] = "0";
	const char *prefix = mf_fleet_prefix(rt);
	redisReply *r = NULL;
	size_t i, j, skip = strlen(prefix) + strlen(":stats:");
	int rc = -1;

	memset(out, 0, sizeof(*out));
	/* glob-escape the prefix for SCAN MATCH */
	for (i = 0, j = 0; prefix[i] && j + 3 < sizeof(esc); i++) {
		if (strchr("*?[]\\", prefix[i]))
			esc[j++] = '\\';
		esc[j++] = prefix[i];
	}
	if (prefix[i])
		return -1;
	esc[j] = '\0';
	snprintf(pat, sizeof(pat), "%s:stats:*", esc);
	do {
		r = mf_fleet_cmdv(rt, 6, (const char *[]){ "SCAN", cursor, "MATCH", pat, "COUNT", "200" });
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
			goto out;
		sm_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		for (i = 0; i < r->element[1]->elements && out->n < MF_FLEET_MAX; i++) {
			const redisReply *k = r->element[1]->element[i];

			if (k->type == REDIS_REPLY_STRING && k->len > skip && mf_fleet_one(rt, out, k->str, skip) != 0)
				goto out;
		}
		freeReplyObject(r);
		r = NULL;
	} while (strcmp(cursor, "0") != 0 && out->n < MF_FLEET_MAX);
	if (out->n > 1)
		qsort(out->in, out->n, sizeof(*out->in), mf_fleet_cmp);
	rc = 0;
out:
	if (r)
		freeReplyObject(r);
	if (rc != 0)
		mf_fleet_free(out);
	return rc;
}

void mf_fleet_free(struct mf_fleet *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++)
		free(f->in[i].fields);
	free(f->in);
	memset(f, 0, sizeof(*f));
}

enum mf_fleet_state mf_fleet_state(const struct mf_fleet_instance *in, int64_t now_ms)
{
	if (in->stopped)
		return MF_FLEET_STOPPED;
	if (in->dead || in->ts_ms <= 0 || now_ms - in->ts_ms > 2000 * (int64_t)in->interval_s + 2000)
		return MF_FLEET_STALE;
	return MF_FLEET_LIVE;
}

const char *mf_fleet_state_name(enum mf_fleet_state s)
{
	switch (s) {
	case MF_FLEET_LIVE: return "live";
	case MF_FLEET_STALE: return "stale";
	case MF_FLEET_STOPPED: return "stopped";
	}
	return "unknown";
}
