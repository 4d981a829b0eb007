/*
 * test_cache_restart.c - Redis killed in the middle of a run and restarted on the same
 * port: lookups from several threads go on (L1 + fill), none waits past the timeouts,
 * a dead Redis is not hammered (backoff), and the cache reconnects by itself.
 *
 * The case kills and restarts the server it started, so it runs without Check's fork.
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
	volatile int *down;
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
		if (tc_get(l->c, key, &f, 2000, &v) != 0)
			l->failed++;
		cache_value_free(&v);
		took = sm_now_ms() - t0;
		if (took > l->max_ms)
			l->max_ms = took;
		l->n++;
		if (*l->down)
			l->n_down++;
		tc_sleep_ms(2);
	}
	return NULL;
}

START_TEST(redis_killed_and_restarted)
{
	enum { N = 4 };
	struct cache_config k;
	struct cache_counters before, mid, after;
	struct th_redis R2;
	struct loop loops[N];
	pthread_t th[N];
	struct cache *c;
	volatile int down = 0;
	char err[256], out[64];
	long total = 0, failed = 0, during_down = 0;
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
	tc_sleep_ms(300);
	ck_assert(cache_redis_ok(c));
	cache_counters_get(c, &before);
	ck_assert_int_eq((int)before.redis_errors, 0);

	/* kill it */
	down = 1;
	th_kill(R.pid);
	R.pid = -1;
	tc_sleep_ms(700);
	cache_counters_get(c, &mid);
	ck_assert(!cache_redis_ok(c));

	/* the same port again */
	ck_assert_int_eq(th_redis_start(&R2, R.port, NULL), 0);
	down = 0;
	for (i = 0; i < 60 && !cache_redis_ok(c); i++)
		tc_sleep_ms(50);
	ck_assert_msg(cache_redis_ok(c), "no reconnect within 3 s");
	tc_sleep_ms(100);
	for (i = 0; i < N; i++)
		__atomic_store_n(&loops[i].stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		total += loops[i].n;
		failed += loops[i].failed;
		during_down += loops[i].n_down;
		if (loops[i].max_ms > max_ms)
			max_ms = loops[i].max_ms;
	}
	cache_counters_get(c, &after);
	printf("# lookups %ld (%ld while down), max %lld ms, redis errors %llu, skipped %llu, "
	    "reconnects %llu\n", total, during_down, (long long)max_ms,
	    (unsigned long long)after.redis_errors, (unsigned long long)after.redis_skipped,
	    (unsigned long long)after.redis_reconnects);
	ck_assert_int_eq((int)failed, 0);
	ck_assert_int_lt((int)max_ms, 200 + 200 + 250);
	ck_assert_int_ge((int)mid.redis_errors, 1);
	ck_assert_int_ge((int)after.redis_reconnects, 1);
	ck_assert_int_gt((int)mid.redis_skipped, 0);
	/* not hammered: a handful of attempts over 700 ms of many lookups */
	ck_assert_int_gt((int)during_down, 40);
	ck_assert_int_le((int)mid.redis_errors, 16);
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
	t0 = sm_now_ms();
	for (i = 0; i < 50; i++) {
		ck_assert_int_eq(tc_get(c, "dn:v1:k", &f, 500, &v), 0);
		cache_value_free(&v);
	}
	ck_assert_int_lt((int)(sm_now_ms() - t0), 500);
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.fills, 1);
	ck_assert_int_eq((int)n.l1_hits, 49);
	ck_assert_int_ge((int)n.redis_errors, 1);
	ck_assert_int_le((int)n.redis_errors, 3);
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
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, redis_killed_and_restarted);
	tcase_add_test(tc, redis_down_from_the_start);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_redis_stop(&R);
	return rc;
}
