/*
 * stripe_http.c - one logical GET to Stripe: token bucket, concurrency cap, curl handle
 * pool, retries with backoff, error classification, all within a deadline.
 *
 * Interface (stripe_int.h): stripe_http_get(c, "/v1/customers?email=...", deadline, &call).
 *
 * Rules: a request first asks the gate when there is one (struct stripe_gate: a fleet
 *	budget that may delay it or refuse it rate-limited, a breaker that refuses it
 *	unavailable) and every attempt that reached Stripe is reported to it; without a gate,
 *	or when the gate cannot decide, it takes a local token (waiting for one only while
 *	the deadline allows; else STRIPE_E_RATELIMIT), then a slot (at most max_concurrent in flight; else
 *	STRIPE_E_TIMEOUT), then an easy handle from the pool. CURLOPT_TIMEOUT_MS is the time
 *	left, so no attempt outlives the deadline; an attempt that may still be retried gets
 *	at most half of the time left, so that a stalled first attempt leaves room for a
 *	retry (stripe_http_attempt_ms()). Retries follow Stripe's clients: at most
 *	max_retries; Stripe-Should-Retry is consulted first (false forbids a retry, true
 *	asks for one, even for a 429); else 409, 429 with code lock_timeout, 5xx and
 *	connection errors are retried; other 429s only with retry_rate_limited; backoff
 *	min(base * 2^(n-1), max) with jitter in [50%, 100%], skipped (no retry) when it would
 *	cross the deadline. Bodies over max_response_bytes are STRIPE_E_MALFORMED.
 *	Search requests have their own token bucket (stripe_search_take(), never waits):
 *	Stripe allows fewer search than list requests. Nor does a search wait at the fleet's
 *	gate: it is admitted only when both budgets have a slot now.
 *
 * Diagnostics: call->message is one sanitised line (Stripe's message without anything
 *	that looks like a key); call->request_id is Stripe's Request-Id. A 4xx other than
 *	401, 403 and 429 (STRIPE_E_REQUEST: Stripe refused a request this client built, a
 *	defect to report) is counted in stats.rejected by endpoint template and status and
 *	logged once per distinct endpoint, status and message, with the Request-Id to quote
 *	to Stripe (at most STRIPE_REJECTED_LOGGED distinct ones per client; the counters
 *	go on).
 *
 * Known limits: no redirects are followed; only GET.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/sm_log.h"
#include "stripe/stripe_int.h"

struct stripe_attempt {
	struct stripe_call *call;
	size_t cap;
	int should_retry;	/* -1 absent, 0 false, 1 true */
	bool too_large;
};

void stripe_call_init(struct stripe_call *call)
{
	memset(call, 0, sizeof(*call));
	sm_buf_init(&call->body, 0);
}

void stripe_call_free(struct stripe_call *call)
{
	sm_buf_free(&call->body);
}

int stripe_url_encode(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			if (o + 1 >= len)
				return -1;
			out[o++] = (char)ch;
		} else {
			if (o + 3 >= len)
				return -1;
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	if (o >= len)
		return -1;
	out[o] = '\0';
	return 0;
}

int stripe_search_escape(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s; s++) {
		if (*s == '\'' || *s == '\\') {
			if (o + 1 >= len)
				return -1;
			out[o++] = '\\';
		}
		if (o + 1 >= len)
			return -1;
		out[o++] = *s;
	}
	if (o >= len)
		return -1;
	out[o] = '\0';
	return 0;
}

int stripe_search_take(struct stripe_client *c)
{
	int64_t now = sm_now_ms();
	int rc = -1;

	pthread_mutex_lock(&c->lock);
	c->search_tokens += (double)(now - c->search_bucket_ms) * c->search_rate / 1000.0;
	if (c->search_tokens > c->search_rate)
		c->search_tokens = c->search_rate < 1.0 ? 1.0 : c->search_rate;
	c->search_bucket_ms = now;
	if (c->search_tokens >= 1.0) {
		c->search_tokens -= 1.0;
		c->stats.searches++;
		rc = 0;
	} else {
		c->stats.search_skipped++;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void stripe_sanitise_message(const char *in, char *out, size_t len)
{
	size_t o = 0, i = 0;

	while (in[i] && o + 1 < len) {
		/* A word starting like a key (sk_/rk_/pk_ + live/test) is masked. */
		if ((i == 0 || !isalnum((unsigned char)in[i - 1])) &&
		    (strncmp(in + i + 1, "k_live_", 7) == 0 || strncmp(in + i + 1, "k_test_", 7) == 0) &&
		    (in[i] == 's' || in[i] == 'r' || in[i] == 'p')) {
			size_t n = snprintf(out + o, len - o, "%.8s***", in + i);

			o = o + n < len ? o + n : len - 1;
			i += 8;
			while (isalnum((unsigned char)in[i]) || in[i] == '_' || in[i] == '*' || in[i] == '.')
				i++;
			continue;
		}
		out[o++] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? ' ' : in[i];
		i++;
	}
	out[o] = '\0';
}

enum stripe_errclass stripe_http_class(long status)
{
	if (status >= 200 && status < 300)
		return STRIPE_OK;
	if (status == 401)
		return STRIPE_E_AUTH;
	if (status == 403)
		return STRIPE_E_PERMISSION;
	if (status == 429)
		return STRIPE_E_RATELIMIT;
	if (status == 409 || status >= 500)
		return STRIPE_E_SERVER;
	return STRIPE_E_REQUEST;
}

bool stripe_http_retryable(enum stripe_errclass err, long status, const char *code,
    int should_retry, bool retry_rate_limited)
{
	if (err == STRIPE_OK || err == STRIPE_E_MALFORMED || err == STRIPE_E_TIMEOUT ||
	    err == STRIPE_E_INTERNAL)
		return false;
	/* Stripe's own word first, as every official client does. */
	if (should_retry == 0)
		return false;
	if (should_retry == 1)
		return true;
	if (err == STRIPE_E_RATELIMIT)	/* a lock timeout is worth a retry (stripe-go) */
		return retry_rate_limited || (code != NULL && strcmp(code, "lock_timeout") == 0);
	return err == STRIPE_E_NETWORK || err == STRIPE_E_SERVER || status == 409;
}

int64_t stripe_http_attempt_ms(int64_t left_ms, int attempt, int max_retries)
{
	if (left_ms <= 0)
		return 0;
	if (attempt >= max_retries)
		return left_ms;
	return left_ms / 2 > 0 ? left_ms / 2 : 1;
}

int64_t stripe_http_backoff_ms(int n, int64_t base_ms, int64_t max_ms, double rnd)
{
	int64_t d = base_ms;

	while (--n > 0 && d < max_ms)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	return (int64_t)((double)d * (0.5 + 0.5 * rnd));
}

static double stripe_random(struct stripe_client *c)
{
	uint64_t z = __atomic_add_fetch(&c->rng, 0x9E3779B97F4A7C15ULL, __ATOMIC_RELAXED);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return (double)(z >> 11) / (double)(1ULL << 53);
}

static void stripe_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Takes one token, waiting for it while the deadline allows. 0 or -1. */
static int stripe_bucket_take(struct stripe_client *c, int64_t deadline_ms)
{
	int64_t now = sm_now_ms(), wait;

	pthread_mutex_lock(&c->lock);
	c->tokens += (double)(now - c->bucket_ms) * c->rate / 1000.0;
	if (c->tokens > c->burst)
		c->tokens = c->burst;
	c->bucket_ms = now;
	/* Reserve a token; a negative balance is the queue of reservations. */
	wait = c->tokens >= 1.0 ? 0 : (int64_t)((1.0 - c->tokens) * 1000.0 / c->rate + 0.999);
	if (now + wait >= deadline_ms && wait > 0) {
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	c->tokens -= 1.0;
	pthread_mutex_unlock(&c->lock);
	stripe_sleep_ms(wait);
	return 0;
}

/* The gate (fleet budget, circuit breaker), else the local bucket. 0 when the attempt may
 * go; -1 with call->err set when it may not. */
__thread struct stripe_credit *stripe_tl_credit;

int stripe_credit_begin(struct stripe_client *c, struct stripe_credit *cr, int n, int64_t deadline_ms,
    struct stripe_result *res)
{
	int64_t wait = 0, step = 0;
	enum stripe_gate_verdict v;

	memset(cr, 0, sizeof(*cr));
	pthread_mutex_init(&cr->mu, NULL);
	if (c->gate.reserve == NULL || n <= 0)
		return 0;
	/* the last slot must leave the requests time to be answered: a quarter of the time
	 * left (a lookup that starts but cannot finish wastes what it sent) */
	v = c->gate.reserve(c->gate.arg, n, sm_ms_left(deadline_ms) * 3 / 4, &wait, &step);
	if (v == STRIPE_GATE_NO_BUDGET) {
		res->err = STRIPE_E_RATELIMIT;
		snprintf(res->message, sizeof(res->message),
		    "fleet rate budget: no room for a lookup before the deadline");
		return -1;
	}
	if (v == STRIPE_GATE_GO) {
		cr->left = n;
		cr->next_ms = sm_now_ms() + wait;
		cr->step_ms = step;
	}
	return 0;
}

void stripe_credit_end(struct stripe_client *c, struct stripe_credit *cr)
{
	if (cr->left > 0 && c->gate.refund)
		c->gate.refund(c->gate.arg, cr->left);
	pthread_mutex_destroy(&cr->mu);
}

/* Takes the next reserved slot: true with *at its time, false when none is left. */
static bool stripe_credit_take(struct stripe_credit *cr, int64_t *at)
{
	bool ok = false;

	if (cr == NULL)
		return false;
	pthread_mutex_lock(&cr->mu);
	if (cr->left > 0) {
		cr->left--;
		*at = cr->next_ms;
		cr->next_ms += cr->step_ms;
		ok = true;
	}
	pthread_mutex_unlock(&cr->mu);
	return ok;
}

static int stripe_gate_admit(struct stripe_client *c, const char *url, int64_t deadline_ms,
    struct stripe_call *call, unsigned *ticket)
{
	enum stripe_gate_verdict v = STRIPE_GATE_LOCAL;
	unsigned flags = strstr(url, "/search") != NULL ? STRIPE_GATE_SEARCH : 0;
	int64_t wait = 0, at;

	*ticket = 0;
	/* a slot its lookup reserved: wait for its time; the gate checks the breaker only */
	if (!(flags & STRIPE_GATE_SEARCH) && stripe_credit_take(stripe_tl_credit, &at)) {
		flags |= STRIPE_GATE_PREPAID;
		if (at > sm_now_ms())
			stripe_sleep_ms(at - sm_now_ms());
	}
	/* a search never waits for a slot (the gate knows it by the flag) */
	if (c->gate.admit)
		v = c->gate.admit(c->gate.arg, flags, deadline_ms, &wait, ticket);
	if (v == STRIPE_GATE_LOCAL && (flags & STRIPE_GATE_PREPAID))
		return 0;	/* the fleet budget already paid for it */
	switch (v) {
	case STRIPE_GATE_GO:
		stripe_sleep_ms(wait);
		return 0;
	case STRIPE_GATE_OPEN:
		call->err = STRIPE_E_UNAVAILABLE;
		snprintf(call->message, sizeof(call->message), "circuit breaker open: Stripe not asked");
		return -1;
	case STRIPE_GATE_NO_BUDGET:
		call->err = STRIPE_E_RATELIMIT;
		snprintf(call->message, sizeof(call->message), "fleet rate budget: no slot before the deadline");
		return -1;
	case STRIPE_GATE_LOCAL:
		break;
	}
	if (stripe_bucket_take(c, deadline_ms) != 0) {
		call->err = STRIPE_E_RATELIMIT;
		snprintf(call->message, sizeof(call->message), "local rate limit: no token before the deadline");
		return -1;
	}
	return 0;
}

/* Waits for an in-flight slot until the deadline. 0 or -1. */
static int stripe_slot_take(struct stripe_client *c, int64_t deadline_ms)
{
	struct timespec ts;
	int64_t wall;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + sm_ms_left(deadline_ms);
	ts.tv_sec = (time_t)(wall / 1000);
	ts.tv_nsec = (long)(wall % 1000) * 1000000L;
	pthread_mutex_lock(&c->lock);
	while (c->inflight >= c->max_concurrent && rc == 0)
		if (pthread_cond_timedwait(&c->slot_cond, &c->lock, &ts) == ETIMEDOUT)
			rc = -1;
	if (c->inflight < c->max_concurrent) {
		c->inflight++;
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static CURL *stripe_handle_get(struct stripe_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->nidle > 0)
		h = c->idle[--c->nidle];
	pthread_mutex_unlock(&c->lock);
	return h ? h : curl_easy_init();
}

/* Returns the handle to the pool (keeping its connection) and frees the slot. */
static void stripe_handle_put(struct stripe_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (h && c->nidle < STRIPE_POOL_MAX && c->nidle < c->max_concurrent) {
		c->idle[c->nidle++] = h;
		h = NULL;
	}
	c->inflight--;
	pthread_cond_signal(&c->slot_cond);
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

static size_t stripe_on_body(char *data, size_t size, size_t n, void *arg)
{
	struct stripe_attempt *a = arg;

	if (a->call->body.len + size * n > a->cap) {
		a->too_large = true;
		return 0;
	}
	return sm_buf_append(&a->call->body, data, size * n) == 0 ? size * n : 0;
}

/* Header value if line is "name: value", trimmed into out. */
static bool stripe_header_is(const char *line, size_t n, const char *name, char *out, size_t len)
{
	size_t k = strlen(name), v;

	if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return false;
	for (v = k + 1; v < n && (line[v] == ' ' || line[v] == '\t'); v++)
		;
	while (n > v && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	stripe_copy_text(out, len, line + v, n - v);
	return true;
}

static size_t stripe_on_header(char *data, size_t size, size_t n, void *arg)
{
	struct stripe_attempt *a = arg;
	char val[16];

	if (stripe_header_is(data, size * n, "Request-Id", a->call->request_id,
	    sizeof(a->call->request_id)))
		return size * n;
	if (stripe_header_is(data, size * n, "Stripe-Should-Retry", val, sizeof(val)))
		a->should_retry = strcasecmp(val, "true") == 0 ? 1 : strcasecmp(val, "false") == 0 ? 0 : -1;
	return size * n;
}

/* The request-target of url: its path and query ("/v1/..."), after scheme and authority. */
static const char *stripe_url_target(const char *url)
{
	const char *p = strstr(url, "://");

	p = p ? strchr(p + 3, '/') : NULL;
	return p ? p : "/";
}

/*
 * Sets the handle up for one attempt. 0, or -1 when curl could not take the URL or its
 * request-target (out of memory): the request must not be sent then.
 *
 * The request-target is set explicitly (CURLOPT_REQUEST_TARGET, a copy curl sends as is):
 * libcurl 7.88.1 sends a request WITHOUT its query string and reports success when an
 * allocation inside its URL handling fails (seen in test_alloc_fail: a bare
 * "GET /v1/invoices", which Stripe answers with the whole account's invoices, and
 * reproduced outside the project with curl_global_init_mem failing its 29th allocation).
 * Every other option here either copies nothing or only tunes the transfer.
 */
static int stripe_handle_setup(struct stripe_client *c, CURL *h, const char *url,
    struct stripe_attempt *a, int64_t left)
{
	curl_easy_reset(h);
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_REQUEST_TARGET, stripe_url_target(url)) != CURLE_OK)
		return -1;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->allow_http ? "http,https" : "https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(c->allow_http ? CURLPROTO_HTTP | CURLPROTO_HTTPS :
	    CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(left > 0 ? left : 1));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(left < c->connect_timeout_ms ? (left > 0 ? left : 1) : c->connect_timeout_ms));
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stripe_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, stripe_on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response_bytes);
	if (c->ca_file[0] && curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file) != CURLE_OK)
		return -1;	/* without it, curl would trust the system's CAs instead */
	return 0;
}

static enum stripe_outcome stripe_outcome_of(enum stripe_errclass e, long status)
{
	switch (e) {
	case STRIPE_OK: return STRIPE_OUT_OK;
	case STRIPE_E_AUTH: return STRIPE_OUT_401;
	case STRIPE_E_PERMISSION: return STRIPE_OUT_403;
	case STRIPE_E_RATELIMIT: return STRIPE_OUT_429;
	case STRIPE_E_TIMEOUT: return STRIPE_OUT_TIMEOUT;
	case STRIPE_E_NETWORK: return STRIPE_OUT_NETWORK;
	default: break;
	}
	if (status == 404)
		return STRIPE_OUT_NOT_FOUND;
	return status >= 500 ? STRIPE_OUT_5XX : STRIPE_OUT_OTHER;
}

/* Classifies a finished curl transfer into call->err (and message). */
static void stripe_attempt_classify(struct stripe_attempt *a, CURLcode cc, int64_t deadline_ms,
    int64_t cap_ms)
{
	struct stripe_call *call = a->call;

	if (a->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
		call->err = STRIPE_E_MALFORMED;
		snprintf(call->message, sizeof(call->message), "response larger than the cap");
	} else if (cc == CURLE_OPERATION_TIMEDOUT && sm_ms_left(deadline_ms) <= 5) {
		call->err = STRIPE_E_TIMEOUT;
		snprintf(call->message, sizeof(call->message), "deadline reached");
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {	/* this attempt's share ran out */
		call->err = STRIPE_E_NETWORK;
		call->attempt_timed_out = true;
		snprintf(call->message, sizeof(call->message), "no answer within %lld ms "
		    "(the attempt's share of the deadline)", (long long)cap_ms);
	} else if (cc == CURLE_OUT_OF_MEMORY) {
		call->err = STRIPE_E_INTERNAL;
		snprintf(call->message, sizeof(call->message), "out of memory");
	} else if (cc != CURLE_OK) {
		call->err = STRIPE_E_NETWORK;
		snprintf(call->message, sizeof(call->message), "%s", curl_easy_strerror(cc));
	} else {
		call->err = stripe_http_class(call->status);
		if (call->err != STRIPE_OK)
			stripe_parse_error(call->body.data, call->body.len, call->message,
			    sizeof(call->message), call->permission, sizeof(call->permission),
			    call->code, sizeof(call->code));
		if (call->err != STRIPE_OK && call->message[0] == '\0')
			snprintf(call->message, sizeof(call->message), "HTTP %ld", call->status);
	}
}

/* One attempt (number n, from 0): token, slot, handle, perform. Returns true when it may
 * be retried. */
static bool stripe_attempt(struct stripe_client *c, const char *url, int64_t deadline_ms, int n,
    struct stripe_call *call)
{
	struct stripe_attempt a = { call, c->max_response_bytes, -1, false };
	CURL *h;
	CURLcode cc;
	int64_t t0, cap;
	unsigned ticket = 0;

	sm_buf_free(&call->body);
	sm_buf_init(&call->body, c->max_response_bytes);
	call->status = 0;
	call->permission[0] = call->message[0] = call->request_id[0] = call->code[0] = '\0';
	call->attempt_timed_out = false;
	if (stripe_gate_admit(c, url, deadline_ms, call, &ticket) != 0)
		return false;
	if (stripe_slot_take(c, deadline_ms) != 0) {
		call->err = STRIPE_E_TIMEOUT;
		snprintf(call->message, sizeof(call->message), "deadline reached waiting for a connection slot");
		return false;
	}
	h = stripe_handle_get(c);
	if (h == NULL) {
		stripe_handle_put(c, NULL);
		call->err = STRIPE_E_INTERNAL;
		snprintf(call->message, sizeof(call->message), "curl_easy_init failed");
		return false;
	}
	cap = stripe_http_attempt_ms(sm_ms_left(deadline_ms), n, c->max_retries);
	if (stripe_handle_setup(c, h, url, &a, cap) != 0) {
		stripe_handle_put(c, h);
		call->err = STRIPE_E_INTERNAL;
		snprintf(call->message, sizeof(call->message), "out of memory setting up the request");
		return false;
	}
	t0 = sm_now_ms();
	call->requests++;
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &call->status);
	if (cc != CURLE_OK) {	/* a failed connection is not reused */
		curl_easy_cleanup(h);
		h = NULL;
	}
	stripe_handle_put(c, h);
	stripe_attempt_classify(&a, cc, deadline_ms, cap);
	if (c->gate.report)
		c->gate.report(c->gate.arg, ticket, call->err, call->status);
	stripe_stats_count(c, stripe_outcome_of(call->err, call->status), sm_now_ms() - t0);
	return stripe_http_retryable(call->err, call->status, call->code, a.should_retry,
	    c->retry_rate_limited);
}

/* FNV-1a over the parts that make a 4xx "the same" for the log. */
static uint64_t stripe_hash(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h ^ 0xff;
}

/* A request Stripe refused as invalid (see Diagnostics above): count it, log it once. */
static void stripe_rejected(struct stripe_client *c, const char *path_query,
    const struct stripe_call *call)
{
	enum stripe_endpoint ep = stripe_endpoint_of(path_query);
	enum stripe_rejected r = call->status == 400 ? STRIPE_REJ_400 : call->status == 404 ?
	    STRIPE_REJ_404 : STRIPE_REJ_OTHER;
	char st[16];
	uint64_t h;
	int i;
	bool log = false, full = false;

	snprintf(st, sizeof(st), "%ld", call->status);
	h = stripe_hash(stripe_hash(stripe_hash(14695981039346656037ULL, stripe_endpoint_name(ep)),
	    st), call->message);
	pthread_mutex_lock(&c->lock);
	c->stats.rejected[ep][r]++;
	for (i = 0; i < c->nrejected_seen && c->rejected_seen[i] != h; i++)
		;
	if (i == c->nrejected_seen) {
		if (c->nrejected_seen < STRIPE_REJECTED_LOGGED) {
			c->rejected_seen[c->nrejected_seen++] = h;
			log = true;
		} else if (c->nrejected_seen == STRIPE_REJECTED_LOGGED) {
			c->nrejected_seen++;	/* said once: no more distinct ones */
			full = true;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (log)
		sm_log(LOG_WARNING, "stripe: Stripe refused a request as invalid (HTTP %ld on %s, "
		    "request %s): \"%s\" (a defect of stripe-milter or of its configuration: please "
		    "report it with the request id)",
		    call->status, stripe_endpoint_name(ep), call->request_id[0] ? call->request_id :
		    "without a Request-Id", call->message);
	else if (full)
		sm_log(LOG_WARNING, "stripe: %d distinct refusals logged; further ones are only "
		    "counted (stats, /metrics)", STRIPE_REJECTED_LOGGED);
}

enum stripe_errclass stripe_http_get(struct stripe_client *c, const char *path_query,
    int64_t deadline_ms, struct stripe_call *call)
{
	char url[STRIPE_URL_MAX + STRIPE_PATH_MAX];
	int n;

	call->requests = 0;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base_url, path_query) >= sizeof(url)) {
		call->err = STRIPE_E_INTERNAL;
		snprintf(call->message, sizeof(call->message), "request URL too long");
		return call->err;
	}
	for (n = 0;; n++) {
		int64_t backoff;

		if (sm_ms_left(deadline_ms) <= 0) {
			if (n == 0) {
				call->err = STRIPE_E_TIMEOUT;
				snprintf(call->message, sizeof(call->message), "deadline reached");
			}
			break;
		}
		if (!stripe_attempt(c, url, deadline_ms, n, call) || n >= c->max_retries)
			break;
		backoff = stripe_http_backoff_ms(n + 1, c->retry_base_ms, c->retry_max_ms,
		    stripe_random(c));
		if (backoff >= sm_ms_left(deadline_ms)) {
			/* no time for another attempt: report this one (a capped attempt that
			 * ran out of its share is then the deadline's doing) */
			if (call->attempt_timed_out) {
				call->err = STRIPE_E_TIMEOUT;
				snprintf(call->message, sizeof(call->message), "deadline reached after "
				    "%d attempts", call->requests);
			}
			break;
		}
		stripe_sleep_ms(backoff);
	}
	if (call->err == STRIPE_E_REQUEST && call->status >= 400 && call->status < 500)
		stripe_rejected(c, path_query, call);
	return call->err;
}
