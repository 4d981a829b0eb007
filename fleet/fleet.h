/*
 * fleet.h - what the instances sharing one Redis do together: one Stripe rate budget, one
 * circuit breaker, and cache invalidation driven by Stripe events (webhook or polling).
 *
 * This is the whole interface of fleet/. It knows the cache (its in-process L1), the
 * cache's Redis pool (redis/: one backoff for both) and Stripe's event structs, nothing
 * of milters.
 *
 * Interface:
 *	fleet_new(cfg, hooks) / fleet_free()	one per configuration; with no Redis configured
 *		everything runs per process (local budget, local breaker, L1-only purges).
 *	fleet_start(f)		starts the purge subscriber and, when polling is on, the
 *		events poller (the daemon; tools never call it).
 *	fleet_admit() / fleet_report() / fleet_reserve() / fleet_refund()	the Stripe
 *		client's gate (struct stripe_gate): GCRA budget in Redis (a lookup reserves the
 *		slots of its usual requests at once; searches also need a slot of their own
 *		budget), breaker state in Redis.
 *	fleet_index_note(f, customer, key)	remembers that a cache entry holds a customer
 *		("<prefix>:fleet:cus:<id>", a sorted set scored by the entry's expiry).
 *	fleet_event_apply(f, ev, src)	purges every entry holding the event's customer or
 *		naming its addresses, fleet-wide (Redis UNLINK + PUBLISH to every instance's L1),
 *		once per event id.
 *	fleet_webhook(f, sig_header, body, len, &why)	verifies and applies one delivery:
 *		200 or 400 (why says which check failed); never purges unless verified.
 *	fleet_counters_get(), fleet_emit()	figures for /metrics and published stats.
 *
 * Redis keys (all under "<prefix>:fleet:"): budget "gcra", "gcra:search", "peers" (sorted
 *	set: instances by their last budget call); "breaker" (hash);
 *	"cus:<customer id>" (index); "seen:<event id>" (dedupe, 1 day); "poller" (lease:
 *	"<instance> <token>"); "events:pos" (created second of the newest applied event);
 *	channel "purge" (newline-separated cache keys, or "*" for everything).
 *
 * Thread safety: every function may be called from any thread.
 *
 * Failure: Redis unreachable never blocks Stripe calls nor mail: the gate falls back to
 *	this instance's share of the fleet budget (rate / instances seen, fl_gate.c) and an
 *	in-process breaker; purges reach this process's L1 only (counted); the poller pauses
 *	(it cannot keep the fleet's position).
 */
#ifndef FLEET_H
#define FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "redis/rds.h"
#include "stripe/stripe.h"

#define FLEET_SECRETS 2

struct fleet_config {
	struct rds *redis;		/* the cache's pool (borrowed: outlives the fleet);
					 * NULL = no Redis: everything per process */
	const char *prefix;		/* the cache's prefix; NULL = "stripe-milter" */
	const char *instance;		/* name in stats and the poller lease; NULL = host:pid */
	const char *connect;		/* the connected account (acct_...) this fleet's Stripe
					 * account is, for Connect; NULL = none (fleet_webhook_match) */
	/* budget: requests per second for the whole fleet; 0 = no fleet budget */
	double rate;
	int burst;			/* 0 = rate */
	double search_rate;		/* search requests: this budget as well as the main one;
					 * 0 = the main budget only */
	int search_burst;
	/* breaker: 0 failures = off */
	int breaker_failures;		/* consecutive failed attempts that open it */
	int breaker_cooldown_ms;	/* how long it stays open before one probe */
	/* invalidation */
	int64_t entry_ttl_ms;		/* longest a cache entry lives (TTL + stale grace) */
	/* webhook */
	const char *secrets[FLEET_SECRETS];	/* whsec_... (current, previous); copied */
	int tolerance_s;		/* 0 = 300 */
	size_t max_body;		/* 0 = 1 MiB */
	/* polling: 0 = off */
	int poll_interval_ms;
	int64_t poll_start;		/* first position when Redis has none; 0 = now */
};

/* What the fleet asks of its host. */
struct fleet_hooks {
	struct cache *cache;		/* the address cache: its L1 is purged */
	/* Cache key of an address (the lookup's derivation). 0 or -1. */
	int (*key_for_email)(void *arg, const char *email, char *key, size_t len);
	/* One page of events (stripe_events_list with the current client). */
	enum stripe_errclass (*events_list)(void *arg, int64_t created_gt, const char *starting_after,
	    int64_t deadline_ms, struct stripe_event *out, int max, int *n, bool *has_more,
	    struct stripe_result *res);
	void *arg;
};

struct fleet;

struct fleet *fleet_new(const struct fleet_config *cfg, const struct fleet_hooks *hooks,
    char *err, size_t errlen);
int fleet_start(struct fleet *f);
void fleet_free(struct fleet *f);

enum stripe_gate_verdict fleet_admit(struct fleet *f, unsigned flags, int64_t deadline_ms, int64_t *wait_ms,
    unsigned *ticket);
/* n slots at once for a lookup (struct stripe_gate's reserve) and unused ones back. */
enum stripe_gate_verdict fleet_reserve(struct fleet *f, int n, int64_t max_wait_ms, int64_t *wait_ms,
    int64_t *step_ms);
void fleet_refund(struct fleet *f, int n);
void fleet_report(struct fleet *f, unsigned ticket, enum stripe_errclass err, long http_status);

void fleet_index_note(struct fleet *f, const char *customer_id, const char *key);

enum fleet_src { FLEET_SRC_WEBHOOK = 0, FLEET_SRC_POLL };
enum fleet_apply { FLEET_APPLIED = 0, FLEET_DUPLICATE, FLEET_IGNORED, FLEET_FAILED };
enum fleet_apply fleet_event_apply(struct fleet *f, const struct stripe_event *ev, enum fleet_src src);

/* Whether a delivery is this fleet's (several accounts may share one listener): 0 when
 * its signature does not verify with f's secrets within the tolerance (or f has none),
 * 2 when it does and f's connect account is the event's "account", 1 when it does and
 * f has no connect account. Counts nothing, logs nothing. */
int fleet_webhook_match(struct fleet *f, const char *sig_header, const char *body, size_t len);
/* HTTP status for one webhook delivery (200, 400); why gets a short reason. */
int fleet_webhook(struct fleet *f, const char *sig_header, const char *body, size_t len,
    bool too_large, char *why, size_t whylen);

/* Whether an event type purges (customer.*, invoice.*, charge.*): what a webhook delivery
 * and the poller (which lists every type) both apply. fleet_event_types: the names of
 * those groups in Stripe's API 2023-08-16 (NULL-terminated), the types a webhook endpoint
 * is subscribed to (README). */
extern const char *const fleet_event_types[];
bool fleet_event_relevant(const char *type);

enum fleet_breaker { FLEET_BREAKER_CLOSED = 0, FLEET_BREAKER_OPEN, FLEET_BREAKER_HALF_OPEN };
const char *fleet_breaker_name(enum fleet_breaker b);

enum fleet_reject { FLEET_REJ_SIGNATURE = 0, FLEET_REJ_STALE, FLEET_REJ_MALFORMED, FLEET_REJ_TOO_LARGE,
	FLEET_REJ_NO_SECRET, FLEET_REJ__COUNT };
const char *fleet_reject_name(enum fleet_reject r);

struct fleet_counters {
	uint64_t events_received[2];	/* by enum fleet_src */
	uint64_t events_rejected[FLEET_REJ__COUNT];
	uint64_t events_applied, events_duplicate, events_ignored, events_failed;
	uint64_t keys_purged;		/* cache keys deleted in Redis by this instance */
	uint64_t purges_received;	/* purge messages applied to L1 */
	bool subscribed;		/* the purge subscriber listens now */
	int64_t last_event_created;	/* Unix seconds of the newest event applied here, 0 none */
	uint64_t polls, poll_errors;
	bool poller_owner;		/* this instance holds the poller lease */
	char poller[128];		/* the lease holder's instance name, "" none/unknown */
	uint64_t budget_granted, budget_denied, budget_local;	/* admits by outcome */
	uint64_t budget_wait_ms;	/* total delay the budget imposed */
	uint64_t budget_refunded;	/* reserved slots a lookup did not use, handed back */
	enum fleet_breaker breaker;	/* as last seen by this instance */
	uint64_t breaker_opened;	/* transitions to open seen by this instance */
	uint64_t breaker_rejected;	/* attempts refused while open */
	uint64_t breaker_probes;
	uint64_t redis_fallbacks;	/* gate decisions made locally: Redis failed */
	int peers;			/* instances sharing the budget, as Redis last said:
					 * the local share while it fails is 1/peers */
};
void fleet_counters_get(struct fleet *f, struct fleet_counters *out);
/* Emits every counter as "fleet_<name>" fields (published stats hashes). */
void fleet_emit(struct fleet *f, void (*emit)(void *ctx, const char *name, uint64_t v), void *ctx);

#endif
