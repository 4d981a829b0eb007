/*
 * sm_httpd.h - an HTTP listener that holds under abuse: libmicrohttpd (one event-driven
 * thread, epoll) with a per-client connection limit, a whole-request deadline, bodies
 * refused by their Content-Length before they are read, counters of what it refused, and
 * a log that an attacker cannot flood. The webhook and the metrics listeners are two.
 *
 * Interface:
 *	sm_httpd_start(conf)	listens on conf->addr ("a.b.c.d:port") and calls
 *		conf->handler (a libmicrohttpd access handler) for requests that passed the
 *		checks below; NULL (logged) when the address is bad or busy. The pool is
 *		conf->connections clamped to a quarter of what RLIMIT_NOFILE leaves after 512
 *		descriptors for the rest of the process (at least 16); the sizes are logged.
 *	sm_httpd_stop(h)	stops it (waits for the request in progress) and frees it.
 *	sm_httpd_log(h, reason, level, fmt, ...)	logs a rejection through the listener's
 *		throttle: the first one of each reason in an interval is logged in full, the
 *		others only counted; one summary line per interval gives the counts by reason
 *		("like anvil"). h may be NULL (then it just logs).
 *	sm_httpd_counters(h, out)	the counters below and the pool's size and use.
 *	sm_httpd_counter_name(i)	"refused_per_client", ... (metric labels, stats fields).
 *
 * Checks, in the order a connection meets them:
 *	per client	a connection from an address that already holds conf->per_client is
 *			closed at accept (refused_per_client).
 *	pool		at conf->connections libmicrohttpd stops accepting; connections wait
 *			in the kernel's backlog (pool_full counts the times it filled up).
 *	deadline	a connection must complete its request (headers and body) within
 *			conf->deadline_s of its accept or of its previous answer, whatever it
 *			sends meanwhile; past it the socket is shut down (timed_out_request, or
 *			timed_out_idle for a kept-alive connection that answered before). The
 *			answer itself gets a fresh deadline once the handler saw the whole body.
 *	body		Content-Length over conf->max_body: 413 before a byte of it is read
 *			(too_large); a body without Content-Length (chunked): 411
 *			(length_required).
 *	protocol	what libmicrohttpd refuses itself (malformed request line or headers,
 *			headers over the 36 KiB connection memory, a Content-Length over 2^64-1)
 *			is counted from its error log (protocol) and logged through the throttle.
 *
 * Known limits: IPv4 only (like every listener of the daemon). A client with many source
 *	addresses (a local user on 127.0.0.0/8) passes the per-client limit: the pool and the
 *	deadline still bound what it holds, for conf->deadline_s at a time.
 */
#ifndef SM_HTTPD_H
#define SM_HTTPD_H

#include <microhttpd.h>
#include <stdint.h>

enum sm_httpd_ctr {
	SM_HTTPD_REFUSED_PER_CLIENT,
	SM_HTTPD_POOL_FULL,
	SM_HTTPD_TIMED_OUT_REQUEST,
	SM_HTTPD_TIMED_OUT_IDLE,
	SM_HTTPD_TOO_LARGE,
	SM_HTTPD_LENGTH_REQUIRED,
	SM_HTTPD_PROTOCOL,
	SM_HTTPD_NCTR
};

struct sm_httpd_conf {
	const char *name;		/* "webhook": log lines, counters */
	const char *addr;		/* "127.0.0.1:9898" */
	unsigned connections;		/* pool wanted */
	unsigned per_client;		/* connections per client address */
	unsigned deadline_s;		/* whole request */
	uint64_t max_body;		/* Content-Length accepted (0: no body) */
	unsigned log_interval_s;	/* summary period of the log throttle */
	MHD_AccessHandlerCallback handler;
	void *handler_cls;
	MHD_RequestCompletedCallback completed;	/* may be NULL */
};

struct sm_httpd_counters {
	uint64_t c[SM_HTTPD_NCTR];
	unsigned open, limit;
};

struct sm_httpd;

struct sm_httpd *sm_httpd_start(const struct sm_httpd_conf *conf);
void sm_httpd_stop(struct sm_httpd *h);
void sm_httpd_log(struct sm_httpd *h, const char *reason, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sm_httpd_counters(struct sm_httpd *h, struct sm_httpd_counters *out);
const char *sm_httpd_counter_name(int i);

#endif
