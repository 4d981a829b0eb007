/*
 * mf_policy.h - data structures of the skip rules, parsed from config strings.
 *
 * Interface:
 *	mf_cidr_parse(list, &out, err, errlen)	"10.0.0.0/8, 192.168.1.5, ::1, [2001:db8::]/32"
 *	mf_cidr_match(list, sockaddr)		IPv4, IPv6; a v4-mapped IPv6 peer matches v4 entries
 *	mf_match_parse(list, &out, err, errlen)	"support@example.com, @example.org, example.net,
 *						.example.com"
 *	mf_match_addr(list, addr)		full address (any case), domain exactly ("@d" or
 *						"d"), or subdomains (".d"); addr without '@' is a
 *						domain (used for authserv-ids)
 *	mf_authres_dmarc_pass(value, trusted, from_domain, allow_aligned_dkim)
 *						mail_authres_dmarc_pass() (mail/, the RFC 8601
 *						parser) with the authserv-ids of a match list
 *
 * Items are separated by commas and/or white space. An empty list parses to an empty list
 * (matches nothing). Parse errors name the offending item in err; *out is NULL then.
 * Lists are immutable after parsing: matching is thread-safe.
 */
#ifndef MF_POLICY_H
#define MF_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct mf_cidr_list;
struct mf_match_list;

int mf_cidr_parse(const char *list, struct mf_cidr_list **out, char *err, size_t errlen);
bool mf_cidr_match(const struct mf_cidr_list *l, const struct sockaddr *sa);
size_t mf_cidr_count(const struct mf_cidr_list *l);
void mf_cidr_free(struct mf_cidr_list *l);

int mf_match_parse(const char *list, struct mf_match_list **out, char *err, size_t errlen);
bool mf_match_addr(const struct mf_match_list *l, const char *addr);
size_t mf_match_count(const struct mf_match_list *l);
void mf_match_free(struct mf_match_list *l);

/* True when value (one Authentication-Results header value, folded or not) comes from an
 * authserv-id in trusted (an empty or NULL list trusts nothing) and says dmarc=pass with
 * header.from equal to from_domain (any case); or, when allow_aligned_dkim, dkim=pass with
 * header.d (else header.i's domain) equal to from_domain, a parent of it (with at least one
 * dot) or a subdomain of it (relaxed alignment without a public suffix list). Incoming
 * Authentication-Results headers that claim a trusted authserv-id must be removed before
 * this runs (RFC 8601 section 5: by the MTA or the authenticating milters), else a sender
 * can forge one. */
bool mf_authres_dmarc_pass(const char *header_value, const struct mf_match_list *trusted_authserv_ids,
    const char *from_domain, bool allow_aligned_dkim);

#endif
