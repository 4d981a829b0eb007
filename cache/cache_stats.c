/*
 * cache_stats.c - counters, the Redis pool's handle and keyspace size.
 *
 * Interface (cache.h): cache_counters_get(), cache_redis(), cache_keyspace().
 *
 * The cache publishes nothing and runs no thread: the daemon reads cache_counters_get()
 * and publishes its fleet statistics itself (milter/mf_fleet.c) on the cache's Redis pool
 * (cache_redis(), redis/rds.h).
 *
 * Diagnostics: cache_keyspace returns -1 when Redis failed (counted by the pool, redis/).
 *
 * Known limits: counters are per process and restart from zero.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "common/sm_log.h"
#include "common/sm_util.h"

_Static_assert(sizeof(struct cache_counters) % sizeof(uint64_t) == 0,
    "struct cache_counters must hold uint64_t fields only");

void cache_counters_get(struct cache *c, struct cache_counters *out)
{
	const uint64_t *src = (const uint64_t *)&c->ctr;
	uint64_t *dst = (uint64_t *)out;
	size_t i;

	/* every field is a uint64_t, so the struct is an array of them */
	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	out->l1_entries = out->l1_bytes = 0;
	if (c->l1)
		cache_l1_size(c->l1, &out->l1_entries, &out->l1_bytes);
	out->redis_pool_open = out->redis_pool_in_use = 0;
	if (c->rp) {
		struct rds_counters rc;

		rds_counters_get(c->rp, &rc);
		out->redis_errors = rc.errors;
		out->redis_reconnects = rc.reconnects;
		out->redis_skipped = rc.skipped;
		out->sentinel_discoveries = rc.sentinel_discoveries;
		out->l2_latency_ms_sum = rc.latency_ms_sum;
		out->l2_calls = rc.calls;
		out->redis_pool_open = rc.pool_open;
		out->redis_pool_in_use = rc.pool_in_use;
	}
}

struct rds *cache_redis(struct cache *c)
{
	return c ? c->rp : NULL;
}

/* ---- keyspace size ------------------------------------------------------------------ */

static void cache_keyspace_measure(struct cache *c, const redisReply *keys, unsigned max_samples,
    int64_t deadline_ms, struct cache_keyspace *out)
{
	size_t i;

	for (i = 0; i < keys->elements && out->sampled < max_samples; i++) {
		redisReply *m = rds_cmd(c->rp, deadline_ms, "MEMORY USAGE %b",
		    keys->element[i]->str, keys->element[i]->len);

		if (m == NULL)
			return;
		if (m->type == REDIS_REPLY_INTEGER && m->integer > 0) {
			out->sampled++;
			out->sampled_bytes += (uint64_t)m->integer;
		}
		freeReplyObject(m);
	}
}

int cache_keyspace(struct cache *c, uint64_t max_keys, unsigned max_samples, int64_t deadline_ms,
    struct cache_keyspace *out)
{
	char esc[160], pat[200], cursor[32] = "0";
	redisReply *r = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (c->rp == NULL || cache_glob_escape(c->cfg.prefix, esc, sizeof(esc)) != 0)
		return -1;
	snprintf(pat, sizeof(pat), "%s:v1:*", esc);
	do {
		if (sm_ms_left(deadline_ms) <= 0 || out->keys >= max_keys) {
			rc = 0;		/* partial: complete stays false */
			goto out;
		}
		r = rds_cmd(c->rp, deadline_ms, "SCAN %s MATCH %s COUNT 500", cursor, pat);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
			goto out;
		sm_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		out->keys += r->element[1]->elements;
		cache_keyspace_measure(c, r->element[1], max_samples, deadline_ms, out);
		freeReplyObject(r);
		r = NULL;
	} while (strcmp(cursor, "0") != 0);
	out->complete = true;
	rc = 0;
out:
	if (r)
		freeReplyObject(r);
	if (out->sampled > 0)
		out->est_bytes = (uint64_t)((double)out->sampled_bytes * (double)out->keys / (double)out->sampled);
	return rc;
}
