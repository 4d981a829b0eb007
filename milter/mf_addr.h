/*
 * mf_addr.h - sender extraction: RFC 5322 From header values and SMTP MAIL FROM arguments.
 *
 * Interface:
 *	mf_addr_from_header(value, out, outlen, &naddrs)
 *		the first mailbox of a From header value (display names, quoted strings,
 *		nested comments, RFC 2047 encoded words, angle addresses, groups, obsolete
 *		routes, IP literals, folded or unfolded). *naddrs counts every mailbox.
 *	mf_addr_envelope(arg, out, outlen)
 *		the MAIL FROM argument as libmilter passes it ("<a@b>", "a@b", "<>").
 *	mf_addr_is_bounce(addr)	true for senders that are clearly not customers.
 *	mf_addr_domain(addr)	the text after the last '@', or NULL.
 *	mf_addr_rc_name(rc)	"ok", "empty", "malformed", "too-long", "null".
 *
 * Output: the address as written (quoted local parts keep their quotes, comments and
 * folding white space removed), the domain lowercased (ASCII only), the local part untouched.
 *
 * Pure functions: no allocation, no recursion, no logging; thread-safe.
 */
#ifndef MF_ADDR_H
#define MF_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define MF_ADDR_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define MF_ADDR_MAX		254	/* RFC 5321 path limit minus the angle brackets */
#define MF_ADDR_COMMENT_DEPTH	16	/* nested comments deeper than this are malformed */

enum mf_addr_rc {
	MF_ADDR_OK = 0,
	MF_ADDR_EMPTY,		/* no mailbox at all (empty value, empty group) */
	MF_ADDR_MALFORMED,	/* syntax error anywhere in the value */
	MF_ADDR_TOO_LONG,	/* local part > 64, address > 254 octets, or > outlen - 1 */
	MF_ADDR_NULL		/* envelope only: the null reverse path "<>" */
};

enum mf_addr_rc mf_addr_from_header(const char *value, char *out, size_t outlen, int *naddrs);
enum mf_addr_rc mf_addr_envelope(const char *arg, char *out, size_t outlen);
bool mf_addr_is_bounce(const char *addr);
const char *mf_addr_domain(const char *addr);
const char *mf_addr_rc_name(enum mf_addr_rc rc);

#endif
