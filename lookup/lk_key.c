/*
 * lk_key.c - the cache key of a sender address. See lookup.h ("Keys").
 *
 * Interface: lk_key(); (lk_int.h) lk_key_init().
 *
 * Format: "<prefix>:v1:sum<N>:<mode>:<account>:<sha256>" (lookup.h, "Keys"): N is the
 *	summary codec's version (LK_SUMMARY_VERSION), so each codec has its own entries.
 *
 * Normalisation: ASCII lowercasing only (A-Z -> a-z, whatever the locale): Stripe's
 *	customer search by email is case-insensitive, and the address was already parsed and
 *	unquoted by the milter. The address itself never appears in a key, only its SHA-256.
 *
 * Hash: SHA-256 from OpenSSL's libcrypto (EVP_Digest), the library the TLS stack already
 *	brings, instead of a hand-written one; the digest is fetched from the provider once.
 *
 * Known limits: addresses longer than 1023 bytes have no key (-1).
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "lookup/lk_int.h"

#define LK_SHA256_LEN 32

/* OpenSSL 3 looks EVP_sha256() up in its provider tables on every EVP_Digest() call
 * (EVP_MD_fetch, a third of the cost of a key): fetch it once. Kept for the life of the
 * process; EVP_sha256() when the fetch fails. */
static const EVP_MD *lk_sha256_md;
static pthread_once_t lk_sha256_once = PTHREAD_ONCE_INIT;

static void lk_sha256_fetch(void)
{
	lk_sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (lk_sha256_md == NULL)
		lk_sha256_md = EVP_sha256();
}

/* Fetches the digest now: OpenSSL 3 also loads its default provider on this first use
 * (1.5 ms here, over a second under valgrind), so lk_new() calls it and no message pays. */
void lk_key_init(void)
{
	pthread_once(&lk_sha256_once, lk_sha256_fetch);
}

/* SHA-256 of len bytes as 64 lowercase hex digits (OpenSSL's libcrypto). -1 on failure. */
static int lk_sha256_hex(const void *data, size_t len, char hex[2 * LK_SHA256_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	pthread_once(&lk_sha256_once, lk_sha256_fetch);
	if (EVP_Digest(data, len, md, &mdlen, lk_sha256_md, NULL) != 1 || mdlen != LK_SHA256_LEN)
		return -1;
	for (i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * mdlen] = '\0';
	return 0;
}

/* A key component: printable, no ':' and no blanks; NULL or "" become "-". */
static const char *lk_component(const char *s)
{
	const char *p;

	if (s == NULL || *s == '\0')
		return "-";
	for (p = s; *p; p++)
		if (*p == ':' || (unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return NULL;
	return s;
}

int lk_key(const struct cache *c, const char *mode, const char *account, const char *address,
    char *buf, size_t len)
{
	char lower[1024], hex[2 * LK_SHA256_LEN + 1], name[CACHE_KEY_MAX];
	const char *m = lk_component(mode), *a = lk_component(account);
	size_t i, n;
	int w;

	if (address == NULL || m == NULL || a == NULL)
		return -1;
	n = strlen(address);
	if (n >= sizeof(lower))
		return -1;
	for (i = 0; i < n; i++)		/* ASCII only, whatever the locale */
		lower[i] = address[i] >= 'A' && address[i] <= 'Z' ? (char)(address[i] - 'A' + 'a') : address[i];
	if (lk_sha256_hex(lower, n, hex) != 0)
		return -1;
	w = snprintf(name, sizeof(name), "sum%d:%s:%s:%s", LK_SUMMARY_VERSION, m, a, hex);
	if (w < 0 || (size_t)w >= sizeof(name))
		return -1;
	return cache_key_name(c, name, buf, len);
}
