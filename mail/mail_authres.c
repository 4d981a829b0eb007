/*
 * mail_authres.c - the RFC 8601 Authentication-Results gate: does a trusted authserv-id say
 * the From domain passed DMARC (or aligned DKIM)?
 *
 * Grammar: authserv-id, optional version, ';'-separated resinfo
 * "method[/version]=result [reason=...] [ptype.property=value ...]", or "none". Comments
 * (nested, bounded depth) are removed first, quoted strings kept whole (so a reason string
 * quoting "dmarc=pass" is never mistaken for a result), CFWS around '=', '.' and '/' is
 * allowed. Values longer than 8 KB fail closed (false).
 *
 * Interface: see mail.h. Whether an authserv-id is trusted is the caller's question (a
 * callback), so this file knows no configuration or list format.
 * Diagnostics: none; anything unparsable is "no pass".
 * Known limits: no organisational-domain (public suffix) lookup for DKIM alignment.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "mail/mail.h"

#define MAIL_AR_MAX		8192
#define MAIL_AR_COMMENT_DEPTH	16


/* Copies value into out without comments, with CR, LF and TAB as spaces, quoted strings
 * kept whole. -1 for unterminated comments or quotes, too deep nesting, or no room. */
static int mail_ar_strip(const char *v, char *out, size_t outlen)
{
	size_t o = 0;
	int depth = 0;
	bool quoted = false;

	for (; *v != '\0'; v++) {
		char c = *v;

		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		if (depth > 0) {
			if (c == '\\' && v[1] != '\0')
				v++;
			else if (c == '(' && ++depth > MAIL_AR_COMMENT_DEPTH)
				return -1;
			else if (c == ')' && --depth == 0)
				c = ' ';
			if (depth > 0 || c != ' ')
				continue;
		} else if (!quoted && c == '(') {
			depth = 1;
			continue;
		} else if (c == '"') {
			quoted = !quoted;
		} else if (quoted && c == '\\' && v[1] != '\0') {
			if (o + 2 >= outlen)
				return -1;
			out[o++] = c;
			c = *++v;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return depth == 0 && !quoted ? 0 : -1;
}

/* In place: drops spaces next to '=', '.' and '/' outside quoted strings. */
static void mail_ar_tighten(char *s)
{
	char *r = s, *w = s;
	bool quoted = false;

	for (; *r != '\0'; r++) {
		if (*r == '"' && (r == s || r[-1] != '\\'))
			quoted = !quoted;
		if (!quoted && *r == ' ') {
			const char *n = r;

			while (*n == ' ')
				n++;
			if (*n == '=' || *n == '.' || *n == '/' ||
			    (w > s && (w[-1] == '=' || w[-1] == '.' || w[-1] == '/'))) {
				r = (char *)n - 1;
				continue;
			}
		}
		*w++ = *r;
	}
	*w = '\0';
}

/* Next space-separated word (quoted strings kept whole) of *p, NUL-terminated in place. */
static char *mail_ar_word(char **p)
{
	char *s = *p, *e;
	bool quoted = false;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return NULL;
	for (e = s; *e != '\0' && (quoted || *e != ' '); e++) {
		if (*e == '\\' && quoted && e[1] != '\0')
			e++;
		else if (*e == '"')
			quoted = !quoted;
	}
	if (*e != '\0')
		*e++ = '\0';
	*p = e;
	return s;
}

/* Removes surrounding quotes (and quoted-pair backslashes) in place. */
static char *mail_ar_unquote(char *v)
{
	char *r, *w;
	size_t n = strlen(v);

	if (n < 2 || v[0] != '"' || v[n - 1] != '"')
		return v;
	v[n - 1] = '\0';
	for (r = w = v + 1; *r != '\0'; r++) {
		if (*r == '\\' && r[1] != '\0')
			r++;
		*w++ = *r;
	}
	*w = '\0';
	return v + 1;
}

static const char *mail_ar_domain_of(const char *v)
{
	const char *at = strrchr(v, '@');

	return at != NULL ? at + 1 : v;
}

/* DKIM relaxed alignment without a public suffix list: equal, d a parent of the From domain
 * (d has a dot: never a bare TLD), or d a subdomain of the From domain. */
static bool mail_ar_aligned(const char *d, const char *from)
{
	size_t dl = strlen(d), fl = strlen(from);

	if (dl == 0)
		return false;
	if (strcasecmp(d, from) == 0)
		return true;
	if (fl > dl + 1 && from[fl - dl - 1] == '.' && strcasecmp(from + fl - dl, d) == 0 &&
	    strchr(d, '.') != NULL)
		return true;
	return dl > fl + 1 && d[dl - fl - 1] == '.' && strcasecmp(d + dl - fl, from) == 0;
}

/* Next ';'-separated segment of *p (quoted strings kept whole), NUL-terminated in place;
 * NULL when *p is exhausted. */
static char *mail_ar_segment(char **p)
{
	char *s = *p, *e;
	bool quoted = false;

	if (s == NULL)
		return NULL;
	for (e = s; *e != '\0' && (quoted || *e != ';'); e++) {
		if (*e == '\\' && quoted && e[1] != '\0')
			e++;
		else if (*e == '"')
			quoted = !quoted;
	}
	*p = *e != '\0' ? e + 1 : NULL;
	*e = '\0';
	return s;
}

/* One resinfo (between ';'): true when it passes the gate. */
static bool mail_ar_resinfo(char *seg, const char *from_domain, bool allow_dkim)
{
	char *p = seg, *w, *eq, *slash;
	const char *hfrom = NULL, *hd = NULL, *hi = NULL;
	bool dmarc, dkim;

	mail_ar_tighten(seg);
	if ((w = mail_ar_word(&p)) == NULL || (eq = strchr(w, '=')) == NULL)
		return false;
	*eq = '\0';
	if ((slash = strchr(w, '/')) != NULL)
		*slash = '\0';
	if (strcasecmp(mail_ar_unquote(eq + 1), "pass") != 0)
		return false;
	dmarc = strcasecmp(w, "dmarc") == 0;
	dkim = allow_dkim && strcasecmp(w, "dkim") == 0;
	if (!dmarc && !dkim)
		return false;
	while ((w = mail_ar_word(&p)) != NULL) {
		if ((eq = strchr(w, '=')) == NULL)
			continue;
		*eq = '\0';
		if (strcasecmp(w, "header.from") == 0)
			hfrom = mail_ar_domain_of(mail_ar_unquote(eq + 1));
		else if (strcasecmp(w, "header.d") == 0)
			hd = mail_ar_unquote(eq + 1);
		else if (strcasecmp(w, "header.i") == 0)
			hi = mail_ar_domain_of(mail_ar_unquote(eq + 1));
	}
	if (dmarc)
		return hfrom != NULL && strcasecmp(hfrom, from_domain) == 0;
	if (hd == NULL)
		hd = hi;
	return hd != NULL && mail_ar_aligned(hd, from_domain);
}

bool mail_authres_dmarc_pass(const char *header_value, mail_authserv_trusted_fn trusted, void *arg,
    const char *from_domain, bool allow_aligned_dkim)
{
	char buf[MAIL_AR_MAX];
	char *p = buf, *seg, *id;

	if (header_value == NULL || trusted == NULL || from_domain == NULL || from_domain[0] == '\0')
		return false;
	if (mail_ar_strip(header_value, buf, sizeof(buf)) != 0)
		return false;
	/* authserv-id [version] */
	if ((seg = mail_ar_segment(&p)) == NULL || (id = mail_ar_word(&seg)) == NULL ||
	    !trusted(arg, mail_ar_unquote(id)))
		return false;
	while ((seg = mail_ar_segment(&p)) != NULL)
		if (mail_ar_resinfo(seg, from_domain, allow_aligned_dkim))
			return true;
	return false;
}
