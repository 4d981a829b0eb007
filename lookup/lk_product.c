/*
 * lk_product.c - plan names (Stripe product names) in a cache of their own.
 *
 * Interface (lk_int.h): lk_product_get(), lk_product_put(), the product hooks of the
 *	Stripe client; arg is the plan-name cache.
 *
 * Keys: "<prefix>:v1:product:<prod_id>"; the value is the name's bytes (possibly empty).
 *
 * Deadline: a read is bounded by the lookup's deadline and by LK_PRODUCT_WAIT_MS, so a
 *	slow Redis costs a plan name (fetched from Stripe instead) and never the lookup.
 *	A write is bounded by the cache's command timeout.
 *
 * Diagnostics: none; a name that cannot be read or stored is simply fetched again.
 */
#include "config.h"

#include <string.h>

#include "common/sm_util.h"
#include "lookup/lk_int.h"

#define LK_PRODUCT_WAIT_MS 500

/* "product:<id>" under the cache's name space; -1 for an id with blanks or too long. */
static int lk_product_key(const struct cache *c, const char *id, char *key, size_t len)
{
	char name[CACHE_KEY_MAX];

	if (id == NULL || *id == '\0' || strpbrk(id, " \t\r\n") != NULL ||
	    sm_strlcpy(name, "product:", sizeof(name)) >= sizeof(name) ||
	    strlen(id) >= sizeof(name) - strlen(name))
		return -1;
	memcpy(name + strlen("product:"), id, strlen(id) + 1);
	return cache_key_name(c, name, key, len);
}

int lk_product_get(void *arg, const char *id, int64_t deadline_ms, char *name, size_t len)
{
	struct cache *c = arg;
	struct cache_value v;
	char key[CACHE_KEY_MAX];
	int64_t until = sm_now_ms() + LK_PRODUCT_WAIT_MS;
	int rc = -1;

	if (deadline_ms < until)
		until = deadline_ms;
	if (sm_ms_left(until) <= 0 || lk_product_key(c, id, key, sizeof(key)) != 0)
		return -1;
	if (cache_get_or_fill(c, key, NULL, NULL, until, &v) != 0)
		return -1;
	if (v.kind == CACHE_POSITIVE && !v.stale && v.len < len) {
		memcpy(name, v.data ? (const char *)v.data : "", v.len);
		name[v.len] = '\0';
		rc = 0;
	}
	cache_value_free(&v);
	return rc;
}

void lk_product_put(void *arg, const char *id, const char *name)
{
	char key[CACHE_KEY_MAX];

	if (lk_product_key(arg, id, key, sizeof(key)) == 0)
		cache_put(arg, key, name, strlen(name), CACHE_POSITIVE);
}
