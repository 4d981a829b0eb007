/*
 * fl_sig.c - Stripe-Signature verification. See fl_sig.h.
 *
 * The HMAC runs over "<t>." and then the raw body, fed to one HMAC context in two updates
 * so the body is never copied. Decoding a v1 value to 32 bytes and comparing bytes with
 * CRYPTO_memcmp keeps the comparison time independent of where the values differ.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/sm_util.h"
#include "fleet/fl_sig.h"

#define FL_SIG_MAC_LEN 32

const char *fl_sig_rc_name(enum fl_sig_rc rc)
{
	static const char *const names[FL_SIG__COUNT] = {
		"ok", "malformed", "stale", "mismatch", "no-secret"
	};

	return (unsigned)rc < FL_SIG__COUNT ? names[rc] : "malformed";
}

/* HMAC-SHA256(secret, "<t>." body) into mac. 0 or -1. */
static int fl_sig_mac(const char *secret, int64_t t, const void *body, size_t len,
    unsigned char mac[FL_SIG_MAC_LEN])
{
	char prefix[32];
	unsigned int maclen = 0;
	HMAC_CTX *h = NULL;
	int n, rc = -1;

	n = snprintf(prefix, sizeof(prefix), "%lld.", (long long)t);
	if (n <= 0 || (size_t)n >= sizeof(prefix))
		return -1;
	/* HMAC_CTX is deprecated in OpenSSL 3 but available in 1.1 and 3.x alike. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	h = HMAC_CTX_new();
	if (h == NULL)
		goto out;
	if (HMAC_Init_ex(h, secret, (int)strlen(secret), EVP_sha256(), NULL) != 1 ||
	    HMAC_Update(h, (const unsigned char *)prefix, (size_t)n) != 1 ||
	    (len > 0 && HMAC_Update(h, body, len) != 1) ||
	    HMAC_Final(h, mac, &maclen) != 1 || maclen != FL_SIG_MAC_LEN)
		goto out;
	rc = 0;
out:
	HMAC_CTX_free(h);
#pragma GCC diagnostic pop
	return rc;
}

int fl_sig_sign(const char *secret, int64_t t, const void *body, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char mac[FL_SIG_MAC_LEN];
	int i;

	if (secret == NULL || fl_sig_mac(secret, t, body, len, mac) != 0)
		return -1;
	for (i = 0; i < FL_SIG_MAC_LEN; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	hex[FL_SIG_HEX_LEN] = '\0';
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

static int fl_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 64 hex digits -> 32 bytes. 0 or -1. */
static int fl_unhex(const char *s, size_t n, unsigned char out[FL_SIG_MAC_LEN])
{
	size_t i;

	if (n != FL_SIG_HEX_LEN)
		return -1;
	for (i = 0; i < FL_SIG_MAC_LEN; i++) {
		int hi = fl_hexval(s[2 * i]), lo = fl_hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

struct fl_sig_parsed {
	int64_t t;
	int have_t;
	int nv1;
	unsigned char v1[FL_SIG_V1_MAX][FL_SIG_MAC_LEN];
};

/* Parses "k=v,k=v,...". 0, or -1 when malformed. Whitespace around items is allowed. */
static int fl_sig_parse(const char *h, struct fl_sig_parsed *p)
{
	size_t hlen = strnlen(h, FL_SIG_HEADER_MAX + 1);
	const char *s = h, *end = h + hlen;

	memset(p, 0, sizeof(*p));
	if (hlen > FL_SIG_HEADER_MAX)
		return -1;
	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s)), *eq, *ie;
		size_t klen, vlen;

		ie = comma ? comma : end;
		while (s < ie && (*s == ' ' || *s == '\t'))
			s++;
		while (ie > s && (ie[-1] == ' ' || ie[-1] == '\t'))
			ie--;
		eq = memchr(s, '=', (size_t)(ie - s));
		if (eq != NULL) {
			klen = (size_t)(eq - s);
			vlen = (size_t)(ie - eq - 1);
			if (klen == 1 && s[0] == 't') {
				char num[24];
				long t;

				if (p->have_t || vlen == 0 || vlen >= sizeof(num))
					return -1;
				memcpy(num, eq + 1, vlen);
				num[vlen] = '\0';
				if (sm_parse_long(num, 0, 99999999999L, &t) != 0)
					return -1;
				p->t = t;
				p->have_t = 1;
			} else if (klen == 2 && s[0] == 'v' && s[1] == '1') {
				if (p->nv1 >= FL_SIG_V1_MAX || fl_unhex(eq + 1, vlen, p->v1[p->nv1]) != 0)
					return -1;
				p->nv1++;
			}
			/* other schemes (v0, future ones) are ignored, as Stripe's libraries do */
		}
		s = comma ? comma + 1 : end;
	}
	return p->have_t && p->nv1 > 0 ? 0 : -1;
}

enum fl_sig_rc fl_sig_verify(const char *header, const void *body, size_t len,
    const char *const *secrets, int n, int64_t now_s, int tolerance_s, int64_t *t_out)
{
	struct fl_sig_parsed p;
	unsigned char mac[FL_SIG_MAC_LEN];
	enum fl_sig_rc rc = FL_SIG_MISMATCH;
	int i, j, nsec = 0;
	int64_t d;

	if (header == NULL || fl_sig_parse(header, &p) != 0)
		return FL_SIG_MALFORMED;
	if (t_out)
		*t_out = p.t;
	for (i = 0; i < n; i++)
		nsec += secrets[i] != NULL && secrets[i][0] != '\0';
	if (nsec == 0)
		return FL_SIG_NO_SECRET;
	d = now_s - p.t;
	if (d > tolerance_s || d < -(int64_t)tolerance_s)
		return FL_SIG_STALE;
	for (i = 0; i < n && rc != FL_SIG_OK; i++) {
		if (secrets[i] == NULL || secrets[i][0] == '\0')
			continue;
		if (fl_sig_mac(secrets[i], p.t, body, len, mac) != 0)
			continue;
		/* every v1 is compared in full, also after a match */
		for (j = 0; j < p.nv1; j++)
			if (CRYPTO_memcmp(mac, p.v1[j], FL_SIG_MAC_LEN) == 0)
				rc = FL_SIG_OK;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(&p, sizeof(p));
	return rc;
}
