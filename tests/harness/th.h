/*
 * th.h - test harness for the C tests: Check suites reported as TAP, and real servers
 * (redis-server, the Stripe stand-in, Prism) on free loopback ports in a temp folder.
 *
 * Interface:
 *	th_run(suite)		runs a Check suite, TAP on stdout (one line per case); returns
 *				the process exit code.
 *	th_skip_all(why)	prints "1..0 # SKIP why" and exits 0: the driver counts a skip.
 *				Under CI=true (th_ci()) it prints a failing test and exits 1
 *				instead, unless .ci/allowed-skips lists this program with a
 *				reason that is a substring of why (th_ci_skip_allowed()).
 *	th_redis_start/stop	a private redis-server (TCP port and unix socket); -1 when
 *				redis-server is not installed (the caller skips).
 *	th_standin_start/stop	tests/standin/stripe_standin.py; th_standin_put() scripts it,
 *				th_standin_count() reads how many requests an endpoint served,
 *				th_standin_max_in_flight() the most it had in flight at once.
 *	th_prism_start/stop	Prism on the strict spec; -1 when Prism or the spec is absent.
 *	th_wait_until(cond, arg, ms)	waits for a condition with a deadline (no sleeps as
 *				synchronisation in tests: wait for the state itself).
 *	th_stripe_data()	path of tests/data/stripe (Stripe's reference data; $STRIPE_DATA_DIR
 *				overrides), or NULL when absent.
 *
 * Servers are started with PR_SET_PDEATHSIG so they die with the test process even when it
 * crashes, and are stopped by PID (SIGTERM, then SIGKILL after 2 s). Start them from
 * unchecked fixtures or main(), not inside a forked test case.
 *
 * Diagnostics: failures print "# th: ..." lines (TAP comments) on stdout.
 */
#ifndef TH_H
#define TH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <check.h>

int th_run(Suite *s);
void th_skip_all(const char *why) __attribute__((noreturn));
bool th_ci(void);			/* $CI is true, 1 or yes */
/* Polls cond(arg) (every 1-20 ms) until it is true or timeout_ms pass on the real monotonic
 * clock; returns its last value. How tests wait for a state: give a generous timeout, it only
 * bounds a failing run. */
bool th_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);
int64_t th_now_ms(void);		/* real monotonic ms (not the test clock) */

/* The test clock (tests/harness/th_clock.c, linked only into the tests that list it among
 * their sources): moves sm_now_ms() and sm_wall_ms() forward by ms for the code under test,
 * so TTL tests never sleep. Call it only while the code under test is idle. */
void th_clock_advance_ms(int64_t ms);
int64_t th_clock_offset(void);		/* total advanced so far */
/* The test clock stands still (on) until released (off), then carries on from there. */
void th_clock_freeze(bool on);
bool th_ci_skip_allowed(const char *why);	/* .ci/allowed-skips lists this program + why */
/* A new private temp folder (mkdtemp under $TMPDIR or /tmp), removed by th_rmdir. */
int th_tmpdir(char *out, size_t len);
void th_rmdir(const char *dir);
const char *th_srcdir(void);	/* $top_srcdir or "." */
const char *th_builddir(void);	/* $top_builddir or "." */
const char *th_stripe_data(void);

/* Spawns argv with stdout/stderr to logfile; returns pid or -1. */
pid_t th_spawn(char *const argv[], const char *logfile);
/* SIGTERM, wait up to 2 s, then SIGKILL; reaps. */
void th_kill(pid_t pid);
/* Waits until 127.0.0.1:port accepts a connection, up to ms. 0 or -1. */
int th_wait_port(int port, int ms);

struct th_redis {
	pid_t pid;
	int port;
	char dir[256];
	char unix_path[300];
	char log[300];
};
/* extra: more redis.conf lines (e.g. "requirepass x\n"), may be NULL. port 0 = pick one. */
int th_redis_start(struct th_redis *r, int port, const char *extra);
/* A stalled Redis: the server stopped (SIGSTOP; returns once it is), answering nothing until
 * th_redis_resume() (SIGCONT). 0 or -1. A test that pauses should resume in a checked
 * fixture too, so that a failing case does not leave the server stopped. */
int th_redis_pause(struct th_redis *r);
void th_redis_resume(struct th_redis *r);
void th_redis_stop(struct th_redis *r);
/* Runs a command through hiredis and returns the reply as text in out ("OK", an integer,
 * "(nil)", "ERR ..."). 0 on a reply, -1 on connection failure. */
int th_redis_cmd(const struct th_redis *r, char *out, size_t len, const char *fmt, ...);

struct th_standin {
	pid_t pid;
	int port;
	char dir[256];
	char base_url[64];
	char log[300];
};
int th_standin_start(struct th_standin *s);
void th_standin_stop(struct th_standin *s);
/* Sends method+path with a JSON body to the admin API; *resp (malloc'd, may be NULL) gets
 * the body. Returns the HTTP status, or -1. */
int th_standin_call(struct th_standin *s, const char *method, const char *path, const char *json,
    char **resp);
int th_standin_state(struct th_standin *s, const char *json);	/* PUT /_standin/state; 0 or -1 */
int th_standin_faults(struct th_standin *s, const char *json);	/* PUT /_standin/faults */
void th_standin_reset_counts(struct th_standin *s);
/* Requests an endpoint served since the last reset ("*" = all); -1 on error. */
long th_standin_count(struct th_standin *s, const char *endpoint);
/* The most Stripe requests the stand-in had in flight at once since the last reset; -1 on error. */
long th_standin_max_in_flight(struct th_standin *s);

struct th_prism {
	pid_t pid;
	int port;
	char dir[256];
	char base_url[64];
	char log[300];
};
/* Starts Prism on the strict spec and waits until it answers (up to 60 s); -1 when Prism or
 * the spec is missing (why says which) or it did not come up. */
int th_prism_start(struct th_prism *p, char *why, size_t whylen);
void th_prism_stop(struct th_prism *p);

#endif
