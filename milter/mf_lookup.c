/*
 * mf_lookup.c - the lookup worker pool and one lookup's flow. See mf_lookup.h.
 *
 * A job is shared by the message that started it and the worker that runs it: each holds
 * a reference and the last one frees it, so a message that stops waiting (deadline, abort,
 * closed connection) never frees memory a worker still writes to.
 *
 * One lookup: cache key from the lowercased address -> cache_get_or_fill(), whose fill
 * calls stripe_lookup() and stores the encoded summary (positive when a customer matched,
 * negative when none did). Stripe's temporary errors let the cache serve a stale entry.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "milter/mf_lookup.h"

struct mf_job {
	pthread_mutex_t j_lock;
	pthread_cond_t j_cond;
	int j_refs;
	bool j_done;
	struct mf_runtime *j_rt;
	char j_addr[320];
	int64_t j_started;
	struct mf_lookup_result j_res;
	struct mf_job *j_next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mf_job *head, *tail;
	int queued, queue_max, nthreads;
	bool stopping;
	pthread_t *threads;
} mf_pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0, false, NULL };

static struct mf_lookup_counters mf_lk_counters;

#define MF_COUNT(f) __atomic_add_fetch(&mf_lk_counters.f, 1, __ATOMIC_RELAXED)

/* What the fill callback needs and what it reports back. */
struct mf_fill_ctx {
	struct mf_runtime *rt;
	const char *addr;
	struct stripe_result sres;
	bool called;
};

static void mf_fill(void *arg, int64_t deadline_ms, struct cache_fill_out *out)
{
	struct mf_fill_ctx *f = arg;
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
	e = stripe_lookup(f->rt->rt_stripe, f->addr, deadline_ms, s, &f->sres);
	if (e != STRIPE_OK) {
		out->errclass = (int)e;
		out->temporary = stripe_errclass_temporary(e);
		goto out;
	}
	if (stripe_summary_encode(s, &buf, &len) != 0) {
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
static const char *mf_fill_error(const struct cache_value *v)
{
	if (v->fill_errclass == 0)
		return v->deadline_passed ? "timeout" : "internal";
	return stripe_errclass_name((enum stripe_errclass)v->fill_errclass);
}

/* One pass through the cache. Returns 1 when the cached bytes could not be read (they are
 * purged, and the caller may try once more, which fills from Stripe), else 0. */
static int mf_lookup_pass(struct mf_runtime *rt, const char *key, struct mf_fill_ctx *f,
    int64_t deadline_ms, struct mf_lookup_result *res)
{
	struct cache_value v;
	char why[128];
	int again = 0;

	memset(&v, 0, sizeof(v));
	res->lr_state = MF_LK_ERROR;
	if (cache_get_or_fill(rt->rt_cache, key, mf_fill, f, deadline_ms, &v) != 0) {
		res->lr_error = mf_fill_error(&v);
		goto out;
	}
	res->lr_source = v.source;
	res->lr_fetched_at_ms = v.fetched_at_ms;
	res->lr_stale = v.stale;
	if (v.stale)
		res->lr_error = mf_fill_error(&v);
	if (v.data == NULL || v.len == 0) {
		res->lr_state = MF_LK_NOT_FOUND;
		goto out;
	}
	if (stripe_summary_decode((const char *)v.data, v.len, &res->lr_summary, why, sizeof(why)) != 0) {
		/* Written by another version, or garbage in Redis: drop it and ask again. */
		sm_log(LOG_WARNING, "cache entry %s unreadable (%s): purged", key, why);
		cache_purge(rt->rt_cache, key);
		res->lr_error = "malformed";
		again = v.source != CACHE_SRC_FILL;
		goto out;
	}
	res->lr_state = res->lr_summary.found ? MF_LK_FOUND : MF_LK_NOT_FOUND;
out:
	cache_value_free(&v);
	return again;
}

static void mf_lookup_run(struct mf_runtime *rt, const char *addr, int64_t deadline_ms,
    struct mf_lookup_result *res)
{
	struct mf_fill_ctx f;
	char key[CACHE_KEY_MAX];
	int64_t t0 = sm_now_ms();

	memset(res, 0, sizeof(*res));
	memset(&f, 0, sizeof(f));
	f.rt = rt;
	f.addr = addr;
	if (cache_key(rt->rt_cache, rt->rt_mode, rt->rt_account, addr, key, sizeof(key)) != 0) {
		res->lr_state = MF_LK_ERROR;
		res->lr_error = "internal";
	} else if (mf_lookup_pass(rt, key, &f, deadline_ms, res) != 0) {
		memset(res, 0, sizeof(*res));
		mf_lookup_pass(rt, key, &f, deadline_ms, res);
	}
	if (f.called && f.sres.err != STRIPE_OK) {
		sm_strlcpy(res->lr_request_id, f.sres.request_id, sizeof(res->lr_request_id));
		sm_strlcpy(res->lr_error_message, f.sres.message, sizeof(res->lr_error_message));
	}
	res->lr_latency_ms = sm_now_ms() - t0;
}

static void mf_job_put(struct mf_job *j)
{
	if (__atomic_sub_fetch(&j->j_refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	mf_runtime_put(j->j_rt);
	pthread_mutex_destroy(&j->j_lock);
	pthread_cond_destroy(&j->j_cond);
	free(j);
}

static void mf_job_finish(struct mf_job *j)
{
	switch (j->j_res.lr_state) {
	case MF_LK_FOUND: MF_COUNT(found); break;
	case MF_LK_NOT_FOUND: MF_COUNT(not_found); break;
	default: MF_COUNT(errors); break;
	}
	if (j->j_res.lr_stale)
		MF_COUNT(stale);
	pthread_mutex_lock(&j->j_lock);
	j->j_done = true;
	pthread_cond_broadcast(&j->j_cond);
	pthread_mutex_unlock(&j->j_lock);
}

static void *mf_worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct mf_job *j;

		pthread_mutex_lock(&mf_pool.lock);
		while (mf_pool.head == NULL && !mf_pool.stopping)
			pthread_cond_wait(&mf_pool.cond, &mf_pool.lock);
		j = mf_pool.head;
		if (j == NULL) {
			pthread_mutex_unlock(&mf_pool.lock);
			return NULL;
		}
		mf_pool.head = j->j_next;
		if (mf_pool.head == NULL)
			mf_pool.tail = NULL;
		mf_pool.queued--;
		pthread_mutex_unlock(&mf_pool.lock);
		__atomic_add_fetch(&mf_lk_counters.running, 1, __ATOMIC_RELAXED);
		mf_lookup_run(j->j_rt, j->j_addr, j->j_started + j->j_rt->rt_conf->stripe_timeout_ms, &j->j_res);
		__atomic_sub_fetch(&mf_lk_counters.running, 1, __ATOMIC_RELAXED);
		mf_job_finish(j);
		mf_job_put(j);
	}
}

int mf_lookup_pool_start(int threads, int queue_max)
{
	int i;

	mf_pool.threads = calloc((size_t)threads, sizeof(pthread_t));
	if (mf_pool.threads == NULL)
		return -1;
	mf_pool.queue_max = queue_max;
	mf_pool.stopping = false;
	for (i = 0; i < threads; i++) {
		if (pthread_create(&mf_pool.threads[i], NULL, mf_worker, NULL) != 0) {
			sm_log(LOG_ERR, "cannot start lookup thread: %s", strerror(errno));
			break;
		}
		mf_pool.nthreads++;
	}
	return mf_pool.nthreads > 0 ? 0 : -1;
}

void mf_lookup_pool_stop(void)
{
	int i;

	pthread_mutex_lock(&mf_pool.lock);
	mf_pool.stopping = true;
	pthread_cond_broadcast(&mf_pool.cond);
	pthread_mutex_unlock(&mf_pool.lock);
	/* Workers finish the job in hand (bounded by StripeTimeout) and drain the queue. */
	for (i = 0; i < mf_pool.nthreads; i++)
		pthread_join(mf_pool.threads[i], NULL);
	free(mf_pool.threads);
	mf_pool.threads = NULL;
	mf_pool.nthreads = 0;
}

struct mf_job *mf_lookup_start(struct mf_runtime *rt, const char *addr)
{
	struct mf_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	pthread_mutex_init(&j->j_lock, NULL);
	pthread_cond_init(&j->j_cond, NULL);
	__atomic_add_fetch(&rt->rt_refs, 1, __ATOMIC_ACQ_REL);
	j->j_rt = rt;
	j->j_refs = 2;
	j->j_started = sm_now_ms();
	sm_strlcpy(j->j_addr, addr, sizeof(j->j_addr));
	MF_COUNT(started);
	pthread_mutex_lock(&mf_pool.lock);
	if (mf_pool.stopping || mf_pool.nthreads == 0 || mf_pool.queued >= mf_pool.queue_max) {
		pthread_mutex_unlock(&mf_pool.lock);
		MF_COUNT(overloaded);
		j->j_res.lr_state = MF_LK_ERROR;
		j->j_res.lr_error = "overloaded";
		mf_job_finish(j);
		mf_job_put(j);
		return j;
	}
	if (mf_pool.tail)
		mf_pool.tail->j_next = j;
	else
		mf_pool.head = j;
	mf_pool.tail = j;
	mf_pool.queued++;
	pthread_cond_signal(&mf_pool.cond);
	pthread_mutex_unlock(&mf_pool.lock);
	return j;
}

bool mf_lookup_wait(struct mf_job *j, int64_t deadline_ms)
{
	struct timespec ts;
	bool done;

	pthread_mutex_lock(&j->j_lock);
	while (!j->j_done) {
		int64_t left = sm_ms_left(deadline_ms), rc;

		if (left <= 0)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		rc = pthread_cond_timedwait(&j->j_cond, &j->j_lock, &ts);
		(void)rc;
	}
	done = j->j_done;
	pthread_mutex_unlock(&j->j_lock);
	return done;
}

const struct mf_lookup_result *mf_lookup_result(const struct mf_job *j)
{
	return &j->j_res;
}

const char *mf_lookup_addr(const struct mf_job *j)
{
	return j->j_addr;
}

int64_t mf_lookup_started(const struct mf_job *j)
{
	return j->j_started;
}

void mf_lookup_release(struct mf_job *j)
{
	if (j)
		mf_job_put(j);
}

const struct stripe_summary *mf_lookup_info_fill(const struct mf_lookup_result *res,
    struct mf_lookup_info *li)
{
	li->state = res->lr_state;
	li->error_class = res->lr_error;
	li->stale = res->lr_stale;
	li->cache = res->lr_stale ? "stale" : res->lr_source == CACHE_SRC_FILL ? "miss" : "hit";
	li->age_s = res->lr_fetched_at_ms > 0 ? (long)((sm_wall_ms() - res->lr_fetched_at_ms) / 1000) : 0;
	if (li->age_s < 0)
		li->age_s = 0;
	return res->lr_state == MF_LK_FOUND ? &res->lr_summary : NULL;
}

void mf_lookup_sync(struct mf_runtime *rt, const char *addr, int64_t deadline_ms,
    struct mf_lookup_result *res)
{
	mf_lookup_run(rt, addr, deadline_ms, res);
}

void mf_lookup_counters_get(struct mf_lookup_counters *out)
{
	out->started = __atomic_load_n(&mf_lk_counters.started, __ATOMIC_RELAXED);
	out->found = __atomic_load_n(&mf_lk_counters.found, __ATOMIC_RELAXED);
	out->not_found = __atomic_load_n(&mf_lk_counters.not_found, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&mf_lk_counters.errors, __ATOMIC_RELAXED);
	out->stale = __atomic_load_n(&mf_lk_counters.stale, __ATOMIC_RELAXED);
	out->overloaded = __atomic_load_n(&mf_lk_counters.overloaded, __ATOMIC_RELAXED);
	out->timed_out_waits = __atomic_load_n(&mf_lk_counters.timed_out_waits, __ATOMIC_RELAXED);
	pthread_mutex_lock(&mf_pool.lock);
	out->queued = (uint64_t)mf_pool.queued;
	pthread_mutex_unlock(&mf_pool.lock);
	out->running = __atomic_load_n(&mf_lk_counters.running, __ATOMIC_RELAXED);
}

void mf_lookup_count_timeout(void)
{
	MF_COUNT(timed_out_waits);
}
