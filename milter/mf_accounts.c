/*
 * mf_accounts.c - AccountTable, or the single-account options as a table of one. See
 * mf_accounts.h.
 *
 * The table holds paths and names only: the keys and webhook secrets are read when a
 * snapshot is built (mf_runtime.c, mf_coord.c), with the one secret reader, so that the
 * same rules (owner, mode, one line) apply to every key file.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_util.h"
#include "milter/mf_accounts.h"

#define MF_ACCT_LINE_MAX 1024

bool mf_account_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= MF_ACCOUNT_NAME_MAX || strchr("abcdefghijklmnopqrstuvwxyz0123456789", name[0]) == NULL)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static void mf_acct_spec_free(struct mf_account_spec *s)
{
	free(s->key_file);
	free(s->connect);
	free(s->api_base);
	free(s->webhook_secret_file);
	free(s->webhook_previous_secret_file);
	memset(s, 0, sizeof(*s));
}

void mf_accounts_free(struct mf_account_table *t)
{
	int i;

	for (i = 0; i < t->n; i++)
		mf_acct_spec_free(&t->a[i]);
	t->n = 0;
}

/* *dst = strdup(v) unless already set (then -1: the option is repeated). */
static int mf_acct_set(char **dst, const char *v, const char *what, char *err, size_t errlen)
{
	if (*dst) {
		snprintf(err, errlen, "%s is given twice", what);
		return -1;
	}
	if ((*dst = strdup(v)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* One "name=value" option of a line. */
static int mf_acct_option(struct mf_account_spec *s, const char *opt, char *err, size_t errlen)
{
	static const struct { const char *name; size_t off; } opts[] = {
		{ "connect", offsetof(struct mf_account_spec, connect) },
		{ "api-base", offsetof(struct mf_account_spec, api_base) },
		{ "webhook-secret", offsetof(struct mf_account_spec, webhook_secret_file) },
		{ "webhook-previous-secret", offsetof(struct mf_account_spec, webhook_previous_secret_file) },
	};
	const char *eq = strchr(opt, '=');
	size_t i, len;

	for (i = 0; eq && i < sizeof(opts) / sizeof(opts[0]); i++) {
		len = strlen(opts[i].name);
		if ((size_t)(eq - opt) == len && strncmp(opt, opts[i].name, len) == 0) {
			if (eq[1] == '\0') {
				snprintf(err, errlen, "%s has no value", opts[i].name);
				return -1;
			}
			return mf_acct_set((char **)((char *)s + opts[i].off), eq + 1, opts[i].name, err, errlen);
		}
	}
	snprintf(err, errlen, "unknown option '%.64s' (connect=, api-base=, webhook-secret=, "
	    "webhook-previous-secret=)", opt);
	return -1;
}

/* Parses one non-comment line into s. */
static int mf_acct_line(char *line, struct mf_account_spec *s, char *err, size_t errlen)
{
	char *save = NULL, *name, *key, *opt;

	name = strtok_r(line, " \t", &save);
	key = strtok_r(NULL, " \t", &save);
	if (!mf_account_name_ok(name)) {
		snprintf(err, errlen, "'%.64s' is not an account name ([a-z0-9][a-z0-9_-]*, at most %d "
		    "characters)", name, MF_ACCOUNT_NAME_MAX - 1);
		return -1;
	}
	sm_strlcpy(s->name, name, sizeof(s->name));
	if (key == NULL || strchr(key, '=')) {
		snprintf(err, errlen, "account %s: no key file (NAME KEYFILE [options])", name);
		return -1;
	}
	if (mf_acct_set(&s->key_file, key, "the key file", err, errlen) != 0)
		return -1;
	while ((opt = strtok_r(NULL, " \t", &save)) != NULL)
		if (mf_acct_option(s, opt, err, errlen) != 0)
			return -1;
	return 0;
}

/* The table's checks across lines: unique names, one line per key and connected account. */
static int mf_acct_check(const struct mf_account_table *t, int i, char *err, size_t errlen)
{
	const struct mf_account_spec *s = &t->a[i];
	int j;

	for (j = 0; j < i; j++) {
		if (strcmp(t->a[j].name, s->name) == 0) {
			snprintf(err, errlen, "account %s is already named above", s->name);
			return -1;
		}
		if (strcmp(t->a[j].key_file, s->key_file) == 0 &&
		    strcmp(t->a[j].connect ? t->a[j].connect : "", s->connect ? s->connect : "") == 0) {
			snprintf(err, errlen, "account %s reads the same account as %s (same key file and "
			    "connect=)", s->name, t->a[j].name);
			return -1;
		}
	}
	return 0;
}

static int mf_acct_read(const char *path, struct mf_account_table *t, char *err, size_t errlen)
{
	char line[MF_ACCT_LINE_MAX], why[256];
	FILE *f = fopen(path, "r");
	int lineno = 0, rc = -1;

	if (f == NULL) {
		snprintf(err, errlen, "AccountTable %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			goto out;
		}
		line[strcspn(line, "\r\n")] = '\0';
		p += strspn(p, " \t");
		if (*p == '\0' || *p == '#')
			continue;
		if (t->n == MF_ACCOUNTS_MAX) {
			snprintf(err, errlen, "%s:%d: more than %d accounts", path, lineno, MF_ACCOUNTS_MAX);
			goto out;
		}
		t->n++;
		if (mf_acct_line(p, &t->a[t->n - 1], why, sizeof(why)) != 0 ||
		    mf_acct_check(t, t->n - 1, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	if (t->n == 0) {
		snprintf(err, errlen, "AccountTable %s names no account", path);
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}

/* Fills unset per-account settings from the global options. */
static int mf_acct_defaults(const struct mf_conf *c, struct mf_account_spec *s, char *err, size_t errlen)
{
	if (s->api_base == NULL && c->stripe_api_base && (s->api_base = strdup(c->stripe_api_base)) == NULL)
		goto oom;
	if (s->webhook_secret_file == NULL && c->webhook_secret_file &&
	    (s->webhook_secret_file = strdup(c->webhook_secret_file)) == NULL)
		goto oom;
	if (s->webhook_previous_secret_file == NULL && s->webhook_secret_file && c->webhook_previous_secret_file &&
	    strcmp(s->webhook_secret_file, c->webhook_secret_file ? c->webhook_secret_file : "") == 0 &&
	    (s->webhook_previous_secret_file = strdup(c->webhook_previous_secret_file)) == NULL)
		goto oom;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int mf_accounts_load(const struct mf_conf *c, struct mf_account_table *t, char *err, size_t errlen)
{
	int i;

	memset(t, 0, sizeof(*t));
	if (c->account_table) {
		if (c->stripe_key_file || c->stripe_key || c->stripe_account) {
			snprintf(err, errlen, "AccountTable is set with StripeKeyFile, StripeKey or "
			    "StripeAccount: give every account in the table");
			return -1;
		}
		t->from_table = true;
		if (mf_acct_read(c->account_table, t, err, errlen) != 0)
			goto fail;
	} else {
		t->n = 1;
		sm_strlcpy(t->a[0].name, MF_ACCOUNT_DEFAULT, sizeof(t->a[0].name));
		if ((c->stripe_key_file && (t->a[0].key_file = strdup(c->stripe_key_file)) == NULL) ||
		    (c->stripe_account && (t->a[0].connect = strdup(c->stripe_account)) == NULL)) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	for (i = 0; i < t->n; i++)
		if (mf_acct_defaults(c, &t->a[i], err, errlen) != 0)
			goto fail;
	if (c->webhook_listen)
		for (i = 0; i < t->n; i++)
			if (t->a[i].webhook_secret_file == NULL) {
				snprintf(err, errlen, "WebhookListen: account %s has no webhook secret "
				    "(webhook-secret= in AccountTable, or WebhookSecretFile)", t->a[i].name);
				goto fail;
			}
	return 0;
fail:
	mf_accounts_free(t);
	return -1;
}
