/*
 * stripe_client.c - a Stripe client: configuration checks, shared curl state, counters.
 *
 * Interface: stripe_client_new(cfg, err, errlen) validates cfg (key format, base URL:
 *	https, or http:// only to 127.0.0.1, localhost or [::1]), copies it, and builds the
 *	fixed request headers (Authorization: Bearer, Stripe-Version, Stripe-Account,
 *	User-Agent: stripe-milter/VERSION) and a CURLSH sharing DNS and TLS sessions only.
 *	stripe_client_free() frees it (no request may be in flight). stripe_stats_get().
 *
 * Diagnostics: err never contains the key (the masked form at most).
 *
 * Known limits: curl_global_init() is the caller's job (once, in main).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/sm_log.h"
#include "stripe/stripe_int.h"

/* Is url https://..., or http:// to a loopback host (tests)? */
static int stripe_check_base_url(const char *url, bool *allow_http, char *err, size_t errlen)
{
	static const char *const loop[] = { "127.0.0.1", "localhost", "[::1]" };
	size_t i, n;

	*allow_http = false;
	if (strlen(url) >= STRIPE_URL_MAX - 1 || strpbrk(url, " \t\r\n?#") != NULL) {
		snprintf(err, errlen, "Stripe base URL is too long or has spaces, '?' or '#'");
		return -1;
	}
	if (strncasecmp(url, "https://", 8) == 0 && url[8] != '\0')
		return 0;
	if (strncasecmp(url, "http://", 7) == 0) {
		for (i = 0; i < sizeof(loop) / sizeof(loop[0]); i++) {
			n = strlen(loop[i]);
			if (strncasecmp(url + 7, loop[i], n) == 0 &&
			    (url[7 + n] == '\0' || url[7 + n] == ':' || url[7 + n] == '/')) {
				*allow_http = true;
				return 0;
			}
		}
	}
	snprintf(err, errlen, "Stripe base URL must be https:// (http:// only to 127.0.0.1, "
	    "localhost or [::1])");
	return -1;
}

static void stripe_share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct stripe_client *c = arg;

	(void)h;
	(void)access;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_locks[data]);
}

static void stripe_share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct stripe_client *c = arg;

	(void)h;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_locks[data]);
}

/* Appends one header line; -1 on out of memory. */
static int stripe_header_add(struct curl_slist **h, const char *line)
{
	struct curl_slist *n = curl_slist_append(*h, line);

	if (n == NULL)
		return -1;
	*h = n;
	return 0;
}

static int stripe_client_headers(struct stripe_client *c)
{
	char line[STRIPE_KEY_MAX + 64];
	struct curl_slist *h = NULL;
	int rc = -1;

	snprintf(line, sizeof(line), "Authorization: Bearer %s", c->key);
	if (stripe_header_add(&h, line) != 0)
		goto out;
	snprintf(line, sizeof(line), "Stripe-Version: %s", c->api_version);
	if (stripe_header_add(&h, line) != 0)
		goto out;
	if (stripe_header_add(&h, "User-Agent: " PACKAGE_NAME "/" PACKAGE_VERSION) != 0)
		goto out;
	snprintf(line, sizeof(line), "Stripe-Account: %s", c->account);
	if (c->account[0] && stripe_header_add(&h, line) != 0)
		goto out;
	c->headers = h;
	h = NULL;
	rc = 0;
out:
	explicit_bzero(line, sizeof(line));
	curl_slist_free_all(h);
	return rc;
}

static int stripe_client_share(struct stripe_client *c)
{
	int i;

	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	c->share = curl_share_init();
	if (c->share == NULL)
		return -1;
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, stripe_share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, stripe_share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return 0;
}

/* Copies the tunables, applying defaults. */
static int stripe_client_tunables(struct stripe_client *c, const struct stripe_config *cfg,
    char *err, size_t errlen)
{
	int i;

	c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 2000;
	c->max_response_bytes = cfg->max_response_bytes > 0 ? cfg->max_response_bytes : 4u << 20;
	c->max_retries = cfg->max_retries >= 0 ? cfg->max_retries : 2;
	if (c->max_retries > 10)
		c->max_retries = 10;
	c->retry_rate_limited = cfg->retry_rate_limited;
	c->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 500;
	c->retry_max_ms = cfg->retry_max_ms > 0 ? cfg->retry_max_ms : 5000;
	c->rate = cfg->rate_limit > 0 ? cfg->rate_limit : 20.0;
	c->burst = cfg->rate_burst > 0 ? cfg->rate_burst : (c->rate < 1 ? 1 : c->rate);
	c->tokens = c->burst;
	c->bucket_ms = sm_now_ms();
	c->max_concurrent = cfg->max_concurrent > 0 ? cfg->max_concurrent : 8;
	c->charges_window_days = cfg->charges_window_days > 0 ? cfg->charges_window_days : 90;
	c->charges_max = cfg->charges_max > 0 ? cfg->charges_max : 100;
	if (c->charges_max > 1000)
		c->charges_max = 1000;
	c->no_subscriptions = cfg->no_subscriptions;
	c->no_charges = cfg->no_charges;
	c->no_plan_names = cfg->no_plan_names;
	c->no_search = cfg->no_search;
	c->no_guest = cfg->no_guest;
	c->no_invoices = cfg->no_invoices;
	c->search_rate = cfg->search_rate > 0 ? cfg->search_rate : 5.0;
	if (c->search_rate > 20.0)
		c->search_rate = 20.0;	/* Stripe's documented search limit per account */
	c->search_tokens = c->search_rate < 1.0 ? 1.0 : c->search_rate;
	c->search_bucket_ms = sm_now_ms();
	if (cfg->gate && cfg->gate->admit)
		c->gate = *cfg->gate;
	if (cfg->nmetadata_keys < 0 || cfg->nmetadata_keys > STRIPE_META_MAX) {
		snprintf(err, errlen, "at most %d metadata keys", STRIPE_META_MAX);
		return -1;
	}
	for (i = 0; i < cfg->nmetadata_keys; i++) {
		const char *k = cfg->metadata_keys[i];

		if (k == NULL || *k == '\0' || strlen(k) > STRIPE_META_KEY_MAX) {
			snprintf(err, errlen, "metadata key %d is empty or longer than %d", i + 1,
			    STRIPE_META_KEY_MAX);
			return -1;
		}
		sm_strlcpy(c->meta_keys[i], k, sizeof(c->meta_keys[i]));
	}
	c->nmeta_keys = cfg->nmetadata_keys;
	c->product_get = cfg->product_get;
	c->product_put = cfg->product_put;
	c->product_arg = cfg->product_arg;
	return 0;
}

/* Copies the strings of cfg, checking each. */
static int stripe_client_strings(struct stripe_client *c, const struct stripe_config *cfg,
    char *err, size_t errlen)
{
	const char *base = cfg->base_url ? cfg->base_url : "https://api.stripe.com";
	const char *ver = cfg->api_version ? cfg->api_version : STRIPE_API_VERSION_DEFAULT;

	if (stripe_key_check(cfg->api_key, err, errlen) != 0)
		return -1;
	sm_strlcpy(c->key, cfg->api_key, sizeof(c->key));
	stripe_key_mask(c->key, c->masked, sizeof(c->masked));
	c->livemode = stripe_key_livemode(c->key);
	if (stripe_check_base_url(base, &c->allow_http, err, errlen) != 0)
		return -1;
	sm_strlcpy(c->base_url, base, sizeof(c->base_url));
	while (c->base_url[0] && c->base_url[strlen(c->base_url) - 1] == '/')
		c->base_url[strlen(c->base_url) - 1] = '\0';
	if (*ver == '\0' || strlen(ver) >= sizeof(c->api_version) || strpbrk(ver, "\r\n:")) {
		snprintf(err, errlen, "bad Stripe API version");
		return -1;
	}
	sm_strlcpy(c->api_version, ver, sizeof(c->api_version));
	if (cfg->account && *cfg->account) {
		if (strncmp(cfg->account, "acct_", 5) != 0 || strlen(cfg->account) >= 64 ||
		    strspn(cfg->account, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789_") != strlen(cfg->account)) {
			snprintf(err, errlen, "Stripe account must look like acct_...");
			return -1;
		}
		sm_strlcpy(c->account, cfg->account, sizeof(c->account));
	}
	if (cfg->ca_file && strlen(cfg->ca_file) >= sizeof(c->ca_file)) {
		snprintf(err, errlen, "CA file path too long");
		return -1;
	}
	if (cfg->ca_file)
		sm_strlcpy(c->ca_file, cfg->ca_file, sizeof(c->ca_file));
	return 0;
}

struct stripe_client *stripe_client_new(const struct stripe_config *cfg, char *err, size_t errlen)
{
	struct stripe_client *c = NULL;
	pthread_condattr_t ca;
	bool ok = false;

	if (cfg == NULL) {
		snprintf(err, errlen, "no configuration");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->slot_cond, &ca);
	pthread_condattr_destroy(&ca);
	stripe_flights_init(c);
	c->rng = (uint64_t)sm_wall_ms() ^ (uint64_t)(uintptr_t)c;
	if (stripe_client_strings(c, cfg, err, errlen) != 0 ||
	    stripe_client_tunables(c, cfg, err, errlen) != 0)
		goto out;
	if (stripe_client_headers(c) != 0 || stripe_client_share(c) != 0) {
		snprintf(err, errlen, "out of memory (curl)");
		goto out;
	}
	ok = true;
out:
	if (!ok) {
		stripe_client_free(c);
		c = NULL;
	}
	return c;
}

void stripe_client_free(struct stripe_client *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nidle; i++)
		curl_easy_cleanup(c->idle[i]);
	if (c->share)
		curl_share_cleanup(c->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	curl_slist_free_all(c->headers);
	stripe_flights_destroy(c);
	pthread_cond_destroy(&c->slot_cond);
	pthread_mutex_destroy(&c->lock);
	explicit_bzero(c->key, sizeof(c->key));
	free(c);
}

void stripe_stats_get(struct stripe_client *c, struct stripe_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	out->inflight = (uint64_t)c->inflight;
	out->search_off = c->search_off_until_ms > sm_now_ms();
	pthread_mutex_unlock(&c->lock);
}

void stripe_stats_count(struct stripe_client *c, enum stripe_outcome o, int64_t ms)
{
	int i;

	pthread_mutex_lock(&c->lock);
	c->stats.requests[o]++;
	for (i = 0; i < STRIPE_LATENCY_BUCKETS - 1 && ms > stripe_latency_bounds_ms[i]; i++)
		;
	c->stats.latency_hist[i]++;
	c->stats.latency_sum_ms += ms > 0 ? (uint64_t)ms : 0;
	pthread_mutex_unlock(&c->lock);
}
