/*
 * test_cache_redis.c - the cache against real redis-servers started here: TTLs per kind
 * (absolute, not refreshed by reads), sharing between instances, cross-process
 * single-flight, stale from Redis, purge and flush, the Redis pass-through,
 * keyspace sampling, exact counters, unix socket, SELECT, corrupt entries, a slow Redis
 * held to the command timeout, and AUTH (ACL user, password only, wrong password).
 *
 * Every case uses its own key prefix on the shared servers.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "redis/rds.h"
#include "tests/cache/tc.h"
#include "tests/harness/th.h"

static struct th_redis R;	/* plain */
static struct th_redis A;	/* requirepass s3cret + ACL user alice */

static void cfg_r(struct cache_config *k, const char *prefix)
{
	tc_config(k, prefix);
	k->redis_host = "127.0.0.1";
	k->redis_port = R.port;
}

static struct cache *new_cache(struct cache_config *k)
{
	char err[256] = "";
	struct cache *c = cache_new(k, err, sizeof(err));

	ck_assert_msg(c != NULL, "cache_new: %s", err);
	return c;
}

static long rcmd_long(struct th_redis *r, const char *fmt, const char *arg)
{
	char out[256];
	long v = -999;

	ck_assert_int_eq(th_redis_cmd(r, out, sizeof(out), fmt, arg), 0);
	if (sm_parse_long(out, -100, 1L << 40, &v) != 0)
		ck_abort_msg("not a number from Redis: %s", out);
	return v;
}

START_TEST(ttl_per_kind_absolute)
{
	struct cache_config k;
	struct cache_value v;
	struct tc_fill pos = { .data = "P", .len = 1 }, neg = { .kind = CACHE_NEGATIVE };
	struct cache *c;
	long pttl1, pttl2;
	int i;

	cfg_r(&k, "ttl");
	k.l1_ttl_s = -1;	/* Redis only */
	k.ttl_positive_s = 200;	/* long TTLs: the test clock moves through them */
	k.ttl_negative_s = 100;
	k.stale_grace_s = 100;
	c = new_cache(&k);
	ck_assert_int_eq(tc_get(c, "ttl:v1:p", &pos, 1000, &v), 0);
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(c, "ttl:v1:n", &neg, 1000, &v), 0);
	cache_value_free(&v);
	/* Redis keeps each entry for ttl + grace (300 s, 200 s; the lower bounds leave 50 s for
	 * a loaded machine and still tell ttl + grace from ttl alone) */
	pttl1 = rcmd_long(&R, "PTTL %s", "ttl:v1:p");
	ck_assert_int_gt(pttl1, 250000);
	ck_assert_int_le(pttl1, 300000);
	ck_assert_int_le(rcmd_long(&R, "PTTL %s", "ttl:v1:n"), 200000);
	ck_assert_int_gt(rcmd_long(&R, "PTTL %s", "ttl:v1:n"), 150000);
	/* Redis's own clock must move for its PTTL to: 20 ms of real time pass here (the passing
	 * of time is what is tested, not a wait for a state). */
	tc_sleep_ms(20);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(tc_get(c, "ttl:v1:p", &pos, 1000, &v), 0);
		ck_assert_int_eq(v.source, CACHE_SRC_REDIS);
		cache_value_free(&v);
	}
	/* reads never extend it */
	pttl2 = rcmd_long(&R, "PTTL %s", "ttl:v1:p");
	ck_assert_int_le(pttl2, pttl1 - 10);
	th_clock_advance_ms(101000);
	/* 101 s: negative is past its TTL (refilled), positive still fresh */
	ck_assert_int_eq(tc_get(c, "ttl:v1:n", &neg, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(c, "ttl:v1:p", &pos, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_REDIS);
	cache_value_free(&v);
	th_clock_advance_ms(100000);
	ck_assert_int_eq(tc_get(c, "ttl:v1:p", &pos, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	ck_assert_int_eq(tc_calls(&pos), 2);
	ck_assert_int_eq(tc_calls(&neg), 2);
	cache_free(c);
}
END_TEST

START_TEST(shared_between_instances_binary_safe)
{
	static const char bin[] = "a\0b\r\n\xff";
	struct cache_config k;
	struct cache_value v, w;
	struct tc_fill f = { .data = bin, .len = sizeof(bin) }, none = { .errclass = 1 };
	struct cache *a, *b;

	cfg_r(&k, "share");
	a = new_cache(&k);
	b = new_cache(&k);
	ck_assert_int_eq(tc_get(a, "share:v1:k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	ck_assert_int_eq(tc_get(b, "share:v1:k", &none, 1000, &w), 0);
	ck_assert_int_eq(w.source, CACHE_SRC_REDIS);
	ck_assert_int_eq((int)w.len, (int)sizeof(bin));
	ck_assert(memcmp(w.data, bin, sizeof(bin)) == 0);
	ck_assert(w.fetched_at_ms == v.fetched_at_ms);
	ck_assert_int_eq(tc_calls(&none), 0);
	cache_value_free(&v);
	cache_value_free(&w);
	/* the second instance now has it in L1 */
	ck_assert_int_eq(tc_get(b, "share:v1:k", NULL, 1000, &w), 0);
	ck_assert_int_eq(w.source, CACHE_SRC_L1);
	cache_value_free(&w);
	/* the value in Redis has the v1 header in front of the bytes */
	{
		char out[64];

		ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "GETRANGE %s 0 3", "share:v1:k"), 0);
		ck_assert(memcmp(out, "SMC\x01", 4) == 0);
		ck_assert_int_eq(rcmd_long(&R, "STRLEN %s", "share:v1:k"), 24 + (long)sizeof(bin));
	}
	cache_free(a);
	cache_free(b);
}
END_TEST

/* One process of the cross-process test: waits for "go", looks up, reports. */
struct xp_report {
	int rc, source, calls;
	uint64_t lock_waits, lock_wait_hits;
};

static void xp_child(int ready_fd, int go_fd, int report_fd)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct tc_fill f = { .data = "filled", .len = 6, .delay_ms = 400 };
	struct xp_report rep;
	struct cache *c;
	char err[256], b;

	memset(&rep, 0, sizeof(rep));
	cfg_r(&k, "xp");
	k.lock_wait_ms = 3000;
	c = cache_new(&k, err, sizeof(err));
	if (c == NULL)
		_exit(2);
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &b, 1) != 0)
		_exit(3);
	rep.rc = tc_get(c, "xp:v1:k", &f, 5000, &v);
	rep.source = v.source;
	cache_value_free(&v);
	rep.calls = tc_calls(&f);
	cache_counters_get(c, &n);
	rep.lock_waits = n.lock_waits;
	rep.lock_wait_hits = n.lock_wait_hits;
	if (write(report_fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		_exit(4);
	cache_free(c);
	_exit(0);
}

START_TEST(cross_process_single_flight)
{
	int ready[2], go[2], report[2], i, st, fills = 0, fill_src = 0, redis_src = 0;
	pid_t pid[2];
	struct xp_report rep[2];
	char b;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(report), 0);
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0) {
			close(go[1]);
			xp_child(ready[1], go[0], report[1]);
		}
	}
	close(go[0]);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(read(ready[0], &b, 1), 1);
	close(go[1]);		/* both start now */
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(read(report[0], &rep[i], sizeof(rep[i])), (ssize_t)sizeof(rep[i]));
		ck_assert_int_eq(rep[i].rc, 0);
		fills += rep[i].calls;
		fill_src += rep[i].source == CACHE_SRC_FILL;
		redis_src += rep[i].source == CACHE_SRC_REDIS;
	}
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(waitpid(pid[i], &st, 0), pid[i]);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	ck_assert_int_eq(fills, 1);
	ck_assert_int_eq(fill_src, 1);
	ck_assert_int_eq(redis_src, 1);
	ck_assert_int_eq((int)(rep[0].lock_waits + rep[1].lock_waits), 1);
	ck_assert_int_eq((int)(rep[0].lock_wait_hits + rep[1].lock_wait_hits), 1);
	/* the lock was released by its holder */
	ck_assert_int_eq(rcmd_long(&R, "EXISTS %s", "xp:v1:k:lock"), 0);
}
END_TEST

struct lk_arg { struct cache *c; struct tc_fill *f; };

static void *lk_fill_thread(void *p)
{
	struct lk_arg *a = p;
	struct cache_value v;

	ck_assert_int_eq(tc_get(a->c, "lk:v1:k", a->f, 20000, &v), 0);
	cache_value_free(&v);
	return NULL;
}

START_TEST(lock_of_another_holder_not_released)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct tc_fill f = { .data = "x", .len = 1 };
	struct cache *c;
	char out[64];
	long pttl;

	cfg_r(&k, "lk");
	k.lock_wait_ms = 300;	/* no longer ends the wait: only the deadline does */
	c = new_cache(&k);
	/* someone else holds the lock and never delivers: we wait until our deadline and do
	 * not fill (a second fill is what single-flight must never do) */
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "SET %s %s PX %s", "lk:v1:k:lock", "other", "10000"), 0);
	ck_assert_int_eq(tc_get(c, "lk:v1:k", &f, 600, &v), -1);
	ck_assert(v.deadline_passed);
	ck_assert_int_eq(tc_calls(&f), 0);
	cache_value_free(&v);
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "GET %s", "lk:v1:k:lock"), 0);
	ck_assert_str_eq(out, "other");
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.lock_waits, 1);
	ck_assert_int_eq((int)n.lock_wait_hits, 0);
	/* the holder died (its lock expires): the waiter takes the lock and fills, once */
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "PEXPIRE %s %s", "lk:v1:k:lock", "200"), 0);
	ck_assert_int_eq(tc_get(c, "lk:v1:k", &f, 5000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	ck_assert_int_eq(tc_calls(&f), 1);
	cache_value_free(&v);
	/* a fill holds its lock as long as its deadline allows (here 20 s), not lock_ttl_ms */
	cache_purge(c, "lk:v1:k");
	f.delay_ms = 300;
	cache_free(c);
	k.lock_ttl_ms = 100;
	c = new_cache(&k);
	{
		struct lk_arg a = { c, &f };
		pthread_t th;

		ck_assert_int_eq(pthread_create(&th, NULL, lk_fill_thread, &a), 0);
		while (tc_calls(&f) < 2)	/* the fill runs: its lock is held */
			tc_sleep_ms(5);
		pttl = rcmd_long(&R, "PTTL %s", "lk:v1:k:lock");
		ck_assert_int_gt(pttl, 5000);
		pthread_join(th, NULL);
	}
	cache_free(c);
}
END_TEST

static void *ro_probe_thread(void *p)
{
	struct cache_value v;

	cache_get_or_fill(p, "ro:v1:k", NULL, NULL, sm_now_ms() + 2000, &v);	/* a miss */
	cache_value_free(&v);
	return NULL;
}

static void *ro_sleep_thread(void *p)
{
	char out[64];

	(void)p;
	th_redis_cmd(&R, out, sizeof(out), "DEBUG SLEEP %s", "0.6");
	return NULL;
}

/* A read-only lookup (a prefetch probe) in flight never answers a lookup that may fill:
 * the filler fills (its result could otherwise be the probe's miss). */
START_TEST(read_only_lookup_never_answers_a_filler)
{
	struct cache_config k;
	struct cache_value v;
	struct tc_fill f = { .data = "F", .len = 1 };
	struct cache *c;
	pthread_t sl, pr;

	cfg_r(&k, "ro");
	c = new_cache(&k);
	ck_assert_int_eq(pthread_create(&sl, NULL, ro_sleep_thread, NULL), 0);
	tc_sleep_ms(50);	/* Redis is asleep: the probe's GET waits for its timeout */
	ck_assert_int_eq(pthread_create(&pr, NULL, ro_probe_thread, c), 0);
	tc_sleep_ms(50);
	ck_assert_int_eq(tc_get(c, "ro:v1:k", &f, 3000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	ck_assert_int_eq(tc_calls(&f), 1);
	cache_value_free(&v);
	pthread_join(pr, NULL);
	pthread_join(sl, NULL);
	cache_free(c);
}
END_TEST

START_TEST(stale_from_redis_until_grace_ends)
{
	struct cache_config k;
	struct cache_value v;
	struct tc_fill ok = { .data = "old", .len = 3 }, tmp = { .errclass = 5, .temporary = true };
	struct cache *c;

	cfg_r(&k, "st");
	k.l1_ttl_s = -1;
	k.ttl_positive_s = 100;
	k.stale_grace_s = 100;
	c = new_cache(&k);
	ck_assert_int_eq(tc_get(c, "st:v1:k", &ok, 1000, &v), 0);
	cache_value_free(&v);
	/* Redis drops it after ttl + grace (its own clock; checked by the PX the cache set) */
	ck_assert_int_gt(rcmd_long(&R, "PTTL %s", "st:v1:k"), 150000);
	ck_assert_int_le(rcmd_long(&R, "PTTL %s", "st:v1:k"), 200000);
	ck_assert_int_eq(tc_get(c, "st:v1:k", &tmp, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_REDIS);
	cache_value_free(&v);
	th_clock_advance_ms(101000);
	ck_assert_int_eq(tc_get(c, "st:v1:k", &tmp, 1000, &v), 0);
	ck_assert(v.stale);
	ck_assert_int_eq(v.source, CACHE_SRC_STALE);
	ck_assert_int_eq(v.fill_errclass, 5);
	ck_assert_int_eq((int)v.len, 3);
	cache_value_free(&v);
	/* past the grace by the cache's clock: the copy still in Redis is not served */
	th_clock_advance_ms(100000);
	ck_assert_int_eq(tc_get(c, "st:v1:k", &tmp, 1000, &v), -1);
	ck_assert_int_eq(v.fill_errclass, 5);
	cache_value_free(&v);
	cache_free(c);
}
END_TEST

START_TEST(purge_and_flush)
{
	struct cache_config k;
	struct cache_value v;
	struct cache *c;
	char key[CACHE_KEY_MAX], out[64];
	long deleted = -1;
	int i;

	cfg_r(&k, "fl[1]*");
	k.l1_max_entries = 100;
	c = new_cache(&k);
	ck_assert_int_eq(cache_key_name(c, "live:-:0123abcd", key, sizeof(key)), 0);
	ck_assert_int_eq(cache_put(c, key, "v", 1, CACHE_POSITIVE), 0);
	ck_assert_int_eq(rcmd_long(&R, "EXISTS %s", key), 1);
	ck_assert_int_eq(cache_purge(c, key), 0);
	ck_assert_int_eq(rcmd_long(&R, "EXISTS %s", key), 0);
	ck_assert_int_eq(tc_get(c, key, NULL, 500, &v), -1);
	cache_value_free(&v);
	ck_assert_int_eq(cache_purge(c, key), 0);	/* absent is fine */
	for (i = 0; i < 1200; i++) {
		char id[32];

		snprintf(id, sizeof(id), "product:id%d", i);
		ck_assert_int_eq(cache_key_name(c, id, key, sizeof(key)), 0);
		ck_assert_int_eq(cache_put(c, key, id, strlen(id), CACHE_POSITIVE), 0);
	}
	/* not ours: another prefix that the unescaped glob "fl[1]*" would match */
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "SET %s %s", "fl1x:v1:product:z", "keep"), 0);
	/* the daemon's stats hash, written through the pass-through, is not an entry */
	{
		const char *argv[] = { "HSET", "fl[1]*:stats:test", "lookups", "1" };
		size_t lens[] = { 4, 17, 7, 1 };
		struct redisReply *r = rds_argv(cache_redis(c), INT64_MAX, 4, argv, lens);

		ck_assert_ptr_nonnull(r);
		freeReplyObject(r);
	}
	ck_assert_int_eq(cache_flush(c, &deleted), 0);
	ck_assert_int_eq((int)deleted, 1200);
	ck_assert_int_eq(rcmd_long(&R, "EXISTS %s", "fl1x:v1:product:z"), 1);
	ck_assert_int_eq(rcmd_long(&R, "EXISTS %s", "fl[1]*:stats:test"), 1);
	ck_assert_int_eq(tc_get(c, "fl[1]*:v1:product:id5", NULL, 500, &v), -1);
	cache_value_free(&v);
	cache_free(c);
}
END_TEST

START_TEST(keyspace_sample)
{
	struct cache_config k;
	struct cache_keyspace ks;
	struct cache *c;
	char key[CACHE_KEY_MAX];
	int i;

	cfg_r(&k, "ks");
	c = new_cache(&k);
	for (i = 0; i < 50; i++) {
		char id[16];

		snprintf(id, sizeof(id), "p:%d", i);
		ck_assert_int_eq(cache_key_name(c, id, key, sizeof(key)), 0);
		ck_assert_int_eq(cache_put(c, key, "0123456789", 10, CACHE_POSITIVE), 0);
	}
	{
		const char *argv[] = { "HSET", "ks:stats:x", "lookups", "1" };
		size_t lens[] = { 4, 10, 7, 1 };
		struct redisReply *r = rds_argv(cache_redis(c), INT64_MAX, 4, argv, lens);

		ck_assert_ptr_nonnull(r);	/* stats are not entries */
		freeReplyObject(r);
	}
	ck_assert_int_eq(cache_keyspace(c, 100000, 10, sm_now_ms() + 2000, &ks), 0);
	ck_assert(ks.complete);
	ck_assert_int_eq((int)ks.keys, 50);
	ck_assert_int_eq((int)ks.sampled, 10);
	ck_assert_uint_ge(ks.est_bytes, 50 * 34);
	ck_assert_int_eq(cache_keyspace(c, 10, 0, sm_now_ms() + 2000, &ks), 0);
	ck_assert(!ks.complete || ks.keys == 50);
	cache_free(c);
}
END_TEST

START_TEST(counters_match_with_redis)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct tc_fill f = { .data = "x", .len = 1 }, neg = { .kind = CACHE_NEGATIVE };
	struct cache *a, *b;

	cfg_r(&k, "ctr");
	a = new_cache(&k);
	b = new_cache(&k);
	ck_assert_int_eq(tc_get(a, "ctr:v1:k", &f, 1000, &v), 0);	/* miss, fill */
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(a, "ctr:v1:k", &f, 1000, &v), 0);	/* L1 */
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(b, "ctr:v1:n", &neg, 1000, &v), 0);	/* b fills a negative */
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(a, "ctr:v1:n", &neg, 1000, &v), 0);	/* Redis, negative */
	ck_assert_int_eq(v.kind, CACHE_NEGATIVE);
	cache_value_free(&v);
	/* a read-only miss (a prefetch probe) is not counted: the lookup that follows is */
	ck_assert_int_eq(tc_get(a, "ctr:v1:none", NULL, 1000, &v), -1);
	cache_value_free(&v);
	/* a read-only hit is a lookup answered */
	ck_assert_int_eq(tc_get(b, "ctr:v1:k", NULL, 1000, &v), 0);
	cache_value_free(&v);
	cache_counters_get(a, &n);
	ck_assert_int_eq((int)n.lookups, 3);
	ck_assert_int_eq((int)n.l1_hits, 1);
	ck_assert_int_eq((int)n.l2_hits, 1);
	ck_assert_int_eq((int)n.misses, 1);
	ck_assert_int_eq((int)n.negative_hits, 1);
	ck_assert_int_eq((int)n.fills, 1);
	ck_assert_int_eq((int)n.stale_served, 0);
	ck_assert_int_eq((int)n.redis_errors, 0);
	ck_assert_int_eq((int)n.lock_waits, 0);
	/* GET, SET NX (lock), GET (again, under the lock), SET, EVAL (unlock); GET; GET */
	ck_assert_int_eq((int)n.l2_calls, 7);
	ck_assert_int_eq((int)n.l1_entries, 2);
	ck_assert(cache_redis_ok(a));
	cache_counters_get(b, &n);
	ck_assert_int_eq((int)n.lookups, 2);
	ck_assert_int_eq((int)(n.l1_hits + n.l2_hits + n.misses), 2);
	cache_free(a);
	cache_free(b);
}
END_TEST

START_TEST(unix_socket)
{
	struct cache_config k;
	struct cache_value v;
	struct tc_fill f = { .data = "u", .len = 1 };
	struct cache *u, *t;

	tc_config(&k, "ux");
	k.redis_unix = R.unix_path;
	u = new_cache(&k);
	cfg_r(&k, "ux");
	t = new_cache(&k);
	ck_assert_int_eq(tc_get(u, "ux:v1:k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	ck_assert(cache_redis_ok(u));
	ck_assert_int_eq(tc_get(t, "ux:v1:k", NULL, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_REDIS);
	cache_value_free(&v);
	cache_free(u);
	cache_free(t);
}
END_TEST

START_TEST(select_db)
{
	struct cache_config k;
	struct cache_value v;
	struct cache *d2, *d2b, *d0;

	cfg_r(&k, "db");
	k.redis_db = 2;
	d2 = new_cache(&k);
	d2b = new_cache(&k);
	k.redis_db = 0;
	d0 = new_cache(&k);
	ck_assert_int_eq(cache_put(d2, "db:v1:k", "v", 1, CACHE_POSITIVE), 0);
	ck_assert_int_eq(tc_get(d0, "db:v1:k", NULL, 1000, &v), -1);
	cache_value_free(&v);
	ck_assert_int_eq(tc_get(d2b, "db:v1:k", NULL, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_REDIS);
	cache_value_free(&v);
	ck_assert_int_eq(rcmd_long(&R, "EXISTS %s", "db:v1:k"), 0);
	cache_free(d2);
	cache_free(d2b);
	cache_free(d0);
}
END_TEST

START_TEST(corrupt_entry_is_a_miss)
{
	struct cache_config k;
	struct cache_value v;
	struct tc_fill f = { .data = "good", .len = 4 };
	struct cache *c;
	char out[64];

	cfg_r(&k, "bad");
	c = new_cache(&k);
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "SET %s %s", "bad:v1:k", "SMC\x02garbage-of-v2-format"), 0);
	ck_assert_int_eq(tc_get(c, "bad:v1:k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "GETRANGE %s 0 3", "bad:v1:k"), 0);
	ck_assert(memcmp(out, "SMC\x01", 4) == 0);
	cache_free(c);
}
END_TEST

/* A v1 header with the given fetch time and TTLs, then "x". */
static size_t hostile_entry(unsigned char *buf, uint64_t fetched, uint32_t ttl, uint32_t grace)
{
	int i;

	memcpy(buf, "SMC\x01\x00\x00\x00\x00", 8);
	for (i = 0; i < 8; i++)
		buf[8 + i] = (unsigned char)(fetched >> (56 - 8 * i));
	for (i = 0; i < 4; i++) {
		buf[16 + i] = (unsigned char)(ttl >> (24 - 8 * i));
		buf[20 + i] = (unsigned char)(grace >> (24 - 8 * i));
	}
	buf[24] = 'x';
	return 25;
}

/* Entries written by someone else into the real Redis: far-future fetch times (the sum
 * with the TTLs overflowed int64 before: UBSan in the sanitizer build) and negative ones
 * must not be served nor pin the key; the fill replaces them. A fetch time a little ahead
 * (another host's clock) is still a hit. */
START_TEST(hostile_fetch_time_is_a_miss)
{
	static const struct { uint64_t fetched; bool hit; } cases[] = {
		{ 0x7fffffffffffffffULL, false },	/* INT64_MAX: + ttl overflowed */
		{ 0x7fffffffffffff00ULL, false },
		{ 0x8000000000000000ULL, false },	/* INT64_MIN as unsigned */
		{ 0xffffffffffffffffULL, false },	/* -1 */
		{ 0, true },				/* placeholder: ten years ahead, set below */
		{ 0, true },				/* placeholder: 10 s ahead, a hit */
	};
	struct cache_config k;
	struct cache_value v;
	struct tc_fill f = { .data = "fresh", .len = 5 };
	struct cache *c;
	unsigned char buf[32];
	char out[64], key[64];
	size_t i, n;

	cfg_r(&k, "hf");
	k.l1_ttl_s = -1;	/* every read goes to Redis */
	c = new_cache(&k);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t fetched = cases[i].fetched;
		bool hit = false;

		if (i == 4)
			fetched = (uint64_t)(sm_wall_ms() + 10LL * 365 * 86400 * 1000);
		else if (i == 5) {
			fetched = (uint64_t)(sm_wall_ms() + 10000);
			hit = true;
		}
		snprintf(key, sizeof(key), "hf:v1:k%zu", i);
		n = hostile_entry(buf, fetched, 0xffffffffu, 0xffffffffu);
		ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "SET %s %b", key, buf, n), 0);
		ck_assert_str_eq(out, "OK");
		f.calls = 0;
		ck_assert_int_eq(tc_get(c, key, &f, 2000, &v), 0);
		ck_assert_msg(v.source == (hit ? CACHE_SRC_REDIS : CACHE_SRC_FILL),
		    "case %zu: source %s", i, cache_source_name(v.source));
		ck_assert_int_eq(tc_calls(&f), hit ? 0 : 1);
		ck_assert_int_eq((int)v.len, hit ? 1 : 5);
		cache_value_free(&v);
		if (!hit) {
			/* the fill wrote a sane entry over it: served from Redis next time */
			ck_assert_int_eq(tc_get(c, key, &f, 2000, &v), 0);
			ck_assert_int_eq(v.source, CACHE_SRC_REDIS);
			ck_assert_int_eq((int)v.len, 5);
			ck_assert(v.fetched_at_ms <= sm_wall_ms());
			cache_value_free(&v);
			ck_assert_int_eq(tc_calls(&f), 1);
		}
	}
	cache_free(c);
}
END_TEST

START_TEST(idle_context_closed_by_server_retried)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct tc_fill f = { .data = "x", .len = 1 };
	struct cache *c;
	char out[64];

	cfg_r(&k, "idle");
	k.l1_ttl_s = -1;
	c = new_cache(&k);
	ck_assert_int_eq(tc_get(c, "idle:v1:k", &f, 1000, &v), 0);
	cache_value_free(&v);
	/* the server drops every client (as its idle timeout or a failover does) */
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "CLIENT KILL TYPE %s", "normal"), 0);
	ck_assert_int_eq(tc_get(c, "idle:v1:k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_REDIS);
	cache_value_free(&v);
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.redis_errors, 1);
	ck_assert_int_eq((int)n.redis_skipped, 0);
	ck_assert(cache_redis_ok(c));
	ck_assert_int_eq(tc_calls(&f), 1);
	cache_free(c);
}
END_TEST

/* Checked setup of every case: Redis runs (a case that stopped it and failed before
 * SIGCONT must not stall the ones after it). */
static void redis_running(void)
{
	th_redis_resume(&R);
}

START_TEST(slow_redis_held_to_timeout)
{
	struct cache_config k;
	struct cache_counters n, n0;
	struct cache_value v;
	struct tc_fill f = { .data = "x", .len = 1 };
	struct cache *c;
	int64_t t0, took;
	int i;

	cfg_r(&k, "slow");
	k.l1_ttl_s = -1;
	k.command_timeout_ms = 1000;
	k.reconnect_max_ms = 5000;
	c = new_cache(&k);
	ck_assert_int_eq(tc_get(c, "slow:v1:warm", &f, 10000, &v), 0);	/* pool warm */
	cache_value_free(&v);
	/* Redis stalls (stopped, as a server stuck in a slow command or swapping would be). */
	ck_assert_int_eq(th_redis_pause(&R), 0);
	/* A deadline (200 ms) shorter than the command timeout (1 s) wins: the bound is 5x the
	 * deadline, and the command timeout would have held it to 1 s. */
	t0 = th_now_ms();
	ck_assert_int_eq(tc_get(c, "slow:v1:a", &f, 200, &v), -1);
	took = th_now_ms() - t0;
	ck_assert(v.deadline_passed);
	cache_value_free(&v);
	ck_assert_int_lt((int)took, 1000);
	/* Past any backoff that started (on the test clock); from here time stands still for
	 * the cache, so the backoff the next failure starts cannot run out under load. */
	th_clock_advance_ms(60000);
	th_clock_freeze(true);
	t0 = th_now_ms();
	ck_assert_int_eq(tc_get(c, "slow:v1:b", &f, 60000, &v), 0);
	took = th_now_ms() - t0;
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	/* GET, SET NX, SET at most, each held to the 1 s command timeout; the bound is 5x that,
	 * still far below the 60 s deadline the lookup had. */
	ck_assert_int_lt((int)took, 15000);
	/* while backing off, lookups do not touch Redis at all */
	cache_counters_get(c, &n0);
	ck_assert_int_eq(tc_get(c, "slow:v1:c", &f, 60000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	cache_counters_get(c, &n);
	ck_assert_int_gt((int)n.redis_skipped, (int)n0.redis_skipped);
	ck_assert_int_eq((int)n.redis_errors, (int)n0.redis_errors);
	ck_assert_int_ge((int)n.redis_errors, 2);
	ck_assert(!cache_redis_ok(c));
	th_clock_freeze(false);
	/* Redis answers again: after the backoff (moved through on the test clock), the next
	 * lookup reconnects. */
	th_redis_resume(&R);
	for (i = 0; i < 10 && !cache_redis_ok(c); i++) {
		th_clock_advance_ms(k.reconnect_max_ms + 1);
		ck_assert_int_eq(tc_get(c, "slow:v1:d", &f, 10000, &v), 0);
		cache_value_free(&v);
	}
	ck_assert(cache_redis_ok(c));
	cache_free(c);
}
END_TEST

static struct cache *auth_cache(const char *user, const char *pw, const char *prefix)
{
	struct cache_config k;

	tc_config(&k, prefix);
	k.redis_host = "127.0.0.1";
	k.redis_port = A.port;
	k.redis_user = user;
	k.redis_password = pw;
	k.l1_ttl_s = -1;
	return new_cache(&k);
}

START_TEST(auth_acl_user_and_password_only)
{
	struct cache_value v;
	struct tc_fill f = { .data = "x", .len = 1 };
	struct cache *acl, *pwonly;

	acl = auth_cache("alice", "alicepw", "au");
	pwonly = auth_cache(NULL, "s3cret", "au");
	ck_assert_int_eq(tc_get(acl, "au:v1:k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	ck_assert(cache_redis_ok(acl));
	ck_assert_int_eq(tc_get(pwonly, "au:v1:k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_REDIS);
	cache_value_free(&v);
	ck_assert(cache_redis_ok(pwonly));
	ck_assert_int_eq(tc_calls(&f), 1);
	cache_free(acl);
	cache_free(pwonly);
}
END_TEST

START_TEST(auth_wrong_password_counted)
{
	struct cache_counters n;
	struct cache_value v;
	struct tc_fill f = { .data = "x", .len = 1 };
	struct cache *bad, *baduser, *none;

	bad = auth_cache(NULL, "wrong", "aw");
	baduser = auth_cache("alice", "wrong", "aw");
	none = auth_cache(NULL, NULL, "aw");
	ck_assert_int_eq(tc_get(bad, "aw:v1:k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	cache_counters_get(bad, &n);
	ck_assert_int_eq((int)n.redis_errors, 1);
	ck_assert(!cache_redis_ok(bad));
	ck_assert_int_eq(tc_get(baduser, "aw:v1:k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	cache_counters_get(baduser, &n);
	ck_assert_int_eq((int)n.redis_errors, 1);
	/* no AUTH at all: the server says NOAUTH, counted too */
	ck_assert_int_eq(tc_get(none, "aw:v1:k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	cache_counters_get(none, &n);
	ck_assert_int_ge((int)n.redis_errors, 1);
	ck_assert(!cache_redis_ok(none));
	cache_free(bad);
	cache_free(baduser);
	cache_free(none);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_redis");
	TCase *tc = tcase_create("redis");
	int rc;

	signal(SIGPIPE, SIG_IGN);	/* as the daemon does: hiredis writes with write(2) */
	if (th_redis_start(&R, 0, NULL) != 0)
		th_skip_all("redis-server not available");
	if (th_redis_start(&A, 0, "requirepass s3cret\nuser alice on >alicepw ~* &* +@all\n") != 0) {
		th_redis_stop(&R);
		th_skip_all("redis-server with ACL did not start");
	}
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, redis_running, NULL);
	tcase_add_test(tc, ttl_per_kind_absolute);
	tcase_add_test(tc, shared_between_instances_binary_safe);
	tcase_add_test(tc, cross_process_single_flight);
	tcase_add_test(tc, lock_of_another_holder_not_released);
	tcase_add_test(tc, read_only_lookup_never_answers_a_filler);
	tcase_add_test(tc, stale_from_redis_until_grace_ends);
	tcase_add_test(tc, purge_and_flush);
	tcase_add_test(tc, keyspace_sample);
	tcase_add_test(tc, counters_match_with_redis);
	tcase_add_test(tc, unix_socket);
	tcase_add_test(tc, select_db);
	tcase_add_test(tc, corrupt_entry_is_a_miss);
	tcase_add_test(tc, hostile_fetch_time_is_a_miss);
	tcase_add_test(tc, idle_context_closed_by_server_retried);
	tcase_add_test(tc, slow_redis_held_to_timeout);
	tcase_add_test(tc, auth_acl_user_and_password_only);
	tcase_add_test(tc, auth_wrong_password_counted);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_redis_stop(&R);
	th_redis_stop(&A);
	return rc;
}
