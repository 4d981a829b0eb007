/*
 * fl_sig.h - Stripe-Signature verification for webhook deliveries.
 *
 * Stripe signs each delivery with HMAC-SHA256 keyed by the endpoint's signing secret
 * ("whsec_...", used as is) over "<t>.<raw body>", and sends
 *	Stripe-Signature: t=1492774577,v1=<hex>,v1=<hex>,v0=<hex>
 * Every v1 signature in the header is tried against every secret given (two during a
 * secret rotation); other schemes (v0) are ignored. The comparison is constant-time
 * (CRYPTO_memcmp). The timestamp must be within tolerance_s of now, either way.
 *
 * Interface:
 *	fl_sig_verify(header, body, len, secrets, n, now_s, tolerance_s)	-> enum fl_sig_rc.
 *	fl_sig_sign(secret, t, body, len, hex)	the v1 signature (for tests and tools).
 *	fl_sig_rc_name()	"ok", "malformed", "stale", "mismatch", "no-secret".
 *
 * Known limits: the header is parsed up to FL_SIG_HEADER_MAX bytes and at most
 *	FL_SIG_V1_MAX v1 entries; longer or more is "malformed".
 */
#ifndef FL_SIG_H
#define FL_SIG_H

#include <stddef.h>
#include <stdint.h>

#define FL_SIG_HEADER_MAX	4096
#define FL_SIG_V1_MAX		8
#define FL_SIG_HEX_LEN		64	/* hex of a SHA-256 HMAC */

enum fl_sig_rc {
	FL_SIG_OK = 0,
	FL_SIG_MALFORMED,	/* no header, no t=, no v1=, a v1 that is not 64 hex digits */
	FL_SIG_STALE,		/* |now - t| > tolerance */
	FL_SIG_MISMATCH,	/* no v1 matches any secret */
	FL_SIG_NO_SECRET,	/* no secret configured */
	FL_SIG__COUNT
};

const char *fl_sig_rc_name(enum fl_sig_rc rc);

/* header may be NULL (MALFORMED). secrets: n NUL-terminated strings, NULL ones skipped.
 * *t_out (may be NULL) gets the header's timestamp when it parsed. */
enum fl_sig_rc fl_sig_verify(const char *header, const void *body, size_t len,
    const char *const *secrets, int n, int64_t now_s, int tolerance_s, int64_t *t_out);

/* hex (FL_SIG_HEX_LEN + 1 bytes) = lowercase hex of HMAC-SHA256(secret, "<t>.<body>").
 * 0, or -1 when libcrypto failed. */
int fl_sig_sign(const char *secret, int64_t t, const void *body, size_t len, char *hex);

#endif
