/*
 * fl_webhook.h - the webhook HTTP listener (one per process, started once like the
 * metrics listener; a reload does not move it).
 *
 * Interface:
 *	fleet_webhook_listen(addr, max_body, fn, arg)	"127.0.0.1:9898"; fn is called once
 *		per POST with the Stripe-Signature header (NULL when absent), the body (at most
 *		max_body bytes kept; too_large when more came) and returns the HTTP status,
 *		writing a one-word reason (the response body) into why. -1 (logged) when the
 *		address is bad or busy.
 *	fleet_webhook_stop()	stops it (waits for requests in progress).
 */
#ifndef FL_WEBHOOK_H
#define FL_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

typedef int (*fleet_webhook_fn)(void *arg, const char *sig_header, const char *body, size_t len,
    bool too_large, char *why, size_t whylen);

int fleet_webhook_listen(const char *addr, size_t max_body, fleet_webhook_fn fn, void *arg);
void fleet_webhook_stop(void);

#endif
