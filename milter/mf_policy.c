/*
 * mf_policy.c - skip-rule data: CIDR lists, address/domain lists, Authentication-Results gate.
 *
 * CIDR items: an IPv4 or IPv6 address, optionally in brackets ("[::1]"), optionally with
 * "/bits". Host bits set under the mask are an error ("10.1.2.3/8": did you mean
 * 10.0.0.0/8?), as in Postfix. A v4-mapped IPv6 item with /96 or longer ("::ffff:10.0.0.0/104")
 * is stored as the IPv4 network it names. Peers: AF_INET, AF_INET6 (v4-mapped peers are
 * compared with IPv4 items as well); other families (AF_UNIX) never match.
 *
 * Match items: "user@example.com" (whole address, any case), "@example.org" or "example.net"
 * (that domain only), ".example.com" (its subdomains, not itself). Domains are checked for
 * plain host-name syntax (letters, digits, '-', '_', 8-bit bytes, non-empty dot-separated
 * labels); items are at most 254 bytes.
 *
 * Authentication-Results: the RFC 8601 parser is mail_authres_dmarc_pass() (mail/); this
 * file only answers its question "is this authserv-id trusted?" from a match list.
 *
 * Interface: see mf_policy.h.
 * Diagnostics: parse functions return -1 and write "bad item 'x': why" into err.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/sm_util.h"
#include "mail/mail.h"
#include "milter/mf_policy.h"

#define MF_ITEM_MAX		254

struct mf_cidr {
	int family;			/* AF_INET or AF_INET6 */
	int bits;
	unsigned char a[16];
};

struct mf_cidr_list {
	size_t n;
	struct mf_cidr e[];
};

enum mf_match_kind { MF_M_ADDR, MF_M_DOMAIN, MF_M_SUBDOMAIN };

struct mf_match {
	enum mf_match_kind kind;
	char s[MF_ITEM_MAX + 2];	/* address, domain, or ".domain" */
};

struct mf_match_list {
	size_t n;
	struct mf_match e[];
};

/* ---- list items ---- */

static bool mf_is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Copies the next item of *p into item (NUL-terminated) and advances *p. Returns 1 for an
 * item, 0 at the end, -1 for an item longer than MF_ITEM_MAX (item holds its start). */
static int mf_next_item(const char **p, char *item, size_t itemlen)
{
	const char *s = *p, *e;
	size_t n;

	while (*s != '\0' && mf_is_sep(*s))
		s++;
	if (*s == '\0') {
		*p = s;
		return 0;
	}
	for (e = s; *e != '\0' && !mf_is_sep(*e); e++)
		;
	*p = e;
	n = (size_t)(e - s);
	if (n >= itemlen) {
		memcpy(item, s, itemlen - 1);
		item[itemlen - 1] = '\0';
		return -1;
	}
	memcpy(item, s, n);
	item[n] = '\0';
	return 1;
}

/* Number of items in a list (an upper bound for the allocation). */
static size_t mf_count_items(const char *list)
{
	size_t n = 0;
	bool in = false;

	for (; *list != '\0'; list++) {
		if (mf_is_sep(*list))
			in = false;
		else if (!in) {
			in = true;
			n++;
		}
	}
	return n;
}

static void mf_err(char *err, size_t errlen, const char *item, const char *why)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "bad item '%s': %s", item, why);
}

/* ---- CIDR ---- */

static void mf_cidr_fmt(const struct mf_cidr *c, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->a, a, sizeof(a)) == NULL)
		sm_strlcpy(a, "?", sizeof(a));
	snprintf(out, len, "%s/%d", a, c->bits);
}

/* True when the first bits of a and b are equal. */
static bool mf_prefix_eq(const unsigned char *a, const unsigned char *b, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (full > 0 && memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static bool mf_host_bits_set(const struct mf_cidr *c)
{
	int len = c->family == AF_INET ? 4 : 16, i;

	for (i = 0; i < len; i++) {
		int keep = c->bits - 8 * i;
		unsigned mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (0xff << (8 - keep)) & 0xff;

		if (c->a[i] & ~mask & 0xff)
			return true;
	}
	return false;
}

static int mf_cidr_item(char *item, struct mf_cidr *c, char *err, size_t errlen)
{
	char orig[MF_ITEM_MAX + 2], *addr = item, *slash;
	long bits = -1;
	int max;
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	sm_strlcpy(orig, item, sizeof(orig));
	memset(c, 0, sizeof(*c));
	slash = strchr(item, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (sm_parse_long(slash + 1, 0, 128, &bits) != 0) {
			mf_err(err, errlen, orig, "prefix length is not a number from 0 to 128");
			return -1;
		}
	}
	if (addr[0] == '[') {
		size_t n = strlen(addr);

		if (n < 2 || addr[n - 1] != ']') {
			mf_err(err, errlen, orig, "unbalanced '['");
			return -1;
		}
		addr[n - 1] = '\0';
		addr++;
	}
	if (inet_pton(AF_INET, addr, c->a) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c->a) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		mf_err(err, errlen, orig, "not an IPv4 or IPv6 address");
		return -1;
	}
	if (bits > max) {
		mf_err(err, errlen, orig, "prefix length too long for the address family");
		return -1;
	}
	c->bits = bits < 0 ? max : (int)bits;
	if (mf_host_bits_set(c)) {
		char why[128], net[80];
		struct mf_cidr fixed = *c;
		int i, len = c->family == AF_INET ? 4 : 16;

		for (i = 0; i < len; i++) {
			int keep = c->bits - 8 * i;

			fixed.a[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (0xff << (8 - keep)) & 0xff;
		}
		mf_cidr_fmt(&fixed, net, sizeof(net));
		snprintf(why, sizeof(why), "host bits set (did you mean %s?)", net);
		mf_err(err, errlen, orig, why);
		return -1;
	}
	if (c->family == AF_INET6 && c->bits >= 96 && memcmp(c->a, mapped, 12) == 0) {
		memmove(c->a, c->a + 12, 4);
		memset(c->a + 4, 0, 12);
		c->family = AF_INET;
		c->bits -= 96;
	}
	return 0;
}

/* One parser for both kinds of list: a block of `head` bytes (a struct that starts with
 * size_t n) followed by one `esize` entry per item, each filled by fn. Returns the block
 * (malloc'd, the caller's), or NULL with err naming the bad item. */
typedef int (*mf_item_fn)(char *item, void *entry, char *err, size_t errlen);

static void *mf_parse_list(const char *list, size_t head, size_t esize, mf_item_fn fn,
    char *err, size_t errlen)
{
	char item[MF_ITEM_MAX + 2];
	const char *p = list != NULL ? list : "";
	size_t *n;
	char *l;
	int r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	l = calloc(1, head + mf_count_items(p) * esize);
	if (l == NULL) {
		mf_err(err, errlen, "", "out of memory");
		return NULL;
	}
	n = (size_t *)(void *)l;
	while ((r = mf_next_item(&p, item, sizeof(item))) != 0) {
		if (r < 0) {
			mf_err(err, errlen, item, "item too long");
			goto fail;
		}
		if (fn(item, l + head + *n * esize, err, errlen) != 0)
			goto fail;
		(*n)++;
	}
	return l;
fail:
	free(l);
	return NULL;
}

static int mf_cidr_item_cb(char *item, void *entry, char *err, size_t errlen)
{
	return mf_cidr_item(item, entry, err, errlen);
}

int mf_cidr_parse(const char *list, struct mf_cidr_list **out, char *err, size_t errlen)
{
	*out = mf_parse_list(list, offsetof(struct mf_cidr_list, e), sizeof(struct mf_cidr), mf_cidr_item_cb,
	    err, errlen);
	return *out != NULL ? 0 : -1;
}

bool mf_cidr_match(const struct mf_cidr_list *l, const struct sockaddr *sa)
{
	unsigned char v4[4], v6[16];
	bool has4 = false, has6 = false;
	size_t i;

	if (l == NULL || sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		has4 = true;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		memcpy(v6, a, 16);
		has6 = true;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(v4, v6 + 12, 4);
			has4 = true;
		}
	}
	for (i = 0; i < l->n; i++) {
		const struct mf_cidr *c = &l->e[i];

		if (c->family == AF_INET && has4 && mf_prefix_eq(c->a, v4, c->bits))
			return true;
		if (c->family == AF_INET6 && has6 && mf_prefix_eq(c->a, v6, c->bits))
			return true;
	}
	return false;
}

size_t mf_cidr_count(const struct mf_cidr_list *l)
{
	return l != NULL ? l->n : 0;
}

void mf_cidr_free(struct mf_cidr_list *l)
{
	free(l);
}

/* ---- address and domain lists ---- */

static bool mf_domain_ok(const char *d)
{
	size_t i, label = 0;

	for (i = 0; d[i] != '\0'; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!(c >= 0x80 || c == '-' || c == '_' || (c >= '0' && c <= '9') ||
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return false;
		label++;
	}
	return label > 0;
}

static int mf_match_item(const char *item, struct mf_match *m, char *err, size_t errlen)
{
	const char *at = strrchr(item, '@'), *dom;

	if (item[0] == '.') {
		m->kind = MF_M_SUBDOMAIN;
		dom = item + 1;
	} else if (item[0] == '@') {
		m->kind = MF_M_DOMAIN;
		dom = item + 1;
	} else if (at != NULL) {
		m->kind = MF_M_ADDR;
		dom = at + 1;
	} else {
		m->kind = MF_M_DOMAIN;
		dom = item;
	}
	if (m->kind != MF_M_ADDR && strchr(dom, '@') != NULL) {
		mf_err(err, errlen, item, "more than one '@'");
		return -1;
	}
	if (!mf_domain_ok(dom)) {
		mf_err(err, errlen, item, "not a valid domain");
		return -1;
	}
	sm_strlcpy(m->s, m->kind == MF_M_SUBDOMAIN ? item : m->kind == MF_M_DOMAIN ? dom : item,
	    sizeof(m->s));
	return 0;
}

static int mf_match_item_cb(char *item, void *entry, char *err, size_t errlen)
{
	return mf_match_item(item, entry, err, errlen);
}

int mf_match_parse(const char *list, struct mf_match_list **out, char *err, size_t errlen)
{
	*out = mf_parse_list(list, offsetof(struct mf_match_list, e), sizeof(struct mf_match), mf_match_item_cb,
	    err, errlen);
	return *out != NULL ? 0 : -1;
}

bool mf_match_addr(const struct mf_match_list *l, const char *addr)
{
	const char *at, *dom;
	size_t i, dlen;

	if (l == NULL || addr == NULL || addr[0] == '\0')
		return false;
	at = strrchr(addr, '@');
	dom = at != NULL ? at + 1 : addr;
	dlen = strlen(dom);
	for (i = 0; i < l->n; i++) {
		const struct mf_match *m = &l->e[i];
		size_t n;

		switch (m->kind) {
		case MF_M_ADDR:
			if (at != NULL && strcasecmp(m->s, addr) == 0)
				return true;
			break;
		case MF_M_DOMAIN:
			if (strcasecmp(m->s, dom) == 0)
				return true;
			break;
		case MF_M_SUBDOMAIN:
			n = strlen(m->s);
			if (dlen > n && strcasecmp(dom + dlen - n, m->s) == 0)
				return true;
			break;
		}
	}
	return false;
}

size_t mf_match_count(const struct mf_match_list *l)
{
	return l != NULL ? l->n : 0;
}

void mf_match_free(struct mf_match_list *l)
{
	free(l);
}


/* ---- Authentication-Results (the parser is in mail/) ---- */

static bool mf_authserv_trusted(void *arg, const char *authserv_id)
{
	return mf_match_addr(arg, authserv_id);
}

bool mf_authres_dmarc_pass(const char *header_value, const struct mf_match_list *trusted_authserv_ids,
    const char *from_domain, bool allow_aligned_dkim)
{
	if (mf_match_count(trusted_authserv_ids) == 0)
		return false;
	return mail_authres_dmarc_pass(header_value, mf_authserv_trusted, (void *)trusted_authserv_ids,
	    from_domain, allow_aligned_dkim);
}
