/*
 * test_fleet_redis.c - fleet/ against a real redis-server started here: the GCRA budget
 * (exact counts: the rates are so low that no slot frees up while a case runs), search's
 * own budget, the breaker (open after N failures, one probe after the cool-down, the
 * probe's success closes it; the cool-down is ended by moving open_until in Redis, not by
 * waiting), the local fallbacks when Redis is unreachable or stalled (the fleet budget kept
 * as this instance's share: burst / peers, spent by what it took in Redis), a search's Redis
 * call given the attempt's time, the customer index with event
 * purges in Redis and in another instance's L1 over pub/sub, and duplicates.
 *
 * Every case uses its own key prefix.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "common/sm_util.h"
#include "fleet/fleet.h"
#include "tests/harness/th.h"

static struct th_redis R;

struct inst {
	struct cache *c;
	struct fleet *f;
};

static int key_for(void *arg, const char *email, char *key, size_t len)
{
	const char *prefix = arg;

	return snprintf(key, len, "%s:v1:addr:%s", prefix, email) >= (int)len ? -1 : 0;
}

/* A cache on R (L1 + Redis) and a fleet on its pool. port 0 = R's. */
static void inst_new(struct inst *in, const char *prefix, const struct fleet_config *base, int port,
    bool start)
{
	struct cache_config k;
	struct fleet_config fc = *base;
	struct fleet_hooks fh;
	char err[256] = "";

	memset(&k, 0, sizeof(k));
	k.prefix = prefix;
	k.redis_host = "127.0.0.1";
	k.redis_port = port ? port : R.port;
	k.command_timeout_ms = 300;
	k.connect_timeout_ms = 300;
	in->c = cache_new(&k, err, sizeof(err));
	ck_assert_msg(in->c != NULL, "%s", err);
	memset(&fh, 0, sizeof(fh));
	fh.cache = in->c;
	fh.key_for_email = key_for;
	fh.arg = (void *)prefix;
	fc.redis = cache_redis(in->c);
	fc.prefix = prefix;
	in->f = fleet_new(&fc, &fh, err, sizeof(err));
	ck_assert_msg(in->f != NULL, "%s", err);
	if (start)
		ck_assert_int_eq(fleet_start(in->f), 0);
}

static void inst_free(struct inst *in)
{
	fleet_free(in->f);
	cache_free(in->c);
}

static unsigned last_ticket;

/* An admit whose attempt has max_wait ms left (a search never waits, whatever is left). */
static enum stripe_gate_verdict admit(struct fleet *f, bool search, int64_t max_wait, int64_t *wait)
{
	return fleet_admit(f, search ? STRIPE_GATE_SEARCH : 0, sm_now_ms() + max_wait, wait, &last_ticket);
}

START_TEST(gcra_exact_burst_then_refusal)
{
	struct fleet_config fc;
	struct inst a, b;
	int64_t w;
	int i;

	memset(&fc, 0, sizeof(fc));
	fc.rate = 0.001;	/* one slot per 1000 s */
	fc.burst = 3;
	inst_new(&a, "gc", &fc, 0, false);
	inst_new(&b, "gc", &fc, 0, false);
	/* the burst is shared by both instances */
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(admit(i % 2 ? b.f : a.f, false, 1000, &w), STRIPE_GATE_GO);
		ck_assert_int_eq(w, 0);
	}
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_NO_BUDGET);
	ck_assert_int_eq(admit(b.f, false, 500000, &w), STRIPE_GATE_NO_BUDGET);
	/* a deadline far enough away reserves the next slot and says how long to wait */
	ck_assert_int_eq(admit(b.f, false, 2000000, &w), STRIPE_GATE_GO);
	ck_assert_int_gt(w, 900000);
	ck_assert_int_le(w, 1000000);
	{
		struct fleet_counters c;

		fleet_counters_get(a.f, &c);
		ck_assert_int_eq((int)c.budget_granted, 2);
		ck_assert_int_eq((int)c.budget_denied, 1);
	}
	inst_free(&a);
	inst_free(&b);
}
END_TEST

/* A lookup reserves its usual requests at once, or nothing; unused slots go back. */
START_TEST(lookup_reserves_all_or_nothing)
{
	struct fleet_config fc;
	struct inst a;
	int64_t w, step;

	memset(&fc, 0, sizeof(fc));
	fc.rate = 0.001;	/* a slot per 1000 s */
	fc.burst = 4;
	inst_new(&a, "rs", &fc, 0, false);
	ck_assert_int_eq(fleet_reserve(a.f, 3, 1000, &w, &step), STRIPE_GATE_GO);
	ck_assert_int_eq(w, 0);
	ck_assert_int_eq(step, 1000000);
	/* one slot is left: a lookup of three does not start, a single request goes */
	ck_assert_int_eq(fleet_reserve(a.f, 3, 1000, &w, &step), STRIPE_GATE_NO_BUDGET);
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_NO_BUDGET);
	/* the first lookup used one of its three: two go back */
	fleet_refund(a.f, 2);
	ck_assert_int_eq(fleet_reserve(a.f, 2, 1000, &w, &step), STRIPE_GATE_GO);
	ck_assert_int_eq(fleet_reserve(a.f, 1, 1000, &w, &step), STRIPE_GATE_NO_BUDGET);
	/* a reserved attempt asks the breaker only */
	ck_assert_int_eq(fleet_admit(a.f, STRIPE_GATE_PREPAID, sm_now_ms() + 1000, &w, &last_ticket), STRIPE_GATE_GO);
	inst_free(&a);
}
END_TEST

START_TEST(search_needs_both_budgets)
{
	struct fleet_config fc;
	struct inst a;
	int64_t w;

	memset(&fc, 0, sizeof(fc));
	fc.rate = 0.001;
	fc.burst = 2;
	fc.search_rate = 0.001;
	fc.search_burst = 1;
	inst_new(&a, "se", &fc, 0, false);
	/* a search takes a slot of its own budget and one of the main budget */
	ck_assert_int_eq(admit(a.f, true, 1000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(admit(a.f, true, 1000, &w), STRIPE_GATE_NO_BUDGET);	/* search spent */
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_NO_BUDGET);	/* main: 1 + 1 of 2 */
	ck_assert_int_eq(admit(a.f, true, 1000, &w), STRIPE_GATE_NO_BUDGET);
	inst_free(&a);
}
END_TEST

/* An attempt: admit, then report how it ended. */
static enum stripe_gate_verdict attempt(struct fleet *f, enum stripe_errclass outcome)
{
	int64_t w;
	unsigned ticket;
	enum stripe_gate_verdict v = fleet_admit(f, 0, sm_now_ms() + 10000, &w, &ticket);

	if (v == STRIPE_GATE_GO || v == STRIPE_GATE_LOCAL)
		fleet_report(f, ticket, outcome, outcome == STRIPE_OK ? 200 : 500);
	return v;
}

START_TEST(breaker_opens_probes_once_and_closes)
{
	struct fleet_config fc;
	struct fleet_counters c;
	struct inst a, b;
	char out[64];

	memset(&fc, 0, sizeof(fc));
	fc.rate = 1000;
	fc.burst = 1000;
	fc.breaker_failures = 3;
	fc.breaker_cooldown_ms = 600000;	/* ended by hand below */
	inst_new(&a, "br", &fc, 0, false);
	inst_new(&b, "br", &fc, 0, false);
	/* a success between failures resets the count: failures must be consecutive */
	ck_assert_int_eq(attempt(a.f, STRIPE_E_SERVER), STRIPE_GATE_GO);
	ck_assert_int_eq(attempt(b.f, STRIPE_E_TIMEOUT), STRIPE_GATE_GO);
	ck_assert_int_eq(attempt(a.f, STRIPE_OK), STRIPE_GATE_GO);
	ck_assert_int_eq(attempt(a.f, STRIPE_E_SERVER), STRIPE_GATE_GO);
	ck_assert_int_eq(attempt(b.f, STRIPE_E_NETWORK), STRIPE_GATE_GO);
	/* a 429 or a 404 is Stripe answering: neither a failure nor a reset */
	ck_assert_int_eq(attempt(b.f, STRIPE_E_RATELIMIT), STRIPE_GATE_GO);
	ck_assert_int_eq(attempt(a.f, STRIPE_E_SERVER), STRIPE_GATE_GO);
	/* open, for both instances */
	ck_assert_int_eq(attempt(a.f, STRIPE_OK), STRIPE_GATE_OPEN);
	ck_assert_int_eq(attempt(b.f, STRIPE_OK), STRIPE_GATE_OPEN);
	fleet_counters_get(a.f, &c);
	ck_assert_int_eq(c.breaker, FLEET_BREAKER_OPEN);
	ck_assert_int_eq((int)c.breaker_opened, 1);
	/* the cool-down ends (moved into the past in Redis): one probe, the others still wait */
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "HSET %s open_until %s", "br:fleet:breaker", "1"), 0);
	{
		int64_t w;
		unsigned probe;

		ck_assert_int_eq(fleet_admit(b.f, 0, sm_now_ms() + 10000, &w, &probe), STRIPE_GATE_GO);	/* the probe */
		ck_assert_int_eq(attempt(a.f, STRIPE_OK), STRIPE_GATE_OPEN);
		ck_assert_int_eq(attempt(a.f, STRIPE_OK), STRIPE_GATE_OPEN);
		/* the probe fails: open again for a whole cool-down */
		fleet_report(b.f, probe, STRIPE_E_SERVER, 503);
	}
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "HSET %s open_until %s", "br:fleet:breaker", "1"), 0);
	ck_assert_int_eq(attempt(a.f, STRIPE_OK), STRIPE_GATE_GO);	/* probe succeeds: closed */
	ck_assert_int_eq(attempt(b.f, STRIPE_OK), STRIPE_GATE_GO);
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "EXISTS %s", "br:fleet:breaker"), 0);
	ck_assert_str_eq(out, "0");
	fleet_counters_get(b.f, &c);
	ck_assert_int_eq(c.breaker, FLEET_BREAKER_CLOSED);
	ck_assert_int_eq((int)c.breaker_probes, 1);
	inst_free(&a);
	inst_free(&b);
}
END_TEST

START_TEST(redis_unreachable_falls_back_locally)
{
	struct fleet_config fc;
	struct fleet_counters c;
	struct inst a;

	memset(&fc, 0, sizeof(fc));
	fc.rate = 1000;
	fc.burst = 1000;
	fc.breaker_failures = 2;
	fc.breaker_cooldown_ms = 600000;
	inst_new(&a, "dn", &fc, 1, false);	/* nothing listens on port 1 */
	ck_assert_int_eq(attempt(a.f, STRIPE_E_SERVER), STRIPE_GATE_GO);	/* the local share decides */
	ck_assert_int_eq(attempt(a.f, STRIPE_E_SERVER), STRIPE_GATE_GO);
	ck_assert_int_eq(attempt(a.f, STRIPE_OK), STRIPE_GATE_OPEN);	/* the local breaker opened */
	fleet_counters_get(a.f, &c);
	ck_assert_int_ge((int)c.redis_fallbacks, 1);
	ck_assert_int_eq(c.breaker, FLEET_BREAKER_OPEN);
	inst_free(&a);
}
END_TEST

/* Redis unreachable from the start: the fleet budget is still kept, in this process (it
 * counts itself alone: it never learnt of other instances), not the per-process bucket. */
START_TEST(redis_unreachable_keeps_the_budget)
{
	struct fleet_config fc;
	struct fleet_counters c;
	struct inst a;
	int64_t w;

	memset(&fc, 0, sizeof(fc));
	fc.rate = 0.002;
	fc.burst = 2;
	inst_new(&a, "dk", &fc, 1, false);
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_NO_BUDGET);
	fleet_counters_get(a.f, &c);
	ck_assert_int_eq((int)c.redis_fallbacks, 3);
	ck_assert_int_eq((int)c.budget_granted, 2);
	ck_assert_int_eq((int)c.budget_denied, 1);
	ck_assert_int_eq(c.peers, 1);
	inst_free(&a);
}
END_TEST

static void redis_running(void)
{
	th_redis_resume(&R);
}

/* Four instances learn of each other through the budget; Redis stalls: each keeps its
 * share (burst / 4 here), not the whole budget. */
START_TEST(stalled_redis_share_per_peer)
{
	struct fleet_config fc;
	struct fleet_counters c;
	struct inst in[4];
	int64_t w, step;
	int i;

	memset(&fc, 0, sizeof(fc));
	fc.rate = 0.004;
	fc.burst = 8;
	for (i = 0; i < 4; i++) {
		char name[16];

		snprintf(name, sizeof(name), "host%d", i);
		fc.instance = name;	/* copied by fleet_new */
		inst_new(&in[i], "sh", &fc, 0, false);
		/* a reservation: noted as a peer, nothing charged to the local share */
		ck_assert_int_eq(fleet_reserve(in[i].f, 1, 1000, &w, &step), STRIPE_GATE_GO);
	}
	ck_assert_int_eq(fleet_reserve(in[0].f, 1, 1000, &w, &step), STRIPE_GATE_GO);
	fleet_counters_get(in[0].f, &c);
	ck_assert_int_eq(c.peers, 4);
	ck_assert_int_eq(th_redis_pause(&R), 0);
	ck_assert_int_eq(admit(in[0].f, false, 5000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(w, 0);
	ck_assert_int_eq(admit(in[0].f, false, 5000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(admit(in[0].f, false, 5000, &w), STRIPE_GATE_NO_BUDGET);	/* 8 / 4 */
	th_redis_resume(&R);
	fleet_counters_get(in[0].f, &c);
	ck_assert_int_eq((int)c.redis_fallbacks, 3);
	for (i = 0; i < 4; i++)
		inst_free(&in[i]);
}
END_TEST

/* Slots this instance took in Redis count against its local share: when Redis then stalls,
 * the share is spent, not a fresh burst on top of what was just sent. */
START_TEST(stalled_redis_no_second_burst)
{
	struct fleet_config fc;
	struct inst a;
	int64_t w;

	memset(&fc, 0, sizeof(fc));
	fc.rate = 0.002;
	fc.burst = 4;
	inst_new(&a, "nb", &fc, 0, false);
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(th_redis_pause(&R), 0);
	ck_assert_int_eq(admit(a.f, false, 5000, &w), STRIPE_GATE_GO);	/* 2 of 4 used */
	ck_assert_int_eq(admit(a.f, false, 5000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(admit(a.f, false, 5000, &w), STRIPE_GATE_NO_BUDGET);
	th_redis_resume(&R);
	inst_free(&a);
}
END_TEST

/* A search never waits for a slot, but its Redis call has the attempt's time, not 0 ms: a
 * Redis that takes 30 ms to answer still decides it (before, a search's call had 1 ms and
 * any Redis slower than that made every search a local decision). */
START_TEST(search_admit_waits_for_redis)
{
	struct fleet_config fc;
	struct fleet_counters c;
	struct inst a;
	char out[64];
	int64_t w;

	memset(&fc, 0, sizeof(fc));
	fc.rate = 1000;
	fc.burst = 1000;
	fc.search_rate = 0.001;
	fc.search_burst = 1;
	inst_new(&a, "sw", &fc, 0, false);
	ck_assert_int_eq(admit(a.f, false, 1000, &w), STRIPE_GATE_GO);	/* pool warm */
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "CLIENT PAUSE 30"), 0);
	ck_assert_str_eq(out, "OK");
	ck_assert_int_eq(admit(a.f, true, 5000, &w), STRIPE_GATE_GO);
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "CLIENT PAUSE 30"), 0);
	ck_assert_int_eq(admit(a.f, true, 5000, &w), STRIPE_GATE_NO_BUDGET);	/* Redis's answer */
	fleet_counters_get(a.f, &c);
	ck_assert_int_eq((int)c.redis_fallbacks, 0);
	inst_free(&a);
}
END_TEST

static bool l1_has(struct cache *c, const char *key)
{
	struct cache_value v;
	int rc = cache_get_or_fill(c, key, NULL, NULL, sm_now_ms() + 1000, &v);
	bool l1 = rc == 0 && v.source == CACHE_SRC_L1;

	cache_value_free(&v);
	return l1;
}

static long rlong(const char *fmt, const char *arg)
{
	char out[64];
	long v = -1;

	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), fmt, arg), 0);
	sm_parse_long(out, -10, 1L << 40, &v);
	return v;
}

START_TEST(event_purges_index_and_every_l1)
{
	struct fleet_config fc;
	struct fleet_counters c;
	struct stripe_event ev;
	struct inst a, b;
	int64_t end;

	memset(&fc, 0, sizeof(fc));
	fc.entry_ttl_ms = 60000;
	inst_new(&a, "ev", &fc, 0, true);
	inst_new(&b, "ev", &fc, 0, true);
	/* a purge published before b listens would not reach it: wait until it does */
	end = sm_now_ms() + 10000;
	do {
		fleet_counters_get(b.f, &c);
	} while (!c.subscribed && sm_now_ms() < end && (nanosleep(&(struct timespec){ 0, 10000000 }, NULL), 1));
	ck_assert(c.subscribed);
	/* a's fill of the customer's entry (and an entry for an address named by the event) */
	ck_assert_int_eq(cache_put(a.c, "ev:v1:addr:jo@example.com", "J", 1, CACHE_POSITIVE), 0);
	ck_assert_int_eq(cache_put(a.c, "ev:v1:addr:old@example.com", "O", 1, CACHE_POSITIVE), 0);
	ck_assert_int_eq(cache_put(a.c, "ev:v1:addr:other@example.com", "X", 1, CACHE_POSITIVE), 0);
	fleet_index_note(a.f, "cus_J", "ev:v1:addr:jo@example.com");
	ck_assert_int_eq(rlong("ZCARD %s", "ev:fleet:cus:cus_J"), 1);
	ck_assert_int_gt(rlong("PTTL %s", "ev:fleet:cus:cus_J"), 50000);
	/* b reads them: now in b's L1 too */
	ck_assert(!l1_has(b.c, "ev:v1:addr:jo@example.com"));
	ck_assert(l1_has(b.c, "ev:v1:addr:jo@example.com"));
	ck_assert(!l1_has(b.c, "ev:v1:addr:old@example.com"));
	ck_assert(l1_has(b.c, "ev:v1:addr:old@example.com"));
	/* a subscription event names only the customer; a customer.updated the old address */
	memset(&ev, 0, sizeof(ev));
	strcpy(ev.id, "evt_1");
	strcpy(ev.type, "customer.updated");
	strcpy(ev.customer_id, "cus_J");
	ev.created = 1700000000;
	ev.nemails = 2;
	strcpy(ev.emails[0], "new@example.com");
	strcpy(ev.emails[1], "old@example.com");
	/* fills in flight hold these keys' locks: the purge takes the purged keys' locks (so
	 * those fills store nothing: cache.h), and leaves the others' (RPUSH makes a key and
	 * answers an integer; UNLINK and EXISTS do not care about its type) */
	ck_assert_int_eq(rlong("RPUSH %s t", "ev:v1:addr:jo@example.com" CACHE_LOCK_SUFFIX), 1);
	ck_assert_int_eq(rlong("RPUSH %s t", "ev:v1:addr:other@example.com" CACHE_LOCK_SUFFIX), 1);
	ck_assert_int_eq(fleet_event_apply(a.f, &ev, FLEET_SRC_WEBHOOK), FLEET_APPLIED);
	ck_assert_int_eq(rlong("EXISTS %s", "ev:v1:addr:jo@example.com"), 0);
	ck_assert_int_eq(rlong("EXISTS %s", "ev:v1:addr:old@example.com"), 0);
	ck_assert_int_eq(rlong("EXISTS %s", "ev:v1:addr:other@example.com"), 1);
	ck_assert_int_eq(rlong("EXISTS %s", "ev:v1:addr:jo@example.com" CACHE_LOCK_SUFFIX), 0);
	ck_assert_int_eq(rlong("EXISTS %s", "ev:v1:addr:other@example.com" CACHE_LOCK_SUFFIX), 1);
	ck_assert_int_eq(rlong("EXISTS %s", "ev:fleet:cus:cus_J"), 0);
	/* b's L1 is purged through pub/sub */
	end = sm_now_ms() + 10000;
	do {
		fleet_counters_get(b.f, &c);
	} while (c.purges_received == 0 && sm_now_ms() < end && (nanosleep(&(struct timespec){ 0, 10000000 }, NULL), 1));
	ck_assert_int_eq((int)c.purges_received, 1);
	ck_assert(!l1_has(b.c, "ev:v1:addr:jo@example.com"));
	ck_assert(!l1_has(b.c, "ev:v1:addr:old@example.com"));
	/* the same event again (a replay, or polled after the webhook): nothing is purged */
	ck_assert_int_eq(cache_put(a.c, "ev:v1:addr:jo@example.com", "J", 1, CACHE_POSITIVE), 0);
	ck_assert_int_eq(fleet_event_apply(b.f, &ev, FLEET_SRC_POLL), FLEET_DUPLICATE);
	ck_assert_int_eq(rlong("EXISTS %s", "ev:v1:addr:jo@example.com"), 1);
	/* types that say nothing about customers are ignored */
	strcpy(ev.id, "evt_2");
	strcpy(ev.type, "product.updated");
	ck_assert_int_eq(fleet_event_apply(a.f, &ev, FLEET_SRC_WEBHOOK), FLEET_IGNORED);
	fleet_counters_get(a.f, &c);
	ck_assert_int_eq((int)c.events_applied, 1);
	ck_assert_int_eq((int)c.keys_purged, 3);
	ck_assert_int_eq((int)c.events_ignored, 1);
	ck_assert_int_eq(c.last_event_created, 1700000000);
	inst_free(&a);
	inst_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fleet_redis");
	TCase *tc = tcase_create("redis");
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (th_redis_start(&R, 0, NULL) != 0)
		th_skip_all("redis-server not available");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, gcra_exact_burst_then_refusal);
	tcase_add_test(tc, search_needs_both_budgets);
	tcase_add_test(tc, lookup_reserves_all_or_nothing);
	tcase_add_test(tc, breaker_opens_probes_once_and_closes);
	tcase_add_test(tc, redis_unreachable_falls_back_locally);
	tcase_add_test(tc, redis_unreachable_keeps_the_budget);
	tcase_add_test(tc, search_admit_waits_for_redis);
	tcase_add_test(tc, event_purges_index_and_every_l1);
	suite_add_tcase(s, tc);
	tc = tcase_create("stalled");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, NULL, redis_running);
	tcase_add_test(tc, stalled_redis_share_per_peer);
	tcase_add_test(tc, stalled_redis_no_second_burst);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_redis_stop(&R);
	return rc;
}
