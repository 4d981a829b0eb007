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
 * Listener: common/sm_httpd (one epoll thread; per-client connection limit, whole-request
 *	deadline, a Content-Length over max_body answered 413 before the body is read, a
 *	body without Content-Length 411; see sm_httpd.c for why), POST only (any path). The
 *	body is collected up to max_body (a body can only be larger when its Content-Length
 *	lied: it is then rejected as too_large). Rejections are logged through the listener's
 *	throttle: the first of each reason per interval in full, then one summary line with
 *	the counts. It is plain HTTP: put it behind the TLS proxy that receives Stripe's
 *	HTTPS deliveries (conf/nginx-stripe-webhook.conf).
 */
#include "config.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_httpd.h"
#include "common/sm_log.h"
#include "common/sm_util.h"
#include "fleet/fl_int.h"
#include "fleet/fl_sig.h"
#include "fleet/fl_webhook.h"

static struct {
	struct sm_httpd *h;
	size_t max_body;
	fleet_webhook_fn fn;
	void *arg;
} fl_httpd;

/* fl_httpd.h changes under fl_httpd_mu (start, stop) while the statistics threads read its
 * counters; the listener itself is freed only after its thread (the one calling fl_reject)
 * has stopped. */
static pthread_mutex_t fl_httpd_mu = PTHREAD_MUTEX_INITIALIZER;

static struct sm_httpd *fl_httpd_get(void)
{
	struct sm_httpd *h;

	pthread_mutex_lock(&fl_httpd_mu);
	h = fl_httpd.h;
	pthread_mutex_unlock(&fl_httpd_mu);
	return h;
}

static void fl_reject(struct fleet *f, enum fleet_reject r, const char *what, char *why, size_t whylen)
{
	pthread_mutex_lock(&f->mu);
	f->ctr.events_rejected[r]++;
	pthread_mutex_unlock(&f->mu);
	snprintf(why, whylen, "%s", fleet_reject_name(r));
	/* throttled: an attacker's rejections cost a counter, not a log line each */
	sm_httpd_log(fl_httpd_get(), fleet_reject_name(r), LOG_WARNING, "fleet: webhook delivery rejected (%s)%s%s",
	    fleet_reject_name(r), what ? ": " : "", what ? what : "");
}

int fleet_webhook_match(struct fleet *f, const char *sig_header, const char *body, size_t len)
{
	const char *secrets[FLEET_SECRETS];
	struct stripe_event ev;
	char msg[160];
	int i;

	if (len > f->cfg.max_body)
		return 0;
	for (i = 0; i < FLEET_SECRETS; i++)
		secrets[i] = f->secrets[i];
	if (fl_sig_verify(sig_header, body, len, secrets, FLEET_SECRETS, sm_wall_ms() / 1000,
	    f->cfg.tolerance_s, NULL) != FL_SIG_OK)
		return 0;
	if (f->connect[0] == '\0')
		return 1;
	/* a Connect endpoint signs every connected account's events with one secret */
	if (stripe_event_parse(body, len, &ev, msg, sizeof(msg)) != 0 || strcmp(ev.account, f->connect) != 0)
		return 0;
	return 2;
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

int fleet_webhook_listen(const struct sm_httpd_conf *limits, fleet_webhook_fn fn, void *arg)
{
	struct sm_httpd_conf c = *limits;
	struct sm_httpd *h;

	fl_httpd.max_body = c.max_body ? (size_t)c.max_body : 1u << 20;
	fl_httpd.fn = fn;
	fl_httpd.arg = arg;
	c.name = "webhook";
	c.max_body = fl_httpd.max_body;
	c.handler = fl_http;
	c.handler_cls = NULL;
	c.completed = fl_done;
	if ((h = sm_httpd_start(&c)) == NULL)
		return -1;
	pthread_mutex_lock(&fl_httpd_mu);
	fl_httpd.h = h;
	pthread_mutex_unlock(&fl_httpd_mu);
	sm_log(LOG_INFO, "Stripe webhooks on http://%s/ (POST)", c.addr);
	return 0;
}

int fleet_webhook_counters(struct sm_httpd_counters *out)
{
	int rc = -1;

	pthread_mutex_lock(&fl_httpd_mu);
	if (fl_httpd.h) {
		sm_httpd_counters(fl_httpd.h, out);
		rc = 0;
	}
	pthread_mutex_unlock(&fl_httpd_mu);
	return rc;
}

void fleet_webhook_stop(void)
{
	struct sm_httpd *h;

	pthread_mutex_lock(&fl_httpd_mu);
	h = fl_httpd.h;
	fl_httpd.h = NULL;
	pthread_mutex_unlock(&fl_httpd_mu);
	sm_httpd_stop(h);	/* waits for the request in progress; then frees it */
}
