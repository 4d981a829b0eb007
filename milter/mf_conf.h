/*
 * mf_conf.h - stripe-milter configuration: one static table of options, validated at load.
 *
 * Interface:
 *	mf_conf_load(path, &conf, err)	reads "Name value" lines ('#' starts a comment line;
 *		names are case-insensitive). Every option is in the table in mf_conf.c with its
 *		type, default and range; an unknown, duplicate or malformed option is an error
 *		naming the file and line. Returns a new struct mf_conf (defaults filled in).
 *	mf_conf_defaults()		a config with every default (no file).
 *	mf_conf_free()			frees it (strings are owned by the struct).
 *	mf_conf_dump(conf, FILE*)	prints every option with its effective value, secrets masked.
 *	mf_conf_table_doc(FILE*)	prints the option table (name, type, default, help).
 *
 * Diagnostics: errors are one line in err, e.g. "stripe-milter.conf:12: LookupTimeout:
 *	'abc' is not a number of milliseconds (10..60000)".
 *
 * Known limits: values are single-line; no include files.
 */
#ifndef MF_CONF_H
#define MF_CONF_H

#include <stdbool.h>
#include <stdio.h>

enum mf_lookup_addr { MF_ADDR_HEADER_FROM = 0, MF_ADDR_ENVELOPE, MF_ADDR_HEADER_OR_ENVELOPE };
enum mf_on_error { MF_ON_ACCEPT = 0, MF_ON_TEMPFAIL };

struct mf_conf {
	char *path;			/* the file it came from, NULL for defaults */
	/* daemon */
	char *socket;
	long umask;
	char *socket_group;
	char *user_id;
	char *pid_file;
	bool background;
	bool syslog;
	char *syslog_facility;
	char *syslog_name;
	char *log_level;
	bool log_addresses;
	long milter_timeout_s;
	long stop_timeout_s;
	char *metrics_listen;
	long metrics_client_limit;
	long metrics_request_timeout_s;
	char *metrics_file;
	long metrics_file_interval_s;
	long listener_log_interval_s;
	/* Stripe */
	char *account_table;		/* AccountTable: several accounts (mf_accounts.h) */
	char *stripe_key_file;
	char *stripe_key;
	char *stripe_api_base;
	char *stripe_api_version;
	char *stripe_account;
	char *stripe_ca_file;
	long stripe_connect_timeout_ms;
	long stripe_timeout_ms;		/* a background fill's own deadline */
	long stripe_max_retries;
	bool stripe_retry_rate_limited;
	bool stripe_search;
	long stripe_search_rate;
	bool guest_lookup;
	long stripe_rate_limit;
	long stripe_rate_burst;
	long stripe_max_concurrent;
	long charges_window_days;
	long charges_max;
	char *metadata_keys;
	/* lookup */
	enum mf_lookup_addr lookup_address;
	long lookup_timeout_ms;
	long lookup_threads;
	/* cache */
	char *redis_host;
	long redis_port;
	char *redis_socket;
	char *redis_user;
	char *redis_password;
	char *redis_password_file;
	long redis_db;
	long redis_connect_timeout_ms;
	long redis_timeout_ms;
	long redis_pool_size;
	char *redis_sentinels;
	char *redis_sentinel_master;
	char *redis_sentinel_password;
	char *cache_prefix;
	long cache_ttl_s;
	long cache_negative_ttl_s;
	long cache_stale_grace_s;
	long cache_l1_entries;
	long cache_l1_ttl_s;
	long cache_lock_ttl_ms;
	long cache_lock_wait_ms;
	char *instance_name;
	long stats_interval_s;
	char *stats_file;
	/* fleet: budget, breaker, events */
	long fleet_rate_limit;
	long fleet_rate_burst;
	long fleet_search_rate_limit;
	long breaker_failures;
	long breaker_cooldown_ms;
	char *webhook_listen;
	char *webhook_secret_file;
	char *webhook_previous_secret_file;
	long webhook_tolerance_s;
	long webhook_max_body;
	long webhook_client_limit;
	long webhook_request_timeout_s;
	long events_poll_interval_s;
	/* policy */
	bool skip_authenticated;
	char *internal_hosts;
	char *recipients;
	char *skip_sender_domains;
	bool require_auth_results;
	char *trusted_authserv_ids;
	bool allow_aligned_dkim;
	/* headers */
	char *header_prefix;
	char *header_groups;
	bool header_privacy;
	long header_max_subscriptions;
	long header_max_length;
	enum mf_on_error on_internal_error;
};

struct mf_conf *mf_conf_defaults(char *err, size_t errlen);
struct mf_conf *mf_conf_load(const char *path, char *err, size_t errlen);
void mf_conf_free(struct mf_conf *c);
void mf_conf_dump(const struct mf_conf *c, FILE *out);
void mf_conf_table_doc(FILE *out);

struct sm_secret_who;
/* Who reads the secret files, now and at every reload: UserID's user and group when set,
 * else the effective ids. 0 or -1 with err (no such user). */
int mf_conf_secret_who(const struct mf_conf *c, struct sm_secret_who *who, char *err, size_t errlen);
/* Reads a secret file with common/sm_secret.h's rules for mf_conf_secret_who(c). Returns a
 * malloc'd string or NULL with err. */
char *mf_conf_read_secret(const struct mf_conf *c, const char *path, char *err, size_t errlen);

#endif
