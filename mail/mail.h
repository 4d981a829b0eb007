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
 *	mail_text_value(text, len, col, cap, out, outlen)	(mail_text.c, RFC 2047)
 *		free text as an unstructured header value: itself when harmless, else
 *		encoded words that decode back to exactly the text (minus CR and LF).
 *	mail_utf8_sanitize(), mail_text_plain_ok(), mail_ew_encode()	its parts.
 *	mail_fold(in, len, col, out, outlen)	folds a structured value at MAIL_FOLD marks.
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

/* ---- free text: RFC 2047 encoded words and folding (mail_text.c) ---- */

#define MAIL_EW_MAX		75	/* RFC 2047 section 2: an encoded word's length limit */
#define MAIL_EW_MIN		24	/* the smallest first word asked for is raised to this */
#define MAIL_FOLD_COLUMN	78	/* RFC 5322 2.1.1: "SHOULD" line length */
#define MAIL_TEXT_MAX		4096	/* free text beyond this many bytes is cut */
#define MAIL_FOLD		'\001'	/* in a structured value: a space where it may fold */

/* Copies len bytes of in (stopping at a NUL) into out as valid UTF-8: each invalid byte
 * becomes U+FFFD, CR and LF are removed, nothing else changes. Never cuts a character: stops
 * when the next one does not fit (out is always NUL-terminated when outlen > 0). Returns the
 * length; *ascii (may be NULL) says whether the result is all US-ASCII. */
size_t mail_utf8_sanitize(const char *in, size_t len, char *out, size_t outlen, bool *ascii);

/* True when text may stand as itself in an unstructured field: non-empty printable US-ASCII
 * without '"', ';', '=', ':' or '\', and without leading, trailing or doubled spaces. */
bool mail_text_plain_ok(const char *text, size_t len);

/* Valid UTF-8 text as RFC 2047 encoded words ("=?UTF-8?Q?...?=" or "?B?", the shorter over
 * the whole text, Q on a tie), split at character boundaries, the first word at most
 * first_max characters (raised to MAIL_EW_MIN, at most MAIL_EW_MAX), the others at most
 * MAIL_EW_MAX, joined by sep (NULL = " "). Returns the length the result needs (0 for empty
 * text); writes it, NUL-terminated, only when it fits in outlen (out may be NULL to measure). */
size_t mail_ew_encode(const char *utf8, size_t len, size_t first_max, const char *sep,
    char *out, size_t outlen);

/* Free text as a whole unstructured header value whose first line starts at column col
 * (the field name plus ": "). Sanitised (above), then written as itself when
 * mail_text_plain_ok() and it fits on the first line (col + length <= 78), else as encoded
 * words folded before each word after the first ("\n\t"), the first sized to the rest of the
 * first line: lines stay within 78 columns unless col alone is near that. The value decodes
 * back to exactly the sanitised text; when it would be longer than cap bytes, the text is
 * shortened at a character boundary first (then it decodes to a prefix of it). Returns the
 * length written; 0 when the text is empty after sanitising; -1 when nothing fits (out is ""
 * then). */
int mail_text_value(const char *text, size_t len, size_t col, size_t cap, char *out, size_t outlen);

/* Folds a structured value built with MAIL_FOLD marks (each stands for one space where the
 * value may fold; no other control bytes): a mark becomes " ", or "\n\t" when the next segment
 * would pass column 78; the first line starts at column col. Whole segments only: stops
 * before a segment that would not fit in outlen. Returns the length written (NUL-terminated). */
size_t mail_fold(const char *in, size_t len, size_t col, char *out, size_t outlen);

#endif
