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
	char key_part[64];		/* the cache key's account component */
	char name[MF_COORD_NAME_MAX];	/* the account's name */
};

/* One gate per account name, for the life of the process: a Stripe client keeps its gate
 * across reloads (lookup/ reuses it), so the gate must not go away with a snapshot. The
 * slot's fleet is the one mf_coord_install() made current for that name (NULL: none, the
 * client's own bucket decides). Names are never freed: MF_GATE_SLOTS bounds how many
 * different names a process meets over its reloads. */
#define MF_GATE_SLOTS 64
struct mf_gate_slot {
	char name[MF_COORD_NAME_MAX];
	struct fleet *fl;		/* under mf_gate_lock */
	struct stripe_gate gate;
};

static pthread_rwlock_t mf_gate_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct mf_gate_slot mf_gate_slots[MF_GATE_SLOTS];
static int mf_gate_nslots;		/* under mf_gate_lock */

static enum stripe_gate_verdict mf_gate_admit(void *arg, unsigned flags, int64_t deadline_ms, int64_t *wait_ms,
    unsigned *ticket)
{
	struct mf_gate_slot *g = arg;
	enum stripe_gate_verdict v = STRIPE_GATE_LOCAL;

	*wait_ms = 0;
	pthread_rwlock_rdlock(&mf_gate_lock);
	if (g->fl)
		v = fleet_admit(g->fl, flags, deadline_ms, wait_ms, ticket);
	pthread_rwlock_unlock(&mf_gate_lock);
	return v;
}

static void mf_gate_report(void *arg, unsigned ticket, enum stripe_errclass err, long status)
{
	struct mf_gate_slot *g = arg;

	pthread_rwlock_rdlock(&mf_gate_lock);
	if (g->fl)
		fleet_report(g->fl, ticket, err, status);
	pthread_rwlock_unlock(&mf_gate_lock);
}

static enum stripe_gate_verdict mf_gate_reserve(void *arg, int n, int64_t max_wait_ms, int64_t *wait_ms,
    int64_t *step_ms)
{
	struct mf_gate_slot *g = arg;
	enum stripe_gate_verdict v = STRIPE_GATE_LOCAL;

	*wait_ms = *step_ms = 0;
	pthread_rwlock_rdlock(&mf_gate_lock);
	if (g->fl)
		v = fleet_reserve(g->fl, n, max_wait_ms, wait_ms, step_ms);
	pthread_rwlock_unlock(&mf_gate_lock);
	return v;
}

static void mf_gate_refund(void *arg, int n)
{
	struct mf_gate_slot *g = arg;

	pthread_rwlock_rdlock(&mf_gate_lock);
	if (g->fl)
		fleet_refund(g->fl, n);
	pthread_rwlock_unlock(&mf_gate_lock);
}

const struct stripe_gate *mf_coord_gate(const char *name, char *err, size_t errlen)
{
	struct mf_gate_slot *g = NULL;
	int i;

	pthread_rwlock_wrlock(&mf_gate_lock);
	for (i = 0; i < mf_gate_nslots && g == NULL; i++)
		if (strcmp(mf_gate_slots[i].name, name) == 0)
			g = &mf_gate_slots[i];
	if (g == NULL && mf_gate_nslots < MF_GATE_SLOTS && strlen(name) < MF_COORD_NAME_MAX) {
		g = &mf_gate_slots[mf_gate_nslots++];
		sm_strlcpy(g->name, name, sizeof(g->name));
		g->gate = (struct stripe_gate){ mf_gate_admit, mf_gate_report, g, mf_gate_reserve,
			mf_gate_refund };
	}
	pthread_rwlock_unlock(&mf_gate_lock);
	if (g == NULL)
		snprintf(err, errlen, "account %s: more than %d account names since start: restart "
		    "the daemon", name, MF_GATE_SLOTS);
	return g ? &g->gate : NULL;
}

void mf_coord_install(struct mf_coord *const *r, int n)
{
	int i, j;

	pthread_rwlock_wrlock(&mf_gate_lock);
	for (i = 0; i < mf_gate_nslots; i++) {
		mf_gate_slots[i].fl = NULL;
		for (j = 0; j < n; j++)
			if (r[j] && strcmp(r[j]->name, mf_gate_slots[i].name) == 0)
				mf_gate_slots[i].fl = r[j]->fl;
	}
	pthread_rwlock_unlock(&mf_gate_lock);
}

/* ---- hooks -------------------------------------------------------------------------- */

static int mf_coord_key(void *arg, const char *email, char *key, size_t len)
{
	struct mf_coord *r = arg;

	return lk_key(r->cache, r->mode, r->key_part, email, key, len);
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

/* lookup/'s fill hook (arg: the account's gate slot, the gate's arg): the account's fleet
 * made current by mf_coord_install() indexes the entry. */
void mf_coord_on_fill(void *arg, const char *customer_id, const char *key)
{
	struct mf_gate_slot *g = arg;

	pthread_rwlock_rdlock(&mf_gate_lock);
	if (g && g->fl)
		fleet_index_note(g->fl, customer_id, key);
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
static char *mf_coord_sig(const struct mf_conf *c, struct lk *lk, const char *mode,
    const struct mf_coord_account *a, const char *s0, const char *s1, unsigned flags)
{
	struct sm_buf b;

	sm_buf_init(&b, 16384);
	sm_buf_printf(&b, "%p|%p|%s|%s|%s|%s|%s|%ld|%ld|%ld|%ld|%ld|%ld|%ld|%ld|%ld|%ld|%ld|%s|%s|%u|%s",
	    (void *)lk_cache(lk), (void *)lk_stripe(lk), mode, a->name, NS(a->key_part), a->fleet_prefix,
	    NS(a->connect), c->fleet_rate_limit, c->fleet_rate_burst, c->fleet_search_rate_limit,
	    c->breaker_failures, c->breaker_cooldown_ms, c->webhook_tolerance_s, c->webhook_max_body,
	    c->events_poll_interval_s, c->cache_ttl_s, c->cache_negative_ttl_s, c->cache_stale_grace_s,
	    NS(s0), NS(s1), flags, NS(c->instance_name));
	if (b.overflow) {
		sm_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* The fleet's settings from the config and the account (secrets are the caller's). */
static void mf_coord_config(const struct mf_conf *c, const struct mf_coord *r,
    const struct mf_coord_account *a, const char *s0, const char *s1, struct fleet_config *fc)
{
	memset(fc, 0, sizeof(*fc));
	fc->redis = cache_redis(r->cache);
	fc->prefix = a->fleet_prefix;
	fc->instance = c->instance_name;
	fc->connect = a->connect;
	fc->rate = (double)c->fleet_rate_limit;
	fc->burst = (int)c->fleet_rate_burst;
	fc->search_rate = (double)c->fleet_search_rate_limit;
	fc->search_burst = (int)c->fleet_search_rate_limit;
	fc->breaker_failures = (int)c->breaker_failures;
	fc->breaker_cooldown_ms = (int)c->breaker_cooldown_ms;
	fc->entry_ttl_ms = ((int64_t)(c->cache_ttl_s > c->cache_negative_ttl_s ? c->cache_ttl_s :
	    c->cache_negative_ttl_s) + c->cache_stale_grace_s) * 1000;
	fc->secrets[0] = s0;
	fc->secrets[1] = s1;
	fc->tolerance_s = (int)c->webhook_tolerance_s;
	fc->max_body = (size_t)c->webhook_max_body;
	fc->poll_interval_ms = (int)c->events_poll_interval_s * 1000;
}

struct mf_coord *mf_coord_get(const struct mf_conf *c, struct lk *lk, const char *mode,
    const struct mf_coord_account *a, struct mf_coord *prev, unsigned flags, char *err, size_t errlen)
{
	struct fleet_config fc;
	struct fleet_hooks fh;
	struct mf_coord *r = NULL, *out = NULL;
	char *s0 = NULL, *s1 = NULL, *sig = NULL;

	err[0] = '\0';
	s0 = mf_secret(c, a->secret_file, err, errlen);
	if (a->secret_file && s0 == NULL)
		goto out;
	s1 = mf_secret(c, a->previous_secret_file, err, errlen);
	if (a->previous_secret_file && s1 == NULL)
		goto out;
	sig = mf_coord_sig(c, lk, mode, a, s0, s1, flags);
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
	sm_strlcpy(r->key_part, a->key_part && a->key_part[0] ? a->key_part : "-", sizeof(r->key_part));
	sm_strlcpy(r->name, a->name, sizeof(r->name));
	mf_coord_config(c, r, a, s0, s1, &fc);
	memset(&fh, 0, sizeof(fh));
	fh.cache = r->cache;
	fh.key_for_email = mf_coord_key;
	fh.events_list = mf_coord_events;
	fh.arg = r;
	r->fl = fleet_new(&fc, &fh, err, errlen);
	if (r->fl == NULL) {
		char why[256];

		sm_strlcpy(why, err, sizeof(why));
		snprintf(err, errlen, "account %s: fleet: %s", a->name, why);
		goto out;
	}
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

/* The account a delivery belongs to: the first whose fleet's secrets verify it, a
 * Connect account whose id the event names before an account without one; -1 when none
 * (account 0's fleet then rejects it, counted and logged there). */
static int mf_coord_route(struct mf_runtime *rt, const char *sig, const char *body, size_t len)
{
	int i, m, best = -1, best_m = 0;

	for (i = 0; i < mf_runtime_accounts(rt); i++) {
		struct fleet *f = mf_runtime_account_fleet(rt, i);

		if (f && (m = fleet_webhook_match(f, sig, body, len)) > best_m) {
			best = i;
			best_m = m;
		}
	}
	return best;
}

static int mf_coord_webhook(void *arg, const char *sig, const char *body, size_t len, bool too_large,
    char *why, size_t whylen)
{
	struct mf_runtime *rt;
	int status = 503, i;

	(void)arg;
	/* The delivery holds a snapshot reference only while it is applied: the listener
	 * thread is not a fleet thread, so releasing the last one here is safe. */
	rt = mf_runtime_get();
	if (rt && mf_runtime_fleet(rt)) {
		i = too_large ? -1 : mf_coord_route(rt, sig, body, len);
		status = fleet_webhook(mf_runtime_account_fleet(rt, i < 0 ? 0 : i), sig, body, len,
		    too_large, why, whylen);
	} else {
		snprintf(why, whylen, "not serving");
	}
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

/* One metric family over the accounts: values v[i] of account names[i], each row
 * labelled {account="<name>"[,<extra>]} (extra[i] NULL = none); HELP/TYPE when head. */
static void mf_ma(struct sm_buf *b, const char *name, const char *type, const char *help,
    const char *const *extra, const char *const *names, const uint64_t *v, int n, bool head)
{
	int i;

	if (head)
		sm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (i = 0; i < n; i++)
		sm_buf_printf(b, "%s{account=\"%s\"%s%s} %llu\n", name, names[i], extra && extra[i] ? "," : "",
		    extra && extra[i] ? extra[i] : "", (unsigned long long)v[i]);
}

/* v[i] = expr of account i's counters c[i] */
#define MF_COL(expr) do { for (i = 0; i < n; i++) v[i] = (uint64_t)(c[i].expr); } while (0)
#define MF_ROW(name, type, help, expr) do { MF_COL(expr); mf_ma(b, name, type, help, NULL, names, v, n, true); } while (0)

/* The decision rows of stripe_milter_budget_total and the source rows of _received. */
static void mf_coord_metrics_labeled(struct sm_buf *b, const struct fleet_counters *c, const char *const *names,
    int n)
{
	static const char *const dec[] = { "granted", "denied", "local", "refunded" };
	const char *extra[MF_ACCOUNTS_MAX];
	uint64_t v[MF_ACCOUNTS_MAX];
	char lab[MF_ACCOUNTS_MAX][160];
	int i, k;

	for (k = 0; k < 2; k++) {
		for (i = 0; i < n; i++) {
			v[i] = c[i].events_received[k];
			extra[i] = k == FLEET_SRC_WEBHOOK ? "source=\"webhook\"" : "source=\"poll\"";
		}
		mf_ma(b, "stripe_milter_events_received_total", "counter", "Stripe events received, by source.",
		    extra, names, v, n, k == 0);
	}
	for (k = 0; k < FLEET_REJ__COUNT; k++) {
		for (i = 0; i < n; i++) {
			v[i] = c[i].events_rejected[k];
			snprintf(lab[i], sizeof(lab[i]), "reason=\"%s\"", fleet_reject_name((enum fleet_reject)k));
			extra[i] = lab[i];
		}
		mf_ma(b, "stripe_milter_events_rejected_total", "counter",
		    "Webhook deliveries rejected (400), by reason (counted on the first account when none verifies).",
		    extra, names, v, n, k == 0);
	}
	for (k = 0; k < 4; k++) {
		for (i = 0; i < n; i++) {
			v[i] = k == 0 ? c[i].budget_granted : k == 1 ? c[i].budget_denied : k == 2 ?
			    c[i].budget_local : c[i].budget_refunded;
			snprintf(lab[i], sizeof(lab[i]), "decision=\"%s\"", dec[k]);
			extra[i] = lab[i];
		}
		mf_ma(b, "stripe_milter_budget_total", "counter", "Stripe attempts by fleet budget decision.",
		    extra, names, v, n, k == 0);
	}
	for (i = 0; i < n; i++) {
		size_t j;

		snprintf(lab[i], sizeof(lab[i]), "owner=\"%s\"", c[i].poller);
		for (j = 7; lab[i][j] && lab[i][j + 1]; j++)
			if (lab[i][j] == '\\' || lab[i][j] == '\n' || lab[i][j] == '"')
				lab[i][j] = '_';
		v[i] = c[i].poller_owner;
		extra[i] = lab[i];
	}
	mf_ma(b, "stripe_milter_events_poller", "gauge", "1 when this instance is the account's events poller.",
	    extra, names, v, n, true);
}

void mf_coord_metrics(struct sm_buf *b, const struct mf_runtime *rt)
{
	struct fleet_counters c[MF_ACCOUNTS_MAX];
	const char *names[MF_ACCOUNTS_MAX];
	uint64_t v[MF_ACCOUNTS_MAX];
	int64_t now_s = sm_wall_ms() / 1000;
	int i, n = 0;

	for (i = 0; i < mf_runtime_accounts(rt) && n < MF_ACCOUNTS_MAX; i++) {
		if (mf_runtime_account_fleet(rt, i) == NULL)
			continue;
		fleet_counters_get(mf_runtime_account_fleet(rt, i), &c[n]);
		names[n++] = mf_runtime_account_name(rt, i);
	}
	if (n == 0)
		return;
	mf_coord_metrics_labeled(b, c, names, n);
	MF_ROW("stripe_milter_events_applied_total", "counter", "Events that purged the cache.", events_applied);
	MF_ROW("stripe_milter_events_duplicate_total", "counter", "Events already applied (replays, both sources).",
	    events_duplicate);
	MF_ROW("stripe_milter_events_ignored_total", "counter", "Events of types that purge nothing.", events_ignored);
	MF_ROW("stripe_milter_events_failed_total", "counter", "Events applied to this instance only (Redis failed).",
	    events_failed);
	MF_ROW("stripe_milter_events_keys_purged_total", "counter", "Cache keys purged by events.", keys_purged);
	MF_ROW("stripe_milter_events_subscribed", "gauge",
	    "1 while this instance listens for the fleet's purge messages (Redis pub/sub).", subscribed);
	MF_ROW("stripe_milter_events_purges_received_total", "counter",
	    "Purge messages from the fleet applied to this instance's in-process cache.", purges_received);
	sm_buf_printf(b, "# HELP stripe_milter_events_last_age_seconds Age of the newest event applied here "
	    "(-1: none yet).\n# TYPE stripe_milter_events_last_age_seconds gauge\n");
	for (i = 0; i < n; i++)
		sm_buf_printf(b, "stripe_milter_events_last_age_seconds{account=\"%s\"} %lld\n", names[i],
		    (long long)(c[i].last_event_created > 0 ? now_s - c[i].last_event_created : -1));
	MF_ROW("stripe_milter_events_polls_total", "counter", "Event polls made by this instance.", polls);
	MF_ROW("stripe_milter_events_poll_errors_total", "counter", "Event polls that failed.", poll_errors);
	sm_buf_printf(b, "# HELP stripe_milter_budget_wait_seconds_total Delay imposed by the fleet budget.\n"
	    "# TYPE stripe_milter_budget_wait_seconds_total counter\n");
	for (i = 0; i < n; i++)
		sm_buf_printf(b, "stripe_milter_budget_wait_seconds_total{account=\"%s\"} %.3f\n", names[i],
		    (double)c[i].budget_wait_ms / 1000.0);
	MF_ROW("stripe_milter_breaker_state", "gauge", "Circuit breaker: 0 closed, 1 open, 2 half-open.", breaker);
	MF_ROW("stripe_milter_breaker_opened_total", "counter", "Times the breaker opened (seen here).",
	    breaker_opened);
	MF_ROW("stripe_milter_breaker_rejected_total", "counter", "Stripe attempts not made: breaker open.",
	    breaker_rejected);
	MF_ROW("stripe_milter_breaker_probes_total", "counter", "Probe requests sent by this instance.",
	    breaker_probes);
	MF_ROW("stripe_milter_fleet_redis_fallbacks_total", "counter",
	    "Budget/breaker decisions made locally because Redis failed.", redis_fallbacks);
	MF_ROW("stripe_milter_fleet_peers", "gauge",
	    "Instances sharing the account's fleet budget, as Redis last said (while it fails, this "
	    "instance keeps 1/this of FleetRateLimit).", peers > 0 ? c[i].peers : 0);
}
