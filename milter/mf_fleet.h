/*
 * mf_fleet.h - fleet statistics: each daemon publishes its counters to Redis, and
 * `stripe-milterctl stats` reads every instance's.
 *
 * Format (this module owns it): one hash per instance, "<CachePrefix>:stats:<instance>",
 * fields "name" -> decimal counter: the cache counters (lookups, l1_hits, ...), fill errors
 * by class (fill_errors_<class>), message results (msg_found, msg_not_found, msg_guest,
 * msg_error_<class>, msg_skipped_<reason>, msg_missing_<permission>), lookup latency buckets
 * (msg_lat_le_<ms>), Stripe counters (stripe_lookups, stripe_req_<outcome>,
 * stripe_lat_le_<ms>, stripe_lat_sum_ms), and the publisher's own facts:
 *	ts		wall clock (ms) of this publication
 *	interval_s	the publisher's StatsInterval: readers judge it by this, not their own
 *	started_ms	wall clock when the process started publishing
 *	stopped		1 in the final snapshot written on a clean stop, else 0
 * The hash expires MF_FLEET_RETAIN_S (10 minutes; 3 intervals when longer, but never longer
 * for the final snapshot) after each publication, so a stopped or dead instance stays
 * visible that long, then disappears.
 *
 * Interface:
 *	mf_fleet_start()	starts the publisher thread (daemon only; once). It takes the
 *		current runtime snapshot for each publication and lets go of it after, so it
 *		never owns a cache or runs a cache's code other than reading counters.
 *	mf_fleet_stop()		stops the thread, then publishes the final snapshot
 *		(stopped=1) from the caller's thread: call it after the milter and the lookup
 *		workers stopped, so the snapshot has every message.
 *	mf_fleet_publish(rt, stopped)	one publication now; 0 or -1 (no Redis, or it failed).
 *	mf_fleet_read(rt, out)	every instance's hash, sorted by instance name.
 *	mf_fleet_collect(rt, stopped, out)	this instance's fields now, exactly as a
 *		publication has them (ts, interval_s, started_ms, stopped included), and its
 *		name; for the local snapshot file (mf_stats.h). 0, or -1 out of memory.
 *	mf_fleet_add(in, name, v)	appends a field to an instance, setting ts_ms,
 *		started_ms, interval_s and stopped from their fields; 0, or -1 out of memory.
 *	mf_fleet_state(in, now_ms)	LIVE, STALE (no publication for 2 of its own intervals
 *		+ 2 s, or its writer is known dead: the "dead" flag) or STOPPED (final snapshot).
 *
 * Memory: struct mf_fleet owns its arrays (mf_fleet_free).
 * Diagnostics: a failed publication is logged once per failure streak at warning level.
 * Known limits: counters restart from zero with the process; the view is as old as each
 *	instance's last publication (see ts); hosts' clocks are assumed in step to a second.
 */
#ifndef MF_FLEET_H
#define MF_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "milter/mf_runtime.h"

#define MF_FLEET_RETAIN_S	600
#define MF_FLEET_MAX		4096	/* instances read at most */

struct mf_fleet_field {
	char name[64];
	uint64_t value;
};

struct mf_fleet_instance {
	char name[128];
	int64_t ts_ms;			/* last publication, 0 when absent */
	int64_t started_ms;
	long interval_s;		/* the publisher's; 10 when absent (older daemons) */
	bool stopped;
	bool dead;			/* its writer is gone (local snapshot nobody holds) */
	size_t nfields;
	struct mf_fleet_field *fields;
};

struct mf_fleet {
	size_t n;
	struct mf_fleet_instance *in;
};

enum mf_fleet_state { MF_FLEET_LIVE, MF_FLEET_STALE, MF_FLEET_STOPPED };

int mf_fleet_start(void);
void mf_fleet_stop(void);
int mf_fleet_publish(struct mf_runtime *rt, bool stopped);
int mf_fleet_read(struct mf_runtime *rt, struct mf_fleet *out);
int mf_fleet_collect(struct mf_runtime *rt, bool stopped, struct mf_fleet_instance *out);
int mf_fleet_add(struct mf_fleet_instance *in, const char *name, uint64_t v);
void mf_fleet_free(struct mf_fleet *f);
enum mf_fleet_state mf_fleet_state(const struct mf_fleet_instance *in, int64_t now_ms);
const char *mf_fleet_state_name(enum mf_fleet_state s);	/* "live", "stale", "stopped" */
/* Name of latency bucket i under a prefix ("stripe_lat", "msg_lat"): "<prefix>_le_<ms>",
 * the last one "<prefix>_le_inf". */
void mf_fleet_bucket_name(const char *prefix, int i, char *buf, size_t len);
/* The published field of stats.rejected[ep][st]: "stripe_rej_customers_search_400" (the
 * endpoint template without "/v1/", '/' as '_'; "other"). */
void mf_fleet_rejected_name(int ep, int st, char *buf, size_t len);
/* Value of a field, 0 when absent. */
uint64_t mf_fleet_get(const struct mf_fleet_instance *in, const char *name);

#endif
