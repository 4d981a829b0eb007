/*
 * fl_core.c - the fleet object: configuration, threads, counters, the Redis seam.
 * See fleet.h.
 *
 * The Redis seam: every fleet command goes through fl_cmd()/fl_argv() on the cache's pool
 * (redis/: one backoff, so a stalled Redis costs one timeout, not one per user); the
 * subscriber dials a connection of its own. Nothing else in fleet/ knows where Redis
 * comes from.
 *
 * Memory: the fleet copies every string of its config; the hooks' objects are the
 * caller's and must outlive the fleet.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "fleet/fl_int.h"

const char *fleet_breaker_name(enum fleet_breaker b)
{
	switch (b) {
	case FLEET_BREAKER_OPEN: return "open";
	case FLEET_BREAKER_HALF_OPEN: return "half-open";
	default: return "closed";
	}
}

const char *fleet_reject_name(enum fleet_reject r)
{
	static const char *const names[FLEET_REJ__COUNT] = {
		"signature", "stale", "malformed", "too_large", "no_secret"
	};

	return (unsigned)r < FLEET_REJ__COUNT ? names[r] : "malformed";
}

bool fl_redis(const struct fleet *f)
{
	return f != NULL && f->rds != NULL;
}

redisReply *fl_cmd(struct fleet *f, int64_t deadline_ms, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	if (!fl_redis(f))
		return NULL;
	va_start(ap, fmt);
	r = rds_vcmd(f->rds, deadline_ms, fmt, ap);
	va_end(ap);
	return r;
}

redisReply *fl_argv(struct fleet *f, int64_t deadline_ms, int argc, const char **argv, const size_t *lens)
{
	if (!fl_redis(f))
		return NULL;
	return rds_argv(f->rds, deadline_ms, argc, argv, lens);
}

bool fl_wait_stop(struct fleet *f, int64_t ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->mu);
	while (!f->stop && pthread_cond_timedwait(&f->stop_cv, &f->mu, &ts) != ETIMEDOUT)
		;
	stop = f->stop;
	pthread_mutex_unlock(&f->mu);
	return stop;
}

void fl_set_breaker(struct fleet *f, enum fleet_breaker b)
{
	enum fleet_breaker old = __atomic_exchange_n(&f->ctr.breaker, b, __ATOMIC_RELAXED);

	if (old == b)
		return;
	if (b == FLEET_BREAKER_OPEN && old == FLEET_BREAKER_CLOSED) {
		FL_CTR_INC(f, breaker_opened);
		sm_log(LOG_WARNING, "fleet: circuit breaker open: Stripe failing, not asked for %d ms "
		    "(cached data served, else error=unavailable)", f->cfg.breaker_cooldown_ms);
	} else if (b == FLEET_BREAKER_CLOSED) {
		sm_log(LOG_NOTICE, "fleet: circuit breaker closed: Stripe answers again");
	}
}

static void fl_token(char *tok, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[8];
	size_t i;

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		uint64_t x = (uint64_t)sm_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)tok;

		memcpy(rnd, &x, sizeof(rnd));
	}
	for (i = 0; i < sizeof(rnd) && 2 * i + 2 < len; i++) {
		tok[2 * i] = hex[rnd[i] >> 4];
		tok[2 * i + 1] = hex[rnd[i] & 15];
	}
	tok[2 * i] = '\0';
}

struct fleet *fleet_new(const struct fleet_config *cfg, const struct fleet_hooks *hooks,
    char *err, size_t errlen)
{
	struct fleet *f = calloc(1, sizeof(*f));
	const char *prefix;
	int i;

	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->cfg = *cfg;
	f->hooks = *hooks;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->stop_cv, NULL);
	pthread_mutex_init(&f->lb.mu, NULL);
	pthread_mutex_init(&f->lbud.mu, NULL);
	f->peers = 1;
	prefix = cfg->prefix && cfg->prefix[0] ? cfg->prefix : "stripe-milter";
	if (sm_strlcpy(f->prefix, prefix, sizeof(f->prefix)) >= sizeof(f->prefix)) {
		snprintf(err, errlen, "prefix too long");
		goto fail;
	}
	if (cfg->instance)
		sm_strlcpy(f->instance, cfg->instance, sizeof(f->instance));
	else {
		char host[64] = "localhost";

		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		snprintf(f->instance, sizeof(f->instance), "%s:%ld", host, (long)getpid());
	}
	f->cfg.instance = f->instance;
	if (cfg->connect && sm_strlcpy(f->connect, cfg->connect, sizeof(f->connect)) >= sizeof(f->connect)) {
		snprintf(err, errlen, "connect account too long");
		goto fail;
	}
	f->cfg.connect = f->connect;
	f->cfg.prefix = f->prefix;
	for (i = 0; i < FLEET_SECRETS; i++) {
		f->cfg.secrets[i] = NULL;
		if (cfg->secrets[i] && cfg->secrets[i][0]) {
			f->secrets[i] = strdup(cfg->secrets[i]);
			if (f->secrets[i] == NULL) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
		}
	}
	if (f->cfg.burst <= 0)
		f->cfg.burst = f->cfg.rate >= 1 ? (int)f->cfg.rate : 1;
	if (f->cfg.search_burst <= 0)
		f->cfg.search_burst = f->cfg.search_rate >= 1 ? (int)f->cfg.search_rate : 1;
	if (f->cfg.breaker_cooldown_ms <= 0)
		f->cfg.breaker_cooldown_ms = 30000;
	if (f->cfg.tolerance_s <= 0)
		f->cfg.tolerance_s = 300;
	if (f->cfg.max_body == 0)
		f->cfg.max_body = 1u << 20;
	if (f->cfg.entry_ttl_ms <= 0)
		f->cfg.entry_ttl_ms = 3600 * 1000;
	fl_token(f->token, sizeof(f->token));
	f->rds = cfg->redis;
	return f;
fail:
	fleet_free(f);
	return NULL;
}

int fleet_start(struct fleet *f)
{
	if (fl_redis(f)) {
		if (pthread_create(&f->sub_thread, NULL, fl_sub_main, f) != 0) {
			sm_log(LOG_ERR, "fleet: cannot start the purge subscriber: %s", strerror(errno));
			return -1;
		}
		f->sub_running = true;
	}
	if (f->cfg.poll_interval_ms > 0 && f->hooks.events_list) {
		if (pthread_create(&f->poll_thread, NULL, fl_poll_main, f) != 0) {
			sm_log(LOG_ERR, "fleet: cannot start the events poller: %s", strerror(errno));
			return -1;
		}
		f->poll_running = true;
	}
	return 0;
}

void fleet_free(struct fleet *f)
{
	int i;

	if (f == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_broadcast(&f->stop_cv);
	pthread_mutex_unlock(&f->mu);
	if (f->sub_running)
		pthread_join(f->sub_thread, NULL);
	if (f->poll_running)
		pthread_join(f->poll_thread, NULL);
	for (i = 0; i < FLEET_SECRETS; i++) {
		if (f->secrets[i]) {
			explicit_bzero(f->secrets[i], strlen(f->secrets[i]));
			free(f->secrets[i]);
		}
	}
	pthread_mutex_destroy(&f->lb.mu);
	pthread_mutex_destroy(&f->lbud.mu);
	pthread_cond_destroy(&f->stop_cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void fleet_counters_get(struct fleet *f, struct fleet_counters *out)
{
	/* The fields kept under f->mu are copied under it, one by one: a copy of the whole
	 * struct would also read the atomic counters with plain loads while other threads add
	 * to them (a data race, ThreadSanitizer); those are read atomically below. */
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&f->mu);
	memcpy(out->events_received, f->ctr.events_received, sizeof(out->events_received));
	memcpy(out->events_rejected, f->ctr.events_rejected, sizeof(out->events_rejected));
	out->subscribed = f->ctr.subscribed;
	out->last_event_created = f->ctr.last_event_created;
	out->polls = f->ctr.polls;
	out->poll_errors = f->ctr.poll_errors;
	out->poller_owner = f->ctr.poller_owner;
	memcpy(out->poller, f->ctr.poller, sizeof(out->poller));
	pthread_mutex_unlock(&f->mu);
	out->events_applied = FL_CTR_GET(f, events_applied);
	out->events_duplicate = FL_CTR_GET(f, events_duplicate);
	out->events_ignored = FL_CTR_GET(f, events_ignored);
	out->events_failed = FL_CTR_GET(f, events_failed);
	out->keys_purged = FL_CTR_GET(f, keys_purged);
	out->purges_received = FL_CTR_GET(f, purges_received);
	out->budget_granted = FL_CTR_GET(f, budget_granted);
	out->peers = __atomic_load_n(&f->peers, __ATOMIC_RELAXED);
	out->budget_denied = FL_CTR_GET(f, budget_denied);
	out->budget_local = FL_CTR_GET(f, budget_local);
	out->budget_wait_ms = FL_CTR_GET(f, budget_wait_ms);
	out->budget_refunded = FL_CTR_GET(f, budget_refunded);
	out->breaker_opened = FL_CTR_GET(f, breaker_opened);
	out->breaker_rejected = FL_CTR_GET(f, breaker_rejected);
	out->breaker_probes = FL_CTR_GET(f, breaker_probes);
	out->redis_fallbacks = FL_CTR_GET(f, redis_fallbacks);
	out->breaker = __atomic_load_n(&f->ctr.breaker, __ATOMIC_RELAXED);
}

void fleet_emit(struct fleet *f, void (*emit)(void *ctx, const char *name, uint64_t v), void *ctx)
{
	struct fleet_counters c;
	char name[64];
	int i;

	fleet_counters_get(f, &c);
	emit(ctx, "fleet_events_webhook", c.events_received[FLEET_SRC_WEBHOOK]);
	emit(ctx, "fleet_events_polled", c.events_received[FLEET_SRC_POLL]);
	for (i = 0; i < FLEET_REJ__COUNT; i++) {
		snprintf(name, sizeof(name), "fleet_events_rejected_%s", fleet_reject_name((enum fleet_reject)i));
		emit(ctx, name, c.events_rejected[i]);
	}
	emit(ctx, "fleet_events_applied", c.events_applied);
	emit(ctx, "fleet_events_duplicate", c.events_duplicate);
	emit(ctx, "fleet_events_ignored", c.events_ignored);
	emit(ctx, "fleet_events_failed", c.events_failed);
	emit(ctx, "fleet_keys_purged", c.keys_purged);
	emit(ctx, "fleet_purges_received", c.purges_received);
	emit(ctx, "fleet_last_event_created", (uint64_t)(c.last_event_created > 0 ? c.last_event_created : 0));
	emit(ctx, "fleet_poller_owner", c.poller_owner);
	emit(ctx, "fleet_budget_granted", c.budget_granted);
	emit(ctx, "fleet_budget_denied", c.budget_denied);
	emit(ctx, "fleet_budget_local", c.budget_local);
	emit(ctx, "fleet_budget_refunded", c.budget_refunded);
	emit(ctx, "fleet_breaker_state", (uint64_t)c.breaker);
	emit(ctx, "fleet_breaker_opened", c.breaker_opened);
	emit(ctx, "fleet_breaker_rejected", c.breaker_rejected);
}
