/*
 * mail.h - mail formats, with no knowledge of the daemon: the whole interface of mail/.
 *
 * Interface:
 *	mail_addr_from_header(value, out, outlen, &naddrs)	(mail_addr.c, RFC 5322)
 *		the first mailbox of a From header value (display names, quoted strings,
 *		nested comments, RFC 2047 encoded words, angle addresses, groups, obsolete
 *		routes, IP literals, folded or unfolded). *naddrs counts every mailbox.
 *	mail_addr_envelope(arg, out, outlen)
 *		the MAIL FROM argument as libmilter passes it ("<a@b>", "a@b", "<>").
 *	mail_addr_is_bounce(addr)	true for senders that are clearly not customers.
 *	mail_addr_domain(addr)		the text after the last '@', or NULL.
 *	mail_addr_rc_name(rc)		"ok", "empty", "malformed", "too-long", "null".
 *	mail_authres_dmarc_pass(value, trusted, arg, from_domain, allow_aligned_dkim)
 *		(mail_authres.c, RFC 8601) the Authentication-Results gate.
 *
 * Addresses come back as written (quoted local parts keep their quotes, comments and
 * folding white space removed), the domain lowercased (ASCII only), the local part untouched.
 *
 * Pure functions: no allocation, no recursion, no logging, no global state; thread-safe.
 */
#ifndef MAIL_H
#define MAIL_H

#include <stdbool.h>
#include <stddef.h>

/* ---- RFC 5322 / RFC 5321 addresses (mail_addr.c) ---- */

#define MAIL_ADDR_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define MAIL_ADDR_MAX		254	/* RFC 5321 path limit minus the angle brackets */
#define MAIL_ADDR_COMMENT_DEPTH	16	/* nested comments deeper than this are malformed */

enum mail_addr_rc {
	MAIL_ADDR_OK = 0,
	MAIL_ADDR_EMPTY,	/* no mailbox at all (empty value, empty group) */
	MAIL_ADDR_MALFORMED,	/* syntax error anywhere in the value */
	MAIL_ADDR_TOO_LONG,	/* local part > 64, address > 254 octets, or > outlen - 1 */
	MAIL_ADDR_NULL		/* envelope only: the null reverse path "<>" */
};

enum mail_addr_rc mail_addr_from_header(const char *value, char *out, size_t outlen, int *naddrs);
enum mail_addr_rc mail_addr_envelope(const char *arg, char *out, size_t outlen);
bool mail_addr_is_bounce(const char *addr);
const char *mail_addr_domain(const char *addr);
const char *mail_addr_rc_name(enum mail_addr_rc rc);

/* ---- RFC 8601 Authentication-Results (mail_authres.c) ---- */

/* The caller's trust decision for one authserv-id (already unquoted). */
typedef bool (*mail_authserv_trusted_fn)(void *arg, const char *authserv_id);

/* True when value (one Authentication-Results header value, folded or not) comes from an
 * authserv-id that trusted() accepts and says dmarc=pass with header.from equal to
 * from_domain (any case); or, when allow_aligned_dkim, dkim=pass with header.d (else
 * header.i's domain) equal to from_domain, a parent of it (with at least one dot) or a
 * subdomain of it (relaxed alignment without a public suffix list). False for a NULL
 * trusted. Incoming Authentication-Results headers that claim a trusted authserv-id must be
 * removed before this runs (RFC 8601 section 5: by the MTA or the authenticating milters),
 * else a sender can forge one. */
bool mail_authres_dmarc_pass(const char *header_value, mail_authserv_trusted_fn trusted, void *arg,
    const char *from_domain, bool allow_aligned_dkim);

#endif
