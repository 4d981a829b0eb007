/*
 * sm_util.c - see sm_util.h.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sm_util.h"

int64_t sm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sm_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sm_ms_left(int64_t deadline_ms)
{
	int64_t left = deadline_ms - sm_now_ms();

	return left > 0 ? left : 0;
}

size_t sm_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size > 0) {
		size_t c = n < size - 1 ? n : size - 1;

		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

int sm_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void sm_buf_init(struct sm_buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

int sm_buf_append(struct sm_buf *b, const void *data, size_t len)
{
	size_t need;

	if (len > b->cap || b->len > b->cap - len) {
		b->overflow = true;
		return -1;
	}
	need = b->len + len + 1;
	if (need > b->alloc) {
		size_t n = b->alloc ? b->alloc : 256;
		char *p;

		while (n < need)
			n *= 2;
		if (n > b->cap + 1)
			n = b->cap + 1;
		p = realloc(b->data, n);
		if (p == NULL)
			return -1;
		b->data = p;
		b->alloc = n;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int sm_buf_printf(struct sm_buf *b, const char *fmt, ...)
{
	char small[512];
	char *big = NULL;
	va_list ap;
	int n, rc = -1;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out;
	if ((size_t)n < sizeof(small)) {
		rc = sm_buf_append(b, small, (size_t)n);
		goto out;
	}
	big = malloc((size_t)n + 1);
	if (big == NULL)
		goto out;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = sm_buf_append(b, big, (size_t)n);
out:
	free(big);
	return rc;
}

void sm_buf_reset(struct sm_buf *b)
{
	b->len = 0;
	b->overflow = false;
	if (b->data)
		b->data[0] = '\0';
}

void sm_buf_free(struct sm_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
}

/* SHA-256 (FIPS 180-4), small and portable; used for cache keys only. */
struct sm_sha256 {
	uint32_t h[8];
	uint64_t bits;
	unsigned char block[64];
	size_t fill;
};

static const uint32_t sm_sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define SM_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sm_sha256_block(struct sm_sha256 *s, const unsigned char *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, h, t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++) {
		uint32_t s0 = SM_ROR(w[i - 15], 7) ^ SM_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = SM_ROR(w[i - 2], 17) ^ SM_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
	e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
	for (i = 0; i < 64; i++) {
		t1 = h + (SM_ROR(e, 6) ^ SM_ROR(e, 11) ^ SM_ROR(e, 25)) + ((e & f) ^ (~e & g)) +
		    sm_sha256_k[i] + w[i];
		t2 = (SM_ROR(a, 2) ^ SM_ROR(a, 13) ^ SM_ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
	}
	s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
	s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

static void sm_sha256_update(struct sm_sha256 *s, const unsigned char *p, size_t len)
{
	s->bits += (uint64_t)len * 8;
	while (len > 0) {
		size_t n = 64 - s->fill < len ? 64 - s->fill : len;

		memcpy(s->block + s->fill, p, n);
		s->fill += n;
		p += n;
		len -= n;
		if (s->fill == 64) {
			sm_sha256_block(s, s->block);
			s->fill = 0;
		}
	}
}

void sm_sha256_hex(const void *data, size_t len, char out[SM_SHA256_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	struct sm_sha256 s = { { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }, 0, { 0 }, 0 };
	uint64_t bits;
	unsigned char pad = 0x80, zero = 0, len8[8];
	int i;

	sm_sha256_update(&s, data, len);
	bits = s.bits;
	sm_sha256_update(&s, &pad, 1);
	while (s.fill != 56)
		sm_sha256_update(&s, &zero, 1);
	for (i = 0; i < 8; i++)
		len8[i] = (unsigned char)(bits >> (56 - 8 * i));
	sm_sha256_update(&s, len8, 8);
	for (i = 0; i < 32; i++) {
		unsigned char byte = (unsigned char)(s.h[i / 4] >> (24 - 8 * (i % 4)));

		out[2 * i] = hex[byte >> 4];
		out[2 * i + 1] = hex[byte & 15];
	}
	out[SM_SHA256_HEX_LEN] = '\0';
}
