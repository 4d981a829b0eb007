/*
 * test_policy.c - CIDR lists, address/domain lists, the Authentication-Results trust adapter.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "milter/mf_policy.h"
#include "tests/harness/th.h"

static bool peer_in(const struct mf_cidr_list *l, const char *ip)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;

	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, ip, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		return mf_cidr_match(l, (const struct sockaddr *)&s4);
	}
	ck_assert_msg(inet_pton(AF_INET6, ip, &s6.sin6_addr) == 1, "bad test address %s", ip);
	s6.sin6_family = AF_INET6;
	return mf_cidr_match(l, (const struct sockaddr *)&s6);
}

static struct mf_cidr_list *cidr(const char *list)
{
	struct mf_cidr_list *l = NULL;
	char err[256];

	ck_assert_msg(mf_cidr_parse(list, &l, err, sizeof(err)) == 0, "[%s]: %s", list, err);
	ck_assert_ptr_nonnull(l);
	return l;
}

static void cidr_bad(const char *list, const char *want_err)
{
	struct mf_cidr_list *l = (struct mf_cidr_list *)1;
	char err[256];

	ck_assert_msg(mf_cidr_parse(list, &l, err, sizeof(err)) == -1, "[%s] parsed", list);
	ck_assert_ptr_null(l);
	ck_assert_msg(strcmp(err, want_err) == 0, "[%s]: err [%s], want [%s]", list, err, want_err);
}

START_TEST(cidr_v4)
{
	struct mf_cidr_list *l = cidr("10.0.0.0/8, 192.168.1.5 172.16.0.0/12,127.0.0.1/32");

	ck_assert_uint_eq(mf_cidr_count(l), 4);
	ck_assert(peer_in(l, "10.0.0.1"));
	ck_assert(peer_in(l, "10.255.255.255"));
	ck_assert(!peer_in(l, "11.0.0.0"));
	ck_assert(!peer_in(l, "9.255.255.255"));
	ck_assert(peer_in(l, "192.168.1.5"));
	ck_assert(!peer_in(l, "192.168.1.6"));
	ck_assert(peer_in(l, "172.31.255.255"));
	ck_assert(!peer_in(l, "172.32.0.0"));
	ck_assert(peer_in(l, "127.0.0.1"));
	ck_assert(!peer_in(l, "::1"));
	mf_cidr_free(l);
}
END_TEST

START_TEST(cidr_v6)
{
	struct mf_cidr_list *l = cidr("::1, 2001:db8::/32, [fe80::]/10");

	ck_assert(peer_in(l, "::1"));
	ck_assert(!peer_in(l, "::2"));
	ck_assert(peer_in(l, "2001:db8:ffff::1"));
	ck_assert(!peer_in(l, "2001:db9::1"));
	ck_assert(peer_in(l, "fe80::1"));
	ck_assert(peer_in(l, "febf:ffff::1"));
	ck_assert(!peer_in(l, "fec0::1"));
	ck_assert(!peer_in(l, "127.0.0.1"));
	mf_cidr_free(l);
	l = cidr("2001:db9:1:2::4/127");
	ck_assert(peer_in(l, "2001:db9:1:2::4"));
	ck_assert(peer_in(l, "2001:db9:1:2::5"));
	ck_assert(!peer_in(l, "2001:db9:1:2::6"));
	mf_cidr_free(l);
}
END_TEST

START_TEST(cidr_odd_prefixes)
{
	struct mf_cidr_list *l = cidr("192.168.100.0/22 0.0.0.0/0");

	ck_assert(peer_in(l, "1.2.3.4"));
	mf_cidr_free(l);
	l = cidr("192.168.100.0/22, 2001:db8:8000::/33");
	ck_assert(peer_in(l, "192.168.103.255"));
	ck_assert(!peer_in(l, "192.168.104.0"));
	ck_assert(!peer_in(l, "192.168.99.255"));
	ck_assert(peer_in(l, "2001:db8:ffff::"));
	ck_assert(!peer_in(l, "2001:db8:7fff::"));
	mf_cidr_free(l);
}
END_TEST

START_TEST(cidr_v4_mapped)
{
	struct mf_cidr_list *l = cidr("10.0.0.0/8");

	ck_assert(peer_in(l, "::ffff:10.1.2.3"));
	ck_assert(!peer_in(l, "::ffff:11.1.2.3"));
	/* not mapped: ::10.1.2.3 (deprecated compatible form) is IPv6 */
	ck_assert(!peer_in(l, "::10.1.2.3"));
	mf_cidr_free(l);
	/* a mapped item is stored as IPv4 and matches plain IPv4 peers */
	l = cidr("::ffff:192.0.2.0/120");
	ck_assert(peer_in(l, "192.0.2.77"));
	ck_assert(peer_in(l, "::ffff:192.0.2.77"));
	ck_assert(!peer_in(l, "192.0.3.1"));
	mf_cidr_free(l);
}
END_TEST

START_TEST(cidr_empty_and_other_families)
{
	struct mf_cidr_list *l = cidr("");
	struct sockaddr_un su;

	ck_assert_uint_eq(mf_cidr_count(l), 0);
	ck_assert(!peer_in(l, "10.0.0.1"));
	mf_cidr_free(l);
	l = cidr(" , ,\t");
	ck_assert_uint_eq(mf_cidr_count(l), 0);
	mf_cidr_free(l);
	l = cidr("0.0.0.0/0, ::/0");
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	ck_assert(!mf_cidr_match(l, (const struct sockaddr *)&su));
	ck_assert(!mf_cidr_match(l, NULL));
	ck_assert(!mf_cidr_match(NULL, (const struct sockaddr *)&su));
	ck_assert_uint_eq(mf_cidr_count(NULL), 0);
	mf_cidr_free(l);
	mf_cidr_free(NULL);
}
END_TEST

START_TEST(cidr_errors_name_the_item)
{
	cidr_bad("10.0.0.0/8, bogus, ::1", "bad item 'bogus': not an IPv4 or IPv6 address");
	cidr_bad("10.0.0.0/33", "bad item '10.0.0.0/33': prefix length too long for the address family");
	cidr_bad("10.0.0.0/x", "bad item '10.0.0.0/x': prefix length is not a number from 0 to 128");
	cidr_bad("10.0.0.0/", "bad item '10.0.0.0/': prefix length is not a number from 0 to 128");
	cidr_bad("10.0.0.0/-1", "bad item '10.0.0.0/-1': prefix length is not a number from 0 to 128");
	cidr_bad("::1/129", "bad item '::1/129': prefix length is not a number from 0 to 128");
	cidr_bad("10.1.2.3/8", "bad item '10.1.2.3/8': host bits set (did you mean 10.0.0.0/8?)");
	cidr_bad("2001:db8::1/32", "bad item '2001:db8::1/32': host bits set (did you mean 2001:db8::/32?)");
	cidr_bad("[::1", "bad item '[::1': unbalanced '['");
	cidr_bad("10.0.0", "bad item '10.0.0': not an IPv4 or IPv6 address");
	cidr_bad("1.2.3.4.5", "bad item '1.2.3.4.5': not an IPv4 or IPv6 address");
	{
		char big[400], err[512];
		struct mf_cidr_list *l = NULL;

		memset(big, '1', 300);
		big[300] = '\0';
		ck_assert_int_eq(mf_cidr_parse(big, &l, err, sizeof(err)), -1);
		ck_assert_ptr_null(l);
		ck_assert_msg(strncmp(err, "bad item '111", 13) == 0 &&
		    strstr(err, "': item too long") != NULL, "[%s]", err);
	}
}
END_TEST

static struct mf_match_list *mlist(const char *list)
{
	struct mf_match_list *l = NULL;
	char err[256];

	ck_assert_msg(mf_match_parse(list, &l, err, sizeof(err)) == 0, "[%s]: %s", list, err);
	return l;
}

static void mlist_bad(const char *list, const char *want_err)
{
	struct mf_match_list *l = NULL;
	char err[256];

	ck_assert_msg(mf_match_parse(list, &l, err, sizeof(err)) == -1, "[%s] parsed", list);
	ck_assert_ptr_null(l);
	ck_assert_msg(strcmp(err, want_err) == 0, "[%s]: err [%s], want [%s]", list, err, want_err);
}

START_TEST(match_lists)
{
	struct mf_match_list *l =
	    mlist("support@example.com, Billing@Example.com @example.org,example.net .example.io");

	ck_assert_uint_eq(mf_match_count(l), 5);
	ck_assert(mf_match_addr(l, "support@example.com"));
	ck_assert(mf_match_addr(l, "SUPPORT@EXAMPLE.COM"));
	ck_assert(mf_match_addr(l, "billing@example.com"));
	ck_assert(!mf_match_addr(l, "sales@example.com"));
	ck_assert(!mf_match_addr(l, "support@sub.example.com"));
	ck_assert(mf_match_addr(l, "anyone@example.org"));
	ck_assert(mf_match_addr(l, "anyone@EXAMPLE.ORG"));
	ck_assert(!mf_match_addr(l, "anyone@sub.example.org"));
	ck_assert(!mf_match_addr(l, "anyone@badexample.org"));
	ck_assert(mf_match_addr(l, "x@example.net"));
	ck_assert(!mf_match_addr(l, "x@a.example.net"));
	ck_assert(mf_match_addr(l, "x@a.example.io"));
	ck_assert(mf_match_addr(l, "x@b.a.Example.IO"));
	ck_assert(!mf_match_addr(l, "x@example.io"));
	ck_assert(!mf_match_addr(l, "x@badexample.io"));
	/* a bare name is a domain (authserv-ids) */
	ck_assert(mf_match_addr(l, "example.org"));
	ck_assert(mf_match_addr(l, "mx.example.io"));
	ck_assert(!mf_match_addr(l, "support"));
	ck_assert(!mf_match_addr(l, ""));
	ck_assert(!mf_match_addr(l, NULL));
	ck_assert(!mf_match_addr(NULL, "x@example.net"));
	mf_match_free(l);
	l = mlist("");
	ck_assert_uint_eq(mf_match_count(l), 0);
	ck_assert(!mf_match_addr(l, "x@example.net"));
	mf_match_free(l);
}
END_TEST

START_TEST(match_errors_name_the_item)
{
	char big[400];

	mlist_bad("ok.example, bad..example", "bad item 'bad..example': not a valid domain");
	mlist_bad("user@", "bad item 'user@': not a valid domain");
	mlist_bad("@", "bad item '@': not a valid domain");
	mlist_bad(".", "bad item '.': not a valid domain");
	mlist_bad("@a@b.com", "bad item '@a@b.com': more than one '@'");
	mlist_bad("exa$mple.com", "bad item 'exa$mple.com': not a valid domain");
	mlist_bad("example.com.", "bad item 'example.com.': not a valid domain");
	memset(big, 'a', 300);
	big[300] = '\0';
	ck_assert_int_eq(mf_match_parse(big, &(struct mf_match_list *){ NULL }, NULL, 0), -1);
}
END_TEST

/* The adapter over mail_authres_dmarc_pass() (tested in tests/mail/test_authres.c): the
 * authserv-id is checked against the match list. */
START_TEST(authres_trusted_list)
{
	struct mf_match_list *t = mlist("mx.example.net, .trusted.example");
	struct mf_match_list *empty = mlist("");

	ck_assert(mf_authres_dmarc_pass("mx.example.net; dmarc=pass header.from=example.com", t,
	    "example.com", false));
	ck_assert(mf_authres_dmarc_pass("A.Trusted.Example; dmarc=pass header.from=example.com", t,
	    "example.com", false));
	ck_assert(!mf_authres_dmarc_pass("trusted.example; dmarc=pass header.from=example.com", t,
	    "example.com", false));
	ck_assert(!mf_authres_dmarc_pass("evil.example; dmarc=pass header.from=example.com", t,
	    "example.com", false));
	ck_assert(!mf_authres_dmarc_pass("mx.example.net; dmarc=fail header.from=example.com", t,
	    "example.com", false));
	ck_assert(mf_authres_dmarc_pass("mx.example.net; dkim=pass header.d=example.com", t,
	    "example.com", true));
	ck_assert(!mf_authres_dmarc_pass("mx.example.net; dmarc=pass header.from=example.com", empty,
	    "example.com", true));
	ck_assert(!mf_authres_dmarc_pass("mx.example.net; dmarc=pass header.from=example.com", NULL,
	    "example.com", true));
	mf_match_free(empty);
	mf_match_free(t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mf_policy");
	TCase *tc = tcase_create("policy");

	tcase_add_test(tc, cidr_v4);
	tcase_add_test(tc, cidr_v6);
	tcase_add_test(tc, cidr_odd_prefixes);
	tcase_add_test(tc, cidr_v4_mapped);
	tcase_add_test(tc, cidr_empty_and_other_families);
	tcase_add_test(tc, cidr_errors_name_the_item);
	tcase_add_test(tc, match_lists);
	tcase_add_test(tc, match_errors_name_the_item);
	tcase_add_test(tc, authres_trusted_list);
	suite_add_tcase(s, tc);
	return th_run(s);
}
