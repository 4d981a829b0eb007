/*
 * test_text.c - free text in headers (mail_text.c): sanitising, the plain-or-encoded choice,
 * RFC 2047 encoded words decoded back by an oracle of this file, folding.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail.h"
#include "tests/harness/th.h"

/* Decodes one "=?UTF-8?X?...?=" word (test oracle). */
static size_t decode_word(const char *w, size_t n, char *out)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = w + 10, *end = w + n - 2;
	size_t o = 0;

	ck_assert_msg(n <= 75 && strncmp(w, "=?UTF-8?", 8) == 0 && strncmp(end, "?=", 2) == 0,
	    "bad word %.*s", (int)n, w);
	if (w[8] == 'Q') {
		for (; p < end; p++) {
			if (*p == '_') {
				out[o++] = ' ';
			} else if (*p == '=') {
				char hex[3] = { p[1], p[2], 0 };

				out[o++] = (char)strtol(hex, NULL, 16);
				p += 2;
			} else {
				out[o++] = *p;
			}
		}
		return o;
	}
	for (; p + 3 < end + 1 && p < end; p += 4) {
		unsigned long v = 0;
		int i, pad = 0;

		for (i = 0; i < 4; i++) {
			const char *c = strchr(b64, p[i]);

			if (p[i] == '=')
				pad++;
			v = v << 6 | (c != NULL && p[i] != '=' ? (unsigned long)(c - b64) : 0);
		}
		out[o++] = (char)(v >> 16);
		if (pad < 2)
			out[o++] = (char)(v >> 8);
		if (pad < 1)
			out[o++] = (char)v;
	}
	return o;
}

/* Decodes a value of encoded words separated by white space (" " or "\n\t"). */
static void decode_all(const char *enc, char *dec)
{
	const char *p = enc;
	size_t d = 0;

	while (*p != '\0') {
		size_t wl = strcspn(p, " \n\t");

		d += decode_word(p, wl, dec + d);
		p += wl;
		p += strspn(p, " \n\t");
	}
	dec[d] = '\0';
}

START_TEST(round_trip)
{
	static const char *const texts[] = {
		"Jürgen Müller", "田中太郎", "Ελληνικά κείμενα με πολλές λέξεις εδώ και εκεί",
		"emoji 😀 and more 😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
		"ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé", "a_b=c?d é",
		"=?UTF-8?Q?X-Stripe-Lookup:_found?=", " lead and trail ", "tab\there",
		"\xe2\x80\xae bidi \xe2\x81\xa6override", "; delinquent=no; status=active",
	};
	char out[2048], dec[2048];
	size_t i, col;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		size_t n = mail_ew_encode(texts[i], strlen(texts[i]), 75, " ", out, sizeof(out));

		ck_assert_uint_eq(n, strlen(out));
		decode_all(out, dec);
		ck_assert_msg(strcmp(dec, texts[i]) == 0, "round trip [%s] -> [%s] -> [%s]", texts[i],
		    out, dec);
		for (col = 0; col < 120; col += 17) {
			int v = mail_text_value(texts[i], strlen(texts[i]), col, 900, out, sizeof(out));

			ck_assert_int_gt(v, 0);
			ck_assert_msg(strncmp(out, "=?UTF-8?", 8) == 0, "not encoded: [%s]", out);
			decode_all(out, dec);
			ck_assert_msg(strcmp(dec, texts[i]) == 0, "value [%s] -> [%s] -> [%s]",
			    texts[i], out, dec);
			/* lines within 78 columns when the first line has room for a word */
			if (col + MAIL_EW_MIN <= MAIL_FOLD_COLUMN) {
				const char *p = out;
				size_t c = col;

				while (*p != '\0') {
					size_t ln = strcspn(p, "\n");

					ck_assert_msg(c + ln <= MAIL_FOLD_COLUMN, "line too long [%s]", out);
					p += ln;
					if (*p == '\n')
						p++;
					c = 0;
				}
			}
		}
	}
}
END_TEST

START_TEST(plain_or_encoded)
{
	char out[512];

	ck_assert(mail_text_plain_ok("Jenny Rosen", 11));
	ck_assert(mail_text_plain_ok("O'Brien & Sons (Pty) Ltd. #2, ok?", 33));
	ck_assert(!mail_text_plain_ok("", 0));
	ck_assert(!mail_text_plain_ok(" a", 2));
	ck_assert(!mail_text_plain_ok("a ", 2));
	ck_assert(!mail_text_plain_ok("a  b", 4));
	ck_assert(!mail_text_plain_ok("a;b", 3));
	ck_assert(!mail_text_plain_ok("a=b", 3));
	ck_assert(!mail_text_plain_ok("a\"b", 3));
	ck_assert(!mail_text_plain_ok("X-Stripe-Lookup: found", 22));
	ck_assert(!mail_text_plain_ok("a\\b", 3));
	ck_assert(!mail_text_plain_ok("a\tb", 3));
	ck_assert(!mail_text_plain_ok("a\x7f", 2));
	ck_assert(!mail_text_plain_ok("\xc3\xa9", 2));
	ck_assert_int_eq(mail_text_value("Jenny Rosen", 11, 15, 900, out, sizeof(out)), 11);
	ck_assert_str_eq(out, "Jenny Rosen");
	/* plain only when it fits the first line */
	ck_assert_int_eq(mail_text_value("Jenny Rosen", 11, 70, 900, out, sizeof(out)), 23);
	ck_assert_str_eq(out, "=?UTF-8?Q?Jenny_Rosen?=");
	/* CR and LF removed, then harmless: plain */
	ck_assert_int_eq(mail_text_value("Jen\r\nny", 7, 15, 900, out, sizeof(out)), 5);
	ck_assert_str_eq(out, "Jenny");
	/* empty, or only CR LF: nothing */
	ck_assert_int_eq(mail_text_value("\r\n", 2, 15, 900, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(mail_text_value(NULL, 0, 15, 900, out, sizeof(out)), 0);
	ck_assert_int_eq(mail_text_value("x", 1, 15, 900, NULL, 0), -1);
	/* len bounds the input; a NUL ends it */
	ck_assert_int_eq(mail_text_value("abcdef", 3, 15, 900, out, sizeof(out)), 3);
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(mail_text_value("ab\0cd", 5, 15, 900, out, sizeof(out)), 2);
	/* cap: shortened at a character boundary; outlen bounds the cap */
	ck_assert_int_eq(mail_text_value("Jürgen", 7, 15, 20, out, sizeof(out)), 20);
	ck_assert_str_eq(out, "=?UTF-8?B?SsO8cmdl?=");	/* "Jürge" */
	ck_assert_int_eq(mail_text_value("Jürgen", 7, 15, 900, out, 16), 1);
	ck_assert_str_eq(out, "J");	/* the prefix that fits is harmless ASCII: plain */
	ck_assert_int_eq(mail_text_value("üüü", 6, 15, 900, out, 10), -1);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(invalid_utf8_replaced)
{
	static const char *const cases[][2] = {
		{ "a\xe2\x82", "a\xef\xbf\xbd\xef\xbf\xbd" },		/* truncated */
		{ "\xe2\x28\xa1x", "\xef\xbf\xbd(\xef\xbf\xbdx" },	/* bad continuation */
		{ "\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },	/* overlong */
		{ "\xc1\xbf", "\xef\xbf\xbd\xef\xbf\xbd" },		/* overlong 2-byte */
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },	/* surrogate */
		{ "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!" },		/* valid 4-byte */
		{ "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf" },		/* U+10FFFF */
	};
	char enc[512], dec[512], clean[64];
	size_t i;
	bool ascii = true;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_gt(mail_text_value(cases[i][0], strlen(cases[i][0]), 15, 900, enc,
		    sizeof(enc)), 0);
		decode_all(enc, dec);
		ck_assert_msg(strcmp(dec, cases[i][1]) == 0, "case %zu: [%s] decodes to [%s]", i, enc,
		    dec);
	}
	ck_assert_uint_eq(mail_utf8_sanitize("a\r\nb\xff", 5, clean, sizeof(clean), &ascii), 5);
	ck_assert_str_eq(clean, "ab\xef\xbf\xbd");
	ck_assert(!ascii);
	/* never a cut character: stops before one that does not fit */
	ck_assert_uint_eq(mail_utf8_sanitize("ab\xc3\xa9", 4, clean, 4, &ascii), 2);
	ck_assert(ascii);
	ck_assert_uint_eq(mail_utf8_sanitize("x", 1, clean, 0, NULL), 0);
}
END_TEST

START_TEST(encoded_word_limits)
{
	char big[300], out[2048];
	size_t i, n;
	const char *p;

	for (i = 0; i < 100; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	big[200] = '\0';
	/* first word sized by first_max, raised to MAIL_EW_MIN; every word <= 75 */
	n = mail_ew_encode(big, 200, 5, "|", out, sizeof(out));
	ck_assert_uint_eq(n, strlen(out));
	ck_assert_uint_le(strcspn(out, "|"), MAIL_EW_MIN);
	for (p = out; *p != '\0'; p += strcspn(p, "|"), p += *p == '|') {
		ck_assert_uint_le(strcspn(p, "|"), MAIL_EW_MAX);
		ck_assert_int_eq(strncmp(p, "=?UTF-8?", 8), 0);
	}
	/* measuring without writing; no room: nothing written */
	ck_assert_uint_eq(mail_ew_encode(big, 200, 5, "|", NULL, 0), n);
	strcpy(out, "junk");
	ck_assert_uint_eq(mail_ew_encode(big, 200, 5, "|", out, 10), n);
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(mail_ew_encode("", 0, 75, NULL, out, sizeof(out)), 0);
}
END_TEST

START_TEST(fold_at_marks)
{
	char out[256];
	const char *in = "window=90d;\001count=3;\001succeeded=2;\001failed=1;\001refunded=0;\001"
	    "disputed=0;\001total=98.00 USD";

	ck_assert_uint_eq(mail_fold(in, strlen(in), 18, out, sizeof(out)), strlen(out));
	ck_assert_str_eq(out, "window=90d; count=3; succeeded=2; failed=1; refunded=0;\n"
	    "\tdisputed=0; total=98.00 USD");
	/* whole segments only */
	mail_fold(in, strlen(in), 18, out, 30);
	ck_assert_str_eq(out, "window=90d; count=3;");
	ck_assert_uint_eq(mail_fold(in, strlen(in), 18, out, 0), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mail_text");
	TCase *tc = tcase_create("text");

	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, plain_or_encoded);
	tcase_add_test(tc, invalid_utf8_replaced);
	tcase_add_test(tc, encoded_word_limits);
	tcase_add_test(tc, fold_at_marks);
	suite_add_tcase(s, tc);
	return th_run(s);
}
