/*
 * cache_l1.c - the in-process LRU (L1): a hash table of entries on a recency list.
 *
 * Interface (cache_int.h): cache_l1_new(), cache_l1_free(), cache_l1_get(), cache_l1_put(),
 *	cache_l1_del(), cache_l1_clear(), cache_l1_size().
 *
 * Bounds: at most max_entries entries and max_bytes bytes (key + value + bookkeeping);
 *	a put evicts least recently used entries until both hold. A value bigger than the
 *	byte bound is not stored.
 *
 * Freshness: an entry is a hit until its L1 time (set at put, never longer than the
 *	entry's own TTL) and is then kept, while within its stale grace, as a stale candidate
 *	for when a fill fails. Past grace it is dropped when met.
 *
 * Thread safety: one mutex around everything; values are copied in and out, so no
 *	pointer into the table ever leaves it.
 *
 * Diagnostics: none; -1 on out of memory.
 *
 * Known limits: one mutex for the whole table (lookups are short; no sharding); the
 *	bucket array is sized once (up to 2^20) from max_entries and never grows.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "common/sm_util.h"

struct cache_l1_node {
	struct cache_l1_node *hnext;		/* hash chain */
	struct cache_l1_node *prev, *next;	/* recency list, head = most recent */
	char *key;				/* owned */
	uint32_t hash;
	struct cache_entry e;			/* owns e.data */
	int64_t l1_until_mono;
	size_t cost;
};

struct cache_l1 {
	pthread_mutex_t mu;
	struct cache_l1_node **buckets;
	size_t nbuckets;			/* power of two */
	struct cache_l1_node *head, *tail;
	size_t count, bytes;
	size_t max_entries, max_bytes;
};

static uint32_t cache_l1_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

struct cache_l1 *cache_l1_new(size_t max_entries, size_t max_bytes)
{
	struct cache_l1 *l1 = calloc(1, sizeof(*l1));
	size_t n = 64;

	if (l1 == NULL)
		return NULL;
	while (n < max_entries && n < ((size_t)1 << 20))
		n <<= 1;
	l1->buckets = calloc(n, sizeof(*l1->buckets));
	if (l1->buckets == NULL) {
		free(l1);
		return NULL;
	}
	l1->nbuckets = n;
	l1->max_entries = max_entries;
	l1->max_bytes = max_bytes;
	pthread_mutex_init(&l1->mu, NULL);
	return l1;
}

static void cache_l1_node_free(struct cache_l1_node *n)
{
	cache_entry_clear(&n->e);
	free(n->key);
	free(n);
}

/* Finds a node and, when pprev is given, the link pointing at it. Caller holds mu. */
static struct cache_l1_node *cache_l1_find(struct cache_l1 *l1, const char *key, uint32_t h,
    struct cache_l1_node ***pprev)
{
	struct cache_l1_node **pp = &l1->buckets[h & (l1->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0) {
			if (pprev)
				*pprev = pp;
			return *pp;
		}
	}
	return NULL;
}

static void cache_l1_unlink(struct cache_l1 *l1, struct cache_l1_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l1->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l1->tail = n->prev;
	n->prev = n->next = NULL;
}

static void cache_l1_push_front(struct cache_l1 *l1, struct cache_l1_node *n)
{
	n->prev = NULL;
	n->next = l1->head;
	if (l1->head)
		l1->head->prev = n;
	l1->head = n;
	if (l1->tail == NULL)
		l1->tail = n;
}

/* Removes a node from the table and the list and frees it. Caller holds mu. */
static void cache_l1_remove(struct cache_l1 *l1, struct cache_l1_node *n)
{
	struct cache_l1_node **pp = NULL;

	if (cache_l1_find(l1, n->key, n->hash, &pp) == n)
		*pp = n->hnext;
	cache_l1_unlink(l1, n);
	l1->count--;
	l1->bytes -= n->cost;
	cache_l1_node_free(n);
}

enum cache_l1_hit cache_l1_get(struct cache_l1 *l1, const char *key, struct cache_entry *out)
{
	uint32_t h = cache_l1_hash(key);
	int64_t now_wall = sm_wall_ms();
	enum cache_l1_hit rc = CACHE_L1_MISS;
	struct cache_l1_node *n;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&l1->mu);
	n = cache_l1_find(l1, key, h, NULL);
	if (n == NULL)
		goto out;
	if (now_wall >= cache_entry_stale_until(&n->e)) {
		cache_l1_remove(l1, n);
		goto out;
	}
	if (cache_entry_copy(out, &n->e) != 0)
		goto out;
	if (sm_now_ms() < n->l1_until_mono && now_wall < cache_entry_fresh_until(&n->e)) {
		rc = CACHE_L1_FRESH;
		cache_l1_unlink(l1, n);
		cache_l1_push_front(l1, n);
	} else {
		rc = CACHE_L1_STALE;
	}
out:
	pthread_mutex_unlock(&l1->mu);
	return rc;
}

/* Evicts from the tail until the bounds hold with room for `need` more bytes. */
static void cache_l1_make_room(struct cache_l1 *l1, size_t need)
{
	while (l1->tail && (l1->count + 1 > l1->max_entries || l1->bytes + need > l1->max_bytes))
		cache_l1_remove(l1, l1->tail);
}

int cache_l1_put(struct cache_l1 *l1, const char *key, const struct cache_entry *e,
    int64_t l1_until_mono)
{
	uint32_t h = cache_l1_hash(key);
	size_t cost = sizeof(struct cache_l1_node) + strlen(key) + 1 + e->len;
	int64_t own_left = cache_entry_fresh_until(e) - sm_wall_ms();
	struct cache_l1_node *n = NULL, *old;
	int rc = -1;

	if (cost > l1->max_bytes || l1->max_entries == 0)
		return -1;
	/* never fresh in L1 longer than the entry itself (compared as durations: own_left
	 * may be near INT64_MAX) */
	if (own_left < l1_until_mono - sm_now_ms())
		l1_until_mono = sm_now_ms() + (own_left > 0 ? own_left : 0);
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		goto out;
	n->key = strdup(key);
	if (n->key == NULL || cache_entry_copy(&n->e, e) != 0)
		goto out;
	n->hash = h;
	n->cost = cost;
	n->l1_until_mono = l1_until_mono;
	pthread_mutex_lock(&l1->mu);
	old = cache_l1_find(l1, key, h, NULL);
	if (old)
		cache_l1_remove(l1, old);
	cache_l1_make_room(l1, cost);
	n->hnext = l1->buckets[h & (l1->nbuckets - 1)];
	l1->buckets[h & (l1->nbuckets - 1)] = n;
	cache_l1_push_front(l1, n);
	l1->count++;
	l1->bytes += cost;
	pthread_mutex_unlock(&l1->mu);
	n = NULL;		/* the table owns it now */
	rc = 0;
out:
	if (n)
		cache_l1_node_free(n);
	return rc;
}

void cache_l1_del(struct cache_l1 *l1, const char *key)
{
	struct cache_l1_node *n;

	pthread_mutex_lock(&l1->mu);
	n = cache_l1_find(l1, key, cache_l1_hash(key), NULL);
	if (n)
		cache_l1_remove(l1, n);
	pthread_mutex_unlock(&l1->mu);
}

void cache_l1_clear(struct cache_l1 *l1)
{
	pthread_mutex_lock(&l1->mu);
	while (l1->tail)
		cache_l1_remove(l1, l1->tail);
	pthread_mutex_unlock(&l1->mu);
}

void cache_l1_size(struct cache_l1 *l1, uint64_t *entries, uint64_t *bytes)
{
	pthread_mutex_lock(&l1->mu);
	*entries = l1->count;
	*bytes = l1->bytes;
	pthread_mutex_unlock(&l1->mu);
}

void cache_l1_free(struct cache_l1 *l1)
{
	if (l1 == NULL)
		return;
	cache_l1_clear(l1);
	pthread_mutex_destroy(&l1->mu);
	free(l1->buckets);
	free(l1);
}
