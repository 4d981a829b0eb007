/*
 * fuzz_mail_text.c - libFuzzer harness for free text in headers (mail_text_value).
 *
 * The first byte picks the start column and the cap; the rest is the text. Checks beyond
 * "no crash": the value is printable US-ASCII with "\n\t" as the only line break, at most
 * the cap; a value that is not encoded words is exactly the sanitised text and passes
 * mail_text_plain_ok(); encoded words are at most 75 characters each; the same input gives
 * the same value.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[2048], again[2048], clean[MAIL_TEXT_MAX];
	size_t col, cap, i, n;
	int v;

	if (size < 1)
		return 0;
	col = data[0] & 0x7f;
	cap = 16 + (size_t)(data[0] >> 7) * 1000;
	data++;
	size--;
	v = mail_text_value((const char *)data, size, col, cap, out, sizeof(out));
	if (v < -1 || (v >= 0 && ((size_t)v != strlen(out) || (size_t)v > cap)))
		abort();
	if (v <= 0)
		return 0;
	for (i = 0; out[i] != '\0'; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c == '\n' && out[i + 1] == '\t') {
			i++;
			continue;
		}
		if (c < 0x20 || c >= 0x7f)
			abort();
	}
	if (strncmp(out, "=?UTF-8?", 8) != 0) {
		n = mail_utf8_sanitize((const char *)data, size, clean, sizeof(clean), NULL);
		if (!mail_text_plain_ok(out, (size_t)v) || strncmp(clean, out, (size_t)v) != 0 ||
		    (size_t)v > n)
			abort();
	} else {
		const char *p = out;

		while (*p != '\0') {
			size_t wl = strcspn(p, "\n\t");

			if (wl > MAIL_EW_MAX || strncmp(p, "=?UTF-8?", 8) != 0 ||
			    strncmp(p + wl - 2, "?=", 2) != 0)
				abort();
			p += wl;
			p += strspn(p, "\n\t");
		}
	}
	if (mail_text_value((const char *)data, size, col, cap, again, sizeof(again)) != v ||
	    strcmp(out, again) != 0)
		abort();
	return 0;
}
