/*
 * stripe_key.c - Stripe API keys: load, validate, mask, mode.
 *
 * Interface: stripe_key_load(file, who, inline, out, ...) reads file with the project's one
 *	secret reader (common/sm_secret.h: regular file, owner and mode rules for the reader
 *	who, one line), else uses inline, else the environment's STRIPE_API_KEY; then checks it with stripe_key_check(): sk_ or rk_,
 *	live or test, then [A-Za-z0-9_]; pk_ (publishable) is refused. stripe_key_mask()
 *	gives "sk_live_...abcd" (prefix and last four), safe to log.
 *
 * Diagnostics: err strings name the file and the rule broken, never the key itself.
 *
 * Known limits: a key longer than STRIPE_KEY_MAX - 1 characters is refused.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sm_secret.h"
#include "common/sm_util.h"
#include "stripe/stripe.h"

static const char *const stripe_key_prefixes[] = { "sk_live_", "sk_test_", "rk_live_", "rk_test_" };

/* Length of the known prefix key starts with, 0 when none. */
static size_t stripe_key_prefix_len(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(stripe_key_prefixes) / sizeof(stripe_key_prefixes[0]); i++)
		if (strncmp(key, stripe_key_prefixes[i], 8) == 0)
			return 8;
	return 0;
}

int stripe_key_check(const char *key, char *err, size_t errlen)
{
	size_t plen, i, n;

	if (key == NULL || *key == '\0') {
		snprintf(err, errlen, "no Stripe API key");
		return -1;
	}
	if (strncmp(key, "pk_", 3) == 0) {
		snprintf(err, errlen, "a publishable key (pk_) cannot read Stripe data: use a secret "
		    "(sk_) or restricted (rk_) key");
		return -1;
	}
	plen = stripe_key_prefix_len(key);
	if (plen == 0) {
		snprintf(err, errlen, "the Stripe API key must start with sk_live_, sk_test_, "
		    "rk_live_ or rk_test_");
		return -1;
	}
	n = strlen(key);
	if (n == plen || n >= STRIPE_KEY_MAX) {
		snprintf(err, errlen, "the Stripe API key has an impossible length (%zu)", n);
		return -1;
	}
	for (i = plen; i < n; i++) {
		char ch = key[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '_')) {
			snprintf(err, errlen, "the Stripe API key contains a character that is not "
			    "a letter, digit or underscore (at offset %zu)", i);
			return -1;
		}
	}
	return 0;
}

void stripe_key_mask(const char *key, char *out, size_t len)
{
	size_t plen, n;

	if (out == NULL || len == 0)
		return;
	if (key == NULL || (plen = stripe_key_prefix_len(key)) == 0) {
		if (key && strncmp(key, "pk_", 3) == 0)
			snprintf(out, len, "pk_...");
		else
			snprintf(out, len, "***");
		return;
	}
	n = strlen(key);
	/* Show the last four only when at least eight more stay hidden. */
	if (n >= plen + 12)
		snprintf(out, len, "%.*s...%s", (int)plen, key, key + n - 4);
	else
		snprintf(out, len, "%.*s...", (int)plen, key);
}

bool stripe_key_livemode(const char *key)
{
	return key != NULL && (strncmp(key, "sk_live_", 8) == 0 || strncmp(key, "rk_live_", 8) == 0);
}

int stripe_key_load(const char *file, const struct sm_secret_who *who, const char *inline_key,
    char *out, size_t outlen, char *err, size_t errlen)
{
	const char *src = NULL;
	int rc = -1;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (file && *file) {
		char why[512];

		if (sm_secret_read(file, who, out, outlen, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "key file %s", why);
			goto out;
		}
	} else {
		src = inline_key && *inline_key ? inline_key : getenv("STRIPE_API_KEY");
		if (src == NULL || *src == '\0') {
			snprintf(err, errlen, "no Stripe API key: set a key file, a key, or STRIPE_API_KEY");
			goto out;
		}
		if (strlen(src) >= outlen) {
			snprintf(err, errlen, "the Stripe API key is too long");
			goto out;
		}
		sm_strlcpy(out, src, outlen);
	}
	if (stripe_key_check(out, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		explicit_bzero(out, outlen);
	return rc;
}
