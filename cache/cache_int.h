/*
 * cache_int.h - internals shared by the files of cache/; not part of the interface.
 *
 *	cache_entry.c	an entry (bytes + kind + fetch time + TTLs) and its Redis encoding.
 *	cache_l1.c	the in-process LRU.
 *	cache_core.c	cache_new/free, keys, purge, flush; the Redis pool (redis/rds.h).
 *	cache_fill.c	get-or-fill: L1 -> Redis -> single-flight fill, locks, stale; put.
 *	cache_stats.c	counters, the Redis pass-through, keyspace sampling.
 */
#ifndef CACHE_INT_H
#define CACHE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "redis/rds.h"

/* Counters: plain fields of the public struct, touched only with these. */
#define CACHE_CTR_ADD(ctr, field, n) __atomic_fetch_add(&(ctr)->field, (uint64_t)(n), __ATOMIC_RELAXED)
#define CACHE_CTR_INC(ctr, field) CACHE_CTR_ADD(ctr, field, 1)
#define CACHE_CTR_GET(ctr, field) __atomic_load_n(&(ctr)->field, __ATOMIC_RELAXED)

/* ---- cache_entry.c ------------------------------------------------------------------ */

/* One cached value. Times are wall clock (ms since the epoch) so that every host reading
 * a Redis entry agrees on its age. The holder owns data (malloc'd, NULL when len is 0). */
struct cache_entry {
	unsigned char *data;
	size_t len;
	enum cache_kind kind;
	int64_t fetched_ms;
	int64_t ttl_ms;			/* fresh until fetched_ms + ttl_ms */
	int64_t grace_ms;		/* then servable as stale for grace_ms more */
};

#define CACHE_ENTRY_HDR_LEN 24
/* How far in the future a fetch time read from Redis may be (another host's clock runs
 * ahead); an entry beyond it is refused as corrupt, so a hostile or broken writer cannot
 * pin an entry as fresh forever. */
#define CACHE_ENTRY_FUTURE_MAX_MS	(5 * 60 * 1000)

/* a + b for b >= 0, saturating at INT64_MAX (fetch times come from Redis: any value). */
static inline int64_t cache_add_sat(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static inline int64_t cache_entry_fresh_until(const struct cache_entry *e)
{
	return cache_add_sat(e->fetched_ms, e->ttl_ms);
}

static inline int64_t cache_entry_stale_until(const struct cache_entry *e)
{
	return cache_add_sat(cache_add_sat(e->fetched_ms, e->ttl_ms), e->grace_ms);
}

/* Header + bytes in one malloc'd buffer (caller frees); NULL on out of memory. */
unsigned char *cache_entry_encode(const struct cache_entry *e, size_t *outlen);
/* Parses an encoded entry; data is copied (e owns it). -1 on a bad header or no memory. */
int cache_entry_decode(const void *buf, size_t len, struct cache_entry *e);
/* Deep copy into dst (which must not own data); -1 on out of memory. */
int cache_entry_copy(struct cache_entry *dst, const struct cache_entry *src);
/* Frees data and zeroes the entry. */
void cache_entry_clear(struct cache_entry *e);

/* ---- cache_l1.c --------------------------------------------------------------------- */

struct cache_l1;
enum cache_l1_hit { CACHE_L1_MISS = 0, CACHE_L1_FRESH, CACHE_L1_STALE };

struct cache_l1 *cache_l1_new(size_t max_entries, size_t max_bytes);
void cache_l1_free(struct cache_l1 *l1);
/* FRESH: within its L1 time and its own TTL; STALE: kept as a stale candidate only (within
 * grace). Either way *out gets a copy the caller owns. MISS leaves *out zeroed. */
enum cache_l1_hit cache_l1_get(struct cache_l1 *l1, const char *key, struct cache_entry *out);
/* Stores a copy of e, fresh in L1 until l1_until_mono (sm_now_ms based) and never past
 * the entry's own TTL. -1 when it cannot be stored (too big, out of memory). */
int cache_l1_put(struct cache_l1 *l1, const char *key, const struct cache_entry *e,
    int64_t l1_until_mono);
void cache_l1_del(struct cache_l1 *l1, const char *key);
void cache_l1_clear(struct cache_l1 *l1);
void cache_l1_size(struct cache_l1 *l1, uint64_t *entries, uint64_t *bytes);

/* ---- cache_core.c / cache_stats.c ---------------------------------------------------- */

struct cache_flight;

struct cache {
	struct cache_config cfg;	/* defaults resolved; strings point at the copies below */
	char *strs[12];			/* owned copies of the config's strings */
	bool pwfile_given;
	char pwfile[512];		/* redis_password_file, read at cache_new */
	struct cache_l1 *l1;		/* NULL when L1 is off */
	struct rds *rp;			/* NULL when no Redis is configured */
	struct cache_counters ctr;	/* CACHE_CTR_* only */
	int64_t l1_ttl_ms;

	uint64_t purges;		/* atomic: purges and clears of L1 so far (a fill
					 * stores into L1 only when none happened while it ran) */
	pthread_mutex_t flight_mu;	/* guards flights */
	pthread_cond_t flight_cv;	/* broadcast when a flight lands */
	struct cache_flight *flights;
};

/* Escapes glob characters so a prefix can go into SCAN MATCH; -1 when it does not fit. */
int cache_glob_escape(const char *in, char *out, size_t outlen);

#endif
