/*
 * mf_stats.c - counters as Prometheus text, health, and the metrics HTTP listener.
 * See mf_stats.h.
 *
 * The listener is common/sm_httpd (one epoll thread, started after main() blocked the
 * signals, so it inherits the mask): MetricsClientLimit connections per client address,
 * MetricsRequestTimeout for a whole request, no request body (413/411 at once), GET only.
 * It is meant for loopback; it serves no secrets (no addresses, no key). A local user can
 * still take its pool from many 127/8 addresses for a timeout at a time: MetricsFile
 * (mf_textfile.c) gives monitoring that needs no listener.
 *
 * The snapshot file (last section) is written with the same fields as the Redis
 * publication (mf_fleet_collect), so the tool shows one view from either source. Known
 * limits: no fsync (it lives on /run, a tmpfs; counters restart with the process anyway);
 * the lock says "a process has this file open with a lock", which after a kill -9 is true
 * of no one, and after a hang still of the hung daemon (its age then says so).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"
#include "common/sm_httpd.h"
#include "common/sm_log.h"
#include "fleet/fl_webhook.h"
#include "lookup/lookup.h"
#include "milter/mf_results.h"
#include "milter/mf_conf.h"
#include "milter/mf_milter.h"
#include "milter/mf_coord.h"
#include "milter/mf_runtime.h"
#include "milter/mf_stats.h"
#include "stripe/stripe.h"

static struct sm_httpd *mf_httpd;
/* mf_httpd changes under this (start, stop) while other threads (statistics, MetricsFile)
 * read its counters. */
static pthread_mutex_t mf_httpd_mu = PTHREAD_MUTEX_INITIALIZER;

static void mf_counter(struct sm_buf *b, const char *name, const char *help, const char *labels,
    uint64_t v, bool head)
{
	if (head)
		sm_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	sm_buf_printf(b, "%s%s %llu\n", name, labels ? labels : "", (unsigned long long)v);
}

static void mf_gauge(struct sm_buf *b, const char *name, const char *help, uint64_t v)
{
	sm_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, name,
	    (unsigned long long)v);
}

static void mf_render_lookups(struct sm_buf *b)
{
	struct lk_counters lc;

	lk_counters_get(&lc);
	mf_counter(b, "stripe_milter_lookups_total", "Lookups by result.", "{result=\"found\"}", lc.found, true);
	mf_counter(b, "stripe_milter_lookups_total", NULL, "{result=\"not_found\"}", lc.not_found, false);
	mf_counter(b, "stripe_milter_lookups_total", NULL, "{result=\"error\"}", lc.errors, false);
	mf_counter(b, "stripe_milter_lookups_stale_total", "Lookups answered with stale data.", NULL, lc.stale, true);
	mf_counter(b, "stripe_milter_lookups_overloaded_total", "Lookups refused because the queue was full.",
	    NULL, lc.overloaded, true);
	mf_counter(b, "stripe_milter_lookup_wait_timeouts_total",
	    "Messages that stopped waiting for a lookup at LookupTimeout.", NULL, lc.timed_out_waits, true);
	mf_counter(b, "stripe_milter_lookup_probes_total",
	    "Cache-only probes of envelope senders (LookupAddress header-from).", NULL, lc.probes, true);
	mf_counter(b, "stripe_milter_lookup_probe_hits_total", "Probes answered from a cache.", NULL,
	    lc.probe_hits, true);
	mf_counter(b, "stripe_milter_lookup_probe_upgrades_total",
	    "Probes turned into lookups because the message used the address.", NULL, lc.probe_upgrades, true);
	mf_gauge(b, "stripe_milter_lookups_inflight", "Lookups running now.", lc.running);
	mf_gauge(b, "stripe_milter_lookups_queued", "Lookups waiting for a worker.", lc.queued);
	mf_gauge(b, "stripe_milter_messages_in_progress",
	    "Messages between MAIL FROM and their end (a stop waits for them: StopTimeout).",
	    (uint64_t)mf_milter_in_progress());
}

/* A histogram from per-bucket (not cumulative) counts with Stripe's bucket bounds. */
static void mf_histogram(struct sm_buf *b, const char *name, const char *help, const uint64_t *hist,
    uint64_t sum_ms)
{
	uint64_t cum = 0;
	int i;

	sm_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (i = 0; i < STRIPE_LATENCY_BUCKETS; i++) {
		cum += hist[i];
		if (i == STRIPE_LATENCY_BUCKETS - 1)
			sm_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
		else
			sm_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
			    (double)stripe_latency_bounds_ms[i] / 1000.0, (unsigned long long)cum);
	}
	sm_buf_printf(b, "%s_sum %.3f\n%s_count %llu\n", name, (double)sum_ms / 1000.0, name,
	    (unsigned long long)cum);
}

/* What messages got: one count per message by its X-Stripe-Lookup result. */
static void mf_render_results(struct sm_buf *b)
{
	static const char *const help = "Messages by X-Stripe-Lookup result (error by class, skipped by reason).";
	struct mf_results r;
	char lab[96];
	int i;

	mf_results_get(&r);
	mf_counter(b, "stripe_milter_messages_total", help, "{result=\"found\"}", r.found, true);
	mf_counter(b, "stripe_milter_messages_total", NULL, "{result=\"not_found\"}", r.not_found, false);
	mf_counter(b, "stripe_milter_messages_total", NULL, "{result=\"guest\"}", r.guest, false);
	for (i = 0; i < MF_RES_NERR; i++) {
		snprintf(lab, sizeof(lab), "{result=\"error\",class=\"%s\"}", mf_results_error_name(i));
		mf_counter(b, "stripe_milter_messages_total", NULL, lab, r.error[i], false);
	}
	for (i = 0; i < MF_RES_NSKIP; i++) {
		snprintf(lab, sizeof(lab), "{result=\"skipped\",reason=\"%s\"}", mf_results_skip_name(i));
		mf_counter(b, "stripe_milter_messages_total", NULL, lab, r.skipped[i], false);
	}
	for (i = 0; i < MF_RES_NPERM; i++) {
		snprintf(lab, sizeof(lab), "{permission=\"%s\"}", mf_results_perm_name(i));
		mf_counter(b, "stripe_milter_messages_missing_permission_total",
		    "Messages from a found customer with a part left out because the key lacks a permission.",
		    lab, r.missing_perm[i], i == 0);
	}
	mf_histogram(b, "stripe_milter_lookup_duration_seconds",
	    "How long the lookup behind each looked-up message took (a timed-out wait counts as LookupTimeout).",
	    r.lat_hist, r.lat_sum_ms);
}

static void mf_render_cache(struct sm_buf *b, struct cache *c)
{
	struct cache_counters cc;
	int i;

	cache_counters_get(c, &cc);
	mf_counter(b, "stripe_milter_cache_lookups_total", "Cache lookups.", NULL, cc.lookups, true);
	mf_counter(b, "stripe_milter_cache_hits_total", "Cache hits by level.", "{level=\"l1\"}", cc.l1_hits, true);
	mf_counter(b, "stripe_milter_cache_hits_total", NULL, "{level=\"redis\"}", cc.l2_hits, false);
	mf_counter(b, "stripe_milter_cache_misses_total", "Cache misses (including flight misses).", NULL, cc.misses, true);
	mf_counter(b, "stripe_milter_cache_flight_joins_total", "Lookups that waited for another thread's fill of the same key.",
	    NULL, cc.flight_joins, true);
	mf_counter(b, "stripe_milter_cache_flight_misses_total",
	    "Misses that waited for another thread's fill instead of starting one.", NULL, cc.flight_misses, true);
	mf_counter(b, "stripe_milter_cache_negative_hits_total", "Hits on not-found entries.", NULL,
	    cc.negative_hits, true);
	mf_counter(b, "stripe_milter_cache_stale_served_total", "Stale entries served after a failed fill.",
	    NULL, cc.stale_served, true);
	mf_counter(b, "stripe_milter_cache_fills_total", "Fills (Stripe lookups) started.", NULL, cc.fills, true);
	mf_counter(b, "stripe_milter_cache_fills_discarded_total",
	    "Fills not stored, or kept out of the in-process cache only, because a purge (a Stripe event) came while they ran.", NULL,
	    cc.fills_discarded, true);
	for (i = 1; i < STRIPE_E__COUNT; i++) {
		char lab[64];

		snprintf(lab, sizeof(lab), "{class=\"%s\"}", stripe_errclass_name((enum stripe_errclass)i));
		mf_counter(b, "stripe_milter_cache_fill_errors_total", "Failed fills by error class.", lab,
		    cc.fill_errors[i], i == 1);
	}
	mf_counter(b, "stripe_milter_cache_lock_waits_total", "Waits for another instance's fill.", NULL,
	    cc.lock_waits, true);
	mf_counter(b, "stripe_milter_redis_errors_total", "Redis errors.", NULL, cc.redis_errors, true);
	mf_counter(b, "stripe_milter_redis_reconnects_total", "Redis reconnections.", NULL, cc.redis_reconnects, true);
	mf_gauge(b, "stripe_milter_cache_l1_entries", "Entries in the in-process cache.", cc.l1_entries);
	mf_gauge(b, "stripe_milter_redis_pool_open", "Redis connections open.", cc.redis_pool_open);
	mf_gauge(b, "stripe_milter_redis_pool_in_use", "Redis connections in use.", cc.redis_pool_in_use);
	mf_gauge(b, "stripe_milter_redis_up", "1 when the last Redis command succeeded.", cache_redis_ok(c));
}

/* Whether this instance is configured with a Redis (alerts on redis_up need it). */
static void mf_render_redis_conf(struct sm_buf *b, const struct mf_conf *c)
{
	mf_gauge(b, "stripe_milter_redis_configured", "1 when a Redis (host, socket or sentinels) is configured.",
	    c->redis_host || c->redis_socket || c->redis_sentinels);
}

/* One row per account: name{account="<acct>"[,extra]} value. */
static void mf_acct_row(struct sm_buf *b, const char *name, const char *acct, const char *extra, uint64_t v)
{
	sm_buf_printf(b, "%s{account=\"%s\"%s%s} %llu\n", name, acct, extra ? "," : "", extra ? extra : "",
	    (unsigned long long)v);
}

static void mf_head(struct sm_buf *b, const char *name, const char *type, const char *help)
{
	sm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* What each account answered (a message asks every account). */
static void mf_render_account_results(struct sm_buf *b, const struct mf_runtime *rt)
{
	struct mf_acct_results r[MF_ACCOUNTS_MAX];
	char lab[128];
	int a, i, n = mf_runtime_accounts(rt);

	for (a = 0; a < n; a++)
		mf_results_account_get(mf_runtime_account_name(rt, a), &r[a]);
	mf_head(b, "stripe_milter_account_results_total", "counter", "What each Stripe account answered, "
	    "per looked-up message (every account is asked), by result (error by class).");
	for (a = 0; a < n; a++) {
		const char *an = mf_runtime_account_name(rt, a);

		mf_acct_row(b, "stripe_milter_account_results_total", an, "result=\"found\"", r[a].found);
		mf_acct_row(b, "stripe_milter_account_results_total", an, "result=\"not_found\"", r[a].not_found);
		mf_acct_row(b, "stripe_milter_account_results_total", an, "result=\"guest\"", r[a].guest);
		for (i = 0; i < MF_RES_NERR; i++) {
			snprintf(lab, sizeof(lab), "result=\"error\",class=\"%s\"", mf_results_error_name(i));
			mf_acct_row(b, "stripe_milter_account_results_total", an, lab, r[a].error[i]);
		}
	}
}

/* The Stripe clients' counters, one series per account (label account). */
static void mf_render_stripe(struct sm_buf *b, const struct mf_runtime *rt)
{
	struct stripe_stats ss[MF_ACCOUNTS_MAX];
	const char *an[MF_ACCOUNTS_MAX];
	char lab[128];
	int i, a, n = mf_runtime_accounts(rt);

	for (a = 0; a < n; a++) {
		stripe_stats_get(lk_stripe(mf_runtime_account_lookup(rt, a)), &ss[a]);
		an[a] = mf_runtime_account_name(rt, a);
	}
	mf_head(b, "stripe_milter_stripe_requests_total", "counter", "Stripe HTTP requests by outcome.");
	for (i = 0; i < STRIPE_OUT__COUNT; i++)
		for (a = 0; a < n; a++) {
			snprintf(lab, sizeof(lab), "outcome=\"%s\"", stripe_outcome_name((enum stripe_outcome)i));
			mf_acct_row(b, "stripe_milter_stripe_requests_total", an[a], lab, ss[a].requests[i]);
		}
	mf_head(b, "stripe_milter_stripe_request_duration_seconds", "histogram", "Stripe request latency.");
	for (a = 0; a < n; a++) {
		uint64_t cum = 0;

		for (i = 0; i < STRIPE_LATENCY_BUCKETS; i++) {
			cum += ss[a].latency_hist[i];
			if (i == STRIPE_LATENCY_BUCKETS - 1)
				snprintf(lab, sizeof(lab), "le=\"+Inf\"");
			else
				snprintf(lab, sizeof(lab), "le=\"%g\"", (double)stripe_latency_bounds_ms[i] / 1000.0);
			mf_acct_row(b, "stripe_milter_stripe_request_duration_seconds_bucket", an[a], lab, cum);
		}
		sm_buf_printf(b, "stripe_milter_stripe_request_duration_seconds_sum{account=\"%s\"} %.3f\n",
		    an[a], (double)ss[a].latency_sum_ms / 1000.0);
		mf_acct_row(b, "stripe_milter_stripe_request_duration_seconds_count", an[a], NULL, cum);
	}
	mf_head(b, "stripe_milter_stripe_rejected_total", "counter", "Requests Stripe refused as "
	    "invalid (4xx other than 401, 403, 429): a defect to report, by endpoint and status.");
	for (i = 0; i < STRIPE_EP__COUNT * STRIPE_REJ__COUNT; i++)
		for (a = 0; a < n; a++) {
			snprintf(lab, sizeof(lab), "endpoint=\"%s\",status=\"%s\"",
			    stripe_endpoint_name((enum stripe_endpoint)(i / STRIPE_REJ__COUNT)),
			    stripe_rejected_name((enum stripe_rejected)(i % STRIPE_REJ__COUNT)));
			mf_acct_row(b, "stripe_milter_stripe_rejected_total", an[a], lab,
			    ss[a].rejected[i / STRIPE_REJ__COUNT][i % STRIPE_REJ__COUNT]);
		}
	mf_head(b, "stripe_milter_stripe_search_backoffs_total", "counter", "Times customer search was "
	    "backed off after repeated refusals.");
	for (a = 0; a < n; a++)
		mf_acct_row(b, "stripe_milter_stripe_search_backoffs_total", an[a], NULL, ss[a].search_backoffs);
	mf_head(b, "stripe_milter_stripe_search_backed_off", "gauge", "1 while customer search is backed off.");
	for (a = 0; a < n; a++)
		mf_acct_row(b, "stripe_milter_stripe_search_backed_off", an[a], NULL, ss[a].search_off ? 1 : 0);
	mf_head(b, "stripe_milter_stripe_inflight", "gauge", "Stripe requests in flight.");
	for (a = 0; a < n; a++)
		mf_acct_row(b, "stripe_milter_stripe_inflight", an[a], NULL, ss[a].inflight);
	mf_head(b, "stripe_milter_stripe_lookups_total", "counter",
	    "Stripe lookups (one per address filled; each makes 1 or more requests).");
	for (a = 0; a < n; a++)
		mf_acct_row(b, "stripe_milter_stripe_lookups_total", an[a], NULL, ss[a].lookups);
}

/* ---- the listeners' own counters (webhook and metrics) --------------------------------- */

static const struct mf_http_row {
	const char *metric, *help, *label;	/* label: "reason=\"x\"" or NULL */
	int ctr;
} mf_http_rows[] = {
	{ "stripe_milter_http_connections_refused_total",
	  "Connections closed at accept, by reason (per_client: the client already held its limit).",
	  "reason=\"per_client\"", SM_HTTPD_REFUSED_PER_CLIENT },
	{ "stripe_milter_http_pool_full_total",
	  "Times the connection pool filled up (new connections then wait in the kernel's backlog).",
	  NULL, SM_HTTPD_POOL_FULL },
	{ "stripe_milter_http_connections_timed_out_total",
	  "Connections shut at the request deadline (request: no whole request in time; idle: kept alive after an answer).",
	  "state=\"request\"", SM_HTTPD_TIMED_OUT_REQUEST },
	{ "stripe_milter_http_connections_timed_out_total", NULL, "state=\"idle\"", SM_HTTPD_TIMED_OUT_IDLE },
	{ "stripe_milter_http_requests_rejected_total",
	  "Requests the listener refused before its handler (the webhook's signature checks: events_rejected_total).",
	  "reason=\"too_large\"", SM_HTTPD_TOO_LARGE },
	{ "stripe_milter_http_requests_rejected_total", NULL, "reason=\"length_required\"", SM_HTTPD_LENGTH_REQUIRED },
	{ "stripe_milter_http_requests_rejected_total", NULL, "reason=\"protocol\"", SM_HTTPD_PROTOCOL },
};

/* When this text was made, and how often MetricsFile is rewritten: the age of a textfile
 * tells whether the daemon still runs (StripeMilterMailStopped). */
static void mf_render_exposition(struct sm_buf *b)
{
	struct mf_runtime *rt = mf_runtime_get();

	sm_buf_printf(b, "# HELP stripe_milter_exposition_timestamp_seconds Unix time this text was rendered.\n"
	    "# TYPE stripe_milter_exposition_timestamp_seconds gauge\n"
	    "stripe_milter_exposition_timestamp_seconds %.3f\n", (double)sm_wall_ms() / 1000.0);
	if (rt)
		mf_gauge(b, "stripe_milter_metrics_file_interval_seconds",
		    "Seconds between rewrites of MetricsFile (MetricsFileInterval).",
		    (uint64_t)mf_runtime_conf(rt)->metrics_file_interval_s);
	mf_runtime_put(rt);
}

/* Listener i's counters (0 webhook, 1 metrics); -1 when it does not run. */
static int mf_listener_counters(int i, struct sm_httpd_counters *out)
{
	int rc = -1;

	if (i == 0)
		return fleet_webhook_counters(out);
	pthread_mutex_lock(&mf_httpd_mu);
	if (mf_httpd) {
		sm_httpd_counters(mf_httpd, out);
		rc = 0;
	}
	pthread_mutex_unlock(&mf_httpd_mu);
	return rc;
}

/* The listeners' own figures, webhook and metrics, one block per metric. */
static void mf_render_listeners(struct sm_buf *b)
{
	static const char *const names[2] = { "webhook", "metrics" };
	struct sm_httpd_counters c[2];
	bool hs[2];
	char lab[96];
	size_t r;
	int i;

	for (i = 0; i < 2; i++)
		hs[i] = mf_listener_counters(i, &c[i]) == 0;
	if (!hs[0] && !hs[1])
		return;
	for (r = 0; r < sizeof(mf_http_rows) / sizeof(mf_http_rows[0]); r++) {
		const struct mf_http_row *w = &mf_http_rows[r];

		if (w->help)
			sm_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", w->metric, w->help, w->metric);
		for (i = 0; i < 2; i++) {
			if (!hs[i])
				continue;
			snprintf(lab, sizeof(lab), "{listener=\"%s\"%s%s}", names[i], w->label ? "," : "",
			    w->label ? w->label : "");
			mf_counter(b, w->metric, NULL, lab, c[i].c[w->ctr], false);
		}
	}
	sm_buf_printf(b, "# HELP stripe_milter_http_connections Connections open, by listener.\n"
	    "# TYPE stripe_milter_http_connections gauge\n");
	for (i = 0; i < 2; i++)
		if (hs[i])
			sm_buf_printf(b, "stripe_milter_http_connections{listener=\"%s\"} %u\n", names[i], c[i].open);
	sm_buf_printf(b, "# HELP stripe_milter_http_connection_limit Size of the connection pool, by listener.\n"
	    "# TYPE stripe_milter_http_connection_limit gauge\n");
	for (i = 0; i < 2; i++)
		if (hs[i])
			sm_buf_printf(b, "stripe_milter_http_connection_limit{listener=\"%s\"} %u\n", names[i], c[i].limit);
}

void mf_stats_emit_listeners(void (*emit)(void *ctx, const char *name, uint64_t v), void *ctx)
{
	const char *names[2] = { "webhook", "metrics" };
	struct sm_httpd_counters c;
	char name[64];
	int i, k;

	for (i = 0; i < 2; i++) {
		if (mf_listener_counters(i, &c) != 0)
			continue;
		for (k = 0; k < SM_HTTPD_NCTR; k++) {
			snprintf(name, sizeof(name), "http_%s_%s", names[i], sm_httpd_counter_name(k));
			emit(ctx, name, c.c[k]);
		}
	}
}

int mf_stats_render(struct sm_buf *b)
{
	struct mf_runtime *rt = mf_runtime_get();

	sm_buf_printf(b, "# HELP stripe_milter_build_info Version of stripe-milter.\n"
	    "# TYPE stripe_milter_build_info gauge\nstripe_milter_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	mf_render_lookups(b);
	mf_render_results(b);
	if (rt) {
		mf_render_cache(b, lk_cache(mf_runtime_lookup(rt)));
		mf_render_redis_conf(b, mf_runtime_conf(rt));
		mf_render_stripe(b, rt);
		mf_render_account_results(b, rt);
		mf_coord_metrics(b, rt);
	}
	mf_runtime_put(rt);
	mf_render_listeners(b);
	mf_render_exposition(b);
	return b->overflow ? -1 : 0;
}

int mf_stats_health(struct sm_buf *b)
{
	struct mf_runtime *rt = mf_runtime_get();
	int status = 200;

	if (rt == NULL) {
		sm_buf_printf(b, "not serving: no configuration loaded\n");
		status = 503;
	} else if ((mf_runtime_conf(rt)->redis_host || mf_runtime_conf(rt)->redis_socket || mf_runtime_conf(rt)->redis_sentinels) &&
	    !cache_redis_ok(lk_cache(mf_runtime_lookup(rt)))) {
		sm_buf_printf(b, "degraded: Redis unreachable (serving from the in-process cache and Stripe)\n");
	} else {
		sm_buf_printf(b, "ok\n");
	}
	mf_runtime_put(rt);
	return status;
}

void mf_stats_log(void)
{
	struct mf_runtime *rt = mf_runtime_get();
	struct lk_counters lc;
	struct cache_counters cc;
	struct stripe_stats ss;
	int a, i;

	if (rt == NULL)
		return;
	lk_counters_get(&lc);
	cache_counters_get(lk_cache(mf_runtime_lookup(rt)), &cc);
	stripe_stats_get(lk_stripe(mf_runtime_account_lookup(rt, 0)), &ss);
	for (a = 1; a < mf_runtime_accounts(rt); a++) {	/* every account's requests */
		struct stripe_stats one;

		stripe_stats_get(lk_stripe(mf_runtime_account_lookup(rt, a)), &one);
		for (i = 0; i < STRIPE_OUT__COUNT; i++)
			ss.requests[i] += one.requests[i];
	}
	sm_log(LOG_NOTICE, "stats: lookups found=%llu not_found=%llu error=%llu stale=%llu wait_timeouts=%llu "
	    "cache l1_hits=%llu redis_hits=%llu misses=%llu redis_errors=%llu stripe ok=%llu 429=%llu 5xx=%llu "
	    "timeout=%llu network=%llu",
	    (unsigned long long)lc.found, (unsigned long long)lc.not_found, (unsigned long long)lc.errors,
	    (unsigned long long)lc.stale, (unsigned long long)lc.timed_out_waits,
	    (unsigned long long)cc.l1_hits, (unsigned long long)cc.l2_hits, (unsigned long long)cc.misses,
	    (unsigned long long)cc.redis_errors, (unsigned long long)ss.requests[STRIPE_OUT_OK],
	    (unsigned long long)ss.requests[STRIPE_OUT_429], (unsigned long long)ss.requests[STRIPE_OUT_5XX],
	    (unsigned long long)ss.requests[STRIPE_OUT_TIMEOUT], (unsigned long long)ss.requests[STRIPE_OUT_NETWORK]);
	mf_runtime_put(rt);
}

static enum MHD_Result mf_http(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *data, size_t *size, void **state)
{
	struct MHD_Response *resp;
	struct sm_buf b;
	unsigned status = 200;
	enum MHD_Result rc;

	(void)cls; (void)version; (void)data; (void)size; (void)state;
	sm_buf_init(&b, 1u << 20);
	if (strcmp(method, "GET") != 0) {
		status = 405;
		sm_buf_printf(&b, "GET only\n");
	} else if (strcmp(url, "/metrics") == 0) {
		if (mf_stats_render(&b) != 0)
			status = 500;
	} else if (strcmp(url, "/healthz") == 0) {
		status = (unsigned)mf_stats_health(&b);
	} else {
		status = 404;
		sm_buf_printf(&b, "not found: try /metrics or /healthz\n");
	}
	resp = MHD_create_response_from_buffer(b.len, b.data ? b.data : (char *)"", MHD_RESPMEM_MUST_COPY);
	sm_buf_free(&b);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type",
	    strcmp(url, "/metrics") == 0 ? "text/plain; version=0.0.4" : "text/plain");
	rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

int mf_stats_listen(const struct mf_conf *conf)
{
	struct sm_httpd_conf l = {
		.name = "metrics", .addr = conf->metrics_listen, .connections = 256,
		.per_client = (unsigned)conf->metrics_client_limit,
		.deadline_s = (unsigned)conf->metrics_request_timeout_s,
		.max_body = 0,
		.log_interval_s = (unsigned)conf->listener_log_interval_s,
		.handler = mf_http,
	};

	struct sm_httpd *h;

	if ((h = sm_httpd_start(&l)) == NULL)
		return -1;
	pthread_mutex_lock(&mf_httpd_mu);
	mf_httpd = h;
	pthread_mutex_unlock(&mf_httpd_mu);
	sm_log(LOG_INFO, "metrics on http://%s/metrics", conf->metrics_listen);
	return 0;
}

void mf_stats_stop(void)
{
	struct sm_httpd *h;

	pthread_mutex_lock(&mf_httpd_mu);
	h = mf_httpd;
	mf_httpd = NULL;
	pthread_mutex_unlock(&mf_httpd_mu);
	sm_httpd_stop(h);
}

/* ---- the local snapshot file (format: mf_stats.h) ------------------------------------- */

/* The current snapshot, locked (LOCK_EX) for as long as the process runs; -1 none. Used by
 * one thread at a time (the statistics thread, then the stopping main thread). */
static int mf_snap_fd = -1;
static char mf_snap_path[256];
static int mf_snap_log_fail, mf_snap_log_foreign;

/* The folder of a snapshot path into dir; -1 when it has none. */
static int mf_snap_dirname(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL || slash == path || (size_t)(slash - path) >= len)
		return -1;
	snprintf(dir, len, "%.*s", (int)(slash - path), path);
	return 0;
}

int mf_stats_snapshot_dir(const char *path, uid_t uid, gid_t gid)
{
	char dir[256];
	struct stat st;

	if (path == NULL || mf_snap_dirname(path, dir, sizeof(dir)) != 0)
		return 0;
	if (stat(dir, &st) == 0)
		return 0;	/* existing: never changed (it may be a folder others use) */
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		sm_log(LOG_WARNING, "StatsFile %s: cannot create its folder: %s (`stripe-milterctl stats` "
		    "without Redis will not see this daemon)", path, strerror(errno));
		return -1;
	}
	if (chmod(dir, 0755) != 0 || (uid != (uid_t)-1 && chown(dir, uid, gid) != 0)) {
		sm_log(LOG_WARNING, "StatsFile %s: cannot give its folder to the daemon's user: %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Writes all of buf to fd; 0 or -1 (errno). */
static int mf_snap_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int mf_stats_snapshot_write(struct mf_runtime *rt, bool stopped)
{
	const char *path = mf_runtime_conf(rt)->stats_file;
	struct mf_fleet_instance in;
	struct sm_buf b;
	char tmp[300];
	const char *why = NULL;
	size_t i;
	int fd = -1, rc = -1;

	memset(&in, 0, sizeof(in));
	sm_buf_init(&b, MF_STATS_SNAPSHOT_MAX);
	if (path == NULL || strlen(path) >= sizeof(mf_snap_path))
		return 0;
	/* First write to this path: a second daemon must not take over a running one's file. */
	if (mf_snap_fd < 0 || strcmp(path, mf_snap_path) != 0) {
		struct mf_stats_snapshot other;
		char err[64];

		memset(&other, 0, sizeof(other));
		if (mf_stats_snapshot_read(path, &other, err, sizeof(err)) == 0 && other.held) {
			sm_log_once(&mf_snap_log_foreign, LOG_WARNING, "StatsFile %s is kept by another running "
			    "stripe-milter (pid %ld); this one writes none: give each daemon a StatsFile of its own",
			    path, other.pid);
			free(other.in.fields);
			return -1;
		}
		free(other.in.fields);
		sm_log_once_reset(&mf_snap_log_foreign);
	}
	if (mf_fleet_collect(rt, stopped, &in) != 0) {
		why = "out of memory";
		goto out;
	}
	sm_buf_printf(&b, "stripe-milter-stats 1\ninstance %s\npid %ld\n", in.name, (long)getpid());
	for (i = 0; i < in.nfields; i++)
		sm_buf_printf(&b, "%s %llu\n", in.fields[i].name, (unsigned long long)in.fields[i].value);
	if (b.overflow) {
		why = "too many fields";
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT && mf_stats_snapshot_dir(path, (uid_t)-1, (gid_t)-1) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	/* 0644 whatever UMask says: counters only, no addresses, no key */
	if (fd < 0 || fchmod(fd, 0644) != 0 || mf_snap_write_all(fd, b.data, b.len) != 0 ||
	    flock(fd, LOCK_EX | LOCK_NB) != 0 || rename(tmp, path) != 0) {
		why = strerror(errno);
		if (fd >= 0)
			unlink(tmp);
		goto out;
	}
	/* The new file is locked before it got the name: there is always a held one. A
	 * reload that moved StatsFile leaves no stale file of ours behind. */
	if (mf_snap_fd >= 0) {
		if (strcmp(mf_snap_path, path) != 0)
			unlink(mf_snap_path);
		close(mf_snap_fd);
	}
	mf_snap_fd = fd;
	fd = -1;
	sm_strlcpy(mf_snap_path, path, sizeof(mf_snap_path));
	if (stopped) {
		close(mf_snap_fd);	/* a final snapshot is marked stopped: nobody needs to hold it */
		mf_snap_fd = -1;
	}
	if (mf_snap_log_fail)
		sm_log(LOG_NOTICE, "StatsFile %s: written again", path);
	sm_log_once_reset(&mf_snap_log_fail);
	rc = 0;
out:
	if (why)
		sm_log_once(&mf_snap_log_fail, LOG_WARNING, "StatsFile %s: cannot write it: %s (its folder must be "
		    "writable by the daemon's user; `stripe-milterctl stats` without Redis reads it)", path, why);
	if (fd >= 0)
		close(fd);
	free(in.fields);
	sm_buf_free(&b);
	return rc;
}

/* Parses a snapshot's text into out; -1 with the reason. */
static int mf_snap_parse(char *text, struct mf_stats_snapshot *out, char *err, size_t errlen)
{
	char *line, *next;
	int lineno = 0;

	for (line = text; line && *line; line = next) {
		char *sp, *end;
		unsigned long long v;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		sp = strchr(line, ' ');
		if (lineno == 1) {
			if (strcmp(line, "stripe-milter-stats 1") != 0) {
				snprintf(err, errlen, "not a statistics snapshot of format 1 (line 1)");
				return -1;
			}
			continue;
		}
		if (sp == NULL || sp == line || sp - line >= 64 || sp[1] == '\0')
			goto bad;
		*sp++ = '\0';
		if (strcmp(line, "instance") == 0) {
			sm_strlcpy(out->in.name, sp, sizeof(out->in.name));
			continue;
		}
		if (strspn(line, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != strlen(line) || *sp < '0' || *sp > '9')
			goto bad;
		errno = 0;
		v = strtoull(sp, &end, 10);
		if (errno != 0 || *end != '\0')
			goto bad;
		if (strcmp(line, "pid") == 0)
			out->pid = v <= 0x7fffffff ? (long)v : 0;
		else if (out->in.nfields >= 4096 || mf_fleet_add(&out->in, line, (uint64_t)v) != 0) {
			snprintf(err, errlen, "too many fields (line %d)", lineno);
			return -1;
		}
	}
	if (lineno == 0) {
		snprintf(err, errlen, "empty");
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "malformed line %d", lineno);	/* never the text: the file is another user's */
	return -1;
}

int mf_stats_snapshot_read(const char *path, struct mf_stats_snapshot *out, char *err, size_t errlen)
{
	char *text = NULL;
	struct stat st, now;
	ssize_t n = 0;
	int fd = -1, tries, rc = -1;

	memset(out, 0, sizeof(*out));
	out->in.interval_s = 10;
	for (tries = 0; tries < 5; tries++) {
		size_t len = 0;

		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			if (errno == ENOENT)
				snprintf(err, errlen, "no statistics snapshot at %s: the daemon is not running here, "
				    "or it cannot write that file (see its log)", path);
			else
				snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "%s: not a regular file", path);
			goto out;
		}
		free(text);
		if ((text = malloc(MF_STATS_SNAPSHOT_MAX + 1)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		while (len <= MF_STATS_SNAPSHOT_MAX &&
		    ((n = read(fd, text + len, MF_STATS_SNAPSHOT_MAX + 1 - len)) > 0 || (n < 0 && errno == EINTR)))
			len += n > 0 ? (size_t)n : 0;
		if (n < 0 || len > MF_STATS_SNAPSHOT_MAX) {
			snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "too large");
			goto out;
		}
		text[len] = '\0';
		/* A running writer holds an exclusive lock on the file it last renamed into place. */
		out->held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
		close(fd);
		fd = -1;
		/* Not held: unless the writer replaced the file meanwhile (then read the new one),
		 * nobody keeps it. */
		if (out->held || stat(path, &now) != 0 || (now.st_ino == st.st_ino && now.st_dev == st.st_dev))
			break;
	}
	if (mf_snap_parse(text, out, err, errlen) != 0) {
		char why[128];

		sm_strlcpy(why, err, sizeof(why));
		snprintf(err, errlen, "%s: %s", path, why);
		goto out;
	}
	out->in.dead = !out->held && !out->in.stopped;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	if (rc != 0) {
		free(out->in.fields);
		out->in.fields = NULL;
		out->in.nfields = 0;
	}
	return rc;
}
