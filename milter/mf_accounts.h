/*
 * mf_accounts.h - the Stripe accounts one instance reads: AccountTable (one line per
 * account, like OpenDKIM's KeyTable), or the single-account options as a table of one.
 *
 * Interface:
 *	mf_accounts_load(conf, &table, err)	reads AccountTable when it is set, else builds
 *		the table of one ("default") from StripeKeyFile/StripeKey, StripeAccount,
 *		StripeAPIBase, WebhookSecretFile and WebhookPreviousSecretFile. Called for
 *		every config snapshot (start, reload, -n), so a reload re-reads the table.
 *	mf_accounts_free(&table)		frees its strings.
 *	mf_account_name_ok(name)		true for a usable account name.
 *
 * File format (AccountTable): '#' starts a comment line; blank lines are ignored; every
 *	other line is
 *		NAME KEYFILE [connect=acct_...] [api-base=URL] [webhook-secret=FILE]
 *			[webhook-previous-secret=FILE]
 *	NAME is [a-z0-9][a-z0-9_-]* (at most 31 bytes): it names the account in headers,
 *	metrics, logs, cache keys and the fleet's Redis keys, so every instance sharing a
 *	Redis must give an account the same name. KEYFILE is read with the project's one
 *	secret reader (common/sm_secret.h) when the snapshot is built. An account without
 *	webhook-secret uses WebhookSecretFile (a Connect platform's endpoint signs the events
 *	of all its connected accounts with one secret); api-base defaults to StripeAPIBase.
 *
 * Diagnostics: one line in err naming the file and line, e.g. "accounts:3: 'EU' is not
 *	an account name ([a-z0-9][a-z0-9_-]*, at most 31 characters)". Nothing is logged.
 *
 * Known limits: at most MF_ACCOUNTS_MAX accounts; lines of at most 1023 bytes; options
 *	hold no blanks (paths with spaces are refused).
 */
#ifndef MF_ACCOUNTS_H
#define MF_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#include "milter/mf_conf.h"

#define MF_ACCOUNTS_MAX		8
#define MF_ACCOUNT_NAME_MAX	32
#define MF_ACCOUNT_DEFAULT	"default"

struct mf_account_spec {
	char name[MF_ACCOUNT_NAME_MAX];
	char *key_file;		/* NULL: StripeKey / STRIPE_API_KEY (table of one only) */
	char *connect;		/* Stripe-Account (acct_...), NULL = none */
	char *api_base;		/* NULL = StripeAPIBase */
	char *webhook_secret_file;		/* NULL = none */
	char *webhook_previous_secret_file;	/* NULL = none */
};

struct mf_account_table {
	int n;
	bool from_table;	/* AccountTable (headers name the accounts), not a table of one */
	struct mf_account_spec a[MF_ACCOUNTS_MAX];
};

int mf_accounts_load(const struct mf_conf *c, struct mf_account_table *t, char *err, size_t errlen);
void mf_accounts_free(struct mf_account_table *t);
bool mf_account_name_ok(const char *name);

#endif
