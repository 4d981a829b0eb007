/*
 * fl_poll.c - the events poller: one per fleet, elected through Redis. See fleet.h.
 *
 * Lease: "<prefix>:fleet:poller" (value "<instance> <token>") lives two intervals. Every
 * instance's poller thread tries to take or renew it every half interval: the holder
 * renews it (also before each further page of a round), anyone else takes it only once
 * it expired. A holder that dies is therefore replaced at most 2.5 intervals after its
 * last renewal, plus one Redis call: "within three intervals" (README). A poller that
 * stops cleanly (SIGTERM, reload) deletes the lease if it is still its own, so another
 * instance takes over at its next try, within half an interval.
 *
 * Rounds: the holder polls once per interval. It reads the position ("events:pos", the
 * created second of the newest event seen; the first poller starts at poll_start or
 * now), lists GET /v1/events?created[gt]=pos-1 page by page, newest first (an overlap of
 * one second, since several events share a second; applying is idempotent by event id),
 * applies the relevant ones oldest first and moves the position, only while it still
 * holds the lease.
 *
 * No type filter: the list is every event type, and the poller keeps exactly the types
 * the webhook applies (fleet_event_relevant(): customer.*, invoice.*, charge.*; the rest
 * are counted as ignored). Stripe allows at most 20 names in types[], fewer than the
 * types that purge (invoice.updated, charge.updated, charge.refund.updated, ... were left
 * out); type=<prefix>.* would cost three requests per interval, and how far a wildcard
 * reaches (customer.* and customer.subscription.*) is not documented. Unfiltered, a round
 * costs one request per 100 events of any type since the last one: one request per
 * interval on an account with fewer than 100 events per interval.
 *
 * Without Redis the poller runs alone in this process and keeps its position in memory.
 *
 * Diagnostics: polls, poll_errors; a missing rak_event_read permission is logged once;
 *	other failures at LOG_WARNING once per streak.
 *
 * Known limits: at most FL_POLL_MAX relevant events and FL_POLL_PAGES pages per round (the
 *	newest ones; older ones of a longer backlog are skipped with a warning). A page that
 *	hangs longer than the lease (a page may take max(interval, 2 s)) lets another instance
 *	take over meanwhile; both apply what they read (once per event id) and only the
 *	lease's holder moves the position.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "fleet/fl_int.h"

#define FL_POLL_MAX 1000	/* relevant events kept per round */
#define FL_POLL_PAGES 100	/* pages (of 100 events) per round */

/* KEYS: lease. ARGV: value, px. 1 held by us (taken or renewed), else the holder's value. */
static const char fl_lease_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end\n"
    "return v\n";

/* KEYS: lease. ARGV: value. Deletes the lease if it is still ours. */
static const char fl_release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

/* KEYS: lease, pos. ARGV: value, new position. Moves pos forward while we hold the lease. */
static const char fl_pos_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "local p = tonumber(redis.call('GET', KEYS[2]) or '0') or 0\n"
    "if tonumber(ARGV[2]) > p then redis.call('SET', KEYS[2], ARGV[2]) end\n"
    "return 1\n";

/* 1 we hold the lease, 0 someone else does (name in holder), -1 Redis failed. */
static int fl_lease(struct fleet *f, const char *value, char *holder, size_t len)
{
	char k[FL_KEY_MAX], px[24];
	int64_t ms = 2 * (int64_t)f->cfg.poll_interval_ms;
	redisReply *r;
	int rc = -1;

	holder[0] = '\0';
	snprintf(k, sizeof(k), "%s:fleet:poller", f->prefix);
	snprintf(px, sizeof(px), "%lld", (long long)(ms < 1000 ? 1000 : ms));
	r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "EVAL %s 1 %s %s %s", fl_lease_lua, k, value, px);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
		sm_strlcpy(holder, f->instance, len);
		rc = 1;
	} else if (r->type == REDIS_REPLY_STRING) {
		const char *sp = memchr(r->str, ' ', r->len);
		size_t n = sp ? (size_t)(sp - r->str) : r->len;

		if (n >= len)
			n = len - 1;
		memcpy(holder, r->str, n);
		holder[n] = '\0';
		rc = 0;
	}
	freeReplyObject(r);
	return rc;
}

/* On a clean stop: the lease goes at once if it is still ours. */
static void fl_lease_release(struct fleet *f, const char *value)
{
	char k[FL_KEY_MAX];
	redisReply *r;

	snprintf(k, sizeof(k), "%s:fleet:poller", f->prefix);
	r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "EVAL %s 1 %s %s", fl_release_lua, k, value);
	if (r) {
		if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
			sm_log(LOG_INFO, "fleet: events poller stopped; lease released");
		freeReplyObject(r);
	}
}

static int64_t fl_pos_get(struct fleet *f, int64_t *mem)
{
	char k[FL_KEY_MAX], v[24];
	redisReply *r;
	int64_t pos = 0;
	long p;

	if (!fl_redis(f)) {
		if (*mem == 0)
			*mem = f->cfg.poll_start > 0 ? f->cfg.poll_start : sm_wall_ms() / 1000;
		return *mem;
	}
	snprintf(k, sizeof(k), "%s:fleet:events:pos", f->prefix);
	r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "GET %s", k);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_STRING && r->len < sizeof(v)) {
		memcpy(v, r->str, r->len);
		v[r->len] = '\0';
		if (sm_parse_long(v, 0, 99999999999L, &p) == 0)
			pos = p;
	}
	freeReplyObject(r);
	if (pos == 0) {
		pos = f->cfg.poll_start > 0 ? f->cfg.poll_start : sm_wall_ms() / 1000;
		r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "SET %s %lld NX", k, (long long)pos);
		if (r)
			freeReplyObject(r);
	}
	return pos;
}

static void fl_pos_set(struct fleet *f, const char *lease_value, int64_t pos, int64_t *mem)
{
	char kl[FL_KEY_MAX], kp[FL_KEY_MAX], v[24];
	redisReply *r;

	if (!fl_redis(f)) {
		if (pos > *mem)
			*mem = pos;
		return;
	}
	snprintf(kl, sizeof(kl), "%s:fleet:poller", f->prefix);
	snprintf(kp, sizeof(kp), "%s:fleet:events:pos", f->prefix);
	snprintf(v, sizeof(v), "%lld", (long long)pos);
	r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "EVAL %s 2 %s %s %s %s", fl_pos_lua, kl, kp, lease_value, v);
	if (r)
		freeReplyObject(r);
}

/* Keeps the relevant events of a page (got at evs) at its start, in order; the others are
 * counted as ignored at once. Returns how many were kept; *newest gets the newest created. */
static int fl_poll_keep(struct fleet *f, struct stripe_event *evs, int got, int64_t *newest)
{
	int i, kept = 0;

	for (i = 0; i < got; i++) {
		if (evs[i].created > *newest)
			*newest = evs[i].created;
		if (!fleet_event_relevant(evs[i].type)) {
			fleet_event_apply(f, &evs[i], FLEET_SRC_POLL);	/* counted: received, ignored */
			continue;
		}
		if (kept != i)
			evs[kept] = evs[i];
		kept++;
	}
	return kept;
}

/* One round: list every type, keep the relevant ones, apply them oldest first, move the
 * position. 0 or -1. */
static int fl_poll_round(struct fleet *f, const char *lease_value, int64_t *mem, int *perm_logged,
    bool failing)
{
	struct stripe_event *evs = NULL;
	struct stripe_result res;
	char after[STRIPE_ID_MAX] = "", holder[128];
	int64_t pos, newpos, page_ms;
	int n = 0, got, i, pages = 0, rc = -1;
	bool more = true;

	/* a page may take one interval (at least 2 s, at most 10): a stop waits no longer */
	page_ms = f->cfg.poll_interval_ms < 2000 ? 2000 :
	    f->cfg.poll_interval_ms > 10000 ? 10000 : f->cfg.poll_interval_ms;
	pos = fl_pos_get(f, mem);
	if (pos < 0)
		return -1;
	newpos = pos;
	evs = calloc(FL_POLL_MAX, sizeof(*evs));
	if (evs == NULL)
		return -1;
	while (more && n < FL_POLL_MAX && pages < FL_POLL_PAGES) {
		/* a long round renews the lease before each further page, and ends when it is
		 * lost (what was read is still applied: once per event id) */
		if (pages > 0 && fl_redis(f) && fl_lease(f, lease_value, holder, sizeof(holder)) != 1)
			break;
		got = 0;
		if (f->hooks.events_list(f->hooks.arg, pos - 1, after, sm_now_ms() + page_ms, evs + n,
		    FL_POLL_MAX - n, &got, &more, &res) != STRIPE_OK) {
			if (res.err == STRIPE_E_PERMISSION)
				sm_log_once(perm_logged, LOG_ERR, "fleet: the Stripe key may not read events: grant "
				    "rak_event_read (Events: Read) for EventsPollInterval");
			else if (!failing)
				sm_log(LOG_WARNING, "fleet: events poll failed: %s (%s)", stripe_errclass_name(res.err),
				    res.message);
			goto out;
		}
		pages++;
		if (got == 0)
			break;
		sm_strlcpy(after, evs[n + got - 1].id, sizeof(after));
		n += fl_poll_keep(f, evs + n, got, &newpos);
	}
	if (more && (n >= FL_POLL_MAX || pages >= FL_POLL_PAGES))
		sm_log(LOG_WARNING, "fleet: more than %d events (%d pages) since the last poll: the older "
		    "ones are skipped", n, pages);
	for (i = n - 1; i >= 0; i--)
		fleet_event_apply(f, &evs[i], FLEET_SRC_POLL);
	if (newpos > pos)
		fl_pos_set(f, lease_value, newpos, mem);
	rc = 0;
out:
	free(evs);
	return rc;
}

void *fl_poll_main(void *arg)
{
	struct fleet *f = arg;
	char value[200], holder[128];
	int64_t mem = 0, next_poll = 0, tick = f->cfg.poll_interval_ms / 2;
	int perm_logged = 0;
	bool failing = false, held = false;

	snprintf(value, sizeof(value), "%s %s", f->instance, f->token);
	while (!fl_wait_stop(f, 0)) {
		int own = fl_redis(f) ? fl_lease(f, value, holder, sizeof(holder)) : 1;

		if (!fl_redis(f))
			sm_strlcpy(holder, f->instance, sizeof(holder));
		if (own >= 0)
			held = own == 1;
		pthread_mutex_lock(&f->mu);
		f->ctr.poller_owner = own == 1;
		if (own >= 0)
			sm_strlcpy(f->ctr.poller, holder, sizeof(f->ctr.poller));
		pthread_mutex_unlock(&f->mu);
		if (own == 1 && sm_now_ms() >= next_poll) {
			int rc;

			next_poll = sm_now_ms() + f->cfg.poll_interval_ms;	/* once per interval */
			rc = fl_poll_round(f, value, &mem, &perm_logged, failing);
			pthread_mutex_lock(&f->mu);
			f->ctr.polls++;
			if (rc != 0)
				f->ctr.poll_errors++;
			pthread_mutex_unlock(&f->mu);
			failing = rc != 0;
		}
		if (fl_wait_stop(f, tick > 0 ? tick : 1))
			break;
	}
	if (held && fl_redis(f))
		fl_lease_release(f, value);
	return NULL;
}
