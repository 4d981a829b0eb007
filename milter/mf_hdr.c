/*
 * mf_hdr.c - the header contract: a lookup result as X-Stripe-* header lines.
 *
 * Interface: see mf_hdr.h. This comment is the header contract's reference.
 *
 * Lines, in this order (prefix "X-Stripe-" configurable; groups configurable):
 *	Lookup			found; cache=hit; age=120; mode=live[; stale=yes][; error=<class>]
 *				[; missing=charges,plan-names][; from-count=2]
 *				not-found; cache=miss; mode=test
 *				error=<class>          (no data to show)
 *				skipped=<reason>
 *		age= is shown when the data came from a cache (cache is not "miss"). Stale data
 *		served because Stripe failed reads "found; cache=stale; age=...; mode=...;
 *		stale=yes; error=timeout", so "^found" still means customer data follows (the
 *		caller may pass that as state FOUND or ERROR with stale set and the summary).
 *	Customer-Id		cus_NffrFeUfNV2Hib
 *	Customer		name="Jenny Rosen"; created=2024-03-01; delinquent=no;
 *				balance=0.00 USD; matches=1
 *	Subscription-Status	active         (best status over all subscriptions, or none)
 *	Subscription		plan="Pro"; amount=49.00 USD/month; status=active;
 *				period_end=2026-12-01; cancel_at_period_end=no
 *				[; trial_end=D (trialing)][; cancel_at=D][; quantity=N][; items=N]
 *				(one line per subscription, best first, up to max_subs)
 *	Charges			window=90d; count=3; succeeded=2; failed=1; refunded=0; disputed=0;
 *				total=98.00 USD; last=2026-11-20 failed card_declined
 *				[; pending=N][; partially_refunded=N][; truncated=yes]
 *				(several currencies: total=98.00 USD, 10.00 EUR; none: total=0)
 *	Metadata		key=value; key="two words"; ...
 *
 * Stripe data is untrusted. Ids that are not [A-Za-z0-9_]+ are dropped (and so is their
 * line). Status words, intervals and failure codes that are not [a-z0-9_]+ are dropped.
 * Free text (names, plan names, metadata values) is cleaned: invalid UTF-8 becomes U+FFFD,
 * control characters (C0, DEL, C1, U+2028/2029) become spaces, bidi overrides and BOMs are
 * removed, white space runs collapse to one space, ends are trimmed.
 *
 * Free text forms: ASCII text is a quoted string with '"' and '\' escaped
 * (name="Jenny \"JR\" Rosen"); metadata values that are plain tokens stay bare (tier=gold).
 * Non-ASCII text is RFC 2047 encoded words, UNQUOTED, separated from the key and from the
 * next ';' by a space, because RFC 2047 forbids encoded words inside quoted strings and
 * requires white space around them in unstructured fields:
 *	name= =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= ; created=2024-03-01; delinquent=no; ...
 * Q or B encoding, whichever is shorter; words of at most 75 characters, split on UTF-8
 * character boundaries. Encoded words never contain ';', '"' or spaces, so a regex for
 * "delinquent=yes" or "status=past_due" never needs decoding.
 *
 * Folding: "\n\t" (libmilter's form; no CR) is put only after a "; " separator or between
 * encoded words, so that no token is ever split; lines are folded at 78 columns where the
 * tokens allow (a long quoted ASCII name stays on one line). The cap (max_value, default 900,
 * at most 1023) counts the folded value; free text is shortened first (at a character
 * boundary) so that the status fields after it fit, then whole trailing items are dropped.
 *
 * Privacy mode: only Lookup, Subscription-Status and "Customer: delinquent=yes|no" (if those
 * groups are on). No ids (they identify a person as much as a name does), names, amounts,
 * dates, charges or metadata.
 *
 * Diagnostics: mf_hdr_render() returns -1 only for an unusable prefix; Stripe data never
 * makes it fail (bad parts are dropped).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/sm_util.h"
#include "milter/mf_hdr.h"

#define MF_FOLD		'\001'	/* in a line under construction: a space that may fold */
#define MF_LINE_MAX	2048
#define MF_TEXT_MAX	(3 * STRIPE_TEXT_MAX + 4)	/* cleaned text: U+FFFD may triple bytes */
#define MF_EW_MAX	75

static const char mf_default_prefix[] = "X-Stripe-";

/* A value under construction: items separated by ";" + MF_FOLD. */
struct mf_line {
	char b[MF_LINE_MAX];
	size_t len;
	bool overflow;
	bool last_ew;	/* the last item ended with an encoded word: needs " ;" */
	int items;
};

/* ---- text cleaning and encoding ---- */

/* Decodes one UTF-8 sequence at p (n bytes left). Returns its length and sets *cp, or 0 for
 * an invalid sequence (overlong, surrogate, > U+10FFFF, truncated). */
static size_t mf_utf8_decode(const unsigned char *p, size_t n, unsigned long *cp)
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

static bool mf_cp_is_space(unsigned long c)
{
	return c < 0x20 || c == ' ' || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029;
}

static bool mf_cp_is_removed(unsigned long c)
{
	return c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
	    (c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

/* Cleans in[0..len) (stopping at a NUL) into out; returns the length; *ascii says whether
 * the result is all ASCII. Never cuts a character: stops when the next one does not fit. */
static size_t mf_text_clean(const char *in, size_t len, char *out, size_t outlen, bool *ascii)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, o = 0;
	bool pending_space = false;

	*ascii = true;
	if (outlen == 0)
		return 0;
	while (i < len && p[i] != '\0') {
		unsigned long cp;
		size_t n = mf_utf8_decode(p + i, len - i, &cp);
		const char *src = (const char *)p + i;
		size_t srclen = n;

		if (n == 0) {
			cp = 0xfffd;
			src = "\xef\xbf\xbd";
			srclen = 3;
			n = 1;
		}
		i += n;
		if (mf_cp_is_removed(cp))
			continue;
		if (mf_cp_is_space(cp)) {
			pending_space = o > 0;
			continue;
		}
		if (o + pending_space + srclen >= outlen)
			break;
		if (pending_space)
			out[o++] = ' ';
		pending_space = false;
		memcpy(out + o, src, srclen);
		o += srclen;
		if (cp >= 0x80)
			*ascii = false;
	}
	out[o] = '\0';
	return o;
}

static bool mf_q_literal(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t mf_utf8_seq_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	return 2;
}

/* Encoded length of one character in Q. */
static size_t mf_q_len(const unsigned char *p, size_t n)
{
	size_t i, len = 0;

	for (i = 0; i < n; i++)
		len += (mf_q_literal(p[i]) || p[i] == ' ') ? 1 : 3;
	return len;
}

static void mf_put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	if (*o + n < outlen)
		memcpy(out + *o, s, n);
	*o += n;
}

static void mf_q_put(char *out, size_t outlen, size_t *o, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		char e[3];

		if (p[i] == ' ') {
			mf_put(out, outlen, o, "_", 1);
		} else if (mf_q_literal(p[i])) {
			mf_put(out, outlen, o, (const char *)p + i, 1);
		} else {
			e[0] = '=';
			e[1] = hex[p[i] >> 4];
			e[2] = hex[p[i] & 15];
			mf_put(out, outlen, o, e, 3);
		}
	}
}

static void mf_b64_put(char *out, size_t outlen, size_t *o, const unsigned char *p, size_t n)
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
		mf_put(out, outlen, o, e, 4);
	}
}

/* Writes clean text (non-empty UTF-8) as encoded words separated by sep. Returns the length
 * the output needs; writes only when it fits (and NUL-terminates then). */
static size_t mf_ew_encode(const char *text, size_t len, bool b, char sep, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)text;
	const size_t room = MF_EW_MAX - 12;	/* "=?UTF-8?Q?" + "?=" */
	size_t i = 0, o = 0;

	while (i < len) {
		size_t start = i, used = 0;

		while (i < len) {
			size_t cl = mf_utf8_seq_len(p[i]);
			size_t add;

			if (cl > len - i)
				cl = len - i;
			add = b ? 0 : mf_q_len(p + i, cl);
			if (b && ((i - start + cl + 2) / 3) * 4 > room)
				break;
			if (!b && used + add > room)
				break;
			used += add;
			i += cl;
		}
		if (i == start)
			break;
		if (o > 0)
			mf_put(out, outlen, &o, &sep, 1);
		mf_put(out, outlen, &o, b ? "=?UTF-8?B?" : "=?UTF-8?Q?", 10);
		if (b)
			mf_b64_put(out, outlen, &o, p + start, i - start);
		else
			mf_q_put(out, outlen, &o, p + start, i - start);
		mf_put(out, outlen, &o, "?=", 2);
	}
	if (o < outlen)
		out[o] = '\0';
	return o;
}

/* The shorter of the Q and B forms (Q on a tie). Returns the length needed. */
static size_t mf_ew_best(const char *text, size_t len, char sep, char *out, size_t outlen)
{
	size_t q = mf_ew_encode(text, len, false, sep, NULL, 0);
	size_t b = mf_ew_encode(text, len, true, sep, NULL, 0);

	return mf_ew_encode(text, len, b < q, sep, out, outlen);
}

/* Length of the quoted-string form of ASCII text. */
static size_t mf_quoted_len(const char *text, size_t len)
{
	size_t i, n = 2;

	for (i = 0; i < len; i++)
		n += (text[i] == '"' || text[i] == '\\') ? 2 : 1;
	return n;
}

static size_t mf_rendered_len(const char *text, size_t len, bool ascii)
{
	return ascii ? mf_quoted_len(text, len) : mf_ew_best(text, len, MF_FOLD, NULL, 0);
}

static size_t mf_floor_boundary(const char *text, size_t pos)
{
	while (pos > 0 && ((unsigned char)text[pos] & 0xc0) == 0x80)
		pos--;
	return pos;
}

/* Cuts clean text (NUL-terminated at len) so that its rendered form fits in budget: a
 * binary search over cut positions, each rounded down to a character boundary (the rendered
 * length grows with the cut). Returns the new length, trailing spaces trimmed. */
static size_t mf_text_fit(const char *text, size_t len, bool ascii, size_t budget)
{
	size_t lo = 0, hi = len;

	if (mf_rendered_len(text, len, ascii) <= budget)
		return len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;

		if (mf_rendered_len(text, mf_floor_boundary(text, mid), ascii) <= budget)
			lo = mid;
		else
			hi = mid - 1;
	}
	lo = mf_floor_boundary(text, lo);
	while (lo > 0 && text[lo - 1] == ' ')
		lo--;
	return lo;
}

int mf_hdr_rfc2047(const char *utf8, size_t len, char *out, size_t outlen)
{
	char clean[MF_TEXT_MAX * 4];
	size_t n, need;
	bool ascii;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (utf8 == NULL)
		return 0;
	n = mf_text_clean(utf8, len, clean, sizeof(clean), &ascii);
	if (ascii) {
		if (n >= outlen)
			return -1;
		memcpy(out, clean, n + 1);
		return (int)n;
	}
	need = mf_ew_best(clean, n, ' ', NULL, 0);
	if (need >= outlen)
		return -1;
	mf_ew_best(clean, n, ' ', out, outlen);
	return (int)need;
}

/* ---- line building ---- */

static void mf_line_raw(struct mf_line *l, const char *p, size_t n)
{
	if (n >= sizeof(l->b) - l->len) {
		l->overflow = true;
		return;
	}
	memcpy(l->b + l->len, p, n);
	l->len += n;
	l->b[l->len] = '\0';
}

static void mf_line_vraw(struct mf_line *l, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void mf_line_vraw(struct mf_line *l, const char *fmt, va_list ap)
{
	char tmp[MF_LINE_MAX];
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);

	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		l->overflow = true;
		return;
	}
	mf_line_raw(l, tmp, (size_t)n);
}

/* Appends ", money" to the current item. */
static void mf_line_vraw_sep(struct mf_line *l, const char *money)
{
	mf_line_raw(l, ", ", 2);
	mf_line_raw(l, money, strlen(money));
}

/* Starts an item: the separator (when not the first) then the formatted text. */
static void mf_line_item(struct mf_line *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void mf_line_item(struct mf_line *l, const char *fmt, ...)
{
	va_list ap;

	if (l->items++ > 0)
		mf_line_raw(l, l->last_ew ? " ;\001" : ";\001", l->last_ew ? 3 : 2);
	l->last_ew = false;
	va_start(ap, fmt);
	mf_line_vraw(l, fmt, ap);
	va_end(ap);
}

/* Appends the items of another line (built separately to measure it). */
static void mf_line_cat(struct mf_line *l, const struct mf_line *rest)
{
	if (rest->items == 0)
		return;
	if (l->items > 0)
		mf_line_raw(l, l->last_ew ? " ;\001" : ";\001", l->last_ew ? 3 : 2);
	mf_line_raw(l, rest->b, rest->len);
	l->items += rest->items;
	l->last_ew = rest->last_ew;
	l->overflow |= rest->overflow;
}

static bool mf_token_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("._:/+@-", c) != NULL) || c == '\0')
			return false;
	}
	return n > 0;
}

/* A text item: key="ascii" or key= =?...?= (encoded), shortened to budget (the rendered
 * value). bare_tokens: a plain token value is written without quotes. Nothing is written
 * for text that cleans to "" unless keep_empty. */
static void mf_line_text(struct mf_line *l, const char *key, const char *text, size_t budget,
    bool bare_tokens, bool keep_empty)
{
	char clean[MF_TEXT_MAX];
	char enc[MF_LINE_MAX];
	size_t n, i, o = 0;
	bool ascii;

	n = mf_text_clean(text, strlen(text), clean, sizeof(clean), &ascii);
	n = mf_text_fit(clean, n, ascii, budget);
	clean[n] = '\0';
	if (n == 0) {
		if (keep_empty)
			mf_line_item(l, "%s=\"\"", key);
		return;
	}
	if (ascii && bare_tokens && mf_token_ok(clean, n)) {
		mf_line_item(l, "%s=%s", key, clean);
		return;
	}
	if (!ascii) {
		if (mf_ew_best(clean, n, MF_FOLD, enc, sizeof(enc)) >= sizeof(enc)) {
			l->overflow = true;
			return;
		}
		mf_line_item(l, "%s=\001%s", key, enc);
		l->last_ew = true;
		return;
	}
	enc[o++] = '"';
	for (i = 0; i < n && o + 3 < sizeof(enc); i++) {
		if (clean[i] == '"' || clean[i] == '\\')
			enc[o++] = '\\';
		enc[o++] = clean[i];
	}
	enc[o++] = '"';
	enc[o] = '\0';
	mf_line_item(l, "%s=%s", key, enc);
}

/* Folds a built line into out (at most cap bytes): MF_FOLD marks become " " or "\n\t". */
static void mf_fold(const char *name, const struct mf_line *l, size_t cap, char *out)
{
	size_t col = strlen(name) + 2, o = 0;
	const char *p = l->b, *end = l->b + l->len;
	bool first = true;

	out[0] = '\0';
	while (p < end) {
		const char *m = memchr(p, MF_FOLD, (size_t)(end - p));
		size_t seg = m != NULL ? (size_t)(m - p) : (size_t)(end - p);
		bool fold = !first && col + 1 + seg > MF_HDR_FOLD_COLUMN;
		size_t sep = first ? 0 : (fold ? 2 : 1);

		if (o + sep + seg > cap)
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
	/* A cut line must not end in a separator. */
	while (o > 0 && (out[o - 1] == ';' || out[o - 1] == ' ' || out[o - 1] == '\t' ||
	    out[o - 1] == '\n'))
		o--;
	out[o] = '\0';
}

/* ---- the lines ---- */

struct mf_ctx {
	const struct mf_hdr_opts *o;
	const char *prefix;
	size_t cap;
	struct mf_hdr_list *out;
};

static void mf_emit(struct mf_ctx *c, const char *suffix, const struct mf_line *l)
{
	struct mf_hdr *h;

	if (l->items == 0 || c->out->n >= MF_HDR_LINES_MAX)
		return;
	h = &c->out->h[c->out->n];
	snprintf(h->name, sizeof(h->name), "%s%s", c->prefix, suffix);
	mf_fold(h->name, l, c->cap, h->value);
	if (h->value[0] != '\0')
		c->out->n++;
}

static bool mf_word_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		    s[i] == '-') || i >= STRIPE_CODE_MAX)
			return false;
	return true;
}

static bool mf_id_ok(const char *s)
{
	size_t i;

	for (i = 0; i < STRIPE_ID_MAX && s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return i > 0 && i < STRIPE_ID_MAX;
}

static bool mf_date(int64_t t, char out[16])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || t > 253402300799LL || gmtime_r(&tt, &tm) == NULL)
		return false;
	return strftime(out, 16, "%Y-%m-%d", &tm) == 10;
}

static bool mf_money(const struct stripe_money *m, char *out, size_t len)
{
	size_t i;

	if (m->currency[0] == '\0' || stripe_money_format(m->amount, m->currency, out, len) < 0)
		return false;
	for (i = 0; out[i] != '\0'; i++)
		if (!((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'A' && out[i] <= 'Z') ||
		    out[i] == '.' || out[i] == '-' || out[i] == ' '))
			return false;
	return i > 0;
}

static const char *mf_status_word(enum stripe_sub_status st)
{
	const char *w = ((int)st >= 0 && (int)st < STRIPE_SUB__COUNT) ? stripe_sub_status_name(st) : NULL;

	return mf_word_ok(w) ? w : "unknown";
}

/* Room left for a text field when rest is what follows it on the line. */
static size_t mf_text_budget(const struct mf_ctx *c, const char *key, const struct mf_line *rest)
{
	size_t fixed = strlen(key) + 4 + rest->len + 1 + rest->len / 60 + 4;

	return c->cap > fixed + 8 ? c->cap - fixed - (c->cap - fixed) / 30 : 8;
}

static void mf_render_lookup(struct mf_ctx *c, const struct mf_lookup_info *li,
    const struct stripe_summary *s)
{
	struct mf_line l;
	bool data = s != NULL && li->state != LK_SKIPPED;
	bool found = data && s->found && li->state != LK_NOT_FOUND;
	unsigned bit;

	memset(&l, 0, sizeof(l));
	if (li->state == LK_SKIPPED) {
		mf_line_item(&l, "skipped=%s", mf_word_ok(li->skip_reason) ? li->skip_reason : "unknown");
		goto out;
	}
	if (li->state == LK_ERROR && !data) {
		mf_line_item(&l, "error=%s", mf_word_ok(li->error_class) ? li->error_class : "internal");
		goto out;
	}
	if (li->state == LK_FOUND && s == NULL) {
		mf_line_item(&l, "error=internal");
		goto out;
	}
	mf_line_item(&l, "%s", found ? "found" : "not-found");
	if (mf_word_ok(li->cache)) {
		mf_line_item(&l, "cache=%s", li->cache);
		if (strcmp(li->cache, "miss") != 0 && li->age_s >= 0)
			mf_line_item(&l, "age=%ld", li->age_s);
	}
	mf_line_item(&l, "mode=%s", li->livemode ? "live" : "test");
	if (li->stale)
		mf_line_item(&l, "stale=yes");
	if (li->state == LK_ERROR || (li->stale && li->error_class))
		mf_line_item(&l, "error=%s", mf_word_ok(li->error_class) ? li->error_class : "internal");
	if (found && s->parts_missing != 0) {
		char miss[128] = "";
		size_t n = 0;

		for (bit = 1; bit <= STRIPE_PART_CHARGES; bit <<= 1) {
			const char *w = (s->parts_missing & bit) ? stripe_part_name(bit) : NULL;

			if (mf_word_ok(w))
				n += (size_t)snprintf(miss + n, sizeof(miss) - n, "%s%s",
				    n > 0 ? "," : "", w);
		}
		if (n > 0 && n < sizeof(miss))
			mf_line_item(&l, "missing=%s", miss);
	}
	if (li->from_count > 1)
		mf_line_item(&l, "from-count=%d", li->from_count);
out:
	mf_emit(c, "Lookup", &l);
}

static void mf_render_customer(struct mf_ctx *c, const struct stripe_summary *s)
{
	struct mf_line l, rest;
	char buf[64];

	memset(&l, 0, sizeof(l));
	memset(&rest, 0, sizeof(rest));
	if (!c->o->privacy && mf_date(s->created, buf))
		mf_line_item(&rest, "created=%s", buf);
	mf_line_item(&rest, "delinquent=%s", s->delinquent ? "yes" : "no");
	if (!c->o->privacy) {
		if (mf_money(&s->balance, buf, sizeof(buf)))
			mf_line_item(&rest, "balance=%s", buf);
		if (s->matches > 0)
			mf_line_item(&rest, "matches=%d", s->matches);
		mf_line_text(&l, "name", s->name, mf_text_budget(c, "name", &rest), false, false);
	}
	mf_line_cat(&l, &rest);
	mf_emit(c, "Customer", &l);
}

static enum stripe_sub_status mf_best_status(const struct stripe_summary *s)
{
	int k;

	for (k = STRIPE_SUB__COUNT - 1; k > STRIPE_SUB_NONE; k--)
		if (s->subs_by_status[k] > 0)
			return (enum stripe_sub_status)k;
	if (s->nsubs > 0)
		return s->subs[0].status;
	return STRIPE_SUB_NONE;
}

static void mf_render_sub(struct mf_ctx *c, const struct stripe_summary *s,
    const struct stripe_subscription *sub)
{
	struct mf_line l, rest;
	char money[64], date[16];

	memset(&l, 0, sizeof(l));
	memset(&rest, 0, sizeof(rest));
	if (mf_money(&sub->unit_amount, money, sizeof(money))) {
		if (!mf_word_ok(sub->interval))
			mf_line_item(&rest, "amount=%s", money);
		else if (sub->interval_count > 1)
			mf_line_item(&rest, "amount=%s/%d %ss", money, sub->interval_count,
			    sub->interval);
		else
			mf_line_item(&rest, "amount=%s/%s", money, sub->interval);
	}
	mf_line_item(&rest, "status=%s", mf_status_word(sub->status));
	if (mf_date(sub->period_end, date))
		mf_line_item(&rest, "period_end=%s", date);
	mf_line_item(&rest, "cancel_at_period_end=%s", sub->cancel_at_period_end ? "yes" : "no");
	if (sub->status == STRIPE_SUB_TRIALING && mf_date(sub->trial_end, date))
		mf_line_item(&rest, "trial_end=%s", date);
	if (mf_date(sub->cancel_at, date))
		mf_line_item(&rest, "cancel_at=%s", date);
	if (sub->quantity > 1)
		mf_line_item(&rest, "quantity=%d", sub->quantity);
	if (sub->item_count > 1)
		mf_line_item(&rest, "items=%d", sub->item_count);
	if (!(s->parts_missing & STRIPE_PART_PLAN_NAMES))
		mf_line_text(&l, "plan", sub->plan, mf_text_budget(c, "plan", &rest), false, false);
	mf_line_cat(&l, &rest);
	mf_emit(c, "Subscription", &l);
}

static void mf_render_subscriptions(struct mf_ctx *c, const struct stripe_summary *s)
{
	struct mf_line l;
	int i, max = c->o->max_subs;

	if (s->parts_missing & STRIPE_PART_SUBSCRIPTIONS)
		return;
	memset(&l, 0, sizeof(l));
	mf_line_item(&l, "%s", mf_status_word(mf_best_status(s)));
	mf_emit(c, "Subscription-Status", &l);
	if (c->o->privacy)
		return;
	if (max <= 0)
		max = 1;
	if (max > STRIPE_SUBS_MAX)
		max = STRIPE_SUBS_MAX;
	for (i = 0; i < s->nsubs && i < STRIPE_SUBS_MAX && i < max; i++)
		mf_render_sub(c, s, &s->subs[i]);
}

static void mf_render_charges(struct mf_ctx *c, const struct stripe_summary *s)
{
	const struct stripe_charges *ch = &s->charges;
	struct mf_line l;
	char money[64], date[16];
	int i, n = 0;

	if ((s->parts_missing & STRIPE_PART_CHARGES) || ch->window_days <= 0)
		return;
	memset(&l, 0, sizeof(l));
	mf_line_item(&l, "window=%dd", ch->window_days);
	mf_line_item(&l, "count=%d", ch->count);
	mf_line_item(&l, "succeeded=%d", ch->succeeded);
	mf_line_item(&l, "failed=%d", ch->failed);
	mf_line_item(&l, "refunded=%d", ch->refunded);
	mf_line_item(&l, "disputed=%d", ch->disputed);
	for (i = 0; i < ch->ntotals && i < STRIPE_TOTALS_MAX; i++) {
		if (!mf_money(&ch->totals[i], money, sizeof(money)))
			continue;
		if (n++ == 0)
			mf_line_item(&l, "total=%s", money);
		else
			mf_line_vraw_sep(&l, money);
	}
	if (n == 0)
		mf_line_item(&l, "total=0");
	if (ch->has_last && mf_date(ch->last_created, date) && mf_word_ok(ch->last_status)) {
		if (mf_word_ok(ch->last_failure_code))
			mf_line_item(&l, "last=%s %s %s", date, ch->last_status, ch->last_failure_code);
		else
			mf_line_item(&l, "last=%s %s", date, ch->last_status);
	}
	if (ch->pending > 0)
		mf_line_item(&l, "pending=%d", ch->pending);
	if (ch->partially_refunded > 0)
		mf_line_item(&l, "partially_refunded=%d", ch->partially_refunded);
	if (ch->truncated)
		mf_line_item(&l, "truncated=yes");
	mf_emit(c, "Charges", &l);
}

static void mf_render_metadata(struct mf_ctx *c, const struct stripe_summary *s)
{
	struct mf_line l;
	int i;

	memset(&l, 0, sizeof(l));
	for (i = 0; i < s->nmeta && i < STRIPE_META_MAX; i++) {
		const char *k = s->meta[i].key;

		if (!mf_token_ok(k, strnlen(k, sizeof(s->meta[i].key))))
			continue;
		mf_line_text(&l, k, s->meta[i].value, c->cap / 2, true, true);
	}
	mf_emit(c, "Metadata", &l);
}

static bool mf_prefix_ok(const char *p)
{
	size_t i;

	for (i = 0; p[i] != '\0'; i++)
		if (p[i] <= ' ' || p[i] >= 0x7f || p[i] == ':')
			return false;
	return i > 0 && i + sizeof("Subscription-Status") <= MF_HDR_NAME_MAX;
}

int mf_hdr_render(const struct mf_hdr_opts *o, const struct mf_lookup_info *li,
    const struct stripe_summary *s, struct mf_hdr_list *out)
{
	struct mf_ctx c;
	unsigned g;
	bool show;

	if (out == NULL)
		return -1;
	out->n = 0;
	if (o == NULL || li == NULL)
		return -1;
	c.o = o;
	c.out = out;
	c.prefix = o->prefix != NULL ? o->prefix : mf_default_prefix;
	c.cap = o->max_value == 0 ? MF_HDR_MAX_VALUE_DEFAULT : o->max_value;
	if (c.cap > MF_HDR_VALUE_MAX - 1)
		c.cap = MF_HDR_VALUE_MAX - 1;
	if (c.cap < 32)
		c.cap = 32;
	if (!mf_prefix_ok(c.prefix))
		return -1;
	g = o->groups | MF_HG_LOOKUP;
	if (o->privacy)
		g &= MF_HG_LOOKUP | MF_HG_CUSTOMER | MF_HG_SUBSCRIPTION;
	mf_render_lookup(&c, li, s);
	show = s != NULL && s->found && (li->state == LK_FOUND || li->state == LK_ERROR);
	if (!show)
		return out->n;
	if ((g & MF_HG_CUSTOMER_ID) && mf_id_ok(s->customer_id)) {
		struct mf_line l;

		memset(&l, 0, sizeof(l));
		mf_line_item(&l, "%s", s->customer_id);
		mf_emit(&c, "Customer-Id", &l);
	}
	if (g & MF_HG_CUSTOMER)
		mf_render_customer(&c, s);
	if (g & MF_HG_SUBSCRIPTION)
		mf_render_subscriptions(&c, s);
	if (g & MF_HG_CHARGES)
		mf_render_charges(&c, s);
	if (g & MF_HG_METADATA)
		mf_render_metadata(&c, s);
	return out->n;
}

bool mf_hdr_has_prefix(const char *header_name, const char *prefix)
{
	size_t n;

	if (header_name == NULL || prefix == NULL || (n = strlen(prefix)) == 0)
		return false;
	return strncasecmp(header_name, prefix, n) == 0;
}

const struct stripe_summary *mf_hdr_info_fill(const struct lk_result *res, struct mf_lookup_info *li)
{
	li->state = res->lr_state;
	li->error_class = res->lr_error;
	li->stale = res->lr_stale;
	li->cache = res->lr_stale ? "stale" : res->lr_source == CACHE_SRC_FILL ? "miss" : "hit";
	li->age_s = res->lr_fetched_at_ms > 0 ? (long)((sm_wall_ms() - res->lr_fetched_at_ms) / 1000) : 0;
	if (li->age_s < 0)
		li->age_s = 0;
	return res->lr_state == LK_FOUND ? &res->lr_summary : NULL;
}
