/*
 * test_alloc_fail_msg.c - allocation failure over one message (curl's "torture" way): the
 * milter's callbacks run in this process under the real libmilter, on a unix socket, and
 * miltertest sends one message (tests/milter/mt_message.lua: a From header, forged
 * X-Stripe-* headers to strip) per run; run N fails the Nth allocation counted from MAIL
 * FROM... to the end of the message (the connection's callbacks, header stripping, sender
 * extraction, the lookup it starts on the pool with the Stripe client against the stand-in,
 * the codec and the caches on a real redis-server, rendering), N = 1, 2, ... until a run
 * makes no injected failure. The address's cache entries are purged before every run, so
 * each message is a cold lookup.
 *
 * Outcome asserted every run (On-InternalError tempfail): the message is tempfailed, or
 * accepted with every forged header deleted and an X-Stripe-Lookup "v=2; ..." added - never
 * accepted with a forged header left, never a crash; under ASan LeakSanitizer is asked after
 * every run. Counted allocations and what is left out: tests/harness/th_alloc.h (libmilter's
 * own allocations are not counted either: it is a shared library).
 */
#include "config.h"

#include <libmilter/mfapi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sm_util.h"
#include "lookup/lookup.h"
#include "milter/mf_conf.h"
#include "milter/mf_milter.h"
#include "milter/mf_runtime.h"
#include "tests/harness/th.h"
#include "tests/harness/th_alloc.h"

static struct th_standin S;
static struct th_redis R;
static char dir[256], sock[300];
static struct mf_runtime *rt;
static pthread_t milter_thread;

#define AFM_STATE \
	"{\"products\":[{\"id\":\"prod_pro\",\"name\":\"Pro\"}]," \
	"\"customers\":[{\"id\":\"cus_jenny\",\"email\":\"jenny@customer.test\",\"name\":\"Jenny Rosen\"," \
	"\"created\":1709251200,\"subscriptions\":[{\"id\":\"sub_pro\",\"status\":\"active\"," \
	"\"items\":[{\"price\":{\"id\":\"price_pro\",\"unit_amount\":4900,\"currency\":\"usd\"," \
	"\"product\":\"prod_pro\",\"recurring\":{\"interval\":\"month\",\"interval_count\":1}}," \
	"\"quantity\":1}]}]}]}"

static void *afm_main(void *arg)
{
	(void)arg;
	smfi_main();
	return NULL;
}

/* The lookups a message started have ended (they may outlive it). */
static bool afm_idle(void *arg)
{
	struct lk_counters c;

	(void)arg;
	lk_counters_get(&c);
	return c.running == 0 && c.queued == 0;
}

/* One message through miltertest; its exit status (0: the script's checks held). */
static int afm_message(const char *log)
{
	char script[600];
	pid_t pid;
	int st;

	snprintf(script, sizeof(script), "%s/tests/milter/mt_message.lua", th_srcdir());
	pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "w", stdout);

		(void)f;
		dup2(1, 2);
		setenv("MT_SOCKET", sock, 1);
		setenv("MT_FORGED", "yes", 1);
		setenv("MT_REPLY", "either", 1);
		setenv("MT_EXPECT", "^v=2; ", 1);
		setenv("MT_STATUS", "*", 1);
		execlp("miltertest", "miltertest", "-s", script, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(every_allocation_of_a_message_fails_once)
{
	char log[400], out[64];
	long n, total, runs = 0;
	bool idle;
	int rc;

	ck_assert_int_eq(th_standin_state(&S, AFM_STATE), 0);
	snprintf(log, sizeof(log), "%s/miltertest.log", dir);
	/* a first message does the one-time set-ups; the second is the reference */
	ck_assert_int_eq(afm_message(log), 0);
	ck_assert(th_wait_until(afm_idle, NULL, 30000));
	for (n = 0; ; n++) {
		ck_assert(th_wait_until(afm_idle, NULL, 30000));
		ck_assert_int_eq(lk_purge(mf_runtime_lookup(rt), "jenny@customer.test", NULL, 0), 0);
		ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "FLUSHALL"), 0);
		th_alloc_arm(n);
		rc = afm_message(log);
		idle = th_wait_until(afm_idle, NULL, 30000);
		/* disarmed before any assertion: Check's own reporting allocates too */
		total = th_alloc_disarm();
		ck_assert_msg(idle, "N=%ld: the lookups of the message still ran 30 s after it", n);
		if (rc != 0) {
			char buf[2048] = "";
			FILE *f = fopen(log, "r");

			if (f) {
				size_t k = fread(buf, 1, sizeof(buf) - 1, f);

				buf[k] = '\0';
				fclose(f);
			}
			ck_abort_msg("N=%ld: miltertest exit %d:\n%s", n, rc, buf);
		}
		ck_assert_msg(th_alloc_leak_check() == 0, "N=%ld: leaked (above)", n);
		if (n == 0) {
			ck_assert_int_gt(total, 20);
			fprintf(stderr, "# alloc-fail message: %ld allocations in the reference message\n", total);
			continue;
		}
		runs++;
		if (!th_alloc_injected())
			break;
		ck_assert_msg(n < 100000, "no end to the allocations of one message");
	}
	fprintf(stderr, "# alloc-fail message: %ld runs, %d distinct call sites failed\n", runs,
	    th_alloc_sites());
}
END_TEST

int main(void)
{
	Suite *s = suite_create("alloc-fail-msg");
	TCase *tc = tcase_create("message");
	char conf[600], err[512];
	struct mf_conf *c;
	FILE *f;
	int rc;

	th_alloc_hooks();	/* before anything else allocates */
	if (access("/usr/bin/miltertest", X_OK) != 0)
		th_skip_all("miltertest is not installed (apt-get install miltertest)");
	if (th_redis_start(&R, 0, NULL) != 0)
		th_skip_all("redis-server did not start");
	if (th_standin_start(&S) != 0) {
		th_redis_stop(&R);
		th_skip_all("the Stripe stand-in (tests/standin/stripe_standin.py) did not start");
	}
	if (th_tmpdir(dir, sizeof(dir)) != 0)
		th_skip_all("no temporary folder");
	snprintf(sock, sizeof(sock), "unix:%s/milter.sock", dir);
	snprintf(conf, sizeof(conf), "%s/stripe-milter.conf", dir);
	f = fopen(conf, "w");
	if (f == NULL)
		th_skip_all("cannot write the config");
	fprintf(f, "Socket %s\nSyslog no\nLogLevel warning\nStripeKey sk_test_4eC39HqLyjWDarjtT1zdp7dc\n"
	    "StripeAPIBase %s\nRedisHost 127.0.0.1\nRedisPort %d\nRedisTimeout 2000\n"
	    "LookupTimeout 10000\nLookupThreads 2\nOn-InternalError tempfail\n", sock, S.base_url, R.port);
	fclose(f);
	c = mf_conf_load(conf, err, sizeof(err));
	if (c == NULL || (rt = mf_runtime_new(c, NULL, MF_RT_NO_PUBLISH, err, sizeof(err))) == NULL) {
		fprintf(stderr, "config: %s\n", err);
		return 1;
	}
	mf_runtime_install(rt);
	if (lk_pool_start(2, 64) != 0 || smfi_register(*mf_milter_desc()) != MI_SUCCESS ||
	    smfi_setconn(sock) != MI_SUCCESS || smfi_opensocket(true) != MI_SUCCESS ||
	    pthread_create(&milter_thread, NULL, afm_main, NULL) != 0) {
		fprintf(stderr, "cannot start the milter on %s\n", sock);
		return 1;
	}
	setenv("CK_FORK", "no", 1);	/* the milter's threads live in this process */
	tcase_set_timeout(tc, 1800);
	tcase_add_test(tc, every_allocation_of_a_message_fails_once);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	/* stopped as the daemon stops it (milter/main.c, mf_stop_listener): smfi_stop() from
	 * this thread races libmilter's listener (ThreadSanitizer: mi_closener against
	 * mi_listener's pthread_mutex_destroy); a cancel is acted on in its poll() or accept() */
	pthread_cancel(milter_thread);
	pthread_join(milter_thread, NULL);
	lk_pool_stop();
	mf_runtime_shutdown();
	th_standin_stop(&S);
	th_redis_stop(&R);
	th_rmdir(dir);
	return rc;
}
