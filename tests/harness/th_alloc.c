/*
 * th_alloc.c - the counting allocator of allocation-failure tests. See th_alloc.h.
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

#include "tests/harness/th_alloc.h"

#if defined(__SANITIZE_ADDRESS__)
int __lsan_do_recoverable_leak_check(void);
#endif

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

void th_alloc_hooks(void)
{
	if (CRYPTO_set_mem_functions(af_ssl_malloc, af_ssl_realloc, af_ssl_free) != 1)
		fprintf(stderr, "# OpenSSL allocations are not counted (hook refused)\n");
	json_set_alloc_funcs(af_lib_malloc, free);
	curl_global_init_mem(CURL_GLOBAL_DEFAULT, af_lib_malloc, free, af_lib_realloc,
	    af_lib_strdup, af_lib_calloc);
}

void th_alloc_arm(long fail_at)
{
	af_fail_at = fail_at;
	atomic_store(&af_count, 0);
	atomic_store(&af_injected, 0);
	atomic_store(&af_armed, true);
}

long th_alloc_disarm(void)
{
	atomic_store(&af_armed, false);
	return atomic_load(&af_count);
}

bool th_alloc_injected(void)
{
	return atomic_load(&af_injected) != 0;
}

int th_alloc_sites(void)
{
	int n;

	pthread_mutex_lock(&af_mu);
	n = af_nsites;
	pthread_mutex_unlock(&af_mu);
	return n;
}

int th_alloc_leak_check(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return __lsan_do_recoverable_leak_check();
#else
	return 0;
#endif
}
