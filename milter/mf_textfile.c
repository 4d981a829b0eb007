/*
 * mf_textfile.c - MetricsFile: the /metrics text written to a file every
 * MetricsFileInterval seconds, for the node exporter's textfile collector (Debian's
 * prometheus-node-exporter reads the *.prom files of /var/lib/prometheus/node-exporter).
 * Monitoring then needs no listener of ours, so no client of one can blind it. See
 * mf_textfile.h.
 *
 * Each write is mf_stats_render()'s text, which ends with two gauges for this file:
 *	stripe_milter_exposition_timestamp_seconds	when the text was rendered;
 *	stripe_milter_metrics_file_interval_seconds	MetricsFileInterval.
 * A file older than a few intervals means the daemon stopped (or hangs in a lock the
 * rendering takes): StripeMilterMailStopped in contrib/prometheus. A clean stop leaves
 * the last file in place on purpose (it then goes stale and says so).
 *
 * Atomic: written to "<MetricsFile>.tmp" (not *.prom, so the collector never reads it),
 * then renamed over MetricsFile. The directory must be writable by UserID.
 *
 * Diagnostics: a failed write is logged once per streak of failures (and once when it
 * works again); the thread goes on. Memory: the text buffer is the thread's own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "milter/mf_stats.h"
#include "milter/mf_textfile.h"

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stop;
	char *path, *tmp;
	long interval_s;
	int failing;
} mf_tf = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int mf_tf_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One write; 0 or -1 with errno. */
static int mf_tf_once(void)
{
	struct sm_buf b;
	int fd = -1, rc = -1, e = 0;

	sm_buf_init(&b, 4u << 20);
	if (mf_stats_render(&b) != 0) {
		e = ENOSPC;
		goto out;
	}
	fd = open(mf_tf.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || mf_tf_write_all(fd, b.data, b.len) != 0) {
		e = errno;
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		e = errno;
		goto out;
	}
	fd = -1;
	if (rename(mf_tf.tmp, mf_tf.path) != 0) {
		e = errno;
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(mf_tf.tmp);
	sm_buf_free(&b);
	errno = e;
	return rc;
}

static void *mf_tf_main(void *arg)
{
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&mf_tf.mu);
	while (!mf_tf.stop) {
		pthread_mutex_unlock(&mf_tf.mu);
		if (mf_tf_once() != 0) {
			if (!mf_tf.failing)
				sm_log(LOG_ERR, "MetricsFile %s: cannot write it: %s (is its directory writable by UserID?)",
				    mf_tf.path, strerror(errno));
			mf_tf.failing = 1;
		} else if (mf_tf.failing) {
			sm_log(LOG_NOTICE, "MetricsFile %s: written again", mf_tf.path);
			mf_tf.failing = 0;
		}
		pthread_mutex_lock(&mf_tf.mu);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += mf_tf.interval_s;
		while (!mf_tf.stop && pthread_cond_timedwait(&mf_tf.cv, &mf_tf.mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&mf_tf.mu);
	return NULL;
}

int mf_textfile_start(const char *path, long interval_s)
{
	pthread_condattr_t ca;
	size_t n;

	if (path == NULL || mf_tf.running)
		return 0;
	n = strlen(path) + 5;
	mf_tf.path = strdup(path);
	mf_tf.tmp = malloc(n);
	if (mf_tf.path == NULL || mf_tf.tmp == NULL) {
		sm_log(LOG_ERR, "MetricsFile: out of memory");
		goto fail;
	}
	snprintf(mf_tf.tmp, n, "%s.tmp", path);
	mf_tf.interval_s = interval_s > 0 ? interval_s : 15;
	mf_tf.stop = false;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&mf_tf.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&mf_tf.thread, NULL, mf_tf_main, NULL) != 0) {
		sm_log(LOG_ERR, "MetricsFile: cannot start its thread");
		pthread_cond_destroy(&mf_tf.cv);
		goto fail;
	}
	mf_tf.running = true;
	sm_log(LOG_INFO, "metrics written to %s every %lds", path, mf_tf.interval_s);
	return 0;
fail:
	free(mf_tf.path);
	free(mf_tf.tmp);
	mf_tf.path = mf_tf.tmp = NULL;
	return -1;
}

void mf_textfile_stop(void)
{
	if (!mf_tf.running)
		return;
	pthread_mutex_lock(&mf_tf.mu);
	mf_tf.stop = true;
	pthread_cond_signal(&mf_tf.cv);
	pthread_mutex_unlock(&mf_tf.mu);
	pthread_join(mf_tf.thread, NULL);
	pthread_cond_destroy(&mf_tf.cv);
	free(mf_tf.path);
	free(mf_tf.tmp);
	mf_tf.path = mf_tf.tmp = NULL;
	mf_tf.running = false;
}
