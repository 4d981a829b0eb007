/*
 * mf_coord.h - the daemon's glue to fleet/ (coordination of the instances; the published
 * statistics are mf_fleet.c's): builds the fleet of a config snapshot, hands the Stripe
 * client its gate and lookup/ its fill hook, starts the webhook listener.
 *
 * Interface:
 *	mf_coord_get(conf, lk, mode, account, prev, flags)	one account's fleet (budget,
 *		breaker, invalidation, polling; its Redis keys under account->fleet_prefix):
 *		prev again (one more reference) when every option it reads, the lookup
 *		service's cache (and so its Redis) and Stripe client and the webhook secrets
 *		are unchanged, else a new one (its threads started unless MF_RT_NO_PUBLISH).
 *		Reads the account's webhook secret files. NULL with err.
 *	mf_coord_put()			drops a reference (the last one frees: threads joined).
 *	mf_coord_fleet()		its struct fleet.
 *	mf_coord_install(c, n)		makes the fleets of a snapshot's n accounts the ones
 *		the gates and the fill hooks use, by account name (called when the snapshot
 *		becomes current); an account not among them gets none (its client's own bucket).
 *	mf_coord_gate(name)		the gate an account's Stripe client is built with: one
 *		per account name for the life of the process (its arg is also the fill hook's).
 *	mf_coord_on_fill()		lookup/'s fill hook: indexes a customer's cache entry.
 *	mf_coord_listen(conf) / mf_coord_stop()	the WebhookListen listener (once per process).
 *	mf_coord_metrics(buf, rt)	the fleets' figures for /metrics, one series per
 *		account (label account="<name>").
 *	Webhook deliveries go to the account whose fleet verifies them (fleet_webhook_match).
 */
#ifndef MF_COORD_H
#define MF_COORD_H

#include "common/sm_util.h"
#include "fleet/fleet.h"
#include "lookup/lookup.h"
#include "milter/mf_conf.h"
#include "redis/rds.h"

struct mf_coord;
struct mf_runtime;

#define MF_COORD_NAME_MAX 32

/* The account a fleet serves (strings are copied where kept). */
struct mf_coord_account {
	const char *name;		/* account name: gate, metrics */
	const char *key_part;		/* the cache key's account component (lk_key); NULL = "-" */
	const char *fleet_prefix;	/* its fleet's Redis keys: "<fleet_prefix>:fleet:..." */
	const char *connect;		/* acct_... for Connect, NULL = none */
	const char *secret_file;	/* webhook signing secret file, NULL = none */
	const char *previous_secret_file;
};

struct mf_coord *mf_coord_get(const struct mf_conf *c, struct lk *lk, const char *mode,
    const struct mf_coord_account *account, struct mf_coord *prev, unsigned flags, char *err, size_t errlen);
void mf_coord_put(struct mf_coord *c);
struct fleet *mf_coord_fleet(const struct mf_coord *c);
void mf_coord_install(struct mf_coord *const *c, int n);
/* NULL with err when the process has met MF_GATE_SLOTS (64) names. */
const struct stripe_gate *mf_coord_gate(const char *name, char *err, size_t errlen);
void mf_coord_on_fill(void *arg, const char *customer_id, const char *key);
int mf_coord_listen(const struct mf_conf *conf);
void mf_coord_metrics(struct sm_buf *b, const struct mf_runtime *rt);
void mf_coord_stop(void);

#endif
