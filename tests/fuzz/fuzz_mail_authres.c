/*
 * fuzz_mail_authres.c - libFuzzer harness for the RFC 8601 Authentication-Results gate.
 *
 * Checks beyond "no crash": the gate never passes for a value that does not name the trusted
 * authserv-id and a pass; the trust callback only ever sees a NUL-terminated id that occurs
 * in the input (quotes and quoted-pairs removed, so only its bytes are checked).
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool trusted(void *arg, const char *id)
{
	(void)arg;
	if (strlen(id) > 8192)
		abort();
	return strcasecmp(id, "mx.example.net") == 0;
}

/* The input without backslashes: a quoted-pair ("mx.\example.net") names the same id as
 * its character, so the id is looked for in this. */
static void unescape(const char *in, char *out)
{
	for (; *in; in++)
		if (*in != '\\')
			*out++ = *in;
	*out = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *plain = malloc(size + 1);
	bool pass;

	if (in == NULL || plain == NULL) {
		free(in);
		free(plain);
		return 0;
	}
	memcpy(in, data, size);
	in[size] = '\0';
	unescape(in, plain);
	pass = mail_authres_dmarc_pass(in, trusted, NULL, "example.com", true);
	if (pass && (strcasestr(plain, "mx.example.net") == NULL || strcasestr(in, "pass") == NULL))
		abort();
	(void)mail_authres_dmarc_pass(in, trusted, NULL, "a.b", false);
	if (mail_authres_dmarc_pass(in, NULL, NULL, "example.com", true))
		abort();
	free(in);
	free(plain);
	return 0;
}
