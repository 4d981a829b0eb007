/*
 * mf_milter.c - libmilter callbacks: per-connection and per-message state, skip rules,
 * forged-header stripping and header insertion. See mf_milter.h.
 *
 * Flow of a message:
 *	envfrom	 take a config snapshot; skip authenticated, internal and null senders;
 *		 start the envelope sender's lookup (at the first matching RCPT when a
 *		 Recipients filter is set), so it runs while the message arrives; with
 *		 LookupAddress header-from[-or-envelope] only a probe of the caches (the
 *		 Stripe lookup waits until the message is known to use that address).
 *	header	 remember every header with our prefix (any case) and its index among
 *		 headers of that name; the first From (start its lookup; the envelope
 *		 sender's probe becomes its lookup when they are the same address); Authentication-Results for the optional DMARC gate. Answers as
 *		 negotiated: SMFIS_NOREPLY when the MTA agreed to SMFIP_NR_HDR (Postfix,
 *		 Sendmail 8.14+), SMFIS_CONTINUE otherwise; any other answer there makes
 *		 libmilter log "milter claimed not to reply ... but did anyway" and drop it.
 *		 So a header that cannot be recorded (no memory for a forged one) never answers
 *		 TEMPFAIL at header time: it marks the message, and end of message applies
 *		 On-InternalError (tempfail: 451 4.3.0; accept: logged, delivered).
 *	eom	 delete the forged headers, highest index first (Postfix renumbers after each
 *		 delete); pick the address; wait for its lookup until its deadline; add headers.
 *
 * Failure actions: a Stripe or Redis failure shows as "X-Stripe-Lookup: error=<class>" and
 * the mail is accepted. What the milter itself cannot do (no memory, a failed header
 * delete or add) follows On-InternalError: accept (logged) or tempfail.
 *
 * TCP: libmilter never sets TCP_NODELAY on accepted connections, so with inet: sockets
 * small replies wait for delayed ACKs (~40 ms each). mf_nodelay() sets it on the
 * connection's socket (read from libmilter's context, checked to be a TCP socket first).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/sm_log.h"
#include "common/sm_util.h"
#include "mail/mail.h"
#include "milter/mf_hdr.h"
#include "lookup/lookup.h"
#include "milter/mf_milter.h"
#include "milter/mf_policy.h"
#include "milter/mf_results.h"
#include "milter/mf_runtime.h"


#define MF_AUTHRES_MAX	8

struct mf_forged {
	char *fg_name;
	int fg_index;		/* 1-based among headers of this name (case-insensitive) */
};

struct mf_msg {
	struct mf_runtime *msg_rt;
	const char *msg_skip;			/* skip reason, NULL = look up */
	bool msg_null_sender;
	char msg_envfrom[MAIL_ADDR_MAX + 1];		/* "" when unparseable */
	bool msg_rcpt_match;
	struct lk_prefetch msg_jobs[MF_ACCOUNTS_MAX];	/* per account: the envelope sender's
							 * and the From address's */
	bool msg_hdr_started;			/* the From address's lookup was started */
	int msg_from_headers;
	enum mail_addr_rc msg_from_rc;
	int msg_from_naddrs;
	char msg_from[MAIL_ADDR_MAX + 1];
	struct mf_forged *msg_forged;
	int msg_nforged, msg_forged_alloc;
	char *msg_authres[MF_AUTHRES_MAX];
	int msg_nauthres;
	const char *msg_failed;			/* a header-time failure for eom to act on */
	int64_t msg_t0;
};

struct mf_conn {
	char conn_addr[INET6_ADDRSTRLEN];
	bool conn_internal;
	bool conn_no_strip;		/* the MTA did not allow deleting headers */
	bool conn_no_add;		/* ... nor adding them */
	bool conn_nr_hdr;		/* SMFIP_NR_HDR negotiated: the header step has no reply */
	struct mf_msg *conn_msg;
};

/* What negotiation agreed when it had no memory for the connection's state: one read-only
 * marker per combination of the three flags, set as the private data until mlfi_connect()
 * allocates the real state (or applies On-InternalError: negotiation itself cannot answer
 * 451, and closing the connection there would leave the outcome to the MTA's default). */
static struct mf_conn mf_conn_pending[8];

static bool mf_conn_is_pending(const struct mf_conn *c)
{
	return c >= mf_conn_pending && c < mf_conn_pending + 8;
}

/* ---- helpers ---- */

static void mf_nodelay(SMFICTX *ctx)
{
	/* libmilter's private struct smfi_str starts with the thread id and the socket. */
	struct mf_ctx_head { pthread_t id; int sd; } *head = (struct mf_ctx_head *)(void *)ctx;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int type = 0, one = 1;
	socklen_t tl = sizeof(type);

	if (head->sd < 0 || getsockopt(head->sd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
		return;
	if (getsockname(head->sd, (struct sockaddr *)&ss, &sl) != 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return;
	if (setsockopt(head->sd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		sm_log(LOG_DEBUG, "TCP_NODELAY on milter connection failed");
}

/* "j***@example.com" unless LogAddresses is on. */
static void mf_mask_addr(const struct mf_runtime *rt, const char *addr, char *out, size_t len)
{
	const char *at = strrchr(addr, '@');

	if (mf_runtime_conf(rt)->log_addresses || at == NULL || at == addr)
		snprintf(out, len, "%s", *addr ? addr : "<>");
	else
		snprintf(out, len, "%c***%s", addr[0], at);
}

static sfsistat mf_internal_error(SMFICTX *ctx, const struct mf_runtime *rt, const char *what)
{
	sm_log(LOG_ERR, "internal error: %s; On-InternalError %s", what,
	    rt && mf_runtime_conf(rt)->on_internal_error == MF_ON_TEMPFAIL ? "tempfail" : "accept");
	if (rt && mf_runtime_conf(rt)->on_internal_error == MF_ON_TEMPFAIL) {
		smfi_setreply(ctx, "451", "4.3.0", "Temporary local problem, please try again later");
		return SMFIS_TEMPFAIL;
	}
	return SMFIS_ACCEPT;
}

/* Messages allocated and not yet freed (mf_milter_in_progress()). */
static long mf_msgs_open;

long mf_milter_in_progress(void)
{
	return __atomic_load_n(&mf_msgs_open, __ATOMIC_ACQUIRE);
}

static void mf_msg_free(struct mf_msg *m)
{
	int i;

	if (m == NULL)
		return;
	__atomic_sub_fetch(&mf_msgs_open, 1, __ATOMIC_RELEASE);
	for (i = 0; i < MF_ACCOUNTS_MAX; i++)
		lk_prefetch_release(&m->msg_jobs[i]);
	for (i = 0; i < m->msg_nforged; i++)
		free(m->msg_forged[i].fg_name);
	free(m->msg_forged);
	for (i = 0; i < m->msg_nauthres; i++)
		free(m->msg_authres[i]);
	mf_runtime_put(m->msg_rt);
	free(m);
}

static struct mf_conn *mf_conn_of(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

/* Would an address be looked up at all? NULL = yes, else the skip reason. */
static const char *mf_addr_skip(const struct mf_runtime *rt, const char *addr)
{
	const char *dom = mail_addr_domain(addr);

	if (mail_addr_is_bounce(addr))
		return "bounce";
	if (mf_runtime_skip_domains(rt) && dom && mf_match_addr(mf_runtime_skip_domains(rt), addr))
		return "sender-domain";
	return NULL;
}

static bool mf_may_start(const struct mf_msg *m)
{
	return m->msg_skip == NULL && (mf_runtime_recipients(m->msg_rt) == NULL || m->msg_rcpt_match);
}

/* With LookupAddress envelope the envelope sender is the address: its lookup starts now.
 * Otherwise the From header decides, so the envelope sender is only probed in the caches;
 * its Stripe lookup starts when the From header names it or end of message falls back
 * to it (no Stripe request for VERP senders the message never uses). */
static void mf_start_env(struct mf_msg *m)
{
	if (!mf_may_start(m) || m->msg_envfrom[0] == '\0' || mf_addr_skip(m->msg_rt, m->msg_envfrom))
		return;
	for (int i = 0; i < mf_runtime_accounts(m->msg_rt); i++)
		if (mf_runtime_conf(m->msg_rt)->lookup_address == MF_ADDR_ENVELOPE)
			lk_prefetch(&m->msg_jobs[i], mf_runtime_account_lookup(m->msg_rt, i), m->msg_envfrom);
		else
			lk_prefetch_probe(&m->msg_jobs[i], mf_runtime_account_lookup(m->msg_rt, i), m->msg_envfrom);
}

static void mf_start_hdr(struct mf_msg *m)
{
	/* From equal to the envelope sender turns that probe into its lookup */
	if (m->msg_hdr_started || !mf_may_start(m) || m->msg_from_rc != MAIL_ADDR_OK ||
	    mf_runtime_conf(m->msg_rt)->lookup_address == MF_ADDR_ENVELOPE ||
	    mf_addr_skip(m->msg_rt, m->msg_from))
		return;
	m->msg_hdr_started = true;
	for (int i = 0; i < mf_runtime_accounts(m->msg_rt); i++)
		lk_prefetch(&m->msg_jobs[i], mf_runtime_account_lookup(m->msg_rt, i), m->msg_from);
}

/* ---- callbacks ---- */

static sfsistat mlfi_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
    unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	unsigned long want = SMFIP_NOBODY | SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NR_HDR | SMFIP_NOEOH;
	struct mf_conn *c = calloc(1, sizeof(*c));
	bool no_strip = !(f0 & SMFIF_CHGHDRS), no_add = !(f0 & SMFIF_ADDHDRS);

	(void)f2;
	(void)f3;
	sm_log(LOG_DEBUG, "negotiate: the MTA offers actions 0x%lx, steps 0x%lx", f0, f1);
	mf_nodelay(ctx);
	/* Without these actions the milter cannot do its job; it goes on so that end of
	 * message can apply On-InternalError (a forged header that cannot be deleted). */
	if ((f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS)) != (SMFIF_ADDHDRS | SMFIF_CHGHDRS))
		sm_log(LOG_ERR, "the MTA does not allow%s%s: check its milter configuration",
		    f0 & SMFIF_ADDHDRS ? "" : " adding headers", f0 & SMFIF_CHGHDRS ? "" : " deleting headers");
	*pf0 = (f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS)) | (f0 & SMFIF_SETSYMLIST);
	*pf1 = f1 & want;
	if (c != NULL) {
		c->conn_no_strip = no_strip;
		c->conn_no_add = no_add;
		c->conn_nr_hdr = (*pf1 & SMFIP_NR_HDR) != 0;
	} else {
		c = &mf_conn_pending[no_strip | no_add << 1 | ((*pf1 & SMFIP_NR_HDR) != 0) << 2];
	}
	smfi_setpriv(ctx, c);
	*pf2 = 0;
	*pf3 = 0;
	if (f0 & SMFIF_SETSYMLIST) {
		smfi_setsymlist(ctx, SMFIM_ENVFROM, "{auth_authen}");
		smfi_setsymlist(ctx, SMFIM_EOM, "i");
	}
	return SMFIS_CONTINUE;
}

static sfsistat mlfi_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	struct mf_conn *c = mf_conn_of(ctx);
	struct mf_runtime *rt;

	(void)host;
	if (c == NULL || mf_conn_is_pending(c)) {	/* no state yet: an MTA that did not
							 * negotiate (protocol 2), or no memory then */
		const struct mf_conn *pending = c;

		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			sfsistat r;

			smfi_setpriv(ctx, NULL);
			rt = mf_runtime_get();
			r = mf_internal_error(ctx, rt, "out of memory at connect");
			mf_runtime_put(rt);
			return r;
		}
		if (pending) {
			c->conn_no_strip = pending->conn_no_strip;
			c->conn_no_add = pending->conn_no_add;
			c->conn_nr_hdr = pending->conn_nr_hdr;
		}
		smfi_setpriv(ctx, c);
	}
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, c->conn_addr, sizeof(c->conn_addr));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, c->conn_addr, sizeof(c->conn_addr));
	else
		sm_strlcpy(c->conn_addr, "local", sizeof(c->conn_addr));
	rt = mf_runtime_get();
	if (rt && sa && mf_runtime_internal(rt))
		c->conn_internal = mf_cidr_match(mf_runtime_internal(rt), sa);
	mf_runtime_put(rt);
	return SMFIS_CONTINUE;
}

static sfsistat mlfi_envfrom(SMFICTX *ctx, char **argv)
{
	struct mf_conn *c = mf_conn_of(ctx);
	struct mf_msg *m;
	const char *auth;
	enum mail_addr_rc rc;

	if (c == NULL)
		return SMFIS_ACCEPT;
	mf_msg_free(c->conn_msg);
	c->conn_msg = m = calloc(1, sizeof(*m));
	if (m == NULL) {
		struct mf_runtime *rt = mf_runtime_get();
		sfsistat r = mf_internal_error(ctx, rt, "out of memory at MAIL FROM");

		mf_runtime_put(rt);
		return r;
	}
	__atomic_add_fetch(&mf_msgs_open, 1, __ATOMIC_RELAXED);
	m->msg_t0 = sm_now_ms();
	m->msg_rt = mf_runtime_get();
	m->msg_from_rc = MAIL_ADDR_EMPTY;
	rc = mail_addr_envelope(argv && argv[0] ? argv[0] : "", m->msg_envfrom, sizeof(m->msg_envfrom));
	if (rc == MAIL_ADDR_NULL)
		m->msg_null_sender = true;
	else if (rc != MAIL_ADDR_OK)
		m->msg_envfrom[0] = '\0';
	auth = smfi_getsymval(ctx, "{auth_authen}");
	if (mf_runtime_conf(m->msg_rt)->skip_authenticated && auth && *auth)
		m->msg_skip = "authenticated";
	else if (c->conn_internal)
		m->msg_skip = "internal-host";
	mf_start_env(m);
	return SMFIS_CONTINUE;
}

static sfsistat mlfi_envrcpt(SMFICTX *ctx, char **argv)
{
	struct mf_conn *c = mf_conn_of(ctx);
	struct mf_msg *m = c ? c->conn_msg : NULL;
	char rcpt[MAIL_ADDR_MAX + 1];

	if (m == NULL || mf_runtime_recipients(m->msg_rt) == NULL || m->msg_rcpt_match)
		return SMFIS_CONTINUE;
	if (argv && argv[0] && mail_addr_envelope(argv[0], rcpt, sizeof(rcpt)) == MAIL_ADDR_OK &&
	    mf_match_addr(mf_runtime_recipients(m->msg_rt), rcpt)) {
		m->msg_rcpt_match = true;
		mf_start_env(m);
	}
	return SMFIS_CONTINUE;
}

static sfsistat mlfi_data(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static int mf_count_name(const struct mf_msg *m, const char *name)
{
	int i, n = 0;

	for (i = 0; i < m->msg_nforged; i++)
		if (strcasecmp(m->msg_forged[i].fg_name, name) == 0)
			n++;
	return n;
}

static int mf_note_forged(struct mf_msg *m, const char *name)
{
	if (m->msg_nforged == m->msg_forged_alloc) {
		int n = m->msg_forged_alloc ? m->msg_forged_alloc * 2 : 8;
		struct mf_forged *p = realloc(m->msg_forged, (size_t)n * sizeof(*p));

		if (p == NULL)
			return -1;
		m->msg_forged = p;
		m->msg_forged_alloc = n;
	}
	m->msg_forged[m->msg_nforged].fg_index = mf_count_name(m, name) + 1;
	m->msg_forged[m->msg_nforged].fg_name = strdup(name);
	if (m->msg_forged[m->msg_nforged].fg_name == NULL)
		return -1;
	m->msg_nforged++;
	return 0;
}

/* The header step's answer: none when the MTA agreed not to wait for one. */
static sfsistat mf_header_reply(const struct mf_conn *c)
{
	return c && c->conn_nr_hdr ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat mlfi_header(SMFICTX *ctx, char *name, char *value)
{
	struct mf_conn *c = mf_conn_of(ctx);
	struct mf_msg *m = c ? c->conn_msg : NULL;

	if (m == NULL)
		return mf_header_reply(c);
	if (mf_hdr_has_prefix(name, mf_runtime_hdr(m->msg_rt)->prefix)) {
		/* No reply is possible here under NR_HDR: end of message acts on it. */
		if (mf_note_forged(m, name) != 0 && m->msg_failed == NULL) {
			m->msg_failed = "out of memory noting a forged header";
			sm_log(LOG_ERR, "%s; On-InternalError is applied at end of message", m->msg_failed);
		}
		return mf_header_reply(c);
	}
	if (strcasecmp(name, "From") == 0) {
		if (m->msg_from_headers++ == 0) {
			m->msg_from_rc = mail_addr_from_header(value, m->msg_from, sizeof(m->msg_from),
			    &m->msg_from_naddrs);
			mf_start_hdr(m);
		}
	} else if (strcasecmp(name, "Authentication-Results") == 0 && m->msg_nauthres < MF_AUTHRES_MAX) {
		char *dup = strdup(value);

		if (dup)
			m->msg_authres[m->msg_nauthres++] = dup;
	}
	return mf_header_reply(c);
}

/* Deletes forged headers, last seen first: for each name that is the highest index. */
static int mf_strip(SMFICTX *ctx, const struct mf_conn *c, struct mf_msg *m)
{
	int i;

	if (m->msg_nforged > 0 && c->conn_no_strip)
		return -1;

	for (i = m->msg_nforged - 1; i >= 0; i--)
		if (smfi_chgheader(ctx, m->msg_forged[i].fg_name, m->msg_forged[i].fg_index, NULL) != MI_SUCCESS)
			return -1;
	return 0;
}

static bool mf_verified(const struct mf_msg *m, const char *addr)
{
	const char *dom = mail_addr_domain(addr);
	int i;

	for (i = 0; dom && i < m->msg_nauthres; i++)
		if (mf_authres_dmarc_pass(m->msg_authres[i], mf_runtime_authserv(m->msg_rt), dom,
		    mf_runtime_conf(m->msg_rt)->allow_aligned_dkim))
			return true;
	return false;
}

/* Chooses the address to report on; NULL with *skip set when none is looked up. */
static const char *mf_pick_addr(struct mf_msg *m, const char **skip)
{
	const struct mf_conf *conf = mf_runtime_conf(m->msg_rt);
	const char *addr = NULL;

	*skip = m->msg_skip;
	if (*skip)
		return NULL;
	if (mf_runtime_recipients(m->msg_rt) && !m->msg_rcpt_match) {
		*skip = "recipient";
		return NULL;
	}
	if (conf->lookup_address == MF_ADDR_ENVELOPE ||
	    (conf->lookup_address == MF_ADDR_HEADER_OR_ENVELOPE && m->msg_from_rc != MAIL_ADDR_OK)) {
		if (m->msg_null_sender)
			*skip = "null-sender";
		else if (m->msg_envfrom[0] == '\0')
			*skip = "malformed-sender";
		else
			addr = m->msg_envfrom;
	} else if (m->msg_null_sender) {
		*skip = "null-sender";
	} else if (m->msg_from_headers == 0 || m->msg_from_rc == MAIL_ADDR_EMPTY) {
		*skip = "no-sender";
	} else if (m->msg_from_headers > 1) {
		*skip = "multiple-from";
	} else if (m->msg_from_rc != MAIL_ADDR_OK) {
		*skip = "malformed-sender";
	} else {
		addr = m->msg_from;
	}
	if (addr && (*skip = mf_addr_skip(m->msg_rt, addr)) != NULL)
		return NULL;
	if (addr && conf->require_auth_results && !mf_verified(m, addr)) {
		*skip = "unverified";
		return NULL;
	}
	return addr;
}

/* One account's answer for the message. */
struct mf_answer {
	struct mf_lookup_info li;
	const struct stripe_summary *sum;	/* NULL unless found or not-found */
	const struct lk_result *res;		/* NULL when there is none (timeout) */
};

/* Fills account i's answer for addr from its lookup, waiting up to the lookup's deadline
 * (counted from when the lookup started: the accounts' lookups run at once, so waiting
 * for one after the other adds no time). */
static void mf_result(struct mf_msg *m, int i, const char *addr, struct mf_answer *a)
{
	const char *why = "internal";

	memset(a, 0, sizeof(*a));
	a->li.livemode = mf_runtime_livemode(m->msg_rt);
	a->res = lk_prefetch_result(&m->msg_jobs[i], mf_runtime_account_lookup(m->msg_rt, i), addr,
	    mf_runtime_conf(m->msg_rt)->lookup_timeout_ms, &why);
	if (a->res == NULL) {
		a->li.state = LK_ERROR;
		a->li.error_class = why;
		return;
	}
	a->sum = mf_hdr_info_fill(a->res, &a->li);
}

static void mf_log_line(SMFICTX *ctx, const struct mf_msg *m, const char *addr,
    const struct mf_lookup_info *li, const struct lk_result *res, int nforged)
{
	const char *qid = smfi_getsymval(ctx, "i");
	char who[MAIL_ADDR_MAX + 8], result[96];

	mf_mask_addr(m->msg_rt, addr ? addr : "", who, sizeof(who));
	switch (li->state) {
	case LK_FOUND: snprintf(result, sizeof(result), "found"); break;
	case LK_NOT_FOUND: snprintf(result, sizeof(result), "not-found"); break;
	case LK_ERROR: snprintf(result, sizeof(result), "error=%s", li->error_class ? li->error_class : "internal"); break;
	case LK_SKIPPED: snprintf(result, sizeof(result), "skipped=%s", li->skip_reason); break;
	}
	sm_log(LOG_INFO, "%s: sender=%s result=%s%s%s%s cache=%s latency_ms=%lld forged_removed=%d%s%s%s%s",
	    qid && *qid ? qid : "NOQUEUE", addr ? who : "-", result, li->stale ? " stale=yes" : "",
	    li->account ? " account=" : "", li->account ? li->account : "",
	    li->cache ? li->cache : "-",
	    (long long)(sm_now_ms() - m->msg_t0), nforged,
	    res && res->lr_request_id[0] ? " stripe_request_id=" : "", res ? res->lr_request_id : "",
	    res && res->lr_error_message[0] && li->state == LK_ERROR ? " why=" : "",
	    res && li->state == LK_ERROR ? res->lr_error_message : "");
}

/* Every account's answer for addr, and the one the headers show in *li, *sum, *res (with
 * the Accounts line's input when AccountTable is set); *latency_ms the longest lookup. */
static void mf_answers(struct mf_msg *m, const char *addr, struct mf_answer *ans, struct mf_hdr_account *hacct,
    struct mf_lookup_info *li, const struct stripe_summary **sum, const struct lk_result **res,
    int64_t *latency_ms)
{
	int i, best, n = mf_runtime_accounts(m->msg_rt);

	*latency_ms = 0;
	/* every account's lookup runs before any is waited for: one not started yet (the
	 * envelope sender only probed, the From header unusable) starts here, all at once
	 * (with one account lk_prefetch_result() does the same, after the probe's answer) */
	for (i = 0; n > 1 && i < n; i++)
		lk_prefetch(&m->msg_jobs[i], mf_runtime_account_lookup(m->msg_rt, i), addr);
	for (i = 0; i < n; i++) {
		mf_result(m, i, addr, &ans[i]);
		if (ans[i].res == NULL || ans[i].res->lr_latency_ms > *latency_ms)
			*latency_ms = ans[i].res ? ans[i].res->lr_latency_ms :
			    mf_runtime_conf(m->msg_rt)->lookup_timeout_ms;
		hacct[i] = (struct mf_hdr_account){ mf_runtime_account_name(m->msg_rt, i), &ans[i].li, ans[i].sum };
	}
	best = mf_hdr_pick(hacct, n);
	*li = ans[best].li;
	*sum = ans[best].sum;
	*res = ans[best].res;
	if (mf_runtime_named(m->msg_rt)) {
		li->account = mf_runtime_account_name(m->msg_rt, best);
		li->accounts = hacct;
		li->naccounts = n;
	}
}

static sfsistat mlfi_eom(SMFICTX *ctx)
{
	struct mf_conn *c = mf_conn_of(ctx);
	struct mf_msg *m = c ? c->conn_msg : NULL;
	const struct stripe_summary *sum = NULL;
	const struct lk_result *res = NULL;
	struct mf_answer ans[MF_ACCOUNTS_MAX];
	struct mf_hdr_account hacct[MF_ACCOUNTS_MAX];
	int64_t latency = 0;
	struct mf_lookup_info li;
	struct mf_hdr_list *hl = NULL;
	const char *addr, *skip = NULL;
	sfsistat st = SMFIS_ACCEPT;
	int i;

	if (m == NULL)
		return SMFIS_ACCEPT;
	if (m->msg_failed) {
		st = mf_internal_error(ctx, m->msg_rt, m->msg_failed);
		if (st != SMFIS_ACCEPT)
			goto out;
	}
	if (mf_strip(ctx, c, m) != 0) {
		st = mf_internal_error(ctx, m->msg_rt, "could not delete a forged header");
		if (st != SMFIS_ACCEPT)
			goto out;
	}
	if (c->conn_no_add) {
		st = mf_internal_error(ctx, m->msg_rt, "the MTA does not allow adding headers");
		goto out;
	}
	memset(&li, 0, sizeof(li));
	li.livemode = mf_runtime_livemode(m->msg_rt);
	addr = mf_pick_addr(m, &skip);
	if (addr == NULL) {
		li.state = LK_SKIPPED;
		li.skip_reason = skip;
	} else {
		mf_answers(m, addr, ans, hacct, &li, &sum, &res, &latency);
	}
	li.from_count = m->msg_from_naddrs;
	hl = malloc(sizeof(*hl));	/* ~13 KB: mf_hdr_render() sets what it uses */
	if (hl == NULL || mf_hdr_render(mf_runtime_hdr(m->msg_rt), &li, sum, hl) < 0) {
		st = mf_internal_error(ctx, m->msg_rt, "could not render headers");
		goto out;
	}
	/* Inserted at the end: Sendmail's smfi_addheader() would put each before the first
	 * (deleted) forged header of its name, scattering them; Postfix appends either way. */
	for (i = 0; i < hl->n; i++)
		if (smfi_insheader(ctx, INT_MAX, hl->h[i].name, hl->h[i].value) != MI_SUCCESS) {
			st = mf_internal_error(ctx, m->msg_rt, "could not add a header");
			if (st != SMFIS_ACCEPT)
				goto out;
			break;
		}
	mf_log_line(ctx, m, addr, &li, res, m->msg_nforged);
	mf_results_count(&li, sum, addr == NULL ? -1 : latency);
	for (i = 0; addr != NULL && i < mf_runtime_accounts(m->msg_rt); i++)
		mf_results_account_count(mf_runtime_account_results(m->msg_rt, i), &ans[i].li, ans[i].sum);
out:
	free(hl);
	mf_msg_free(m);
	c->conn_msg = NULL;
	return st;
}

static sfsistat mlfi_abort(SMFICTX *ctx)
{
	struct mf_conn *c = mf_conn_of(ctx);

	if (c) {
		mf_msg_free(c->conn_msg);
		c->conn_msg = NULL;
	}
	return SMFIS_CONTINUE;
}

static sfsistat mlfi_close(SMFICTX *ctx)
{
	struct mf_conn *c = mf_conn_of(ctx);

	if (c && !mf_conn_is_pending(c)) {
		mf_msg_free(c->conn_msg);
		free(c);
	}
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static struct smfiDesc mf_desc = {
	.xxfi_name = "stripe-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS,
	.xxfi_connect = mlfi_connect,
	.xxfi_helo = NULL,
	.xxfi_envfrom = mlfi_envfrom,
	.xxfi_envrcpt = mlfi_envrcpt,
	.xxfi_header = mlfi_header,
	.xxfi_eoh = NULL,
	.xxfi_body = NULL,
	.xxfi_eom = mlfi_eom,
	.xxfi_abort = mlfi_abort,
	.xxfi_close = mlfi_close,
	.xxfi_unknown = NULL,
	.xxfi_data = mlfi_data,
	.xxfi_negotiate = mlfi_negotiate,
};

struct smfiDesc *mf_milter_desc(void)
{
	return &mf_desc;
}
