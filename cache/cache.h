/*
 * cache.h - two-level cache of opaque bytes: in-process LRU (L1) + shared Redis (L2).
 *
 * This is the whole interface of cache/. It stores opaque byte strings by opaque keys and
 * knows nothing of Stripe or milters (lookup/ derives the keys and wraps the Stripe client
 * as the fill function). Redis connections come from redis/ (rds.h).
 *
 * Interface:
 *	cache_new(cfg) / cache_free()	L1, a pool of Redis contexts (none when no Redis is
 *		configured: the cache then runs on L1 alone), counters. The cache runs no thread
 *		of its own and calls no code of its user except the fill function.
 *	cache_key_name()	"<prefix>:v1:<name>": the name space everything cached lives in.
 *	cache_get_or_fill()	L1 -> Redis -> single-flight fill (one per key per process; a
 *		SET NX PX lock across processes), stale-on-error within the grace period.
 *	cache_purge() / cache_flush()	delete one key / everything under the prefix (SCAN);
 *		cache_local_purge() / cache_local_clear() the same in this process's L1 only.
 *	cache_counters_get()	this process's counters (the daemon publishes them);
 *		cache_keyspace() counts the entries under the prefix and samples their memory.
 *	cache_redis()		the cache's Redis pool (redis/rds.h), for other users of the
 *		same Redis (the daemon's fleet statistics).
 *
 * Thread safety: every function may be called from any thread. hiredis writes with plain
 * write(2): a process using the cache must ignore SIGPIPE (the daemon does, in main).
 *
 * TTLs are absolute from fetch time and never extended by reads: positive entries live
 * ttl_positive_s, negative ones ttl_negative_s, and either may be served as stale for a
 * further stale_grace_s when a fill fails with a temporary error.
 *
 * Failure: Redis down or slow never fails a lookup (the cache degrades to L1 + fill),
 * never blocks past command_timeout_ms per call nor past the caller's deadline, and is
 * counted. A broken Redis context is dropped and rebuilt (AUTH/SELECT resent) with backoff.
 */
#ifndef CACHE_H
#define CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_KEY_MAX		256
#define CACHE_ERRCLASS_MAX	16	/* fill error classes counted separately (opaque ints) */

struct cache_config {
	const char *prefix;		/* NULL = "stripe-milter" */
	/* L1 */
	size_t l1_max_entries;		/* 0 = 10000; L1 is off when l1_ttl_s < 0 */
	size_t l1_max_bytes;		/* 0 = 64 MiB */
	int l1_ttl_s;			/* 0 = 30 */
	/* TTLs */
	int ttl_positive_s;		/* 0 = 600 */
	int ttl_negative_s;		/* 0 = 120 */
	int stale_grace_s;		/* 0 = 3600; served only when a fill fails temporarily */
	/* Redis: none of host, unix_path, sentinels set = L1 only */
	const char *redis_host;
	int redis_port;			/* 0 = 6379 */
	const char *redis_unix;
	const char *redis_user;		/* ACL user, NULL = password-only AUTH */
	const char *redis_password;	/* NULL = no AUTH */
	int redis_db;
	int connect_timeout_ms;		/* 0 = 200 */
	int command_timeout_ms;		/* 0 = 200 */
	int pool_size;			/* 0 = 8 */
	const char *sentinels;		/* "host:port,host:port", NULL = none */
	const char *sentinel_master;	/* master name */
	const char *sentinel_password;
	/* cross-process single-flight */
	int lock_ttl_ms;		/* 0 = 5000 */
	int lock_wait_ms;		/* 0 = 1000: how long to wait for another instance's fill */
	/* added after the first cut; zero keeps the defaults */
	const char *redis_password_file; /* used when redis_password is NULL: read
					 * by common/sm_secret.h's rules */
	int reconnect_max_ms;		/* 0 = 5000: longest backoff between connect attempts */
	/* Checks the bytes of an entry read from Redis before anything uses them (L1, the
	 * caller, a flight's waiters, a stale candidate): 0 readable, else -1 with a reason in
	 * why. An entry that fails is logged ("cache entry KEY unreadable (why): purged"),
	 * deleted from Redis only while it still holds those bytes, and is a miss, so the
	 * lookup fills. Called from any thread, also for entries without bytes (len 0).
	 * NULL = every entry is readable. */
	int (*check)(void *arg, const unsigned char *data, size_t len, char *why, size_t whylen);
	void *check_arg;
};

enum cache_kind { CACHE_POSITIVE = 0, CACHE_NEGATIVE = 1 };
enum cache_source { CACHE_SRC_NONE = 0, CACHE_SRC_L1, CACHE_SRC_REDIS, CACHE_SRC_FILL, CACHE_SRC_STALE };
/* "none", "l1", "redis", "fill", "stale" */
const char *cache_source_name(enum cache_source s);

/* What a fill function returns. On success errclass is 0 and data (malloc'd, ownership
 * passes to the cache) holds the value, or kind is CACHE_NEGATIVE (data may be NULL).
 * On failure errclass is 1..CACHE_ERRCLASS_MAX-1 and temporary says whether a stale
 * entry may be served instead. */
struct cache_fill_out {
	unsigned char *data;
	size_t len;
	enum cache_kind kind;
	int errclass;
	bool temporary;
};
typedef void (*cache_fill_fn)(void *arg, int64_t deadline_ms, struct cache_fill_out *out);

/* What a lookup returns. data is malloc'd and owned by the caller (free()); it is NULL
 * for negative entries stored without bytes. */
struct cache_value {
	unsigned char *data;
	size_t len;
	enum cache_kind kind;
	enum cache_source source;
	int64_t fetched_at_ms;		/* wall clock when the fill that made it ran */
	bool stale;			/* served past its TTL because the fill failed */
	int fill_errclass;		/* the fill's error (also set when stale was served) */
	bool deadline_passed;		/* the deadline ran out before a result (fill_errclass
					 * is then 0; a stale entry may still be served) */
};

struct cache;

/* NULL with a reason in err on bad config. Redis being unreachable is not an error here. */
struct cache *cache_new(const struct cache_config *cfg, char *err, size_t errlen);
void cache_free(struct cache *c);

/* The key of an opaque name in the cache's name space: "<prefix>:v1:<name>". name is
 * printable with no blanks. 0, or -1 when it does not fit in len or CACHE_KEY_MAX. */
int cache_key_name(const struct cache *c, const char *name, char *buf, size_t len);

/* Returns 0 with *out filled, or -1 when there is nothing to serve (the fill failed and no
 * entry is within grace); out->fill_errclass then says why. deadline_ms is sm_now_ms()-based;
 * the fill is given the same deadline. fill may be NULL (read only: L1 and Redis; such a
 * lookup is counted only when it hits, so that a prefetch probe followed by the real
 * lookup counts once). */
int cache_get_or_fill(struct cache *c, const char *key, cache_fill_fn fill, void *arg,
    int64_t deadline_ms, struct cache_value *out);
void cache_value_free(struct cache_value *v);

/* A fresh in-process (L1) entry only, never blocking on Redis or a fill: 0 with *out filled
 * (counted as a lookup and an L1 hit, as cache_get_or_fill() would), -1 when L1 is off or
 * has no fresh entry (nothing counted; the caller goes on with cache_get_or_fill()). */
int cache_get_l1(struct cache *c, const char *key, struct cache_value *out);

/* Stores a value as if a fill had produced it now (used for product names). */
int cache_put(struct cache *c, const char *key, const void *data, size_t len, enum cache_kind kind);

/*
 * Purges and fills in flight: a fill's result is stored only when nothing purged its key
 * while it ran (it read Stripe before the change the purge is about). In Redis the fill's
 * lock is the proof: the result is stored only while "<key>" CACHE_LOCK_SUFFIX still holds
 * the fill's token, and a purge deletes that lock with the key (so a purge made by someone
 * else than cache_purge(), e.g. the fleet's UNLINK of many keys, must delete both). In L1,
 * any purge or clear in this process during the fill keeps the fill out of L1. Such a fill
 * still answers the lookup that made it, and is counted (fills_discarded).
 */
#define CACHE_LOCK_SUFFIX	":lock"

/* Deletes one key (and its fill lock) from L1 and Redis; 0 on success (also when absent),
 * -1 on Redis error. */
int cache_purge(struct cache *c, const char *key);
/* Drop one key / everything from this process's L1 only (what a fleet-wide purge
 * message asks of each instance; Redis is purged once, by whoever sent it). */
void cache_local_purge(struct cache *c, const char *key);
void cache_local_clear(struct cache *c);
/* Deletes every key under the prefix (SCAN + UNLINK) and clears L1; *deleted counts Redis keys. */
int cache_flush(struct cache *c, long *deleted);

/* True when a Redis is configured and the last command to it succeeded. */
bool cache_redis_ok(struct cache *c);

struct cache_counters {
	uint64_t lookups, l1_hits, l2_hits, misses, negative_hits, stale_served;
	uint64_t fills, fill_errors[CACHE_ERRCLASS_MAX], lock_waits, lock_wait_hits;
	uint64_t redis_errors, redis_reconnects;
	uint64_t l2_latency_ms_sum, l2_calls;
	uint64_t l1_entries, l1_bytes;
	/* added after the first cut */
	uint64_t flight_joins;		/* lookups that waited for another thread's fill */
	uint64_t redis_skipped;		/* Redis calls not tried: backoff after a failure */
	uint64_t sentinel_discoveries;	/* master addresses obtained from a sentinel */
	uint64_t redis_pool_open;	/* gauge: Redis connections open (idle + in use) */
	uint64_t redis_pool_in_use;	/* gauge: Redis connections taken by a command now */
	uint64_t flight_misses;		/* misses that waited for another thread's fill (part
					 * of misses; they started no fill of their own) */
	uint64_t fills_discarded;	/* fills not stored because their key was purged
					 * meanwhile, or kept out of L1 only because any
					 * purge or clear happened in this process meanwhile */
};
/* Invariants: lookups == l1_hits + l2_hits + misses, and a lookup that waited for another
 * thread (flight_joins) counts as what that wait produced: a Redis hit when the other
 * thread found the entry in Redis, else a miss (flight_misses). So misses - flight_misses
 * is the misses that tried a fill themselves, and fills <= that (the rest found their
 * deadline gone before filling). negative_hits and stale_served are parts of the above. */
void cache_counters_get(struct cache *c, struct cache_counters *out);

/* The Redis pool the cache runs on (redis/rds.h), NULL when no Redis is configured. It is
 * the cache's (freed by cache_free); others may run their own commands on it meanwhile
 * (the daemon's fleet statistics), and their failures count in the cache's redis_*. */
struct rds;
struct rds *cache_redis(struct cache *c);

/* Size of the cached data in Redis: SCAN over "<prefix>:v1:*" (at most max_keys keys,
 * never past deadline_ms) and MEMORY USAGE on up to max_samples of them. */
struct cache_keyspace {
	uint64_t keys;			/* keys seen */
	bool complete;			/* the SCAN ended: keys is the exact count */
	uint64_t sampled;		/* keys measured */
	uint64_t sampled_bytes;
	uint64_t est_bytes;		/* sampled_bytes scaled up to keys */
};
int cache_keyspace(struct cache *c, uint64_t max_keys, unsigned max_samples, int64_t deadline_ms,
    struct cache_keyspace *out);

#endif
