/*
 * cache_core.c - cache_new/free, the key name space, purge and flush.
 *
 * Interface (cache.h): cache_new(), cache_free(), cache_key_name(),
 *	cache_purge(), cache_local_purge(), cache_local_clear(), cache_flush(), cache_redis_ok(),
 *	cache_source_name().
 *	The lookup path (get-or-fill, put) is in cache_fill.c; counters, the Redis
 *	pass-through and keyspace sampling in cache_stats.c.
 *
 * Keys: the caller's opaque names under the cache's name space, "<prefix>:v1:<name>";
 *	everything the cache stores lives there, which is what cache_flush() deletes (the
 *	daemon's stats hashes "<prefix>:stats:*" stay).
 *
 * Memory: cache_new copies every string of the config; the caller's may go away.
 *
 * Diagnostics: cache_new fills err on bad config; Redis failures are counted and logged
 *	by the pool (redis/rds_pool.c).
 *
 * Known limits: cache_flush clears this process's L1 only; other instances' L1 entries
 *	live out their L1 TTL (seconds).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "common/sm_log.h"
#include "common/sm_secret.h"
#include "common/sm_util.h"

#define CACHE_POOL_MAX	64
#define CACHE_SCAN_COUNT "500"

const char *cache_source_name(enum cache_source s)
{
	static const char *const names[] = { "none", "l1", "redis", "fill", "stale" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "none";
}

/* Copies a config string into c->strs; *dst points at the copy (NULL stays NULL). */
static int cache_own_str(struct cache *c, const char **dst, int *n)
{
	if (*dst == NULL)
		return 0;
	if (*n >= (int)(sizeof(c->strs) / sizeof(c->strs[0])))
		return -1;
	c->strs[*n] = strdup(*dst);
	if (c->strs[*n] == NULL)
		return -1;
	*dst = c->strs[(*n)++];
	return 0;
}

/* Reads a password file with the project's one secret reader (common/sm_secret.h: rules for
 * the effective ids) into a malloc'd string (*out). */
static int cache_read_password(const char *path, char **out, char *err, size_t errlen)
{
	char line[SM_SECRET_MAX + 1], why[512];
	int rc = -1;

	if (sm_secret_read(path, NULL, line, sizeof(line), why, sizeof(why)) != 0) {
		snprintf(err, errlen, "redis password file %s", why);
		goto out;
	}
	*out = strdup(line);
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(line, sizeof(line));
	return rc;
}

/* Fills in defaults and checks ranges. */
static int cache_resolve(struct cache_config *k, char *err, size_t errlen)
{
	if (k->prefix == NULL || k->prefix[0] == '\0')
		k->prefix = "stripe-milter";
	if (strlen(k->prefix) > 64 || strpbrk(k->prefix, " \t\r\n") != NULL) {
		snprintf(err, errlen, "cache prefix too long or has blanks");
		return -1;
	}
#define CACHE_DEF(f, d) do { if ((f) == 0) (f) = (d); } while (0)
	CACHE_DEF(k->l1_max_entries, 10000);
	CACHE_DEF(k->l1_max_bytes, (size_t)64 << 20);
	CACHE_DEF(k->l1_ttl_s, 30);
	CACHE_DEF(k->ttl_positive_s, 600);
	CACHE_DEF(k->ttl_negative_s, 120);
	CACHE_DEF(k->stale_grace_s, 3600);
	CACHE_DEF(k->redis_port, 6379);
	CACHE_DEF(k->connect_timeout_ms, 200);
	CACHE_DEF(k->command_timeout_ms, 200);
	CACHE_DEF(k->pool_size, 8);
	CACHE_DEF(k->lock_ttl_ms, 5000);
	CACHE_DEF(k->lock_wait_ms, 1000);
	CACHE_DEF(k->reconnect_max_ms, 5000);
#undef CACHE_DEF
	if (k->stale_grace_s < 0)
		k->stale_grace_s = 0;
	if (k->ttl_positive_s < 0 || k->ttl_negative_s < 0 || k->connect_timeout_ms < 0 ||
	    k->command_timeout_ms < 0 || k->pool_size < 0 || k->lock_ttl_ms < 0 || k->lock_wait_ms < 0 ||
	    k->redis_db < 0 || k->redis_port < 0 || k->redis_port > 65535 || k->reconnect_max_ms < 0) {
		snprintf(err, errlen, "negative or out of range cache setting");
		return -1;
	}
	if (k->pool_size > CACHE_POOL_MAX)
		k->pool_size = CACHE_POOL_MAX;
	if (k->reconnect_max_ms < 100)
		k->reconnect_max_ms = 100;
	return 0;
}

static bool cache_has_redis(const struct cache_config *k)
{
	return (k->redis_host && k->redis_host[0]) || (k->redis_unix && k->redis_unix[0]) ||
	    (k->sentinels && k->sentinels[0]);
}

/* Copies the strings of the config into c (owned), reading the password file. */
static int cache_copy_config(struct cache *c, char *err, size_t errlen)
{
	struct cache_config *k = &c->cfg;
	const char **fields[] = { &k->prefix, &k->redis_host, &k->redis_unix, &k->redis_user,
	    &k->redis_password, &k->sentinels, &k->sentinel_master, &k->sentinel_password };
	int n = 0;
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (cache_own_str(c, fields[i], &n) != 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	k->redis_password_file = NULL;
	if (k->redis_password == NULL && c->pwfile_given) {
		if (cache_read_password(c->pwfile, &c->strs[n], err, errlen) != 0)
			return -1;
		k->redis_password = c->strs[n++];
	}
	if (k->redis_unix && k->redis_unix[0] == '\0')
		k->redis_unix = NULL;
	return 0;
}

/* The Redis pool, with the cache's connection settings. */
static int cache_open_redis(struct cache *c, char *err, size_t errlen)
{
	const struct cache_config *k = &c->cfg;
	struct rds_config rc;

	memset(&rc, 0, sizeof(rc));
	rc.name = "cache";
	rc.host = k->redis_host;
	rc.port = k->redis_port;
	rc.unix_path = k->redis_unix;
	rc.sentinels = k->sentinels;
	rc.sentinel_master = k->sentinel_master;
	rc.sentinel_password = k->sentinel_password;
	rc.user = k->redis_user;
	rc.password = k->redis_password;
	rc.db = k->redis_db;
	rc.connect_timeout_ms = k->connect_timeout_ms;
	rc.command_timeout_ms = k->command_timeout_ms;
	rc.pool_size = k->pool_size;
	rc.reconnect_max_ms = k->reconnect_max_ms;
	c->rp = rds_new(&rc, err, errlen);
	return c->rp ? 0 : -1;
}

struct cache *cache_new(const struct cache_config *cfg, char *err, size_t errlen)
{
	struct cache *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->cfg = *cfg;
	if (cfg->redis_password_file && cfg->redis_password == NULL) {
		c->pwfile_given = true;
		sm_strlcpy(c->pwfile, cfg->redis_password_file, sizeof(c->pwfile));
	}
	pthread_mutex_init(&c->flight_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->flight_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (cache_resolve(&c->cfg, err, errlen) != 0 || cache_copy_config(c, err, errlen) != 0)
		goto fail;
	c->l1_ttl_ms = (int64_t)c->cfg.l1_ttl_s * 1000;
	if (c->cfg.l1_ttl_s > 0 && (c->l1 = cache_l1_new(c->cfg.l1_max_entries, c->cfg.l1_max_bytes)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (cache_has_redis(&c->cfg) && cache_open_redis(c, err, errlen) != 0)
		goto fail;
	return c;
fail:
	cache_free(c);
	return NULL;
}

void cache_free(struct cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	rds_free(c->rp);
	cache_l1_free(c->l1);
	for (i = 0; i < sizeof(c->strs) / sizeof(c->strs[0]); i++) {
		if (c->strs[i]) {
			explicit_bzero(c->strs[i], strlen(c->strs[i]));
			free(c->strs[i]);
		}
	}
	pthread_mutex_destroy(&c->flight_mu);
	pthread_cond_destroy(&c->flight_cv);
	free(c);
}

int cache_key_name(const struct cache *c, const char *name, char *buf, size_t len)
{
	const char *p;
	int w;

	if (name == NULL || *name == '\0')
		return -1;
	for (p = name; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f)
			return -1;
	w = snprintf(buf, len, "%s:v1:%s", c->cfg.prefix, name);
	return w < 0 || (size_t)w >= len || (size_t)w >= CACHE_KEY_MAX ? -1 : 0;
}

bool cache_redis_ok(struct cache *c)
{
	return c->rp != NULL && rds_ok(c->rp);
}

void cache_local_purge(struct cache *c, const char *key)
{
	if (c && c->l1 && key) {
		__atomic_add_fetch(&c->purges, 1, __ATOMIC_ACQ_REL);
		cache_l1_del(c->l1, key);
	}
}

void cache_local_clear(struct cache *c)
{
	if (c && c->l1) {
		__atomic_add_fetch(&c->purges, 1, __ATOMIC_ACQ_REL);
		cache_l1_clear(c->l1);
	}
}

int cache_purge(struct cache *c, const char *key)
{
	redisReply *r;

	cache_local_purge(c, key);
	if (c->rp == NULL)
		return 0;
	/* the fill lock too: a fill in flight for this key then does not store (cache.h) */
	r = rds_cmd(c->rp, INT64_MAX, "UNLINK %s %s" CACHE_LOCK_SUFFIX, key, key);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

int cache_glob_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *in; in++) {
		if (strchr("*?[]\\", *in)) {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = '\\';
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = *in;
	}
	if (outlen == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

/* UNLINKs the keys of one SCAN page, 500 at a time; adds how many went to *deleted. */
static int cache_unlink_page(struct cache *c, const redisReply *keys, long *deleted)
{
	const char *argv[501];
	size_t argvlen[501], i, n;
	redisReply *r;

	for (i = 0; i < keys->elements; i += n) {
		size_t j;

		n = keys->elements - i < 500 ? keys->elements - i : 500;
		argv[0] = "UNLINK";
		argvlen[0] = 6;
		for (j = 0; j < n; j++) {
			argv[j + 1] = keys->element[i + j]->str;
			argvlen[j + 1] = keys->element[i + j]->len;
		}
		r = rds_argv(c->rp, INT64_MAX, (int)n + 1, argv, argvlen);
		if (r == NULL)
			return -1;
		if (r->type == REDIS_REPLY_INTEGER)
			*deleted += (long)r->integer;
		freeReplyObject(r);
	}
	return 0;
}

int cache_flush(struct cache *c, long *deleted)
{
	char pat[200], esc[160], cursor[32] = "0";
	redisReply *r = NULL;
	int rc = -1;

	*deleted = 0;
	cache_local_clear(c);
	if (c->rp == NULL)
		return 0;
	if (cache_glob_escape(c->cfg.prefix, esc, sizeof(esc)) != 0)
		return -1;
	snprintf(pat, sizeof(pat), "%s:v1:*", esc);
	do {
		r = rds_cmd(c->rp, INT64_MAX, "SCAN %s MATCH %s COUNT %s", cursor, pat, CACHE_SCAN_COUNT);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
			goto out;
		sm_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		if (cache_unlink_page(c, r->element[1], deleted) != 0)
			goto out;
		freeReplyObject(r);
		r = NULL;
	} while (strcmp(cursor, "0") != 0);
	rc = 0;
out:
	if (r)
		freeReplyObject(r);
	return rc;
}
