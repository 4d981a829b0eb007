/*
 * main.c - stripe-milter: command line, start-up order, signals, reload, stop.
 *
 * Start-up order matters:
 *	1. read the config (as the starting user);
 *	2. block HUP, TERM, INT, USR1, USR2 before any thread exists; main() itself then
 *	   sigwaits for them (USR1 = reload, USR2 = log counters, the rest = stop), which
 *	   makes Linux deliver them to main() rather than to libmilter's own signal thread;
 *	3. detach (fork) while still single-threaded;
 *	4. take the pid file's lock (root-owned; a second daemon stops here, before it could
 *	   replace the first one's socket), open the milter socket, set its group, drop
 *	   privileges (nothing to drop when started as UserID, as the systemd unit does with
 *	   User=: the socket's group then needs UserID to be a member of SocketGroup);
 *	5. build the runtime (its threads start here), reading the Stripe key and the Redis
 *	   password AS THE USER THE DAEMON RUNS AS: a reload (SIGUSR1) re-reads them after
 *	   privileges were dropped, so the start checks exactly what a reload needs (key
 *	   root:stripe-milter 0440 or owned by the milter user 0400; see common/sm_secret.h);
 *	6. smfi_main() in a thread until stopped; a stop also wakes libmilter's listener with
 *	   a signal to its thread (it holds a lock through a 5 s poll(), so a stop alone takes
 *	   up to 5 s to be seen);
 *	   then stop the lookup threads and free everything.
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

/* Gives the socket to the user the daemon becomes, so that it can still reach its own
 * socket (to wake the listener at stop). The pid file stays root's (common/sm_pidfile.h). */
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

	rt = mf_build(NULL, cur);
	if (rt) {
		mf_runtime_install(rt);
		sm_log(LOG_NOTICE, "configuration reloaded from %s (Stripe key %s, %s mode)",
		    mf_conf_path, mf_runtime_key_masked(rt), mf_runtime_mode(rt));
	} else {
		sm_log(LOG_ERR, "reload failed: keeping the previous configuration");
	}
	mf_runtime_put(cur);
}

/* The stop request waits for libmilter's listener, which holds a lock through a 5 s poll().
 * A signal sent to the listener's thread alone (MF_SIG_WAKE, a no-op handler, unblocked in
 * that thread only) ends the poll with EINTR; the listener then lets go of the lock, sees the
 * stop, and accepts nothing. (Connecting to our own socket woke it too, but a wake-up
 * connection accepted after the worker pool had stopped made libmilter log
 * "mi_start_session() failed" at LOG_ERR.) */
#define MF_SIG_WAKE	SIGRTMIN

static void mf_wake_handler(int sig)
{
	(void)sig;
}

static int mf_milter_rc;
static int mf_milter_done;

static void *mf_stopper_thread(void *arg)
{
	(void)arg;
	smfi_stop();	/* blocks until the listener lets go of its lock */
	return NULL;
}

static void *mf_milter_thread(void *arg)
{
	sigset_t wake;

	(void)arg;
	sigemptyset(&wake);
	sigaddset(&wake, MF_SIG_WAKE);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	mf_milter_rc = smfi_main() == MI_SUCCESS ? 0 : 1;
	__atomic_store_n(&mf_milter_done, 1, __ATOMIC_RELEASE);
	/* smfi_main() may end on its own (an error): wake main()'s sigwait. */
	kill(getpid(), SIGTERM);
	return NULL;
}

/* main()'s loop: it waits for the signals itself, so the kernel hands process signals to it
 * (the thread-group leader) rather than to libmilter's signal thread. */
static void mf_signal_loop(const sigset_t *set, pthread_t listener)
{
	for (;;) {
		int sig;

		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			mf_reload();
		} else if (sig == SIGUSR2) {
			mf_stats_log();
		} else {
			pthread_t stopper;
			int i;

			sm_log(LOG_NOTICE, "signal %d: stopping", sig);
			if (pthread_create(&stopper, NULL, mf_stopper_thread, NULL) != 0) {
				smfi_stop();
				return;
			}
			/* The stop request waits for the listener's lock; a signal wakes it. */
			for (i = 0; i < 500 && !__atomic_load_n(&mf_milter_done, __ATOMIC_ACQUIRE); i++) {
				struct timespec ts = { 0, 20 * 1000000L };

				pthread_kill(listener, MF_SIG_WAKE);
				nanosleep(&ts, NULL);
			}
			pthread_join(stopper, NULL);
			return;
		}
	}
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
	char err[1024];
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
	printf("# %s: OK (Stripe key %s, %s mode%s%s)\n", mf_conf_path, mf_runtime_key_masked(rt), mf_runtime_mode(rt),
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
	static sigset_t sigs, wake;
	struct sigaction sa;
	struct mf_runtime *rt = NULL;
	struct mf_conf *first = NULL;
	const struct mf_conf *conf;
	char err[1024];
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
	/* the listener's wake-up at stop: blocked here, unblocked in its thread alone */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = mf_wake_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(MF_SIG_WAKE, &sa, NULL);
	sigemptyset(&wake);
	sigaddset(&wake, MF_SIG_WAKE);
	pthread_sigmask(SIG_BLOCK, &wake, NULL);

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
	sm_log(LOG_NOTICE, "stripe-milter %s listening on %s (Stripe key %s, %s mode, cache %s)",
	    PACKAGE_VERSION, conf->socket, mf_runtime_key_masked(rt), mf_runtime_mode(rt),
	    conf->redis_host || conf->redis_socket || conf->redis_sentinels ? "in-process + Redis" : "in-process only");

	/* 6. libmilter runs in its own thread; this one takes the signals. */
	if (pthread_create(&milter_thread, NULL, mf_milter_thread, NULL) != 0) {
		sm_log(LOG_ERR, "cannot start the milter thread");
		goto out;
	}
	mf_signal_loop(&sigs, milter_thread);
	pthread_join(milter_thread, NULL);
	rc = mf_milter_rc;
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
