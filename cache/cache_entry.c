/*
 * cache_entry.c - a cached entry and its encoding in Redis.
 *
 * Interface (cache_int.h): cache_entry_encode(), cache_entry_decode(), cache_entry_copy(),
 *	cache_entry_clear().
 *
 * Format, version 1: a 24-byte header before the opaque bytes, all integers big-endian:
 *	0..2	"SMC" magic
 *	3	version (1)
 *	4	kind (0 positive, 1 negative)
 *	5..7	reserved, zero
 *	8..15	fetch time, wall clock ms since the epoch (signed)
 *	16..19	ttl ms (how long the entry is fresh)
 *	20..23	stale grace ms (how much longer it may be served stale)
 * The writer's TTLs travel with the entry, so instances with other settings agree on
 * when it goes stale. A reader refuses any other magic or version (a miss).
 *
 * Diagnostics: none; decode returns -1 on a bad header (magic, version, kind, a negative
 *	fetch time) or no memory, leaving the entry zeroed, and the caller counts it.
 *
 * Untrusted: whatever Redis returns is decoded without overflow: times are summed with
 *	saturation (cache_int.h) and the reader refuses fetch times too far in the future.
 *
 * Known limits: ttl and grace are capped at 2^32-1 ms (49 days).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"

#define CACHE_ENTRY_VERSION 1

static void cache_put_be(unsigned char *p, uint64_t v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t cache_get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t cache_clamp_u32(int64_t v)
{
	if (v < 0)
		return 0;
	return v > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

unsigned char *cache_entry_encode(const struct cache_entry *e, size_t *outlen)
{
	unsigned char *buf = malloc(CACHE_ENTRY_HDR_LEN + e->len);

	if (buf == NULL)
		return NULL;
	memcpy(buf, "SMC", 3);
	buf[3] = CACHE_ENTRY_VERSION;
	buf[4] = e->kind == CACHE_NEGATIVE ? 1 : 0;
	buf[5] = buf[6] = buf[7] = 0;
	cache_put_be(buf + 8, (uint64_t)e->fetched_ms, 8);
	cache_put_be(buf + 16, cache_clamp_u32(e->ttl_ms), 4);
	cache_put_be(buf + 20, cache_clamp_u32(e->grace_ms), 4);
	if (e->len > 0)
		memcpy(buf + CACHE_ENTRY_HDR_LEN, e->data, e->len);
	*outlen = CACHE_ENTRY_HDR_LEN + e->len;
	return buf;
}

int cache_entry_decode(const void *buf, size_t len, struct cache_entry *e)
{
	const unsigned char *p = buf;

	memset(e, 0, sizeof(*e));
	if (len < CACHE_ENTRY_HDR_LEN || memcmp(p, "SMC", 3) != 0 || p[3] != CACHE_ENTRY_VERSION ||
	    p[4] > 1)
		return -1;
	if (p[8] & 0x80)
		return -1;	/* a fetch time before 1970 is no time any writer wrote */
	if (len > CACHE_ENTRY_HDR_LEN) {
		e->data = malloc(len - CACHE_ENTRY_HDR_LEN);
		if (e->data == NULL)
			return -1;
		e->len = len - CACHE_ENTRY_HDR_LEN;
		memcpy(e->data, p + CACHE_ENTRY_HDR_LEN, e->len);
	}
	/* set only once accepted: a refused entry is all zero (a negative kind or a fetch time
	 * read from a refused header never reaches a caller) */
	e->kind = p[4] == 1 ? CACHE_NEGATIVE : CACHE_POSITIVE;
	e->fetched_ms = (int64_t)cache_get_be(p + 8, 8);
	e->ttl_ms = (int64_t)cache_get_be(p + 16, 4);
	e->grace_ms = (int64_t)cache_get_be(p + 20, 4);
	return 0;
}

int cache_entry_copy(struct cache_entry *dst, const struct cache_entry *src)
{
	*dst = *src;
	dst->data = NULL;
	if (src->len == 0)
		return 0;
	dst->data = malloc(src->len);
	if (dst->data == NULL) {
		dst->len = 0;
		return -1;
	}
	memcpy(dst->data, src->data, src->len);
	return 0;
}

void cache_entry_clear(struct cache_entry *e)
{
	free(e->data);
	memset(e, 0, sizeof(*e));
}
