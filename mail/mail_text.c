/*
 * mail_text.c - free text in header fields: UTF-8 sanitising, RFC 2047 encoded words, and
 * folding of structured values.
 *
 * Sanitising: invalid UTF-8 (overlong, surrogate, > U+10FFFF, truncated, stray
 * continuation) becomes U+FFFD per bad byte; CR and LF are removed; a NUL ends the text.
 * Nothing else changes: a tab, a bidi override or a look-alike "=?...?=" stays part of the
 * text (it is encoded, never passed through).
 *
 * Plain or encoded (mail_text_plain_ok): text stands as itself in an unstructured field only
 * when it is printable US-ASCII without '"', ';', '=', ':', '\' (so no "=?" and nothing that
 * reads like a token "key=value" or a header line "Name: value"), without leading, trailing
 * or doubled spaces (which unfolding and trimming readers would change), and not empty.
 * Anything else is encoded.
 *
 * Encoded words (RFC 2047 section 2-5): "=?UTF-8?Q?...?=" or "=?UTF-8?B?...?=", whichever
 * is shorter for the whole text (Q on a tie); in Q only letters, digits and "!*+-/" are
 * literal (the section 5 (3) set), space is "_", everything else "=XX", so a word never
 * holds '"', ';', ' ', '?' or '='-pairs a reader could misparse. Words are at most 75
 * characters and split only at character boundaries (section 5: each word decodes to
 * whole characters), so decoding word by word and concatenating gives the text back
 * exactly (white space between adjacent encoded words is ignored, section 6.2).
 *
 * Folding: a free-text value is folded before each encoded word after the first ("\n\t",
 * libmilter's form), the first word sized to what is left of the first line, so lines are at
 * most 78 columns unless the field name alone is longer; structured values are folded at
 * MAIL_FOLD marks by mail_fold().
 *
 * Interface: see mail.h. Pure functions, no allocation; thread-safe.
 * Diagnostics: none; lengths and -1 say what happened.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "mail/mail.h"

#define MAIL_EW_OVERHEAD	12	/* "=?UTF-8?Q?" + "?=" */

/* ---- UTF-8 ---- */

/* Decodes one UTF-8 sequence at p (n bytes left). Returns its length and sets *cp, or 0 for
 * an invalid sequence (overlong, surrogate, > U+10FFFF, truncated). */
static size_t mail_utf8_decode(const unsigned char *p, size_t n, unsigned long *cp)
{
	size_t len, i;
	unsigned long c, min;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2; c = p[0] & 0x1f; min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3; c = p[0] & 0x0f; min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4; c = p[0] & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

size_t mail_utf8_sanitize(const char *in, size_t len, char *out, size_t outlen, bool *ascii)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, o = 0;
	bool all_ascii = true;

	if (outlen == 0)
		return 0;
	while (in != NULL && i < len && p[i] != '\0') {
		unsigned long cp;
		size_t n = mail_utf8_decode(p + i, len - i, &cp);
		const char *src = (const char *)p + i;
		size_t srclen = n;

		if (n == 0) {
			cp = 0xfffd;
			src = "\xef\xbf\xbd";
			srclen = 3;
			n = 1;
		}
		i += n;
		if (cp == '\r' || cp == '\n')
			continue;
		if (o + srclen >= outlen)
			break;
		memcpy(out + o, src, srclen);
		o += srclen;
		if (cp >= 0x80)
			all_ascii = false;
	}
	out[o] = '\0';
	if (ascii != NULL)
		*ascii = all_ascii;
	return o;
}

bool mail_text_plain_ok(const char *text, size_t len)
{
	size_t i;

	if (text == NULL || len == 0 || text[0] == ' ' || text[len - 1] == ' ')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == ';' || c == '=' || c == ':' || c == '\\')
			return false;
		if (c == ' ' && text[i + 1] == ' ')
			return false;
	}
	return true;
}

/* ---- RFC 2047 ---- */

static bool mail_q_literal(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

/* Length of the character at p (valid UTF-8 assumed; never more than n). */
static size_t mail_char_len(const unsigned char *p, size_t n)
{
	size_t cl = p[0] < 0x80 ? 1 : p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;

	return cl > n ? n : cl;
}

static size_t mail_q_len(const unsigned char *p, size_t n)
{
	size_t i, len = 0;

	for (i = 0; i < n; i++)
		len += (mail_q_literal(p[i]) || p[i] == ' ') ? 1 : 3;
	return len;
}

/* Writes n bytes at *o when they fit (leaving room for a NUL); always advances *o. */
static void mail_put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	if (out != NULL && *o + n < outlen)
		memcpy(out + *o, s, n);
	*o += n;
}

static void mail_q_put(char *out, size_t outlen, size_t *o, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		char e[3];

		if (p[i] == ' ') {
			mail_put(out, outlen, o, "_", 1);
		} else if (mail_q_literal(p[i])) {
			mail_put(out, outlen, o, (const char *)p + i, 1);
		} else {
			e[0] = '=';
			e[1] = hex[p[i] >> 4];
			e[2] = hex[p[i] & 15];
			mail_put(out, outlen, o, e, 3);
		}
	}
}

static void mail_b64_put(char *out, size_t outlen, size_t *o, const unsigned char *p, size_t n)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i < n; i += 3) {
		unsigned long v = (unsigned long)p[i] << 16;
		char e[4];

		if (i + 1 < n)
			v |= (unsigned long)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		e[0] = b64[(v >> 18) & 63];
		e[1] = b64[(v >> 12) & 63];
		e[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		e[3] = i + 2 < n ? b64[v & 63] : '=';
		mail_put(out, outlen, o, e, 4);
	}
}

/* One form (B or Q) of the whole text. Returns the length needed; writes when out != NULL
 * and it fits. A character that fits in no word (first_max too small) is put in a word of
 * its own anyway: never an endless loop, never a split character. */
static size_t mail_ew_form(const char *text, size_t len, bool b, size_t first_max,
    const char *sep, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = 0, o = 0, max = first_max;

	while (i < len) {
		size_t start = i, used = 0, room = max - MAIL_EW_OVERHEAD;

		while (i < len) {
			size_t cl = mail_char_len(p + i, len - i);
			size_t add = b ? 0 : mail_q_len(p + i, cl);

			if (i > start && b && ((i - start + cl + 2) / 3) * 4 > room)
				break;
			if (i > start && !b && used + add > room)
				break;
			used += add;
			i += cl;
		}
		if (o > 0)
			mail_put(out, outlen, &o, sep, strlen(sep));
		mail_put(out, outlen, &o, b ? "=?UTF-8?B?" : "=?UTF-8?Q?", 10);
		if (b)
			mail_b64_put(out, outlen, &o, p + start, i - start);
		else
			mail_q_put(out, outlen, &o, p + start, i - start);
		mail_put(out, outlen, &o, "?=", 2);
		max = MAIL_EW_MAX;
	}
	if (out != NULL && o < outlen)
		out[o] = '\0';
	return o;
}

size_t mail_ew_encode(const char *utf8, size_t len, size_t first_max, const char *sep,
    char *out, size_t outlen)
{
	size_t q, b, need;

	if (first_max > MAIL_EW_MAX)
		first_max = MAIL_EW_MAX;
	if (first_max < MAIL_EW_MIN)
		first_max = MAIL_EW_MIN;
	if (sep == NULL)
		sep = " ";
	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (utf8 == NULL || len == 0)
		return 0;
	q = mail_ew_form(utf8, len, false, first_max, sep, NULL, 0);
	b = mail_ew_form(utf8, len, true, first_max, sep, NULL, 0);
	need = b < q ? b : q;
	if (out != NULL && need < outlen)
		mail_ew_form(utf8, len, b < q, first_max, sep, out, outlen);
	return need;
}

/* The value for clean text of n bytes: plain, or encoded words folded with "\n\t". */
static size_t mail_text_form(const char *clean, size_t n, size_t col, char *out, size_t outlen)
{
	size_t first = MAIL_FOLD_COLUMN > col ? MAIL_FOLD_COLUMN - col : 0;

	if (mail_text_plain_ok(clean, n) && col + n <= MAIL_FOLD_COLUMN) {
		if (out != NULL && n < outlen)
			memcpy(out, clean, n + 1);
		return n;
	}
	return mail_ew_encode(clean, n, first, "\n\t", out, outlen);
}

int mail_text_value(const char *text, size_t len, size_t col, size_t cap, char *out, size_t outlen)
{
	char clean[MAIL_TEXT_MAX];
	size_t n, lo, hi;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (cap >= outlen)
		cap = outlen - 1;
	n = mail_utf8_sanitize(text, len, clean, sizeof(clean), NULL);
	if (n == 0)
		return 0;
	if (mail_text_form(clean, n, col, NULL, 0) > cap) {
		/* A prefix that fits, cut at a character boundary: binary search with "prefix lo
		 * fits (or is empty), prefix hi does not". */
		lo = 0;
		hi = n;
		while (hi - lo > 1) {
			size_t b = lo + (hi - lo) / 2;

			while (b > lo && ((unsigned char)clean[b] & 0xc0) == 0x80)
				b--;
			if (b == lo) {
				b = lo + (hi - lo) / 2;
				while (b < hi && ((unsigned char)clean[b] & 0xc0) == 0x80)
					b++;
				if (b == hi)
					break;
			}
			if (mail_text_form(clean, b, col, NULL, 0) <= cap)
				lo = b;
			else
				hi = b;
		}
		n = lo;
		clean[n] = '\0';
		if (n == 0)
			return -1;
	}
	return (int)mail_text_form(clean, n, col, out, outlen);
}

/* ---- folding structured values ---- */

size_t mail_fold(const char *in, size_t len, size_t col, char *out, size_t outlen)
{
	const char *p = in, *end = in + len;
	size_t o = 0;
	bool first = true;

	if (outlen == 0)
		return 0;
	out[0] = '\0';
	while (p < end) {
		const char *m = memchr(p, MAIL_FOLD, (size_t)(end - p));
		size_t seg = m != NULL ? (size_t)(m - p) : (size_t)(end - p);
		bool fold = !first && col + 1 + seg > MAIL_FOLD_COLUMN;
		size_t sep = first ? 0 : (fold ? 2 : 1);

		if (o + sep + seg >= outlen)
			break;
		if (!first) {
			memcpy(out + o, fold ? "\n\t" : " ", sep);
			o += sep;
			col = fold ? 1 : col + 1;
		}
		memcpy(out + o, p, seg);
		o += seg;
		col += seg;
		first = false;
		p += seg + (m != NULL);
	}
	out[o] = '\0';
	return o;
}
