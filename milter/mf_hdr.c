/*
 * mf_hdr.c - the header contract (version 2): a lookup result as X-Stripe-* header lines.
 *
 * Interface: see mf_hdr.h. This comment is the header contract's reference; README.md
 * ("The headers") explains it to rule authors.
 *
 * Two kinds of header, never mixed (the point of version 2):
 *   token headers   machine tokens only: words, "key=value" pairs, numbers, dates, money,
 *                   ids. Nothing in them comes from Stripe's free text, so a rule that
 *                   matches "delinquent=no" or "past_due" in them cannot be fooled by a name.
 *   text headers    exactly one free-text value each (a customer name, a plan name, one
 *                   metadata value) and nothing else: untrusted, for display and for rules
 *                   that want that text. Which text a header holds is in its name.
 *
 * Lines, in this order (prefix "X-Stripe-" configurable; groups configurable):
 *	Lookup		token	v=2; found; cache=hit; age=120; mode=live[; stale=yes]
 *				[; error=<class>][; missing=charges,plan-names][; from-count=2]
 *				[; by=search]
 *				v=2; not-found; cache=miss; mode=test[; search=skipped]
 *					[; missing=guest]
 *				v=2; guest; cache=miss; mode=test   (no customer, but completed
 *					Checkout Sessions whose buyer's email is the sender's:
 *					Checkout follows)
 *				v=2; error=<class>          (no data to show)
 *				v=2; skipped=<reason>
 *		"v=2" is always the first item: the grammar version. The result is the second.
 *		age= is shown when the data came from a cache (cache is not "miss"). Stale data
 *		served because Stripe failed reads "v=2; found; cache=stale; age=...; mode=...;
 *		stale=yes; error=timeout", so "found" still means customer data follows (the
 *		caller may pass that as state FOUND or ERROR with stale set and the summary).
 *		by=search: the customer's stored address differs from the sender's in case only
 *		(found by Stripe's search, not the exact filter). search=skipped: the
 *		case-insensitive search was not tried (its budget was spent, or Stripe has no
 *		search for the account), so a customer stored in other case may exist.
 *		missing= names every part that could not be read: one a restricted key may
 *		not read, or one whose request Stripe refused (a 4xx, logged with Stripe's
 *		request id): customer, subscriptions, plan-names, charges, invoices, guest
 *		(the Checkout Sessions of a sender who is no customer: also on not-found).
 *		account=<name> (AccountTable only): the account whose customer (or guest
 *		buyer) the headers below show; the last item.
 *	Accounts	token	(AccountTable only, right after Lookup, not on skipped=)
 *				eu=found; eu.status=past_due; eu.delinquent=yes; us=not-found;
 *				apac=error; apac.error=timeout
 *		Every account's own answer, in table order: "<name>=found|not-found|guest|
 *		error", then that account's "<name>.status=" (best subscription status, group
 *		subscription), "<name>.delinquent=yes|no" (group customer), "<name>.stale=yes",
 *		"<name>.error=<class>" and "<name>.missing=<parts>" items as they apply. Names
 *		are [a-z0-9_-]: "." and "=" never occur in one, so "eu.status=past_due" says
 *		past due at account eu whichever account's customer is shown.
 *	Customer-Id	token	cus_NffrFeUfNV2Hib
 *	Customer	token	created=2024-03-01; delinquent=no; balance=0.00 USD; matches=1
 *		matches=N counts the customers with the address (all casings), up to 100;
 *		"matches=100+" when there are more.
 *	Name		text	the customer's name
 *	Subscription-Status token  active         (best status over all subscriptions, or none)
 *	Subscription	token	amount=49.00 USD/month; status=active; period_end=2026-12-01;
 *				cancel_at_period_end=no[; trial_end=D (trialing)][; cancel_at=D]
 *				[; quantity=N][; items=N]
 *		amount= is what the price is: a fixed amount "49.00 USD/month", a sub-cent one
 *		"0.005 USD/month", or a word when there is no single amount: "tiered/month",
 *		"metered/month" (usage-based), "custom" (customer chooses), "unknown".
 *	Plan		text	the plan (product) name of the Subscription line just above it
 *		(one Subscription line per subscription, best first, up to max_subs, each followed
 *		by its Plan line when it has a plan name)
 *	Charges		token	window=90d; count=3; succeeded=2; failed=1; refunded=0; disputed=0;
 *				total=98.00 USD; last=2026-11-20 failed card_declined
 *				[; pending=N][; partially_refunded=N][; truncated=yes]
 *				(several currencies: total=98.00 USD, 10.00 EUR; none: total=none)
 *		total= is captured minus refunded money of succeeded charges: an authorisation
 *		never captured adds nothing.
 *	Checkout	token	window=90d; sessions=2; paid=2; subscriptions=1;
 *				total=49.00 USD, 20.00 EUR; last=2026-11-20 paid subscription
 *				[; truncated=yes]          (a guest only, group "charges")
 *		A guest buyer's completed Checkout Sessions (Stripe Checkout, Payment Links)
 *		created in the window: sessions= counts them, paid= those with payment_status
 *		paid, subscriptions= those in subscription mode; total= is amount_total of the
 *		paid ones per currency ("total=none" when none); last= the date,
 *		payment_status (paid, unpaid, no_payment_required) and mode (payment,
 *		subscription, setup) of the newest. Open and expired sessions are not
 *		counted. truncated=yes: a page (ChargesMax) was full, more may exist.
 *	Invoice		token	open=1; past_due=1; due=49.00 USD; attempts=2;
 *				next_attempt=2026-12-02[; due_date=2026-12-10][; id=in_...]
 *		Open invoices, read when the customer is delinquent or has a past_due, unpaid
 *		or incomplete subscription (needs rak_invoice_read; without it the line is left
 *		out and Lookup says missing=invoices). due= is the amount still due, per
 *		currency (due=49.00 USD, 5.00 EUR); attempts, next_attempt, due_date and id are
 *		those of the most urgent invoice (the oldest with a failed attempt, else the
 *		oldest). "open=0" when none is open.
 *	Invoice-Url	text	that invoice's hosted page (https:// only)
 *	Metadata-<key>	text	the value of metadata key <key> (one line per configured key
 *				that the customer has; keys are [A-Za-z0-9._+/@-], at most 40)
 *
 * Token grammar: items separated by "; " (folded as ";\n\t"); an item is a word
 * ([a-z_-]+) or key=value with key [a-z_-]+ and value of [A-Za-z0-9._,/+-] and single
 * spaces (money "49.00 USD", "last=<date> <status> <code>"). Values that come from Stripe
 * (ids, status words, intervals, failure codes, currencies) are checked against those
 * character sets and dropped when they do not match; none can hold ';', '=', '"' or a space
 * where the grammar does not put one.
 *
 * Text headers: the value is mail_text_value() (mail/): the Stripe text with CR and LF
 * removed (a NUL ends it; invalid UTF-8 becomes U+FFFD), as itself when it is printable
 * ASCII without '"', ';', '=', ':', '\' or odd spaces and fits the first line, else RFC 2047
 * encoded words that decode back to exactly that text (an "=?...?=" look-alike from Stripe
 * is itself encoded, never passed through). Text that is empty after that: no header. A
 * text longer than the cap is shortened at a character boundary.
 *
 * Folding and caps: "\n\t" (libmilter's form; no CR), lines folded at 78 columns where the
 * tokens allow; the cap (max_value, default 900, at most 1023) counts the folded value;
 * token lines lose whole trailing items to fit.
 *
 * Privacy mode: only Lookup, Subscription-Status and "Customer: delinquent=yes|no" (if those
 * groups are on). No ids (they identify a person as much as a name does), names, plan
 * names, amounts, dates, charges, checkout, invoices or metadata; a guest is "not-found".
 *
 * Diagnostics: mf_hdr_render() returns -1 only for an unusable prefix; Stripe data never
 * makes it fail (bad parts are dropped).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/sm_util.h"
#include "mail/mail.h"
#include "milter/mf_hdr.h"

#define MF_LINE_MAX	2048

static const char mf_default_prefix[] = "X-Stripe-";

/* A token value under construction: items separated by ";" + MAIL_FOLD. */
struct mf_line {
	char b[MF_LINE_MAX];
	size_t len;
	bool overflow;
	int items;
};

/* ---- token lines ---- */

static void mf_line_raw(struct mf_line *l, const char *p, size_t n)
{
	if (n >= sizeof(l->b) - l->len) {
		l->overflow = true;
		return;
	}
	memcpy(l->b + l->len, p, n);
	l->len += n;
	l->b[l->len] = '\0';
}

/* Appends ", money" to the current item. */
static void mf_line_more(struct mf_line *l, const char *money)
{
	mf_line_raw(l, ", ", 2);
	mf_line_raw(l, money, strlen(money));
}

/* Starts an item: the separator (when not the first) then the formatted text. */
static void mf_line_item(struct mf_line *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void mf_line_item(struct mf_line *l, const char *fmt, ...)
{
	char tmp[MF_LINE_MAX];
	va_list ap;
	int n;

	if (l->items++ > 0)
		mf_line_raw(l, ";\001", 2);
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		l->overflow = true;
		return;
	}
	mf_line_raw(l, tmp, (size_t)n);
}

/* Metadata keys (they become part of a header field name): [A-Za-z0-9._+/@-]+ */
static bool mf_key_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (c != '\0' && strchr("._+/@-", c) != NULL)))
			return false;
	}
	return n > 0;
}

/* ---- emitting ---- */

struct mf_ctx {
	const struct mf_hdr_opts *o;
	const char *prefix;
	size_t cap;
	struct mf_hdr_list *out;
};

/* The next free line named prefix + suffix (+ key), or NULL when none is left or the name
 * does not fit. */
static struct mf_hdr *mf_next(struct mf_ctx *c, const char *suffix, const char *key)
{
	struct mf_hdr *h;
	int n;

	if (c->out->n >= MF_HDR_LINES_MAX)
		return NULL;
	h = &c->out->h[c->out->n];
	n = snprintf(h->name, sizeof(h->name), "%s%s%s", c->prefix, suffix, key != NULL ? key : "");
	if (n < 0 || (size_t)n >= sizeof(h->name))
		return NULL;
	return h;
}

/* A token line: folded at MAIL_FOLD marks, capped by whole items. */
static void mf_emit(struct mf_ctx *c, const char *suffix, const struct mf_line *l)
{
	struct mf_hdr *h;
	size_t n;

	if (l->items == 0 || (h = mf_next(c, suffix, NULL)) == NULL)
		return;
	n = mail_fold(l->b, l->len, strlen(h->name) + 2, h->value, c->cap + 1);
	/* A cut line must not end in a separator. */
	while (n > 0 && (h->value[n - 1] == ';' || h->value[n - 1] == ' ' ||
	    h->value[n - 1] == '\t' || h->value[n - 1] == '\n'))
		n--;
	h->value[n] = '\0';
	if (n > 0)
		c->out->n++;
}

/* A text line: the whole value is one free text (mail_text_value), or no line at all. */
static void mf_emit_text(struct mf_ctx *c, const char *suffix, const char *key, const char *text,
    size_t size)
{
	struct mf_hdr *h;

	if ((h = mf_next(c, suffix, key)) == NULL)
		return;
	if (mail_text_value(text, strnlen(text, size), strlen(h->name) + 2, c->cap, h->value,
	    sizeof(h->value)) > 0)
		c->out->n++;
}

static bool mf_word_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		    s[i] == '-') || i >= STRIPE_CODE_MAX)
			return false;
	return true;
}

static bool mf_id_ok(const char *s)
{
	size_t i;

	for (i = 0; i < STRIPE_ID_MAX && s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return false;
	return i > 0 && i < STRIPE_ID_MAX;	/* Stripe's ids: [A-Za-z0-9_-], up to 255 */
}

static bool mf_date(int64_t t, char out[16])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || t > 253402300799LL || gmtime_r(&tt, &tm) == NULL)
		return false;
	return strftime(out, 16, "%Y-%m-%d", &tm) == 10;
}

static bool mf_money(const struct stripe_money *m, char *out, size_t len)
{
	size_t i;

	if (m->currency[0] == '\0' || stripe_money_format(m->amount, m->currency, out, len) < 0)
		return false;
	for (i = 0; out[i] != '\0'; i++)
		if (!((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'A' && out[i] <= 'Z') ||
		    out[i] == '.' || out[i] == '-' || out[i] == ' '))
			return false;
	return i > 0;
}

static const char *mf_status_word(enum stripe_sub_status st)
{
	const char *w = ((int)st >= 0 && (int)st < STRIPE_SUB__COUNT) ? stripe_sub_status_name(st) : NULL;

	return mf_word_ok(w) ? w : "unknown";
}

/* Parts the lookup could not read: a permission the key lacks, or a request Stripe refused. */
static unsigned mf_gone(const struct stripe_summary *s)
{
	return s->parts_missing | s->parts_refused;
}

/* A guest buyer: no customer, completed Checkout Sessions found by the buyer's email (not
 * shown in privacy mode). */
static bool mf_guest(const struct mf_ctx *c, const struct mf_lookup_info *li,
    const struct stripe_summary *s)
{
	return s != NULL && !s->found && s->found_by == STRIPE_BY_GUEST && !c->o->privacy &&
	    (li->state == LK_NOT_FOUND || li->state == LK_ERROR);
}

/* "charges,plan-names": the words of the STRIPE_PART_* bits set; false when none. */
static bool mf_missing_list(unsigned missing, char *miss, size_t len)
{
	unsigned bit;
	size_t n = 0;

	miss[0] = '\0';
	for (bit = 1; bit < (1u << STRIPE_PARTS); bit <<= 1) {
		const char *w = (missing & bit) ? stripe_part_name(bit) : NULL;

		if (mf_word_ok(w))
			n += (size_t)snprintf(miss + n, len - n, "%s%s", n > 0 ? "," : "", w);
		if (n >= len)
			return false;
	}
	return n > 0;
}

static void mf_render_lookup(struct mf_ctx *c, const struct mf_lookup_info *li,
    const struct stripe_summary *s)
{
	struct mf_line l;
	bool data = s != NULL && li->state != LK_SKIPPED;
	bool found = data && s->found && li->state != LK_NOT_FOUND;
	bool guest = data && mf_guest(c, li, s);
	char miss[128];
	unsigned missing;

	memset(&l, 0, sizeof(l));
	mf_line_item(&l, "v=%d", MF_HDR_VERSION);
	if (li->state == LK_SKIPPED) {
		mf_line_item(&l, "skipped=%s", mf_word_ok(li->skip_reason) ? li->skip_reason : "unknown");
		goto out;
	}
	if (li->state == LK_ERROR && !data) {
		mf_line_item(&l, "error=%s", mf_word_ok(li->error_class) ? li->error_class : "internal");
		goto out;
	}
	if (li->state == LK_FOUND && s == NULL) {
		mf_line_item(&l, "error=internal");
		goto out;
	}
	mf_line_item(&l, "%s", found ? "found" : guest ? "guest" : "not-found");
	if (mf_word_ok(li->cache)) {
		mf_line_item(&l, "cache=%s", li->cache);
		if (strcmp(li->cache, "miss") != 0 && li->age_s >= 0)
			mf_line_item(&l, "age=%ld", li->age_s);
	}
	mf_line_item(&l, "mode=%s", li->livemode ? "live" : "test");
	if (li->stale)
		mf_line_item(&l, "stale=yes");
	if (li->state == LK_ERROR || (li->stale && li->error_class))
		mf_line_item(&l, "error=%s", mf_word_ok(li->error_class) ? li->error_class : "internal");
	/* a customer's parts; without one, only the guest part concerns the sender */
	missing = data ? (found ? mf_gone(s) : mf_gone(s) & STRIPE_PART_GUEST) : 0;
	if (mf_missing_list(missing, miss, sizeof(miss)))
		mf_line_item(&l, "missing=%s", miss);
	if (li->from_count > 1)
		mf_line_item(&l, "from-count=%d", li->from_count);
	if (found && s->found_by == STRIPE_BY_SEARCH)
		mf_line_item(&l, "by=search");
	if (data && !found && s->search_skipped)
		mf_line_item(&l, "search=skipped");
	if (li->account && mf_word_ok(li->account) && (found || guest))
		mf_line_item(&l, "account=%s", li->account);
out:
	mf_emit(c, "Lookup", &l);
}

/* The Accounts line: every account's answer, "<name>=<result>" then "<name>.<key>=<value>"
 * items (names are [a-z0-9_-], so '.' and '=' cannot occur in one). */
static void mf_render_accounts(struct mf_ctx *c, const struct mf_lookup_info *li, unsigned g)
{
	struct mf_line l;
	char miss[128];
	int i;

	memset(&l, 0, sizeof(l));
	for (i = 0; i < li->naccounts; i++) {
		const struct mf_hdr_account *a = &li->accounts[i];
		const struct stripe_summary *s = a->s;
		bool data = s != NULL && a->li->state != LK_SKIPPED;
		bool found = data && s->found && a->li->state != LK_NOT_FOUND;
		bool guest = data && !found && mf_guest(c, a->li, s);

		if (!mf_word_ok(a->name))
			continue;
		if (a->li->state == LK_ERROR && !data) {
			mf_line_item(&l, "%s=error", a->name);
			mf_line_item(&l, "%s.error=%s", a->name, mf_word_ok(a->li->error_class) ?
			    a->li->error_class : "internal");
			continue;
		}
		if (!data) {
			mf_line_item(&l, "%s=error", a->name);
			mf_line_item(&l, "%s.error=internal", a->name);
			continue;
		}
		mf_line_item(&l, "%s=%s", a->name, found ? "found" : guest ? "guest" : "not-found");
		if (found && (g & MF_HG_SUBSCRIPTION) && !(mf_gone(s) & STRIPE_PART_SUBSCRIPTIONS))
			mf_line_item(&l, "%s.status=%s", a->name, mf_status_word(stripe_summary_best_status(s)));
		if (found && (g & MF_HG_CUSTOMER))
			mf_line_item(&l, "%s.delinquent=%s", a->name, s->delinquent ? "yes" : "no");
		if (a->li->stale)
			mf_line_item(&l, "%s.stale=yes", a->name);
		if (a->li->state == LK_ERROR || (a->li->stale && a->li->error_class))
			mf_line_item(&l, "%s.error=%s", a->name, mf_word_ok(a->li->error_class) ?
			    a->li->error_class : "internal");
		if (mf_missing_list(found ? mf_gone(s) : mf_gone(s) & STRIPE_PART_GUEST, miss, sizeof(miss)))
			mf_line_item(&l, "%s.missing=%s", a->name, miss);
	}
	mf_emit(c, "Accounts", &l);
}

static void mf_render_customer(struct mf_ctx *c, const struct stripe_summary *s)
{
	struct mf_line l;
	char buf[64];

	memset(&l, 0, sizeof(l));
	if (!c->o->privacy && mf_date(s->created, buf))
		mf_line_item(&l, "created=%s", buf);
	mf_line_item(&l, "delinquent=%s", s->delinquent ? "yes" : "no");
	if (!c->o->privacy) {
		if (mf_money(&s->balance, buf, sizeof(buf)))
			mf_line_item(&l, "balance=%s", buf);
		if (s->matches > 0)
			mf_line_item(&l, "matches=%d%s", s->matches, s->matches_capped ? "+" : "");
	}
	mf_emit(c, "Customer", &l);
	if (!c->o->privacy)
		mf_emit_text(c, "Name", NULL, s->name, sizeof(s->name));
}

/* The price as the amount= value: money, or a word when it has no single amount. */
static void mf_amount(const struct stripe_subscription *sub, char *out, size_t len)
{
	switch (sub->amount_kind) {
	case STRIPE_AMOUNT_FIXED:
		if (!mf_money(&sub->unit_amount, out, len))
			snprintf(out, len, "unknown");
		return;
	case STRIPE_AMOUNT_DECIMAL:
		if (sub->unit_amount.currency[0] == '\0' || stripe_money_format_decimal(
		    sub->amount_decimal, sub->unit_amount.currency, out, len) < 0)
			snprintf(out, len, "unknown");
		return;
	default:
		snprintf(out, len, "%s", stripe_amount_kind_name(sub->amount_kind));
		return;
	}
}

static void mf_render_sub(struct mf_ctx *c, const struct stripe_summary *s,
    const struct stripe_subscription *sub)
{
	struct mf_line l;
	char money[64], date[16];

	memset(&l, 0, sizeof(l));
	mf_amount(sub, money, sizeof(money));
	if (strcmp(money, "unknown") == 0 || strcmp(money, "custom") == 0 ||
	    !mf_word_ok(sub->interval))
		mf_line_item(&l, "amount=%s", money);
	else if (sub->interval_count > 1)
		mf_line_item(&l, "amount=%s/%d %ss", money, sub->interval_count, sub->interval);
	else
		mf_line_item(&l, "amount=%s/%s", money, sub->interval);
	mf_line_item(&l, "status=%s", mf_status_word(sub->status));
	if (mf_date(sub->period_end, date))
		mf_line_item(&l, "period_end=%s", date);
	mf_line_item(&l, "cancel_at_period_end=%s", sub->cancel_at_period_end ? "yes" : "no");
	if (sub->status == STRIPE_SUB_TRIALING && mf_date(sub->trial_end, date))
		mf_line_item(&l, "trial_end=%s", date);
	if (mf_date(sub->cancel_at, date))
		mf_line_item(&l, "cancel_at=%s", date);
	if (sub->quantity > 1)
		mf_line_item(&l, "quantity=%d", sub->quantity);
	if (sub->item_count > 1)
		mf_line_item(&l, "items=%d", sub->item_count);
	mf_emit(c, "Subscription", &l);
	if (!(mf_gone(s) & STRIPE_PART_PLAN_NAMES))
		mf_emit_text(c, "Plan", NULL, sub->plan, sizeof(sub->plan));
}

static void mf_render_subscriptions(struct mf_ctx *c, const struct stripe_summary *s)
{
	struct mf_line l;
	int i, max = c->o->max_subs;

	if (mf_gone(s) & STRIPE_PART_SUBSCRIPTIONS)
		return;
	memset(&l, 0, sizeof(l));
	mf_line_item(&l, "%s", mf_status_word(stripe_summary_best_status(s)));
	mf_emit(c, "Subscription-Status", &l);
	if (c->o->privacy)
		return;
	if (max <= 0)
		max = 1;
	if (max > STRIPE_SUBS_MAX)
		max = STRIPE_SUBS_MAX;
	for (i = 0; i < s->nsubs && i < STRIPE_SUBS_MAX && i < max; i++)
		mf_render_sub(c, s, &s->subs[i]);
}

/* "total=<money>[, <money>...]" of a money-per-currency list; "total=none" when it holds no
 * money that renders (no money: no currency to name). */
static void mf_render_totals(struct mf_line *l, const struct stripe_money *m, int n)
{
	char money[64];
	int i, shown = 0;

	for (i = 0; i < n && i < STRIPE_TOTALS_MAX; i++) {
		if (!mf_money(&m[i], money, sizeof(money)))
			continue;
		if (shown++ == 0)
			mf_line_item(l, "total=%s", money);
		else
			mf_line_more(l, money);
	}
	if (shown == 0)
		mf_line_item(l, "total=none");
}

static void mf_render_charges(struct mf_ctx *c, const struct stripe_summary *s)
{
	const struct stripe_charges *ch = &s->charges;
	struct mf_line l;
	char date[16];

	if ((mf_gone(s) & STRIPE_PART_CHARGES) || ch->window_days <= 0)
		return;
	memset(&l, 0, sizeof(l));
	mf_line_item(&l, "window=%dd", ch->window_days);
	mf_line_item(&l, "count=%d", ch->count);
	mf_line_item(&l, "succeeded=%d", ch->succeeded);
	mf_line_item(&l, "failed=%d", ch->failed);
	mf_line_item(&l, "refunded=%d", ch->refunded);
	mf_line_item(&l, "disputed=%d", ch->disputed);
	mf_render_totals(&l, ch->totals, ch->ntotals);
	if (ch->has_last && mf_date(ch->last_created, date) && mf_word_ok(ch->last_status)) {
		if (mf_word_ok(ch->last_failure_code))
			mf_line_item(&l, "last=%s %s %s", date, ch->last_status, ch->last_failure_code);
		else
			mf_line_item(&l, "last=%s %s", date, ch->last_status);
	}
	if (ch->pending > 0)
		mf_line_item(&l, "pending=%d", ch->pending);
	if (ch->partially_refunded > 0)
		mf_line_item(&l, "partially_refunded=%d", ch->partially_refunded);
	if (ch->truncated)
		mf_line_item(&l, "truncated=yes");
	mf_emit(c, "Charges", &l);
}

static void mf_render_checkout(struct mf_ctx *c, const struct stripe_summary *s)
{
	const struct stripe_checkout *co = &s->checkout;
	struct mf_line l;
	char date[16];

	if (co->window_days <= 0 || co->sessions <= 0)
		return;
	memset(&l, 0, sizeof(l));
	mf_line_item(&l, "window=%dd", co->window_days);
	mf_line_item(&l, "sessions=%d", co->sessions);
	mf_line_item(&l, "paid=%d", co->paid);
	mf_line_item(&l, "subscriptions=%d", co->subscriptions);
	mf_render_totals(&l, co->totals, co->ntotals);
	if (co->has_last && mf_date(co->last_created, date) && mf_word_ok(co->last_payment_status)) {
		if (mf_word_ok(co->last_mode))
			mf_line_item(&l, "last=%s %s %s", date, co->last_payment_status, co->last_mode);
		else
			mf_line_item(&l, "last=%s %s", date, co->last_payment_status);
	}
	if (co->truncated)
		mf_line_item(&l, "truncated=yes");
	mf_emit(c, "Checkout", &l);
}

static void mf_render_invoice(struct mf_ctx *c, const struct stripe_summary *s)
{
	const struct stripe_invoices *v = &s->invoices;
	struct mf_line l;
	char money[64], date[16];
	int i, n = 0;

	if ((mf_gone(s) & STRIPE_PART_INVOICES) || !v->checked)
		return;
	memset(&l, 0, sizeof(l));
	mf_line_item(&l, "open=%d", v->open);
	if (v->open > 0) {
		mf_line_item(&l, "past_due=%d", v->past_due);
		for (i = 0; i < v->ndue && i < STRIPE_TOTALS_MAX; i++) {
			if (!mf_money(&v->due[i], money, sizeof(money)))
				continue;
			if (n++ == 0)
				mf_line_item(&l, "due=%s", money);
			else
				mf_line_more(&l, money);
		}
		mf_line_item(&l, "attempts=%d", v->attempts);
		if (mf_date(v->next_attempt, date))
			mf_line_item(&l, "next_attempt=%s", date);
		if (mf_date(v->due_date, date))
			mf_line_item(&l, "due_date=%s", date);
		if (mf_id_ok(v->id))
			mf_line_item(&l, "id=%s", v->id);
	}
	mf_emit(c, "Invoice", &l);
	if (v->open > 0 && strncmp(v->url, "https://", 8) == 0)
		mf_emit_text(c, "Invoice-Url", NULL, v->url, sizeof(v->url));
}

static void mf_render_metadata(struct mf_ctx *c, const struct stripe_summary *s)
{
	int i;

	for (i = 0; i < s->nmeta && i < STRIPE_META_MAX; i++) {
		const char *k = s->meta[i].key;

		if (mf_key_ok(k, strnlen(k, sizeof(s->meta[i].key))) &&
		    strnlen(k, sizeof(s->meta[i].key)) < sizeof(s->meta[i].key))
			mf_emit_text(c, "Metadata-", k, s->meta[i].value, sizeof(s->meta[i].value));
	}
}

static bool mf_prefix_ok(const char *p)
{
	size_t i;

	for (i = 0; p[i] != '\0'; i++)
		if (p[i] <= ' ' || p[i] >= 0x7f || p[i] == ':')
			return false;
	return i > 0 && i <= MF_HDR_PREFIX_MAX;
}

int mf_hdr_render(const struct mf_hdr_opts *o, const struct mf_lookup_info *li,
    const struct stripe_summary *s, struct mf_hdr_list *out)
{
	struct mf_ctx c;
	unsigned g;
	bool show;

	if (out == NULL)
		return -1;
	out->n = 0;
	if (o == NULL || li == NULL)
		return -1;
	c.o = o;
	c.out = out;
	c.prefix = o->prefix != NULL ? o->prefix : mf_default_prefix;
	c.cap = o->max_value == 0 ? MF_HDR_MAX_VALUE_DEFAULT : o->max_value;
	if (c.cap > MF_HDR_VALUE_MAX - 1)
		c.cap = MF_HDR_VALUE_MAX - 1;
	if (c.cap < 32)
		c.cap = 32;
	if (!mf_prefix_ok(c.prefix))
		return -1;
	g = o->groups | MF_HG_LOOKUP;
	if (o->privacy)
		g &= MF_HG_LOOKUP | MF_HG_CUSTOMER | MF_HG_SUBSCRIPTION;
	mf_render_lookup(&c, li, s);
	if (li->naccounts > 0 && li->state != LK_SKIPPED)
		mf_render_accounts(&c, li, g);
	if (mf_guest(&c, li, s)) {	/* a guest buyer: only the checkout */
		if (g & MF_HG_CHARGES)
			mf_render_checkout(&c, s);
		return out->n;
	}
	show = s != NULL && s->found && (li->state == LK_FOUND || li->state == LK_ERROR);
	if (!show)
		return out->n;
	if ((g & MF_HG_CUSTOMER_ID) && mf_id_ok(s->customer_id)) {
		struct mf_line l;

		memset(&l, 0, sizeof(l));
		mf_line_item(&l, "%s", s->customer_id);
		mf_emit(&c, "Customer-Id", &l);
	}
	if (g & MF_HG_CUSTOMER)
		mf_render_customer(&c, s);
	if (g & MF_HG_SUBSCRIPTION)
		mf_render_subscriptions(&c, s);
	if (g & MF_HG_CHARGES)
		mf_render_charges(&c, s);
	if (g & MF_HG_INVOICE)
		mf_render_invoice(&c, s);
	if (g & MF_HG_METADATA)
		mf_render_metadata(&c, s);
	return out->n;
}

/* 3: a customer (stale data too), 2: a guest buyer, 1: an error, 0: not found. */
static int mf_hdr_rank(const struct mf_hdr_account *a)
{
	if (a->s != NULL && a->li->state != LK_NOT_FOUND && a->li->state != LK_SKIPPED && a->s->found)
		return 3;
	if (a->s != NULL && !a->s->found && a->s->found_by == STRIPE_BY_GUEST)
		return 2;
	return a->li->state == LK_ERROR ? 1 : 0;
}

int mf_hdr_pick(const struct mf_hdr_account *a, int n)
{
	int i, best = 0;

	for (i = 1; i < n; i++) {
		int ri = mf_hdr_rank(&a[i]), rb = mf_hdr_rank(&a[best]);

		if (ri > rb || (ri == 3 && rb == 3 && stripe_summary_cmp(a[i].s, a[best].s) < 0))
			best = i;
	}
	return best;
}

bool mf_hdr_has_prefix(const char *header_name, const char *prefix)
{
	size_t n;

	if (header_name == NULL || prefix == NULL || (n = strlen(prefix)) == 0)
		return false;
	return strncasecmp(header_name, prefix, n) == 0;
}

const struct stripe_summary *mf_hdr_info_fill(const struct lk_result *res, struct mf_lookup_info *li)
{
	li->state = res->lr_state;
	li->error_class = res->lr_error;
	li->stale = res->lr_stale;
	li->cache = res->lr_stale ? "stale" : res->lr_source == CACHE_SRC_FILL ? "miss" : "hit";
	li->age_s = res->lr_fetched_at_ms > 0 ? (long)((sm_wall_ms() - res->lr_fetched_at_ms) / 1000) : 0;
	if (li->age_s < 0)
		li->age_s = 0;
	/* not-found comes with its summary too: a guest buyer's checkout, search=skipped */
	return res->lr_state == LK_FOUND || res->lr_state == LK_NOT_FOUND ? &res->lr_summary : NULL;
}
