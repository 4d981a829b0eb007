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
 *	mf_stats_listen(addr)	starts the loopback HTTP listener ("127.0.0.1:9xxx") serving
 *		GET /metrics and GET /healthz; bounded connections and timeouts.
 *	mf_stats_stop()		stops it.
 *
 * Diagnostics: mf_stats_listen logs and returns -1 when the address is bad or busy.
 */
#ifndef MF_STATS_H
#define MF_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "common/sm_util.h"

int mf_stats_render(struct sm_buf *out);
int mf_stats_health(struct sm_buf *out);
void mf_stats_log(void);
int mf_stats_listen(const char *addr);
void mf_stats_stop(void);

#endif
