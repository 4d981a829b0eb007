/*
 * mf_coord.c - the daemon's glue to fleet/. See mf_coord.h.
 *
 * Lifetimes: a fleet belongs to the snapshots that share it (a refcount here, like the
 * cache and the Stripe client in mf_runtime.c); its signature holds every fleet option,
 * the secrets and the addresses of the cache and Stripe client it uses, so it never
 * outlives them. The gate does not take snapshot references (a fleet thread calling
 * Stripe could otherwise release the last one and join itself): it asks the fleet made
 * current by mf_coord_install() under a read lock, which install takes for writing.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "fleet/fl_webhook.h"
#include "milter/mf_coord.h"
#include "milter/mf_runtime.h"

struct mf_coord {
	int refs;
	struct fleet *fl;
	char *sig;
	struct cache *cache;
	struct stripe_client *stripe;
	char mode[8];
	char account[64];
};

static pthread_rwlock_t mf_gate_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct fleet *mf_gate_fleet;

static enum stripe_gate_verdict mf_gate_admit(void *arg, unsigned flags, int64_t deadline_ms, int64_t *wait_ms,
    unsigned *ticket)
{
	enum stripe_gate_verdict v = STRIPE_GATE_LOCAL;

	(void)arg;
	*wait_ms = 0;
	pthread_rwlock_rdlock(&mf_gate_lock);
	if (mf_gate_fleet)
		v = fleet_admit(mf_gate_fleet, flags, deadline_ms, wait_ms, ticket);
	pthread_rwlock_unlock(&mf_gate_lock);
	return v;
}

static void mf_gate_report(void *arg, unsigned ticket, enum stripe_errclass err, long status)
{
	(void)arg;
	pthread_rwlock_rdlock(&mf_gate_lock);
	if (mf_gate_fleet)
		fleet_report(mf_gate_fleet, ticket, err, status);
	pthread_rwlock_unlock(&mf_gate_lock);
}

static enum stripe_gate_verdict mf_gate_reserve(void *arg, int n, int64_t max_wait_ms, int64_t *wait_ms,
    int64_t *step_ms)
{
	enum stripe_gate_verdict v = STRIPE_GATE_LOCAL;

	(void)arg;
	*wait_ms = *step_ms = 0;
	pthread_rwlock_rdlock(&mf_gate_lock);
	if (mf_gate_fleet)
		v = fleet_reserve(mf_gate_fleet, n, max_wait_ms, wait_ms, step_ms);
	pthread_rwlock_unlock(&mf_gate_lock);
	return v;
}

static void mf_gate_refund(void *arg, int n)
{
	(void)arg;
	pthread_rwlock_rdlock(&mf_gate_lock);
	if (mf_gate_fleet)
		fleet_refund(mf_gate_fleet, n);
	pthread_rwlock_unlock(&mf_gate_lock);
}

static const struct stripe_gate mf_gate = { mf_gate_admit, mf_gate_report, NULL, mf_gate_reserve,
	mf_gate_refund };

const struct stripe_gate *mf_coord_gate(void)
{
	return &mf_gate;
}

void mf_coord_install(struct mf_coord *r)
{
	pthread_rwlock_wrlock(&mf_gate_lock);
	mf_gate_fleet = r ? r->fl : NULL;
	pthread_rwlock_unlock(&mf_gate_lock);
}

/* ---- hooks -------------------------------------------------------------------------- */

static int mf_coord_key(void *arg, const char *email, char *key, size_t len)
{
	struct mf_coord *r = arg;

	return lk_key(r->cache, r->mode, r->account, email, key, len);
}

static enum stripe_errclass mf_coord_events(void *arg, int64_t created_gt, const char *after,
    int64_t deadline_ms, struct stripe_event *out, int max, int *n, bool *has_more,
    struct stripe_result *res)
{
	struct mf_coord *r = arg;

	/* every type: the poller keeps what the webhook applies (fleet/fl_poll.c says why) */
	return stripe_events_list(r->stripe, created_gt, NULL, 0, after, 100,
	    deadline_ms, out, max, n, has_more, res);
}

/* lookup/'s fill hook: the fleet made current by mf_coord_install() indexes the entry. */
void mf_coord_on_fill(void *arg, const char *customer_id, const char *key)
{
	(void)arg;
	pthread_rwlock_rdlock(&mf_gate_lock);
	if (mf_gate_fleet)
		fleet_index_note(mf_gate_fleet, customer_id, key);
	pthread_rwlock_unlock(&mf_gate_lock);
}

/* ---- setup -------------------------------------------------------------------------- */

static void mf_coord_free(struct mf_coord *r)
{
	if (r == NULL)
		return;
	fleet_free(r->fl);
	if (r->sig) {
		explicit_bzero(r->sig, strlen(r->sig));
		free(r->sig);
	}
	free(r);
}

static char *mf_secret(const struct mf_conf *c, const char *path, char *err, size_t errlen)
{
	char why[256];
	char *s;

	if (path == NULL)
		return NULL;
	s = mf_conf_read_secret(c, path, why, sizeof(why));	/* the project's secret reader */
	if (s == NULL)
		snprintf(err, errlen, "webhook secret: %s", why);
	return s;
}

static void mf_free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

#define NS(x) ((x) ? (x) : "")

/* Everything the fleet depends on, as one string (secrets included: zeroed when freed).
 * The cache's address stands for its Redis settings: a new cache means a new fleet. */
static char *mf_coord_sig(const struct mf_conf *c, struct lk *lk, const char *mode, const char *account,
    const char *s0, const char *s1, unsigned flags)
{
	struct sm_buf b;

	sm_buf_init(&b, 16384);
	sm_buf_printf(&b, "%p|%p|%s|%s|%ld|%ld|%ld|%ld|%ld|%ld|%ld|%ld|%ld|%ld|%ld|%s|%s|%u|%s|%s",
	    (void *)lk_cache(lk), (void *)lk_stripe(lk), mode, NS(account),
	    c->fleet_rate_limit, c->fleet_rate_burst, c->fleet_search_rate_limit,
	    c->breaker_failures, c->breaker_cooldown_ms, c->webhook_tolerance_s, c->webhook_max_body,
	    c->events_poll_interval_s, c->cache_ttl_s, c->cache_negative_ttl_s, c->cache_stale_grace_s,
	    NS(s0), NS(s1), flags, NS(c->instance_name), NS(c->cache_prefix));
	if (b.overflow) {
		sm_buf_free(&b);
		return NULL;
	}
	return b.data;
}

struct mf_coord *mf_coord_get(const struct mf_conf *c, struct lk *lk, const char *mode,
    const char *account, struct mf_coord *prev, unsigned flags, char *err, size_t errlen)
{
	struct fleet_config fc;
	struct fleet_hooks fh;
	struct mf_coord *r = NULL, *out = NULL;
	char *s0 = NULL, *s1 = NULL, *sig = NULL;

	err[0] = '\0';
	s0 = mf_secret(c, c->webhook_secret_file, err, errlen);
	if (c->webhook_secret_file && s0 == NULL)
		goto out;
	s1 = mf_secret(c, c->webhook_previous_secret_file, err, errlen);
	if (c->webhook_previous_secret_file && s1 == NULL)
		goto out;
	sig = mf_coord_sig(c, lk, mode, account, s0, s1, flags);
	if (sig == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (prev && strcmp(prev->sig, sig) == 0) {
		__atomic_add_fetch(&prev->refs, 1, __ATOMIC_ACQ_REL);
		out = prev;
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	r->refs = 1;
	r->cache = lk_cache(lk);
	r->stripe = lk_stripe(lk);
	sm_strlcpy(r->mode, mode, sizeof(r->mode));
	sm_strlcpy(r->account, account && account[0] ? account : "-", sizeof(r->account));
	memset(&fc, 0, sizeof(fc));
	fc.redis = cache_redis(r->cache);
	fc.prefix = c->cache_prefix;
	fc.instance = c->instance_name;
	fc.rate = (double)c->fleet_rate_limit;
	fc.burst = (int)c->fleet_rate_burst;
	fc.search_rate = (double)c->fleet_search_rate_limit;
	fc.search_burst = (int)c->fleet_search_rate_limit;
	fc.breaker_failures = (int)c->breaker_failures;
	fc.breaker_cooldown_ms = (int)c->breaker_cooldown_ms;
	fc.entry_ttl_ms = ((int64_t)(c->cache_ttl_s > c->cache_negative_ttl_s ? c->cache_ttl_s :
	    c->cache_negative_ttl_s) + c->cache_stale_grace_s) * 1000;
	fc.secrets[0] = s0;
	fc.secrets[1] = s1;
	fc.tolerance_s = (int)c->webhook_tolerance_s;
	fc.max_body = (size_t)c->webhook_max_body;
	fc.poll_interval_ms = (int)c->events_poll_interval_s * 1000;
	memset(&fh, 0, sizeof(fh));
	fh.cache = r->cache;
	fh.key_for_email = mf_coord_key;
	fh.events_list = mf_coord_events;
	fh.arg = r;
	r->fl = fleet_new(&fc, &fh, err, errlen);
	if (r->fl == NULL)
		goto out;
	if (!(flags & MF_RT_NO_PUBLISH) && fleet_start(r->fl) != 0) {
		snprintf(err, errlen, "cannot start the fleet threads");
		goto out;
	}
	r->sig = sig;
	sig = NULL;
	out = r;
	r = NULL;
out:
	mf_coord_free(r);
	mf_free_secret(s0);
	mf_free_secret(s1);
	if (sig) {
		explicit_bzero(sig, strlen(sig));
		free(sig);
	}
	return out;
}

void mf_coord_put(struct mf_coord *r)
{
	if (r && __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0)
		mf_coord_free(r);
}

struct fleet *mf_coord_fleet(const struct mf_coord *r)
{
	return r ? r->fl : NULL;
}

/* ---- webhook listener --------------------------------------------------------------- */

static int mf_coord_webhook(void *arg, const char *sig, const char *body, size_t len, bool too_large,
    char *why, size_t whylen)
{
	struct mf_runtime *rt;
	int status = 503;

	(void)arg;
	/* The delivery holds a snapshot reference only while it is applied: the listener
	 * thread is not a fleet thread, so releasing the last one here is safe. */
	rt = mf_runtime_get();
	if (rt && mf_runtime_fleet(rt))
		status = fleet_webhook(mf_runtime_fleet(rt), sig, body, len, too_large, why, whylen);
	else
		snprintf(why, whylen, "not serving");
	mf_runtime_put(rt);
	return status;
}

int mf_coord_listen(const struct mf_conf *conf)
{
	struct sm_httpd_conf l = {
		.addr = conf->webhook_listen, .connections = 1024,
		.per_client = (unsigned)conf->webhook_client_limit,
		.deadline_s = (unsigned)conf->webhook_request_timeout_s,
		.max_body = (uint64_t)conf->webhook_max_body,
		.log_interval_s = (unsigned)conf->listener_log_interval_s,
	};

	if (conf->webhook_listen == NULL)
		return 0;
	return fleet_webhook_listen(&l, mf_coord_webhook, NULL);
}

void mf_coord_stop(void)
{
	fleet_webhook_stop();
}

/* ---- metrics ------------------------------------------------------------------------ */

static void mf_m(struct sm_buf *b, const char *name, const char *type, const char *help,
    const char *labels, uint64_t v, bool head)
{
	if (head)
		sm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	sm_buf_printf(b, "%s%s %llu\n", name, labels ? labels : "", (unsigned long long)v);
}

void mf_coord_metrics(struct sm_buf *b, struct fleet *f)
{
	struct fleet_counters c;
	int64_t age;
	char lab[160];
	int i;

	fleet_counters_get(f, &c);
	mf_m(b, "stripe_milter_events_received_total", "counter", "Stripe events received, by source.",
	    "{source=\"webhook\"}", c.events_received[FLEET_SRC_WEBHOOK], true);
	mf_m(b, "stripe_milter_events_received_total", NULL, NULL, "{source=\"poll\"}",
	    c.events_received[FLEET_SRC_POLL], false);
	for (i = 0; i < FLEET_REJ__COUNT; i++) {
		snprintf(lab, sizeof(lab), "{reason=\"%s\"}", fleet_reject_name((enum fleet_reject)i));
		mf_m(b, "stripe_milter_events_rejected_total", "counter",
		    "Webhook deliveries rejected (400), by reason.", lab, c.events_rejected[i], i == 0);
	}
	mf_m(b, "stripe_milter_events_applied_total", "counter", "Events that purged the cache.", NULL,
	    c.events_applied, true);
	mf_m(b, "stripe_milter_events_duplicate_total", "counter", "Events already applied (replays, both sources).",
	    NULL, c.events_duplicate, true);
	mf_m(b, "stripe_milter_events_ignored_total", "counter", "Events of types that purge nothing.", NULL,
	    c.events_ignored, true);
	mf_m(b, "stripe_milter_events_failed_total", "counter", "Events applied to this instance only (Redis failed).",
	    NULL, c.events_failed, true);
	mf_m(b, "stripe_milter_events_keys_purged_total", "counter", "Cache keys purged by events.", NULL,
	    c.keys_purged, true);
	mf_m(b, "stripe_milter_events_subscribed", "gauge",
	    "1 while this instance listens for the fleet's purge messages (Redis pub/sub).", NULL,
	    c.subscribed, true);
	mf_m(b, "stripe_milter_events_purges_received_total", "counter",
	    "Purge messages from the fleet applied to this instance's in-process cache.", NULL,
	    c.purges_received, true);
	age = c.last_event_created > 0 ? sm_wall_ms() / 1000 - c.last_event_created : -1;
	sm_buf_printf(b, "# HELP stripe_milter_events_last_age_seconds Age of the newest event applied here "
	    "(-1: none yet).\n# TYPE stripe_milter_events_last_age_seconds gauge\n"
	    "stripe_milter_events_last_age_seconds %lld\n", (long long)age);
	snprintf(lab, sizeof(lab), "{owner=\"%s\"}", c.poller[0] ? c.poller : "");
	for (i = 0; lab[i]; i++)
		if (lab[i] == '\\' || lab[i] == '\n')
			lab[i] = '_';
	mf_m(b, "stripe_milter_events_poller", "gauge", "1 when this instance is the fleet's events poller.",
	    lab, c.poller_owner, true);
	mf_m(b, "stripe_milter_events_polls_total", "counter", "Event polls made by this instance.", NULL,
	    c.polls, true);
	mf_m(b, "stripe_milter_events_poll_errors_total", "counter", "Event polls that failed.", NULL,
	    c.poll_errors, true);
	mf_m(b, "stripe_milter_budget_total", "counter", "Stripe attempts by fleet budget decision.",
	    "{decision=\"granted\"}", c.budget_granted, true);
	mf_m(b, "stripe_milter_budget_total", NULL, NULL, "{decision=\"denied\"}", c.budget_denied, false);
	mf_m(b, "stripe_milter_budget_total", NULL, NULL, "{decision=\"local\"}", c.budget_local, false);
	mf_m(b, "stripe_milter_budget_total", NULL, NULL, "{decision=\"refunded\"}", c.budget_refunded, false);
	sm_buf_printf(b, "# HELP stripe_milter_budget_wait_seconds_total Delay imposed by the fleet budget.\n"
	    "# TYPE stripe_milter_budget_wait_seconds_total counter\nstripe_milter_budget_wait_seconds_total %.3f\n",
	    (double)c.budget_wait_ms / 1000.0);
	mf_m(b, "stripe_milter_breaker_state", "gauge", "Circuit breaker: 0 closed, 1 open, 2 half-open.", NULL,
	    (uint64_t)c.breaker, true);
	mf_m(b, "stripe_milter_breaker_opened_total", "counter", "Times the breaker opened (seen here).", NULL,
	    c.breaker_opened, true);
	mf_m(b, "stripe_milter_breaker_rejected_total", "counter", "Stripe attempts not made: breaker open.", NULL,
	    c.breaker_rejected, true);
	mf_m(b, "stripe_milter_breaker_probes_total", "counter", "Probe requests sent by this instance.", NULL,
	    c.breaker_probes, true);
	mf_m(b, "stripe_milter_fleet_redis_fallbacks_total", "counter",
	    "Budget/breaker decisions made locally because Redis failed.", NULL, c.redis_fallbacks, true);
	mf_m(b, "stripe_milter_fleet_peers", "gauge",
	    "Instances sharing the fleet budget, as Redis last said (while it fails, this instance "
	    "keeps 1/this of FleetRateLimit).", NULL, (uint64_t)(c.peers > 0 ? c.peers : 0), true);
}
