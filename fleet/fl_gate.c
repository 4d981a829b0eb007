/*
 * fl_gate.c - the Stripe client's gate: one rate budget and one circuit breaker for the
 * fleet, both in Redis, with per-process fallbacks. See fleet.h.
 *
 * Budget: GCRA. "<prefix>:fleet:gcra" holds the theoretical arrival time (TAT, Redis
 *	TIME in microseconds). An attempt reserves the next slot: new = max(TAT, now) + T
 *	(T = 1/rate); it may go at new - burst*T, so it waits that long when that is in the
 *	future, and is refused (nothing reserved) when the wait would pass its deadline. One
 *	Lua script does the reservation atomically, so N instances together never exceed
 *	rate*t + burst requests over any t. A search request needs a slot in "gcra:search"
 *	(its own, lower rate) as well as in the main budget, which every request counts in.
 *
 * Breaker: hash "<prefix>:fleet:breaker" {fails, open_until, probe_until}. Attempts
 *	ending in a server error, a timeout or a network error (reset, refused) add to
 *	fails; a success deletes the hash (closed). At breaker_failures consecutive failures
 *	it opens for breaker_cooldown_ms: every admit says OPEN at once. After the cool-down
 *	the first admit becomes the probe (probe_until reserves it for one cool-down, so at
 *	most one probe per cool-down fleet-wide); the probe's success closes it, its failure
 *	opens it for another cool-down. The same script does the breaker check and the
 *	budget, so an attempt costs one Redis round trip (two when it fails or closes).
 *
 * Whole lookups: a lookup first reserves the slots of its usual requests at once
 *	(fleet_reserve: the TAT moves by n slots, or nothing when the last slot would come
 *	after the lookup's deadline), its attempts then go on those slots (PREPAID: breaker
 *	only) and it hands back what it did not use (fleet_refund: the TAT moves back, never
 *	before now). A scarce budget so lets whole lookups through instead of starting many
 *	and finishing none (their first request sent, the rest refused: wasted requests).
 *
 * Peers: every budget script also notes this instance in "<prefix>:fleet:peers" (a sorted
 *	set scored by the time of its last call, trimmed to FL_PEERS_WINDOW_S) and returns how
 *	many instances it holds: the divisor of the fallback budget below.
 *
 * Fallback: when Redis is not configured, the budget part answers LOCAL (the Stripe
 *	client's own per-process token bucket). When it is but a script fails or answers
 *	late (Redis down, slow, or every pooled connection busy past FL_REDIS_MS), a fleet
 *	budget is kept locally: this instance's share of it (rate / peers, burst / peers but
 *	at least 1, from the peer count Redis last gave; 1 before it gave any), in an
 *	in-process GCRA that every slot taken in Redis is charged to as well, so the fleet
 *	together stays near its budget while Redis is away. An in-process breaker with the
 *	same rules decides open/probe. Both count redis_fallbacks.
 *
 * Diagnostics: transitions are logged by fl_set_breaker(); counters in fleet_counters.
 *
 * Known limits: Redis TIME is the clock (one server); behind Sentinel a failover loses
 *	the budget's TAT (one extra burst) and the breaker (closed). A call that reached
 *	Redis but answered late has taken its slot there and is charged again locally (the
 *	safe side). An instance that never reached Redis counts itself alone (so does a fleet
 *	object made by a reload while Redis is away); one that was idle for FL_PEERS_WINDOW_S
 *	is not counted by the others; a restarted instance without InstanceName (host:pid)
 *	is counted twice for up to FL_PEERS_WINDOW_S (smaller shares: the safe side).
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "fleet/fl_int.h"

/* Lua: notes instance `who` in the peers set k (window win seconds), returns its size. */
#define FL_PEERS_LUA \
    "local function peers(k, who, now, win)\n" \
    "  redis.call('ZADD', k, string.format('%.0f', now), who)\n" \
    "  redis.call('ZREMRANGEBYSCORE', k, '-inf', string.format('%.0f', now - win * 1000000))\n" \
    "  redis.call('PEXPIRE', k, win * 1000)\n" \
    "  return redis.call('ZCARD', k)\n" \
    "end\n"

/* KEYS: breaker, gcra, gcra:search, peers. ARGV: T (us, 0 = no budget), burst, max wait
 * (ms), breaker on, probe reservation (ms), search T (us, 0 = not a search), search burst,
 * instance, peers window (s). A search needs a slot in both budgets (the account's limit
 * counts every request).
 * Returns {verdict (0 go, 2 no budget, 3 open), wait ms, fails, probe, peers}. */
static const char fl_admit_lua[] =
    FL_PEERS_LUA
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local np = peers(KEYS[4], ARGV[8], now, tonumber(ARGV[9]))\n"
    "local probe, fails = 0, 0\n"
    "if ARGV[4] == '1' then\n"
    "  local b = redis.call('HMGET', KEYS[1], 'open_until', 'probe_until', 'fails')\n"
    "  local ou = tonumber(b[1]) or 0\n"
    "  fails = tonumber(b[3]) or 0\n"
    "  if ou > 0 then\n"
    "    if now < ou then return {3, math.ceil((ou - now) / 1000), fails, 0, np} end\n"
    "    local pu = tonumber(b[2]) or 0\n"
    "    if now < pu then return {3, math.ceil((pu - now) / 1000), fails, 0, np} end\n"
    "    redis.call('HSET', KEYS[1], 'probe_until', string.format('%.0f', now + tonumber(ARGV[5]) * 1000))\n"
    "    probe = 1\n"
    "  end\n"
    "end\n"
    "local wait, news = 0, {}\n"
    "for i = 1, 2 do\n"
    "  local T = tonumber(ARGV[i == 1 and 1 or 6])\n"
    "  if T > 0 then\n"
    "    local burst = tonumber(ARGV[i == 1 and 2 or 7])\n"
    "    local tat = tonumber(redis.call('GET', KEYS[i + 1]) or '0') or 0\n"
    "    if tat < now then tat = now end\n"
    "    local new = tat + T\n"
    "    local allow = new - burst * T\n"
    "    if allow - now > wait then wait = allow - now end\n"
    "    news[i] = new\n"
    "  end\n"
    "end\n"
    "if wait > tonumber(ARGV[3]) * 1000 then\n"
    "  if probe == 1 then redis.call('HSET', KEYS[1], 'probe_until', '0') end\n"
    "  return {2, math.ceil(wait / 1000), fails, 0, np}\n"
    "end\n"
    "for i = 1, 2 do\n"
    "  if news[i] then\n"
    "    redis.call('SET', KEYS[i + 1], string.format('%.0f', news[i]), 'PX', math.ceil((news[i] - now) / 1000) + 1000)\n"
    "  end\n"
    "end\n"
    "return {0, math.ceil(wait / 1000), fails, probe, np}\n";

/* KEYS: breaker. ARGV: ok (1/0), threshold, cool-down (ms), was probe (1/0).
 * Returns 1 closed by this success, 2 opened by this failure, 0 no change. */
static const char fl_report_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local ou = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0') or 0\n"
    "local keep = tonumber(ARGV[3]) * 10 + 60000\n"
    "if ARGV[1] == '1' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  if ou > 0 then return 1 end\n"
    "  return 0\n"
    "end\n"
    "local f = redis.call('HINCRBY', KEYS[1], 'fails', 1)\n"
    "if (ou > 0 and ARGV[4] == '1') or (ou == 0 and f >= tonumber(ARGV[2])) then\n"
    "  redis.call('HSET', KEYS[1], 'open_until', string.format('%.0f', now + tonumber(ARGV[3]) * 1000), 'probe_until', '0')\n"
    "  redis.call('PEXPIRE', KEYS[1], keep)\n"
    "  return 2\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], keep)\n"
    "return 0\n";

/* The ticket an admit hands the attempt, given back to fleet_report(): the attempt is the
 * breaker's probe; the admit saw failures counted (a success then resets them); the
 * decision was local (Redis failed). */
#define FL_T_PROBE	0x1u
#define FL_T_DIRTY	0x2u
#define FL_T_LOCAL	0x4u

static bool fl_is_failure(enum stripe_errclass err)
{
	return err == STRIPE_E_SERVER || err == STRIPE_E_TIMEOUT || err == STRIPE_E_NETWORK;
}

static bool fl_is_success(enum stripe_errclass err)
{
	return err == STRIPE_OK || err == STRIPE_E_AUTH || err == STRIPE_E_PERMISSION ||
	    err == STRIPE_E_REQUEST;
}

/* ---- in-process breaker ---------------------------------------------------------------- */

static enum stripe_gate_verdict fl_local_admit(struct fleet *f, unsigned *ticket)
{
	struct fl_local_breaker *lb = &f->lb;
	enum stripe_gate_verdict v = STRIPE_GATE_LOCAL;
	int64_t now = sm_now_ms();

	*ticket = FL_T_LOCAL;
	if (f->cfg.breaker_failures <= 0)
		return v;
	pthread_mutex_lock(&lb->mu);
	if (lb->open_until > 0) {
		if (now < lb->open_until || lb->probe_out) {
			v = STRIPE_GATE_OPEN;
		} else {
			lb->probe_out = true;
			*ticket |= FL_T_PROBE;
		}
	}
	pthread_mutex_unlock(&lb->mu);
	return v;
}

static void fl_local_report(struct fleet *f, unsigned ticket, bool ok)
{
	struct fl_local_breaker *lb = &f->lb;
	enum fleet_breaker b = FLEET_BREAKER_CLOSED;
	int64_t now = sm_now_ms();

	pthread_mutex_lock(&lb->mu);
	if (ok) {
		lb->failures = 0;
		lb->open_until = 0;
		lb->probe_out = false;
	} else {
		lb->failures++;
		if ((lb->open_until > 0 && (ticket & FL_T_PROBE)) ||
		    (lb->open_until == 0 && lb->failures >= f->cfg.breaker_failures)) {
			lb->open_until = now + f->cfg.breaker_cooldown_ms;
			lb->probe_out = false;
		}
	}
	if (lb->open_until > 0)
		b = FLEET_BREAKER_OPEN;
	pthread_mutex_unlock(&lb->mu);
	fl_set_breaker(f, b);
}

/* A local probe that was not sent (no budget for it): another attempt may probe. */
static void fl_local_report_unused(struct fleet *f)
{
	pthread_mutex_lock(&f->lb.mu);
	f->lb.probe_out = false;
	pthread_mutex_unlock(&f->lb.mu);
}

/* ---- in-process budget ------------------------------------------------------------------ */

/* sm_now_ms() in microseconds: the slot interval of a share may be below 1 ms. */
static int64_t fl_now_us(void)
{
	return sm_now_ms() * 1000;
}

static int fl_peers(struct fleet *f)
{
	int n = __atomic_load_n(&f->peers, __ATOMIC_RELAXED);

	return n > 0 ? n : 1;
}

static void fl_peers_set(struct fleet *f, long long n)
{
	if (n > 0 && n <= INT_MAX)
		__atomic_store_n(&f->peers, (int)n, __ATOMIC_RELAXED);
}

/* This instance's share of one budget: the slot interval (us) and burst. */
static void fl_share(struct fleet *f, double rate, int burst, int64_t *t_us, int *b)
{
	int peers = fl_peers(f);

	*t_us = (int64_t)(1e6 * peers / rate + 0.5);
	*b = burst / peers > 0 ? burst / peers : 1;
}

/* GCRA step on one local TAT: the wait (us) before n more slots, and the TAT they leave.
 * charge: reserve them whatever the wait, but never further than "empty" (now + burst * T):
 * slots Redis granted, counted so a fallback does not add a burst to them. */
static int64_t fl_local_step(int64_t tat, int64_t now, int64_t t_us, int burst, int n, bool charge,
    int64_t *new_tat)
{
	int64_t base = tat > now ? tat : now, next = base + (int64_t)n * t_us;
	int64_t empty = now + (int64_t)burst * t_us;

	if (charge && next > empty)
		next = base > empty ? base : empty;	/* never lowers the TAT */
	*new_tat = next;
	return next - (int64_t)burst * t_us - now > 0 ? next - (int64_t)burst * t_us - now : 0;
}

/* Charges n slots the fleet's budget granted (and a search slot) to the local share. */
static void fl_local_charge(struct fleet *f, int n, bool search)
{
	int64_t now = fl_now_us(), t_us, nt;
	int b;

	if (f->cfg.rate <= 0 || n <= 0)
		return;
	pthread_mutex_lock(&f->lbud.mu);
	fl_share(f, f->cfg.rate, f->cfg.burst, &t_us, &b);
	fl_local_step(f->lbud.tat_us, now, t_us, b, n, true, &nt);
	f->lbud.tat_us = nt;
	if (search && f->cfg.search_rate > 0) {
		fl_share(f, f->cfg.search_rate, f->cfg.search_burst, &t_us, &b);
		fl_local_step(f->lbud.search_tat_us, now, t_us, b, 1, true, &nt);
		f->lbud.search_tat_us = nt;
	}
	pthread_mutex_unlock(&f->lbud.mu);
}

/* One slot of this instance's share (and of its search share for a search) when Redis
 * failed: GO with *wait_ms, or NO_BUDGET (nothing taken) when it would come after
 * max_wait_ms. Counted like the Redis budget's decisions. */
static enum stripe_gate_verdict fl_local_budget(struct fleet *f, bool search, int64_t max_wait_ms,
    int64_t *wait_ms)
{
	int64_t now = fl_now_us(), t_us, st_us, w, sw = 0, nt, nst = 0;
	int b, sb;

	pthread_mutex_lock(&f->lbud.mu);
	fl_share(f, f->cfg.rate, f->cfg.burst, &t_us, &b);
	w = fl_local_step(f->lbud.tat_us, now, t_us, b, 1, false, &nt);
	if (search && f->cfg.search_rate > 0) {
		fl_share(f, f->cfg.search_rate, f->cfg.search_burst, &st_us, &sb);
		sw = fl_local_step(f->lbud.search_tat_us, now, st_us, sb, 1, false, &nst);
	}
	if (sw > w)
		w = sw;
	if (w > (max_wait_ms > 0 ? max_wait_ms : 0) * 1000) {
		pthread_mutex_unlock(&f->lbud.mu);
		FL_CTR_INC(f, budget_denied);
		return STRIPE_GATE_NO_BUDGET;
	}
	f->lbud.tat_us = nt;
	if (search && f->cfg.search_rate > 0)
		f->lbud.search_tat_us = nst;
	pthread_mutex_unlock(&f->lbud.mu);
	*wait_ms = (w + 999) / 1000;
	FL_CTR_INC(f, budget_granted);
	FL_CTR_ADD(f, budget_wait_ms, *wait_ms);
	return STRIPE_GATE_GO;
}

/* The decision when Redis failed: the local breaker first, then (a fleet budget, not a
 * prepaid attempt) this instance's share. */
static enum stripe_gate_verdict fl_fallback(struct fleet *f, bool search, bool prepaid, int64_t max_wait_ms,
    int64_t *wait_ms, unsigned *ticket)
{
	enum stripe_gate_verdict v;

	FL_CTR_INC(f, redis_fallbacks);
	if (f->cfg.breaker_failures > 0) {
		v = fl_local_admit(f, ticket);
		if (v != STRIPE_GATE_LOCAL)
			return v;
	} else {
		*ticket = FL_T_LOCAL;
	}
	if (prepaid) {
		fl_local_charge(f, 1, false);
		return STRIPE_GATE_GO;		/* its lookup's reservation was made in Redis */
	}
	if (f->cfg.rate <= 0)
		return STRIPE_GATE_LOCAL;
	v = fl_local_budget(f, search, max_wait_ms, wait_ms);
	if (v != STRIPE_GATE_GO && (*ticket & FL_T_PROBE))
		fl_local_report_unused(f);
	return v;
}

/* ---- the gate ------------------------------------------------------------------------- */

/* The deadline of one gate command: FL_REDIS_MS, never past the attempt's deadline. */
static int64_t fl_cmd_deadline(int64_t deadline_ms)
{
	int64_t d = sm_now_ms() + FL_REDIS_MS;

	return deadline_ms < d ? deadline_ms : d;
}

enum stripe_gate_verdict fleet_admit(struct fleet *f, unsigned flags, int64_t deadline_ms, int64_t *wait_ms,
    unsigned *ticket)
{
	bool search = (flags & STRIPE_GATE_SEARCH) != 0, prepaid = (flags & STRIPE_GATE_PREPAID) != 0;
	char kb[FL_KEY_MAX], kg[FL_KEY_MAX], ks[FL_KEY_MAX], kp[FL_KEY_MAX], targ[32], barg[16], warg[24];
	char carg[16], starg[32], sbarg[16], parg[16];
	double rate = prepaid ? 0 : f->cfg.rate;	/* a reserved slot: the breaker only */
	bool srch = search && f->cfg.search_rate > 0 && !prepaid;
	/* a search never waits for a slot (an extra: skipped when there is no room now) */
	int64_t max_wait = search ? 0 : sm_ms_left(deadline_ms);
	redisReply *r;
	long long verdict, wait, fails, probe;

	*wait_ms = 0;
	*ticket = 0;
	if (!fl_redis(f) || (rate <= 0 && f->cfg.breaker_failures <= 0)) {
		if (f->cfg.breaker_failures > 0)
			return fl_local_admit(f, ticket);
		return prepaid ? STRIPE_GATE_GO : STRIPE_GATE_LOCAL;
	}
	snprintf(kb, sizeof(kb), "%s:fleet:breaker", f->prefix);
	snprintf(kg, sizeof(kg), "%s:fleet:gcra", f->prefix);
	snprintf(ks, sizeof(ks), "%s:fleet:gcra:search", f->prefix);
	snprintf(kp, sizeof(kp), "%s:fleet:peers", f->prefix);
	snprintf(targ, sizeof(targ), "%.0f", rate > 0 ? 1e6 / rate : 0.0);
	snprintf(starg, sizeof(starg), "%.0f", srch ? 1e6 / f->cfg.search_rate : 0.0);
	snprintf(sbarg, sizeof(sbarg), "%d", f->cfg.search_burst);
	snprintf(barg, sizeof(barg), "%d", f->cfg.burst);
	snprintf(warg, sizeof(warg), "%lld", (long long)max_wait);
	snprintf(carg, sizeof(carg), "%d", f->cfg.breaker_cooldown_ms);
	snprintf(parg, sizeof(parg), "%d", FL_PEERS_WINDOW_S);
	r = fl_cmd(f, fl_cmd_deadline(deadline_ms), "EVAL %s 4 %s %s %s %s %s %s %s %s %s %s %s %s %s",
	    fl_admit_lua, kb, kg, ks, kp, targ, barg, warg, f->cfg.breaker_failures > 0 ? "1" : "0", carg,
	    starg, sbarg, f->instance, parg);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
		if (r)
			freeReplyObject(r);
		return fl_fallback(f, search, prepaid, max_wait, wait_ms, ticket);
	}
	verdict = r->element[0]->integer;
	wait = r->element[1]->integer;
	fails = r->element[2]->integer;
	probe = r->element[3]->integer;
	fl_peers_set(f, r->element[4]->integer);
	freeReplyObject(r);
	*ticket = (probe ? FL_T_PROBE : 0) | (fails > 0 || probe ? FL_T_DIRTY : 0);
	if (verdict == 3) {
		FL_CTR_INC(f, breaker_rejected);
		fl_set_breaker(f, FLEET_BREAKER_OPEN);
		return STRIPE_GATE_OPEN;
	}
	if (probe) {
		FL_CTR_INC(f, breaker_probes);
		fl_set_breaker(f, FLEET_BREAKER_HALF_OPEN);
	} else if (f->cfg.breaker_failures > 0) {
		fl_set_breaker(f, FLEET_BREAKER_CLOSED);	/* another instance closed it */
	}
	if (verdict == 2) {
		FL_CTR_INC(f, budget_denied);
		return STRIPE_GATE_NO_BUDGET;
	}
	if (prepaid) {
		fl_local_charge(f, 1, false);
		return STRIPE_GATE_GO;		/* its lookup's reservation was counted */
	}
	if (rate <= 0 && !srch) {
		FL_CTR_INC(f, budget_local);
		return STRIPE_GATE_LOCAL;	/* breaker only: the local bucket paces */
	}
	fl_local_charge(f, 1, srch);
	FL_CTR_INC(f, budget_granted);
	FL_CTR_ADD(f, budget_wait_ms, wait);
	*wait_ms = wait;
	return STRIPE_GATE_GO;
}

void fleet_report(struct fleet *f, unsigned ticket, enum stripe_errclass err, long http_status)
{
	char kb[FL_KEY_MAX], thr[16], carg[16];
	bool fail = fl_is_failure(err), ok = fl_is_success(err);
	redisReply *r;

	(void)http_status;
	if (f->cfg.breaker_failures <= 0 || (!fail && !ok))
		return;
	if (ticket & FL_T_LOCAL) {
		fl_local_report(f, ticket, ok);
		return;
	}
	if (ok && !(ticket & FL_T_DIRTY))
		return;		/* closed and no failures seen: nothing to reset */
	snprintf(kb, sizeof(kb), "%s:fleet:breaker", f->prefix);
	snprintf(thr, sizeof(thr), "%d", f->cfg.breaker_failures);
	snprintf(carg, sizeof(carg), "%d", f->cfg.breaker_cooldown_ms);
	r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "EVAL %s 1 %s %s %s %s %s", fl_report_lua, kb,
	    ok ? "1" : "0", thr, carg, ticket & FL_T_PROBE ? "1" : "0");
	if (r == NULL) {
		FL_CTR_INC(f, redis_fallbacks);
		fl_local_report(f, ticket, ok);
		return;
	}
	if (r->type == REDIS_REPLY_INTEGER && r->integer == 2)
		fl_set_breaker(f, FLEET_BREAKER_OPEN);
	else if (r->type == REDIS_REPLY_INTEGER && r->integer == 1)
		fl_set_breaker(f, FLEET_BREAKER_CLOSED);
	else if (ok)
		fl_set_breaker(f, FLEET_BREAKER_CLOSED);
	freeReplyObject(r);
}

/* ---- whole lookups -------------------------------------------------------------------- */

/* KEYS: gcra, peers. ARGV: T (us), burst, n, max wait (ms), instance, peers window (s).
 * {0 go, wait ms to the first slot, peers} or {2 no budget, wait ms to the last, peers}. */
static const char fl_reserve_lua[] =
    FL_PEERS_LUA
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local np = peers(KEYS[2], ARGV[5], now, tonumber(ARGV[6]))\n"
    "local T, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
    "if tat < now then tat = now end\n"
    "local first = tat + T - burst * T - now\n"
    "local last = tat + n * T - burst * T - now\n"
    "if first < 0 then first = 0 end\n"
    "if last > tonumber(ARGV[4]) * 1000 then return {2, math.ceil(last / 1000), np} end\n"
    "local new = tat + n * T\n"
    "redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1000)\n"
    "return {0, math.ceil(first / 1000), np}\n";

/* KEYS: gcra. ARGV: T (us), n. Moves the TAT back by n slots, never before now. */
static const char fl_refund_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
    "if tat <= now then return 0 end\n"
    "local new = tat - tonumber(ARGV[1]) * tonumber(ARGV[2])\n"
    "if new < now then new = now end\n"
    "redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1000)\n"
    "return 1\n";

enum stripe_gate_verdict fleet_reserve(struct fleet *f, int n, int64_t max_wait_ms, int64_t *wait_ms,
    int64_t *step_ms)
{
	char kg[FL_KEY_MAX], kp[FL_KEY_MAX], targ[32], barg[16], narg[16], warg[24], parg[16];
	redisReply *r;
	long long verdict;

	*wait_ms = *step_ms = 0;
	if (!fl_redis(f) || f->cfg.rate <= 0 || n <= 0)
		return STRIPE_GATE_LOCAL;
	snprintf(kg, sizeof(kg), "%s:fleet:gcra", f->prefix);
	snprintf(kp, sizeof(kp), "%s:fleet:peers", f->prefix);
	snprintf(targ, sizeof(targ), "%.0f", 1e6 / f->cfg.rate);
	snprintf(barg, sizeof(barg), "%d", f->cfg.burst);
	snprintf(narg, sizeof(narg), "%d", n);
	snprintf(warg, sizeof(warg), "%lld", (long long)(max_wait_ms > 0 ? max_wait_ms : 0));
	snprintf(parg, sizeof(parg), "%d", FL_PEERS_WINDOW_S);
	r = fl_cmd(f, fl_cmd_deadline(sm_now_ms() + (max_wait_ms > 0 ? max_wait_ms : 1)),
	    "EVAL %s 2 %s %s %s %s %s %s %s %s", fl_reserve_lua, kg, kp, targ, barg, narg, warg, f->instance,
	    parg);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
		if (r)
			freeReplyObject(r);
		FL_CTR_INC(f, redis_fallbacks);
		return STRIPE_GATE_LOCAL;	/* attempts are admitted one by one */
	}
	verdict = r->element[0]->integer;
	*wait_ms = r->element[1]->integer;
	fl_peers_set(f, r->element[2]->integer);
	freeReplyObject(r);
	if (verdict != 0) {
		*wait_ms = 0;
		FL_CTR_INC(f, budget_denied);
		return STRIPE_GATE_NO_BUDGET;
	}
	*step_ms = (int64_t)(1000.0 / f->cfg.rate + 0.999);
	FL_CTR_ADD(f, budget_granted, n);
	FL_CTR_ADD(f, budget_wait_ms, *wait_ms);
	return STRIPE_GATE_GO;
}

void fleet_refund(struct fleet *f, int n)
{
	char kg[FL_KEY_MAX], targ[32], narg[16];
	redisReply *r;

	if (!fl_redis(f) || f->cfg.rate <= 0 || n <= 0)
		return;
	snprintf(kg, sizeof(kg), "%s:fleet:gcra", f->prefix);
	snprintf(targ, sizeof(targ), "%.0f", 1e6 / f->cfg.rate);
	snprintf(narg, sizeof(narg), "%d", n);
	r = fl_cmd(f, sm_now_ms() + FL_REDIS_MS, "EVAL %s 1 %s %s %s", fl_refund_lua, kg, targ, narg);
	if (r)
		freeReplyObject(r);
	FL_CTR_ADD(f, budget_refunded, n);
}
