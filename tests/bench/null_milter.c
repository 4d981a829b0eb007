/*
 * null_milter.c - the do-nothing milters the benchmarks compare stripe-milter against
 * (benchmarks only, never installed). Built on libmilter like stripe-milter, negotiating
 * the same steps (no HELO, no body, no unknown, no end-of-headers, no reply to headers) and
 * setting the same macro lists, so that a ratio against it measures the lookup path and
 * not libmilter.
 *
 * Usage: null_milter -s SOCKET [-m same|one] [-p PREFIX]
 *   -m same	(default) the header work stripe-milter does for a found customer: every
 *		header whose name starts with PREFIX (default "X-Stripe-", any case) is noted
 *		with its index and deleted at end of message, last first; then the eight
 *		headers stripe-milter adds for a customer with a subscription, a plan name and
 *		charges are inserted at the end (same names, values of the same length). No
 *		lookup, no cache, no Stripe.
 *   -m one	adds one short header ("X-Null-Milter: seen") and nothing else.
 *
 * On inet: sockets it sets TCP_NODELAY as stripe-milter does, so TCP figures compare milters
 * and not delayed ACKs.
 *
 * Exits on SIGTERM/SIGINT (libmilter's smfi_main). Errors go to stderr.
 * Limits: handles one message per connection at a time, like libmilter itself.
 */
#include "config.h"

#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#define NM_MAX_FORGED 64

struct nm_msg {
	char *nm_name[NM_MAX_FORGED];
	int nm_index[NM_MAX_FORGED];
	int nm_n;
};

static int nm_one;
static const char *nm_prefix = "X-Stripe-";

/* The headers stripe-milter adds for a found customer with a plan (README, header contract
 * version 2): same names, values of the same length. */
static const char *const nm_headers[][2] = {
	{ "X-Stripe-Lookup", "v=2; found; cache=hit; age=12; mode=test" },
	{ "X-Stripe-Customer-Id", "cus_bench000000000" },
	{ "X-Stripe-Customer", "created=2024-03-01; delinquent=no; balance=0.00 USD;\n\tmatches=1" },
	{ "X-Stripe-Name", "Customer 0" },
	{ "X-Stripe-Subscription-Status", "active" },
	{ "X-Stripe-Subscription", "amount=49.00 USD/month; status=active;\n\tperiod_end=2026-12-01; cancel_at_period_end=no" },
	{ "X-Stripe-Plan", "Pro" },
	{ "X-Stripe-Charges", "window=90d; count=2; succeeded=2; failed=0; refunded=0;\n\tdisputed=0; total=98.00 USD; last=2026-11-25 succeeded" },
};

static void nm_free(struct nm_msg *m)
{
	int i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nm_n; i++)
		free(m->nm_name[i]);
	free(m);
}

/* TCP_NODELAY on a TCP connection, as stripe-milter's mf_nodelay() does (libmilter never
 * sets it; without it small replies wait for delayed ACKs): the socket is read from
 * libmilter's context, which starts with the thread id and the socket. */
static void nm_nodelay(SMFICTX *ctx)
{
	struct nm_ctx_head { pthread_t id; int sd; } *head = (struct nm_ctx_head *)(void *)ctx;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int one = 1;

	if (head->sd >= 0 && getsockname(head->sd, (struct sockaddr *)&ss, &sl) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		(void)setsockopt(head->sd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static sfsistat nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
    unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	unsigned long want = SMFIP_NOBODY | SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NR_HDR | SMFIP_NOEOH;

	(void)f2;
	(void)f3;
	nm_nodelay(ctx);
	*pf0 = (f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS)) | (f0 & SMFIF_SETSYMLIST);
	*pf1 = f1 & want;
	*pf2 = 0;
	*pf3 = 0;
	if (f0 & SMFIF_SETSYMLIST) {
		smfi_setsymlist(ctx, SMFIM_ENVFROM, "{auth_authen}");
		smfi_setsymlist(ctx, SMFIM_EOM, "i");
	}
	return SMFIS_CONTINUE;
}

/* The steps stripe-milter has callbacks for (libmilter skips the others). */
static sfsistat nm_continue(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat nm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	(void)host;
	(void)sa;
	return nm_continue(ctx);
}

static sfsistat nm_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)argv;
	return nm_continue(ctx);
}

static sfsistat nm_envfrom(SMFICTX *ctx, char **argv)
{
	struct nm_msg *m = smfi_getpriv(ctx);

	(void)argv;
	nm_free(m);
	m = calloc(1, sizeof(*m));
	smfi_setpriv(ctx, m);
	(void)smfi_getsymval(ctx, "{auth_authen}");
	return m ? SMFIS_CONTINUE : SMFIS_TEMPFAIL;
}

static sfsistat nm_header(SMFICTX *ctx, char *name, char *value)
{
	struct nm_msg *m = smfi_getpriv(ctx);
	int i, n = 1;

	(void)value;
	if (m == NULL || nm_one || strncasecmp(name, nm_prefix, strlen(nm_prefix)) != 0 ||
	    m->nm_n == NM_MAX_FORGED)
		return SMFIS_NOREPLY;
	for (i = 0; i < m->nm_n; i++)
		if (strcasecmp(m->nm_name[i], name) == 0)
			n++;
	m->nm_name[m->nm_n] = strdup(name);
	if (m->nm_name[m->nm_n] == NULL)
		return SMFIS_NOREPLY;
	m->nm_index[m->nm_n++] = n;
	return SMFIS_NOREPLY;
}

static sfsistat nm_eom(SMFICTX *ctx)
{
	struct nm_msg *m = smfi_getpriv(ctx);
	size_t i;
	int j;

	(void)smfi_getsymval(ctx, "i");
	if (nm_one) {
		smfi_insheader(ctx, INT_MAX, "X-Null-Milter", "seen");
	} else if (m) {
		for (j = m->nm_n - 1; j >= 0; j--)
			smfi_chgheader(ctx, m->nm_name[j], m->nm_index[j], NULL);
		for (i = 0; i < sizeof(nm_headers) / sizeof(nm_headers[0]); i++)
			smfi_insheader(ctx, INT_MAX, (char *)nm_headers[i][0], (char *)nm_headers[i][1]);
	}
	nm_free(m);
	smfi_setpriv(ctx, NULL);
	return SMFIS_ACCEPT;
}

static sfsistat nm_abort(SMFICTX *ctx)
{
	nm_free(smfi_getpriv(ctx));
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static sfsistat nm_close(SMFICTX *ctx)
{
	return nm_abort(ctx);
}

static struct smfiDesc nm_desc = {
	.xxfi_name = "null-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS,
	.xxfi_connect = nm_connect,
	.xxfi_envfrom = nm_envfrom,
	.xxfi_envrcpt = nm_envrcpt,
	.xxfi_data = nm_continue,
	.xxfi_header = nm_header,
	.xxfi_eom = nm_eom,
	.xxfi_abort = nm_abort,
	.xxfi_close = nm_close,
	.xxfi_negotiate = nm_negotiate,
};

int main(int argc, char **argv)
{
	const char *sock = NULL;
	int ch;

	while ((ch = getopt(argc, argv, "s:m:p:")) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'm':
			if (strcmp(optarg, "one") == 0)
				nm_one = 1;
			else if (strcmp(optarg, "same") != 0)
				goto usage;
			break;
		case 'p': nm_prefix = optarg; break;
		default: goto usage;
		}
	}
	if (sock == NULL || optind != argc)
		goto usage;
	if (strncmp(sock, "unix:", 5) == 0)
		(void)unlink(sock + 5);
	if (smfi_setconn((char *)sock) != MI_SUCCESS || smfi_register(nm_desc) != MI_SUCCESS ||
	    smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "null_milter: cannot listen on %s\n", sock);
		return 1;
	}
	if (strncmp(sock, "unix:", 5) == 0)
		(void)chmod(sock + 5, 0666);
	return smfi_main() == MI_SUCCESS ? 0 : 1;
usage:
	fprintf(stderr, "usage: null_milter -s SOCKET [-m same|one] [-p PREFIX]\n");
	return 2;
}
