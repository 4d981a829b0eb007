/*
 * test_cache_restart.c - Redis killed in the middle of a run and restarted on the same
 * port: lookups from several threads go on (L1 + fill), none waits past the timeouts,
 * a dead Redis is not hammered (backoff), and the cache reconnects by itself.
 *
 * The case kills and restarts the server it started, so it runs without Check's fork.
 * Every phase waits for the state it needs (lookups done, Redis seen down, reconnected),
 * never for a time; the only time bounds are generous ones on the lookups' own timeouts.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/cache/tc.h"
#include "tests/harness/th.h"

static struct th_redis R;

struct loop {
	struct cache *c;
	int id;
	volatile int stop;
	long n, failed, n_down;
	int64_t max_ms;
	int *down;		/* set by the main thread, read atomically */
};

static void *lookup_loop(void *arg)
{
	struct loop *l = arg;
	struct tc_fill f = { .data = "v", .len = 1 };
	long i = 0;

	while (!__atomic_load_n(&l->stop, __ATOMIC_SEQ_CST)) {
		struct cache_value v;
		char key[64];
		int64_t t0 = sm_now_ms(), took;

		snprintf(key, sizeof(key), "rs:v1:%d:%ld", l->id, i++);
		if (tc_get(l->c, key, &f, 30000, &v) != 0)
			l->failed++;
		cache_value_free(&v);
		took = sm_now_ms() - t0;
		if (took > l->max_ms)
			l->max_ms = took;
		__atomic_add_fetch(&l->n, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(l->down, __ATOMIC_SEQ_CST))
			__atomic_add_fetch(&l->n_down, 1, __ATOMIC_SEQ_CST);
		tc_sleep_ms(2);		/* pacing of the load, not synchronisation */
	}
	return NULL;
}

struct progress {
	struct loop *loops;
	int nloops;
	long n, n_down;		/* wait for at least these totals */
	struct cache *c;
	int redis_ok;		/* -1 any, 0 down, 1 up */
	bool skipped;		/* and a call skipped by the backoff */
};

/* For th_wait_until(): the loops made the progress asked for, in the Redis state asked for. */
static bool progressed(void *arg)
{
	struct progress *p = arg;
	struct cache_counters n;
	long total = 0, down = 0;
	int i;

	for (i = 0; i < p->nloops; i++) {
		total += __atomic_load_n(&p->loops[i].n, __ATOMIC_SEQ_CST);
		down += __atomic_load_n(&p->loops[i].n_down, __ATOMIC_SEQ_CST);
	}
	if (total < p->n || down < p->n_down)
		return false;
	if (p->redis_ok >= 0 && cache_redis_ok(p->c) != (p->redis_ok == 1))
		return false;
	if (p->skipped) {
		cache_counters_get(p->c, &n);
		if (n.redis_skipped == 0)
			return false;
	}
	return true;
}

static long loops_total(struct loop *loops, int nloops)
{
	long total = 0;
	int i;

	for (i = 0; i < nloops; i++)
		total += __atomic_load_n(&loops[i].n, __ATOMIC_SEQ_CST);
	return total;
}

START_TEST(redis_killed_and_restarted)
{
	enum { N = 4 };
	struct cache_config k;
	struct cache_counters before, mid, after;
	struct th_redis R2;
	struct progress pr;
	struct loop loops[N];
	pthread_t th[N];
	struct cache *c;
	int down = 0;
	char err[256], out[64];
	long total = 0, failed = 0, during_down;
	int64_t max_ms = 0;
	int i;

	tc_config(&k, "rs");
	k.redis_host = "127.0.0.1";
	k.redis_port = R.port;
	k.command_timeout_ms = 200;
	k.connect_timeout_ms = 200;
	k.reconnect_max_ms = 300;
	c = cache_new(&k, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	for (i = 0; i < N; i++) {
		loops[i] = (struct loop){ .c = c, .id = i, .down = &down };
		pthread_create(&th[i], NULL, lookup_loop, &loops[i]);
	}
	pr = (struct progress){ loops, N, 20, 0, c, 1, false };
	ck_assert_msg(th_wait_until(progressed, &pr, 30000), "no lookups with Redis up");
	cache_counters_get(c, &before);
	ck_assert_int_eq((int)before.redis_errors, 0);

	/* kill it */
	__atomic_store_n(&down, 1, __ATOMIC_SEQ_CST);
	th_kill(R.pid);
	R.pid = -1;
	/* Time stands still for the cache while Redis is down: the backoff of the first
	 * failures cannot run out, so the count of attempts below does not depend on how fast
	 * this machine runs the lookups. */
	th_clock_freeze(true);
	/* many lookups while it is down, Redis seen down, calls skipped by the backoff */
	pr = (struct progress){ loops, N, 0, 40, c, 0, true };
	ck_assert_msg(th_wait_until(progressed, &pr, 30000), "lookups stalled while Redis was down");
	cache_counters_get(c, &mid);
	during_down = 0;
	for (i = 0; i < N; i++)
		during_down += __atomic_load_n(&loops[i].n_down, __ATOMIC_SEQ_CST);
	th_clock_freeze(false);

	/* the same port again */
	ck_assert_int_eq(th_redis_start(&R2, R.port, NULL), 0);
	__atomic_store_n(&down, 0, __ATOMIC_SEQ_CST);
	/* reconnected by itself, and lookups go on after it */
	pr = (struct progress){ loops, N, loops_total(loops, N) + 4 * N, 0, c, 1, false };
	ck_assert_msg(th_wait_until(progressed, &pr, 60000), "no reconnect within 60 s");
	for (i = 0; i < N; i++)
		__atomic_store_n(&loops[i].stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		total += loops[i].n;
		failed += loops[i].failed;
		if (loops[i].max_ms > max_ms)
			max_ms = loops[i].max_ms;
	}
	cache_counters_get(c, &after);
	printf("# lookups %ld (%ld while down), max %lld ms, redis errors %llu, skipped %llu, "
	    "reconnects %llu\n", total, during_down, (long long)max_ms,
	    (unsigned long long)after.redis_errors, (unsigned long long)after.redis_skipped,
	    (unsigned long long)after.redis_reconnects);
	ck_assert_int_eq((int)failed, 0);
	/* No lookup waited for the dead Redis past its timeouts (200 ms command, 200 ms
	 * connect, a 250 ms lock wait): the bound is 5x those, far below the 30 s deadline. */
	ck_assert_int_lt((int)max_ms, 5 * (200 + 200 + 250));
	ck_assert_int_ge((int)mid.redis_errors, 1);
	ck_assert_int_ge((int)after.redis_reconnects, 1);
	ck_assert_int_gt((int)mid.redis_skipped, 0);
	/* not hammered: with the backoff running, only the calls in flight when Redis died
	 * failed (at most GET, SET NX and SET of each of the N lookups); the other lookups while
	 * it was down never touched the network */
	ck_assert_int_ge((int)during_down, 40);
	ck_assert_int_le((int)mid.redis_errors, 3 * N);
	ck_assert_int_eq((int)after.lookups, (int)total);
	/* new entries reach the restarted server */
	{
		struct cache_value v;
		struct tc_fill f = { .data = "after", .len = 5 };

		ck_assert_int_eq(tc_get(c, "rs:v1:after", &f, 1000, &v), 0);
		cache_value_free(&v);
		ck_assert_int_eq(th_redis_cmd(&R2, out, sizeof(out), "EXISTS %s", "rs:v1:after"), 0);
		ck_assert_str_eq(out, "1");
	}
	cache_free(c);
	th_redis_stop(&R2);
}
END_TEST

static int free_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

START_TEST(redis_down_from_the_start)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct tc_fill f = { .data = "v", .len = 1 };
	struct cache *c;
	char err[256];
	int i;
	int64_t t0;

	tc_config(&k, "dn");
	k.redis_host = "127.0.0.1";
	k.redis_port = free_port();	/* nothing listens there */
	c = cache_new(&k, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	/* Time stands still for the cache: the backoff of the first failure cannot run out
	 * during the 50 lookups, however slow the machine. */
	th_clock_freeze(true);
	t0 = th_now_ms();
	for (i = 0; i < 50; i++) {
		ck_assert_int_eq(tc_get(c, "dn:v1:k", &f, 30000, &v), 0);
		cache_value_free(&v);
	}
	/* each lookup held to the connect timeout (300 ms) would take 15 s: 5 s is generous */
	ck_assert_int_lt((int)(th_now_ms() - t0), 5000);
	th_clock_freeze(false);
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.fills, 1);
	ck_assert_int_eq((int)n.l1_hits, 49);
	ck_assert_int_ge((int)n.redis_errors, 1);
	ck_assert_int_eq((int)n.redis_errors, 1);
	ck_assert(!cache_redis_ok(c));
	cache_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_restart");
	TCase *tc = tcase_create("restart");
	int rc;

	setenv("CK_FORK", "no", 1);	/* the case restarts a server it owns */
	signal(SIGPIPE, SIG_IGN);	/* as the daemon does: hiredis writes with write(2) */
	if (th_redis_start(&R, 0, NULL) != 0)
		th_skip_all("redis-server not available");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, redis_killed_and_restarted);
	tcase_add_test(tc, redis_down_from_the_start);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_redis_stop(&R);
	return rc;
}
