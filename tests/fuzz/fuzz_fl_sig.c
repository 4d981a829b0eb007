/*
 * fuzz_fl_sig.c - libFuzzer harness for a webhook delivery as fleet_webhook() takes it: the
 * Stripe-Signature header (fleet/fl_sig.c) and the body (stripe/stripe_events.c).
 *
 * Input: the header value up to the first '\n', the body after it. The header is verified
 * against two secrets (a rotation) at a fixed "now" (1700000000, tolerance 300 s); a body that
 * verifies is parsed as an event, as the listener does.
 *
 * Checks beyond "no crash": OK only when the header holds (in any case) the hex that
 * fl_sig_sign() gives for one of the secrets, its timestamp and the body; the timestamp
 * reported is within the tolerance for OK and MISMATCH; with no secret the answer is
 * NO_SECRET or MALFORMED; a header built by fl_sig_sign() for the same body always verifies.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fl_sig.h"
#include "stripe/stripe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW	1700000000
#define FUZZ_TOL	300

static const char *const fuzz_secrets[3] = { "whsec_fuzz_current", NULL, "whsec_fuzz_previous" };

/* strcasestr over the header for the signature of one secret. */
static int fuzz_signed_by(const char *hdr, const char *secret, int64_t t, const char *body,
    size_t len)
{
	char hex[FL_SIG_HEX_LEN + 1];

	if (fl_sig_sign(secret, t, body, len, hex) != 0)
		abort();
	return strcasestr(hdr, hex) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hlen = nl ? (size_t)(nl - data) : size;
	size_t blen = nl ? size - hlen - 1 : 0;
	char *hdr = malloc(hlen + 1), *body = malloc(blen + 1);
	char hex[FL_SIG_HEX_LEN + 1], good[128], err[160];
	const char *none[2] = { NULL, "" };
	struct stripe_event ev;
	enum fl_sig_rc rc;
	int64_t t = -1;

	if (hdr == NULL || body == NULL)
		goto out;
	memcpy(hdr, data, hlen);
	hdr[hlen] = '\0';
	memcpy(body, data + hlen + (nl ? 1 : 0), blen);
	body[blen] = '\0';
	rc = fl_sig_verify(hdr, body, blen, fuzz_secrets, 3, FUZZ_NOW, FUZZ_TOL, &t);
	if ((unsigned)rc >= FL_SIG__COUNT)
		abort();
	if ((rc == FL_SIG_OK || rc == FL_SIG_MISMATCH) && (t < FUZZ_NOW - FUZZ_TOL || t > FUZZ_NOW + FUZZ_TOL))
		abort();
	if (rc == FL_SIG_OK) {
		if (!fuzz_signed_by(hdr, fuzz_secrets[0], t, body, blen) &&
		    !fuzz_signed_by(hdr, fuzz_secrets[2], t, body, blen))
			abort();
		(void)stripe_event_parse(body, blen, &ev, err, sizeof(err));
	}
	rc = fl_sig_verify(hdr, body, blen, none, 2, FUZZ_NOW, FUZZ_TOL, NULL);
	if (rc != FL_SIG_NO_SECRET && rc != FL_SIG_MALFORMED)
		abort();
	/* the signer and the verifier agree on any body */
	if (fl_sig_sign(fuzz_secrets[2], FUZZ_NOW - 5, body, blen, hex) != 0)
		abort();
	snprintf(good, sizeof(good), "t=%d,v1=%s,v0=00", FUZZ_NOW - 5, hex);
	if (fl_sig_verify(good, body, blen, fuzz_secrets, 3, FUZZ_NOW, FUZZ_TOL, NULL) != FL_SIG_OK)
		abort();
out:
	free(hdr);
	free(body);
	return 0;
}
