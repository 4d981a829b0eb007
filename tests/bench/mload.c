/*
 * mload.c - a milter-protocol load generator (benchmarks only, never installed).
 *
 * Speaks milter protocol version 6 to one milter the way Postfix's smtpd/cleanup do:
 * option negotiation offering every action and every SMFIP_NO / SMFIP_NR_ step, macros per
 * stage (Postfix's default macro lists, or the milter's SETSYMLIST), connect, HELO, MAIL,
 * RCPT, DATA, each header, end of headers, body chunks and end of message, skipping the
 * steps the milter asked not to get and not waiting for the replies it asked not to send.
 * It reads every reply and every modification action at end of message.
 *
 * Usage: mload -s unix:/path|inet:host:port [-c conns] [-n messages] [-m per-connection]
 *	[-d distinct-senders] [-o offset] [-f sender-format] [-x forged-headers] [-e NAME[=PREFIX]]...
 *	[-k NAME] [-D body-delay-ms] [-b body-bytes] [-p progress-every] [-H hold-seconds]
 *	[-w warm-messages] [-t reply-timeout-s] [-q]
 *
 *   -c	concurrent connections (threads), default 1
 *   -n	messages in all, default 1000; -m messages per connection before QUIT (default 100)
 *   -d	distinct senders: message i comes from format(o + i % d) (-f, default
 *	"bench%d@customer.test"; -o offset, default 0), both envelope sender and From header
 *   -x	forged "X-Stripe-Forged-N" headers per message (the milter should delete them)
 *   -e	a header the milter must add to every message (value starting with PREFIX);
 *	messages missing one are counted as bad (exit status 1)
 *   -k	tally the values of this added header by their first item (up to ';', a leading
 *	version item "v=N;" skipped), e.g. X-Stripe-Lookup
 *   -D	milliseconds between end of headers and end of message (a slow body)
 *   -H	open every connection, send connect and HELO, print "HOLDING n" and wait this many
 *	seconds before sending mail (to measure a daemon at n open connections)
 *   -p	print "PROGRESS n seconds" each time n*every messages are done
 *   -w	messages sent first and not measured (warm-up), with the same senders
 *
 * Output: a human summary on stderr unless -q, and one line on stdout:
 *	RESULT msgs=N secs=S rate=R p50=.. p90=.. p99=.. max=.. eom_p50=.. eom_p99=.. bad=N
 *	errors=N adds=N deletes=N vals=a:1,b:2
 * Latencies are in milliseconds: "p*" from MAIL to the final reply at end of message (all
 * the time the milter adds to one message), "eom_*" from end of message to its reply.
 *
 * Differences from Postfix, all on the client side: packets that need no reply are
 * buffered and written together with the next one that does (fewer system calls in the
 * load generator, the same bytes to the milter); the connection is not handed from smtpd
 * to cleanup (no process boundary); no SMTP session behind it.
 *
 * Limits: a milter that answers with a reply code, reject, discard or tempfail counts the
 * message as an error (this is a benchmark of accepting milters); replies over 1 MB fail the
 * connection.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#define ML_MAX_EXPECT	16
#define ML_MAX_VALS	32
#define ML_REPLY_MAX	(1024 * 1024)
#define ML_OUT_MAX	(256 * 1024)

/* Every step Postfix may skip or send without a reply (its MILTER8_V6_PROTO_MASK). */
#define ML_PROTO_OFFER (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | \
	SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NR_HDR | SMFIP_NOUNKNOWN | \
	SMFIP_NODATA | SMFIP_SKIP | SMFIP_RCPT_REJ | SMFIP_NR_CONN | SMFIP_NR_HELO | \
	SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH | \
	SMFIP_NR_BODY | SMFIP_HDR_LEADSPC)
#define ML_ACTIONS_OFFER (SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT | \
	SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR | SMFIF_SETSYMLIST)

struct ml_expect {
	char name[128];
	char prefix[256];
};

struct ml_opts {
	char socket[512];
	long offset;
	int conns, per_conn, distinct, forged, body_delay_ms, body_bytes, hold_s, timeout_s;
	long total, warm, progress;
	const char *sender_fmt;
	struct ml_expect expect[ML_MAX_EXPECT];
	int nexpect;
	const char *tally;
	int quiet;
};

/* Macro lists per stage (SMFIM_CONNECT .. SMFIM_EOH); the milter may replace them. */
struct ml_symlists {
	char *list[SMFIM_LAST + 1];	/* NULL = Postfix's default list */
};

struct ml_conn {
	int fd;
	unsigned long proto, actions;
	struct ml_symlists sym;
	unsigned char out[ML_OUT_MAX];
	size_t outlen;
	unsigned char *in;
	size_t inlen, inpos, incap;
	int id;
};

/* What end of message brought for one message. */
struct ml_eom {
	int adds, deletes, other;
	int seen[ML_MAX_EXPECT];
	char tally[128];
	char final;
};

static struct ml_opts o = {
	.conns = 1, .per_conn = 100, .distinct = 1, .total = 1000, .timeout_s = 120,
	.sender_fmt = "bench%d@customer.test", .body_bytes = 600,
};

static pthread_mutex_t ml_lock = PTHREAD_MUTEX_INITIALIZER;
static long ml_next;			/* next message number to send */
static long ml_done;			/* messages finished (measured phase) */
static long ml_bad, ml_errors, ml_adds, ml_deletes;
static double *ml_lat, *ml_eomlat;	/* per measured message, ms */
static long ml_nlat;
static int ml_connected;		/* for -H */
static struct { char v[128]; long n; } ml_vals[ML_MAX_VALS];
static int ml_nvals;
static double ml_t0;
static char ml_fmt_head[200], ml_fmt_tail[200];	/* -f split around its %d */

static double ml_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ml_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("mload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---- connection and packets ---- */

static int ml_connect(void)
{
	int fd = -1;

	if (strncmp(o.socket, "unix:", 5) == 0 || strncmp(o.socket, "local:", 6) == 0) {
		struct sockaddr_un sun;
		const char *p = strchr(o.socket, ':') + 1;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(p) >= sizeof(sun.sun_path))
			return -1;
		memcpy(sun.sun_path, p, strlen(p) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			close(fd);
			fd = -1;
		}
	} else if (strncmp(o.socket, "inet:", 5) == 0) {
		char host[256], *port;
		struct addrinfo hints, *ai = NULL;
		int one = 1;

		if (strlen(o.socket + 5) >= sizeof(host))
			return -1;
		memcpy(host, o.socket + 5, strlen(o.socket + 5) + 1);
		port = strrchr(host, ':');
		if (port == NULL)
			return -1;
		*port++ = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(host, port, &hints, &ai) != 0)
			return -1;
		fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
		/* Postfix sets no TCP_NODELAY either; with batching below it rarely matters,
		 * but a benchmark must not measure Nagle on the client side. */
		if (fd >= 0)
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		freeaddrinfo(ai);
	}
	return fd;
}

static int ml_flush(struct ml_conn *c)
{
	size_t off = 0;

	while (off < c->outlen) {
		ssize_t n = write(c->fd, c->out + off, c->outlen - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	c->outlen = 0;
	return 0;
}

/* Appends one packet (cmd + data) to the output buffer. */
static int ml_put(struct ml_conn *c, char cmd, const void *data, size_t len)
{
	uint32_t n = htonl((uint32_t)(len + 1));

	if (len + 5 > ML_OUT_MAX)
		return -1;
	if (c->outlen + len + 5 > ML_OUT_MAX && ml_flush(c) != 0)
		return -1;
	memcpy(c->out + c->outlen, &n, 4);
	c->out[c->outlen + 4] = (unsigned char)cmd;
	if (len)
		memcpy(c->out + c->outlen + 5, data, len);
	c->outlen += len + 5;
	return 0;
}

static int ml_fill(struct ml_conn *c, size_t need)
{
	while (c->inlen - c->inpos < need) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;

		if (c->inpos > 0) {
			memmove(c->in, c->in + c->inpos, c->inlen - c->inpos);
			c->inlen -= c->inpos;
			c->inpos = 0;
		}
		if (c->incap - c->inlen < 65536) {
			size_t cap = c->incap ? c->incap * 2 : 65536;
			unsigned char *p;

			if (cap > ML_REPLY_MAX + 65536)
				return -1;
			p = realloc(c->in, cap);
			if (p == NULL)
				return -1;
			c->in = p;
			c->incap = cap;
		}
		if (poll(&pfd, 1, o.timeout_s * 1000) <= 0)
			return -1;
		n = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->inlen += (size_t)n;
	}
	return 0;
}

/* Reads one reply packet: its command in *cmd, its data (not NUL-terminated) in *data. */
static int ml_get(struct ml_conn *c, char *cmd, const unsigned char **data, size_t *len)
{
	uint32_t n;

	if (ml_flush(c) != 0 || ml_fill(c, 4) != 0)
		return -1;
	memcpy(&n, c->in + c->inpos, 4);
	n = ntohl(n);
	if (n < 1 || n > ML_REPLY_MAX || ml_fill(c, 4 + n) != 0)
		return -1;
	*cmd = (char)c->in[c->inpos + 4];
	*data = c->in + c->inpos + 5;
	*len = n - 1;
	c->inpos += 4 + n;
	return 0;
}

/* Sends a command; when the milter replies to it, reads the reply (progress skipped). */
static int ml_cmd(struct ml_conn *c, char cmd, const void *data, size_t len, unsigned long nr)
{
	const unsigned char *d;
	size_t dl;
	char r;

	if (ml_put(c, cmd, data, len) != 0)
		return -1;
	if (nr && (c->proto & nr))
		return 0;
	do {
		if (ml_get(c, &r, &d, &dl) != 0)
			return -1;
	} while (r == SMFIR_PROGRESS);
	return r == SMFIR_CONTINUE || r == SMFIR_ACCEPT || r == SMFIR_SKIP ? 0 : -1;
}

/* ---- macros ---- */

static const char *const ml_default_macros[SMFIM_LAST + 1] = {
	[SMFIM_CONNECT] = "j {daemon_name} {daemon_addr} v _ {client_addr} {client_name}",
	[SMFIM_HELO] = "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
	[SMFIM_ENVFROM] = "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
	[SMFIM_ENVRCPT] = "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	[SMFIM_DATA] = "i",
	[SMFIM_EOM] = "i",
	[SMFIM_EOH] = "i",
};

/* The values this client has; an unknown macro is not sent (as Postfix does). */
static const char *ml_macro_value(const char *name, const char *qid, const char *sender)
{
	static const struct { const char *n, *v; } fixed[] = {
		{ "j", "mx.example.test" }, { "{daemon_name}", "mload" },
		{ "{daemon_addr}", "127.0.0.1" }, { "v", "Postfix 3.7.11" },
		{ "_", "client.example.net [192.0.2.10]" }, { "{client_addr}", "192.0.2.10" },
		{ "{client_name}", "client.example.net" }, { "{mail_mailer}", "smtp" },
		{ "{mail_host}", "customer.test" }, { "{rcpt_addr}", "support@example.test" },
		{ "{rcpt_host}", "example.test" }, { "{rcpt_mailer}", "virtual" },
	};
	size_t i;

	if (strcmp(name, "i") == 0)
		return qid;
	if (strcmp(name, "{mail_addr}") == 0)
		return sender;
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(fixed[i].n, name) == 0)
			return fixed[i].v;
	return NULL;
}

static int ml_macros(struct ml_conn *c, int stage, char cmd, const char *qid, const char *sender)
{
	const char *list = c->sym.list[stage] ? c->sym.list[stage] : ml_default_macros[stage];
	char buf[2048], name[128];
	size_t len = 0;
	const char *p = list;

	buf[len++] = cmd;
	while (*p) {
		size_t n = strcspn(p, " ");
		const char *v;

		if (n > 0 && n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			v = ml_macro_value(name, qid, sender);
			if (v && len + n + strlen(v) + 2 < sizeof(buf)) {
				memcpy(buf + len, name, n + 1);
				len += n + 1;
				memcpy(buf + len, v, strlen(v) + 1);
				len += strlen(v) + 1;
			}
		}
		p += n;
		p += strspn(p, " ");
	}
	if (len == 1)
		return 0;
	return ml_put(c, SMFIC_MACRO, buf, len);
}

/* ---- negotiation and connect ---- */

static int ml_negotiate(struct ml_conn *c)
{
	uint32_t v[3] = { htonl(6), htonl(ML_ACTIONS_OFFER), htonl(ML_PROTO_OFFER) };
	const unsigned char *d;
	size_t dl, off;
	char r;

	if (ml_put(c, SMFIC_OPTNEG, v, sizeof(v)) != 0 || ml_get(c, &r, &d, &dl) != 0 ||
	    r != SMFIC_OPTNEG || dl < 12)
		return -1;
	memcpy(v, d, 12);
	c->actions = ntohl(v[1]);
	c->proto = ntohl(v[2]);
	for (off = 12; off + 4 < dl;) {		/* symbol lists: stage, names\0 */
		uint32_t stage;
		size_t n;

		memcpy(&stage, d + off, 4);
		stage = ntohl(stage);
		off += 4;
		n = strnlen((const char *)d + off, dl - off);
		if (stage <= SMFIM_LAST) {
			free(c->sym.list[stage]);
			c->sym.list[stage] = strndup((const char *)d + off, n);
		}
		off += n + 1;
	}
	return 0;
}

static int ml_open(struct ml_conn *c)
{
	char buf[256];
	size_t len;
	uint16_t port = htons(40000);

	c->fd = ml_connect();
	if (c->fd < 0 || ml_negotiate(c) != 0)
		return -1;
	if (!(c->proto & SMFIP_NOCONNECT)) {
		len = 0;
		memcpy(buf, "client.example.net", 19);
		len += 19;
		buf[len++] = SMFIA_INET;
		memcpy(buf + len, &port, 2);
		len += 2;
		memcpy(buf + len, "192.0.2.10", 11);
		len += 11;
		if (ml_macros(c, SMFIM_CONNECT, SMFIC_CONNECT, "", "") != 0 ||
		    ml_cmd(c, SMFIC_CONNECT, buf, len, SMFIP_NR_CONN) != 0)
			return -1;
	}
	if (!(c->proto & SMFIP_NOHELO)) {
		if (ml_macros(c, SMFIM_HELO, SMFIC_HELO, "", "") != 0 ||
		    ml_cmd(c, SMFIC_HELO, "client.example.net", 19, SMFIP_NR_HELO) != 0)
			return -1;
	}
	return 0;
}

static void ml_close(struct ml_conn *c)
{
	int i;

	if (c->fd >= 0) {
		c->outlen = 0;
		if (ml_put(c, SMFIC_QUIT, NULL, 0) == 0)
			(void)ml_flush(c);
		close(c->fd);
	}
	c->fd = -1;
	c->inlen = c->inpos = 0;
	for (i = 0; i <= SMFIM_LAST; i++) {
		free(c->sym.list[i]);
		c->sym.list[i] = NULL;
	}
}

/* ---- one message ---- */

static int ml_header(struct ml_conn *c, const char *name, const char *value)
{
	char buf[2048];
	int n;

	if (c->proto & SMFIP_NOHDRS)
		return 0;
	n = snprintf(buf, sizeof(buf), "%s%c%s%s", name, 0, c->proto & SMFIP_HDR_LEADSPC ? " " : "", value);
	if (n < 0 || (size_t)n + 1 > sizeof(buf))
		return -1;
	return ml_cmd(c, SMFIC_HEADER, buf, (size_t)n + 1, SMFIP_NR_HDR);
}

/* Records one modification action of end of message. */
static void ml_action(struct ml_eom *e, char r, const unsigned char *d, size_t dl)
{
	const char *name, *value;
	size_t off = 0;
	int i;

	switch (r) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
		e->adds++;
		if (r == SMFIR_INSHEADER)
			off = 4;		/* index first */
		if (dl < off + 2 || d[dl - 1] != '\0')
			return;
		name = (const char *)d + off;
		value = name + strlen(name) + 1;
		if ((const unsigned char *)value >= d + dl)
			return;
		while (*value == ' ')
			value++;
		for (i = 0; i < o.nexpect; i++)
			if (strcasecmp(name, o.expect[i].name) == 0 &&
			    strncmp(value, o.expect[i].prefix, strlen(o.expect[i].prefix)) == 0)
				e->seen[i] = 1;
		if (o.tally && strcasecmp(name, o.tally) == 0) {
			/* the first item, past a version item ("v=2; found; ..." -> "found") */
			if (value[0] == 'v' && value[1] == '=' && strchr(value, ';')) {
				value = strchr(value, ';') + 1;
				while (*value == ' ')
					value++;
			}
			snprintf(e->tally, sizeof(e->tally), "%.*s", (int)strcspn(value, ";\r\n"), value);
		}
		return;
	case SMFIR_CHGHEADER:
		e->deletes++;
		return;
	default:
		e->other++;
		return;
	}
}

static void ml_tally(const char *v)
{
	int i;

	for (i = 0; i < ml_nvals; i++)
		if (strcmp(ml_vals[i].v, v) == 0) {
			ml_vals[i].n++;
			return;
		}
	if (ml_nvals < ML_MAX_VALS) {
		snprintf(ml_vals[ml_nvals].v, sizeof(ml_vals[0].v), "%s", v);
		ml_vals[ml_nvals++].n = 1;
	}
}

static int ml_message(struct ml_conn *c, long num, struct ml_eom *e, double *t_eom)
{
	char sender[440], qid[32], arg[450], hv[1024];
	static char body[1 << 16];
	const unsigned char *d;
	size_t dl;
	char r;
	int i;

	snprintf(sender, sizeof(sender), "%s%ld%s", ml_fmt_head, o.offset + num % o.distinct, ml_fmt_tail);
	snprintf(qid, sizeof(qid), "%lX", 0x1000000UL + (unsigned long)num);
	memset(e, 0, sizeof(*e));
	if (!(c->proto & SMFIP_NOMAIL)) {
		snprintf(arg, sizeof(arg), "<%s>", sender);
		if (ml_macros(c, SMFIM_ENVFROM, SMFIC_MAIL, qid, sender) != 0 ||
		    ml_cmd(c, SMFIC_MAIL, arg, strlen(arg) + 1, SMFIP_NR_MAIL) != 0)
			return -1;
	}
	if (!(c->proto & SMFIP_NORCPT)) {
		if (ml_macros(c, SMFIM_ENVRCPT, SMFIC_RCPT, qid, sender) != 0 ||
		    ml_cmd(c, SMFIC_RCPT, "<support@example.test>", 23, SMFIP_NR_RCPT) != 0)
			return -1;
	}
	if (!(c->proto & SMFIP_NODATA)) {
		if (ml_macros(c, SMFIM_DATA, SMFIC_DATA, qid, sender) != 0 ||
		    ml_cmd(c, SMFIC_DATA, NULL, 0, SMFIP_NR_DATA) != 0)
			return -1;
	}
	snprintf(hv, sizeof(hv), "from client.example.net (client.example.net [192.0.2.10])\n\tby mx.example.test (Postfix) with ESMTP id %s\n\tfor <support@example.test>; Fri, 27 Nov 2026 18:00:00 +0000 (UTC)", qid);
	if (ml_header(c, "Received", hv) != 0)
		return -1;
	snprintf(hv, sizeof(hv), "Customer %ld <%s>", o.offset + num % o.distinct, sender);
	if (ml_header(c, "From", hv) != 0 || ml_header(c, "To", "Support <support@example.test>") != 0 ||
	    ml_header(c, "Subject", "Question about my invoice") != 0 ||
	    ml_header(c, "Date", "Fri, 27 Nov 2026 18:00:00 +0000") != 0)
		return -1;
	snprintf(hv, sizeof(hv), "<%ld.%s@customer.test>", num, qid);
	if (ml_header(c, "Message-ID", hv) != 0 || ml_header(c, "MIME-Version", "1.0") != 0 ||
	    ml_header(c, "Content-Type", "text/plain; charset=us-ascii") != 0)
		return -1;
	for (i = 0; i < o.forged; i++) {
		char name[64];

		snprintf(name, sizeof(name), "X-Stripe-Forged-%d", i);
		if (ml_header(c, name, "found; forged=yes") != 0)
			return -1;
	}
	if (!(c->proto & SMFIP_NOEOH)) {
		if (ml_macros(c, SMFIM_EOH, SMFIC_EOH, qid, sender) != 0 ||
		    ml_cmd(c, SMFIC_EOH, NULL, 0, SMFIP_NR_EOH) != 0)
			return -1;
	}
	if (o.body_delay_ms > 0) {
		struct timespec ts = { o.body_delay_ms / 1000, (long)(o.body_delay_ms % 1000) * 1000000L };

		if (ml_flush(c) != 0)
			return -1;
		nanosleep(&ts, NULL);
	}
	if (!(c->proto & SMFIP_NOBODY) && o.body_bytes > 0) {
		int left = o.body_bytes;

		if (body[0] == '\0') {
			for (i = 0; i < (int)sizeof(body); i++)
				body[i] = (i % 72 == 71) ? '\n' : (char)('a' + i % 26);
		}
		while (left > 0) {
			int n = left > 65535 ? 65535 : left;

			if (ml_cmd(c, SMFIC_BODY, body, (size_t)n, SMFIP_NR_BODY) != 0)
				return -1;
			left -= n;
		}
	}
	if (ml_macros(c, SMFIM_EOM, SMFIC_BODYEOB, qid, sender) != 0 ||
	    ml_put(c, SMFIC_BODYEOB, NULL, 0) != 0)
		return -1;
	*t_eom = ml_now();
	for (;;) {
		if (ml_get(c, &r, &d, &dl) != 0)
			return -1;
		if (r == SMFIR_PROGRESS)
			continue;
		if (r == SMFIR_ACCEPT || r == SMFIR_CONTINUE) {
			e->final = r;
			return 0;
		}
		if (strchr("rtdyf4", r))	/* rejected, tempfailed, ... */
			return -1;
		ml_action(e, r, d, dl);
	}
}

/* ---- threads ---- */

static long ml_claim(void)
{
	long n;

	pthread_mutex_lock(&ml_lock);
	n = ml_next < o.warm + o.total ? ml_next++ : -1;
	pthread_mutex_unlock(&ml_lock);
	return n;
}

static void ml_record(long num, double lat, double eomlat, const struct ml_eom *e, int failed)
{
	int i, bad = 0;

	if (!failed)
		for (i = 0; i < o.nexpect; i++)
			if (!e->seen[i])
				bad = 1;
	pthread_mutex_lock(&ml_lock);
	if (num >= o.warm) {
		if (failed) {
			ml_errors++;
		} else {
			ml_lat[ml_nlat] = lat * 1000.0;
			ml_eomlat[ml_nlat++] = eomlat * 1000.0;
			ml_bad += bad;
			ml_adds += e->adds;
			ml_deletes += e->deletes;
			if (o.tally)
				ml_tally(e->tally[0] ? e->tally : "(none)");
		}
		ml_done++;
		if (o.progress > 0 && ml_done % o.progress == 0) {
			printf("PROGRESS %ld %.2f\n", ml_done, ml_now() - ml_t0);
			fflush(stdout);
		}
	} else if (failed) {
		ml_errors++;
	}
	pthread_mutex_unlock(&ml_lock);
}

static void *ml_thread(void *arg)
{
	struct ml_conn *c = calloc(1, sizeof(*c));
	long num;
	int sent = 0, held = 0;

	if (c == NULL)
		ml_die("out of memory");
	c->fd = -1;
	c->id = (int)(intptr_t)arg;
	for (;;) {
		struct ml_eom e;
		double t0, te = 0;

		if (c->fd < 0) {
			if (ml_open(c) != 0) {
				/* each failed connection costs one message: the run ends */
				ml_close(c);
				if ((num = ml_claim()) < 0)
					break;
				memset(&e, 0, sizeof(e));
				ml_record(num, 0, 0, &e, 1);
				usleep(10000);
				continue;
			}
			sent = 0;
		}
		if (o.hold_s > 0 && !held) {
			held = 1;
			pthread_mutex_lock(&ml_lock);
			if (++ml_connected == o.conns) {
				printf("HOLDING %d\n", ml_connected);
				fflush(stdout);
			}
			pthread_mutex_unlock(&ml_lock);
			sleep((unsigned)o.hold_s);
		}
		if ((num = ml_claim()) < 0)
			break;
		t0 = ml_now();
		if (ml_message(c, num, &e, &te) != 0) {
			ml_record(num, 0, 0, &e, 1);
			ml_close(c);
			continue;
		}
		ml_record(num, ml_now() - t0, ml_now() - te, &e, 0);
		if (++sent >= o.per_conn)
			ml_close(c);
	}
	ml_close(c);
	free(c->in);
	free(c);
	return NULL;
}

static int ml_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double ml_pct(const double *v, long n, double p)
{
	long i;

	if (n == 0)
		return 0;
	i = (long)(p * (double)(n - 1) + 0.5);
	return v[i];
}

static void ml_usage(void)
{
	fprintf(stderr, "usage: mload -s unix:/path|inet:host:port [-c conns] [-n messages] "
	    "[-m per-connection] [-d distinct] [-o offset] [-f sender-format] [-x forged] [-e NAME[=PREFIX]] "
	    "[-k NAME] [-D body-delay-ms] [-b body-bytes] [-p every] [-H hold-s] [-w warm] "
	    "[-t timeout-s] [-q]\n");
	exit(2);
}

static long ml_num(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		ml_die("bad number %s (%ld..%ld)", s, min, max);
	return v;
}

int main(int argc, char **argv)
{
	pthread_t *th;
	double secs;
	int ch, i;

	while ((ch = getopt(argc, argv, "s:c:n:m:d:o:f:x:e:k:D:b:p:H:w:t:q")) != -1) {
		switch (ch) {
		case 's': snprintf(o.socket, sizeof(o.socket), "%s", optarg); break;
		case 'c': o.conns = (int)ml_num(optarg, 1, 5000); break;
		case 'n': o.total = ml_num(optarg, 1, 100000000); break;
		case 'm': o.per_conn = (int)ml_num(optarg, 1, 100000000); break;
		case 'd': o.distinct = (int)ml_num(optarg, 1, 100000000); break;
		case 'o': o.offset = ml_num(optarg, 0, 1000000000); break;
		case 'f': o.sender_fmt = optarg; break;
		case 'x': o.forged = (int)ml_num(optarg, 0, 1000); break;
		case 'e': {
			const char *eq = strchr(optarg, '=');

			if (o.nexpect == ML_MAX_EXPECT)
				ml_die("too many -e");
			snprintf(o.expect[o.nexpect].name, sizeof(o.expect[0].name), "%.*s",
			    (int)(eq ? (size_t)(eq - optarg) : strlen(optarg)), optarg);
			snprintf(o.expect[o.nexpect].prefix, sizeof(o.expect[0].prefix), "%s", eq ? eq + 1 : "");
			o.nexpect++;
			break;
		}
		case 'k': o.tally = optarg; break;
		case 'D': o.body_delay_ms = (int)ml_num(optarg, 0, 600000); break;
		case 'b': o.body_bytes = (int)ml_num(optarg, 0, 10000000); break;
		case 'p': o.progress = ml_num(optarg, 0, 100000000); break;
		case 'H': o.hold_s = (int)ml_num(optarg, 0, 3600); break;
		case 'w': o.warm = ml_num(optarg, 0, 100000000); break;
		case 't': o.timeout_s = (int)ml_num(optarg, 1, 3600); break;
		case 'q': o.quiet = 1; break;
		default: ml_usage();
		}
	}
	if (o.socket[0] == '\0' || optind != argc)
		ml_usage();
	{
		/* the sender format must take exactly one %d */
		const char *p = strchr(o.sender_fmt, '%');

		if (p == NULL || p[1] != 'd' || strchr(p + 2, '%'))
			ml_die("-f needs exactly one %%d");
		if ((size_t)(p - o.sender_fmt) >= sizeof(ml_fmt_head) || strlen(p + 2) >= sizeof(ml_fmt_tail))
			ml_die("-f is too long");
		memcpy(ml_fmt_head, o.sender_fmt, (size_t)(p - o.sender_fmt));
		memcpy(ml_fmt_tail, p + 2, strlen(p + 2) + 1);
	}
	ml_lat = calloc((size_t)o.total, sizeof(double));
	ml_eomlat = calloc((size_t)o.total, sizeof(double));
	th = calloc((size_t)o.conns, sizeof(*th));
	if (ml_lat == NULL || ml_eomlat == NULL || th == NULL)
		ml_die("out of memory");
	ml_t0 = ml_now();
	for (i = 0; i < o.conns; i++)
		if (pthread_create(&th[i], NULL, ml_thread, (void *)(intptr_t)i) != 0)
			ml_die("pthread_create failed");
	if (o.warm > 0 || o.hold_s > 0) {
		/* the clock starts when warm-up is over (and connections were held) */
		long start = o.warm + (o.hold_s > 0 ? 1 : 0), next;

		do {
			usleep(1000);
			pthread_mutex_lock(&ml_lock);
			next = ml_next;
			pthread_mutex_unlock(&ml_lock);
		} while (next < start && next < o.warm + o.total);
		ml_t0 = ml_now();
	}
	for (i = 0; i < o.conns; i++)
		pthread_join(th[i], NULL);
	secs = ml_now() - ml_t0;
	qsort(ml_lat, (size_t)ml_nlat, sizeof(double), ml_cmp);
	qsort(ml_eomlat, (size_t)ml_nlat, sizeof(double), ml_cmp);
	printf("RESULT msgs=%ld secs=%.3f rate=%.1f p50=%.3f p90=%.3f p99=%.3f max=%.3f "
	    "eom_p50=%.3f eom_p99=%.3f bad=%ld errors=%ld adds=%ld deletes=%ld vals=",
	    ml_nlat, secs, secs > 0 ? (double)ml_nlat / secs : 0.0,
	    ml_pct(ml_lat, ml_nlat, 0.50), ml_pct(ml_lat, ml_nlat, 0.90), ml_pct(ml_lat, ml_nlat, 0.99),
	    ml_nlat ? ml_lat[ml_nlat - 1] : 0.0,
	    ml_pct(ml_eomlat, ml_nlat, 0.50), ml_pct(ml_eomlat, ml_nlat, 0.99),
	    ml_bad, ml_errors, ml_adds, ml_deletes);
	for (i = 0; i < ml_nvals; i++)
		printf("%s%s:%ld", i ? "," : "", ml_vals[i].v, ml_vals[i].n);
	printf("\n");
	if (!o.quiet)
		fprintf(stderr, "mload: %ld messages in %.2f s = %.1f msg/s over %d connections; "
		    "latency ms p50 %.2f p99 %.2f; %ld without the expected headers, %ld errors\n",
		    ml_nlat, secs, secs > 0 ? (double)ml_nlat / secs : 0.0, o.conns,
		    ml_pct(ml_lat, ml_nlat, 0.50), ml_pct(ml_lat, ml_nlat, 0.99), ml_bad, ml_errors);
	free(ml_lat);
	free(ml_eomlat);
	free(th);
	return ml_bad || ml_errors ? 1 : 0;
}
