/*
 * cache_redis.c - a pool of hiredis contexts: connect, AUTH, SELECT, Sentinel, backoff.
 *
 * Interface (cache_int.h): cache_rp_new(), cache_rp_free(), cache_rp_cmd(), cache_rp_argv(),
 *	cache_rp_ok(), cache_rp_usage().
 *
 * A redisContext is not thread-safe and is dead after any error, so each command takes a
 * context out of the pool (or connects a new one, up to pool_size), runs, and gives it
 * back; a context that failed is freed, never reused. A new context is connected with
 * connect_timeout_ms, then AUTH ([user] password), SELECT db and, behind Sentinel, ROLE
 * (it must say master) are sent. Every socket wait is bounded by command_timeout_ms and
 * by the caller's deadline.
 *
 * Failure and backoff: after a failure the pool is "down": the idle contexts are dropped
 * (a generation number retires those in use), and for one backoff period (100 ms,
 * doubling up to reconnect_max_ms) calls are skipped (counted as redis_skipped) without
 * touching the network; the first call after the period claims the single reconnect
 * attempt. A command that succeeds ends the down state. A context that was idle and
 * finds the server closed it (idle timeout) is retried once on a fresh connection.
 *
 * Sentinel: with sentinels configured, the master address comes from the first sentinel
 * answering SENTINEL get-master-addr-by-name; it is looked up again after any connection
 * error and after -READONLY (the master was demoted).
 *
 * Diagnostics: every failure increments redis_errors; the first failure of a streak is
 * logged (LOG_WARNING) with hiredis' reason, recovery once at LOG_NOTICE.
 *
 * Address: Sentinel when sentinels are given, else redis_unix when set, else redis_host.
 *
 * Known limits: no TLS (hiredis 0.14); at most 8 sentinels; IPv6 sentinel addresses
 * must be written [addr]:port; a host name is resolved by hiredis with getaddrinfo(),
 * which no timeout bounds: configure addresses, not names, where DNS may be slow.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cache/cache_int.h"
#include "common/sm_log.h"
#include "common/sm_util.h"

#define CACHE_RP_BACKOFF_MIN_MS	100
#define CACHE_RP_MAX_SENTINELS	8

struct cache_rp_conn {
	redisContext *ctx;
	unsigned gen;			/* pool generation when it was connected */
};

struct cache_rp_addr {
	char host[256];
	int port;
};

struct cache_rp {
	const struct cache_config *cfg;	/* owned by struct cache */
	struct cache_counters *ctr;	/* owned by struct cache */
	pthread_mutex_t mu;		/* guards everything below */
	pthread_cond_t cv;		/* a context came back (CLOCK_MONOTONIC) */
	struct cache_rp_conn *idle;	/* pool_size slots */
	int nidle, nctx;		/* nctx: idle + in use + being connected */
	unsigned gen;
	bool down, recovering, ok;
	int64_t next_try_ms;
	int backoff_ms;
	struct cache_rp_addr sentinels[CACHE_RP_MAX_SENTINELS];
	int nsentinels;
	struct cache_rp_addr master;	/* port 0 = unknown */
	int log_down;			/* sm_log_once flag */
};

static struct timeval cache_rp_tv(int64_t ms)
{
	struct timeval tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	return tv;
}

/* Milliseconds one network wait may take: command timeout, cut by the deadline. */
static int64_t cache_rp_budget(int64_t limit_ms, int64_t deadline_ms)
{
	int64_t left = deadline_ms == INT64_MAX ? limit_ms : sm_ms_left(deadline_ms);

	return left < limit_ms ? left : limit_ms;
}

/* "host:port" or "[v6]:port" -> addr; -1 when malformed. */
static int cache_rp_parse_addr(const char *s, size_t len, struct cache_rp_addr *a)
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

static int cache_rp_parse_sentinels(struct cache_rp *rp, const char *list)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ", ");

		if (n > 0) {
			if (rp->nsentinels == CACHE_RP_MAX_SENTINELS ||
			    cache_rp_parse_addr(p, n, &rp->sentinels[rp->nsentinels]) != 0)
				return -1;
			rp->nsentinels++;
		}
		p += n;
		if (*p)
			p++;
	}
	return rp->nsentinels > 0 ? 0 : -1;
}

struct cache_rp *cache_rp_new(const struct cache_config *cfg, struct cache_counters *ctr,
    char *err, size_t errlen)
{
	struct cache_rp *rp = calloc(1, sizeof(*rp));
	pthread_condattr_t ca;

	if (rp == NULL || (rp->idle = calloc((size_t)cfg->pool_size, sizeof(*rp->idle))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rp->cfg = cfg;
	rp->ctr = ctr;
	rp->backoff_ms = CACHE_RP_BACKOFF_MIN_MS;
	if (cfg->sentinels && cfg->sentinels[0]) {
		if (cfg->sentinel_master == NULL || cfg->sentinel_master[0] == '\0') {
			snprintf(err, errlen, "sentinels given without a master name");
			goto fail;
		}
		if (cache_rp_parse_sentinels(rp, cfg->sentinels) != 0) {
			snprintf(err, errlen, "bad sentinel list (want host:port,host:port; at most %d)",
			    CACHE_RP_MAX_SENTINELS);
			goto fail;
		}
	}
	pthread_mutex_init(&rp->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rp->cv, &ca);
	pthread_condattr_destroy(&ca);
	return rp;
fail:
	if (rp)
		free(rp->idle);
	free(rp);
	return NULL;
}

void cache_rp_free(struct cache_rp *rp)
{
	int i;

	if (rp == NULL)
		return;
	for (i = 0; i < rp->nidle; i++)
		redisFree(rp->idle[i].ctx);
	pthread_mutex_destroy(&rp->mu);
	pthread_cond_destroy(&rp->cv);
	free(rp->idle);
	free(rp);
}

void cache_rp_usage(struct cache_rp *rp, uint64_t *open, uint64_t *in_use)
{
	pthread_mutex_lock(&rp->mu);
	*open = (uint64_t)rp->nctx;
	*in_use = (uint64_t)(rp->nctx - rp->nidle);
	pthread_mutex_unlock(&rp->mu);
}

bool cache_rp_ok(struct cache_rp *rp)
{
	bool ok;

	pthread_mutex_lock(&rp->mu);
	ok = rp->ok;
	pthread_mutex_unlock(&rp->mu);
	return ok;
}

/* Records a failure: count, log the first of a streak, drop idle contexts, start or
 * extend the backoff. rediscover asks Sentinel for the master again. */
static void cache_rp_fail(struct cache_rp *rp, bool rediscover, const char *what, const char *why)
{
	struct cache_rp_conn drop[64];
	int i, ndrop = 0;
	int64_t now = sm_now_ms();

	CACHE_CTR_INC(rp->ctr, redis_errors);
	sm_log_once(&rp->log_down, LOG_WARNING, "cache: Redis %s failed: %s; going on without it, "
	    "retrying with backoff", what, why);
	pthread_mutex_lock(&rp->mu);
	rp->ok = false;
	rp->down = true;
	rp->recovering = true;
	rp->next_try_ms = now + rp->backoff_ms;
	rp->backoff_ms = rp->backoff_ms * 2 > rp->cfg->reconnect_max_ms ?
	    rp->cfg->reconnect_max_ms : rp->backoff_ms * 2;
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

static void cache_rp_succeeded(struct cache_rp *rp)
{
	bool was_down;

	pthread_mutex_lock(&rp->mu);
	was_down = rp->down;
	rp->ok = true;
	rp->down = false;
	rp->backoff_ms = CACHE_RP_BACKOFF_MIN_MS;
	pthread_mutex_unlock(&rp->mu);
	if (was_down) {
		sm_log(LOG_NOTICE, "cache: Redis reachable again");
		sm_log_once_reset(&rp->log_down);
	}
}

/* Runs a setup command on a context that is not in the pool. The reply (caller frees) or
 * NULL with why filled in; the context is dead when ctx->err is set. */
static redisReply *cache_rp_setup_cmd(redisContext *ctx, int64_t timeout_ms, char *why, size_t whylen,
    const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	redisSetTimeout(ctx, cache_rp_tv(timeout_ms));
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

static redisContext *cache_rp_dial(const char *host, int port, const char *unix_path, int64_t ms,
    char *why, size_t whylen)
{
	redisContext *ctx;

	if (unix_path)
		ctx = redisConnectUnixWithTimeout(unix_path, cache_rp_tv(ms));
	else
		ctx = redisConnectWithTimeout(host, port, cache_rp_tv(ms));
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
static int cache_rp_discover(struct cache_rp *rp, int64_t deadline_ms, char *why, size_t whylen)
{
	const struct cache_config *cfg = rp->cfg;
	int i, rc = -1;

	for (i = 0; i < rp->nsentinels && rc != 0; i++) {
		struct cache_rp_addr a;
		redisContext *ctx;
		redisReply *r = NULL;
		long port;

		ctx = cache_rp_dial(rp->sentinels[i].host, rp->sentinels[i].port, NULL,
		    cache_rp_budget(cfg->connect_timeout_ms, deadline_ms), why, whylen);
		if (ctx == NULL)
			continue;
		if (cfg->sentinel_password && (r = cache_rp_setup_cmd(ctx,
		    cache_rp_budget(cfg->command_timeout_ms, deadline_ms), why, whylen, "AUTH %s",
		    cfg->sentinel_password)) == NULL)
			goto next;
		if (r)
			freeReplyObject(r);
		r = cache_rp_setup_cmd(ctx, cache_rp_budget(cfg->command_timeout_ms, deadline_ms), why,
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
		CACHE_CTR_INC(rp->ctr, sentinel_discoveries);
		rc = 0;
next:
		if (r)
			freeReplyObject(r);
		redisFree(ctx);
	}
	return rc;
}

/* AUTH, SELECT and (behind Sentinel) ROLE on a new context. 0, or -1 with why. */
static int cache_rp_prepare(struct cache_rp *rp, redisContext *ctx, int64_t deadline_ms,
    char *why, size_t whylen)
{
	const struct cache_config *cfg = rp->cfg;
	redisReply *r = NULL;
	int rc = -1;

	if (cfg->redis_password) {
		int64_t t = cache_rp_budget(cfg->command_timeout_ms, deadline_ms);

		r = cfg->redis_user ?
		    cache_rp_setup_cmd(ctx, t, why, whylen, "AUTH %s %s", cfg->redis_user, cfg->redis_password) :
		    cache_rp_setup_cmd(ctx, t, why, whylen, "AUTH %s", cfg->redis_password);
		if (r == NULL)
			goto out;
		freeReplyObject(r);
		r = NULL;
	}
	if (cfg->redis_db != 0) {
		r = cache_rp_setup_cmd(ctx, cache_rp_budget(cfg->command_timeout_ms, deadline_ms), why,
		    whylen, "SELECT %d", cfg->redis_db);
		if (r == NULL)
			goto out;
		freeReplyObject(r);
		r = NULL;
	}
	if (rp->nsentinels > 0) {
		r = cache_rp_setup_cmd(ctx, cache_rp_budget(cfg->command_timeout_ms, deadline_ms), why,
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
static redisContext *cache_rp_open(struct cache_rp *rp, int64_t deadline_ms, char *why, size_t whylen)
{
	const struct cache_config *cfg = rp->cfg;
	struct cache_rp_addr m;
	redisContext *ctx = NULL;

	if (rp->nsentinels > 0) {
		pthread_mutex_lock(&rp->mu);
		m = rp->master;
		pthread_mutex_unlock(&rp->mu);
		if (m.port == 0) {
			if (cache_rp_discover(rp, deadline_ms, why, whylen) != 0)
				return NULL;
			pthread_mutex_lock(&rp->mu);
			m = rp->master;
			pthread_mutex_unlock(&rp->mu);
		}
		ctx = cache_rp_dial(m.host, m.port, NULL,
		    cache_rp_budget(cfg->connect_timeout_ms, deadline_ms), why, whylen);
	} else {
		ctx = cache_rp_dial(cfg->redis_host, cfg->redis_port, cfg->redis_unix,
		    cache_rp_budget(cfg->connect_timeout_ms, deadline_ms), why, whylen);
	}
	if (ctx && cache_rp_prepare(rp, ctx, deadline_ms, why, whylen) != 0) {
		redisFree(ctx);
		ctx = NULL;
	}
	return ctx;
}

enum cache_rp_take { CACHE_RP_IDLE, CACHE_RP_CONNECT, CACHE_RP_SKIP, CACHE_RP_BUSY };

/* Decides under mu what a caller may do: take an idle context (*conn), connect a new one
 * (a slot is reserved; *conn has the generation), skip (backing off), or give up (every
 * context stayed busy until wait_until). */
static enum cache_rp_take cache_rp_take(struct cache_rp *rp, int64_t wait_until,
    struct cache_rp_conn *conn)
{
	enum cache_rp_take t;

	pthread_mutex_lock(&rp->mu);
	for (;;) {
		int64_t now = sm_now_ms();
		struct timespec ts = { (time_t)(wait_until / 1000), (long)(wait_until % 1000) * 1000000L };

		if (rp->down && now < rp->next_try_ms) {
			t = CACHE_RP_SKIP;
			break;
		}
		if (rp->nidle > 0) {
			*conn = rp->idle[--rp->nidle];
			t = CACHE_RP_IDLE;
			break;
		}
		if (rp->nctx < rp->cfg->pool_size) {
			/* while down, this call is the one connect attempt of the period */
			if (rp->down)
				rp->next_try_ms = now + rp->backoff_ms;
			rp->nctx++;
			conn->ctx = NULL;
			conn->gen = rp->gen;
			t = CACHE_RP_CONNECT;
			break;
		}
		if (now >= wait_until) {
			t = CACHE_RP_BUSY;
			break;
		}
		pthread_cond_timedwait(&rp->cv, &rp->mu, &ts);
	}
	pthread_mutex_unlock(&rp->mu);
	return t;
}

/* Takes a context: an idle one, or a new one while below pool_size and not backing off,
 * or waits for one to come back. 0 with *conn (the caller gives it back with
 * cache_rp_put), or -1 (skipped, timed out or failed; counted). */
static int cache_rp_get(struct cache_rp *rp, int64_t deadline_ms, struct cache_rp_conn *conn,
    bool *reused)
{
	int64_t wait_until = sm_now_ms() + cache_rp_budget(rp->cfg->command_timeout_ms, deadline_ms);
	char why[256];
	int rc = -1;

	*reused = false;
	switch (cache_rp_take(rp, wait_until, conn)) {
	case CACHE_RP_SKIP:
		CACHE_CTR_INC(rp->ctr, redis_skipped);
		goto out;
	case CACHE_RP_BUSY:
		cache_rp_fail(rp, false, "pool", "every context stayed busy until the timeout");
		goto out;
	case CACHE_RP_IDLE:
		*reused = true;
		rc = 0;
		goto out;
	case CACHE_RP_CONNECT:
		break;
	}
	conn->ctx = cache_rp_open(rp, deadline_ms, why, sizeof(why));
	pthread_mutex_lock(&rp->mu);
	if (conn->ctx == NULL) {
		rp->nctx--;		/* give the reserved slot back */
		pthread_cond_broadcast(&rp->cv);
	} else if (rp->recovering) {
		rp->recovering = false;
		CACHE_CTR_INC(rp->ctr, redis_reconnects);
	}
	pthread_mutex_unlock(&rp->mu);
	if (conn->ctx == NULL) {
		cache_rp_fail(rp, true, "connect", why);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/* Gives a context back; a broken one (or one of an older generation) is freed. */
static void cache_rp_put(struct cache_rp *rp, struct cache_rp_conn *conn, bool broken)
{
	pthread_mutex_lock(&rp->mu);
	if (!broken && conn->gen == rp->gen && rp->nidle < rp->cfg->pool_size) {
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
static bool cache_rp_fatal_reply(const redisReply *r, bool *rediscover)
{
	*rediscover = strncmp(r->str, "READONLY", 8) == 0;
	return *rediscover || strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0;
}

enum cache_rp_outcome { CACHE_RP_OK, CACHE_RP_RETRY, CACHE_RP_FAILED };

/* One attempt of a formatted command on one context: *out gets the reply (caller frees)
 * on CACHE_RP_OK. CACHE_RP_RETRY: a pooled context found closed by the server (idle
 * timeout, failover), worth one more try on a fresh connection when may_retry. */
static enum cache_rp_outcome cache_rp_once(struct cache_rp *rp, int64_t deadline_ms, const char *cmd,
    size_t len, bool may_retry, redisReply **out)
{
	enum cache_rp_outcome rc = CACHE_RP_FAILED;
	struct cache_rp_conn conn;
	bool reused, broken = false, failed = false, rediscover = true;
	void *reply = NULL;
	int64_t t, start;
	char why[160] = "";
	int err;

	*out = NULL;
	if (cache_rp_get(rp, deadline_ms, &conn, &reused) != 0)
		return CACHE_RP_FAILED;		/* counted there; nothing taken */
	t = cache_rp_budget(rp->cfg->command_timeout_ms, deadline_ms);
	if (t <= 0)
		goto out;
	redisSetTimeout(conn.ctx, cache_rp_tv(t));
	start = sm_now_ms();
	if (redisAppendFormattedCommand(conn.ctx, cmd, len) == REDIS_OK)
		redisGetReply(conn.ctx, &reply);
	err = errno;
	CACHE_CTR_ADD(rp->ctr, l2_latency_ms_sum, sm_now_ms() - start);
	CACHE_CTR_INC(rp->ctr, l2_calls);
	if (reply == NULL || conn.ctx->err) {
		broken = true;
		snprintf(why, sizeof(why), "%s", conn.ctx->errstr[0] ? conn.ctx->errstr : "no reply");
		if (may_retry && reused && (conn.ctx->err == REDIS_ERR_EOF ||
		    (conn.ctx->err == REDIS_ERR_IO && err != EAGAIN && err != EWOULDBLOCK)))
			rc = CACHE_RP_RETRY;
		else
			failed = true;
		goto out;
	}
	if (((redisReply *)reply)->type == REDIS_REPLY_ERROR) {
		redisReply *r = reply;

		snprintf(why, sizeof(why), "%.*s", (int)r->len, r->str);
		broken = failed = cache_rp_fatal_reply(r, &rediscover);
		if (!broken) {
			CACHE_CTR_INC(rp->ctr, redis_errors);
			sm_log(LOG_WARNING, "cache: Redis error reply: %s", why);
		}
		goto out;
	}
	*out = reply;
	reply = NULL;
	rc = CACHE_RP_OK;
out:
	if (reply)
		freeReplyObject(reply);
	cache_rp_put(rp, &conn, broken);
	if (failed)
		cache_rp_fail(rp, rediscover, "command", why);
	else if (rc == CACHE_RP_OK)
		cache_rp_succeeded(rp);
	return rc;
}

/* Sends a formatted command; see cache_rp_cmd(). Owns nothing of cmd. */
static redisReply *cache_rp_exec(struct cache_rp *rp, int64_t deadline_ms, const char *cmd, size_t len)
{
	redisReply *r = NULL;

	if (cache_rp_once(rp, deadline_ms, cmd, len, true, &r) == CACHE_RP_RETRY) {
		CACHE_CTR_INC(rp->ctr, redis_errors);
		pthread_mutex_lock(&rp->mu);
		if (rp->nsentinels > 0)
			rp->master.port = 0;	/* closed by a failover? ask Sentinel again */
		pthread_mutex_unlock(&rp->mu);
		cache_rp_once(rp, deadline_ms, cmd, len, false, &r);
	}
	return r;
}

redisReply *cache_rp_cmd(struct cache_rp *rp, int64_t deadline_ms, const char *fmt, ...)
{
	char *cmd = NULL;
	redisReply *r = NULL;
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = redisvFormatCommand(&cmd, fmt, ap);
	va_end(ap);
	if (len < 0)
		return NULL;
	r = cache_rp_exec(rp, deadline_ms, cmd, (size_t)len);
	redisFreeCommand(cmd);
	return r;
}

redisReply *cache_rp_argv(struct cache_rp *rp, int64_t deadline_ms, int argc, const char **argv,
    const size_t *argvlen)
{
	char *cmd = NULL;
	redisReply *r = NULL;
	int len;

	len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
	if (len < 0)
		return NULL;
	r = cache_rp_exec(rp, deadline_ms, cmd, (size_t)len);
	redisFreeCommand(cmd);
	return r;
}
