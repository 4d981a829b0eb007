/*
 * lk_memo.c - remembers the last decoded summaries by their exact bytes, so that a cache
 * hit does not parse the same JSON again. See lk_int.h.
 *
 * Interface (lk_int.h): lk_summary_decode_memo().
 *
 * Why: a warm lookup is a copy of the cached bytes plus lk_summary_decode(), and decoding
 *	(jansson parse, object walk, frees) was about 60% of the instructions stripe-milter
 *	spent on a message answered from L1 (callgrind, see BENCHMARKS.md).
 *
 * How: LK_MEMO_SETS sets of LK_MEMO_WAYS slots, the set chosen by an FNV-1a hash of the
 *	length and the first and last bytes, each set under its own mutex; a slot holds one copy of the bytes and the
 *	summary they decode to. A slot answers only when the bytes compare equal (memcmp),
 *	so the result is exactly what decoding would give (decoding depends on nothing but
 *	the bytes). Anything else decodes as before and replaces the set's slots in turn;
 *	bytes that do not decode are never kept.
 *
 * Memory: at most 256 slots x (sizeof(struct stripe_summary), 5.4 KB, + the entry's
 *	bytes, typically under 1 KB), about 1.6 MB, allocated as slots are first used and
 *	kept for the life of the process (reachable). Entries longer than LK_MEMO_MAX_BYTES
 *	are decoded every time.
 *
 * Limits: more than LK_MEMO_WAYS hot entries in one set take turns (and decode each time).
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lookup/lk_int.h"

#define LK_MEMO_SETS		64
#define LK_MEMO_WAYS		4
#define LK_MEMO_MAX_BYTES	4096

struct lk_memo_slot {
	size_t ms_len;				/* 0 = empty */
	size_t ms_cap;				/* bytes allocated at ms_bytes */
	unsigned char *ms_bytes;
	struct stripe_summary *ms_sum;
};

struct lk_memo_set {
	pthread_mutex_t mset_lock;
	unsigned mset_next;			/* the slot replaced next */
	struct lk_memo_slot mset_slot[LK_MEMO_WAYS];
};

static struct lk_memo_set lk_memo[LK_MEMO_SETS];
static pthread_once_t lk_memo_once = PTHREAD_ONCE_INIT;

static void lk_memo_init(void)
{
	int i;

	for (i = 0; i < LK_MEMO_SETS; i++)
		pthread_mutex_init(&lk_memo[i].mset_lock, NULL);
}

/* Picks the set: FNV-1a over the length, the first 256 and the last 64 bytes (where the
 * customer id, fetch time and totals are). Only the spread depends on it: a slot answers
 * after a full memcmp. */
static uint64_t lk_memo_hash(const unsigned char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ len;
	size_t i, head = len < 256 ? len : 256, tail = len - head < 64 ? len - head : 64;

	for (i = 0; i < head; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	for (i = len - tail; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Copies a known answer into out; true when a slot of the set holds exactly these bytes. */
static bool lk_memo_get(struct lk_memo_set *set, const unsigned char *p, size_t len,
    struct stripe_summary *out)
{
	bool hit = false;
	int i;

	pthread_mutex_lock(&set->mset_lock);
	for (i = 0; i < LK_MEMO_WAYS && !hit; i++) {
		struct lk_memo_slot *s = &set->mset_slot[i];

		if (s->ms_len == len && memcmp(s->ms_bytes, p, len) == 0) {
			memcpy(out, s->ms_sum, sizeof(*out));
			hit = true;
		}
	}
	pthread_mutex_unlock(&set->mset_lock);
	return hit;
}

/* Keeps (bytes, summary) in the set's next slot; on no memory the set stays as it was. */
static void lk_memo_set(struct lk_memo_set *set, const unsigned char *p, size_t len,
    const struct stripe_summary *sum)
{
	struct lk_memo_slot *s;

	pthread_mutex_lock(&set->mset_lock);
	s = &set->mset_slot[set->mset_next];
	if (s->ms_sum == NULL && (s->ms_sum = malloc(sizeof(*s->ms_sum))) == NULL)
		goto out;
	if (s->ms_cap < len) {
		unsigned char *b = realloc(s->ms_bytes, len);

		if (b == NULL)
			goto out;
		s->ms_bytes = b;
		s->ms_cap = len;
	}
	memcpy(s->ms_bytes, p, len);
	memcpy(s->ms_sum, sum, sizeof(*sum));
	s->ms_len = len;
	set->mset_next = (set->mset_next + 1) % LK_MEMO_WAYS;
out:
	pthread_mutex_unlock(&set->mset_lock);
}

int lk_summary_decode_memo(const char *data, size_t len, struct stripe_summary *out, char *why,
    size_t whylen)
{
	const unsigned char *p = (const unsigned char *)data;
	struct lk_memo_set *set;

	if (data == NULL || len == 0 || len > LK_MEMO_MAX_BYTES)
		return lk_summary_decode(data, len, out, why, whylen);
	pthread_once(&lk_memo_once, lk_memo_init);
	set = &lk_memo[lk_memo_hash(p, len) % LK_MEMO_SETS];
	if (lk_memo_get(set, p, len, out))
		return 0;
	if (lk_summary_decode(data, len, out, why, whylen) != 0)
		return -1;
	lk_memo_set(set, p, len, out);
	return 0;
}
