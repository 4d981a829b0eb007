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
#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/sm_util.h"

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

int sm_parse_inet4(const char *addr, struct sockaddr_in *out, char *err, size_t errlen)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	char host[64];
	long port;

	memset(out, 0, sizeof(*out));
	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host) ||
	    sm_parse_long(colon + 1, 1, 65535, &port) != 0) {
		snprintf(err, errlen, "expected address:port");
		return -1;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1) {
		snprintf(err, errlen, "not an IPv4 address");
		return -1;
	}
	out->sin_family = AF_INET;
	out->sin_port = htons((unsigned short)port);
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
