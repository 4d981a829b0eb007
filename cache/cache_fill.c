/*
 * cache_fill.c - the lookup path: L1 -> Redis -> single-flight fill, stale-on-error.
 *
 * Interface (cache.h): cache_get_or_fill(), cache_get_l1(), cache_value_free(), cache_put().
 *
 * A lookup that L1 cannot answer joins the key's "flight": the first caller (the leader)
 * reads Redis and, on a miss, fills; callers arriving meanwhile wait on a condition
 * variable for the leader's result, each up to its own deadline. Across processes the
 * leader takes "<key>:lock" with SET NX PX and a random token, for as long as its fill
 * may run (its deadline, plus a second; at least lock_ttl_ms); when another instance
 * holds it, the leader polls the key (10 ms doubling to 100 ms) until its own deadline,
 * taking the lock itself if it is freed or expires (its holder died); whoever gets the
 * lock reads the key once more before filling (the previous holder may have stored it
 * just before letting go). A waiter whose
 * deadline passes gives up without filling (deadline_passed: the message says
 * error=timeout or gets stale data) and leaves the one fill in flight to land for the
 * next message: one fill per key across the fleet, whatever the rate budget, the
 * concurrency or the number of instances. Only when Redis fails does a leader fill
 * without the lock. The lock is released with a compare-and-delete script, so a lock
 * that expired and was taken by someone else is left alone.
 *
 * A fill that fails with a temporary error serves the newest stale copy (L1 or Redis)
 * still within grace, marked stale. Entries expire absolutely: Redis gets SET PX of
 * (fetch time + ttl + grace - now), never refreshed on read.
 *
 * Memory: the value handed to the caller is malloc'd and the caller's; a flight keeps
 * its own copy for its waiters and the last one out frees it.
 *
 * Unreadable entries: bytes read from Redis pass the user's check (cache_config.check)
 *	in cache_redis_read(), before anything keeps or hands them on, so a probe, a leader
 *	and its waiters all see the same thing: a miss, filled afresh. L1 therefore only ever
 *	holds checked bytes (it is fed by fills, checked Redis reads and cache_put), and no
 *	order of readers, purges and fills can bring unreadable bytes back into it. Such an
 *	entry is deleted from Redis with a compare-and-delete (the bytes read), so a good
 *	entry another instance stored meanwhile stays.
 *
 * Diagnostics: counters (see cache.h); a corrupt Redis entry (or one fetched more than
 *	CACHE_ENTRY_FUTURE_MAX_MS in the future) is logged once and treated as a miss, so the
 *	fill overwrites it; an entry that fails the check is logged each time it is met
 *	("cache entry KEY unreadable (why): purged", LOG_WARNING; it is deleted when met).
 *
 * Purges during a fill (cache.h): the result goes to Redis by a compare-on-lock script,
 *	only while the fill's lock still holds its token (a purge deletes the lock), and to
 *	L1 only when Redis took it and no purge or clear happened in this process since the
 *	fill began (a global count, so an unrelated purge also keeps that one fill out of L1:
 *	the next lookup reads it from Redis). A Redis read keeps out of L1 the same way.
 *
 * Known limits: a waiter whose deadline is later than the leader's still gets the
 *	leader's result (it may be a deadline failure).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "common/sm_log.h"
#include "common/sm_util.h"

struct cache_flight {
	struct cache_flight *next;	/* c->flights while in the air */
	char key[CACHE_KEY_MAX];
	int refs;			/* leader + waiters; the last one frees */
	bool done;
	int rc;
	bool was_l2;			/* the result came from Redis (else a miss) */
	struct cache_value val;		/* copy for the waiters; data owned here */
};

static const char cache_unlock_lua[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";

/* KEYS: key, its lock. ARGV: the fill's lock token, the entry, PX. Stores the entry only
 * while the lock still holds the token (no purge deleted it meanwhile): 1 stored, 0 not. */
static const char cache_set_if_locked_lua[] =
    "if redis.call('get', KEYS[2]) == ARGV[1] then "
    "redis.call('set', KEYS[1], ARGV[2], 'px', ARGV[3]) return 1 else return 0 end";

/* KEYS: key. ARGV: the bytes read. Deletes the key only while it still holds them. */
static const char cache_unlink_if_lua[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('unlink', KEYS[1]) "
    "else return 0 end";

static int cache_log_corrupt;
static int cache_log_future;

void cache_value_free(struct cache_value *v)
{
	if (v == NULL)
		return;
	free(v->data);
	memset(v, 0, sizeof(*v));
}

/* Moves e's data into out (e no longer owns it). */
static void cache_value_take(struct cache_value *out, struct cache_entry *e, enum cache_source src)
{
	out->data = e->data;
	out->len = e->len;
	out->kind = e->kind;
	out->source = src;
	out->fetched_at_ms = e->fetched_ms;
	out->stale = false;
	e->data = NULL;
	e->len = 0;
}

/* Keeps the newer of two stale candidates in *stale; e is emptied. */
static void cache_keep_newer(struct cache_entry *stale, struct cache_entry *e)
{
	if (e->fetched_ms > stale->fetched_ms) {
		cache_entry_clear(stale);
		*stale = *e;
		memset(e, 0, sizeof(*e));
	}
	cache_entry_clear(e);
}

static void cache_l1_store(struct cache *c, const char *key, const struct cache_entry *e)
{
	if (c->l1)
		cache_l1_put(c->l1, key, e, sm_now_ms() + c->l1_ttl_ms);
}

/* The user's check of an entry read from Redis (raw: the bytes as stored). 0 readable;
 * -1 unreadable: logged, deleted from Redis if it still holds raw, e cleared. */
static int cache_checked(struct cache *c, const char *key, const char *raw, size_t rawlen,
    int64_t deadline_ms, struct cache_entry *e)
{
	char why[128] = "";
	redisReply *r;

	if (c->cfg.check == NULL ||
	    c->cfg.check(c->cfg.check_arg, e->data, e->len, why, sizeof(why)) == 0)
		return 0;
	sm_log(LOG_WARNING, "cache entry %s unreadable (%s): purged", key, why[0] ? why : "check failed");
	r = rds_cmd(c->rp, deadline_ms, "EVAL %s 1 %s %b", cache_unlink_if_lua, key, raw, rawlen);
	if (r)
		freeReplyObject(r);
	cache_entry_clear(e);
	return -1;
}

/* GET key: 1 fresh, 2 only within grace, 0 miss (or corrupt, or unreadable by the user's
 * check), -1 Redis failed. */
static int cache_redis_read(struct cache *c, const char *key, int64_t deadline_ms, struct cache_entry *e)
{
	redisReply *r = rds_cmd(c->rp, deadline_ms, "GET %s", key);
	int64_t now;
	int rc = 0;

	memset(e, 0, sizeof(*e));
	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_STRING)
		goto out;
	if (cache_entry_decode(r->str, r->len, e) != 0) {
		sm_log_once(&cache_log_corrupt, LOG_WARNING, "cache: Redis entry %s is not a v1 entry "
		    "(another version or program?); treated as a miss", key);
		goto out;
	}
	now = sm_wall_ms();
	if (e->fetched_ms > now + CACHE_ENTRY_FUTURE_MAX_MS) {
		sm_log_once(&cache_log_future, LOG_WARNING, "cache: Redis entry %s was fetched %lld s "
		    "in the future (a clock far ahead, or not written by stripe-milter); treated as "
		    "a miss", key, (long long)((e->fetched_ms - now) / 1000));
		cache_entry_clear(e);
		goto out;
	}
	if (cache_checked(c, key, r->str, r->len, deadline_ms, e) != 0)
		goto out;
	if (now < cache_entry_fresh_until(e))
		rc = 1;
	else if (now < cache_entry_stale_until(e))
		rc = 2;
	else
		cache_entry_clear(e);
out:
	freeReplyObject(r);
	return rc;
}

/* SET key <entry> PX <until stale grace ends>; with a lock (lockkey and token: the fill
 * held it), only while the lock still holds the token. 0 stored (or already expired),
 * 1 not stored: a purge took the lock meanwhile, -1 Redis failed. */
static int cache_redis_write(struct cache *c, const char *key, const struct cache_entry *e,
    const char *lockkey, const char *token, int64_t deadline_ms)
{
	long long px = (long long)(cache_entry_stale_until(e) - sm_wall_ms());
	unsigned char *buf;
	redisReply *r;
	size_t len;
	int rc = 0;

	if (px <= 0)
		return 0;
	buf = cache_entry_encode(e, &len);
	if (buf == NULL)
		return -1;
	if (lockkey)
		r = rds_cmd(c->rp, deadline_ms, "EVAL %s 2 %s %s %s %b %lld", cache_set_if_locked_lua,
		    key, lockkey, token, buf, len, px);
	else
		r = rds_cmd(c->rp, deadline_ms, "SET %s %b PX %lld", key, buf, len, px);
	free(buf);
	if (r == NULL)
		return -1;
	if (lockkey && r->type == REDIS_REPLY_INTEGER && r->integer == 0)
		rc = 1;
	freeReplyObject(r);
	return rc;
}

/* ---- cross-process lock ------------------------------------------------------------- */

enum cache_lock { CACHE_LOCK_NONE, CACHE_LOCK_HELD, CACHE_LOCK_BUSY };

static void cache_lock_token(char *tok, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[16];
	size_t i;

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		uint64_t x = (uint64_t)sm_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)tok;

		for (i = 0; i < sizeof(rnd); i++, x = x * 6364136223846793005ULL + 1442695040888963407ULL)
			rnd[i] = (unsigned char)(x >> 56);
	}
	for (i = 0; i < sizeof(rnd) && 2 * i + 2 < len; i++) {
		tok[2 * i] = hex[rnd[i] >> 4];
		tok[2 * i + 1] = hex[rnd[i] & 15];
	}
	tok[2 * i] = '\0';
}

static enum cache_lock cache_lock_try(struct cache *c, const char *lockkey, const char *token,
    int64_t deadline_ms)
{
	/* held while the fill may run: until the deadline (+1 s), at least lock_ttl_ms */
	long long px = deadline_ms == INT64_MAX ? c->cfg.lock_ttl_ms : sm_ms_left(deadline_ms) + 1000;
	redisReply *r;
	enum cache_lock rc = CACHE_LOCK_NONE;

	if (px < c->cfg.lock_ttl_ms)
		px = c->cfg.lock_ttl_ms;
	r = rds_cmd(c->rp, deadline_ms, "SET %s %s NX PX %lld", lockkey, token, px);

	if (r == NULL)
		return CACHE_LOCK_NONE;
	if (r->type == REDIS_REPLY_STATUS)
		rc = CACHE_LOCK_HELD;
	else if (r->type == REDIS_REPLY_NIL)
		rc = CACHE_LOCK_BUSY;
	freeReplyObject(r);
	return rc;
}

static void cache_lock_release(struct cache *c, const char *lockkey, const char *token,
    int64_t deadline_ms)
{
	redisReply *r = rds_cmd(c->rp, deadline_ms, "EVAL %s 1 %s %s", cache_unlock_lua,
	    lockkey, token);

	if (r)
		freeReplyObject(r);
}

static void cache_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Another instance fills: poll for its result until the deadline. 1 found fresh (*e),
 * 0 the lock is now ours, -1 Redis failed (fill without the lock), -2 the deadline
 * passed (do not fill: the holder's fill lands for the next lookup). */
static int cache_lock_wait(struct cache *c, const char *key, const char *lockkey, const char *token,
    int64_t deadline_ms, struct cache_entry *e)
{
	int64_t step = 10, left;

	CACHE_CTR_INC(&c->ctr, lock_waits);
	while ((left = deadline_ms - sm_now_ms()) > 0) {
		int rr;

		cache_sleep_ms(step < left ? step : left);
		step = step * 2 > 100 ? 100 : step * 2;
		if (sm_ms_left(deadline_ms) <= 0)
			break;
		rr = cache_redis_read(c, key, deadline_ms, e);
		if (rr == 1) {
			CACHE_CTR_INC(&c->ctr, lock_wait_hits);
			return 1;
		}
		cache_entry_clear(e);
		if (rr < 0)
			return -1;
		switch (cache_lock_try(c, lockkey, token, deadline_ms)) {
		case CACHE_LOCK_HELD:
			return 0;
		case CACHE_LOCK_NONE:
			return -1;
		case CACHE_LOCK_BUSY:
			break;
		}
	}
	return -2;
}

/* ---- fill and stale ----------------------------------------------------------------- */

/* Serves the stale candidate when still within grace. 0, or -1 (nothing to serve). */
static int cache_serve_stale(struct cache *c, struct cache_entry *stale, struct cache_value *out)
{
	int errclass = out->fill_errclass;
	bool dl = out->deadline_passed;

	if (stale->fetched_ms == 0 || sm_wall_ms() >= cache_entry_stale_until(stale))
		return -1;
	CACHE_CTR_INC(&c->ctr, stale_served);
	cache_value_take(out, stale, CACHE_SRC_STALE);
	out->stale = true;
	out->fill_errclass = errclass;
	out->deadline_passed = dl;
	return 0;
}

/* Stores a fill's result: Redis first (only while the fill's lock holds, when it had one),
 * then L1 unless Redis refused it or this process purged anything since purges0. */
static void cache_fill_store(struct cache *c, const char *key, const struct cache_entry *e,
    const char *lockkey, const char *token, uint64_t purges0, int64_t deadline_ms)
{
	if (c->rp && cache_redis_write(c, key, e, lockkey, token, deadline_ms) == 1) {
		CACHE_CTR_INC(&c->ctr, fills_discarded);
		sm_log(LOG_DEBUG, "cache: %s was purged while it was filled: not stored", key);
		return;
	}
	if (__atomic_load_n(&c->purges, __ATOMIC_ACQUIRE) != purges0) {
		CACHE_CTR_INC(&c->ctr, fills_discarded);
		return;
	}
	cache_l1_store(c, key, e);
}

/* Calls the fill and stores its result (cache_fill_store), or serves stale on a temporary
 * error. lockkey and token: the cross-process lock the fill holds, NULL when none. */
static int cache_do_fill(struct cache *c, const char *key, cache_fill_fn fill, void *arg,
    const char *lockkey, const char *token, int64_t deadline_ms, struct cache_entry *stale,
    struct cache_value *out)
{
	uint64_t purges0 = __atomic_load_n(&c->purges, __ATOMIC_ACQUIRE);
	struct cache_fill_out fo;
	struct cache_entry e;
	int cls;

	if (sm_ms_left(deadline_ms) <= 0) {
		out->deadline_passed = true;
		return cache_serve_stale(c, stale, out);
	}
	memset(&fo, 0, sizeof(fo));
	CACHE_CTR_INC(&c->ctr, fills);
	fill(arg, deadline_ms, &fo);
	if (fo.errclass == 0) {
		memset(&e, 0, sizeof(e));
		e.data = fo.data;	/* ownership passes to the cache */
		e.len = fo.data ? fo.len : 0;
		e.kind = fo.kind == CACHE_NEGATIVE ? CACHE_NEGATIVE : CACHE_POSITIVE;
		e.fetched_ms = sm_wall_ms();
		e.ttl_ms = (int64_t)(e.kind == CACHE_NEGATIVE ? c->cfg.ttl_negative_s : c->cfg.ttl_positive_s) * 1000;
		e.grace_ms = (int64_t)c->cfg.stale_grace_s * 1000;
		cache_fill_store(c, key, &e, lockkey, token, purges0, deadline_ms);
		cache_value_take(out, &e, CACHE_SRC_FILL);
		return 0;
	}
	free(fo.data);
	cls = fo.errclass < 0 || fo.errclass >= CACHE_ERRCLASS_MAX ? CACHE_ERRCLASS_MAX - 1 : fo.errclass;
	CACHE_CTR_INC(&c->ctr, fill_errors[cls]);
	out->fill_errclass = cls;
	return fo.temporary ? cache_serve_stale(c, stale, out) : -1;
}

/* The leader's part: Redis, the cross-process lock, the fill. *was_l2 says whether the
 * answer came from Redis (for the waiters' counters). */
static int cache_lead(struct cache *c, const char *key, cache_fill_fn fill, void *arg,
    int64_t deadline_ms, struct cache_entry *stale, struct cache_value *out, bool *was_l2)
{
	uint64_t purges0 = __atomic_load_n(&c->purges, __ATOMIC_ACQUIRE);
	char lockkey[CACHE_KEY_MAX + 8], token[40];
	struct cache_entry e;
	bool locked = false;
	int rc = -1, rr = -1;

	memset(&e, 0, sizeof(e));
	*was_l2 = false;
	snprintf(lockkey, sizeof(lockkey), "%s" CACHE_LOCK_SUFFIX, key);
	cache_lock_token(token, sizeof(token));
	if (c->rp) {
		rr = cache_redis_read(c, key, deadline_ms, &e);
		if (rr == 1)
			goto hit;
		if (rr == 2)
			cache_keep_newer(stale, &e);
	}
	if (c->rp && rr >= 0 && fill) {
		enum cache_lock lr = cache_lock_try(c, lockkey, token, deadline_ms);

		if (lr == CACHE_LOCK_BUSY) {
			int w = cache_lock_wait(c, key, lockkey, token, deadline_ms, &e);

			if (w == 1)
				goto hit;
			if (w == -2) {
				CACHE_CTR_INC(&c->ctr, misses);
				out->deadline_passed = true;
				rc = cache_serve_stale(c, stale, out);
				goto out;
			}
			locked = w == 0;
		} else {
			locked = lr == CACHE_LOCK_HELD;
		}
	}
	if (locked) {
		/* another instance may have stored it and let go of the lock between our read
		 * and our lock: read once more, so that it is never fetched twice */
		if (cache_redis_read(c, key, deadline_ms, &e) == 1)
			goto hit;
		cache_entry_clear(&e);
	}
	if (fill) {
		CACHE_CTR_INC(&c->ctr, misses);
		rc = cache_do_fill(c, key, fill, arg, locked ? lockkey : NULL, token, deadline_ms,
		    stale, out);
	}
	goto out;
hit:
	*was_l2 = true;
	if (!fill)
		CACHE_CTR_INC(&c->ctr, lookups);	/* a read-only lookup counts when it hits */
	CACHE_CTR_INC(&c->ctr, l2_hits);
	if (e.kind == CACHE_NEGATIVE)
		CACHE_CTR_INC(&c->ctr, negative_hits);
	/* what Redis held before a purge in this process since then stays out of L1 */
	if (__atomic_load_n(&c->purges, __ATOMIC_ACQUIRE) == purges0)
		cache_l1_store(c, key, &e);
	cache_value_take(out, &e, CACHE_SRC_REDIS);
	rc = 0;
out:
	if (locked)
		cache_lock_release(c, lockkey, token, deadline_ms);
	cache_entry_clear(&e);
	return rc;
}

/* ---- in-process single-flight ------------------------------------------------------- */

/* The key's flight, joined or started (*leader). NULL when out of memory: go alone. */
static struct cache_flight *cache_flight_join(struct cache *c, const char *key, bool *leader)
{
	struct cache_flight *f;

	pthread_mutex_lock(&c->flight_mu);
	for (f = c->flights; f; f = f->next)
		if (strcmp(f->key, key) == 0)
			break;
	if (f) {
		f->refs++;
		*leader = false;
	} else if ((f = calloc(1, sizeof(*f))) != NULL) {
		sm_strlcpy(f->key, key, sizeof(f->key));
		f->refs = 1;
		f->next = c->flights;
		c->flights = f;
		*leader = true;
	} else {
		*leader = true;
	}
	pthread_mutex_unlock(&c->flight_mu);
	return f;
}

/* The leader lands: the flight leaves the list (later callers start a new one) and its
 * waiters get a copy of the result. */
static void cache_flight_land(struct cache *c, struct cache_flight *f, int rc,
    const struct cache_value *out, bool was_l2)
{
	struct cache_flight **pp;

	pthread_mutex_lock(&c->flight_mu);
	for (pp = &c->flights; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	f->rc = rc;
	f->was_l2 = was_l2;
	f->val = *out;
	f->val.data = NULL;
	if (f->refs > 1 && rc == 0 && out->len > 0) {
		f->val.data = malloc(out->len);
		if (f->val.data)
			memcpy(f->val.data, out->data, out->len);
		else
			f->rc = -1;
	}
	f->done = true;
	pthread_cond_broadcast(&c->flight_cv);
	pthread_mutex_unlock(&c->flight_mu);
}

static void cache_flight_release(struct cache *c, struct cache_flight *f)
{
	bool last;

	pthread_mutex_lock(&c->flight_mu);
	last = --f->refs == 0;
	pthread_mutex_unlock(&c->flight_mu);
	if (last) {
		free(f->val.data);
		free(f);
	}
}

/* A waiter: the leader's result (copied), or at the deadline the stale candidate. */
static int cache_flight_wait(struct cache *c, struct cache_flight *f, int64_t deadline_ms,
    struct cache_entry *stale, struct cache_value *out)
{
	struct timespec ts = { (time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L };
	bool done, was_l2 = false;
	int rc = -1;

	CACHE_CTR_INC(&c->ctr, flight_joins);
	pthread_mutex_lock(&c->flight_mu);
	while (!f->done && sm_now_ms() < deadline_ms)
		pthread_cond_timedwait(&c->flight_cv, &c->flight_mu, &ts);
	done = f->done;
	if (done) {
		rc = f->rc;
		was_l2 = f->was_l2;
		*out = f->val;
		out->data = NULL;
		if (rc == 0 && f->val.len > 0) {
			out->data = malloc(f->val.len);
			if (out->data)
				memcpy(out->data, f->val.data, f->val.len);
			else
				rc = -1;
		}
	}
	pthread_mutex_unlock(&c->flight_mu);
	if (!done) {
		CACHE_CTR_INC(&c->ctr, misses);
		CACHE_CTR_INC(&c->ctr, flight_misses);
		out->deadline_passed = true;
		return cache_serve_stale(c, stale, out);
	}
	if (rc != 0) {
		free(out->data);
		out->data = NULL;
		out->len = 0;
	}
	if (was_l2) {
		CACHE_CTR_INC(&c->ctr, l2_hits);
		if (out->kind == CACHE_NEGATIVE)
			CACHE_CTR_INC(&c->ctr, negative_hits);
	} else {
		CACHE_CTR_INC(&c->ctr, misses);
		CACHE_CTR_INC(&c->ctr, flight_misses);
	}
	if (rc == 0 && out->stale)
		CACHE_CTR_INC(&c->ctr, stale_served);
	return rc;
}

/* ---- interface ---------------------------------------------------------------------- */

int cache_get_or_fill(struct cache *c, const char *key, cache_fill_fn fill, void *arg,
    int64_t deadline_ms, struct cache_value *out)
{
	struct cache_entry e, stale;
	struct cache_flight *f = NULL;
	bool leader = true, was_l2 = false;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&e, 0, sizeof(e));
	memset(&stale, 0, sizeof(stale));
	if (c == NULL || key == NULL || strlen(key) >= CACHE_KEY_MAX)
		return -1;
	if (fill)
		CACHE_CTR_INC(&c->ctr, lookups);
	if (c->l1) {
		enum cache_l1_hit h = cache_l1_get(c->l1, key, &e);

		if (h == CACHE_L1_FRESH) {
			if (!fill)
				CACHE_CTR_INC(&c->ctr, lookups);
			CACHE_CTR_INC(&c->ctr, l1_hits);
			if (e.kind == CACHE_NEGATIVE)
				CACHE_CTR_INC(&c->ctr, negative_hits);
			cache_value_take(out, &e, CACHE_SRC_L1);
			rc = 0;
			goto out;
		}
		if (h == CACHE_L1_STALE)
			cache_keep_newer(&stale, &e);
	}
	/* A read-only lookup (no fill) neither leads nor joins a flight: a filler joining
	 * its flight would get its miss instead of a fill. */
	f = fill ? cache_flight_join(c, key, &leader) : NULL;
	if (!leader) {
		rc = cache_flight_wait(c, f, deadline_ms, &stale, out);
		goto out;
	}
	rc = cache_lead(c, key, fill, arg, deadline_ms, &stale, out, &was_l2);
	if (f)
		cache_flight_land(c, f, rc, out, was_l2);
out:
	if (f)
		cache_flight_release(c, f);
	cache_entry_clear(&e);
	cache_entry_clear(&stale);
	return rc;
}

int cache_get_l1(struct cache *c, const char *key, struct cache_value *out)
{
	struct cache_entry e;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&e, 0, sizeof(e));
	if (c == NULL || c->l1 == NULL || key == NULL || strlen(key) >= CACHE_KEY_MAX)
		return -1;
	if (cache_l1_get(c->l1, key, &e) == CACHE_L1_FRESH) {
		CACHE_CTR_INC(&c->ctr, lookups);
		CACHE_CTR_INC(&c->ctr, l1_hits);
		if (e.kind == CACHE_NEGATIVE)
			CACHE_CTR_INC(&c->ctr, negative_hits);
		cache_value_take(out, &e, CACHE_SRC_L1);
		rc = 0;
	}
	cache_entry_clear(&e);
	return rc;
}

int cache_put(struct cache *c, const char *key, const void *data, size_t len, enum cache_kind kind)
{
	struct cache_entry e, src;
	int rc = -1;

	memset(&e, 0, sizeof(e));
	memset(&src, 0, sizeof(src));
	if (c == NULL || key == NULL || strlen(key) >= CACHE_KEY_MAX)
		return -1;
	src.data = (unsigned char *)(uintptr_t)data;
	src.len = data ? len : 0;
	if (cache_entry_copy(&e, &src) != 0)
		goto out;
	e.kind = kind == CACHE_NEGATIVE ? CACHE_NEGATIVE : CACHE_POSITIVE;
	e.fetched_ms = sm_wall_ms();
	e.ttl_ms = (int64_t)(e.kind == CACHE_NEGATIVE ? c->cfg.ttl_negative_s : c->cfg.ttl_positive_s) * 1000;
	e.grace_ms = (int64_t)c->cfg.stale_grace_s * 1000;
	cache_l1_store(c, key, &e);
	rc = c->rp ? cache_redis_write(c, key, &e, NULL, NULL, INT64_MAX) : 0;
out:
	cache_entry_clear(&e);
	return rc;
}
