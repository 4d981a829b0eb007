/*
 * test_alloc_fail.c - allocation failure, curl's "torture" way: one lookup (lk_new, a cold
 * lookup through the Stripe client against the stand-in, the summary codec, the two cache
 * levels on a real redis-server, then a warm lookup and lk_put) is run again and again, the
 * Nth allocation failing in run N, for N = 1, 2, ... until a run makes no injected failure.
 * Every run must end in a defined outcome: lk_new() refused with a reason, or a result that
 * is the customer (cus_jenny) or an error with its class word, never "not found" for a
 * customer who exists, never a crash; under ASan no run may leak (LeakSanitizer is asked after
 * every run, so a leak names its N).
 *
 * Counted allocations (only while a run is armed, on any thread): the project's own malloc,
 * calloc, realloc, strdup and strndup (the link wraps them: -Wl,--wrap, tests/lookup/local.mk),
 * jansson's (json_set_alloc_funcs), libcurl's (curl_global_init_mem) and OpenSSL's
 * (CRYPTO_set_mem_functions). Not counted: jansson's parser (json_loadb, wrapped so that
 * its allocations are neither counted nor failed): jansson 2.14 does not survive a failed
 * allocation while lexing (seen here: assert(0) in lex_scan_string, and a free() of a pointer
 * it never allocated), a library bug no caller can handle; its builders and json_dumps (the
 * codec) are failed like everything else. hiredis 0.14 (Debian 12) has no allocator hook, so
 * a failure inside hiredis (reply objects, command formatting) is not injected; libc's own
 * (getaddrinfo, pthread_create) neither. Concurrent fetches of one lookup run on threads of
 * their own, so which allocation is the Nth can differ between two runs with the same N: the
 * count of distinct call sites that failed is printed (as a TAP comment) with the runs.
 */
#include "config.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_util.h"
#include "lookup/lookup.h"
#include "tests/harness/th.h"

#if defined(__SANITIZE_ADDRESS__)
#define AF_LSAN 1
int __lsan_do_recoverable_leak_check(void);
#endif

/* ---- the counting allocator ---- */

#define AF_SITES_MAX 4096

static atomic_bool af_armed;
static atomic_long af_count;		/* allocations counted in this run */
static long af_fail_at;			/* the one that fails (set while disarmed) */
static atomic_int af_injected;
static __thread int af_skip;		/* inside jansson's parser: not counted */
static pthread_mutex_t af_mu = PTHREAD_MUTEX_INITIALIZER;
static const void *af_sites[AF_SITES_MAX];	/* distinct callers that got NULL */
static int af_nsites;

static bool af_fail(const void *site)
{
	int i;

	if (af_skip || !atomic_load(&af_armed) || atomic_fetch_add(&af_count, 1) + 1 != af_fail_at)
		return false;
	atomic_store(&af_injected, 1);
	pthread_mutex_lock(&af_mu);
	for (i = 0; i < af_nsites && af_sites[i] != site; i++)
		;
	if (i == af_nsites && af_nsites < AF_SITES_MAX)
		af_sites[af_nsites++] = site;
	pthread_mutex_unlock(&af_mu);
	return true;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n)
{
	return af_fail(__builtin_return_address(0)) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
	return af_fail(__builtin_return_address(0)) ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
	return af_fail(__builtin_return_address(0)) ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return af_fail(__builtin_return_address(0)) ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return af_fail(__builtin_return_address(0)) ? NULL : __real_strndup(s, n);
}

json_t *__real_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);
json_t *__wrap_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);

json_t *__wrap_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error)
{
	json_t *j;

	af_skip++;
	j = __real_json_loadb(buf, len, flags, error);
	af_skip--;
	return j;
}

/* libraries' hooks: same counter, the caller inside the library as the site */
static void *af_lib_malloc(size_t n)
{
	return af_fail(__builtin_return_address(0)) ? NULL : __real_malloc(n);
}

static void *af_lib_calloc(size_t k, size_t n)
{
	return af_fail(__builtin_return_address(0)) ? NULL : __real_calloc(k, n);
}

static void *af_lib_realloc(void *p, size_t n)
{
	return af_fail(__builtin_return_address(0)) ? NULL : __real_realloc(p, n);
}

static char *af_lib_strdup(const char *s)
{
	return af_fail(__builtin_return_address(0)) ? NULL : __real_strdup(s);
}

static void *af_ssl_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return af_fail(__builtin_return_address(0)) ? NULL : __real_malloc(n);
}

static void *af_ssl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return af_fail(__builtin_return_address(0)) ? NULL : __real_realloc(p, n);
}

static void af_ssl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

/* ---- the lookup under test ---- */

static struct th_standin S;
static struct th_redis R;

#define AF_STATE \
	"{\"products\":[{\"id\":\"prod_pro\",\"name\":\"Pro\"}]," \
	"\"customers\":[{\"id\":\"cus_jenny\",\"email\":\"jenny@example.com\",\"name\":\"Jenny Rosen\"," \
	"\"created\":1709251200,\"delinquent\":true,\"balance\":-500,\"currency\":\"usd\"," \
	"\"metadata\":{\"tier\":\"gold\"}," \
	"\"subscriptions\":[{\"id\":\"sub_pro\",\"status\":\"active\"," \
	"\"items\":[{\"price\":{\"id\":\"price_pro\",\"unit_amount\":4900,\"currency\":\"usd\"," \
	"\"product\":\"prod_pro\",\"recurring\":{\"interval\":\"month\",\"interval_count\":1}}," \
	"\"quantity\":1}]}]," \
	"\"charges\":[{\"id\":\"ch_ok\",\"amount\":4900,\"currency\":\"usd\",\"status\":\"succeeded\"}]}]}"

/* Checks one lookup's result; what a run may end in. */
static void af_check(const struct lk_result *r, long n, const char *which)
{
	switch (r->lr_state) {
	case LK_FOUND:
		ck_assert_msg(strcmp(r->lr_summary.customer_id, "cus_jenny") == 0,
		    "N=%ld %s: found '%s'", n, which, r->lr_summary.customer_id);
		break;
	case LK_ERROR:
		ck_assert_msg(r->lr_error != NULL && r->lr_error[0] != '\0',
		    "N=%ld %s: an error without a class", n, which);
		break;
	default:
		ck_abort_msg("N=%ld %s: state %d (a failed allocation read as 'no such customer'?)",
		    n, which, (int)r->lr_state);
	}
}

/* One armed run failing allocation n (0 = none). Returns the allocations it counted. */
static long af_run(long n, struct lk_result *cold)
{
	static const char *const keys[] = { "tier" };
	struct lk_result warm;
	struct lk_config lc;
	char err[256] = "", out[64];
	struct lk *lk;
	long count;

	memset(&lc, 0, sizeof(lc));
	lc.stripe.api_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
	lc.stripe.base_url = S.base_url;
	lc.stripe.max_retries = 1;
	lc.stripe.retry_base_ms = 5;
	lc.stripe.retry_max_ms = 20;
	lc.stripe.rate_limit = 10000;
	lc.stripe.metadata_keys = keys;
	lc.stripe.nmetadata_keys = 1;
	lc.cache.prefix = "allocfail";
	lc.cache.redis_host = "127.0.0.1";
	lc.cache.redis_port = R.port;
	lc.cache.connect_timeout_ms = 2000;
	lc.cache.command_timeout_ms = 2000;
	lc.mode = "test";
	lc.stripe_timeout_ms = 10000;
	ck_assert_int_eq(th_redis_cmd(&R, out, sizeof(out), "FLUSHALL"), 0);
	memset(cold, 0, sizeof(*cold));

	af_fail_at = n;
	atomic_store(&af_count, 0);
	atomic_store(&af_injected, 0);
	atomic_store(&af_armed, true);
	lk = lk_new(&lc, NULL, err, sizeof(err));
	if (lk == NULL) {
		atomic_store(&af_armed, false);
		ck_assert_msg(n > 0 && err[0] != '\0', "N=%ld: lk_new failed without a reason", n);
		cold->lr_state = LK_ERROR;
		cold->lr_error = "lk_new";
		return atomic_load(&af_count);
	}
	lk_sync(lk, "jenny@example.com", sm_now_ms() + 10000, cold);
	lk_sync(lk, "Jenny@Example.com", sm_now_ms() + 10000, &warm);
	lk_put(lk);
	atomic_store(&af_armed, false);
	count = atomic_load(&af_count);
	af_check(cold, n, "cold lookup");
	af_check(&warm, n, "warm lookup");
	return count;
}

START_TEST(every_allocation_of_a_lookup_fails_once)
{
	struct lk_result r;
	long n, total, runs = 0, errors = 0, found = 0, refused = 0;

	ck_assert_int_eq(th_standin_state(&S, AF_STATE), 0);
	ck_assert_int_eq(th_standin_faults(&S, "{}"), 0);
	/* a first run does the process's one-time set-ups (OpenSSL's SHA-256 fetch, curl's
	 * and jansson's first uses): they are not part of a lookup and not failed here */
	(void)af_run(0, &r);
	/* the reference run: nothing fails, the customer with every part */
	total = af_run(0, &r);
	ck_assert_int_eq(r.lr_state, LK_FOUND);
	ck_assert_str_eq(r.lr_summary.subs[0].plan, "Pro");
	ck_assert_int_eq(r.lr_summary.parts_missing, 0);
	ck_assert_int_gt(total, 100);
	for (n = 1; ; n++) {
		long count = af_run(n, &r);

		runs++;
#ifdef AF_LSAN
		ck_assert_msg(__lsan_do_recoverable_leak_check() == 0, "N=%ld: leaked (above)", n);
#endif
		if (!atomic_load(&af_injected)) {
			/* past the last allocation: the run is the reference again */
			ck_assert_int_eq(r.lr_state, LK_FOUND);
			ck_assert_str_eq(r.lr_summary.subs[0].plan, "Pro");
			ck_assert_int_le(count, n);
			ck_assert_int_ge(n, total - total / 10);	/* every allocation had its turn */
			break;
		}
		if (r.lr_error && strcmp(r.lr_error, "lk_new") == 0)
			refused++;
		else if (r.lr_state == LK_FOUND)
			found++;
		else
			errors++;
		ck_assert_msg(n < 100000, "no end to the allocations of one lookup");
	}
	fprintf(stderr, "# alloc-fail lookup: %ld allocations in the reference run, %ld runs, %d distinct "
	    "call sites failed; outcomes: %ld lk_new refused, %ld found, %ld error\n", total, runs,
	    af_nsites, refused, found, errors);
	fflush(stderr);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("alloc-fail");
	TCase *tc = tcase_create("lookup");
	int rc;

	/* before anything else allocates: the libraries' allocators are the counting ones */
	if (CRYPTO_set_mem_functions(af_ssl_malloc, af_ssl_realloc, af_ssl_free) != 1)
		fprintf(stderr, "# OpenSSL allocations are not counted (hook refused)\n");
	json_set_alloc_funcs(af_lib_malloc, free);
	curl_global_init_mem(CURL_GLOBAL_DEFAULT, af_lib_malloc, free, af_lib_realloc,
	    af_lib_strdup, af_lib_calloc);
	if (th_redis_start(&R, 0, NULL) != 0)
		th_skip_all("redis-server did not start");
	if (th_standin_start(&S) != 0) {
		th_redis_stop(&R);
		th_skip_all("the Stripe stand-in (tests/standin/stripe_standin.py) did not start");
	}
	tcase_set_timeout(tc, 1800);
	tcase_add_test(tc, every_allocation_of_a_lookup_fails_once);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_standin_stop(&S);
	th_redis_stop(&R);
	return rc;
}
