/*
 * rds_pool.c - a pool of hiredis contexts: connect, AUTH, SELECT, Sentinel, backoff.
 *
 * Interface (redis/rds.h): rds_new(), rds_free(), rds_cmd(), rds_vcmd(), rds_argv(),
 *	rds_connect(), rds_ok(), rds_counters_get().
 *
 * A redisContext is not thread-safe and is dead after any error, so each command takes a
 * context out of the pool (or connects a new one, up to pool_size), runs, and gives it
 * back; a context that failed is freed, never reused. A new context is connected with
 * connect_timeout_ms, then AUTH ([user] password), SELECT db and, behind Sentinel, ROLE
 * (it must say master) are sent. Every socket wait is bounded by command_timeout_ms and
 * by the caller's deadline; waits for a free context use CLOCK_MONOTONIC.
 *
 * Failure and backoff: after a failure the pool is "down": the idle contexts are dropped
 * (a generation number retires those in use), and for one backoff period (100 ms,
 * doubling up to reconnect_max_ms) calls are skipped (counted as skipped) without
 * touching the network; the first call after the period claims the single reconnect
 * attempt. A command that succeeds ends the down state. A context that was idle and
 * finds the server closed it (idle timeout) is retried once on a fresh connection.
 *
 * Sentinel: with sentinels configured, the master address comes from the first sentinel
 * answering SENTINEL get-master-addr-by-name; it is looked up again after any connection
 * error and after -READONLY (the master was demoted).
 *
 * Memory: rds_new copies every string of the config (the password is zeroed on free).
 *
 * Diagnostics: every failure increments errors; the first failure of a streak is logged
 * (LOG_WARNING, "<name>: Redis ... failed") with hiredis' reason, recovery once at
 * LOG_NOTICE.
 *
 * Address: Sentinel when sentinels are given, else unix_path when set, else host.
 *
 * Known limits: no TLS (hiredis 0.14); at most 8 sentinels; IPv6 sentinel addresses
 * must be written [addr]:port; a host name is resolved by hiredis with getaddrinfo(),
 * which no timeout bounds: configure addresses, not names, where DNS may be slow.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "redis/rds.h"

#define RDS_BACKOFF_MIN_MS	100
#define RDS_MAX_SENTINELS	8

/* Counters: plain fields of the public struct, touched only with these. */
#define RDS_CTR_ADD(ctr, field, n) __atomic_fetch_add(&(ctr)->field, (uint64_t)(n), __ATOMIC_RELAXED)
#define RDS_CTR_INC(ctr, field) RDS_CTR_ADD(ctr, field, 1)
#define RDS_CTR_GET(ctr, field) __atomic_load_n(&(ctr)->field, __ATOMIC_RELAXED)

struct rds_conn {
	redisContext *ctx;
	unsigned gen;			/* pool generation when it was connected */
	int64_t timeout_ms;		/* the socket timeout last set on ctx by rds_once(), 0 =
					 * not known (setting it costs two setsockopt calls) */
};

struct rds_addr {
	char host[256];
	int port;
};

struct rds {
	struct rds_config cfg;		/* defaults resolved; strings point at strs */
	char *strs[8];			/* owned copies of the config's strings */
	struct rds_counters ctr;	/* RDS_CTR_* only */
	char name[32];			/* log prefix */
	pthread_mutex_t mu;		/* guards everything below */
	pthread_cond_t cv;		/* a context came back (CLOCK_MONOTONIC) */
	struct rds_conn *idle;	/* pool_size slots */
	int nidle, nctx;		/* nctx: idle + in use + being connected */
	unsigned gen;
	bool down, recovering, ok;
	int64_t next_try_ms;
	int backoff_ms;
	struct rds_addr sentinels[RDS_MAX_SENTINELS];
	int nsentinels;
	struct rds_addr master;	/* port 0 = unknown */
	int log_down;			/* sm_log_once flag */
};

static struct timeval rds_tv(int64_t ms)
{
	struct timeval tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	return tv;
}

/* Milliseconds one network wait may take: command timeout, cut by the deadline. */
static int64_t rds_budget(int64_t limit_ms, int64_t deadline_ms)
{
	int64_t left = deadline_ms == INT64_MAX ? limit_ms : sm_ms_left(deadline_ms);

	return left < limit_ms ? left : limit_ms;
}

/* "host:port" or "[v6]:port" -> addr; -1 when malformed. */
static int rds_parse_addr(const char *s, size_t len, struct rds_addr *a)
{
	char tmp[300];
	char *colon, *host = tmp;
	long port;

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	colon = strrchr(tmp, ':');
	if (colon == NULL || sm_parse_long(colon + 1, 1, 65535, &port) != 0)
		return -1;
	*colon = '\0';
	if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
		host++;
		colon[-1] = '\0';
	}
	if (*host == '\0' || sm_strlcpy(a->host, host, sizeof(a->host)) >= sizeof(a->host))
		return -1;
	a->port = (int)port;
	return 0;
}

static int rds_parse_sentinels(struct rds *rp, const char *list)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ", ");

		if (n > 0) {
			if (rp->nsentinels == RDS_MAX_SENTINELS ||
			    rds_parse_addr(p, n, &rp->sentinels[rp->nsentinels]) != 0)
				return -1;
			rp->nsentinels++;
		}
		p += n;
		if (*p)
			p++;
	}
	return rp->nsentinels > 0 ? 0 : -1;
}

#define RDS_POOL_MAX 64

/* Copies one config string into rp->strs (NULL and "" stay NULL). */
static int rds_own_str(struct rds *rp, const char **dst, int *n)
{
	if (*dst == NULL || **dst == '\0') {
		*dst = NULL;
		return 0;
	}
	if ((rp->strs[*n] = strdup(*dst)) == NULL)
		return -1;
	*dst = rp->strs[(*n)++];
	return 0;
}

/* Defaults and owned copies of the caller's config. */
static int rds_resolve(struct rds *rp, const struct rds_config *cfg, char *err, size_t errlen)
{
	struct rds_config *k = &rp->cfg;
	const char **fields[] = { &k->name, &k->host, &k->unix_path, &k->user, &k->password,
	    &k->sentinels, &k->sentinel_master, &k->sentinel_password };
	int n = 0;
	size_t i;

	*k = *cfg;
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (rds_own_str(rp, fields[i], &n) != 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
#define RDS_DEF(f, d) do { if ((f) == 0) (f) = (d); } while (0)
	RDS_DEF(k->port, 6379);
	RDS_DEF(k->connect_timeout_ms, 200);
	RDS_DEF(k->command_timeout_ms, 200);
	RDS_DEF(k->pool_size, 8);
	RDS_DEF(k->reconnect_max_ms, 5000);
#undef RDS_DEF
	if (k->port < 0 || k->port > 65535 || k->db < 0 || k->connect_timeout_ms < 0 ||
	    k->command_timeout_ms < 0 || k->pool_size < 0 || k->reconnect_max_ms < 0) {
		snprintf(err, errlen, "negative or out of range Redis setting");
		return -1;
	}
	if (k->pool_size > RDS_POOL_MAX)
		k->pool_size = RDS_POOL_MAX;
	if (k->reconnect_max_ms < RDS_BACKOFF_MIN_MS)
		k->reconnect_max_ms = RDS_BACKOFF_MIN_MS;
	sm_strlcpy(rp->name, k->name ? k->name : "redis", sizeof(rp->name));
	if (k->host == NULL && k->unix_path == NULL && k->sentinels == NULL) {
		snprintf(err, errlen, "no Redis address (host, unix socket or sentinels)");
		return -1;
	}
	return 0;
}

struct rds *rds_new(const struct rds_config *cfg, char *err, size_t errlen)
{
	struct rds *rp = calloc(1, sizeof(*rp));
	pthread_condattr_t ca;

	if (rp == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&rp->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rp->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rds_resolve(rp, cfg, err, errlen) != 0)
		goto fail;
	if ((rp->idle = calloc((size_t)(rp->cfg.pool_size > 0 ? rp->cfg.pool_size : 1),
	    sizeof(*rp->idle))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rp->backoff_ms = RDS_BACKOFF_MIN_MS;
	if (rp->cfg.sentinels) {
		if (rp->cfg.sentinel_master == NULL) {
			snprintf(err, errlen, "sentinels given without a master name");
			goto fail;
		}
		if (rds_parse_sentinels(rp, rp->cfg.sentinels) != 0) {
			snprintf(err, errlen, "bad sentinel list (want host:port,host:port; at most %d)",
			    RDS_MAX_SENTINELS);
			goto fail;
		}
	}
	return rp;
fail:
	rds_free(rp);
	return NULL;
}

void rds_free(struct rds *rp)
{
	size_t i;
	int j;

	if (rp == NULL)
		return;
	for (j = 0; j < rp->nidle; j++)
		redisFree(rp->idle[j].ctx);
	for (i = 0; i < sizeof(rp->strs) / sizeof(rp->strs[0]); i++) {
		if (rp->strs[i]) {
			explicit_bzero(rp->strs[i], strlen(rp->strs[i]));
			free(rp->strs[i]);
		}
	}
	pthread_mutex_destroy(&rp->mu);
	pthread_cond_destroy(&rp->cv);
	free(rp->idle);
	free(rp);
}

void rds_counters_get(struct rds *rp, struct rds_counters *out)
{
	out->errors = RDS_CTR_GET(&rp->ctr, errors);
	out->reconnects = RDS_CTR_GET(&rp->ctr, reconnects);
	out->skipped = RDS_CTR_GET(&rp->ctr, skipped);
	out->sentinel_discoveries = RDS_CTR_GET(&rp->ctr, sentinel_discoveries);
	out->latency_ms_sum = RDS_CTR_GET(&rp->ctr, latency_ms_sum);
	out->calls = RDS_CTR_GET(&rp->ctr, calls);
	pthread_mutex_lock(&rp->mu);
	out->pool_open = (uint64_t)rp->nctx;
	out->pool_in_use = (uint64_t)(rp->nctx - rp->nidle);
	pthread_mutex_unlock(&rp->mu);
}

bool rds_ok(struct rds *rp)
{
	bool ok;

	pthread_mutex_lock(&rp->mu);
	ok = rp->ok;
	pthread_mutex_unlock(&rp->mu);
	return ok;
}

/* Records a failure: count, log the first of a streak, drop idle contexts, start or
 * extend the backoff. rediscover asks Sentinel for the master again. */
static void rds_fail(struct rds *rp, bool rediscover, const char *what, const char *why)
{
	struct rds_conn drop[64];
	int i, ndrop = 0;
	int64_t now = sm_now_ms();

	RDS_CTR_INC(&rp->ctr, errors);
	sm_log_once(&rp->log_down, LOG_WARNING, "%s: Redis %s failed: %s; going on without it, "
	    "retrying with backoff", rp->name, what, why);
	pthread_mutex_lock(&rp->mu);
	rp->ok = false;
	rp->down = true;
	rp->recovering = true;
	rp->next_try_ms = now + rp->backoff_ms;
	rp->backoff_ms = rp->backoff_ms * 2 > rp->cfg.reconnect_max_ms ?
	    rp->cfg.reconnect_max_ms : rp->backoff_ms * 2;
	rp->gen++;
	while (rp->nidle > 0 && ndrop < (int)(sizeof(drop) / sizeof(drop[0]))) {
		drop[ndrop++] = rp->idle[--rp->nidle];
		rp->nctx--;
	}
	if (rediscover && rp->nsentinels > 0)
		rp->master.port = 0;
	pthread_cond_broadcast(&rp->cv);
	pthread_mutex_unlock(&rp->mu);
	for (i = 0; i < ndrop; i++)
		redisFree(drop[i].ctx);
}

static void rds_succeeded(struct rds *rp)
{
	bool was_down;

	pthread_mutex_lock(&rp->mu);
	was_down = rp->down;
	rp->ok = true;
	rp->down = false;
	rp->backoff_ms = RDS_BACKOFF_MIN_MS;
	pthread_mutex_unlock(&rp->mu);
	if (was_down) {
		sm_log(LOG_NOTICE, "%s: Redis reachable again", rp->name);
		sm_log_once_reset(&rp->log_down);
	}
}

/* Runs a setup command on a context that is not in the pool. The reply (caller frees) or
 * NULL with why filled in; the context is dead when ctx->err is set. */
static redisReply *rds_setup_cmd(redisContext *ctx, int64_t timeout_ms, char *why, size_t whylen,
    const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	redisSetTimeout(ctx, rds_tv(timeout_ms));
	va_start(ap, fmt);
	r = redisvCommand(ctx, fmt, ap);
	va_end(ap);
	if (r == NULL) {
		snprintf(why, whylen, "%s", ctx->errstr[0] ? ctx->errstr : "no reply");
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, whylen, "%.*s", (int)r->len, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static redisContext *rds_dial(const char *host, int port, const char *unix_path, int64_t ms,
    char *why, size_t whylen)
{
	redisContext *ctx;

	if (unix_path)
		ctx = redisConnectUnixWithTimeout(unix_path, rds_tv(ms));
	else
		ctx = redisConnectWithTimeout(host, port, rds_tv(ms));
	if (ctx == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	if (ctx->err) {
		snprintf(why, whylen, "connect %s:%d: %s", unix_path ? unix_path : host,
		    unix_path ? 0 : port, ctx->errstr);
		redisFree(ctx);
		return NULL;
	}
	return ctx;
}

/* Asks the sentinels, in order, where the master is. 0 and rp->master set, or -1. */
static int rds_discover(struct rds *rp, int64_t deadline_ms, char *why, size_t whylen)
{
	const struct rds_config *cfg = &rp->cfg;
	int i, rc = -1;

	for (i = 0; i < rp->nsentinels && rc != 0; i++) {
		struct rds_addr a;
		redisContext *ctx;
		redisReply *r = NULL;
		long port;

		ctx = rds_dial(rp->sentinels[i].host, rp->sentinels[i].port, NULL,
		    rds_budget(cfg->connect_timeout_ms, deadline_ms), why, whylen);
		if (ctx == NULL)
			continue;
		if (cfg->sentinel_password && (r = rds_setup_cmd(ctx,
		    rds_budget(cfg->command_timeout_ms, deadline_ms), why, whylen, "AUTH %s",
		    cfg->sentinel_password)) == NULL)
			goto next;
		if (r)
			freeReplyObject(r);
		r = rds_setup_cmd(ctx, rds_budget(cfg->command_timeout_ms, deadline_ms), why,
		    whylen, "SENTINEL get-master-addr-by-name %s", cfg->sentinel_master);
		if (r == NULL)
			goto next;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
		    sm_strlcpy(a.host, r->element[0]->str, sizeof(a.host)) >= sizeof(a.host) ||
		    sm_parse_long(r->element[1]->str, 1, 65535, &port) != 0) {
			snprintf(why, whylen, "sentinel %s:%d does not know master %s",
			    rp->sentinels[i].host, rp->sentinels[i].port, cfg->sentinel_master);
			goto next;
		}
		a.port = (int)port;
		pthread_mutex_lock(&rp->mu);
		rp->master = a;
		pthread_mutex_unlock(&rp->mu);
		RDS_CTR_INC(&rp->ctr, sentinel_discoveries);
		rc = 0;
next:
		if (r)
			freeReplyObject(r);
		redisFree(ctx);
	}
	return rc;
}

/* AUTH, SELECT and (behind Sentinel) ROLE on a new context. 0, or -1 with why. */
static int rds_prepare(struct rds *rp, redisContext *ctx, int64_t deadline_ms,
    char *why, size_t whylen)
{
	const struct rds_config *cfg = &rp->cfg;
	redisReply *r = NULL;
	int rc = -1;

	if (cfg->password) {
		int64_t t = rds_budget(cfg->command_timeout_ms, deadline_ms);

		r = cfg->user ?
		    rds_setup_cmd(ctx, t, why, whylen, "AUTH %s %s", cfg->user, cfg->password) :
		    rds_setup_cmd(ctx, t, why, whylen, "AUTH %s", cfg->password);
		if (r == NULL)
			goto out;
		freeReplyObject(r);
		r = NULL;
	}
	if (cfg->db != 0) {
		r = rds_setup_cmd(ctx, rds_budget(cfg->command_timeout_ms, deadline_ms), why,
		    whylen, "SELECT %d", cfg->db);
		if (r == NULL)
			goto out;
		freeReplyObject(r);
		r = NULL;
	}
	if (rp->nsentinels > 0) {
		r = rds_setup_cmd(ctx, rds_budget(cfg->command_timeout_ms, deadline_ms), why,
		    whylen, "ROLE");
		if (r == NULL)
			goto out;
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
		    r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "master") != 0) {
			snprintf(why, whylen, "ROLE of the address Sentinel gave is not master");
			goto out;
		}
	}
	rc = 0;
out:
	if (r)
		freeReplyObject(r);
	return rc;
}

/* A ready context, or NULL with why. Called without mu. */
static redisContext *rds_open(struct rds *rp, int64_t deadline_ms, char *why, size_t whylen)
{
	const struct rds_config *cfg = &rp->cfg;
	struct rds_addr m;
	redisContext *ctx = NULL;

	if (rp->nsentinels > 0) {
		pthread_mutex_lock(&rp->mu);
		m = rp->master;
		pthread_mutex_unlock(&rp->mu);
		if (m.port == 0) {
			if (rds_discover(rp, deadline_ms, why, whylen) != 0)
				return NULL;
			pthread_mutex_lock(&rp->mu);
			m = rp->master;
			pthread_mutex_unlock(&rp->mu);
		}
		ctx = rds_dial(m.host, m.port, NULL,
		    rds_budget(cfg->connect_timeout_ms, deadline_ms), why, whylen);
	} else {
		ctx = rds_dial(cfg->host, cfg->port, cfg->unix_path,
		    rds_budget(cfg->connect_timeout_ms, deadline_ms), why, whylen);
	}
	if (ctx && rds_prepare(rp, ctx, deadline_ms, why, whylen) != 0) {
		redisFree(ctx);
		ctx = NULL;
	}
	return ctx;
}

enum rds_take { RDS_IDLE, RDS_CONNECT, RDS_SKIP, RDS_BUSY };

/* Decides under mu what a caller may do: take an idle context (*conn), connect a new one
 * (a slot is reserved; *conn has the generation), skip (backing off), or give up (every
 * context stayed busy until wait_until). */
static enum rds_take rds_take(struct rds *rp, int64_t wait_until,
    struct rds_conn *conn)
{
	enum rds_take t;

	pthread_mutex_lock(&rp->mu);
	for (;;) {
		int64_t now = sm_now_ms();
		struct timespec ts = { (time_t)(wait_until / 1000), (long)(wait_until % 1000) * 1000000L };

		if (rp->down && now < rp->next_try_ms) {
			t = RDS_SKIP;
			break;
		}
		if (rp->nidle > 0) {
			*conn = rp->idle[--rp->nidle];
			t = RDS_IDLE;
			break;
		}
		if (rp->nctx < rp->cfg.pool_size) {
			/* while down, this call is the one connect attempt of the period */
			if (rp->down)
				rp->next_try_ms = now + rp->backoff_ms;
			rp->nctx++;
			conn->ctx = NULL;
			conn->gen = rp->gen;
			conn->timeout_ms = 0;
			t = RDS_CONNECT;
			break;
		}
		if (now >= wait_until) {
			t = RDS_BUSY;
			break;
		}
		pthread_cond_timedwait(&rp->cv, &rp->mu, &ts);
	}
	pthread_mutex_unlock(&rp->mu);
	return t;
}

/* Takes a context: an idle one, or a new one while below pool_size and not backing off,
 * or waits for one to come back. 0 with *conn (the caller gives it back with
 * rds_put), or -1 (skipped, timed out or failed; counted). */
static int rds_get(struct rds *rp, int64_t deadline_ms, struct rds_conn *conn,
    bool *reused)
{
	int64_t wait_until = sm_now_ms() + rds_budget(rp->cfg.command_timeout_ms, deadline_ms);
	char why[256];
	int rc = -1;

	*reused = false;
	switch (rds_take(rp, wait_until, conn)) {
	case RDS_SKIP:
		RDS_CTR_INC(&rp->ctr, skipped);
		goto out;
	case RDS_BUSY:
		rds_fail(rp, false, "pool", "every context stayed busy until the timeout");
		goto out;
	case RDS_IDLE:
		*reused = true;
		rc = 0;
		goto out;
	case RDS_CONNECT:
		break;
	}
	conn->ctx = rds_open(rp, deadline_ms, why, sizeof(why));
	pthread_mutex_lock(&rp->mu);
	if (conn->ctx == NULL) {
		rp->nctx--;		/* give the reserved slot back */
		pthread_cond_broadcast(&rp->cv);
	} else if (rp->recovering) {
		rp->recovering = false;
		RDS_CTR_INC(&rp->ctr, reconnects);
	}
	pthread_mutex_unlock(&rp->mu);
	if (conn->ctx == NULL) {
		rds_fail(rp, true, "connect", why);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/* Gives a context back; a broken one (or one of an older generation) is freed. */
static void rds_put(struct rds *rp, struct rds_conn *conn, bool broken)
{
	pthread_mutex_lock(&rp->mu);
	if (!broken && conn->gen == rp->gen && rp->nidle < rp->cfg.pool_size) {
		rp->idle[rp->nidle++] = *conn;
		conn->ctx = NULL;
	} else {
		rp->nctx--;
	}
	pthread_cond_broadcast(&rp->cv);
	pthread_mutex_unlock(&rp->mu);
	if (conn->ctx)
		redisFree(conn->ctx);
	conn->ctx = NULL;
}

/* True for error replies after which the context must not be used again. */
static bool rds_fatal_reply(const redisReply *r, bool *rediscover)
{
	*rediscover = strncmp(r->str, "READONLY", 8) == 0;
	return *rediscover || strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0;
}

enum rds_outcome { RDS_OK, RDS_RETRY, RDS_FAILED };

/* One attempt of a formatted command on one context: *out gets the reply (caller frees)
 * on RDS_OK. RDS_RETRY: a pooled context found closed by the server (idle
 * timeout, failover), worth one more try on a fresh connection when may_retry. */
static enum rds_outcome rds_once(struct rds *rp, int64_t deadline_ms, const char *cmd,
    size_t len, bool may_retry, redisReply **out)
{
	enum rds_outcome rc = RDS_FAILED;
	struct rds_conn conn;
	bool reused, broken = false, failed = false, rediscover = true;
	void *reply = NULL;
	int64_t t, start;
	char why[160] = "";
	int err;

	*out = NULL;
	if (rds_get(rp, deadline_ms, &conn, &reused) != 0)
		return RDS_FAILED;		/* counted there; nothing taken */
	t = rds_budget(rp->cfg.command_timeout_ms, deadline_ms);
	if (t <= 0)
		goto out;
	if (t != conn.timeout_ms) {	/* usually command_timeout_ms, already set */
		redisSetTimeout(conn.ctx, rds_tv(t));
		conn.timeout_ms = t;
	}
	start = sm_now_ms();
	if (redisAppendFormattedCommand(conn.ctx, cmd, len) == REDIS_OK)
		redisGetReply(conn.ctx, &reply);
	err = errno;
	RDS_CTR_ADD(&rp->ctr, latency_ms_sum, sm_now_ms() - start);
	RDS_CTR_INC(&rp->ctr, calls);
	if (reply == NULL || conn.ctx->err) {
		broken = true;
		snprintf(why, sizeof(why), "%s", conn.ctx->errstr[0] ? conn.ctx->errstr : "no reply");
		if (may_retry && reused && (conn.ctx->err == REDIS_ERR_EOF ||
		    (conn.ctx->err == REDIS_ERR_IO && err != EAGAIN && err != EWOULDBLOCK)))
			rc = RDS_RETRY;
		else
			failed = true;
		goto out;
	}
	if (((redisReply *)reply)->type == REDIS_REPLY_ERROR) {
		redisReply *r = reply;

		snprintf(why, sizeof(why), "%.*s", (int)r->len, r->str);
		broken = failed = rds_fatal_reply(r, &rediscover);
		if (!broken) {
			RDS_CTR_INC(&rp->ctr, errors);
			sm_log(LOG_WARNING, "%s: Redis error reply: %s", rp->name, why);
		}
		goto out;
	}
	*out = reply;
	reply = NULL;
	rc = RDS_OK;
out:
	if (reply)
		freeReplyObject(reply);
	rds_put(rp, &conn, broken);
	if (failed)
		rds_fail(rp, rediscover, "command", why);
	else if (rc == RDS_OK)
		rds_succeeded(rp);
	return rc;
}

/* Sends a formatted command; see rds_cmd(). Owns nothing of cmd. */
static redisReply *rds_exec(struct rds *rp, int64_t deadline_ms, const char *cmd, size_t len)
{
	redisReply *r = NULL;

	if (rds_once(rp, deadline_ms, cmd, len, true, &r) == RDS_RETRY) {
		RDS_CTR_INC(&rp->ctr, errors);
		pthread_mutex_lock(&rp->mu);
		if (rp->nsentinels > 0)
			rp->master.port = 0;	/* closed by a failover? ask Sentinel again */
		pthread_mutex_unlock(&rp->mu);
		rds_once(rp, deadline_ms, cmd, len, false, &r);
	}
	return r;
}

redisReply *rds_vcmd(struct rds *rp, int64_t deadline_ms, const char *fmt, va_list ap)
{
	char *cmd = NULL;
	redisReply *r = NULL;
	int len;

	len = redisvFormatCommand(&cmd, fmt, ap);
	if (len < 0)
		return NULL;
	r = rds_exec(rp, deadline_ms, cmd, (size_t)len);
	redisFreeCommand(cmd);
	return r;
}

redisReply *rds_cmd(struct rds *rp, int64_t deadline_ms, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = rds_vcmd(rp, deadline_ms, fmt, ap);
	va_end(ap);
	return r;
}

redisContext *rds_connect(struct rds *rp, int64_t deadline_ms, char *why, size_t whylen)
{
	return rds_open(rp, deadline_ms, why, whylen);
}

redisReply *rds_argv(struct rds *rp, int64_t deadline_ms, int argc, const char **argv,
    const size_t *argvlen)
{
	char *cmd = NULL;
	redisReply *r = NULL;
	int len;

	len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
	if (len < 0)
		return NULL;
	r = rds_exec(rp, deadline_ms, cmd, (size_t)len);
	redisFreeCommand(cmd);
	return r;
}
