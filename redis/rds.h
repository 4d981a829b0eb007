/*
 * rds.h - a pool of Redis connections (hiredis) with Sentinel, AUTH/SELECT and reconnect
 * backoff. This is the whole interface of redis/: it runs commands and knows nothing of
 * what they store (the cache, the daemon's statistics).
 *
 * Interface:
 *	rds_new(cfg) / rds_free()	a pool (no connection is made until the first command;
 *		an unreachable Redis is not an error here).
 *	rds_cmd(pool, deadline, fmt, ...)	one command, printf-like in hiredis' format (%s,
 *		%b with a length, %lld, %d); rds_argv() the same from an argument vector.
 *		Either returns the reply (the caller frees it with freeReplyObject()) or NULL
 *		when Redis failed, was skipped during backoff, or answered with an error reply
 *		(all counted and logged).
 *	rds_vcmd()		rds_cmd() with a va_list.
 *	rds_connect(pool, deadline)	a connection of the caller's own (for SUBSCRIBE).
 *	rds_ok(pool)		true when the last command succeeded.
 *	rds_counters_get()	errors, reconnects, skipped calls, sentinel discoveries, the
 *		latency sum and number of commands, connections open and in use.
 *
 * Thread safety: every function may be called from any thread. hiredis writes with plain
 * write(2): a process using the pool must ignore SIGPIPE (the daemon does, in main).
 *
 * Deadlines: deadline_ms is an sm_now_ms() value (monotonic), INT64_MAX for none; no
 * call waits past it nor past command_timeout_ms per network wait.
 */
#ifndef RDS_H
#define RDS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

struct rds_config {
	const char *name;		/* log prefix ("cache"), NULL = "redis" */
	/* address: sentinels, else unix_path, else host (one of them is required) */
	const char *host;
	int port;			/* 0 = 6379 */
	const char *unix_path;
	const char *sentinels;		/* "host:port,host:port" (at most 8), NULL = none */
	const char *sentinel_master;	/* required with sentinels */
	const char *sentinel_password;
	const char *user;		/* ACL user, NULL = password-only AUTH */
	const char *password;		/* NULL = no AUTH */
	int db;				/* SELECT when not 0 */
	int connect_timeout_ms;		/* 0 = 200 */
	int command_timeout_ms;		/* 0 = 200 */
	int pool_size;			/* 0 = 8, at most 64 */
	int reconnect_max_ms;		/* 0 = 5000: longest backoff between connect attempts */
};

struct rds_counters {
	uint64_t errors;		/* failed commands and connects (error replies too) */
	uint64_t reconnects;		/* connections made after a failure */
	uint64_t skipped;		/* commands not tried: backoff after a failure */
	uint64_t sentinel_discoveries;	/* master addresses obtained from a sentinel */
	uint64_t latency_ms_sum;	/* time spent in commands */
	uint64_t calls;			/* commands sent */
	uint64_t pool_open;		/* gauge: connections open (idle + in use) */
	uint64_t pool_in_use;		/* gauge: connections taken by a command now */
};

struct rds;

/* NULL with a reason in err on bad config (no address, an unparsable sentinel list). */
struct rds *rds_new(const struct rds_config *cfg, char *err, size_t errlen);
void rds_free(struct rds *pool);
redisReply *rds_cmd(struct rds *pool, int64_t deadline_ms, const char *fmt, ...);
redisReply *rds_argv(struct rds *pool, int64_t deadline_ms, int argc, const char **argv,
    const size_t *argvlen);
redisReply *rds_vcmd(struct rds *pool, int64_t deadline_ms, const char *fmt, va_list ap);
/* A connection of the caller's own, outside the pool (connected, AUTH, SELECT, the
 * Sentinel master), e.g. for SUBSCRIBE. NULL with why on failure; the caller frees it
 * with redisFree(). Not counted in the pool's gauges. */
redisContext *rds_connect(struct rds *pool, int64_t deadline_ms, char *why, size_t whylen);
bool rds_ok(struct rds *pool);
void rds_counters_get(struct rds *pool, struct rds_counters *out);

#endif
