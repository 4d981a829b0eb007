/*
 * test_harness.c - tests of the test harness itself: servers start on free ports, answer,
 * and are gone after stop.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness/th.h"

static bool th_gone(pid_t pid)
{
	return kill(pid, 0) != 0;
}

START_TEST(redis_start_answers_and_stops)
{
	struct th_redis r;
	char out[64];
	pid_t pid;

	ck_assert_int_eq(th_redis_start(&r, 0, NULL), 0);
	ck_assert_int_gt(r.port, 0);
	ck_assert_int_eq(th_redis_cmd(&r, out, sizeof(out), "PING"), 0);
	ck_assert_str_eq(out, "PONG");
	ck_assert_int_eq(th_redis_cmd(&r, out, sizeof(out), "SET %s %s", "k", "v"), 0);
	ck_assert_int_eq(th_redis_cmd(&r, out, sizeof(out), "GET %s", "k"), 0);
	ck_assert_str_eq(out, "v");
	ck_assert_int_eq(access(r.unix_path, F_OK), 0);
	pid = r.pid;
	th_redis_stop(&r);
	ck_assert(th_gone(pid));
	ck_assert_int_ne(th_redis_cmd(&r, out, sizeof(out), "PING"), 0);
}
END_TEST

START_TEST(redis_two_instances_get_different_ports)
{
	struct th_redis a, b;

	ck_assert_int_eq(th_redis_start(&a, 0, NULL), 0);
	ck_assert_int_eq(th_redis_start(&b, 0, "requirepass s3cret\n"), 0);
	ck_assert_int_ne(a.port, b.port);
	{
		char out[128];

		ck_assert_int_eq(th_redis_cmd(&b, out, sizeof(out), "PING"), 0);
		ck_assert_msg(strncmp(out, "NOAUTH", 6) == 0, "expected NOAUTH, got %s", out);
	}
	th_redis_stop(&a);
	th_redis_stop(&b);
}
END_TEST

START_TEST(standin_starts_counts_and_stops)
{
	struct th_standin s;
	char *resp = NULL;
	pid_t pid;

	ck_assert_int_eq(th_standin_start(&s), 0);
	ck_assert_int_eq(th_standin_call(&s, "GET", "/_standin/health", NULL, &resp), 200);
	free(resp);
	ck_assert_int_eq(th_standin_count(&s, "*"), 0);
	ck_assert_int_eq(th_standin_state(&s, "{\"customers\":[{\"email\":\"a@example.com\"}]}"), 0);
	ck_assert_int_eq(th_standin_call(&s, "GET", "/v1/customers?email=a%40example.com", NULL, &resp), 401);
	free(resp);
	ck_assert_int_eq(th_standin_count(&s, "customers"), 1);
	th_standin_reset_counts(&s);
	ck_assert_int_eq(th_standin_count(&s, "*"), 0);
	pid = s.pid;
	th_standin_stop(&s);
	ck_assert(th_gone(pid));
}
END_TEST

static bool pid_gone(void *arg)
{
	return th_gone(*(pid_t *)arg);
}

START_TEST(spawned_server_dies_with_its_parent)
{
	/* A child process starts redis and is killed without cleaning up: PDEATHSIG must
	 * take redis down with it. */
	int fds[2];
	pid_t child, redis_pid = 0;

	ck_assert_int_eq(pipe(fds), 0);
	child = fork();
	if (child == 0) {
		struct th_redis r;

		close(fds[0]);
		if (th_redis_start(&r, 0, NULL) != 0)
			_exit(1);
		if (write(fds[1], &r.pid, sizeof(r.pid)) != (ssize_t)sizeof(r.pid))
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &redis_pid, sizeof(redis_pid)), (ssize_t)sizeof(redis_pid));
	close(fds[0]);
	ck_assert(!th_gone(redis_pid));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	ck_assert_msg(th_wait_until(pid_gone, &redis_pid, 30000),
	    "redis-server outlived the process that started it");
}
END_TEST

/* Runs th_skip_all(why) in a child with CI=ci and top_srcdir=top; returns its exit status and
 * its stdout in out. */
static int skip_all_in_child(const char *ci, const char *top, const char *why, char *out, size_t len)
{
	int fds[2], status = -1;
	ssize_t n, got = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		setenv("CI", ci, 1);
		setenv("top_srcdir", top, 1);
		th_skip_all(why);
	}
	close(fds[1]);
	while ((size_t)got < len - 1 && (n = read(fds[0], out + got, len - 1 - (size_t)got)) > 0)
		got += n;
	out[got] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(skip_all_fails_under_ci_unless_allowed)
{
	char top[512], path[600], out[512];
	FILE *f;

	ck_assert_int_eq(th_tmpdir(top, sizeof(top)), 0);
	ck_assert_int_eq(skip_all_in_child("", top, "no tool", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "1..0 # SKIP no tool\n");
	ck_assert_int_eq(skip_all_in_child("true", top, "no tool", out, sizeof(out)), 1);
	ck_assert_msg(strncmp(out, "1..1\nnot ok 1 - cannot run: no tool\n", 35) == 0, "%s", out);
	snprintf(path, sizeof(path), "%s/.ci", top);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/.ci/allowed-skips", top);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("# a comment\ntests/harness/test_harness | no to | why it is fine\n"
	      "tests/harness/test_harness | other |\n", f);
	fclose(f);
	ck_assert_int_eq(skip_all_in_child("true", top, "no tool", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "1..0 # SKIP no tool\n");
	/* Listed without a reason why: not allowed. */
	ck_assert_int_eq(skip_all_in_child("true", top, "other thing", out, sizeof(out)), 1);
	th_rmdir(top);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("harness");
	TCase *tc = tcase_create("servers");

	if (system("command -v redis-server >/dev/null 2>&1") != 0)
		th_skip_all("redis-server not installed (apt-get install redis-server)");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, skip_all_fails_under_ci_unless_allowed);
	tcase_add_test(tc, redis_start_answers_and_stops);
	tcase_add_test(tc, redis_two_instances_get_different_ports);
	tcase_add_test(tc, standin_starts_counts_and_stops);
	tcase_add_test(tc, spawned_server_dies_with_its_parent);
	suite_add_tcase(s, tc);
	return th_run(s);
}
