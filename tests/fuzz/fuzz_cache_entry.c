/*
 * fuzz_cache_entry.c - libFuzzer harness: the bytes of a Redis GET -> cache_entry_decode()
 * (cache/) -> for a positive entry, lk_summary_decode() of its payload (lookup/), the path
 * a warm lookup takes with whatever Redis returns.
 *
 * Checks beyond "no crash": a refused header leaves the entry zeroed; an accepted one has a
 * fetch time >= 0, TTL and grace < 2^32 and the payload's length; its freshness times
 * saturate (no overflow, stale_until >= fresh_until >= fetched); encoding it again gives the
 * same bytes but the reserved ones, and a copy is equal. A summary decoded from the payload
 * encodes and decodes to the identical struct (as fuzz_lk_summary checks).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "lookup/lookup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_summary(const struct cache_entry *e)
{
	struct stripe_summary a, b;
	char *buf = NULL, err[128];
	size_t len;

	if (lk_summary_decode((const char *)e->data, e->len, &a, err, sizeof(err)) != 0)
		return;
	if (lk_summary_encode(&a, &buf, &len) != 0)
		return;	/* a string cut inside invalid UTF-8: refused, as fuzz_lk_summary */
	if (lk_summary_decode(buf, len, &b, err, sizeof(err)) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cache_entry zero;
	struct cache_entry e, c;
	unsigned char *enc;
	size_t len;

	if (cache_entry_decode(data, size, &e) != 0) {
		if (memcmp(&e, &zero, sizeof(e)) != 0)
			abort();
		return 0;
	}
	if (e.fetched_ms < 0 || e.ttl_ms < 0 || e.ttl_ms > (int64_t)UINT32_MAX || e.grace_ms < 0 ||
	    e.grace_ms > (int64_t)UINT32_MAX || e.len != size - CACHE_ENTRY_HDR_LEN ||
	    (e.len > 0) != (e.data != NULL))
		abort();
	if (cache_entry_fresh_until(&e) < e.fetched_ms ||
	    cache_entry_stale_until(&e) < cache_entry_fresh_until(&e))
		abort();
	enc = cache_entry_encode(&e, &len);
	if (enc == NULL || len != size || memcmp(enc, data, 5) != 0 ||
	    memcmp(enc + 8, data + 8, size - 8) != 0)
		abort();
	free(enc);
	if (cache_entry_copy(&c, &e) != 0 || c.len != e.len || c.kind != e.kind ||
	    c.fetched_ms != e.fetched_ms || (c.len > 0 && memcmp(c.data, e.data, c.len) != 0))
		abort();
	cache_entry_clear(&c);
	if (e.kind == CACHE_POSITIVE)
		fuzz_summary(&e);
	cache_entry_clear(&e);
	return 0;
}
