/*
 * stripe_lookup_bench.c - cold lookups through the Stripe client, for
 * tests/bench/bench_stripe_lookup.py (which compiles this file twice: against the client of
 * the current tree and against the client before issue #11, to print before/after ratios).
 *
 *	stripe_lookup_bench BASE_URL EMAIL LOOKUPS cold|warm
 *
 * Each lookup uses a new client (nothing carried over: a cold lookup). "warm" gives the
 * client a plan-name cache that knows every product (the milter's Redis-backed one, warm in
 * practice: a few products serve many customers); "cold" gives it none. Prints one line:
 * "requests=<per lookup> ms=<mean latency> found=<lookups that found a customer>".
 * Only stripe.h's stable interface is used, so the same file builds against both clients.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "stripe/stripe.h"

static long long bench_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#ifdef STRIPE_CUSTOMERS_CAP	/* issue #11 client: the hook is given the deadline */
static int bench_product_get(void *arg, const char *id, int64_t deadline_ms, char *name,
    size_t len)
{
	(void)arg;
	(void)id;
	(void)deadline_ms;
	snprintf(name, len, "Cached plan");
	return 0;
}
#else
static int bench_product_get(void *arg, const char *id, char *name, size_t len)
{
	(void)arg;
	(void)id;
	snprintf(name, len, "Cached plan");
	return 0;
}
#endif

int main(int argc, char **argv)
{
	struct stripe_config cfg;
	long long t0, total_ms = 0;
	long requests = 0;
	int i, n, found = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: %s BASE_URL EMAIL LOOKUPS cold|warm\n", argv[0]);
		return 2;
	}
	n = atoi(argv[3]) > 0 ? atoi(argv[3]) : 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	memset(&cfg, 0, sizeof(cfg));
	cfg.api_key = "sk_test_benchbenchbenchbench";
	cfg.base_url = argv[1];
	cfg.max_retries = 0;
	cfg.rate_limit = 1000;
	if (strcmp(argv[4], "warm") == 0)
		cfg.product_get = bench_product_get;
	for (i = 0; i < n; i++) {
		struct stripe_summary s;
		struct stripe_result r;
		struct stripe_client *c;
		char err[256];

		c = stripe_client_new(&cfg, err, sizeof(err));
		if (c == NULL) {
			fprintf(stderr, "stripe_client_new: %s\n", err);
			return 1;
		}
		t0 = bench_now_ms();
		if (stripe_lookup(c, argv[2], t0 + 20000, &s, &r) != STRIPE_OK) {
			fprintf(stderr, "lookup failed: %s\n", r.message);
			return 1;
		}
		total_ms += bench_now_ms() - t0;
		requests += r.requests;
		found += s.found;
		stripe_client_free(c);
	}
	printf("requests=%.2f ms=%.1f found=%d\n", (double)requests / n, (double)total_ms / n, found);
	curl_global_cleanup();
	return 0;
}
