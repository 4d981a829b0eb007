/*
 * fl_webhook.h - the webhook HTTP listener (one per process, started once like the
 * metrics listener; a reload does not move it).
 *
 * Interface:
 *	fleet_webhook_listen(limits, fn, arg)	limits->addr "127.0.0.1:9898", the pool, the
 *		per-client limit, the deadline, max_body and the log interval (common/sm_httpd.h;
 *		name and handler are set here). fn is called once per POST with the
 *		Stripe-Signature header (NULL when absent), the body (at most max_body bytes
 *		kept; too_large when more came) and returns the HTTP status, writing a one-word
 *		reason (the response body) into why. -1 (logged) when the address is bad or busy.
 *	fleet_webhook_counters(out)	the listener's counters (common/sm_httpd.h); -1 when none
 *		runs. Safe from any thread, also while the listener stops.
 *	fleet_webhook_stop()	stops it (waits for requests in progress).
 */
#ifndef FL_WEBHOOK_H
#define FL_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "common/sm_httpd.h"

typedef int (*fleet_webhook_fn)(void *arg, const char *sig_header, const char *body, size_t len,
    bool too_large, char *why, size_t whylen);

int fleet_webhook_listen(const struct sm_httpd_conf *limits, fleet_webhook_fn fn, void *arg);
int fleet_webhook_counters(struct sm_httpd_counters *out);
void fleet_webhook_stop(void);

#endif
