/*
 * th.c - see th.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>

#include "common/sm_util.h"
#include "tests/harness/th.h"

static void th_msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The real monotonic clock, never the test clock (tests/harness/th_clock.c replaces
 * sm_now_ms() in some tests): the harness's own deadlines must not jump with it. */
int64_t th_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool th_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;
	int step = 1;

	for (;;) {
		if (cond(arg))
			return true;
		if (th_now_ms() >= deadline)
			return cond(arg);
		th_msleep(step);
		if (step < 20)
			step *= 2;
	}
}

int th_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	/* TAP to stdout; nothing else there, so the driver reads clean TAP. */
	srunner_set_tap(sr, "-");
	if (getenv("CK_FORK") == NULL && getenv("TH_NOFORK"))
		srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_SILENT);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

bool th_ci(void)
{
	const char *v = getenv("CI");

	return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0);
}

/* Trims spaces at both ends of s in place; returns s. */
static char *th_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

bool th_ci_skip_allowed(const char *why)
{
	char path[1024], line[1024];
	const char *me = program_invocation_short_name;
	bool allowed = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/.ci/allowed-skips", th_srcdir());
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	while (!allowed && fgets(line, sizeof(line), f)) {
		char *test = line, *reason, *because, *base, *dot;

		if (*th_trim(line) == '#' || (reason = strchr(line, '|')) == NULL)
			continue;
		*reason++ = '\0';
		if ((because = strchr(reason, '|')) == NULL)
			continue;
		*because++ = '\0';
		test = th_trim(test);
		reason = th_trim(reason);
		if (*reason == '\0' || *th_trim(because) == '\0')
			continue;
		base = strrchr(test, '/') ? strrchr(test, '/') + 1 : test;
		if ((dot = strchr(base, '.')) != NULL)
			*dot = '\0';
		allowed = strcmp(base, me) == 0 && strstr(why, reason) != NULL;
	}
	fclose(f);
	return allowed;
}

void th_skip_all(const char *why)
{
	if (th_ci() && !th_ci_skip_allowed(why)) {
		printf("1..1\nnot ok 1 - cannot run: %s\n"
		       "# CI=true: a test whose tool is missing or fails to start fails (.ci/allowed-skips)\n",
		       why);
		fflush(stdout);
		exit(1);
	}
	printf("1..0 # SKIP %s\n", why);
	fflush(stdout);
	exit(0);
}

const char *th_srcdir(void)
{
	const char *d = getenv("top_srcdir");

	return d && *d ? d : ".";
}

const char *th_builddir(void)
{
	const char *d = getenv("top_builddir");

	return d && *d ? d : ".";
}

const char *th_stripe_data(void)
{
	static char path[1024];
	struct stat st;
	const char *env = getenv("STRIPE_DATA_DIR");

	if (env && *env)
		snprintf(path, sizeof(path), "%s", env);
	else
		snprintf(path, sizeof(path), "%s/tests/data/stripe", th_srcdir());
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return NULL;
	return path;
}

int th_tmpdir(char *out, size_t len)
{
	const char *base = getenv("TMPDIR");

	snprintf(out, len, "%s/sm-test-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(out) == NULL) {
		printf("# th: mkdtemp %s: %s\n", out, strerror(errno));
		return -1;
	}
	return 0;
}

void th_rmdir(const char *dir)
{
	DIR *d;
	struct dirent *e;
	char path[1024];
	struct stat st;

	if (dir == NULL || *dir == '\0')
		return;
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			th_rmdir(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

pid_t th_spawn(char *const argv[], const char *logfile)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(logfile ? logfile : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 0);
			close(fd);
		}
		setpgid(0, 0);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

void th_kill(pid_t pid)
{
	int i, status;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (i = 0; i < 200; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		th_msleep(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static int th_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

int th_wait_port(int port, int ms)
{
	int64_t deadline = th_now_ms() + ms;

	do {
		struct sockaddr_in sa;
		int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((unsigned short)port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return 0;
		th_msleep(20);
	} while (th_now_ms() < deadline);
	return -1;
}

static bool th_have_program(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

int th_redis_start(struct th_redis *r, int port, const char *extra)
{
	char conf[300];
	FILE *f;
	char *argv[3];

	memset(r, 0, sizeof(*r));
	r->pid = -1;
	if (!th_have_program("redis-server")) {
		printf("# th: redis-server not installed (apt-get install redis-server)\n");
		return -1;
	}
	if (th_tmpdir(r->dir, sizeof(r->dir)) != 0)
		return -1;
	r->port = port > 0 ? port : th_free_port();
	snprintf(r->unix_path, sizeof(r->unix_path), "%s/redis.sock", r->dir);
	snprintf(r->log, sizeof(r->log), "%s/redis.log", r->dir);
	snprintf(conf, sizeof(conf), "%s/redis.conf", r->dir);
	f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "bind 127.0.0.1\nport %d\nunixsocket %s\nunixsocketperm 700\n"
	    "save \"\"\nappendonly no\ndir %s\ndaemonize no\nenable-debug-command yes\n%s",
	    r->port, r->unix_path, r->dir, extra ? extra : "");
	fclose(f);
	argv[0] = "redis-server";
	argv[1] = conf;
	argv[2] = NULL;
	r->pid = th_spawn(argv, r->log);
	if (r->pid < 0 || th_wait_port(r->port, 30000) != 0) {
		printf("# th: redis-server did not start on port %d (log %s)\n", r->port, r->log);
		th_redis_stop(r);
		return -1;
	}
	return 0;
}

/* For th_wait_until(): the process *arg is stopped (state T in /proc/PID/stat). */
static bool th_pid_stopped(void *arg)
{
	char path[64], buf[256], *p;
	bool stopped = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)*(pid_t *)arg);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL && p[1] == ' ')
		stopped = p[2] == 'T' || p[2] == 't';
	fclose(f);
	return stopped;
}

int th_redis_pause(struct th_redis *r)
{
	if (r->pid <= 0 || kill(r->pid, SIGSTOP) != 0)
		return -1;
	return th_wait_until(th_pid_stopped, &r->pid, 30000) ? 0 : -1;
}

void th_redis_resume(struct th_redis *r)
{
	if (r->pid > 0)
		kill(r->pid, SIGCONT);
}

void th_redis_stop(struct th_redis *r)
{
	if (r->pid > 0)
		th_kill(r->pid);
	r->pid = -1;
	if (getenv("TH_KEEP") == NULL)
		th_rmdir(r->dir);
}

int th_redis_cmd(const struct th_redis *r, char *out, size_t len, const char *fmt, ...)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
	redisReply *rep;
	va_list ap;
	int rc = -1;

	out[0] = '\0';
	if (c == NULL || c->err)
		goto out;
	redisSetTimeout(c, tv);
	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (rep == NULL)
		goto out;
	switch (rep->type) {
	case REDIS_REPLY_INTEGER:
		snprintf(out, len, "%lld", rep->integer);
		break;
	case REDIS_REPLY_NIL:
		snprintf(out, len, "(nil)");
		break;
	case REDIS_REPLY_ARRAY:
		snprintf(out, len, "%zu", rep->elements);
		break;
	default:
		snprintf(out, len, "%.*s", (int)rep->len, rep->str ? rep->str : "");
		break;
	}
	freeReplyObject(rep);
	rc = 0;
out:
	if (c)
		redisFree(c);
	return rc;
}

static int th_read_port_file(const char *path, int ms)
{
	int64_t deadline = th_now_ms() + ms;

	do {
		FILE *f = fopen(path, "r");
		long port;
		char line[32];

		if (f) {
			if (fgets(line, sizeof(line), f)) {
				line[strcspn(line, "\r\n")] = '\0';
				if (sm_parse_long(line, 1, 65535, &port) == 0) {
					fclose(f);
					return (int)port;
				}
			}
			fclose(f);
		}
		th_msleep(20);
	} while (th_now_ms() < deadline);
	return -1;
}

int th_standin_start(struct th_standin *s)
{
	char script[1024], portfile[300];
	const char *py = getenv("PYTHON3");
	char *argv[8];

	memset(s, 0, sizeof(*s));
	s->pid = -1;
	if (th_tmpdir(s->dir, sizeof(s->dir)) != 0)
		return -1;
	snprintf(script, sizeof(script), "%s/tests/standin/stripe_standin.py", th_srcdir());
	snprintf(portfile, sizeof(portfile), "%s/port", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/standin.log", s->dir);
	argv[0] = (char *)(py && *py ? py : "python3");
	argv[1] = script;
	argv[2] = "--port";
	argv[3] = "0";
	argv[4] = "--port-file";
	argv[5] = portfile;
	argv[6] = NULL;
	s->pid = th_spawn(argv, s->log);
	s->port = s->pid > 0 ? th_read_port_file(portfile, 30000) : -1;
	if (s->port < 0) {
		printf("# th: Stripe stand-in did not start (log %s)\n", s->log);
		th_standin_stop(s);
		return -1;
	}
	snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d", s->port);
	return 0;
}

void th_standin_stop(struct th_standin *s)
{
	if (s->pid > 0)
		th_kill(s->pid);
	s->pid = -1;
	if (getenv("TH_KEEP") == NULL)
		th_rmdir(s->dir);
}

static size_t th_collect(char *data, size_t size, size_t n, void *arg)
{
	struct sm_buf *b = arg;

	return sm_buf_append(b, data, size * n) == 0 ? size * n : 0;
}

int th_standin_call(struct th_standin *s, const char *method, const char *path, const char *json,
    char **resp)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct sm_buf body;
	char url[512];
	long status = -1;

	sm_buf_init(&body, 64u << 20);
	if (resp)
		*resp = NULL;
	if (h == NULL)
		goto out;
	snprintf(url, sizeof(url), "%s%s", s->base_url, path);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	/* a Stripe path called from here is a test's own request (no key), never the client's:
	 * the contract audit (tests/standin/contract_audit.py) reports it as declared */
	if (strncmp(path, "/v1/", 4) == 0)
		hdr = curl_slist_append(hdr, "X-Standin-Outside-Contract: th_standin_call, a harness "
		    "request without a key");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	if (json)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, th_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	else
		printf("# th: stand-in %s %s failed\n", method, path);
out:
	if (resp && body.data) {
		*resp = body.data;
		body.data = NULL;
	}
	sm_buf_free(&body);
	curl_slist_free_all(hdr);
	if (h)
		curl_easy_cleanup(h);
	return (int)status;
}

int th_standin_state(struct th_standin *s, const char *json)
{
	char *resp = NULL;
	int st = th_standin_call(s, "PUT", "/_standin/state", json, &resp);

	if (st != 200)
		printf("# th: PUT /_standin/state -> %d %s\n", st, resp ? resp : "");
	free(resp);
	return st == 200 ? 0 : -1;
}

int th_standin_faults(struct th_standin *s, const char *json)
{
	char *resp = NULL;
	int st = th_standin_call(s, "PUT", "/_standin/faults", json, &resp);

	if (st != 200)
		printf("# th: PUT /_standin/faults -> %d %s\n", st, resp ? resp : "");
	free(resp);
	return st == 200 ? 0 : -1;
}

void th_standin_reset_counts(struct th_standin *s)
{
	th_standin_call(s, "POST", "/_standin/requests/reset", "{}", NULL);
}

long th_standin_count(struct th_standin *s, const char *endpoint)
{
	char *resp = NULL, *p, needle[80];
	long n = -1;

	if (th_standin_call(s, "GET", "/_standin/requests", NULL, &resp) != 200 || resp == NULL)
		goto out;
	if (strcmp(endpoint, "*") == 0) {
		p = strstr(resp, "\"total\":");
		if (p)
			n = strtol(p + 8, NULL, 10);
		goto out;
	}
	/* by_endpoint is a flat object of counts: "name": n (endpoints absent count 0). */
	p = strstr(resp, "\"by_endpoint\":");
	snprintf(needle, sizeof(needle), "\"%s\":", endpoint);
	n = 0;
	if (p && (p = strstr(p, needle)) != NULL)
		n = strtol(p + strlen(needle), NULL, 10);
out:
	free(resp);
	return n;
}

long th_standin_max_in_flight(struct th_standin *s)
{
	char *resp = NULL, *p;
	long n = -1;

	if (th_standin_call(s, "GET", "/_standin/requests?endpoint=none", NULL, &resp) == 200 && resp &&
	    (p = strstr(resp, "\"max_in_flight\":")) != NULL)
		n = strtol(p + 16, NULL, 10);
	free(resp);
	return n;
}

int th_prism_start(struct th_prism *p, char *why, size_t whylen)
{
	char prism[1024], spec[1024], port[16];
	const char *data = th_stripe_data();
	struct stat st;
	char *argv[10];
	int64_t deadline;

	memset(p, 0, sizeof(*p));
	p->pid = -1;
	snprintf(prism, sizeof(prism), "%s/tests/prism/node_modules/.bin/prism", th_srcdir());
	if (getenv("PRISM"))
		snprintf(prism, sizeof(prism), "%s", getenv("PRISM"));
	if (data == NULL) {
		snprintf(why, whylen, "tests/data/stripe is absent: no OpenAPI spec to validate against");
		return -1;
	}
	snprintf(spec, sizeof(spec), "%s/openapi-lookup-strict.json", data);
	if (stat(spec, &st) != 0) {
		snprintf(why, whylen, "%s is absent", spec);
		return -1;
	}
	if (access(prism, X_OK) != 0) {
		snprintf(why, whylen, "Prism not installed (run ./install-deps.sh: npm @stoplight/prism-cli@5.14.2)");
		return -1;
	}
	if (th_tmpdir(p->dir, sizeof(p->dir)) != 0) {
		snprintf(why, whylen, "no temp dir");
		return -1;
	}
	p->port = th_free_port();
	snprintf(port, sizeof(port), "%d", p->port);
	snprintf(p->log, sizeof(p->log), "%s/prism.log", p->dir);
	argv[0] = prism;
	argv[1] = "mock";
	argv[2] = spec;
	argv[3] = "-h";
	argv[4] = "127.0.0.1";
	argv[5] = "-p";
	argv[6] = port;
	argv[7] = NULL;
	p->pid = th_spawn(argv, p->log);
	snprintf(p->base_url, sizeof(p->base_url), "http://127.0.0.1:%d", p->port);
	deadline = th_now_ms() + 60000;
	while (p->pid > 0 && th_now_ms() < deadline) {
		struct th_standin probe;
		char *resp = NULL;
		int status;

		memset(&probe, 0, sizeof(probe));
		snprintf(probe.base_url, sizeof(probe.base_url), "%s", p->base_url);
		if (th_wait_port(p->port, 200) == 0) {
			status = th_standin_call(&probe, "GET", "/v1/account", NULL, &resp);
			free(resp);
			if (status > 0)
				return 0;
		}
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			p->pid = -1;
			break;
		}
		th_msleep(200);
	}
	snprintf(why, whylen, "Prism did not come up (log %s)", p->log);
	th_prism_stop(p);
	return -1;
}

void th_prism_stop(struct th_prism *p)
{
	if (p->pid > 0) {
		/* npx/node may start children: the process group goes too. */
		kill(-p->pid, SIGTERM);
		th_kill(p->pid);
		kill(-p->pid, SIGKILL);
	}
	p->pid = -1;
	if (getenv("TH_KEEP") == NULL)
		th_rmdir(p->dir);
}
