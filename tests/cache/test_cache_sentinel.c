/*
 * test_cache_sentinel.c - the cache behind Redis Sentinel: a master, a replica and one
 * sentinel started here. The cache finds the master through the sentinel; after
 * SENTINEL FAILOVER the old master is demoted (REPLICAOF, as Sentinel itself does a few
 * seconds later), the cache's writes there get -READONLY, and it follows the sentinel
 * to the new master.
 *
 * Skipped with a message where redis-sentinel is not installed. Runs without Check's
 * fork: the servers belong to main().
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "tests/cache/tc.h"
#include "tests/harness/th.h"

static struct th_redis M, S;		/* master, replica */
static pid_t sentinel_pid = -1;
static int sentinel_port;
static char sentinel_dir[256];

static int free_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static int sentinel_start(void)
{
	char conf[300], log[300];
	char *argv[3];
	FILE *f;

	if (th_tmpdir(sentinel_dir, sizeof(sentinel_dir)) != 0)
		return -1;
	sentinel_port = free_port();
	snprintf(conf, sizeof(conf), "%s/sentinel.conf", sentinel_dir);
	snprintf(log, sizeof(log), "%s/sentinel.log", sentinel_dir);
	f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "port %d\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir %s\n"
	    "sentinel monitor mymaster 127.0.0.1 %d 1\n"
	    "sentinel down-after-milliseconds mymaster 1000\n"
	    "sentinel failover-timeout mymaster 5000\n", sentinel_port, sentinel_dir, M.port);
	fclose(f);
	argv[0] = "redis-sentinel";
	argv[1] = conf;
	argv[2] = NULL;
	sentinel_pid = th_spawn(argv, log);
	if (sentinel_pid < 0 || th_wait_port(sentinel_port, 5000) != 0) {
		printf("# sentinel did not start (log %s)\n", log);
		return -1;
	}
	return 0;
}

/* A command to the sentinel; the reply (caller frees) or NULL. */
static redisReply *sentinel_cmd(const char *fmt, const char *arg)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", sentinel_port, tv);
	redisReply *r = NULL;

	if (c && !c->err)
		r = redisCommand(c, fmt, arg);
	if (c)
		redisFree(c);
	return r;
}

static int sentinel_master_port(void)
{
	redisReply *r = sentinel_cmd("SENTINEL get-master-addr-by-name %s", "mymaster");
	long port = -1;

	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING)
		sm_parse_long(r->element[1]->str, 1, 65535, &port);
	if (r)
		freeReplyObject(r);
	return (int)port;
}

/* True when the sentinel lists the replica as a healthy slave. */
static bool sentinel_sees_replica(void)
{
	redisReply *r = sentinel_cmd("SENTINEL replicas %s", "mymaster");
	bool ok = false;
	size_t i, j;

	for (i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		redisReply *e = r->element[i];

		for (j = 0; e->type == REDIS_REPLY_ARRAY && j + 1 < e->elements; j += 2)
			if (strcmp(e->element[j]->str, "flags") == 0 && strcmp(e->element[j + 1]->str, "slave") == 0)
				ok = true;
	}
	if (r)
		freeReplyObject(r);
	return ok;
}

static bool call_cond(void *arg)
{
	return ((bool (*)(void))arg)();
}

/* Waits for cond() with a deadline (generous: Sentinel's own timers are seconds long). */
static bool wait_for(bool (*cond)(void), int ms)
{
	return th_wait_until(call_cond, (void *)cond, ms);
}

static bool failover_accepted(void)
{
	redisReply *r = sentinel_cmd("SENTINEL FAILOVER %s", "mymaster");
	bool ok = r && r->type == REDIS_REPLY_STATUS;

	if (r)
		freeReplyObject(r);
	return ok;
}

static struct cache *put_cache;

static bool put_after_succeeds(void)
{
	return cache_put(put_cache, "sn:v1:after", "2", 1, CACHE_POSITIVE) == 0;
}

static bool replica_linked(void)
{
	char out[2048];

	return th_redis_cmd(&S, out, sizeof(out), "INFO %s", "replication") == 0 &&
	    strstr(out, "master_link_status:up") != NULL;
}

static bool replica_has_before(void)
{
	char out[64];

	return th_redis_cmd(&S, out, sizeof(out), "EXISTS %s", "sn:v1:before") == 0 &&
	    strcmp(out, "1") == 0;
}

static bool failed_over(void)
{
	return sentinel_master_port() == S.port;
}

START_TEST(follows_failover)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct cache *c;
	char err[256], out[128], port[16];
	int rc;

	ck_assert_msg(wait_for(replica_linked, 30000), "replica did not sync");
	ck_assert_int_eq(sentinel_start(), 0);
	ck_assert_msg(wait_for(sentinel_sees_replica, 60000), "sentinel did not find the replica");
	ck_assert_int_eq(sentinel_master_port(), M.port);

	tc_config(&k, "sn");
	snprintf(err, sizeof(err), "127.0.0.1:%d", sentinel_port);
	k.sentinels = err;
	k.sentinel_master = "mymaster";
	k.l1_ttl_s = -1;
	k.reconnect_max_ms = 200;
	c = cache_new(&k, out, sizeof(out));
	ck_assert_msg(c != NULL, "%s", out);
	ck_assert_int_eq(cache_put(c, "sn:v1:before", "1", 1, CACHE_POSITIVE), 0);
	ck_assert_int_eq(th_redis_cmd(&M, out, sizeof(out), "EXISTS %s", "sn:v1:before"), 0);
	ck_assert_str_eq(out, "1");
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.sentinel_discoveries, 1);

	/* replication is asynchronous: fail over only once the replica has the entry */
	ck_assert_msg(wait_for(replica_has_before, 30000), "entry did not reach the replica");
	ck_assert_msg(wait_for(failover_accepted, 30000), "SENTINEL FAILOVER refused");
	ck_assert_msg(wait_for(failed_over, 60000), "sentinel did not switch to the replica");
	/* what Sentinel does to the old master a little later: demote it */
	snprintf(port, sizeof(port), "%d", S.port);
	ck_assert_int_eq(th_redis_cmd(&M, out, sizeof(out), "REPLICAOF 127.0.0.1 %s", port), 0);

	put_cache = c;
	ck_assert_msg(wait_for(put_after_succeeds, 30000), "no write reached the new master");
	ck_assert_int_eq(th_redis_cmd(&S, out, sizeof(out), "EXISTS %s", "sn:v1:after"), 0);
	ck_assert_str_eq(out, "1");
	/* the entry written before the failover was replicated and is read from the new master */
	rc = tc_get(c, "sn:v1:before", NULL, 1000, &v);
	cache_counters_get(c, &n);
	th_redis_cmd(&S, out, sizeof(out), "EXISTS %s", "sn:v1:before");
	ck_assert_msg(rc == 0 && v.source == CACHE_SRC_REDIS, "rc %d source %d, redis errors %llu, "
	    "skipped %llu, on the new master: %s", rc, v.source, (unsigned long long)n.redis_errors,
	    (unsigned long long)n.redis_skipped, out);
	cache_value_free(&v);
	cache_counters_get(c, &n);
	ck_assert_int_ge((int)n.sentinel_discoveries, 2);
	ck_assert_int_ge((int)n.redis_errors, 1);
	ck_assert(cache_redis_ok(c));
	cache_free(c);
}
END_TEST

START_TEST(unknown_master_name)
{
	struct cache_config k;
	struct cache_counters n;
	struct cache_value v;
	struct tc_fill f = { .data = "x", .len = 1 };
	struct cache *c;
	char addr[64], err[256];

	tc_config(&k, "snx");
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", sentinel_port);
	k.sentinels = addr;
	k.sentinel_master = "nosuchmaster";
	c = cache_new(&k, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(tc_get(c, "snx:v1:k", &f, 1000, &v), 0);
	ck_assert_int_eq(v.source, CACHE_SRC_FILL);
	cache_value_free(&v);
	cache_counters_get(c, &n);
	ck_assert_int_eq((int)n.sentinel_discoveries, 0);
	ck_assert_int_ge((int)n.redis_errors, 1);
	ck_assert(!cache_redis_ok(c));
	cache_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_sentinel");
	TCase *tc = tcase_create("sentinel");
	char extra[64];
	int rc;

	if (system("command -v redis-sentinel >/dev/null 2>&1") != 0)
		th_skip_all("redis-sentinel not installed (apt-get install redis-sentinel)");
	setenv("CK_FORK", "no", 1);
	signal(SIGPIPE, SIG_IGN);	/* as the daemon does: hiredis writes with write(2) */
	/* Redis 7 waits 5 s before a diskless full sync by default */
	if (th_redis_start(&M, 0, "repl-diskless-sync-delay 0\n") != 0)
		th_skip_all("redis-server not available");
	snprintf(extra, sizeof(extra), "replicaof 127.0.0.1 %d\n", M.port);
	if (th_redis_start(&S, 0, extra) != 0) {
		th_redis_stop(&M);
		th_skip_all("replica redis-server did not start");
	}
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, follows_failover);
	tcase_add_test(tc, unknown_master_name);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	if (sentinel_pid > 0)
		th_kill(sentinel_pid);
	if (getenv("TH_KEEP") == NULL)
		th_rmdir(sentinel_dir);
	th_redis_stop(&S);
	th_redis_stop(&M);
	return rc;
}
