/*
 * test_authres.c - the RFC 8601 Authentication-Results gate (mail_authres.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/mail.h"
#include "tests/harness/th.h"

/* The caller's trust decision: "mx.example.net" and subdomains of "trusted.example". */
static bool trusted(void *arg, const char *id)
{
	size_t n = strlen(id);

	ck_assert_ptr_eq(arg, &trusted);
	return strcasecmp(id, "mx.example.net") == 0 ||
	    (n > 16 && strcasecmp(id + n - 16, ".trusted.example") == 0);
}

static bool ar(const char *value, const char *from_domain, bool dkim)
{
	return mail_authres_dmarc_pass(value, trusted, (void *)&trusted, from_domain, dkim);
}

START_TEST(authres_dmarc)
{
	ck_assert(ar("mx.example.net; dmarc=pass header.from=example.com", "example.com", false));
	ck_assert(ar("mx.example.net 1; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com;"
	    " dmarc=pass (p=reject dis=none) header.from=example.com", "example.com", false));
	ck_assert(ar("MX.Example.NET; DMARC=PASS header.from=EXAMPLE.com", "example.com", false));
	ck_assert(ar("a.trusted.example; dmarc=pass header.from=example.com", "example.com", false));
	ck_assert(ar("\"mx.example.net\"; dmarc=pass header.from=\"example.com\"", "example.com", false));
	ck_assert(ar("mx.example.net; dmarc = pass header . from = example.com", "example.com", false));
	ck_assert(ar("mx.example.net; dmarc/1=pass header.from=user@example.com", "example.com", false));
	/* from-domain mismatch, failure results, no header.from */
	ck_assert(!ar("mx.example.net; dmarc=pass header.from=example.org", "example.com", false));
	ck_assert(!ar("mx.example.net; dmarc=pass header.from=sub.example.com", "example.com", false));
	ck_assert(!ar("mx.example.net; dmarc=fail header.from=example.com", "example.com", false));
	ck_assert(!ar("mx.example.net; dmarc=none header.from=example.com", "example.com", false));
	ck_assert(!ar("mx.example.net; dmarc=passed header.from=example.com", "example.com", false));
	ck_assert(!ar("mx.example.net; dmarc=pass", "example.com", false));
	ck_assert(!ar("mx.example.net; none", "example.com", false));
	ck_assert(!ar("mx.example.net", "example.com", false));
	ck_assert(!ar("", "example.com", false));
	ck_assert(!ar("mx.example.net; dmarc=pass header.from=example.com", "", false));
	ck_assert(!ar(NULL, "example.com", false));
}
END_TEST

START_TEST(authres_untrusted_ids)
{
	ck_assert(!ar("evil.example; dmarc=pass header.from=example.com", "example.com", false));
	ck_assert(!ar("mx.example.net.evil; dmarc=pass header.from=example.com", "example.com", false));
	ck_assert(!ar("trusted.example; dmarc=pass header.from=example.com", "example.com", false));
	/* the authserv-id is the first token, not anything later */
	ck_assert(!ar("evil.example mx.example.net; dmarc=pass header.from=example.com", "example.com",
	    false));
	ck_assert(!ar("; mx.example.net; dmarc=pass header.from=example.com", "example.com", false));
	ck_assert(!mail_authres_dmarc_pass("mx.example.net; dmarc=pass header.from=example.com", NULL,
	    NULL, "example.com", true));
}
END_TEST

START_TEST(authres_comments_quotes_folding)
{
	/* a comment or a quoted reason claiming a pass is not a pass */
	ck_assert(!ar("mx.example.net; dmarc=fail (dmarc=pass header.from=example.com) header.from=example.com",
	    "example.com", false));
	ck_assert(!ar("mx.example.net; (; dmarc=pass header.from=example.com) dmarc=fail "
	    "header.from=example.com", "example.com", false));
	ck_assert(!ar("mx.example.net; dmarc=fail reason=\"x; dmarc=pass header.from=example.com\"",
	    "example.com", false));
	ck_assert(!ar("mx.example.net; spf=fail reason=\"dmarc=pass header.from=example.com\"",
	    "example.com", false));
	/* comments anywhere, nested, and folding */
	ck_assert(ar("mx.example.net (Postfix (1.2)); dmarc(x)=(y)pass (p=none) header.from=(z)example.com",
	    "example.com", false));
	ck_assert(ar("mx.example.net;\r\n\tspf=pass smtp.mailfrom=a@example.com;\r\n\tdmarc=pass\r\n"
	    "\theader.from=example.com", "example.com", false));
	/* quoted-pairs in comments and quoted strings */
	ck_assert(ar("mx.example.net; dmarc=pass (a \\) b; c) header.from=example.com", "example.com",
	    false));
	ck_assert(!ar("mx.example.net; dmarc=fail reason=\"x \\\"; dmarc=pass header.from=example.com\"",
	    "example.com", false));
	ck_assert(ar("mx.example.net; spf=pass reason=\"a \\\" b\"; dmarc=pass header.from=example.com",
	    "example.com", false));
	ck_assert(!ar("mx.example.net; dmarc=pass (unterminated header.from=example.com", "example.com",
	    false));
	ck_assert(!ar("mx.example.net; dmarc=pass header.from=\"example.com", "example.com", false));
}
END_TEST

START_TEST(authres_dkim_alignment)
{
	const char *v = "mx.example.net; dkim=pass header.d=example.com header.s=sel";

	ck_assert(!ar(v, "example.com", false));
	ck_assert(ar(v, "example.com", true));
	ck_assert(ar(v, "mail.example.com", true));	/* d is a parent */
	ck_assert(!ar(v, "example.org", true));
	ck_assert(!ar(v, "badexample.com", true));
	ck_assert(ar("mx.example.net; dkim=pass header.d=mail.example.com", "example.com", true));
	ck_assert(!ar("mx.example.net; dkim=pass header.d=com", "example.com", true));
	ck_assert(ar("mx.example.net; dkim=pass header.i=@example.com", "example.com", true));
	ck_assert(ar("mx.example.net; dkim=pass header.i=user@example.com header.b=abc", "example.com", true));
	ck_assert(!ar("mx.example.net; dkim=fail header.d=example.com", "example.com", true));
	ck_assert(!ar("mx.example.net; dkim=pass", "example.com", true));
	ck_assert(ar("mx.example.net; dkim=fail header.d=evil.com; dkim=pass header.d=example.com",
	    "example.com", true));
	ck_assert(!ar("mx.example.net; dmarc=fail header.from=example.com; dkim=pass header.d=evil.com",
	    "example.com", true));
}
END_TEST

START_TEST(authres_hostile)
{
	static char big[20000];
	char v[200];
	int i, o;

	memset(big, '(', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert(!ar(big, "example.com", true));
	memcpy(big, "mx.example.net; dmarc=pass header.from=example.com ", 51);
	memset(big + 51, ' ', sizeof(big) - 52);
	ck_assert(!ar(big, "example.com", true));	/* over 8 KB: fails closed */
	o = snprintf(v, sizeof(v), "mx.example.net; dmarc=pass header.from=example.com ");
	for (i = 0; i < 20; i++)
		v[o++] = '(';
	for (i = 0; i < 20; i++)
		v[o++] = ')';
	v[o] = '\0';
	ck_assert(!ar(v, "example.com", true));	/* comments nested too deep */
	ck_assert(!ar("mx.example.net;;;;=;==;.=.;\"", "example.com", true));
	ck_assert(!ar("mx.example.net; =pass header.from=example.com", "example.com", true));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mail_authres");
	TCase *tc = tcase_create("authres");

	tcase_add_test(tc, authres_dmarc);
	tcase_add_test(tc, authres_untrusted_ids);
	tcase_add_test(tc, authres_comments_quotes_folding);
	tcase_add_test(tc, authres_dkim_alignment);
	tcase_add_test(tc, authres_hostile);
	suite_add_tcase(s, tc);
	return th_run(s);
}
