/*
 * sm_httpd.c - an HTTP listener that holds under abuse. See sm_httpd.h for the checks.
 *
 * Why these libmicrohttpd (0.9.75, Debian 12) options and this design:
 *	- MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL: one thread serves every connection
 *	  through epoll, so an open connection costs a descriptor and its 36 KiB memory pool,
 *	  not a thread; the pool can then be large (MHD_OPTION_CONNECTION_LIMIT, sized from
 *	  RLIMIT_NOFILE) and the per-client limit is what protects it.
 *	- The per-client limit is ours, in the accept policy callback, not
 *	  MHD_OPTION_PER_IP_CONNECTION_LIMIT: MHD refuses over its per-IP limit with the same
 *	  error-log line as over its pool limit, so the refusals could not be counted apart;
 *	  the accept policy sees every accepted connection with its address, and the
 *	  connection notifications (same thread) keep the count per address.
 *	- MHD only has an idle timeout (MHD_OPTION_CONNECTION_TIMEOUT), renewed by every byte,
 *	  so a client sending a byte every few seconds holds a connection forever. The
 *	  whole-request deadline is ours: MHD_OPTION_NOTIFY_CONNECTION records each
 *	  connection's start (socket context) in a list, and a reaper thread (every 250 ms)
 *	  shuts down the socket of a connection past its deadline; MHD then reads the end of
 *	  the stream and closes it in its own thread. MHD calls the CLOSED notification (which
 *	  unlinks the connection under the same mutex) before it closes the descriptor, so
 *	  the reaper never touches a closed or reused descriptor. MHD's idle timeout stays, 2 s
 *	  past the deadline, as a backstop.
 *	- Content-Length is checked in the first access-handler call, after the headers and
 *	  before the body: queuing the answer then makes MHD discard the request and close
 *	  the connection after the answer. MHD 0.9.75 itself answers 413 only for a value that
 *	  does not fit 64 bits; 18446744073709551615 fits and is MHD's "size unknown", with
 *	  which it waits for a body to the end of the stream: the check here answers it 413.
 *	- MHD_OPTION_EXTERNAL_LOGGER: MHD's own messages (one per malformed request) would
 *	  otherwise go to stderr one by one; they are counted and go through the throttle.
 *
 * Log throttle: per interval, the first event of each reason is logged in full; later ones
 *	are counted, and one line at the end of the interval (from the reaper, or the next
 *	event) gives the counts by reason. At most (reasons + 1) lines per interval.
 *
 * Memory: the listener and its connection records are malloc'ed here and freed by
 *	sm_httpd_stop() and the CLOSED notification. Diagnostics: start failures are logged
 *	at LOG_ERR; a connection record that cannot be allocated leaves that connection
 *	without a deadline (logged once).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "common/sm_httpd.h"
#include "common/sm_log.h"
#include "common/sm_util.h"

#define SM_HTTPD_REASONS 16
#define SM_HTTPD_TICK_MS 250
/* Per connection (request line, headers, buffers). Over 32 KiB MHD 0.9.75 mmap()s it
 * instead of malloc()ing it, so the memory of connections an attack opened and closed
 * goes back to the system instead of staying in malloc's arenas. */
#define SM_HTTPD_CONN_MEMORY (36u * 1024)

struct sm_conn {
	struct sm_conn *prev, *next;
	uint32_t addr;		/* network order; 0 when not IPv4 */
	int fd;
	int64_t start_ms;	/* accept, or the previous answer */
	unsigned answered;
	bool reaped;
};

struct sm_reason {
	const char *name;	/* static string */
	uint64_t n;
	bool logged;
};

struct sm_httpd {
	struct sm_httpd_conf conf;
	char name[32];
	struct MHD_Daemon *d;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t reaper;
	bool reaper_started, stop, up;
	struct sm_conn *conns;
	unsigned open, limit;
	uint64_t c[SM_HTTPD_NCTR];
	struct sm_reason lr[SM_HTTPD_REASONS];
	int nlr;
	uint64_t suppressed;
	int64_t window_ms;
	int log_nomem;
};

static const char *const sm_ctr_names[SM_HTTPD_NCTR] = {
	"refused_per_client", "pool_full", "timed_out_request", "timed_out_idle",
	"too_large", "length_required", "protocol",
};

const char *sm_httpd_counter_name(int i)
{
	return i >= 0 && i < SM_HTTPD_NCTR ? sm_ctr_names[i] : NULL;
}

/* ---- log throttle ------------------------------------------------------------------- */

/* Under h->mu: when the interval ended, writes the summary (if anything was only counted)
 * into out and starts a new interval. */
static void sm_lr_roll(struct sm_httpd *h, int64_t now, char *out, size_t outlen)
{
	size_t k;
	int i;

	out[0] = '\0';
	if (now - h->window_ms < (int64_t)h->conf.log_interval_s * 1000)
		return;
	if (h->suppressed > 0) {
		k = (size_t)snprintf(out, outlen, "%s listener: %llu more rejected in the last %llds, not logged one by one; by reason:",
		    h->name, (unsigned long long)h->suppressed, (long long)((now - h->window_ms) / 1000));
		for (i = 0; i < h->nlr && k < outlen; i++)
			if (h->lr[i].n)
				k += (size_t)snprintf(out + k, outlen - k, " %s=%llu", h->lr[i].name,
				    (unsigned long long)h->lr[i].n);
	}
	for (i = 0; i < h->nlr; i++) {
		h->lr[i].n = 0;
		h->lr[i].logged = false;
	}
	h->suppressed = 0;
	h->window_ms = now;
}

static void sm_lr_event(struct sm_httpd *h, const char *reason, uint64_t n, int level, const char *msg)
{
	char summary[512];
	bool full = false;
	int i;

	pthread_mutex_lock(&h->mu);
	sm_lr_roll(h, sm_now_ms(), summary, sizeof(summary));
	for (i = 0; i < h->nlr && strcmp(h->lr[i].name, reason) != 0; i++)
		;
	if (i == h->nlr) {
		if (h->nlr < SM_HTTPD_REASONS)
			h->lr[h->nlr++] = (struct sm_reason){ reason, 0, false };
		else
			i = SM_HTTPD_REASONS - 1;	/* full: counted under the last reason */
	}
	h->lr[i].n += n;
	if (!h->lr[i].logged) {
		h->lr[i].logged = true;
		full = true;
		h->suppressed += n - 1;
	} else {
		h->suppressed += n;
	}
	pthread_mutex_unlock(&h->mu);
	if (summary[0])
		sm_log(LOG_NOTICE, "%s", summary);
	if (full)
		sm_log(level, "%s listener: %s (more %s within %us are counted, not logged)", h->name, msg,
		    reason, h->conf.log_interval_s);
}

void sm_httpd_log(struct sm_httpd *h, const char *reason, int level, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (h == NULL)
		sm_log(level, "%s", msg);
	else
		sm_lr_event(h, reason, 1, level, msg);
}

/* ---- connections -------------------------------------------------------------------- */

static void sm_ntop(uint32_t addr, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = addr };

	if (inet_ntop(AF_INET, &a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

static void sm_count(struct sm_httpd *h, enum sm_httpd_ctr i, uint64_t n)
{
	pthread_mutex_lock(&h->mu);
	h->c[i] += n;
	pthread_mutex_unlock(&h->mu);
}

/* Accept policy: the per-client limit. Runs in MHD's thread, like the notifications. */
static enum MHD_Result sm_apc(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct sm_httpd *h = cls;
	const struct sm_conn *c;
	unsigned n = 0;
	uint32_t a;
	char ip[INET_ADDRSTRLEN];

	if (sa == NULL || sa->sa_family != AF_INET || len < (socklen_t)sizeof(struct sockaddr_in))
		return MHD_YES;
	a = ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr;
	pthread_mutex_lock(&h->mu);
	for (c = h->conns; c; c = c->next)
		if (c->addr == a)
			n++;
	if (n >= h->conf.per_client)
		h->c[SM_HTTPD_REFUSED_PER_CLIENT]++;
	pthread_mutex_unlock(&h->mu);
	if (n < h->conf.per_client)
		return MHD_YES;
	sm_ntop(a, ip, sizeof(ip));
	sm_httpd_log(h, "refused_per_client", LOG_WARNING,
	    "refused a connection from %s: it holds %u already (the per-client limit)", ip, n);
	return MHD_NO;
}

static void sm_notify(void *cls, struct MHD_Connection *conn, void **ctx, enum MHD_ConnectionNotificationCode code)
{
	struct sm_httpd *h = cls;
	struct sm_conn *c = *ctx;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			sm_log_once(&h->log_nomem, LOG_ERR, "%s listener: out of memory: a connection has no deadline",
			    h->name);
			return;
		}
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
			c->addr = ((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr.s_addr;
		c->start_ms = sm_now_ms();
		pthread_mutex_lock(&h->mu);
		c->next = h->conns;
		if (h->conns)
			h->conns->prev = c;
		h->conns = c;
		if (++h->open >= h->limit)
			h->c[SM_HTTPD_POOL_FULL]++;
		pthread_mutex_unlock(&h->mu);
		*ctx = c;
		return;
	}
	if (code != MHD_CONNECTION_NOTIFY_CLOSED || c == NULL)
		return;
	/* before MHD closes the descriptor: the reaper cannot see it any more */
	pthread_mutex_lock(&h->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->open--;
	pthread_mutex_unlock(&h->mu);
	free(c);
	*ctx = NULL;
}

static struct sm_conn *sm_conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* The answer gets a fresh deadline (the handler has the whole request). */
static void sm_conn_restart(struct sm_httpd *h, struct MHD_Connection *conn, bool answered)
{
	struct sm_conn *c = sm_conn_of(conn);

	if (c == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	c->start_ms = sm_now_ms();
	if (answered)
		c->answered++;
	pthread_mutex_unlock(&h->mu);
}

static void *sm_reaper(void *arg)
{
	struct sm_httpd *h = arg;
	struct timespec ts;
	struct sm_conn *c;
	uint64_t late[2];
	int64_t now;
	char summary[512], msg[160];

	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += SM_HTTPD_TICK_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&h->cv, &h->mu, &ts);
		if (h->stop)
			break;
		now = sm_now_ms();
		late[0] = late[1] = 0;
		for (c = h->conns; c; c = c->next) {
			if (c->reaped || c->fd < 0 || now - c->start_ms < (int64_t)h->conf.deadline_s * 1000)
				continue;
			c->reaped = true;
			shutdown(c->fd, SHUT_RDWR);
			late[c->answered ? 1 : 0]++;
		}
		h->c[SM_HTTPD_TIMED_OUT_REQUEST] += late[0];
		h->c[SM_HTTPD_TIMED_OUT_IDLE] += late[1];
		sm_lr_roll(h, now, summary, sizeof(summary));
		pthread_mutex_unlock(&h->mu);
		if (summary[0])
			sm_log(LOG_NOTICE, "%s", summary);
		if (late[0]) {
			snprintf(msg, sizeof(msg), "closed %llu connection(s) that did not complete a request within %us",
			    (unsigned long long)late[0], h->conf.deadline_s);
			sm_lr_event(h, "timed_out_request", late[0], LOG_WARNING, msg);
		}
		if (late[1]) {
			snprintf(msg, sizeof(msg), "closed %llu kept-alive connection(s) idle for %us",
			    (unsigned long long)late[1], h->conf.deadline_s);
			sm_lr_event(h, "timed_out_idle", late[1], LOG_INFO, msg);
		}
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* ---- requests ----------------------------------------------------------------------- */

static enum MHD_Result sm_refuse(struct sm_httpd *h, struct MHD_Connection *conn, unsigned status,
    enum sm_httpd_ctr ctr, const char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	sm_count(h, ctr, 1);
	resp = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain");
	MHD_add_response_header(resp, "Connection", "close");
	rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static void sm_client(struct MHD_Connection *conn, char *ip, size_t len)
{
	struct sm_conn *c = sm_conn_of(conn);

	sm_ntop(c ? c->addr : 0, ip, len);
}

/* First call (headers in, body not read): the body's declared size. -1 = go on. */
static int sm_check_body(struct sm_httpd *h, struct MHD_Connection *conn, enum MHD_Result *rc)
{
	const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	unsigned long long v = 0;
	bool over = false;
	char ip[INET_ADDRSTRLEN];

	if (te != NULL) {
		sm_client(conn, ip, sizeof(ip));
		sm_httpd_log(h, "length_required", LOG_WARNING,
		    "refused a body without Content-Length (Transfer-Encoding) from %s: 411", ip);
		*rc = sm_refuse(h, conn, 411, SM_HTTPD_LENGTH_REQUIRED, "length required\n");
		return 0;
	}
	if (cl == NULL)
		return -1;
	/* MHD checked the digits; a value over 2^64-1 never reaches here (MHD answers 413) */
	for (; *cl >= '0' && *cl <= '9'; cl++) {
		if (v > (~0ULL - (unsigned long long)(*cl - '0')) / 10) {
			over = true;
			break;
		}
		v = v * 10 + (unsigned long long)(*cl - '0');
	}
	if (!over && v <= h->conf.max_body)
		return -1;
	sm_client(conn, ip, sizeof(ip));
	sm_httpd_log(h, "too_large", LOG_WARNING,
	    "refused a body of %s%llu bytes from %s before reading it (the limit is %llu): 413",
	    over ? "over " : "", v, ip, (unsigned long long)h->conf.max_body);
	*rc = sm_refuse(h, conn, 413, SM_HTTPD_TOO_LARGE, "too_large\n");
	return 0;
}

static enum MHD_Result sm_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *data, size_t *size, void **state)
{
	struct sm_httpd *h = cls;
	enum MHD_Result rc;

	if (*state == NULL) {
		if (sm_check_body(h, conn, &rc) == 0)
			return rc;
	} else if (*size == 0) {
		sm_conn_restart(h, conn, false);
	}
	return h->conf.handler(h->conf.handler_cls, conn, url, method, version, data, size, state);
}

static void sm_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode tc)
{
	struct sm_httpd *h = cls;

	if (h->conf.completed)
		h->conf.completed(h->conf.handler_cls, conn, state, tc);
	if (tc == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		sm_conn_restart(h, conn, true);
}

/* MHD's error log: counted and throttled once the listener is up (start-up errors are
 * logged as they come). */
__attribute__((format(printf, 2, 0)))
static void sm_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct sm_httpd *h = cls;
	char msg[300];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	if (!__atomic_load_n(&h->up, __ATOMIC_ACQUIRE)) {
		sm_log(LOG_ERR, "%s listener: libmicrohttpd: %s", h->name, msg);
		return;
	}
	sm_count(h, SM_HTTPD_PROTOCOL, 1);
	sm_lr_event(h, "protocol", 1, LOG_WARNING, msg);
}

/* ---- start and stop ----------------------------------------------------------------- */

static unsigned sm_pool_size(unsigned wanted)
{
	struct rlimit rl;
	unsigned share = wanted;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		share = rl.rlim_cur > 512 + 64 ? (unsigned)((rl.rlim_cur - 512) / 4) : 16;
	if (wanted > share)
		wanted = share;
	return wanted < 16 ? 16 : wanted;
}

static void sm_httpd_free(struct sm_httpd *h)
{
	struct sm_conn *c;

	if (h == NULL)
		return;
	while ((c = h->conns) != NULL) {
		h->conns = c->next;
		free(c);
	}
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

struct sm_httpd *sm_httpd_start(const struct sm_httpd_conf *conf)
{
	struct sm_httpd *h;
	struct sockaddr_in sa;
	pthread_condattr_t ca;
	char why[64];

	if (sm_parse_inet4(conf->addr, &sa, why, sizeof(why)) != 0) {
		sm_log(LOG_ERR, "%s listener '%s': %s, e.g. 127.0.0.1:9898", conf->name, conf->addr, why);
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		sm_log(LOG_ERR, "%s listener: out of memory", conf->name);
		return NULL;
	}
	h->conf = *conf;
	h->conf.addr = NULL;	/* not kept */
	if (h->conf.per_client == 0)
		h->conf.per_client = 1;
	if (h->conf.deadline_s == 0)
		h->conf.deadline_s = 1;
	if (h->conf.log_interval_s == 0)
		h->conf.log_interval_s = 60;
	sm_strlcpy(h->name, conf->name, sizeof(h->name));
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cv, &ca);
	pthread_condattr_destroy(&ca);
	h->limit = sm_pool_size(conf->connections);
	h->window_ms = sm_now_ms();
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
	    ntohs(sa.sin_port), sm_apc, h, sm_access, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_CONNECTION_LIMIT, h->limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, h->conf.deadline_s + 2,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SM_HTTPD_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_CONNECTION, sm_notify, h,
	    MHD_OPTION_NOTIFY_COMPLETED, sm_completed, h,
	    MHD_OPTION_EXTERNAL_LOGGER, sm_mhd_log, h,
	    MHD_OPTION_END);
	if (h->d == NULL) {
		sm_log(LOG_ERR, "%s listener %s: cannot listen (address in use?)", conf->name, conf->addr);
		sm_httpd_free(h);
		return NULL;
	}
	__atomic_store_n(&h->up, true, __ATOMIC_RELEASE);	/* MHD's thread reads it */
	if (pthread_create(&h->reaper, NULL, sm_reaper, h) != 0) {
		sm_log(LOG_ERR, "%s listener: cannot start its deadline thread", conf->name);
		MHD_stop_daemon(h->d);
		sm_httpd_free(h);
		return NULL;
	}
	h->reaper_started = true;
	sm_log(LOG_INFO, "%s listener on %s: %u connections, %u per client, %us per request, bodies up to %llu bytes",
	    conf->name, conf->addr, h->limit, h->conf.per_client, h->conf.deadline_s,
	    (unsigned long long)h->conf.max_body);
	return h;
}

void sm_httpd_stop(struct sm_httpd *h)
{
	if (h == NULL)
		return;
	if (h->reaper_started) {
		pthread_mutex_lock(&h->mu);
		h->stop = true;
		pthread_cond_signal(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->reaper, NULL);
	}
	MHD_stop_daemon(h->d);
	sm_httpd_free(h);
}

void sm_httpd_counters(struct sm_httpd *h, struct sm_httpd_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	memcpy(out->c, h->c, sizeof(out->c));
	out->open = h->open;
	out->limit = h->limit;
	pthread_mutex_unlock(&h->mu);
}
