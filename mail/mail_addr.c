/*
 * mail_addr.c - sender extraction from From header values and MAIL FROM arguments.
 *
 * A small lexer (white space and folding, nested comments with a depth bound, quoted
 * strings with quoted-pairs, domain literals, atoms, RFC 2047 encoded words as single atoms,
 * specials) feeds a loop over the address list: empty elements (obsolete ", ,"), groups
 * ("Team: a@b, c@d;", also without the closing ';'), name-addr with an optional obsolete
 * route ("<@r1,@r2:a@b>"), bare addr-spec. The first mailbox is returned; every mailbox is
 * counted and the whole value must parse, else MAIL_ADDR_MALFORMED.
 *
 * Leniency on purpose: CFWS around the dots of a local part (obs-local-part), 8-bit bytes in
 * atoms (RFC 6532 UTF-8 and raw 8-bit display names), '@' and '.' in unquoted display names
 * ("a@b.com <a@b.com>"), a group without its closing ';', CR or LF anywhere white space is
 * allowed. Strict on purpose: control characters outside comments, unterminated quotes,
 * comments or literals, two words in a row in a local part, an empty "<>" in a header, domain
 * atoms other than letters, digits, '-', '_' and 8-bit bytes.
 *
 * Interface: see mail.h. Diagnostics: none; the result code says what went wrong.
 *
 * Known limits: encoded words are not decoded (they only appear in display names, which are
 * skipped); a local part is returned as written (quoted forms are not canonicalised, so
 * "a"@b and a@b differ); IDNs are not converted to A-labels.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "mail/mail.h"

enum mail_tok_type { MAIL_T_END, MAIL_T_ATOM, MAIL_T_QSTR, MAIL_T_DLIT, MAIL_T_SPECIAL, MAIL_T_ERROR };

struct mail_tok {
	enum mail_tok_type type;
	const char *p;
	size_t len;
};

struct mail_lex {
	const char *p;		/* next byte to read; never past the terminating NUL */
	bool smtp;		/* MAIL FROM: no comments */
	struct mail_tok cur;	/* the lookahead token */
};

/* Output collector: keeps at most MAIL_ADDR_MAX + 1 bytes and remembers the real length. */
struct mail_out {
	char buf[MAIL_ADDR_MAX + 2];
	size_t len;		/* bytes the address has, even past the buffer */
	size_t local_len;
	bool discard;		/* route domains: parse only */
};

static bool mail_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool mail_is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool mail_is_special(unsigned char c)
{
	return c != '\0' && strchr("()<>[]:;@\\,.\"", c) != NULL;
}

/* Skips white space and (outside SMTP) nested comments. -1 on an unterminated or too deep
 * comment or a control character in one (other than folding). */
static int mail_skip_cfws(struct mail_lex *lx)
{
	for (;;) {
		unsigned char c = (unsigned char)*lx->p;
		int depth;

		if (mail_is_wsp(c)) {
			lx->p++;
			continue;
		}
		if (c != '(' || lx->smtp)
			return 0;
		depth = 1;
		lx->p++;
		while (depth > 0) {
			c = (unsigned char)*lx->p;
			if (c == '\0')
				return -1;
			if (c == '\\') {
				if (lx->p[1] == '\0')
					return -1;
				lx->p += 2;
				continue;
			}
			if (c == '(' && ++depth > MAIL_ADDR_COMMENT_DEPTH)
				return -1;
			if (c == ')')
				depth--;
			lx->p++;
		}
	}
}

/* Length of an RFC 2047 encoded word at p ("=?charset?B?text?="), 0 when there is none. */
static size_t mail_encoded_word_len(const char *p)
{
	size_t i = 2, start;

	if (p[0] != '=' || p[1] != '?')
		return 0;
	start = i;
	while (p[i] > ' ' && p[i] < 0x7f && p[i] != '?')
		i++;
	if (i == start || p[i] != '?')
		return 0;
	i++;
	if (strchr("BbQq", p[i]) == NULL || p[i] == '\0' || p[i + 1] != '?')
		return 0;
	i += 2;
	while (p[i] > ' ' && p[i] < 0x7f && p[i] != '?')
		i++;
	if (p[i] != '?' || p[i + 1] != '=')
		return 0;
	return i + 2;
}

/* Scans a quoted string or domain literal opened at lx->p; returns its length or 0. */
static size_t mail_scan_delimited(const char *p, char close)
{
	size_t i = 1;

	for (;;) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\0')
			return 0;
		if (c == '\\') {
			unsigned char n = (unsigned char)p[i + 1];

			if (n == '\0' || (n < 0x20 && n != '\t') || n == 0x7f)
				return 0;
			i += 2;
			continue;
		}
		if (c == (unsigned char)close)
			return i + 1;
		if (close == ']' && c == '[')
			return 0;
		if ((c < 0x20 && !mail_is_wsp(c)) || c == 0x7f)
			return 0;
		i++;
	}
}

static void mail_advance(struct mail_lex *lx)
{
	struct mail_tok *t = &lx->cur;
	unsigned char c;
	size_t n;

	t->len = 0;
	if (mail_skip_cfws(lx) < 0) {
		t->type = MAIL_T_ERROR;
		t->p = lx->p;
		return;
	}
	t->p = lx->p;
	c = (unsigned char)*lx->p;
	if (c == '\0') {
		t->type = MAIL_T_END;
		return;
	}
	if (c == '"' || c == '[') {
		n = mail_scan_delimited(lx->p, c == '"' ? '"' : ']');
		t->type = n == 0 ? MAIL_T_ERROR : (c == '"' ? MAIL_T_QSTR : MAIL_T_DLIT);
	} else if ((n = mail_encoded_word_len(lx->p)) > 0) {
		t->type = MAIL_T_ATOM;
	} else if (mail_is_atext(c)) {
		n = 0;
		while (mail_is_atext((unsigned char)lx->p[n]))
			n++;
		t->type = MAIL_T_ATOM;
	} else if (mail_is_special(c)) {
		n = 1;
		t->type = MAIL_T_SPECIAL;
	} else {
		n = 0;
		t->type = MAIL_T_ERROR;
	}
	t->len = n;
	lx->p += n;
}

static bool mail_is(const struct mail_lex *lx, char special)
{
	return lx->cur.type == MAIL_T_SPECIAL && lx->cur.p[0] == special;
}

static bool mail_is_word(const struct mail_lex *lx)
{
	return lx->cur.type == MAIL_T_ATOM || lx->cur.type == MAIL_T_QSTR;
}

static void mail_out_put(struct mail_out *o, const char *p, size_t len, bool lower, bool unfold)
{
	size_t i;

	if (o->discard)
		return;
	for (i = 0; i < len; i++) {
		char c = p[i];

		if (unfold && (c == '\r' || c == '\n'))
			continue;
		if (lower && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (o->len < sizeof(o->buf) - 1)
			o->buf[o->len] = c;
		o->len++;
	}
}

static bool mail_domain_atom_ok(const struct mail_tok *t)
{
	size_t i;

	for (i = 0; i < t->len; i++) {
		unsigned char c = (unsigned char)t->p[i];

		if (!(c >= 0x80 || c == '-' || c == '_' || (c >= '0' && c <= '9') ||
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return false;
	}
	return t->len > 0;
}

/* domain = dot-atom / domain-literal. */
static enum mail_addr_rc mail_domain(struct mail_lex *lx, struct mail_out *o)
{
	if (lx->cur.type == MAIL_T_DLIT) {
		mail_out_put(o, lx->cur.p, lx->cur.len, true, true);
		mail_advance(lx);
		return MAIL_ADDR_OK;
	}
	for (;;) {
		if (lx->cur.type != MAIL_T_ATOM || !mail_domain_atom_ok(&lx->cur))
			return MAIL_ADDR_MALFORMED;
		mail_out_put(o, lx->cur.p, lx->cur.len, true, false);
		mail_advance(lx);
		if (!mail_is(lx, '.'))
			return MAIL_ADDR_OK;
		mail_out_put(o, ".", 1, false, false);
		mail_advance(lx);
	}
}

/* True when an atom token is atext only (not an encoded word with specials inside). */
static bool mail_atom_plain(const struct mail_tok *t)
{
	size_t i;

	for (i = 0; i < t->len; i++)
		if (!mail_is_atext((unsigned char)t->p[i]))
			return false;
	return true;
}

/* True when the local part written so far holds something shaped like an encoded word
 * (words joined across folding can form one): such an address is never a customer's, and
 * would not parse the same way twice. */
static bool mail_has_encoded_word(const struct mail_out *o)
{
	char tmp[MAIL_ADDR_MAX + 1];
	size_t i, n = o->len < sizeof(tmp) - 1 ? o->len : sizeof(tmp) - 1;

	if (o->discard)
		return false;
	memcpy(tmp, o->buf, n);
	tmp[n] = '\0';
	for (i = 0; i < n; i++)
		if (tmp[i] == '=' && mail_encoded_word_len(tmp + i) > 0)
			return true;
	return false;
}

/* addr-spec = local-part "@" domain, with the length checks. */
static enum mail_addr_rc mail_addr_spec(struct mail_lex *lx, struct mail_out *o, size_t outlen)
{
	bool last_word = false;
	int nwords = 0;

	o->len = 0;
	while (mail_is_word(lx) || mail_is(lx, '.')) {
		bool word = mail_is_word(lx);

		/* words and dots alternate, starting and ending with a word: no "a..b", ".a", "a.";
		 * an encoded word is not an atom here (RFC 2047 section 5) */
		if (word == last_word || (lx->cur.type == MAIL_T_ATOM && !mail_atom_plain(&lx->cur)))
			return MAIL_ADDR_MALFORMED;
		nwords += word;
		last_word = word;
		mail_out_put(o, lx->cur.p, lx->cur.len, false, true);
		mail_advance(lx);
	}
	if (nwords == 0 || !last_word || !mail_is(lx, '@'))
		return MAIL_ADDR_MALFORMED;
	o->local_len = o->len;
	if (mail_has_encoded_word(o))
		return MAIL_ADDR_MALFORMED;
	mail_out_put(o, "@", 1, false, false);
	mail_advance(lx);
	if (mail_domain(lx, o) != MAIL_ADDR_OK)
		return MAIL_ADDR_MALFORMED;
	if (o->local_len > MAIL_ADDR_LOCAL_MAX || o->len > MAIL_ADDR_MAX || o->len >= outlen)
		return MAIL_ADDR_TOO_LONG;
	o->buf[o->len] = '\0';
	return MAIL_ADDR_OK;
}

/* After '<': [obs-route] addr-spec ">". */
static enum mail_addr_rc mail_angle_addr(struct mail_lex *lx, struct mail_out *o, size_t outlen)
{
	enum mail_addr_rc rc;

	if (mail_is(lx, '@')) {
		struct mail_out route;

		memset(&route, 0, sizeof(route));
		route.discard = true;
		for (;;) {
			if (mail_is(lx, '@')) {
				mail_advance(lx);
				if (mail_domain(lx, &route) != MAIL_ADDR_OK)
					return MAIL_ADDR_MALFORMED;
			}
			if (!mail_is(lx, ','))
				break;
			mail_advance(lx);
		}
		if (!mail_is(lx, ':'))
			return MAIL_ADDR_MALFORMED;
		mail_advance(lx);
	}
	rc = mail_addr_spec(lx, o, outlen);
	if (rc == MAIL_ADDR_MALFORMED || !mail_is(lx, '>'))
		return MAIL_ADDR_MALFORMED;
	mail_advance(lx);
	return rc;
}

/* One mailbox (name-addr or addr-spec) starting at the lookahead. */
static enum mail_addr_rc mail_mailbox(struct mail_lex *lx, struct mail_out *o, size_t outlen)
{
	struct mail_lex save = *lx;

	while (mail_is_word(lx) || lx->cur.type == MAIL_T_DLIT || mail_is(lx, '.') || mail_is(lx, '@'))
		mail_advance(lx);
	if (mail_is(lx, '<')) {
		mail_advance(lx);
		return mail_angle_addr(lx, o, outlen);
	}
	*lx = save;
	return mail_addr_spec(lx, o, outlen);
}

/* True when the lookahead opens a group: a display name followed by ':'. */
static bool mail_group_start(struct mail_lex *lx)
{
	struct mail_lex save = *lx;
	bool group;

	while (mail_is_word(lx) || mail_is(lx, '.'))
		mail_advance(lx);
	group = mail_is(lx, ':') && lx->cur.p != save.cur.p;
	if (group)
		mail_advance(lx);
	else
		*lx = save;
	return group;
}

enum mail_addr_rc mail_addr_from_header(const char *value, char *out, size_t outlen, int *naddrs)
{
	struct mail_lex lx;
	struct mail_out o, first;
	enum mail_addr_rc rc, first_rc = MAIL_ADDR_EMPTY;
	bool in_group = false;
	int count = 0;

	if (naddrs != NULL)
		*naddrs = 0;
	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (value == NULL || out == NULL || outlen == 0)
		return MAIL_ADDR_MALFORMED;
	memset(&lx, 0, sizeof(lx));
	memset(&first, 0, sizeof(first));
	lx.p = value;
	mail_advance(&lx);
	for (;;) {
		if (lx.cur.type == MAIL_T_END)
			break;
		if (lx.cur.type == MAIL_T_ERROR)
			return MAIL_ADDR_MALFORMED;
		if (mail_is(&lx, ',')) {
			mail_advance(&lx);
			continue;
		}
		if (mail_is(&lx, ';')) {
			if (!in_group)
				return MAIL_ADDR_MALFORMED;
			in_group = false;
			mail_advance(&lx);
			continue;
		}
		if (mail_group_start(&lx)) {
			if (in_group)
				return MAIL_ADDR_MALFORMED;
			in_group = true;
			continue;
		}
		memset(&o, 0, sizeof(o));
		rc = mail_mailbox(&lx, &o, outlen);
		if (rc == MAIL_ADDR_MALFORMED)
			return rc;
		if (count++ == 0) {
			first = o;
			first_rc = rc;
		}
		if (!(lx.cur.type == MAIL_T_END || mail_is(&lx, ',') || (in_group && mail_is(&lx, ';'))))
			return MAIL_ADDR_MALFORMED;
	}
	if (naddrs != NULL)
		*naddrs = count;
	if (first_rc == MAIL_ADDR_OK)
		memcpy(out, first.buf, first.len + 1);
	return first_rc;
}

enum mail_addr_rc mail_addr_envelope(const char *arg, char *out, size_t outlen)
{
	struct mail_lex lx;
	struct mail_out o;
	enum mail_addr_rc rc;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (arg == NULL || out == NULL || outlen == 0)
		return MAIL_ADDR_MALFORMED;
	memset(&lx, 0, sizeof(lx));
	memset(&o, 0, sizeof(o));
	lx.p = arg;
	lx.smtp = true;
	mail_advance(&lx);
	if (lx.cur.type == MAIL_T_END)
		return MAIL_ADDR_EMPTY;
	if (mail_is(&lx, '<')) {
		mail_advance(&lx);
		if (mail_is(&lx, '>')) {
			mail_advance(&lx);
			return lx.cur.type == MAIL_T_END ? MAIL_ADDR_NULL : MAIL_ADDR_MALFORMED;
		}
		rc = mail_angle_addr(&lx, &o, outlen);
	} else {
		rc = mail_addr_spec(&lx, &o, outlen);
	}
	if (rc == MAIL_ADDR_MALFORMED || lx.cur.type != MAIL_T_END)
		return MAIL_ADDR_MALFORMED;
	if (rc == MAIL_ADDR_OK)
		memcpy(out, o.buf, o.len + 1);
	return rc;
}

const char *mail_addr_domain(const char *addr)
{
	const char *at;

	if (addr == NULL || (at = strrchr(addr, '@')) == NULL)
		return NULL;
	return at + 1;
}

/*
 * Bounce and automated senders: only what is clearly not a customer. Skipped (local part,
 * any case): "mailer-daemon", "double-bounce" (Postfix), "bounce"/"bounces" alone or followed
 * by '+', '-' or '=' (VERP and tagged return paths: bounces+123-user=example.com@lists...,
 * bounce-mc.us5_...@mail...). Not skipped: postmaster, abuse, noreply, no-reply,
 * notifications and similar: such mailboxes can belong to a paying customer (a company
 * whose Stripe email is postmaster@ or noreply@ exists), and a lookup for them is harmless.
 */
bool mail_addr_is_bounce(const char *addr)
{
	const char *at;
	size_t n, i;
	static const char *const exact[] = { "mailer-daemon", "double-bounce", "bounce", "bounces" };
	static const char *const prefix[] = { "bounces", "bounce" };

	if (addr == NULL)
		return false;
	at = strrchr(addr, '@');
	n = at != NULL ? (size_t)(at - addr) : strlen(addr);
	for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (n == strlen(exact[i]) && strncasecmp(addr, exact[i], n) == 0)
			return true;
	for (i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++) {
		size_t pl = strlen(prefix[i]);

		if (n > pl && strncasecmp(addr, prefix[i], pl) == 0 &&
		    strchr("+-=", addr[pl]) != NULL)
			return true;
	}
	return false;
}

const char *mail_addr_rc_name(enum mail_addr_rc rc)
{
	switch (rc) {
	case MAIL_ADDR_OK:
		return "ok";
	case MAIL_ADDR_EMPTY:
		return "empty";
	case MAIL_ADDR_MALFORMED:
		return "malformed";
	case MAIL_ADDR_TOO_LONG:
		return "too-long";
	case MAIL_ADDR_NULL:
		return "null";
	}
	return "malformed";
}
