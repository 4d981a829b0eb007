/*
 * main.c - stripe-milter: command line, start-up order, signals, reload, stop.
 *
 * Start-up order matters:
 *	1. read the config (as the starting user);
 *	2. block HUP, TERM, INT, USR1, USR2 before any thread exists; main() itself then
 *	   waits for them (USR1 = reload, USR2 = log counters, the rest = stop); libmilter's
 *	   own signal thread takes none (see sigwait() below);
 *	3. detach (fork) while still single-threaded;
 *	4. take the pid file's lock (root-owned; a second daemon stops here, before it could
 *	   replace the first one's socket), open the milter socket, set its group, drop
 *	   privileges (nothing to drop when started as UserID, as the systemd unit does with
 *	   User=: the socket's group then needs UserID to be a member of SocketGroup);
 *	5. build the runtime (its threads start here), reading the Stripe key and the Redis
 *	   password AS THE USER THE DAEMON RUNS AS: a reload (SIGUSR1) re-reads them after
 *	   privileges were dropped, so the start checks exactly what a reload needs (key
 *	   root:stripe-milter 0440 or owned by the milter user 0400; see common/sm_secret.h);
 *	6. smfi_main() in a thread until stopped; a stop cancels that thread (see
 *	   mf_stop_listener: smfi_stop() cannot stop libmilter's listener without a chance of
 *	   an error line), waits up to StopTimeout for the messages in progress to finish
 *	   (mf_drain), then stops the lookup threads and frees everything.
 *
 * -n loads everything the way a reload does: with UserID set and started as root, it
 * becomes UserID first, so "OK" means that a reload after key rotation will work too.
 *
 * Diagnostics: start-up errors go to stderr (and syslog when configured) and exit 1, also
 * when detached: stderr is kept until the daemon is ready; usage errors exit 2. A failed
 * reload keeps the old config and logs why.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "common/sm_log.h"
#include "common/sm_pidfile.h"
#include "common/sm_util.h"
#include "lookup/lookup.h"
#include "milter/mf_conf.h"
#include "milter/mf_coord.h"
#include "milter/mf_milter.h"
#include "milter/mf_runtime.h"
#include "milter/mf_fleet.h"
#include "milter/mf_stats.h"
#include "milter/mf_textfile.h"

#define MF_DEFAULT_CONF SM_SYSCONFDIR "/stripe-milter.conf"

static const char *mf_conf_path = MF_DEFAULT_CONF;

static void mf_usage(FILE *out)
{
	fprintf(out,
	    "usage: stripe-milter [-c config] [-f] [-n] [-v] [-V]\n"
	    "  -c FILE  configuration file (default %s)\n"
	    "  -f       stay in the foreground (overrides Background)\n"
	    "  -n       check the configuration and the key, print the effective settings, exit\n"
	    "  -v       log to standard error instead of syslog\n"
	    "  -V       print the version and exit\n", MF_DEFAULT_CONF);
}

/* Looks up "user[:group]"; 0 with the ids, or -1 (logged). */
static int mf_user_ids(const char *spec, uid_t *uid, gid_t *gid, char *name, size_t namelen)
{
	char user[128], *grp;
	struct passwd *pw;

	sm_strlcpy(user, spec, sizeof(user));
	grp = strchr(user, ':');
	if (grp)
		*grp++ = '\0';
	pw = getpwnam(user);
	if (pw == NULL) {
		sm_log(LOG_ERR, "UserID: no user '%s'", user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	sm_strlcpy(name, pw->pw_name, namelen);
	if (grp) {
		struct group *gr = getgrnam(grp);

		if (gr == NULL) {
			sm_log(LOG_ERR, "UserID: no group '%s'", grp);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

/* The unix socket's path in a libmilter socket spec, NULL for inet sockets. */
static const char *mf_socket_path(const char *sock)
{
	if (strncmp(sock, "unix:", 5) == 0)
		return sock + 5;
	if (strncmp(sock, "local:", 6) == 0)
		return sock + 6;
	return sock[0] == '/' ? sock : NULL;
}

/* Gives the socket to the user the daemon becomes, so that it can still remove its own
 * socket at stop. The pid file stays root's (common/sm_pidfile.h). */
static int mf_give_files(const struct mf_conf *conf)
{
	const char *path = mf_socket_path(conf->socket);
	char name[128];
	uid_t uid;
	gid_t gid;

	if (conf->user_id == NULL)
		return 0;
	if (mf_user_ids(conf->user_id, &uid, &gid, name, sizeof(name)) != 0)
		return -1;
	if (path && chown(path, uid, (gid_t)-1) != 0) {
		sm_log(LOG_ERR, "cannot give %s to %s: %s", path, conf->user_id, strerror(errno));
		return -1;
	}
	return 0;
}

/* The statistics snapshot's folder (StatsFile), made while still root and given to the user
 * the daemon becomes: systemd's RuntimeDirectory (/run/stripe-milter) is root's. A failure
 * is a warning (mf_stats.h): mail does not need the snapshot. */
static void mf_snapshot_dir(const struct mf_conf *conf)
{
	char name[128];
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	if (conf->user_id && geteuid() == 0 && mf_user_ids(conf->user_id, &uid, &gid, name, sizeof(name)) != 0)
		return;
	mf_stats_snapshot_dir(conf->stats_file, uid, gid);
}

static int mf_drop_privileges(const char *spec)
{
	char name[128];
	uid_t uid;
	gid_t gid;

	if (mf_user_ids(spec, &uid, &gid, name, sizeof(name)) != 0)
		return -1;
	/* Started as UserID already (the systemd unit's User=, which also set the supplementary
	 * groups): nothing to drop, and initgroups() would need CAP_SETGID. */
	if (getuid() == uid && geteuid() == uid && getgid() == gid && getegid() == gid)
		return 0;
	if (initgroups(name, gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		sm_log(LOG_ERR, "UserID: cannot become %s: %s", spec, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		sm_log(LOG_ERR, "UserID: could regain root after dropping privileges");
		return -1;
	}
	return 0;
}

static int mf_socket_group(const char *sock, const char *group)
{
	const char *path = mf_socket_path(sock);
	struct group *gr;

	if (path == NULL) {
		sm_log(LOG_WARNING, "SocketGroup applies to unix sockets only; ignored for %s", sock);
		return 0;
	}
	gr = getgrnam(group);
	if (gr == NULL || chown(path, (uid_t)-1, gr->gr_gid) != 0) {
		sm_log(LOG_ERR, "SocketGroup: cannot give %s to group %s: %s", path, group,
		    gr ? strerror(errno) : "no such group");
		return -1;
	}
	return 0;
}

/* Standard error of a detached daemon goes to /dev/null once it is ready (unless the log
 * goes there): until then a failed start says why to whoever started it. */
static bool mf_close_stderr_when_ready;

/* Write end of the pipe on which a detached daemon tells the starting process that it is
 * ready (one byte); -1 in the foreground. */
static int mf_ready_fd = -1;

/* Detaches from the terminal; keeps standard error when the log goes there. The starting
 * process waits until the daemon says it is ready (mf_ready) and exits 0, or exits 1 when
 * the daemon dies first, so a bad key or socket still fails the start command. */
static int mf_detach(bool keep_stderr)
{
	int fds[2], fd;
	pid_t pid;
	char c;

	if (pipe(fds) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(fds[1]);
		_exit(read(fds[0], &c, 1) == 1 ? 0 : 1);
	}
	close(fds[0]);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	mf_ready_fd = fds[1];
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (fd > 2)
			close(fd);
	}
	mf_close_stderr_when_ready = !keep_stderr;
	return chdir("/");
}

/* Tells the starting process (when detached) that the daemon serves. */
static void mf_ready(void)
{
	sm_log_errors_to_stderr(false);
	if (mf_close_stderr_when_ready) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
		mf_close_stderr_when_ready = false;
	}
	if (mf_ready_fd >= 0) {
		if (write(mf_ready_fd, "1", 1) != 1)
			sm_log(LOG_DEBUG, "the starting process went away");
		close(mf_ready_fd);
		mf_ready_fd = -1;
	}
}

/* The pid file's descriptor: its lock says that this daemon runs. */
static int mf_pid_fd = -1;

/* Builds a snapshot from a loaded config (taking it), or from the file when conf is NULL;
 * NULL with the reason logged. */
static struct mf_runtime *mf_build(struct mf_conf *conf, const struct mf_runtime *prev)
{
	char err[512];
	struct mf_runtime *rt;

	if (conf == NULL && (conf = mf_conf_load(mf_conf_path, err, sizeof(err))) == NULL) {
		sm_log(LOG_ERR, "%s", err);
		return NULL;
	}
	rt = mf_runtime_new(conf, prev, 0, err, sizeof(err));
	if (rt == NULL)
		sm_log(LOG_ERR, "%s: %s", mf_conf_path, err);
	return rt;
}

static void mf_reload(void)
{
	struct mf_runtime *cur = mf_runtime_get(), *rt;

	char what[1024];

	rt = mf_build(NULL, cur);
	if (rt) {
		mf_runtime_install(rt);
		mf_runtime_describe(rt, what, sizeof(what));
		sm_log(LOG_NOTICE, "configuration reloaded from %s (%s, %s mode)", mf_conf_path, what,
		    mf_runtime_mode(rt));
	} else {
		sm_log(LOG_ERR, "reload failed: keeping the previous configuration");
	}
	mf_runtime_put(cur);
}

static int mf_milter_rc;

/*
 * libmilter's signal thread (smfi_main() starts it) calls sigwait() for HUP, TERM and INT,
 * and on one stops libmilter by itself: its worker pool then logs "TASKMGR_LOCK error" and
 * its listener may log "listenfd=-1 corrupted" (or fail to bind the closed socket again
 * if it had not started). main() waits for the same signals, and a signal sent to the
 * process goes to whichever thread takes it first: main() when it waits, but also
 * libmilter's thread when main() is busy (starting, reloading) or when libmilter's thread
 * makes its first sigwait() call while one waits in the queue (seen in about 1 stop of 20
 * right after the start, under load).
 *
 * This definition takes the place of the C library's sigwait() for libmilter, the only
 * caller in the process (stripe-milter itself calls sigwaitinfo()): libmilter's signal
 * thread waits here for good and takes no signal, so every one reaches main(). The
 * executable's definition comes first in the dynamic linker's search, before libc's.
 */
int sigwait(const sigset_t *set, int *sig)
{
	(void)set;
	(void)sig;
	for (;;)
		pause();	/* every signal it could take is blocked in that thread */
}

/* libmilter's listener thread: smfi_main() until the stop cancels it, or until it ends on
 * its own (an error libmilter logged). */
static void *mf_milter_thread(void *arg)
{
	(void)arg;
	mf_milter_rc = smfi_main() == MI_SUCCESS ? 0 : 1;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	/* smfi_main() ended on its own: wake main()'s wait. */
	kill(getpid(), SIGTERM);
	return NULL;
}

/* main()'s loop: every thread blocks the signals and main() alone waits for them (see
 * sigwait() above). Returns at a stop. */
static void mf_signal_loop(const sigset_t *set)
{
	for (;;) {
		int sig = sigwaitinfo(set, NULL);

		if (sig < 0)
			continue;
		if (sig == SIGUSR1) {
			mf_reload();
		} else if (sig == SIGUSR2) {
			mf_stats_log();
		} else {
			sm_log(LOG_NOTICE, "signal %d: stopping", sig);
			return;
		}
	}
}

/*
 * Stops libmilter's listener: cancels its thread and waits for it; returns the exit status
 * (0, or 1 when smfi_main() had failed on its own).
 *
 * Why not smfi_stop(): it sets libmilter's stop flag and closes the listening socket at
 * once, from the calling thread, under the listener's lock. The listener loop reads the
 * flag, THEN takes that lock and checks the socket. A stop that lands between the two (the
 * listener has just come back from a 5 s poll() timeout, from accepting a connection, or
 * from a wake-up signal) finds the socket closed, and libmilter logs "listenfd=-1
 * corrupted, terminating" at LOG_ERR and ends with an error. No wake-up can order itself
 * against that check, and without one a stop waits up to 5 s for the poll().
 *
 * Cancelling the thread runs no libmilter code at all: the cancellation is acted on at the
 * listener's next cancellation point, which in its loop is poll() or accept() (both with
 * the listener's lock held; nothing takes that lock afterwards), so no interleaving can
 * produce a libmilter log line, and a stop is immediate. Sessions already accepted go on
 * in libmilter's workers as they did after smfi_stop(). The listening socket closes when
 * the process exits (an MTA's connection in the meantime waits in the backlog, then fails
 * to milter_default_action); the unix socket's file is removed here, where libmilter's
 * closing removed it: when not running as root and the path is still a socket.
 */
static int mf_stop_listener(pthread_t listener, const char *sock)
{
	const char *path = mf_socket_path(sock);
	struct stat st;
	void *res = NULL;

	pthread_cancel(listener);	/* harmless when smfi_main() has already returned */
	pthread_join(listener, &res);
	if (path && geteuid() != 0 && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);
	return res == PTHREAD_CANCELED ? 0 : mf_milter_rc;
}

/* StopTimeout as the last reload left it. */
static long mf_stop_timeout(void)
{
	struct mf_runtime *now = mf_runtime_get();	/* the last reload's StopTimeout */
	long secs = now ? mf_runtime_conf(now)->stop_timeout_s : 0;

	mf_runtime_put(now);
	return secs;
}

/*
 * After the listener stopped: waits up to secs seconds for the messages in progress
 * (mf_milter_in_progress()) to finish, so a stop or restart cuts none that had begun
 * (libmilter's workers go on serving the connections already accepted, and the lookup
 * pool, caches and runtime stay up until this returns). Checks every 100 ms, waiting
 * for signals meanwhile: a second TERM, INT or HUP ends the wait; USR1 and USR2 are
 * taken and ignored (no reload while stopping). Logs what it waited for and what was
 * left. A connection with no message in progress is not waited for (an MTA's idle
 * connection may stay open for minutes): its next message meets milter_default_action.
 */
static void mf_drain(long secs, const sigset_t *set)
{
	const struct timespec tick = { 0, 100 * 1000 * 1000 };
	int64_t t0 = sm_now_ms(), end = t0 + (int64_t)secs * 1000;
	long left = mf_milter_in_progress();

	if (left <= 0)
		return;
	if (secs <= 0) {
		sm_log(LOG_NOTICE, "stopping with %ld message(s) in progress (StopTimeout 0): the "
		    "MTA applies its milter_default_action to them", left);
		return;
	}
	sm_log(LOG_NOTICE, "waiting up to %ld s for %ld message(s) in progress (StopTimeout; "
	    "a second signal stops at once)", secs, left);
	while ((left = mf_milter_in_progress()) > 0 && sm_now_ms() < end) {
		int sig = sigtimedwait(set, NULL, &tick);

		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
			sm_log(LOG_NOTICE, "signal %d: not waiting any longer", sig);
			break;
		}
	}
	if (left > 0)
		sm_log(LOG_WARNING, "stopping with %ld message(s) still in progress after %lld ms: "
		    "the MTA applies its milter_default_action to them", left,
		    (long long)(sm_now_ms() - t0));
	else
		sm_log(LOG_NOTICE, "the messages in progress finished in %lld ms",
		    (long long)(sm_now_ms() - t0));
}

/* The folder a unix socket goes in must exist: libmilter's own error does not say so. */
static int mf_check_socket_dir(const char *sock, char *err, size_t errlen)
{
	const char *path = mf_socket_path(sock), *slash;
	char dir[512];
	struct stat st;

	if (path == NULL || (slash = strrchr(path, '/')) == NULL || slash == path)
		return 0;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "Socket %.200s: the folder %.200s %s (create it, e.g. install -d -o "
		    "stripe-milter -g postfix -m 750 %.200s)", sock, dir,
		    errno == ENOENT ? "does not exist" : "is not a usable folder", dir);
		return -1;
	}
	return 0;
}

/* -n: load everything as a reload would (as UserID when set), print it. */
static int mf_check_only(void)
{
	char err[1024], what[1024];
	struct mf_conf *conf = mf_conf_load(mf_conf_path, err, sizeof(err));
	struct mf_runtime *rt;
	int rc = 1;

	if (conf == NULL) {
		sm_log(LOG_ERR, "%s", err);
		return 1;
	}
	if (conf->user_id && geteuid() == 0) {
		if (mf_drop_privileges(conf->user_id) != 0)
			goto out;
	}
	rt = mf_build(NULL, NULL);
	if (rt == NULL) {
		if (conf->user_id)
			sm_log(LOG_ERR, "checked as UserID %s, the user a reload (SIGUSR1) reads the "
			    "files as", conf->user_id);
		goto out;
	}
	mf_runtime_describe(rt, what, sizeof(what));
	printf("# %s: OK (%s, %s mode%s%s)\n", mf_conf_path, what, mf_runtime_mode(rt),
	    conf->user_id ? "; files readable by " : "", conf->user_id ? conf->user_id : "");
	/* A missing socket folder is a warning only: /run/stripe-milter is made by systemd
	 * (RuntimeDirectory) when the daemon starts. The start itself says so as an error. */
	if (mf_check_socket_dir(conf->socket, err, sizeof(err)) != 0)
		printf("# warning: %s\n", err);
	/* every permission this configuration needs: a missing optional one is a warning */
	mf_runtime_print_perms(rt, stdout);
	mf_conf_dump(mf_runtime_conf(rt), stdout);
	mf_runtime_put(rt);
	rc = 0;
out:
	mf_conf_free(conf);
	return rc;
}

int main(int argc, char **argv)
{
	bool check = false, foreground = false, to_stderr = false;
	static sigset_t sigs;
	struct mf_runtime *rt = NULL;
	struct mf_conf *first = NULL;
	const struct mf_conf *conf;
	char err[1024], what[1024];
	pthread_t milter_thread;
	int opt, rc = 1, level, facility;

	while ((opt = getopt(argc, argv, "c:fnvVh")) != -1) {
		switch (opt) {
		case 'c': mf_conf_path = optarg; break;
		case 'f': foreground = true; break;
		case 'n': check = true; break;
		case 'v': to_stderr = true; break;
		case 'V': printf("stripe-milter %s\n", PACKAGE_VERSION); return 0;
		case 'h': mf_usage(stdout); return 0;
		default: mf_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		mf_usage(stderr);
		return 2;
	}
	/* 2. before any thread: curl, Redis and libmilter threads inherit this mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "stripe-milter: curl_global_init failed\n");
		return 1;
	}
	json_object_seed(0);

	if (check) {
		sm_log_open("stripe-milter", LOG_MAIL, true);
		rc = mf_check_only();
		curl_global_cleanup();
		return rc;
	}

	/* 1. the config, as the starting user. Threads of the cache start in mf_build, so
	 * detach first when running in the background. */
	first = mf_conf_load(mf_conf_path, err, sizeof(err));
	if (first == NULL) {
		fprintf(stderr, "stripe-milter: %s\n", err);
		return 1;
	}
	if (!foreground && first->background && mf_detach(to_stderr || !first->syslog) != 0) {
		fprintf(stderr, "stripe-milter: cannot detach: %s\n", strerror(errno));
		mf_conf_free(first);
		return 1;
	}
	level = sm_log_level_from_name(first->log_level);
	facility = sm_log_facility_from_name(first->syslog_facility);
	sm_log_open(first->syslog_name, facility < 0 ? LOG_MAIL : facility, to_stderr || !first->syslog);
	sm_log_errors_to_stderr(!(to_stderr || !first->syslog));
	sm_log_set_level(level < 0 ? LOG_INFO : level);
	if (level < 0 || facility < 0)
		sm_log(LOG_WARNING, "unknown LogLevel or SyslogFacility; using info/mail");

	/* 4. the socket, as root, then its group, the pid file, then drop privileges. */
	if (smfi_register(*mf_milter_desc()) != MI_SUCCESS || smfi_setconn(first->socket) != MI_SUCCESS ||
	    smfi_settimeout((int)first->milter_timeout_s) != MI_SUCCESS) {
		sm_log(LOG_ERR, "cannot register the milter on %s", first->socket);
		goto out;
	}
	/* The pid file's lock first: a second daemon must not remove the first one's socket. */
	if (first->pid_file && (mf_pid_fd = sm_pidfile_open(first->pid_file, err, sizeof(err))) < 0) {
		sm_log(LOG_ERR, "%s", err);
		goto out;
	}
	if (mf_check_socket_dir(first->socket, err, sizeof(err)) != 0) {
		sm_log(LOG_ERR, "%s", err);
		goto out;
	}
	umask((mode_t)first->umask);
	errno = 0;
	if (smfi_opensocket(true) != MI_SUCCESS) {
		sm_log(LOG_ERR, "cannot open milter socket %s%s%s", first->socket, errno ? ": " : "",
		    errno ? strerror(errno) : "");
		goto out;
	}
	if (first->socket_group && mf_socket_group(first->socket, first->socket_group) != 0)
		goto out;
	mf_snapshot_dir(first);
	if (first->user_id && (mf_give_files(first) != 0 || mf_drop_privileges(first->user_id) != 0))
		goto out;

	/* 5. the runtime: key and password read as the user a reload reads them as. */
	rt = mf_build(first, NULL);
	first = NULL;
	if (rt == NULL)
		goto out;
	mf_runtime_install(rt);
	/* Our own reference: a reload may replace the installed snapshot at any time. */
	rt = mf_runtime_get();
	conf = mf_runtime_conf(rt);

	/* 5. our threads. */
	if (lk_pool_start((int)conf->lookup_threads, 4096) != 0) {
		sm_log(LOG_ERR, "cannot start lookup threads");
		goto out;
	}
	if (conf->metrics_listen && mf_stats_listen(conf) != 0)
		goto out;
	if (mf_coord_listen(conf) != 0)
		goto out;
	if (mf_textfile_start(conf->metrics_file, conf->metrics_file_interval_s) != 0)
		goto out;
	if (mf_fleet_start() != 0) {
		sm_log(LOG_ERR, "cannot start the statistics thread");
		goto out;
	}
	mf_ready();
	mf_runtime_describe(rt, what, sizeof(what));
	sm_log(LOG_NOTICE, "stripe-milter %s listening on %s (%s, %s mode, cache %s)",
	    PACKAGE_VERSION, conf->socket, what, mf_runtime_mode(rt),
	    conf->redis_host || conf->redis_socket || conf->redis_sentinels ? "in-process + Redis" : "in-process only");

	/* 6. libmilter runs in its own thread; this one takes the signals. */
	if (pthread_create(&milter_thread, NULL, mf_milter_thread, NULL) != 0) {
		sm_log(LOG_ERR, "cannot start the milter thread");
		goto out;
	}
	mf_signal_loop(&sigs);
	rc = mf_stop_listener(milter_thread, conf->socket);
	mf_drain(mf_stop_timeout(), &sigs);
	sm_log(LOG_NOTICE, "stopped");
	mf_textfile_stop();
	mf_stats_stop();
	mf_coord_stop();
	lk_pool_stop();
out:
	mf_fleet_stop();	/* the final snapshot, once no message can change the counters */
	if (mf_pid_fd >= 0)
		sm_pidfile_close(mf_pid_fd, rt ? mf_runtime_conf(rt)->pid_file : NULL);
	mf_conf_free(first);
	mf_runtime_put(rt);
	mf_runtime_shutdown();
	curl_global_cleanup();
	return rc;
}
