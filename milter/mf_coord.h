/*
 * mf_coord.h - the daemon's glue to fleet/ (coordination of the instances; the published
 * statistics are mf_fleet.c's): builds the fleet of a config snapshot, hands the Stripe
 * client its gate and lookup/ its fill hook, starts the webhook listener.
 *
 * Interface:
 *	mf_coord_get(conf, lk, mode, account, prev, flags)	the snapshot's fleet: prev
 *		again (one more reference) when every option it reads, the lookup service's
 *		cache (and so its Redis) and Stripe client and the webhook secrets are unchanged,
 *		else a new one (its threads started unless MF_RT_NO_PUBLISH). Reads
 *		WebhookSecretFile / WebhookPreviousSecretFile. NULL with err.
 *	mf_coord_put()			drops a reference (the last one frees: threads joined).
 *	mf_coord_fleet()		its struct fleet.
 *	mf_coord_install(c)		makes c's fleet the one the gate and the fill hook use
 *		(called when its snapshot becomes current).
 *	mf_coord_gate()			the gate every Stripe client is built with.
 *	mf_coord_on_fill()		lookup/'s fill hook: indexes a customer's cache entry.
 *	mf_coord_listen(conf) / mf_coord_stop()	the WebhookListen listener (once per process).
 *	mf_coord_metrics(buf, fleet)	its figures for /metrics.
 */
#ifndef MF_COORD_H
#define MF_COORD_H

#include "common/sm_util.h"
#include "fleet/fleet.h"
#include "lookup/lookup.h"
#include "milter/mf_conf.h"
#include "redis/rds.h"

struct mf_coord;

struct mf_coord *mf_coord_get(const struct mf_conf *c, struct lk *lk, const char *mode,
    const char *account, struct mf_coord *prev, unsigned flags, char *err, size_t errlen);
void mf_coord_put(struct mf_coord *c);
struct fleet *mf_coord_fleet(const struct mf_coord *c);
void mf_coord_install(struct mf_coord *c);
const struct stripe_gate *mf_coord_gate(void);
void mf_coord_on_fill(void *arg, const char *customer_id, const char *key);
int mf_coord_listen(const struct mf_conf *conf);
void mf_coord_metrics(struct sm_buf *b, struct fleet *f);
void mf_coord_stop(void);

#endif
