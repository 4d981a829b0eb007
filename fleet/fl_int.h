/*
 * fl_int.h - internals shared by the files of fleet/; not part of the interface.
 *
 *	fl_core.c	fleet_new/free/start, counters, the Redis seam (fl_cmd).
 *	fl_gate.c	budget (GCRA) and breaker, in Redis with an in-process fallback.
 *	fl_inval.c	the customer index, event application, the purge subscriber.
 *	fl_poll.c	the events poller (one per fleet, elected by a lease in Redis).
 *	fl_webhook.c	one webhook delivery: signature, event, apply.
 *	fl_sig.c	Stripe-Signature (fl_sig.h).
 */
#ifndef FL_INT_H
#define FL_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "fleet/fleet.h"

#define FL_KEY_MAX	400
#define FL_CTR_ADD(f, field, n) __atomic_fetch_add(&(f)->ctr.field, (uint64_t)(n), __ATOMIC_RELAXED)
#define FL_CTR_INC(f, field) FL_CTR_ADD(f, field, 1)
#define FL_CTR_GET(f, field) __atomic_load_n(&(f)->ctr.field, __ATOMIC_RELAXED)

/* The in-process breaker, used when Redis fails. */
struct fl_local_breaker {
	pthread_mutex_t mu;
	int failures;
	int64_t open_until;		/* sm_now_ms(); 0 = closed */
	bool probe_out;
};

/* The in-process budget used when Redis fails: this instance's share of the fleet's
 * budgets (rate / peers), GCRA like the Redis one; every slot this instance takes in Redis
 * is charged here too (never past "empty"), so a fallback never adds a burst to what the
 * instance has just sent. Times in sm_now_ms() microseconds. */
struct fl_local_budget {
	pthread_mutex_t mu;
	int64_t tat_us, search_tat_us;
};

struct fleet {
	struct fleet_config cfg;
	char prefix[80];
	char connect[STRIPE_ID_MAX];	/* cfg.connect, "" = none */
	char instance[128];
	char token[40];			/* random: tells this object's lease from a sibling's */
	char *secrets[FLEET_SECRETS];
	struct fleet_hooks hooks;
	struct rds *rds;		/* borrowed (cfg.redis); NULL when no Redis is configured */
	struct fleet_counters ctr;	/* FL_CTR_* for the uint64 fields; mu for the rest */
	pthread_mutex_t mu;
	struct fl_local_breaker lb;
	struct fl_local_budget lbud;
	int peers;			/* instances that used the budget in FL_PEERS_WINDOW_S,
					 * as Redis last said (atomic; 1 until it has) */
	int remote_failures;		/* last consecutive-failure count Redis told us */
	bool stop;
	pthread_cond_t stop_cv;
	bool sub_running, poll_running;
	pthread_t sub_thread, poll_thread;
	redisContext *sub_ctx;		/* owned by the subscriber thread */
};

/* fl_core.c: Redis through the cache's pool; NULL when none is configured or it failed. */
redisReply *fl_cmd(struct fleet *f, int64_t deadline_ms, const char *fmt, ...);
redisReply *fl_argv(struct fleet *f, int64_t deadline_ms, int argc, const char **argv, const size_t *lens);
bool fl_redis(const struct fleet *f);
/* Sleeps until ms passed or the fleet stops; true when it stops. */
bool fl_wait_stop(struct fleet *f, int64_t ms);
void fl_set_breaker(struct fleet *f, enum fleet_breaker b);

/* fl_inval.c */
void *fl_sub_main(void *arg);
/* fl_poll.c */
void *fl_poll_main(void *arg);

#define FL_REDIS_MS 200		/* deadline of one fleet Redis command */
#define FL_PEERS_WINDOW_S 600	/* an instance counts as a peer this long after its last
				 * budget call ("<prefix>:fleet:peers") */

#endif
