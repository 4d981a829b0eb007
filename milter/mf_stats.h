/*
 * mf_stats.h - the daemon's figures: Prometheus text, the log dump, the HTTP listener.
 *
 * Interface:
 *	mf_stats_render(buf)	every counter and gauge in Prometheus text format (messages
 *		by result, lookup latency, cache levels, Stripe requests by outcome and latency
 *		histogram, Redis errors, in-flight lookups, build info). The fleet statistics
 *		published to Redis are mf_fleet.c's.
 *	mf_stats_health(buf)	200 when the milter can serve (body "ok" or "degraded: why"),
 *		503 with the reason when it cannot.
 *	mf_stats_log()		one log line of the main figures (SIGUSR2).
 *	mf_stats_listen(conf)	starts the loopback HTTP listener (MetricsListen) serving
 *		GET /metrics and GET /healthz, with MetricsClientLimit and MetricsRequestTimeout
 *		(common/sm_httpd.h).
 *	mf_stats_stop()		stops it.
 *	mf_stats_emit_listeners(emit, ctx)	the webhook and metrics listeners' counters as
 *		"http_<listener>_<counter>" fields (fleet statistics in Redis).
 *
 * The local snapshot (StatsFile, default /run/stripe-milter/stats/snapshot): what
 * `stripe-milterctl stats` shows on a host without Redis. The daemon's statistics thread
 * (mf_fleet.c) rewrites it at start, every StatsInterval and at a clean stop (stopped 1).
 * Format 1, text, one item a line:
 *	stripe-milter-stats 1		first line: the format and its version
 *	instance NAME			InstanceName, else host:pid (as published to Redis)
 *	NAME VALUE			every field of a Redis publication (mf_fleet.h: ts,
 *					interval_s, started_ms, stopped, the counters), plus pid;
 *					NAME [a-z0-9_-], VALUE a decimal number
 * Readers ignore names they do not know. It is replaced atomically (written to
 * "<StatsFile>.new", then renamed over it), mode 0644, owned by the daemon's user; the
 * daemon keeps an exclusive flock() on the current file for as long as it runs, so a
 * reader tells a live daemon's snapshot from one left by a daemon that was killed.
 *	mf_stats_snapshot_dir(path, uid, gid)	at start, as root before dropping privileges:
 *		creates the snapshot's folder when it is missing (one level; mode 0755; given to
 *		uid:gid unless uid is (uid_t)-1). It never changes an existing folder. 0, or -1
 *		(logged as a warning: the daemon runs on without the snapshot).
 *	mf_stats_snapshot_write(rt, stopped)	writes it now (statistics thread, or the
 *		stopping main thread after that thread ended: never two at once). With
 *		stopped the lock is let go after the write. A failure is logged once per failure
 *		streak (warning); a second daemon finding the file held by a running one says so
 *		and writes none.
 *	mf_stats_snapshot_read(path, out, err, errlen)	reads one (the tool's side): out->in
 *		holds the fields (caller frees out->in.fields), out->in.dead is set when no
 *		process holds the file and it is no final snapshot, out->pid is the writer's.
 *		0, or -1 with the reason in err (missing file, not a regular file, too large,
 *		malformed line N). It follows no symbolic link.
 *
 * Diagnostics: mf_stats_listen logs and returns -1 when the address is bad or busy.
 */
#ifndef MF_STATS_H
#define MF_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include "common/sm_util.h"
#include "milter/mf_fleet.h"
#include "milter/mf_runtime.h"

#define MF_STATS_SNAPSHOT_MAX	(256 * 1024)	/* bytes a reader accepts */

struct mf_stats_snapshot {
	struct mf_fleet_instance in;
	long pid;			/* the writer's process id, 0 unknown */
	bool held;			/* a running process holds the file's lock */
};

int mf_stats_render(struct sm_buf *out);
int mf_stats_health(struct sm_buf *out);
void mf_stats_log(void);
struct mf_conf;
int mf_stats_listen(const struct mf_conf *conf);
void mf_stats_emit_listeners(void (*emit)(void *ctx, const char *name, uint64_t v), void *ctx);
void mf_stats_stop(void);
int mf_stats_snapshot_dir(const char *path, uid_t uid, gid_t gid);
int mf_stats_snapshot_write(struct mf_runtime *rt, bool stopped);
int mf_stats_snapshot_read(const char *path, struct mf_stats_snapshot *out, char *err, size_t errlen);

#endif
