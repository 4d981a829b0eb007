/*
 * test_conf.c - the option table and the config parser (milter/mf_conf.c): defaults, each
 * type's validation, errors that name the line, cross-option checks, secrets files, and
 * that every option in the table is documented in conf/stripe-milter.conf and the man page.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "milter/mf_accounts.h"
#include "milter/mf_conf.h"
#include "tests/harness/th.h"

static char dir[256];

static const char *write_conf(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads text; returns the error string ("" on success). */
static const char *load(const char *text, struct mf_conf **out)
{
	static char err[512];
	struct mf_conf *c;

	err[0] = '\0';
	c = mf_conf_load(write_conf("t.conf", text), err, sizeof(err));
	if (out)
		*out = c;
	else
		mf_conf_free(c);
	return err;
}

START_TEST(defaults)
{
	char err[128];
	struct mf_conf *c = mf_conf_defaults(err, sizeof(err));

	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->socket, "unix:/run/stripe-milter/stripe-milter.sock");
	ck_assert_int_eq(c->lookup_timeout_ms, 3000);
	ck_assert_int_eq(c->lookup_address, MF_ADDR_HEADER_FROM);
	ck_assert_int_eq(c->umask, 007);
	ck_assert(c->skip_authenticated);
	ck_assert_ptr_null(c->redis_host);
	ck_assert_str_eq(c->header_prefix, "X-Stripe-");
	ck_assert_int_eq(c->on_internal_error, MF_ON_ACCEPT);
	mf_conf_free(c);
}
END_TEST

START_TEST(values_of_every_type)
{
	struct mf_conf *c;
	const char *err = load("# comment\n\n  LookupTimeout 1500  \nbackground NO\nUMask 027\n"
	    "LookupAddress header-from-or-envelope\nOn-InternalError tempfail\n"
	    "Recipients support@example.com, @example.org\n", &c);

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(c->lookup_timeout_ms, 1500);
	ck_assert(!c->background);
	ck_assert_int_eq(c->umask, 027);
	ck_assert_int_eq(c->lookup_address, MF_ADDR_HEADER_OR_ENVELOPE);
	ck_assert_int_eq(c->on_internal_error, MF_ON_TEMPFAIL);
	ck_assert_str_eq(c->recipients, "support@example.com, @example.org");
	mf_conf_free(c);
}
END_TEST

START_TEST(errors_name_the_line)
{
	const char *e;

	e = load("Socket inet:1@127.0.0.1\nNoSuchOption 1\n", NULL);
	ck_assert_msg(strstr(e, "t.conf:2: unknown option 'NoSuchOption'") != NULL, "%s", e);
	e = load("LookupTimeout abc\n", NULL);
	ck_assert_msg(strstr(e, ":1: LookupTimeout: 'abc' is not a whole number in 10..60000") != NULL, "%s", e);
	e = load("LookupTimeout 5\n", NULL);
	ck_assert_msg(strstr(e, "is not a whole number") != NULL, "%s", e);
	e = load("\n\nBackground maybe\n", NULL);
	ck_assert_msg(strstr(e, ":3: Background: 'maybe' is not yes or no") != NULL, "%s", e);
	e = load("LookupAddress reply-to\n", NULL);
	ck_assert_msg(strstr(e, "header-from envelope header-from-or-envelope") != NULL, "%s", e);
	e = load("UMask 999\n", NULL);
	ck_assert_msg(strstr(e, "not an octal mode") != NULL, "%s", e);
	e = load("Socket a\nsocket b\n", NULL);
	ck_assert_msg(strstr(e, ":2: Socket is already set on line 1") != NULL, "%s", e);
	e = load("PidFile\n", NULL);
	ck_assert_msg(strstr(e, ":1: PidFile has no value") != NULL, "%s", e);
}
END_TEST

START_TEST(cross_option_checks)
{
	const char *e;

	e = load("RedisHost r\nRedisSocket /s\n", NULL);
	ck_assert_msg(strstr(e, "RedisHost and RedisSocket") != NULL, "%s", e);
	e = load("StripeKey sk_test_x\nStripeKeyFile /k\n", NULL);
	ck_assert_msg(strstr(e, "StripeKey and StripeKeyFile") != NULL, "%s", e);
	e = load("RequireAuthResults yes\n", NULL);
	ck_assert_msg(strstr(e, "TrustedAuthservIDs") != NULL, "%s", e);
	e = load("HeaderPrefix X-Bad:\n", NULL);
	ck_assert_msg(strstr(e, "not a header name prefix") != NULL, "%s", e);
	/* a listener without a secret would refuse every delivery */
	e = load("WebhookListen 127.0.0.1:9898\n", NULL);
	ck_assert_msg(strstr(e, "WebhookListen needs WebhookSecretFile") != NULL, "%s", e);
}
END_TEST

START_TEST(missing_file)
{
	char err[256];

	ck_assert_ptr_null(mf_conf_load("/nonexistent/stripe-milter.conf", err, sizeof(err)));
	ck_assert_msg(strstr(err, "No such file") != NULL, "%s", err);
}
END_TEST

START_TEST(secret_files)
{
	char err[256];
	const char *p = write_conf("secret", "  s3cret-value \nsecond line\n");
	char *s;

	struct mf_conf *c;

	c = mf_conf_defaults(err, sizeof(err));
	ck_assert_ptr_nonnull(c);
	/* the one reader's rules apply (tests/common/test_secret.c has them all) */
	chmod(p, 0644);
	ck_assert_ptr_null(mf_conf_read_secret(c, p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "accessible by group or others") != NULL, "%s", err);
	chmod(p, 0600);
	ck_assert_ptr_null(mf_conf_read_secret(c, p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "more than one line") != NULL, "%s", err);
	p = write_conf("secret1", "  s3cret-value \n");
	chmod(p, 0600);
	s = mf_conf_read_secret(c, p, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_str_eq(s, "s3cret-value");
	free(s);
	p = write_conf("empty", "\n");
	chmod(p, 0600);
	ck_assert_ptr_null(mf_conf_read_secret(c, p, err, sizeof(err)));
	/* UserID names who must be able to re-read it: an unknown user is an error */
	free(c->user_id);
	c->user_id = strdup("no-such-user-x");
	ck_assert_ptr_null(mf_conf_read_secret(c, p, err, sizeof(err)));
	ck_assert_msg(strstr(err, "no user 'no-such-user-x'") != NULL, "%s", err);
	mf_conf_free(c);
}
END_TEST

START_TEST(secrets_not_dumped)
{
	struct mf_conf *c;
	char buf[16384];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	load("RedisPassword hunter2\n", &c);
	ck_assert_ptr_nonnull(c);
	mf_conf_dump(c, f);
	fclose(f);
	ck_assert_ptr_null(strstr(buf, "hunter2"));
	ck_assert_ptr_nonnull(strstr(buf, "RedisPassword            (set, not shown)"));
	mf_conf_free(c);
}
END_TEST

/* Every option in the table appears in the sample config and in the man page. */
static void check_documented(const char *file, const char *before)
{
	char path[1024], buf[16384], *doc = NULL, needle[16500];
	FILE *f, *t = fmemopen(buf, sizeof(buf), "w");
	size_t len = 0;
	char *line, *next;

	mf_conf_table_doc(t);
	fclose(t);
	snprintf(path, sizeof(path), "%s/conf/%s", th_srcdir(), file);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s missing", path);
	doc = malloc(1 << 20);
	len = fread(doc, 1, (1 << 20) - 1, f);
	doc[len] = '\0';
	fclose(f);
	for (line = buf; *line; line = next) {
		next = line + strcspn(line, "\n");
		if (*next)
			*next++ = '\0';
		line[strcspn(line, "\t")] = '\0';
		snprintf(needle, sizeof(needle), "%s%s ", before, line);
		ck_assert_msg(strstr(doc, needle) != NULL, "%s: option %s is not documented (%s)", file,
		    line, needle);
	}
	free(doc);
}

/* AccountTable (mf_accounts.c): the table of one the single-account options make, a table's
 * options and what it takes from the global ones, and its errors. */
START_TEST(account_table)
{
	struct mf_account_table t;
	struct mf_conf *c;
	char err[512], text[1024];

	ck_assert_str_eq(load("StripeKeyFile /k\nStripeAccount acct_1\nWebhookSecretFile /w\n"
	    "WebhookPreviousSecretFile /w0\nStripeAPIBase http://127.0.0.1:1\n", &c), "");
	ck_assert_int_eq(mf_accounts_load(c, &t, err, sizeof(err)), 0);
	ck_assert(!t.from_table);
	ck_assert_int_eq(t.n, 1);
	ck_assert_str_eq(t.a[0].name, "default");
	ck_assert_str_eq(t.a[0].key_file, "/k");
	ck_assert_str_eq(t.a[0].connect, "acct_1");
	ck_assert_str_eq(t.a[0].api_base, "http://127.0.0.1:1");
	ck_assert_str_eq(t.a[0].webhook_secret_file, "/w");
	ck_assert_str_eq(t.a[0].webhook_previous_secret_file, "/w0");
	mf_accounts_free(&t);
	mf_conf_free(c);

	snprintf(text, sizeof(text), "AccountTable %s\nWebhookSecretFile /w\nWebhookPreviousSecretFile /w0\n",
	    write_conf("accounts", "# comment\n\n eu\t/keys/eu webhook-secret=/eu.whsec\n"
	    "us /keys/us api-base=http://127.0.0.1:2\r\n"
	    "shop-1 /keys/p connect=acct_A webhook-previous-secret=/old\n"));
	ck_assert_str_eq(load(text, &c), "");
	ck_assert_int_eq(mf_accounts_load(c, &t, err, sizeof(err)), 0);
	ck_assert(t.from_table);
	ck_assert_int_eq(t.n, 3);
	ck_assert_str_eq(t.a[0].name, "eu");
	ck_assert_str_eq(t.a[0].webhook_secret_file, "/eu.whsec");
	ck_assert_ptr_null(t.a[0].webhook_previous_secret_file);	/* the global one is WebhookSecretFile's */
	ck_assert_str_eq(t.a[0].api_base, "https://api.stripe.com");
	ck_assert_str_eq(t.a[1].api_base, "http://127.0.0.1:2");
	ck_assert_str_eq(t.a[1].webhook_secret_file, "/w");
	ck_assert_str_eq(t.a[1].webhook_previous_secret_file, "/w0");
	ck_assert_str_eq(t.a[2].connect, "acct_A");
	ck_assert_str_eq(t.a[2].webhook_previous_secret_file, "/old");
	mf_accounts_free(&t);
	mf_conf_free(c);

	/* extra: more config lines; table NULL: AccountTable names a file that does not exist */
	static const struct { const char *extra, *table, *err; } bad[] = {
		{ "", "eu /k\neu /k2\n", "accounts:2: account eu is already named above" },
		{ "", "eu /k\nus /k\n", "accounts:2: account us reads the same account as eu" },
		{ "", "Eu /k\n", "accounts:1: 'Eu' is not an account name" },
		{ "", "-eu /k\n", "accounts:1: '-eu' is not an account name" },
		{ "", "abcdefghijklmnopqrstuvwxyz0123456 /k\n", "is not an account name" },
		{ "", "eu\n", "accounts:1: account eu: no key file" },
		{ "", "eu connect=acct_1\n", "accounts:1: account eu: no key file" },
		{ "", "eu /k connect=acct_1 connect=acct_2\n", "connect is given twice" },
		{ "", "eu /k api-base=\n", "api-base has no value" },
		{ "", "eu /k nope\n", "unknown option 'nope'" },
		{ "", "\n# none\n", "names no account" },
		{ "", "a /1\nb /2\nc /3\nd /4\ne /5\nf /6\ng /7\nh /8\ni /9\n", "accounts:9: more than 8 accounts" },
		{ "StripeKeyFile /k\n", "eu /k\n", "AccountTable is set with StripeKeyFile" },
		{ "WebhookListen 127.0.0.1:1\n", "eu /k webhook-secret=/s\nus /k2\n", "account us has no webhook secret" },
		{ "", NULL, "No such file" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i].table)
			snprintf(text, sizeof(text), "AccountTable %s\n%s", write_conf("accounts", bad[i].table), bad[i].extra);
		else
			snprintf(text, sizeof(text), "AccountTable %s/none\n%s", dir, bad[i].extra);
		ck_assert_str_eq(load(text, &c), "");
		ck_assert_int_eq(mf_accounts_load(c, &t, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, bad[i].err) != NULL, "table %d: [%s] lacks [%s]", (int)i, err, bad[i].err);
		ck_assert_int_eq(t.n, 0);
		mf_conf_free(c);
	}
	ck_assert(mf_account_name_ok("a") && mf_account_name_ok("shop_1-b") && !mf_account_name_ok("") &&
	    !mf_account_name_ok("a.b") && !mf_account_name_ok("_a"));
}
END_TEST

START_TEST(every_option_documented)
{
	check_documented("stripe-milter.conf", "\n#");
	check_documented("stripe-milter.conf.5", "\n.It Cm ");
}
END_TEST

START_TEST(sample_config_loads)
{
	char path[1024], err[512];
	struct mf_conf *c;

	snprintf(path, sizeof(path), "%s/conf/stripe-milter.conf", th_srcdir());
	c = mf_conf_load(path, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	mf_conf_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("conf");
	int rc;

	if (th_tmpdir(dir, sizeof(dir)) != 0)
		return 1;
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, values_of_every_type);
	tcase_add_test(tc, errors_name_the_line);
	tcase_add_test(tc, cross_option_checks);
	tcase_add_test(tc, missing_file);
	tcase_add_test(tc, secret_files);
	tcase_add_test(tc, secrets_not_dumped);
	tcase_add_test(tc, account_table);
	tcase_add_test(tc, every_option_documented);
	tcase_add_test(tc, sample_config_loads);
	suite_add_tcase(s, tc);
	rc = th_run(s);
	th_rmdir(dir);
	return rc;
}
