/*
 * fl_inval.c - cache invalidation by Stripe events: the customer index, applying an
 * event fleet-wide, and the subscriber that purges this process's L1. See fleet.h.
 *
 * Index: when a fill stores an entry for customer C under key K, K goes into the sorted
 *	set "<prefix>:fleet:cus:C" scored by the entry's expiry (wall ms); expired members
 *	are trimmed on each write and the set itself expires with its longest member.
 *
 * Applying an event (customer.*, invoice.*, charge.*): once per event id fleet-wide
 *	("seen:<id>" SET NX, one day), the keys to purge are the index members of its
 *	customer plus the keys of every address it names (the current email, and the previous
 *	one on customer.updated, which also catches not-found entries). They are UNLINKed in
 *	Redis and PUBLISHed on "<prefix>:fleet:purge"; every instance's subscriber deletes
 *	them from its L1. This process's L1 is purged directly too.
 *
 * Subscriber: its own connection (SUBSCRIBE needs one), polled with a 500 ms timeout so
 *	that it notices fleet_free(). After it lost the connection it clears this process's
 *	whole L1 on resubscribing (purges may have been missed), then goes on.
 *
 * Diagnostics: keys_purged, purges_received, events_* counters; one log line per applied
 *	event at LOG_INFO (type, id, customer, keys purged; never addresses).
 *
 * A fill already in flight when the event is applied read Stripe before the change: the
 *	purge deletes each key's fill lock too, and such a fill then stores nothing (cache.h),
 *	in Redis or in any instance's L1; it still answers the message that started it.
 *
 * Known limits: without Redis there is no index, so only address keys are purged
 *	(subscription, invoice and charge events then purge nothing); a fill that runs without
 *	the lock (Redis failed when it started) may still store what it read before the event.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "fleet/fl_int.h"

#define FL_PURGE_KEYS_MAX 256

/* Every customer.*, invoice.* and charge.* name of the webhook endpoint's enabled_events
 * in Stripe's OpenAPI spec for API 2023-08-16 (spec3.yaml, POST /v1/webhook_endpoints);
 * newer names of these groups (invoice.overdue, ...) are applied as well. */
const char *const fleet_event_types[] = {
	"customer.created", "customer.updated", "customer.deleted",
	"customer.discount.created", "customer.discount.updated", "customer.discount.deleted",
	"customer.source.created", "customer.source.updated", "customer.source.deleted",
	"customer.source.expiring",
	"customer.subscription.created", "customer.subscription.updated",
	"customer.subscription.deleted", "customer.subscription.paused",
	"customer.subscription.resumed", "customer.subscription.pending_update_applied",
	"customer.subscription.pending_update_expired", "customer.subscription.trial_will_end",
	"customer.tax_id.created", "customer.tax_id.updated", "customer.tax_id.deleted",
	"invoice.created", "invoice.updated", "invoice.deleted", "invoice.finalized",
	"invoice.finalization_failed", "invoice.marked_uncollectible", "invoice.paid",
	"invoice.payment_action_required", "invoice.payment_failed", "invoice.payment_succeeded",
	"invoice.sent", "invoice.upcoming", "invoice.voided",
	"charge.succeeded", "charge.failed", "charge.pending", "charge.captured", "charge.expired",
	"charge.updated", "charge.refunded", "charge.refund.updated",
	"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
	"charge.dispute.funds_reinstated", "charge.dispute.funds_withdrawn",
	NULL
};

bool fleet_event_relevant(const char *type)
{
	return strncmp(type, "customer.", 9) == 0 || strncmp(type, "invoice.", 8) == 0 ||
	    strncmp(type, "charge.", 7) == 0;
}

static const char fl_index_lua[] =
    "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])\n"
    "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end\n"
    "return 1\n";

void fleet_index_note(struct fleet *f, const char *customer_id, const char *key)
{
	char k[FL_KEY_MAX], until[24], now[24], ttl[24];
	int64_t w = sm_wall_ms();
	redisReply *r;

	if (!fl_redis(f) || customer_id == NULL || customer_id[0] == '\0' || key == NULL)
		return;
	snprintf(k, sizeof(k), "%s:fleet:cus:%s", f->prefix, customer_id);
	snprintf(until, sizeof(until), "%lld", (long long)(w + f->cfg.entry_ttl_ms));
	snprintf(now, sizeof(now), "%lld", (long long)w);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)f->cfg.entry_ttl_ms);
	r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "EVAL %s 1 %s %s %s %s %s", fl_index_lua, k, until, key,
	    now, ttl);
	if (r)
		freeReplyObject(r);
}

/* Keys to purge: the index members and the address keys. Returns how many (cap max). */
static int fl_collect(struct fleet *f, const struct stripe_event *ev, char (*keys)[FL_KEY_MAX], int max)
{
	char idx[FL_KEY_MAX];
	redisReply *r;
	int n = 0, i;
	size_t j;

	for (i = 0; i < ev->nemails && n < max; i++)
		if (f->hooks.key_for_email &&
		    f->hooks.key_for_email(f->hooks.arg, ev->emails[i], keys[n], FL_KEY_MAX) == 0)
			n++;
	if (ev->customer_id[0] == '\0')
		return n;
	snprintf(idx, sizeof(idx), "%s:fleet:cus:%s", f->prefix, ev->customer_id);
	r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "ZRANGE %s 0 -1", idx);
	if (r && r->type == REDIS_REPLY_ARRAY) {
		for (j = 0; j < r->elements && n < max; j++) {
			redisReply *e = r->element[j];

			if (e->type == REDIS_REPLY_STRING && e->len < FL_KEY_MAX) {
				memcpy(keys[n], e->str, e->len);
				keys[n][e->len] = '\0';
				for (i = 0; i < n && strcmp(keys[i], keys[n]) != 0; i++)
					;
				if (i == n)
					n++;
			}
		}
	}
	if (r)
		freeReplyObject(r);
	return n;
}

/* UNLINK the keys, their fill locks (so a fill in flight for one does not store what it
 * read before the event: cache.h) and the index, PUBLISH the keys. -1 when Redis failed
 * or out of memory. */
static int fl_purge_fleet(struct fleet *f, const struct stripe_event *ev, char (*keys)[FL_KEY_MAX], int n)
{
	const char *argv[2 * FL_PURGE_KEYS_MAX + 2];
	size_t lens[2 * FL_PURGE_KEYS_MAX + 2];
	char idx[FL_KEY_MAX], chan[FL_KEY_MAX];
	struct sm_buf msg, locks;
	redisReply *r;
	int argc = 0, i, rc = 0;

	if (!fl_redis(f))
		return 0;
	snprintf(idx, sizeof(idx), "%s:fleet:cus:%s", f->prefix, ev->customer_id);
	argv[argc] = "UNLINK";
	lens[argc++] = 6;
	for (i = 0; i < n; i++) {
		argv[argc] = keys[i];
		lens[argc++] = strlen(keys[i]);
	}
	/* "<key>:lock" for each key, NUL-separated in one buffer (pointers taken once built) */
	sm_buf_init(&locks, (size_t)n * (FL_KEY_MAX + sizeof(CACHE_LOCK_SUFFIX)) + 1);
	for (i = 0; i < n; i++) {
		if (sm_buf_printf(&locks, "%s" CACHE_LOCK_SUFFIX, keys[i]) < 0 ||
		    sm_buf_append(&locks, "", 1) < 0) {
			sm_buf_free(&locks);
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		const char *l = i == 0 ? locks.data : argv[argc - 1] + lens[argc - 1] + 1;

		argv[argc] = l;
		lens[argc++] = strlen(l);
	}
	if (ev->customer_id[0]) {
		argv[argc] = idx;
		lens[argc++] = strlen(idx);
	}
	if (argc > 1) {
		r = fl_argv(f, sm_now_ms() + FL_REDIS_MS, argc, argv, lens);
		if (r == NULL)
			rc = -1;
		else
			freeReplyObject(r);
	}
	sm_buf_free(&locks);
	if (n == 0)
		return rc;
	FL_CTR_ADD(f, keys_purged, n);
	sm_buf_init(&msg, (size_t)n * FL_KEY_MAX + 1);
	for (i = 0; i < n; i++)
		sm_buf_printf(&msg, "%s%s", i ? "\n" : "", keys[i]);
	snprintf(chan, sizeof(chan), "%s:fleet:purge", f->prefix);
	r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "PUBLISH %s %b", chan, msg.data ? msg.data : "", msg.len);
	if (r == NULL)
		rc = -1;
	else
		freeReplyObject(r);
	sm_buf_free(&msg);
	return rc;
}

/* SET NX of the event id: 1 first time, 0 seen, -1 Redis failed (apply anyway). */
static int fl_first_time(struct fleet *f, const char *id)
{
	char k[FL_KEY_MAX];
	redisReply *r;
	int rc;

	if (!fl_redis(f))
		return -1;
	snprintf(k, sizeof(k), "%s:fleet:seen:%s", f->prefix, id);
	r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "SET %s 1 NX EX 86400", k);
	if (r == NULL)
		return -1;
	rc = r->type == REDIS_REPLY_STATUS ? 1 : 0;
	freeReplyObject(r);
	return rc;
}

enum fleet_apply fleet_event_apply(struct fleet *f, const struct stripe_event *ev, enum fleet_src src)
{
	char (*keys)[FL_KEY_MAX] = NULL;
	enum fleet_apply rc = FLEET_APPLIED;
	int n, i;

	pthread_mutex_lock(&f->mu);
	f->ctr.events_received[src == FLEET_SRC_POLL ? 1 : 0]++;
	pthread_mutex_unlock(&f->mu);
	if (!fleet_event_relevant(ev->type)) {
		FL_CTR_INC(f, events_ignored);
		return FLEET_IGNORED;
	}
	if (fl_first_time(f, ev->id) == 0) {
		FL_CTR_INC(f, events_duplicate);
		return FLEET_DUPLICATE;
	}
	keys = calloc(FL_PURGE_KEYS_MAX, sizeof(*keys));
	if (keys == NULL) {
		FL_CTR_INC(f, events_failed);
		return FLEET_FAILED;
	}
	n = fl_collect(f, ev, keys, FL_PURGE_KEYS_MAX);
	for (i = 0; i < n; i++)
		cache_local_purge(f->hooks.cache, keys[i]);
	if (fl_purge_fleet(f, ev, keys, n) != 0) {
		rc = FLEET_FAILED;
		FL_CTR_INC(f, events_failed);
	} else {
		FL_CTR_INC(f, events_applied);
	}
	pthread_mutex_lock(&f->mu);
	if (ev->created > f->ctr.last_event_created)
		f->ctr.last_event_created = ev->created;
	pthread_mutex_unlock(&f->mu);
	sm_log(LOG_INFO, "fleet: event %s %s (%s) customer %s: %d cache keys purged%s", ev->type, ev->id,
	    src == FLEET_SRC_POLL ? "polled" : "webhook", ev->customer_id[0] ? ev->customer_id : "-", n,
	    rc == FLEET_FAILED ? " (Redis failed: this instance only)" : "");
	free(keys);
	return rc;
}

/* ---- subscriber --------------------------------------------------------------------- */

static void fl_set_subscribed(struct fleet *f, bool on)
{
	pthread_mutex_lock(&f->mu);
	f->ctr.subscribed = on;
	pthread_mutex_unlock(&f->mu);
}

static void fl_sub_message(struct fleet *f, const redisReply *r)
{
	const redisReply *p;
	const char *s, *end;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(r->element[0]->str, "subscribe") == 0) {
		fl_set_subscribed(f, true);
		return;
	}
	if (strcmp(r->element[0]->str, "message") != 0)
		return;
	p = r->element[2];
	if (p->type != REDIS_REPLY_STRING)
		return;
	FL_CTR_INC(f, purges_received);
	if (p->len == 1 && p->str[0] == '*') {
		cache_local_clear(f->hooks.cache);
		return;
	}
	for (s = p->str, end = p->str + p->len; s < end; ) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = (size_t)((nl ? nl : end) - s);
		char key[FL_KEY_MAX];

		if (n > 0 && n < sizeof(key)) {
			memcpy(key, s, n);
			key[n] = '\0';
			cache_local_purge(f->hooks.cache, key);
		}
		s = nl ? nl + 1 : end;
	}
}

/* One subscription: returns when the connection breaks or the fleet stops. */
static void fl_sub_session(struct fleet *f, redisContext *ctx)
{
	char chan[FL_KEY_MAX];
	void *reply = NULL;

	snprintf(chan, sizeof(chan), "%s:fleet:purge", f->prefix);
	if (redisAppendCommand(ctx, "SUBSCRIBE %s", chan) != REDIS_OK)
		return;
	for (;;) {
		struct pollfd pfd = { ctx->fd, POLLIN, 0 };
		int done = 0, pr;

		/* flush what is pending (the SUBSCRIBE) */
		while (!done)
			if (redisBufferWrite(ctx, &done) != REDIS_OK)
				return;
		pr = poll(&pfd, 1, 500);
		if (fl_wait_stop(f, 0))
			return;
		if (pr < 0 && errno != EINTR)
			return;
		if (pr <= 0)
			continue;
		if (redisBufferRead(ctx) != REDIS_OK)
			return;
		while (redisGetReplyFromReader(ctx, &reply) == REDIS_OK && reply != NULL) {
			fl_sub_message(f, reply);
			freeReplyObject(reply);
			reply = NULL;
		}
		if (ctx->err)
			return;
	}
}

void *fl_sub_main(void *arg)
{
	struct fleet *f = arg;
	int64_t backoff = 100;
	bool lost = false;

	while (!fl_wait_stop(f, 0)) {
		char why[160];
		redisContext *ctx = rds_connect(f->rds, sm_now_ms() + 2000, why, sizeof(why));

		if (ctx == NULL) {
			if (!lost)
				sm_log(LOG_WARNING, "fleet: purge subscriber cannot connect to Redis: %s", why);
			lost = true;
			if (fl_wait_stop(f, backoff))
				break;
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
			continue;
		}
		if (lost) {
			/* purges may have been missed while disconnected */
			cache_local_clear(f->hooks.cache);
			sm_log(LOG_NOTICE, "fleet: purge subscriber connected again; in-process cache cleared");
		}
		backoff = 100;
		fl_sub_session(f, ctx);
		fl_set_subscribed(f, false);
		redisFree(ctx);
		lost = true;
	}
	return NULL;
}
