/*
 * lk_pool.c - the lookup worker pool, jobs and prefetch. See lookup.h.
 *
 * Interface (lookup.h): lk_pool_start(), lk_pool_stop(), lk_start(), lk_wait(),
 *	lk_job_result(), lk_job_addr(), lk_job_started(), lk_release(), lk_prefetch(),
 *	lk_prefetch_probe(), lk_prefetch_result(), lk_prefetch_release(), lk_counters_get().
 *
 * Probes: lk_prefetch_probe() starts a job that reads L1 and Redis only. When the message
 *	then needs that address (lk_prefetch() at a From header naming it, or
 *	lk_prefetch_result() at end of message) a probe that found the address cached is the
 *	answer; otherwise a full lookup starts then. So an envelope sender the message never
 *	uses (VERP) costs no Stripe request, and one it uses starts its fill when that is
 *	known (at the From header) instead of at MAIL FROM.
 *
 * A job is shared by the message that started it and the worker that runs it: each holds
 * a reference and the last one frees it, so a message that stops waiting (deadline, abort,
 * closed connection) never frees memory a worker still writes to. A job holds a reference
 * to its lookup service, so a reload never frees the client or cache under it; it runs
 * until stripe_timeout_ms after it started.
 *
 * Fast path: lk_start() first tries lk_run_l1() on the caller's thread; a fresh L1 entry
 *	makes the job done at once (counted like any other), so cache hits neither pay for
 *	the hand-off nor queue behind lookups waiting on Stripe.
 *
 * Clocks: every wait is on CLOCK_MONOTONIC (the job's condition variable is created with
 *	it), so a wall-clock step can neither stretch nor cut a message's wait.
 *
 * Diagnostics: "cannot start lookup thread" at LOG_ERR; a full queue is counted
 *	(overloaded) and answered with error=overloaded.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "lookup/lk_int.h"

struct lk_job {
	pthread_mutex_t j_lock;
	pthread_cond_t j_cond;		/* CLOCK_MONOTONIC */
	int j_refs;
	bool j_done;
	struct lk *j_lk;
	char j_addr[LK_ADDR_MAX];
	char j_key[CACHE_KEY_MAX];	/* the address's cache key, "" when it has none */
	int64_t j_started;
	bool j_probe;			/* caches only: no Stripe request */
	struct lk_result j_res;
	struct lk_job *j_next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct lk_job *head, *tail;
	int queued, queue_max, nthreads;
	bool stopping;
	pthread_t *threads;
} lk_pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0, false, NULL };

static struct lk_counters lk_ctr;

#define LK_COUNT(f) __atomic_add_fetch(&lk_ctr.f, 1, __ATOMIC_RELAXED)

static void lk_job_put(struct lk_job *j)
{
	if (__atomic_sub_fetch(&j->j_refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	lk_put(j->j_lk);
	pthread_mutex_destroy(&j->j_lock);
	pthread_cond_destroy(&j->j_cond);
	free(j);
}

static void lk_job_finish(struct lk_job *j)
{
	/* a probe that found its address cached is that address's lookup; one that did not
	 * counts only as a probe (the lookup, if the message needs one, counts itself) */
	if (j->j_probe && j->j_res.lr_state != LK_FOUND && j->j_res.lr_state != LK_NOT_FOUND)
		goto done;
	if (j->j_probe) {
		LK_COUNT(probe_hits);
		LK_COUNT(started);
	}
	switch (j->j_res.lr_state) {
	case LK_FOUND: LK_COUNT(found); break;
	case LK_NOT_FOUND: LK_COUNT(not_found); break;
	default: LK_COUNT(errors); break;
	}
	if (j->j_res.lr_stale)
		LK_COUNT(stale);
done:
	pthread_mutex_lock(&j->j_lock);
	j->j_done = true;
	pthread_cond_broadcast(&j->j_cond);
	pthread_mutex_unlock(&j->j_lock);
}

static void *lk_worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct lk_job *j;

		pthread_mutex_lock(&lk_pool.lock);
		while (lk_pool.head == NULL && !lk_pool.stopping)
			pthread_cond_wait(&lk_pool.cond, &lk_pool.lock);
		j = lk_pool.head;
		if (j == NULL) {
			pthread_mutex_unlock(&lk_pool.lock);
			return NULL;
		}
		lk_pool.head = j->j_next;
		if (lk_pool.head == NULL)
			lk_pool.tail = NULL;
		lk_pool.queued--;
		pthread_mutex_unlock(&lk_pool.lock);
		__atomic_add_fetch(&lk_ctr.running, 1, __ATOMIC_RELAXED);
		lk_run(j->j_lk, j->j_addr, j->j_key, !j->j_probe, j->j_started + j->j_lk->stripe_timeout_ms,
		    &j->j_res);
		__atomic_sub_fetch(&lk_ctr.running, 1, __ATOMIC_RELAXED);
		lk_job_finish(j);
		lk_job_put(j);
	}
}

int lk_pool_start(int threads, int queue_max)
{
	int i;

	lk_pool.threads = calloc((size_t)threads, sizeof(pthread_t));
	if (lk_pool.threads == NULL)
		return -1;
	lk_pool.queue_max = queue_max;
	lk_pool.stopping = false;
	for (i = 0; i < threads; i++) {
		if (pthread_create(&lk_pool.threads[i], NULL, lk_worker, NULL) != 0) {
			sm_log(LOG_ERR, "cannot start lookup thread: %s", strerror(errno));
			break;
		}
		lk_pool.nthreads++;
	}
	return lk_pool.nthreads > 0 ? 0 : -1;
}

void lk_pool_stop(void)
{
	int i;

	pthread_mutex_lock(&lk_pool.lock);
	lk_pool.stopping = true;
	pthread_cond_broadcast(&lk_pool.cond);
	pthread_mutex_unlock(&lk_pool.lock);
	/* Workers finish the job in hand (bounded by StripeTimeout) and drain the queue. */
	for (i = 0; i < lk_pool.nthreads; i++)
		pthread_join(lk_pool.threads[i], NULL);
	free(lk_pool.threads);
	lk_pool.threads = NULL;
	lk_pool.nthreads = 0;
}

static struct lk_job *lk_start_job(struct lk *lk, const char *addr, bool probe)
{
	/* not calloc: j_res (~6 KB) is written whole by lk_run_l1() before anything reads it */
	struct lk_job *j = malloc(sizeof(*j));
	pthread_condattr_t ca;

	if (j == NULL)
		return NULL;
	memset(j, 0, offsetof(struct lk_job, j_res));
	j->j_next = NULL;
	pthread_mutex_init(&j->j_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->j_cond, &ca);
	pthread_condattr_destroy(&ca);
	lk_hold(lk);
	j->j_lk = lk;
	j->j_refs = 2;
	j->j_started = sm_now_ms();
	sm_strlcpy(j->j_addr, addr, sizeof(j->j_addr));
	j->j_probe = probe;
	if (probe)
		LK_COUNT(probes);
	else
		LK_COUNT(started);
	/* A fresh in-process entry is answered here: no hand-off to a worker (two context
	 * switches), and no wait behind lookups that are slow on Stripe or Redis. */
	if (lk_run_l1(lk, addr, j->j_key, &j->j_res) == 0) {
		lk_job_finish(j);
		lk_job_put(j);
		return j;
	}
	pthread_mutex_lock(&lk_pool.lock);
	if (lk_pool.stopping || lk_pool.nthreads == 0 || lk_pool.queued >= lk_pool.queue_max) {
		pthread_mutex_unlock(&lk_pool.lock);
		LK_COUNT(overloaded);
		j->j_res.lr_state = LK_ERROR;
		j->j_res.lr_error = "overloaded";
		lk_job_finish(j);
		lk_job_put(j);
		return j;
	}
	if (lk_pool.tail)
		lk_pool.tail->j_next = j;
	else
		lk_pool.head = j;
	lk_pool.tail = j;
	lk_pool.queued++;
	pthread_cond_signal(&lk_pool.cond);
	pthread_mutex_unlock(&lk_pool.lock);
	return j;
}

struct lk_job *lk_start(struct lk *lk, const char *addr)
{
	return lk_start_job(lk, addr, false);
}

bool lk_wait(struct lk_job *j, int64_t deadline_ms)
{
	struct timespec ts;
	bool done;

	/* deadline_ms is on the monotonic clock, like the condition variable */
	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
	pthread_mutex_lock(&j->j_lock);
	while (!j->j_done && sm_ms_left(deadline_ms) > 0)
		pthread_cond_timedwait(&j->j_cond, &j->j_lock, &ts);
	done = j->j_done;
	pthread_mutex_unlock(&j->j_lock);
	return done;
}

const struct lk_result *lk_job_result(const struct lk_job *j)
{
	return &j->j_res;
}

const char *lk_job_addr(const struct lk_job *j)
{
	return j->j_addr;
}

int64_t lk_job_started(const struct lk_job *j)
{
	return j->j_started;
}

void lk_release(struct lk_job *j)
{
	if (j)
		lk_job_put(j);
}

/* ---- prefetch: the jobs of one message ---- */

static struct lk_job **lk_prefetch_find(struct lk_prefetch *p, const char *addr)
{
	int i;

	for (i = 0; i < LK_PREFETCH_MAX; i++)
		if (p->pf_jobs[i] && strcmp(p->pf_jobs[i]->j_addr, addr) == 0)
			return &p->pf_jobs[i];
	return NULL;
}

/* A free slot; when none is free the last one is released and reused. */
static struct lk_job **lk_prefetch_slot(struct lk_prefetch *p)
{
	int i;

	for (i = 0; i < LK_PREFETCH_MAX; i++)
		if (p->pf_jobs[i] == NULL)
			return &p->pf_jobs[i];
	lk_release(p->pf_jobs[LK_PREFETCH_MAX - 1]);
	p->pf_jobs[LK_PREFETCH_MAX - 1] = NULL;
	return &p->pf_jobs[LK_PREFETCH_MAX - 1];
}

/* A probe that answered from a cache (found or not found): no lookup needed. */
static bool lk_probe_hit(struct lk_job *j)
{
	bool hit;

	pthread_mutex_lock(&j->j_lock);
	hit = j->j_done && (j->j_res.lr_state == LK_FOUND || j->j_res.lr_state == LK_NOT_FOUND);
	pthread_mutex_unlock(&j->j_lock);
	return hit;
}

/* The slot's probe becomes a full lookup unless it already answered from a cache. */
static void lk_upgrade(struct lk_job **slot, struct lk *lk, const char *addr)
{
	if (*slot == NULL || !(*slot)->j_probe || lk_probe_hit(*slot))
		return;
	LK_COUNT(probe_upgrades);
	lk_release(*slot);
	*slot = lk_start(lk, addr);
}

static void lk_prefetch_start(struct lk_prefetch *p, struct lk *lk, const char *addr, bool probe)
{
	struct lk_job **slot = lk_prefetch_find(p, addr);
	int i;

	if (slot != NULL) {
		if (!probe)
			lk_upgrade(slot, lk, addr);
		return;
	}
	for (i = 0; i < LK_PREFETCH_MAX; i++) {
		if (p->pf_jobs[i] == NULL) {
			p->pf_jobs[i] = lk_start_job(lk, addr, probe);
			return;
		}
	}
}

void lk_prefetch(struct lk_prefetch *p, struct lk *lk, const char *addr)
{
	lk_prefetch_start(p, lk, addr, false);
}

void lk_prefetch_probe(struct lk_prefetch *p, struct lk *lk, const char *addr)
{
	lk_prefetch_start(p, lk, addr, true);
}

const struct lk_result *lk_prefetch_result(struct lk_prefetch *p, struct lk *lk, const char *addr,
    int64_t timeout_ms, const char **why)
{
	struct lk_job **slot = lk_prefetch_find(p, addr);

	if (slot == NULL) {
		slot = lk_prefetch_slot(p);
		*slot = lk_start(lk, addr);
	} else if ((*slot)->j_probe) {
		/* the probe's answer, if it had one in the caches; else the lookup now */
		lk_wait(*slot, (*slot)->j_started + timeout_ms);
		lk_upgrade(slot, lk, addr);
	}
	if (*slot == NULL) {
		*why = "internal";
		return NULL;
	}
	if (!lk_wait(*slot, (*slot)->j_started + timeout_ms)) {
		LK_COUNT(timed_out_waits);
		*why = "timeout";
		return NULL;
	}
	return &(*slot)->j_res;
}

void lk_prefetch_release(struct lk_prefetch *p)
{
	int i;

	for (i = 0; i < LK_PREFETCH_MAX; i++) {
		lk_release(p->pf_jobs[i]);
		p->pf_jobs[i] = NULL;
	}
}

void lk_counters_get(struct lk_counters *out)
{
	out->started = __atomic_load_n(&lk_ctr.started, __ATOMIC_RELAXED);
	out->found = __atomic_load_n(&lk_ctr.found, __ATOMIC_RELAXED);
	out->not_found = __atomic_load_n(&lk_ctr.not_found, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&lk_ctr.errors, __ATOMIC_RELAXED);
	out->stale = __atomic_load_n(&lk_ctr.stale, __ATOMIC_RELAXED);
	out->overloaded = __atomic_load_n(&lk_ctr.overloaded, __ATOMIC_RELAXED);
	out->timed_out_waits = __atomic_load_n(&lk_ctr.timed_out_waits, __ATOMIC_RELAXED);
	out->probes = __atomic_load_n(&lk_ctr.probes, __ATOMIC_RELAXED);
	out->probe_hits = __atomic_load_n(&lk_ctr.probe_hits, __ATOMIC_RELAXED);
	out->probe_upgrades = __atomic_load_n(&lk_ctr.probe_upgrades, __ATOMIC_RELAXED);
	pthread_mutex_lock(&lk_pool.lock);
	out->queued = (uint64_t)lk_pool.queued;
	pthread_mutex_unlock(&lk_pool.lock);
	out->running = __atomic_load_n(&lk_ctr.running, __ATOMIC_RELAXED);
}
