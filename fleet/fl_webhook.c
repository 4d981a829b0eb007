/*
 * fl_webhook.c - one webhook delivery: size, signature, timestamp, event, apply; and the
 * HTTP listener that receives them (WebhookListen). See fleet.h.
 *
 * Order of checks: body over the cap (too_large) -> no secret configured -> Stripe-Signature
 *	(malformed header, timestamp outside the tolerance = stale, no v1 matching = signature)
 *	-> the body is an event (malformed). Any failure is 400 with a one-word reason, counted
 *	by reason, and applies nothing. A verified event answers 200 after it was applied
 *	(or found already applied: a replay within the tolerance purges nothing again).
 *
 * Listener: libmicrohttpd with its own thread, POST only (any path), at most 32
 *	connections, 10 s connection timeout; the body is collected up to max_body and the
 *	rest discarded (the delivery is then rejected as too_large). It is plain HTTP: put it
 *	behind the TLS proxy that receives Stripe's HTTPS deliveries.
 */
#include "config.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "fleet/fl_int.h"
#include "fleet/fl_sig.h"
#include "fleet/fl_webhook.h"

static void fl_reject(struct fleet *f, enum fleet_reject r, const char *what, char *why, size_t whylen)
{
	pthread_mutex_lock(&f->mu);
	f->ctr.events_rejected[r]++;
	pthread_mutex_unlock(&f->mu);
	snprintf(why, whylen, "%s", fleet_reject_name(r));
	sm_log(LOG_WARNING, "fleet: webhook delivery rejected (%s)%s%s", fleet_reject_name(r),
	    what ? ": " : "", what ? what : "");
}

int fleet_webhook(struct fleet *f, const char *sig_header, const char *body, size_t len,
    bool too_large, char *why, size_t whylen)
{
	const char *secrets[FLEET_SECRETS];
	struct stripe_event ev;
	enum fl_sig_rc sr;
	char msg[160];
	int i;

	if (too_large || len > f->cfg.max_body) {
		fl_reject(f, FLEET_REJ_TOO_LARGE, NULL, why, whylen);
		return 400;
	}
	for (i = 0; i < FLEET_SECRETS; i++)
		secrets[i] = f->secrets[i];
	sr = fl_sig_verify(sig_header, body, len, secrets, FLEET_SECRETS, sm_wall_ms() / 1000,
	    f->cfg.tolerance_s, NULL);
	switch (sr) {
	case FL_SIG_OK:
		break;
	case FL_SIG_NO_SECRET:
		fl_reject(f, FLEET_REJ_NO_SECRET, "no WebhookSecretFile configured", why, whylen);
		return 400;
	case FL_SIG_STALE:
		fl_reject(f, FLEET_REJ_STALE, "timestamp outside the tolerance", why, whylen);
		return 400;
	case FL_SIG_MALFORMED:
		fl_reject(f, FLEET_REJ_MALFORMED, "no usable Stripe-Signature header", why, whylen);
		return 400;
	default:
		fl_reject(f, FLEET_REJ_SIGNATURE, "no v1 signature matches", why, whylen);
		return 400;
	}
	if (stripe_event_parse(body, len, &ev, msg, sizeof(msg)) != 0) {
		fl_reject(f, FLEET_REJ_MALFORMED, msg, why, whylen);
		return 400;
	}
	switch (fleet_event_apply(f, &ev, FLEET_SRC_WEBHOOK)) {
	case FLEET_DUPLICATE: snprintf(why, whylen, "duplicate"); break;
	case FLEET_IGNORED: snprintf(why, whylen, "ignored"); break;
	case FLEET_FAILED: snprintf(why, whylen, "applied locally"); break;
	default: snprintf(why, whylen, "applied"); break;
	}
	return 200;
}

/* ---- listener ----------------------------------------------------------------------- */

static struct {
	struct MHD_Daemon *d;
	size_t max_body;
	fleet_webhook_fn fn;
	void *arg;
} fl_httpd;

struct fl_req {
	struct sm_buf body;
	bool too_large;
};

static enum MHD_Result fl_answer(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain");
	rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result fl_http(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *data, size_t *size, void **state)
{
	struct fl_req *q = *state;
	char why[64], text[96];
	int status;

	(void)cls; (void)url; (void)version;
	if (strcmp(method, "POST") != 0)
		return fl_answer(conn, 405, "POST only\n");
	if (q == NULL) {
		q = calloc(1, sizeof(*q));
		if (q == NULL)
			return MHD_NO;
		sm_buf_init(&q->body, fl_httpd.max_body + 1);
		*state = q;
		return MHD_YES;
	}
	if (*size > 0) {
		if (!q->too_large && sm_buf_append(&q->body, data, *size) != 0)
			q->too_large = true;
		*size = 0;
		return MHD_YES;
	}
	status = fl_httpd.fn(fl_httpd.arg,
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Stripe-Signature"),
	    q->body.data ? q->body.data : "", q->body.len, q->too_large, why, sizeof(why));
	snprintf(text, sizeof(text), "%s\n", why);
	return fl_answer(conn, (unsigned)status, text);
}

static void fl_done(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode tc)
{
	struct fl_req *q = *state;

	(void)cls; (void)conn; (void)tc;
	if (q) {
		sm_buf_free(&q->body);
		free(q);
	}
	*state = NULL;
}

int fleet_webhook_listen(const char *addr, size_t max_body, fleet_webhook_fn fn, void *arg)
{
	struct sockaddr_in sa;
	char why[64];

	if (sm_parse_inet4(addr, &sa, why, sizeof(why)) != 0) {
		sm_log(LOG_ERR, "WebhookListen '%s': %s, e.g. 127.0.0.1:9898", addr, why);
		return -1;
	}
	fl_httpd.max_body = max_body ? max_body : 1u << 20;
	fl_httpd.fn = fn;
	fl_httpd.arg = arg;
	fl_httpd.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
	    ntohs(sa.sin_port), NULL, NULL, fl_http, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)32,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	    MHD_OPTION_NOTIFY_COMPLETED, fl_done, NULL,
	    MHD_OPTION_END);
	if (fl_httpd.d == NULL) {
		sm_log(LOG_ERR, "WebhookListen %s: cannot listen (address in use?)", addr);
		return -1;
	}
	sm_log(LOG_INFO, "Stripe webhooks on http://%s/ (POST)", addr);
	return 0;
}

void fleet_webhook_stop(void)
{
	if (fl_httpd.d)
		MHD_stop_daemon(fl_httpd.d);
	fl_httpd.d = NULL;
}
