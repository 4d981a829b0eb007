/*
 * mf_conf.c - the option table and the config file parser. See mf_conf.h.
 *
 * Adding an option: a field in struct mf_conf, a row in mf_conf_opts[] (name, type, field
 * offset, default, range or words, one line of help), and its documentation in
 * conf/stripe-milter.conf and conf/stripe-milter.conf.5. The tests check that every row is
 * documented in both.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/sm_secret.h"
#include "common/sm_util.h"
#include "milter/mf_conf.h"

enum mf_opt_type { MF_T_STR, MF_T_BOOL, MF_T_LONG, MF_T_OCTAL, MF_T_ENUM };

struct mf_opt {
	const char *name;
	enum mf_opt_type type;
	size_t off;
	const char *def;		/* default as it would be written in the file; NULL = unset */
	long min, max;			/* MF_T_LONG, MF_T_OCTAL */
	const char *const *words;	/* MF_T_ENUM: index = value */
	bool secret;			/* masked in dumps */
	const char *help;
};

static const char *const mf_words_lookup[] = { "header-from", "envelope", "header-from-or-envelope", NULL };
static const char *const mf_words_onerr[] = { "accept", "tempfail", NULL };

#define O(f) offsetof(struct mf_conf, f)
#define STR(n, f, d, h) { n, MF_T_STR, O(f), d, 0, 0, NULL, false, h }
#define SECRET(n, f, h) { n, MF_T_STR, O(f), NULL, 0, 0, NULL, true, h }
#define BOOL(n, f, d, h) { n, MF_T_BOOL, O(f), d, 0, 0, NULL, false, h }
#define NUM(n, f, d, lo, hi, h) { n, MF_T_LONG, O(f), d, lo, hi, NULL, false, h }
#define ENUM(n, f, d, w, h) { n, MF_T_ENUM, O(f), d, 0, 0, w, false, h }

static const struct mf_opt mf_conf_opts[] = {
	/* daemon */
	STR("Socket", socket, "unix:/run/stripe-milter/stripe-milter.sock",
	    "where the MTA connects: unix:/path, local:/path, inet:port@host, inet6:port@host"),
	{ "UMask", MF_T_OCTAL, O(umask), "007", 0, 0777, NULL, false,
	    "umask (octal) while creating a unix socket" },
	STR("SocketGroup", socket_group, NULL, "group given to a unix socket so the MTA can connect"),
	STR("UserID", user_id, NULL, "user[:group] to run as after opening the socket and reading the key (nothing to do when started as that user, as the packaged systemd unit does)"),
	STR("PidFile", pid_file, NULL, "file to write the daemon's process id to"),
	BOOL("Background", background, "yes", "detach from the terminal and run in the background"),
	BOOL("Syslog", syslog, "yes", "log to syslog (no: log to standard error)"),
	STR("SyslogFacility", syslog_facility, "mail", "syslog facility: mail, daemon, local0..local7"),
	STR("SyslogName", syslog_name, "stripe-milter", "program name in syslog lines"),
	STR("LogLevel", log_level, "info", "least severe level logged: error, warning, notice, info, debug"),
	BOOL("LogAddresses", log_addresses, "no", "log sender addresses in full (no: masked as j***@example.com)"),
	NUM("MilterTimeout", milter_timeout_s, "300", 1, 86400,
	    "seconds libmilter waits for the MTA before dropping a connection"),
	NUM("StopTimeout", stop_timeout_s, "20", 0, 3600,
	    "seconds a stop waits for messages in progress to finish (0: exit at once; keep it below the unit's TimeoutStopSec)"),
	STR("MetricsListen", metrics_listen, NULL,
	    "address:port of the Prometheus /metrics and /healthz listener (loopback advised); unset = off"),
	NUM("MetricsClientLimit", metrics_client_limit, "4", 1, 1024,
	    "connections one client address may hold open to MetricsListen"),
	NUM("MetricsRequestTimeout", metrics_request_timeout_s, "5", 1, 300,
	    "seconds a MetricsListen connection has to send a whole request, however it trickles"),
	STR("MetricsFile", metrics_file, NULL,
	    "file the /metrics text is also written to (temp file + rename), e.g. for node exporter's textfile collector; unset = off"),
	NUM("MetricsFileInterval", metrics_file_interval_s, "15", 1, 3600, "seconds between writes of MetricsFile"),
	NUM("ListenerLogInterval", listener_log_interval_s, "60", 1, 86400,
	    "seconds between summaries of rejected requests; within one, each reason is logged once"),
	/* Stripe */
	STR("AccountTable", account_table, NULL,
	    "file naming several Stripe accounts, one per line: NAME KEYFILE [connect=acct_...] [api-base=URL] "
	    "[webhook-secret=FILE] [webhook-previous-secret=FILE]; replaces StripeKeyFile/StripeKey/StripeAccount"),
	STR("StripeKeyFile", stripe_key_file, NULL,
	    "file holding the Stripe secret or restricted key; read as UserID; root's or UserID's, none for others (root:<UserID group> 0440)"),
	SECRET("StripeKey", stripe_key, "the key itself (prefer StripeKeyFile; STRIPE_API_KEY in the environment is the last resort)"),
	STR("StripeAPIBase", stripe_api_base, "https://api.stripe.com",
	    "Stripe API base URL; http:// is accepted only for loopback test servers"),
	STR("StripeAPIVersion", stripe_api_version, NULL, "Stripe-Version sent with every request (default: the tested one)"),
	STR("StripeAccount", stripe_account, NULL, "connected account (acct_...) to act on, for Connect platforms"),
	STR("StripeCAFile", stripe_ca_file, NULL, "CA bundle for TLS (default: the system's)"),
	NUM("StripeConnectTimeout", stripe_connect_timeout_ms, "2000", 100, 60000, "milliseconds to connect to Stripe"),
	NUM("StripeTimeout", stripe_timeout_ms, "10000", 100, 120000,
	    "milliseconds a Stripe lookup may run in the background (mail waits only LookupTimeout)"),
	NUM("StripeMaxRetries", stripe_max_retries, "2", 0, 10, "retries of a failed Stripe request (within the deadline)"),
	BOOL("StripeRetryRateLimited", stripe_retry_rate_limited, "no",
	    "retry after 429 within the deadline (no: report rate-limited and serve stale data)"),
	NUM("StripeRateLimit", stripe_rate_limit, "20", 1, 1000, "Stripe requests per second per process (token bucket)"),
	NUM("StripeRateBurst", stripe_rate_burst, "20", 1, 1000, "token bucket size"),
	NUM("StripeMaxConcurrent", stripe_max_concurrent, "8", 1, 256, "Stripe requests in flight at once"),
	BOOL("StripeSearch", stripe_search, "yes",
	    "when the exact address finds no customer, ask Stripe's search (case-insensitive; no: exact only)"),
	NUM("StripeSearchRate", stripe_search_rate, "5", 1, 20,
	    "search requests per second per process (Stripe allows 20 per account); past it the fallback is skipped"),
	BOOL("GuestLookup", guest_lookup, "yes",
	    "with no customer, find a guest buyer's completed Checkout Sessions by email (rak_checkout_session_read)"),
	NUM("ChargesWindowDays", charges_window_days, "90", 1, 3650, "days of charges summarised"),
	NUM("ChargesMax", charges_max, "100", 1, 100, "charges read per lookup (one page)"),
	STR("MetadataKeys", metadata_keys, NULL, "customer metadata keys, each copied into X-Stripe-Metadata-<key> (comma separated)"),
	/* lookup */
	ENUM("LookupAddress", lookup_address, "header-from", mf_words_lookup,
	    "address looked up: header-from, envelope, header-from-or-envelope"),
	NUM("LookupTimeout", lookup_timeout_ms, "3000", 10, 60000,
	    "milliseconds from the start of a lookup that end-of-message waits for it"),
	NUM("LookupThreads", lookup_threads, "16", 1, 256, "lookup worker threads"),
	/* cache */
	STR("RedisHost", redis_host, NULL, "Redis server host; unset (and no RedisSocket or RedisSentinels) = in-process cache only"),
	NUM("RedisPort", redis_port, "6379", 1, 65535, "Redis server port"),
	STR("RedisSocket", redis_socket, NULL, "Redis unix socket path (instead of RedisHost)"),
	STR("RedisUser", redis_user, NULL, "Redis ACL user name (Redis 6+); unset = password-only AUTH"),
	SECRET("RedisPassword", redis_password, "Redis password (prefer RedisPasswordFile)"),
	STR("RedisPasswordFile", redis_password_file, NULL, "file holding the Redis password; same rules as StripeKeyFile"),
	NUM("RedisDB", redis_db, "0", 0, 1000, "Redis database number"),
	NUM("RedisConnectTimeout", redis_connect_timeout_ms, "200", 10, 30000, "milliseconds to connect to Redis"),
	NUM("RedisTimeout", redis_timeout_ms, "200", 10, 30000, "milliseconds a Redis command may take"),
	NUM("RedisPoolSize", redis_pool_size, "8", 1, 256, "Redis connections per process"),
	STR("RedisSentinels", redis_sentinels, NULL, "Sentinel addresses host:port[,host:port...] (instead of RedisHost)"),
	STR("RedisSentinelMaster", redis_sentinel_master, "mymaster", "master name known to the Sentinels"),
	SECRET("RedisSentinelPassword", redis_sentinel_password, "password of the Sentinels"),
	STR("CachePrefix", cache_prefix, "stripe-milter", "prefix of every Redis key (deployments sharing a Redis use different ones)"),
	NUM("CacheTTL", cache_ttl_s, "600", 1, 604800, "seconds a found customer is cached"),
	NUM("CacheNegativeTTL", cache_negative_ttl_s, "120", 1, 604800, "seconds a not-found answer is cached"),
	NUM("CacheStaleGrace", cache_stale_grace_s, "3600", 0, 604800,
	    "seconds past its TTL an entry may still be served (marked stale) when Stripe fails"),
	NUM("CacheL1Entries", cache_l1_entries, "10000", 0, 10000000, "entries in the in-process cache (0 = off)"),
	NUM("CacheL1TTL", cache_l1_ttl_s, "30", 1, 86400, "seconds an entry stays in the in-process cache"),
	NUM("CacheLockTTL", cache_lock_ttl_ms, "5000", 100, 120000, "milliseconds a fleet-wide fill lock lives at least (a fill holds it until its deadline)"),
	NUM("CacheLockWait", cache_lock_wait_ms, "1000", 0, 60000,
	    "no longer used: a lookup waits for another host's fill until its own deadline (kept so old files load)"),
	STR("InstanceName", instance_name, NULL, "name of this instance in fleet statistics (default host:pid)"),
	NUM("StatsInterval", stats_interval_s, "10", 1, 3600, "seconds between publications of counters to Redis"),
	STR("StatsFile", stats_file, "/run/stripe-milter/stats/snapshot",
	    "this daemon's counters, rewritten every StatsInterval (`stripe-milterctl stats` reads it when there is no Redis)"),
	/* fleet */
	NUM("FleetRateLimit", fleet_rate_limit, "20", 0, 10000,
	    "Stripe requests per second for all instances sharing the Redis together (0 = per-process StripeRateLimit only)"),
	NUM("FleetRateBurst", fleet_rate_burst, "20", 1, 10000, "requests the fleet budget lets through at once"),
	NUM("FleetSearchRateLimit", fleet_search_rate_limit, "5", 0, 1000,
	    "search requests per second for the fleet, a limit of their own within FleetRateLimit (0 = none)"),
	NUM("BreakerFailures", breaker_failures, "5", 0, 1000,
	    "consecutive Stripe failures (5xx, timeouts, resets) that open the circuit breaker (0 = off)"),
	NUM("BreakerCooldown", breaker_cooldown_ms, "30000", 100, 3600000,
	    "milliseconds the breaker stays open (Stripe not asked) before one probe request"),
	STR("WebhookListen", webhook_listen, NULL,
	    "address:port receiving Stripe webhook deliveries (plain HTTP behind a TLS proxy); unset = off"),
	STR("WebhookSecretFile", webhook_secret_file, NULL,
	    "file holding the webhook endpoint's signing secret (whsec_...); must not be group- or world-readable"),
	STR("WebhookPreviousSecretFile", webhook_previous_secret_file, NULL,
	    "file holding the previous signing secret, also accepted while a secret is rotated"),
	NUM("WebhookTolerance", webhook_tolerance_s, "300", 1, 86400,
	    "seconds a delivery's signed timestamp may differ from now"),
	NUM("WebhookMaxBody", webhook_max_body, "1048576", 1024, 67108864, "largest webhook body accepted (bytes)"),
	NUM("WebhookClientLimit", webhook_client_limit, "8", 1, 1024,
	    "connections one client address (the TLS proxy counts as one) may hold open to WebhookListen"),
	NUM("WebhookRequestTimeout", webhook_request_timeout_s, "10", 1, 300,
	    "seconds a WebhookListen connection has to send a whole request (headers and body), however it trickles"),
	NUM("EventsPollInterval", events_poll_interval_s, "0", 0, 86400,
	    "seconds between polls of Stripe's events by the fleet's one poller (needs rak_event_read; 0 = off)"),
	/* policy */
	BOOL("SkipAuthenticated", skip_authenticated, "yes", "skip mail submitted with SMTP AUTH ({auth_authen})"),
	STR("InternalHosts", internal_hosts, "127.0.0.0/8, ::1", "client addresses (CIDR list) whose mail is not looked up"),
	STR("Recipients", recipients, NULL,
	    "only mail to these addresses or domains is looked up (support@example.com, @example.com); unset = all"),
	STR("SkipSenderDomains", skip_sender_domains, NULL, "sender domains never looked up (your own)"),
	BOOL("RequireAuthResults", require_auth_results, "no",
	    "treat the sender as the customer only with dmarc=pass from a trusted Authentication-Results header"),
	STR("TrustedAuthservIDs", trusted_authserv_ids, NULL, "authserv-ids whose Authentication-Results are trusted"),
	BOOL("AllowAlignedDKIM", allow_aligned_dkim, "yes", "accept an aligned dkim=pass when there is no dmarc=pass"),
	/* headers */
	STR("HeaderPrefix", header_prefix, "X-Stripe-", "prefix of every header added (and stripped from incoming mail)"),
	STR("HeaderGroups", header_groups, "all",
	    "headers added: all, or a list of lookup, customer-id, customer, subscription, charges, invoice, metadata"),
	BOOL("HeaderPrivacy", header_privacy, "no", "add statuses only: no names, ids or amounts"),
	NUM("HeaderMaxSubscriptions", header_max_subscriptions, "1", 1, 4, "X-Stripe-Subscription lines (best first)"),
	NUM("HeaderMaxLength", header_max_length, "900", 100, 990, "longest header value, folded lines included"),
	ENUM("On-InternalError", on_internal_error, "accept", mf_words_onerr,
	    "what happens when the milter cannot do its job (e.g. cannot strip forged headers): accept or tempfail"),
};

#define MF_NOPTS (sizeof(mf_conf_opts) / sizeof(mf_conf_opts[0]))

static char *mf_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static const struct mf_opt *mf_conf_find(const char *name)
{
	size_t i;

	for (i = 0; i < MF_NOPTS; i++)
		if (strcasecmp(mf_conf_opts[i].name, name) == 0)
			return &mf_conf_opts[i];
	return NULL;
}

static int mf_parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };
	int i;

	for (i = 0; yes[i]; i++)
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
	for (i = 0; no[i]; i++)
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	return -1;
}

/* Sets one option from its text; writes why into err on failure. */
static int mf_conf_set(struct mf_conf *c, const struct mf_opt *o, const char *v, char *err, size_t errlen)
{
	char *field = (char *)c + o->off;
	char *end;
	long n;
	int i;

	switch (o->type) {
	case MF_T_STR: {
		char *dup = strdup(v);

		if (dup == NULL) {
			snprintf(err, errlen, "%s: out of memory", o->name);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	}
	case MF_T_BOOL:
		if (mf_parse_bool(v, (bool *)field) == 0)
			return 0;
		snprintf(err, errlen, "%s: '%s' is not yes or no", o->name, v);
		return -1;
	case MF_T_LONG:
		if (sm_parse_long(v, o->min, o->max, &n) == 0) {
			*(long *)field = n;
			return 0;
		}
		snprintf(err, errlen, "%s: '%s' is not a whole number in %ld..%ld", o->name, v, o->min, o->max);
		return -1;
	case MF_T_OCTAL:
		errno = 0;
		n = strtol(v, &end, 8);
		if (*v != '\0' && *end == '\0' && errno == 0 && n >= o->min && n <= o->max) {
			*(long *)field = n;
			return 0;
		}
		snprintf(err, errlen, "%s: '%s' is not an octal mode (e.g. 007)", o->name, v);
		return -1;
	case MF_T_ENUM:
		for (i = 0; o->words[i]; i++)
			if (strcasecmp(v, o->words[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
		snprintf(err, errlen, "%s: '%s' is not one of:", o->name, v);
		for (i = 0; o->words[i]; i++) {
			size_t l = strlen(err);

			snprintf(err + l, errlen > l ? errlen - l : 0, " %s", o->words[i]);
		}
		return -1;
	}
	return -1;
}

/* Cross-option checks that no single row can make. */
static int mf_conf_validate(const struct mf_conf *c, char *err, size_t errlen)
{
	if (c->redis_host && c->redis_socket) {
		snprintf(err, errlen, "RedisHost and RedisSocket are both set: choose one");
		return -1;
	}
	if (c->redis_sentinels && (c->redis_host || c->redis_socket)) {
		snprintf(err, errlen, "RedisSentinels is set with RedisHost/RedisSocket: choose one");
		return -1;
	}
	if (c->redis_password && c->redis_password_file) {
		snprintf(err, errlen, "RedisPassword and RedisPasswordFile are both set: choose one");
		return -1;
	}
	if (c->stripe_key && c->stripe_key_file) {
		snprintf(err, errlen, "StripeKey and StripeKeyFile are both set: choose one");
		return -1;
	}
	if (c->require_auth_results && c->trusted_authserv_ids == NULL) {
		snprintf(err, errlen, "RequireAuthResults needs TrustedAuthservIDs (your MTA's authserv-id)");
		return -1;
	}
	if (c->header_prefix[0] == '\0' || strchr(c->header_prefix, ':') || strchr(c->header_prefix, ' ')) {
		snprintf(err, errlen, "HeaderPrefix '%s' is not a header name prefix", c->header_prefix);
		return -1;
	}
	if (c->stats_file == NULL || c->stats_file[0] != '/' || c->stats_file[strlen(c->stats_file) - 1] == '/' ||
	    strlen(c->stats_file) > 200) {
		snprintf(err, errlen, "StatsFile '%.200s' must be the absolute path of a file (at most 200 characters)",
		    c->stats_file);
		return -1;
	}
	if (c->stripe_rate_burst < 1) {
		snprintf(err, errlen, "StripeRateBurst must be at least 1");
		return -1;
	}
	if (c->webhook_listen && c->webhook_secret_file == NULL && c->account_table == NULL) {
		snprintf(err, errlen, "WebhookListen needs WebhookSecretFile (the endpoint's signing "
		    "secret, whsec_...): without it every delivery would be refused");
		return -1;
	}
	return 0;
}

struct mf_conf *mf_conf_defaults(char *err, size_t errlen)
{
	struct mf_conf *c = calloc(1, sizeof(*c));
	size_t i;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < MF_NOPTS; i++) {
		if (mf_conf_opts[i].def == NULL)
			continue;
		if (mf_conf_set(c, &mf_conf_opts[i], mf_conf_opts[i].def, err, errlen) != 0) {
			mf_conf_free(c);
			return NULL;
		}
	}
	return c;
}

struct mf_conf *mf_conf_load(const char *path, char *err, size_t errlen)
{
	char line[4096], why[512];
	int seen_line[MF_NOPTS];
	struct mf_conf *c;
	FILE *f = NULL;
	int lineno = 0;

	c = mf_conf_defaults(err, errlen);
	if (c == NULL)
		return NULL;
	memset(seen_line, 0, sizeof(seen_line));
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	while (fgets(line, sizeof(line), f)) {
		const struct mf_opt *o;
		char *name, *value;
		size_t idx;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			goto fail;
		}
		name = mf_trim(line);
		if (*name == '\0' || *name == '#')
			continue;
		value = name + strcspn(name, " \t");
		if (*value != '\0')
			*value++ = '\0';
		value = mf_trim(value);
		o = mf_conf_find(name);
		if (o == NULL) {
			snprintf(err, errlen, "%s:%d: unknown option '%s'", path, lineno, name);
			goto fail;
		}
		idx = (size_t)(o - mf_conf_opts);
		if (seen_line[idx]) {
			snprintf(err, errlen, "%s:%d: %s is already set on line %d", path, lineno, o->name,
			    seen_line[idx]);
			goto fail;
		}
		seen_line[idx] = lineno;
		if (*value == '\0') {
			snprintf(err, errlen, "%s:%d: %s has no value", path, lineno, o->name);
			goto fail;
		}
		if (mf_conf_set(c, o, value, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			goto fail;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	if (mf_conf_validate(c, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto fail;
	}
	fclose(f);
	c->path = strdup(path);
	return c;
fail:
	if (f)
		fclose(f);
	mf_conf_free(c);
	return NULL;
}

void mf_conf_free(struct mf_conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < MF_NOPTS; i++)
		if (mf_conf_opts[i].type == MF_T_STR)
			free(*(char **)((char *)c + mf_conf_opts[i].off));
	free(c->path);
	free(c);
}

static void mf_conf_value(const struct mf_conf *c, const struct mf_opt *o, char *buf, size_t len)
{
	const char *field = (const char *)c + o->off;
	const char *s;

	switch (o->type) {
	case MF_T_STR:
		s = *(char *const *)field;
		snprintf(buf, len, "%s", s == NULL ? "(unset)" : o->secret ? "(set, not shown)" : s);
		break;
	case MF_T_BOOL:
		snprintf(buf, len, "%s", *(const bool *)field ? "yes" : "no");
		break;
	case MF_T_LONG:
		snprintf(buf, len, "%ld", *(const long *)field);
		break;
	case MF_T_OCTAL:
		snprintf(buf, len, "%03lo", *(const long *)field);
		break;
	case MF_T_ENUM:
		snprintf(buf, len, "%s", o->words[*(const int *)field]);
		break;
	}
}

void mf_conf_dump(const struct mf_conf *c, FILE *out)
{
	char v[1024];
	size_t i;

	for (i = 0; i < MF_NOPTS; i++) {
		mf_conf_value(c, &mf_conf_opts[i], v, sizeof(v));
		fprintf(out, "%-24s %s\n", mf_conf_opts[i].name, v);
	}
}

void mf_conf_table_doc(FILE *out)
{
	static const char *const types[] = { "string", "yes/no", "number", "octal", "word" };
	size_t i;

	for (i = 0; i < MF_NOPTS; i++) {
		const struct mf_opt *o = &mf_conf_opts[i];

		fprintf(out, "%s\t%s\t%s\t%s\n", o->name, types[o->type], o->def ? o->def : "(unset)", o->help);
	}
}

int mf_conf_secret_who(const struct mf_conf *c, struct sm_secret_who *who, char *err, size_t errlen)
{
	return sm_secret_who_of(c->user_id, who, err, errlen);
}

char *mf_conf_read_secret(const struct mf_conf *c, const char *path, char *err, size_t errlen)
{
	struct sm_secret_who who;
	char buf[SM_SECRET_MAX + 1], *dup = NULL;

	if (mf_conf_secret_who(c, &who, err, errlen) != 0)
		return NULL;
	if (sm_secret_read(path, &who, buf, sizeof(buf), err, errlen) != 0)
		goto out;
	dup = strdup(buf);
	if (dup == NULL)
		snprintf(err, errlen, "out of memory");
out:
	explicit_bzero(buf, sizeof(buf));
	return dup;
}
