/*
 * cache_stats.c - counters, their publisher thread, the fleet view and keyspace size.
 *
 * Interface (cache.h): cache_counters_get(), cache_set_errclass_names(),
 *	cache_set_publish_extra(), cache_publish(), cache_fleet_read(), cache_fleet_free(),
 *	cache_fleet_get(), cache_keyspace(); (cache_int.h) cache_stats_start/stop().
 *
 * Publishing: "HSET <prefix>:stats:<instance> name value ..." with every counter, the
 *	fill error classes ("fill_errors_<name>", by index when unnamed), the caller's extra
 *	fields and "ts" (wall clock ms), then EXPIRE of 3 publish intervals (at least 30 s),
 *	so a stopped instance drops out of the fleet view. A thread does it every
 *	publish_interval_s; cache_free wakes it and joins it (at most one command timeout).
 *
 * Fleet read: SCAN "<prefix>:stats:*", HGETALL each, sum numeric fields by name.
 *
 * Memory: struct cache_fleet owns all its arrays (cache_fleet_free).
 *
 * Diagnostics: publish and read return -1 when Redis failed (counted in cache_redis.c);
 *	extra fields past 96 are dropped with one log line.
 *
 * Known limits: counters are per process and restart from zero; the fleet view is as
 *	old as each instance's last publish (see its ts).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "common/sm_log.h"
#include "common/sm_util.h"

#define CACHE_PUB_MAX		96
#define CACHE_FLEET_MAX		4096

struct cache_pub {
	int n;
	struct {
		char name[64];
		char val[24];
	} f[CACHE_PUB_MAX];
};

static int cache_log_pub_full;

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
	if (c->rp)
		cache_rp_usage(c->rp, &out->redis_pool_open, &out->redis_pool_in_use);
}

void cache_set_errclass_names(struct cache *c, const char *const *names)
{
	pthread_mutex_lock(&c->pub_mu);
	c->errclass_names = names;
	pthread_mutex_unlock(&c->pub_mu);
}

void cache_set_publish_extra(struct cache *c, cache_extra_fn fn, void *arg)
{
	pthread_mutex_lock(&c->pub_mu);
	c->extra_fn = fn;
	c->extra_arg = arg;
	pthread_mutex_unlock(&c->pub_mu);
}

static void cache_pub_emit(void *ctx, const char *name, uint64_t v)
{
	struct cache_pub *p = ctx;

	if (p->n == CACHE_PUB_MAX) {
		sm_log_once(&cache_log_pub_full, LOG_WARNING, "cache: more than %d stats fields; "
		    "dropping %s and later ones", CACHE_PUB_MAX, name);
		return;
	}
	sm_strlcpy(p->f[p->n].name, name, sizeof(p->f[p->n].name));
	snprintf(p->f[p->n].val, sizeof(p->f[p->n].val), "%llu", (unsigned long long)v);
	p->n++;
}

/* Every counter of this process as name/value pairs. */
static void cache_pub_collect(struct cache *c, struct cache_pub *p, const char *const *names)
{
	struct cache_counters k;
	uint64_t errs = 0;
	char name[64];
	int i;

	cache_counters_get(c, &k);
#define CACHE_PUB(f) cache_pub_emit(p, #f, k.f)
	CACHE_PUB(lookups); CACHE_PUB(l1_hits); CACHE_PUB(l2_hits); CACHE_PUB(misses);
	CACHE_PUB(negative_hits); CACHE_PUB(stale_served); CACHE_PUB(fills);
	CACHE_PUB(lock_waits); CACHE_PUB(lock_wait_hits); CACHE_PUB(redis_errors);
	CACHE_PUB(redis_reconnects); CACHE_PUB(l2_latency_ms_sum); CACHE_PUB(l2_calls);
	CACHE_PUB(l1_entries); CACHE_PUB(l1_bytes); CACHE_PUB(flight_joins);
	CACHE_PUB(redis_skipped); CACHE_PUB(sentinel_discoveries);
#undef CACHE_PUB
	for (i = 1; i < CACHE_ERRCLASS_MAX; i++) {
		const char *nm = NULL;

		errs += k.fill_errors[i];
		if (names) {
			int j;

			/* names[0] (no error) may be NULL; a NULL past it ends the list */
			for (j = 1; j <= i && names[j]; j++)
				nm = j == i ? names[j] : NULL;
		}
		if (nm == NULL && k.fill_errors[i] == 0)
			continue;
		if (nm)
			snprintf(name, sizeof(name), "fill_errors_%s", nm);
		else
			snprintf(name, sizeof(name), "fill_errors_%d", i);
		cache_pub_emit(p, name, k.fill_errors[i]);
	}
	cache_pub_emit(p, "fill_errors", errs);
}

int cache_publish(struct cache *c)
{
	struct cache_pub *p = NULL;
	const char *argv[2 + 2 * CACHE_PUB_MAX + 2];
	size_t argvlen[2 + 2 * CACHE_PUB_MAX + 2];
	char key[CACHE_KEY_MAX], ts[24];
	const char *const *names;
	cache_extra_fn fn;
	void *fnarg;
	redisReply *r = NULL;
	int i, argc = 0, ttl, rc = -1;

	if (c->rp == NULL || (p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	pthread_mutex_lock(&c->pub_mu);
	names = c->errclass_names;
	fn = c->extra_fn;
	fnarg = c->extra_arg;
	pthread_mutex_unlock(&c->pub_mu);
	cache_pub_collect(c, p, names);
	if (fn)
		fn(fnarg, cache_pub_emit, p);
	snprintf(ts, sizeof(ts), "%lld", (long long)sm_wall_ms());
	snprintf(key, sizeof(key), "%s:stats:%s", c->cfg.prefix, c->instance);
	argv[argc++] = "HSET";
	argv[argc++] = key;
	for (i = 0; i < p->n; i++) {
		argv[argc++] = p->f[i].name;
		argv[argc++] = p->f[i].val;
	}
	argv[argc++] = "ts";
	argv[argc++] = ts;
	for (i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	r = cache_rp_argv(c->rp, INT64_MAX, argc, argv, argvlen);
	if (r == NULL)
		goto out;
	freeReplyObject(r);
	ttl = c->cfg.publish_interval_s > 0 ? 3 * c->cfg.publish_interval_s : 30;
	r = cache_rp_cmd(c->rp, INT64_MAX, "EXPIRE %s %d", key, ttl < 30 ? 30 : ttl);
	if (r == NULL)
		goto out;
	freeReplyObject(r);
	r = NULL;
	rc = 0;
out:
	free(p);
	return rc;
}

/* ---- publisher thread --------------------------------------------------------------- */

static void *cache_pub_main(void *arg)
{
	struct cache *c = arg;

	pthread_mutex_lock(&c->pub_mu);
	while (!c->pub_stop) {
		int64_t next = sm_now_ms() + (int64_t)c->cfg.publish_interval_s * 1000;
		struct timespec ts = { (time_t)(next / 1000), (long)(next % 1000) * 1000000L };

		while (!c->pub_stop && sm_now_ms() < next)
			pthread_cond_timedwait(&c->pub_cv, &c->pub_mu, &ts);
		if (c->pub_stop)
			break;
		pthread_mutex_unlock(&c->pub_mu);
		cache_publish(c);
		pthread_mutex_lock(&c->pub_mu);
	}
	pthread_mutex_unlock(&c->pub_mu);
	return NULL;
}

int cache_stats_start(struct cache *c)
{
	sigset_t all, old;
	int rc;

	/* the thread takes no signals: the daemon handles them in its own thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->pub_thread, NULL, cache_pub_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -1;
	c->pub_running = true;
	return 0;
}

void cache_stats_stop(struct cache *c)
{
	if (!c->pub_running)
		return;
	pthread_mutex_lock(&c->pub_mu);
	c->pub_stop = true;
	pthread_cond_broadcast(&c->pub_cv);
	pthread_mutex_unlock(&c->pub_mu);
	pthread_join(c->pub_thread, NULL);
	c->pub_running = false;
}

/* ---- fleet view --------------------------------------------------------------------- */

static int cache_parse_u64(const char *s, uint64_t *out)
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

/* Adds v to the field named name in a growing array. */
static int cache_fields_add(struct cache_fleet_field **arr, size_t *n, const char *name, uint64_t v)
{
	struct cache_fleet_field *na;
	size_t i;

	for (i = 0; i < *n; i++) {
		if (strcmp((*arr)[i].name, name) == 0) {
			(*arr)[i].value += v;
			return 0;
		}
	}
	na = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (na == NULL)
		return -1;
	*arr = na;
	sm_strlcpy(na[*n].name, name, sizeof(na[*n].name));
	na[*n].value = v;
	(*n)++;
	return 0;
}

uint64_t cache_fleet_get(const struct cache_fleet_field *fields, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(fields[i].name, name) == 0)
			return fields[i].value;
	return 0;
}

/* HGETALL one stats hash into a new instance of f. */
static int cache_fleet_one(struct cache *c, struct cache_fleet *f, const char *key, size_t skip)
{
	struct cache_fleet_instance *in, *na;
	redisReply *r;
	size_t i;
	int rc = -1;

	r = cache_rp_cmd(c->rp, INT64_MAX, "HGETALL %s", key);
	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		rc = 0;		/* expired between SCAN and HGETALL */
		goto out;
	}
	na = realloc(f->instances, (f->ninstances + 1) * sizeof(*na));
	if (na == NULL)
		goto out;
	f->instances = na;
	in = &na[f->ninstances++];
	memset(in, 0, sizeof(*in));
	sm_strlcpy(in->instance, key + skip, sizeof(in->instance));
	for (i = 0; i + 1 < r->elements; i += 2) {
		const char *name = r->element[i]->str, *val = r->element[i + 1]->str;
		uint64_t v;

		if (name == NULL || cache_parse_u64(val, &v) != 0)
			continue;
		if (strcmp(name, "ts") == 0) {
			in->ts_ms = (int64_t)v;
			continue;
		}
		if (cache_fields_add(&in->fields, &in->nfields, name, v) != 0 ||
		    cache_fields_add(&f->totals, &f->ntotals, name, v) != 0)
			goto out;
	}
	rc = 0;
out:
	freeReplyObject(r);
	return rc;
}

int cache_fleet_read(struct cache *c, struct cache_fleet *out)
{
	char esc[160], pat[200], cursor[32] = "0";
	redisReply *r = NULL;
	size_t i, skip = strlen(c->cfg.prefix) + strlen(":stats:");
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (c->rp == NULL || cache_glob_escape(c->cfg.prefix, esc, sizeof(esc)) != 0)
		return -1;
	snprintf(pat, sizeof(pat), "%s:stats:*", esc);
	do {
		r = cache_rp_cmd(c->rp, INT64_MAX, "SCAN %s MATCH %s COUNT 200", cursor, pat);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
			goto out;
		sm_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		for (i = 0; i < r->element[1]->elements && out->ninstances < CACHE_FLEET_MAX; i++) {
			const redisReply *k = r->element[1]->element[i];

			if (k->type == REDIS_REPLY_STRING && k->len > skip &&
			    cache_fleet_one(c, out, k->str, skip) != 0)
				goto out;
		}
		freeReplyObject(r);
		r = NULL;
	} while (strcmp(cursor, "0") != 0 && out->ninstances < CACHE_FLEET_MAX);
	rc = 0;
out:
	if (r)
		freeReplyObject(r);
	if (rc != 0) {
		cache_fleet_free(out);
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

void cache_fleet_free(struct cache_fleet *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->ninstances; i++)
		free(f->instances[i].fields);
	free(f->instances);
	free(f->totals);
	memset(f, 0, sizeof(*f));
}

/* ---- keyspace size ------------------------------------------------------------------ */

static void cache_keyspace_measure(struct cache *c, const redisReply *keys, unsigned max_samples,
    int64_t deadline_ms, struct cache_keyspace *out)
{
	size_t i;

	for (i = 0; i < keys->elements && out->sampled < max_samples; i++) {
		redisReply *m = cache_rp_cmd(c->rp, deadline_ms, "MEMORY USAGE %b",
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
		r = cache_rp_cmd(c->rp, deadline_ms, "SCAN %s MATCH %s COUNT 500", cursor, pat);
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
