/*
 * test_addr.c - the From header parser, the MAIL FROM parser, bounce detection.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mail/mail.h"
#include "tests/harness/th.h"

/* Parses value and checks rc, the address (when OK) and the count. */
static void from_is(const char *value, enum mail_addr_rc want_rc, const char *want, int want_n)
{
	char out[256];
	int n = -1;
	enum mail_addr_rc rc = mail_addr_from_header(value, out, sizeof(out), &n);

	ck_assert_msg(rc == want_rc, "[%s]: rc %s, want %s (out [%s])", value, mail_addr_rc_name(rc),
	    mail_addr_rc_name(want_rc), out);
	if (want_rc == MAIL_ADDR_OK)
		ck_assert_msg(strcmp(out, want) == 0, "[%s]: got [%s], want [%s]", value, out, want);
	else
		ck_assert_msg(out[0] == '\0', "[%s]: out not cleared on error: [%s]", value, out);
	if (want_n >= 0)
		ck_assert_msg(n == want_n, "[%s]: count %d, want %d", value, n, want_n);
}

static void env_is(const char *arg, enum mail_addr_rc want_rc, const char *want)
{
	char out[256];
	enum mail_addr_rc rc = mail_addr_envelope(arg, out, sizeof(out));

	ck_assert_msg(rc == want_rc, "[%s]: rc %s, want %s", arg, mail_addr_rc_name(rc),
	    mail_addr_rc_name(want_rc));
	if (want_rc == MAIL_ADDR_OK)
		ck_assert_msg(strcmp(out, want) == 0, "[%s]: got [%s], want [%s]", arg, out, want);
}

START_TEST(bare_and_angle)
{
	from_is("jenny@example.com", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("<jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("  <jenny@example.com>  ", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("Jenny Rosen <jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("Jenny.Q.Rosen <jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("first.last+tag@sub.example.co.uk", MAIL_ADDR_OK, "first.last+tag@sub.example.co.uk", 1);
	from_is("!#$%&'*+-/=?^_`{|}~@example.com", MAIL_ADDR_OK, "!#$%&'*+-/=?^_`{|}~@example.com", 1);
}
END_TEST

START_TEST(domain_lowercased_local_untouched)
{
	from_is("Jenny.Rosen@Example.COM", MAIL_ADDR_OK, "Jenny.Rosen@example.com", 1);
	from_is("<MiXeD@MiXeD.Org>", MAIL_ADDR_OK, "MiXeD@mixed.org", 1);
	from_is("a@[IPv6:2001:DB8::1]", MAIL_ADDR_OK, "a@[ipv6:2001:db8::1]", 1);
}
END_TEST

START_TEST(quoted_display_names)
{
	from_is("\"Rosen, Jenny\" <jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("\"Jenny \\\"JR\\\" Rosen\" <jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("\"a <fake@evil.com>\" <real@example.com>", MAIL_ADDR_OK, "real@example.com", 1);
	from_is("\"x@y.com\" <real@example.com>", MAIL_ADDR_OK, "real@example.com", 1);
	from_is("\"\" <real@example.com>", MAIL_ADDR_OK, "real@example.com", 1);
	from_is("\"back\\\\slash\" <b@example.com>", MAIL_ADDR_OK, "b@example.com", 1);
	/* unquoted address-looking display name, common in the wild */
	from_is("jenny@example.com <jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("evil@evil.com <good@example.com>", MAIL_ADDR_OK, "good@example.com", 1);
}
END_TEST

START_TEST(comments)
{
	from_is("jenny@example.com (Jenny Rosen)", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("(lead) Jenny <jenny@example.com> (trail)", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("jenny(c1)@(c2)example.com", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("Jenny <jenny@example.com (a (nested (comment)) here)>", MAIL_ADDR_OK,
	    "jenny@example.com", 1);
	from_is("Jenny <jenny@example.com> (with \\) escaped paren and <x@y.z>)", MAIL_ADDR_OK,
	    "jenny@example.com", 1);
	from_is("(a@evil.com) b@example.com", MAIL_ADDR_OK, "b@example.com", 1);
}
END_TEST

START_TEST(comment_depth_bound)
{
	char v[200];
	int i, o = 0;

	/* exactly the limit parses */
	for (i = 0; i < MAIL_ADDR_COMMENT_DEPTH; i++)
		v[o++] = '(';
	for (i = 0; i < MAIL_ADDR_COMMENT_DEPTH; i++)
		v[o++] = ')';
	snprintf(v + o, sizeof(v) - (size_t)o, " a@example.com");
	from_is(v, MAIL_ADDR_OK, "a@example.com", 1);
	/* one deeper does not */
	o = 0;
	for (i = 0; i <= MAIL_ADDR_COMMENT_DEPTH; i++)
		v[o++] = '(';
	for (i = 0; i <= MAIL_ADDR_COMMENT_DEPTH; i++)
		v[o++] = ')';
	snprintf(v + o, sizeof(v) - (size_t)o, " a@example.com");
	from_is(v, MAIL_ADDR_MALFORMED, NULL, -1);
}
END_TEST

START_TEST(encoded_words)
{
	from_is("=?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <jm@example.de>", MAIL_ADDR_OK, "jm@example.de", 1);
	from_is("=?iso-8859-1?Q?J=FCrgen?= =?iso-8859-1?Q?_M=FCller?= <jm@example.de>", MAIL_ADDR_OK,
	    "jm@example.de", 1);
	/* broken generators put specials inside Q words: the word is still one atom */
	from_is("=?utf-8?Q?M=C3=BCller,_J.?= <jm@example.de>", MAIL_ADDR_OK, "jm@example.de", 1);
	from_is("=?utf-8?Q?a<b>c@d?= <jm@example.de>", MAIL_ADDR_OK, "jm@example.de", 1);
	from_is("\"=?UTF-8?B?SsO8cmdlbg==?=\" <jm@example.de>", MAIL_ADDR_OK, "jm@example.de", 1);
	/* not an encoded word: "=?" starts an ordinary atom */
	from_is("=?x@example.com", MAIL_ADDR_OK, "=?x@example.com", 1);
}
END_TEST

START_TEST(utf8_display_name_and_local_part)
{
	from_is("Jürgen Müller <jm@example.de>", MAIL_ADDR_OK, "jm@example.de", 1);
	from_is("\"田中\" <tanaka@example.jp>", MAIL_ADDR_OK, "tanaka@example.jp", 1);
	from_is("δοκιμή@παράδειγμα.δοκιμή", MAIL_ADDR_OK, "δοκιμή@παράδειγμα.δοκιμή", 1);
}
END_TEST

START_TEST(folded_values)
{
	from_is("Jenny Rosen\r\n <jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("\"Jenny\r\n\tRosen\"\n\t<jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("Jenny (a\r\n comment) <jenny@\r\n example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
}
END_TEST

/* Found by fuzz_mail_addr: dots must separate words, and words joined across folding must not
 * form an encoded word; both gave results that did not parse again to themselves. */
START_TEST(dots_and_joined_encoded_words)
{
	from_is("a..b@example.com", MAIL_ADDR_MALFORMED, NULL, -1);
	from_is(".a@example.com", MAIL_ADDR_MALFORMED, NULL, -1);
	from_is("a.@example.com", MAIL_ADDR_MALFORMED, NULL, -1);
	from_is("a . b@example.com", MAIL_ADDR_OK, "a.b@example.com", 1);
	from_is("=?.\n ?b?\?=?.\n ?b?Bz@example.com", MAIL_ADDR_MALFORMED, NULL, -1);
	from_is("=?utf-8?q?x?=@example.com", MAIL_ADDR_MALFORMED, NULL, -1);
}
END_TEST

START_TEST(groups)
{
	from_is("Team: a@example.com, b@example.org;", MAIL_ADDR_OK, "a@example.com", 2);
	from_is("Team: Alice <a@example.com>, (x) b@example.org ;", MAIL_ADDR_OK, "a@example.com", 2);
	from_is("Undisclosed recipients:;", MAIL_ADDR_EMPTY, NULL, 0);
	from_is("Undisclosed recipients: ;", MAIL_ADDR_EMPTY, NULL, 0);
	from_is("Empty:;, c@example.net", MAIL_ADDR_OK, "c@example.net", 1);
	from_is("\"Quoted Team\": a@example.com;", MAIL_ADDR_OK, "a@example.com", 1);
	/* a group left open at the end is accepted */
	from_is("Team: a@example.com", MAIL_ADDR_OK, "a@example.com", 1);
	/* nested groups and stray ';' are not */
	from_is("A: B: a@example.com;;", MAIL_ADDR_MALFORMED, NULL, -1);
	from_is("a@example.com;", MAIL_ADDR_MALFORMED, NULL, -1);
	from_is(": a@example.com;", MAIL_ADDR_MALFORMED, NULL, -1);
}
END_TEST

START_TEST(several_addresses)
{
	from_is("a@example.com, b@example.com", MAIL_ADDR_OK, "a@example.com", 2);
	from_is("A <a@example.com>, B <b@example.com>, c@example.com", MAIL_ADDR_OK, "a@example.com", 3);
	/* obsolete empty list elements */
	from_is(", , a@example.com, ,", MAIL_ADDR_OK, "a@example.com", 1);
	from_is("a@example.com b@example.com", MAIL_ADDR_MALFORMED, NULL, -1);
	/* the whole value must parse, not just the first address */
	from_is("a@example.com, <broken", MAIL_ADDR_MALFORMED, NULL, -1);
}
END_TEST

START_TEST(obsolete_route)
{
	from_is("<@relay.example.net:jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("Jenny <@a.example,@b.example:jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("<@a.example,,@b.example:jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com", 1);
	from_is("<@a.example jenny@example.com>", MAIL_ADDR_MALFORMED, NULL, -1);
	from_is("<@:jenny@example.com>", MAIL_ADDR_MALFORMED, NULL, -1);
}
END_TEST

START_TEST(quoted_local_parts)
{
	from_is("\"john doe\"@example.com", MAIL_ADDR_OK, "\"john doe\"@example.com", 1);
	from_is("<\"a@b\"@Example.com>", MAIL_ADDR_OK, "\"a@b\"@example.com", 1);
	from_is("\"a\\\"b\"@example.com", MAIL_ADDR_OK, "\"a\\\"b\"@example.com", 1);
	from_is("\"folded\r\n local\"@example.com", MAIL_ADDR_OK, "\"folded local\"@example.com", 1);
	/* obsolete local part: words and dots with CFWS between */
	from_is("john . doe@example.com", MAIL_ADDR_OK, "john.doe@example.com", 1);
	from_is("\"john\".doe@example.com", MAIL_ADDR_OK, "\"john\".doe@example.com", 1);
}
END_TEST

START_TEST(ip_literals)
{
	from_is("a@[192.0.2.1]", MAIL_ADDR_OK, "a@[192.0.2.1]", 1);
	from_is("A <a@[192.0.2.1]>", MAIL_ADDR_OK, "a@[192.0.2.1]", 1);
	from_is("a@[192.0.2.1", MAIL_ADDR_MALFORMED, NULL, -1);
	from_is("a@[1[2]", MAIL_ADDR_MALFORMED, NULL, -1);
}
END_TEST

START_TEST(empty_values)
{
	from_is("", MAIL_ADDR_EMPTY, NULL, 0);
	from_is("   \r\n\t ", MAIL_ADDR_EMPTY, NULL, 0);
	from_is("(only a comment)", MAIL_ADDR_EMPTY, NULL, 0);
	from_is(",,,", MAIL_ADDR_EMPTY, NULL, 0);
}
END_TEST

START_TEST(malformed)
{
	static const char *const bad[] = {
		"Jenny Rosen", "jenny", "@example.com", "jenny@", "jenny@@example.com",
		"<jenny@example.com", "jenny@example.com>", "<>", "Jenny <>", "<<a@b.c>>",
		"\"unterminated <a@b.c>", "(unterminated a@b.c", "a@b.c)", "a@b..c", "a@.b.c",
		"a@b.c.", "a@b,c", "a@exa$mple.com", "a b@example.com", "a@example.com (x",
		"Jenny <a@b.c> trailing", "a\001b@example.com", "\"ctl\001\"@example.com",
		"a@example.com\x7f", "<a@b.c> <d@e.f>", "a@b.c\\", "\"x\\", "(x\\",
		"Jenny <a@b.c>, ]", "Jenny <=?utf-8?q?x?=@b.c>x",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		from_is(bad[i], MAIL_ADDR_MALFORMED, NULL, -1);
}
END_TEST

START_TEST(length_limits)
{
	char local[80], v[400], want[400];
	char dom[260];
	size_t i;

	/* 64 octets of local part pass, 65 do not */
	memset(local, 'x', 64);
	local[64] = '\0';
	snprintf(v, sizeof(v), "<%s@example.com>", local);
	snprintf(want, sizeof(want), "%s@example.com", local);
	from_is(v, MAIL_ADDR_OK, want, 1);
	memset(local, 'x', 65);
	local[65] = '\0';
	snprintf(v, sizeof(v), "<%s@example.com>", local);
	from_is(v, MAIL_ADDR_TOO_LONG, NULL, 1);
	/* 254 octets pass, 255 do not */
	for (i = 0; i < 250; i++)
		dom[i] = (i % 50 == 10) ? '.' : 'd';
	dom[250] = '\0';
	snprintf(v, sizeof(v), "ab@%s", dom + 0);	/* 2 + 1 + 250 = 253 */
	snprintf(want, sizeof(want), "ab@%s", dom);
	from_is(v, MAIL_ADDR_OK, want, 1);
	snprintf(v, sizeof(v), "abc@%s", dom);		/* 254 */
	snprintf(want, sizeof(want), "abc@%s", dom);
	from_is(v, MAIL_ADDR_OK, want, 1);
	snprintf(v, sizeof(v), "abcd@%s", dom);		/* 255 */
	from_is(v, MAIL_ADDR_TOO_LONG, NULL, 1);
	/* a later long address does not matter */
	snprintf(v, sizeof(v), "a@b.c, abcd@%s", dom);
	from_is(v, MAIL_ADDR_OK, "a@b.c", 2);
}
END_TEST

START_TEST(outlen_limits)
{
	char out[16];
	int n;

	ck_assert_int_eq(mail_addr_from_header("abc@example.com", out, 16, &n), MAIL_ADDR_OK);
	ck_assert_str_eq(out, "abc@example.com");
	ck_assert_int_eq(mail_addr_from_header("abcd@example.com", out, 16, &n), MAIL_ADDR_TOO_LONG);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(mail_addr_from_header("a@b.c", out, 0, &n), MAIL_ADDR_MALFORMED);
	ck_assert_int_eq(mail_addr_from_header(NULL, out, sizeof(out), &n), MAIL_ADDR_MALFORMED);
	ck_assert_int_eq(mail_addr_from_header("a@b.c", out, sizeof(out), NULL), MAIL_ADDR_OK);
	ck_assert_int_eq(mail_addr_envelope("<abcd@example.com>", out, 16), MAIL_ADDR_TOO_LONG);
	ck_assert_int_eq(mail_addr_envelope(NULL, out, 16), MAIL_ADDR_MALFORMED);
}
END_TEST

START_TEST(huge_hostile_values)
{
	static char v[200000];
	char out[256];
	int n;
	size_t i;

	/* a very long local part: too long, no overflow */
	memset(v, 'a', 100000);
	snprintf(v + 100000, sizeof(v) - 100000, "@example.com");
	ck_assert_int_eq(mail_addr_from_header(v, out, sizeof(out), &n), MAIL_ADDR_TOO_LONG);
	/* unbalanced open parens: malformed, no recursion */
	memset(v, '(', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	ck_assert_int_eq(mail_addr_from_header(v, out, sizeof(out), &n), MAIL_ADDR_MALFORMED);
	/* many addresses: all counted */
	v[0] = '\0';
	for (i = 0; i < 5000; i++)
		memcpy(v + i * 8, "a@b.cd, ", 8);
	v[5000 * 8] = '\0';
	ck_assert_int_eq(mail_addr_from_header(v, out, sizeof(out), &n), MAIL_ADDR_OK);
	ck_assert_int_eq(n, 5000);
	ck_assert_str_eq(out, "a@b.cd");
	/* many quotes */
	memset(v, '"', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	ck_assert_int_eq(mail_addr_from_header(v, out, sizeof(out), &n), MAIL_ADDR_MALFORMED);
}
END_TEST

START_TEST(envelope)
{
	env_is("<jenny@Example.com>", MAIL_ADDR_OK, "jenny@example.com");
	env_is("jenny@example.com", MAIL_ADDR_OK, "jenny@example.com");
	env_is("<>", MAIL_ADDR_NULL, NULL);
	env_is(" <> ", MAIL_ADDR_NULL, NULL);
	env_is("", MAIL_ADDR_EMPTY, NULL);
	env_is("<@relay.example:jenny@example.com>", MAIL_ADDR_OK, "jenny@example.com");
	env_is("<\"john doe\"@example.com>", MAIL_ADDR_OK, "\"john doe\"@example.com");
	env_is("<a@[192.0.2.1]>", MAIL_ADDR_OK, "a@[192.0.2.1]");
	env_is("<jenny@example.com", MAIL_ADDR_MALFORMED, NULL);
	env_is("<jenny@example.com> SIZE=100", MAIL_ADDR_MALFORMED, NULL);
	env_is("<jenny(comment)@example.com>", MAIL_ADDR_MALFORMED, NULL);
	env_is("Jenny <jenny@example.com>", MAIL_ADDR_MALFORMED, NULL);
	env_is("<>x", MAIL_ADDR_MALFORMED, NULL);
	env_is("<a@b.c>, <d@e.f>", MAIL_ADDR_MALFORMED, NULL);
}
END_TEST

START_TEST(bounces)
{
	ck_assert(mail_addr_is_bounce("MAILER-DAEMON@mx.example.com"));
	ck_assert(mail_addr_is_bounce("mailer-daemon@example.com"));
	ck_assert(mail_addr_is_bounce("Mailer-Daemon"));
	ck_assert(mail_addr_is_bounce("double-bounce@mx.example.com"));
	ck_assert(mail_addr_is_bounce("bounce@example.com"));
	ck_assert(mail_addr_is_bounce("bounces@example.com"));
	ck_assert(mail_addr_is_bounce("bounces+1234-jenny=example.com@lists.example.org"));
	ck_assert(mail_addr_is_bounce("bounce-mc.us5_123.456-jenny=example.com@mail123.mcsv.net"));
	ck_assert(mail_addr_is_bounce("Bounce=abc@example.com"));
	ck_assert(!mail_addr_is_bounce("postmaster@example.com"));
	ck_assert(!mail_addr_is_bounce("noreply@example.com"));
	ck_assert(!mail_addr_is_bounce("no-reply@example.com"));
	ck_assert(!mail_addr_is_bounce("bouncer@example.com"));
	ck_assert(!mail_addr_is_bounce("bounce.house@example.com"));
	ck_assert(!mail_addr_is_bounce("jenny@bounce.example.com"));
	ck_assert(!mail_addr_is_bounce("mailer-daemonic@example.com"));
	ck_assert(!mail_addr_is_bounce(""));
	ck_assert(!mail_addr_is_bounce(NULL));
}
END_TEST

START_TEST(helpers)
{
	ck_assert_str_eq(mail_addr_domain("a@b.c"), "b.c");
	ck_assert_str_eq(mail_addr_domain("\"x@y\"@b.c"), "b.c");
	ck_assert_str_eq(mail_addr_domain("a@"), "");
	ck_assert_ptr_null(mail_addr_domain("abc"));
	ck_assert_ptr_null(mail_addr_domain(NULL));
	ck_assert_str_eq(mail_addr_rc_name(MAIL_ADDR_OK), "ok");
	ck_assert_str_eq(mail_addr_rc_name(MAIL_ADDR_EMPTY), "empty");
	ck_assert_str_eq(mail_addr_rc_name(MAIL_ADDR_MALFORMED), "malformed");
	ck_assert_str_eq(mail_addr_rc_name(MAIL_ADDR_TOO_LONG), "too-long");
	ck_assert_str_eq(mail_addr_rc_name(MAIL_ADDR_NULL), "null");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mail_addr");
	TCase *tc = tcase_create("addr");

	tcase_add_test(tc, bare_and_angle);
	tcase_add_test(tc, domain_lowercased_local_untouched);
	tcase_add_test(tc, quoted_display_names);
	tcase_add_test(tc, comments);
	tcase_add_test(tc, comment_depth_bound);
	tcase_add_test(tc, encoded_words);
	tcase_add_test(tc, utf8_display_name_and_local_part);
	tcase_add_test(tc, folded_values);
	tcase_add_test(tc, dots_and_joined_encoded_words);
	tcase_add_test(tc, groups);
	tcase_add_test(tc, several_addresses);
	tcase_add_test(tc, obsolete_route);
	tcase_add_test(tc, quoted_local_parts);
	tcase_add_test(tc, ip_literals);
	tcase_add_test(tc, empty_values);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, length_limits);
	tcase_add_test(tc, outlen_limits);
	tcase_add_test(tc, huge_hostile_values);
	tcase_add_test(tc, envelope);
	tcase_add_test(tc, bounces);
	tcase_add_test(tc, helpers);
	suite_add_tcase(s, tc);
	return th_run(s);
}
