/*
 * stripe_lookup.c - the lookup flow: email -> customers (with their subscriptions) ->
 * charges, plan names, open invoices -> struct stripe_summary; and the permission probe
 * for check-key.
 *
 * Interface: stripe_lookup(), stripe_check_permissions() (stripe.h);
 *	stripe_choose_customer(), stripe_subs_sort(), stripe_subs_summarise() (stripe_int.h).
 *
 * Flow, in round trips (requests of one round trip run at once):
 *	1. GET /v1/customers?email=E&limit=100&expand[]=data.subscriptions for the address as
 *	   given and, when different, its lowercased form; merged by id, up to
 *	   STRIPE_CUSTOMERS_CAP (more: matches_capped). The expansion brings each customer's
 *	   current subscriptions (Stripe leaves canceled ones out of it, 10 per customer).
 *	2. Only when nothing matched, at once: GET /v1/customers/search?query=email:'E'
 *	   (Stripe's search matches words, case-insensitively: results are kept only when
 *	   their email equals the address ignoring ASCII case), within the search budget
 *	   (stripe_search_take(); no token: not tried, search_skipped; no slot in the fleet's
 *	   search budget now, or a 429 from Stripe: search_skipped too); and, for a guest
 *	   buyer, GET /v1/checkout/sessions?customer_details[email]= for the address as
 *	   given and, when different, lowercased (an exact filter, like the customer list):
 *	   completed sessions in the charges window make a guest (found_by GUEST, checkout).
 *	   A 4xx on either is a defect report (logged once per message with the Request-Id
 *	   and counted by stripe_http.c), never a switch: the lookup goes on with what the
 *	   other requests found, the refused search reads as search_skipped, a refused
 *	   guest request as parts_refused GUEST. Stripe
 *	   documents search as unavailable to merchants in India (docs.stripe.com/search,
 *	   "Regional availability") but names no error code for it, so no single answer
 *	   turns anything off: only STRIPE_SEARCH_FAILS refusals of customer search in a
 *	   row back customer search (only it) off for STRIPE_SEARCH_BACKOFF_MS, logged,
 *	   after which it is asked again. A 403 naming rak_checkout_session_read leaves the
 *	   guest out (missing=guest), not asked again for STRIPE_LOST_RETRY_MS.
 *	3. The customer is chosen among all matches (best subscription status group, then
 *	   newest, then smallest id); at once: its charges; its plan names (from the caller's
 *	   cache, else one products request, single-flighted); its open invoices when it is
 *	   delinquent or has a past_due, unpaid or incomplete subscription; and its full
 *	   subscription list (status=all, paged) only when the expanded one was empty (to
 *	   count canceled ones) or incomplete (has_more). A request of these that Stripe
 *	   refuses (4xx) leaves its part out (parts_refused): subscriptions, plan names,
 *	   charges or invoices; the customer stands.
 *	A cold lookup of a customer with one subscription and charges: 2 round trips, 3
 *	requests (2 when the plan name is cached).
 *
 * Diagnostics: a part lost to a missing permission is logged once per client with the
 *	permission to grant; other failures come back in struct stripe_result only.
 *
 * Known limits: the choice among customers sees the first 10 current subscriptions of
 *	each; an open invoice of a customer who is neither delinquent nor has a subscription
 *	in trouble (e.g. a send_invoice one not yet due) is not read; a plan-name, charges
 *	or invoices failure other than a permission or a refusal (4xx) fails the whole
 *	lookup (the caller serves stale data instead); a refused customer list (the exact
 *	address) fails it too (error=request): nothing else could be found without it. Which of several customers whose stored addresses differ
 *	only in case is chosen can depend on the sender's casing (the exact forms are asked
 *	first).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/sm_log.h"
#include "stripe/stripe_fetch.h"

/* 2: active/trialing, 1: past_due, 0: the rest. */
static int stripe_choice_group(enum stripe_sub_status s)
{
	if (s == STRIPE_SUB_ACTIVE || s == STRIPE_SUB_TRIALING)
		return 2;
	return s == STRIPE_SUB_PAST_DUE ? 1 : 0;
}

int stripe_choose_customer(const struct stripe_customer *c, int n)
{
	int i, best = n > 0 ? 0 : -1;

	for (i = 1; i < n; i++) {
		int gi = stripe_choice_group(c[i].best), gb = stripe_choice_group(c[best].best);

		if (gi > gb || (gi == gb && (c[i].created > c[best].created ||
		    (c[i].created == c[best].created && strcmp(c[i].id, c[best].id) < 0))))
			best = i;
	}
	return best;
}

enum stripe_sub_status stripe_summary_best_status(const struct stripe_summary *s)
{
	int k;

	for (k = STRIPE_SUB__COUNT - 1; k > STRIPE_SUB_NONE; k--)
		if (s->subs_by_status[k] > 0)
			return (enum stripe_sub_status)k;
	if (s->nsubs > 0)
		return s->subs[0].status;
	return STRIPE_SUB_NONE;
}

int stripe_summary_cmp(const struct stripe_summary *a, const struct stripe_summary *b)
{
	int ga = stripe_choice_group(stripe_summary_best_status(a));
	int gb = stripe_choice_group(stripe_summary_best_status(b));

	if (ga != gb)
		return gb - ga;
	if (a->created != b->created)
		return a->created > b->created ? -1 : 1;
	return strcmp(a->customer_id, b->customer_id);
}

static int stripe_sub_cmp(const void *a, const void *b)
{
	const struct stripe_subscription *x = a, *y = b;

	if (x->status != y->status)
		return x->status > y->status ? -1 : 1;
	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	return strcmp(x->id, y->id);
}

void stripe_subs_sort(struct stripe_subscription *subs, int n)
{
	if (n > 1)
		qsort(subs, (size_t)n, sizeof(*subs), stripe_sub_cmp);
}

void stripe_subs_summarise(struct stripe_summary *s, struct stripe_subscription *subs, int n)
{
	int i;

	stripe_subs_sort(subs, n);
	s->subs_total = n;
	for (i = 0; i < n; i++) {
		if ((int)subs[i].status >= 0 && subs[i].status < STRIPE_SUB__COUNT)
			s->subs_by_status[subs[i].status]++;
		if (i < STRIPE_SUBS_MAX)
			s->subs[s->nsubs++] = subs[i];
	}
}

/* Copies a job's outcome into res: requests add up; the first error wins; otherwise the
 * last response's status and Request-Id are kept. */
static void stripe_merge(struct stripe_result *res, struct stripe_job *j, unsigned *missing)
{
	res->requests += j->requests;
	*missing |= j->missing;
	if (res->err != STRIPE_OK)
		return;
	if (j->requests > 0) {
		res->http_status = (int)j->call.status;
		sm_strlcpy(res->request_id, j->call.request_id, sizeof(res->request_id));
	}
	if (j->err == STRIPE_OK)
		return;
	res->err = j->err;
	sm_strlcpy(res->permission, j->err == STRIPE_E_PERMISSION ? j->call.permission : "",
	    sizeof(res->permission));
	sm_strlcpy(res->message, j->call.message, sizeof(res->message));
}

static void stripe_log_missing(struct stripe_client *c, unsigned missing)
{
	int i;

	for (i = 1; i < STRIPE_PARTS; i++) {
		unsigned part = 1u << i;

		if (missing & part)
			sm_log_once(&c->perm_logged[i], LOG_WARNING, "stripe: key %s lacks the %s "
			    "permission: %s left out of lookups; grant \"%s\" to the restricted key",
			    c->masked, stripe_part_permission(part), stripe_part_name(part),
			    stripe_part_dashboard(part));
	}
}

/* Parts whose expansion or request got a 403 a short while ago (not asked again yet). */
static unsigned stripe_lost(struct stripe_client *c)
{
	unsigned lost;

	pthread_mutex_lock(&c->lock);
	if (c->lost && sm_now_ms() >= c->lost_until_ms)
		c->lost = 0;
	lost = c->lost;
	pthread_mutex_unlock(&c->lock);
	return lost;
}

static void stripe_set_lost(struct stripe_client *c, unsigned part)
{
	pthread_mutex_lock(&c->lock);
	c->lost |= part;
	c->lost_until_ms = sm_now_ms() + STRIPE_LOST_RETRY_MS;
	pthread_mutex_unlock(&c->lock);
}

/* Adds the customers of a job to out[0..*n) without duplicates (a reference to each
 * expanded subscriptions list is taken); past cap, *capped is set. */
static void stripe_merge_customers(const struct stripe_job *j, struct stripe_customer *out, int *n,
    bool *capped)
{
	int k, m;

	*capped |= j->capped;
	for (k = 0; k < j->ncusts; k++) {
		for (m = 0; m < *n && strcmp(out[m].id, j->custs[k].id) != 0; m++)
			;
		if (m < *n)
			continue;
		if (*n >= STRIPE_CUSTOMERS_CAP) {
			*capped = true;
			return;
		}
		out[*n] = j->custs[k];
		json_incref(out[*n].subs);
		(*n)++;
	}
}

/* Round trip 1: customers for the address as given and lowercased. -1 on error. */
static int stripe_find_customers(struct stripe_client *c, const char *email, const char *lower,
    int64_t deadline_ms, bool expand, struct stripe_customer *cands, int *n, bool *capped,
    struct stripe_result *res, unsigned *missing)
{
	struct stripe_job cj[2], *jobs[2] = { &cj[0], &cj[1] };
	int i, nj = 1;

	for (i = 0; i < 2; i++) {
		stripe_job_init(&cj[i], c, STRIPE_JOB_CUSTOMERS, deadline_ms);
		cj[i].expand_subs = expand;
	}
	cj[0].email = email;
	cj[1].email = lower;
	if (strcmp(email, lower) != 0)
		nj = 2;
	stripe_jobs_run(jobs, nj);
	for (i = 0; i < nj; i++) {
		stripe_merge(res, &cj[i], missing);
		if (res->err == STRIPE_OK)
			stripe_merge_customers(&cj[i], cands, n, capped);
	}
	for (i = 0; i < 2; i++)
		stripe_job_free(&cj[i]);
	return res->err == STRIPE_OK ? 0 : -1;
}

/* A request of job j that Stripe refused (4xx; logged and counted by stripe_http.c) is
 * not an error of the lookup: the part is left out and flagged in out->parts_refused. */
static bool stripe_refused(struct stripe_job *j, unsigned part, struct stripe_summary *out)
{
	if (j->err != STRIPE_E_REQUEST)
		return false;
	j->err = STRIPE_OK;
	out->parts_refused |= part;
	return true;
}

static bool stripe_search_backed_off(struct stripe_client *c)
{
	bool off;

	pthread_mutex_lock(&c->lock);
	off = c->search_off_until_ms > sm_now_ms();
	pthread_mutex_unlock(&c->lock);
	return off;
}

/* The customer search's outcome for the backoff (see the Flow above): an answer resets
 * the count of refusals, a 4xx adds one, STRIPE_SEARCH_FAILS in a row back customer search
 * off (logged). A refused search is then dropped from the lookup: search_skipped. */
static void stripe_search_outcome(struct stripe_client *c, struct stripe_job *j,
    struct stripe_summary *out)
{
	bool off = false;

	if (j->requests == 0)
		return;	/* not asked */
	pthread_mutex_lock(&c->lock);
	if (j->err == STRIPE_OK)
		c->search_fails = 0;
	else if (j->err == STRIPE_E_REQUEST && ++c->search_fails >= STRIPE_SEARCH_FAILS) {
		c->search_fails = 0;
		c->search_off_until_ms = sm_now_ms() + STRIPE_SEARCH_BACKOFF_MS;
		c->stats.search_backoffs++;
		off = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (off)
		sm_log(LOG_WARNING, "stripe: customer search was refused %d times in a row (last: "
		    "HTTP %ld, request %s: %s): not asked for %d s, then tried again; meanwhile "
		    "customers are found by their exact address only (Stripe documents search as "
		    "unavailable to merchants in India without naming an error for it)",
		    STRIPE_SEARCH_FAILS, j->call.status, j->call.request_id[0] ?
		    j->call.request_id : "-", j->call.message, STRIPE_SEARCH_BACKOFF_MS / 1000);
	if (j->err == STRIPE_E_REQUEST) {
		out->search_skipped = true;
		j->err = STRIPE_OK;
	}
}

/* A search the rate budgets had no room for (the fleet's search budget at once, or Stripe's
 * own 429) is skipped, not an error: the exact-address answer stands, with search=skipped,
 * as when the local search bucket is empty. */
static void stripe_search_limited(struct stripe_job *j, struct stripe_summary *out)
{
	if (j->err != STRIPE_E_RATELIMIT)
		return;
	out->search_skipped = true;
	j->err = STRIPE_OK;
}

/* Round trip 2 when nothing matched exactly: customer search and the guest's Checkout
 * Sessions (both address forms) at once. A guest's sessions go to out. -1 on error. */
static int stripe_search(struct stripe_client *c, const char *email, const char *lower,
    int64_t deadline_ms, bool expand, struct stripe_customer *cands, int *n, bool *capped,
    struct stripe_summary *out, struct stripe_result *res, unsigned *missing)
{
	struct stripe_job sj, gj[2], *jobs[3];
	struct stripe_checkout co;
	bool guest = !c->no_guest && !c->no_charges;
	int nj = 0, ng = 0, i;

	stripe_job_init(&sj, c, STRIPE_JOB_SEARCH, deadline_ms);
	stripe_job_init(&gj[0], c, STRIPE_JOB_GUEST, deadline_ms);
	stripe_job_init(&gj[1], c, STRIPE_JOB_GUEST, deadline_ms);
	sj.email = gj[0].email = email;
	gj[1].email = lower;
	sj.expand_subs = expand;
	if (!c->no_search) {
		if (!stripe_search_backed_off(c) && stripe_search_take(c) == 0)
			jobs[nj++] = &sj;
		else
			out->search_skipped = true;
	}
	if (guest && (stripe_lost(c) & STRIPE_PART_GUEST)) {
		*missing |= STRIPE_PART_GUEST;
		guest = false;
	}
	if (guest) {
		jobs[nj++] = &gj[ng++];
		if (strcmp(email, lower) != 0)
			jobs[nj++] = &gj[ng++];
	}
	stripe_jobs_run(jobs, nj);
	stripe_search_outcome(c, &sj, out);
	stripe_search_limited(&sj, out);
	stripe_merge(res, &sj, missing);
	memset(&co, 0, sizeof(co));
	co.window_days = c->charges_window_days;
	for (i = 0; i < ng; i++) {
		/* refused (4xx): logged and counted by stripe_http.c; the rest stands */
		if (!stripe_refused(&gj[i], STRIPE_PART_GUEST, out) && gj[i].err == STRIPE_OK &&
		    !(gj[i].missing & STRIPE_PART_GUEST))
			stripe_checkout_merge(&co, &gj[i].checkout);
		stripe_search_limited(&gj[i], out);
		if (gj[i].missing & STRIPE_PART_GUEST)
			stripe_set_lost(c, STRIPE_PART_GUEST);
		stripe_merge(res, &gj[i], missing);
	}
	if (res->err == STRIPE_OK) {
		stripe_merge_customers(&sj, cands, n, capped);
		if (*n > 0)
			out->found_by = STRIPE_BY_SEARCH;
		else if (co.sessions > 0) {
			out->found_by = STRIPE_BY_GUEST;
			out->checkout = co;
		}
	}
	stripe_job_free(&sj);
	stripe_job_free(&gj[0]);
	stripe_job_free(&gj[1]);
	return res->err == STRIPE_OK ? 0 : -1;
}

static void stripe_fill_customer(struct stripe_summary *out, const struct stripe_customer *cu,
    int matches, bool capped)
{
	out->found = true;
	out->matches = matches;
	out->matches_capped = capped;
	out->livemode = cu->livemode;
	sm_strlcpy(out->customer_id, cu->id, sizeof(out->customer_id));
	sm_strlcpy(out->email, cu->email, sizeof(out->email));
	sm_strlcpy(out->name, cu->name, sizeof(out->name));
	out->created = cu->created;
	out->delinquent = cu->delinquent;
	out->balance = cu->balance;
	out->nmeta = cu->nmeta;
	memcpy(out->meta, cu->meta, sizeof(out->meta));
}

/* The subscriptions job of the chosen customer: from its expanded list when that is
 * complete and not empty, else fetched (status=all, paged). */
static int stripe_subs_job(struct stripe_client *c, const struct stripe_customer *cu,
    struct stripe_job *sj)
{
	bool more = false;

	sm_strlcpy(sj->customer_id, cu->id, sizeof(sj->customer_id));
	sj->with_products = !c->no_plan_names;
	if (cu->subs == NULL || json_array_size(json_object_get(cu->subs, "data")) == 0)
		return 0;
	sj->subs = calloc(STRIPE_SUBS_CAP, sizeof(*sj->subs));
	if (sj->subs == NULL)
		return -1;
	stripe_parse_subscription_list(cu->subs, sj->subs, STRIPE_SUBS_CAP, &sj->nsubs, &more);
	sj->subs_fetched = !more;
	return 0;
}

/* Round trip 3 (2 in the common case): subscriptions/plan names, charges and open
 * invoices of the chosen customer, at once. */
static void stripe_details(struct stripe_client *c, const struct stripe_customer *cu,
    int64_t deadline_ms, struct stripe_summary *out, struct stripe_result *res,
    unsigned *missing)
{
	bool chref, iref;
	struct stripe_job sj, chj, ij, *jobs[3];
	bool want_subs = !c->no_subscriptions && !(*missing & STRIPE_PART_SUBSCRIPTIONS);
	bool want_inv = !c->no_invoices && (cu->delinquent || cu->best == STRIPE_SUB_PAST_DUE ||
	    cu->best == STRIPE_SUB_UNPAID || cu->best == STRIPE_SUB_INCOMPLETE);
	int n = 0;

	stripe_job_init(&sj, c, STRIPE_JOB_SUBS, deadline_ms);
	stripe_job_init(&chj, c, STRIPE_JOB_CHARGES, deadline_ms);
	stripe_job_init(&ij, c, STRIPE_JOB_INVOICES, deadline_ms);
	sm_strlcpy(chj.customer_id, cu->id, sizeof(chj.customer_id));
	sm_strlcpy(ij.customer_id, cu->id, sizeof(ij.customer_id));
	if (want_inv && (stripe_lost(c) & STRIPE_PART_INVOICES)) {
		*missing |= STRIPE_PART_INVOICES;
		want_inv = false;
	}
	if (want_subs && stripe_subs_job(c, cu, &sj) != 0) {
		res->err = STRIPE_E_INTERNAL;
		snprintf(res->message, sizeof(res->message), "out of memory");
		goto out;
	}
	if (want_subs)
		jobs[n++] = &sj;
	if (!c->no_charges)
		jobs[n++] = &chj;
	if (want_inv)
		jobs[n++] = &ij;
	stripe_jobs_run(jobs, n);
	/* a refused plan-names request leaves the names out; a refused list, its part */
	stripe_refused(&sj, sj.subs_fetched ? STRIPE_PART_PLAN_NAMES :
	    STRIPE_PART_SUBSCRIPTIONS, out);
	chref = stripe_refused(&chj, STRIPE_PART_CHARGES, out);
	iref = stripe_refused(&ij, STRIPE_PART_INVOICES, out);
	stripe_merge(res, &sj, missing);
	stripe_merge(res, &chj, missing);
	stripe_merge(res, &ij, missing);
	if (ij.missing & STRIPE_PART_INVOICES)
		stripe_set_lost(c, STRIPE_PART_INVOICES);
	if (sj.subs_fetched)
		stripe_subs_summarise(out, sj.subs, sj.nsubs);
	if (!c->no_charges && !(chj.missing & STRIPE_PART_CHARGES) && !chref)
		out->charges = chj.charges;
	if (!iref)
		out->invoices = ij.invoices;
out:
	stripe_job_free(&sj);
	stripe_job_free(&chj);
	stripe_job_free(&ij);
}

static int stripe_check_email(const char *email, struct stripe_result *res)
{
	size_t i, n = email ? strlen(email) : 0;

	if (n == 0 || n >= STRIPE_EMAIL_MAX) {
		res->err = STRIPE_E_REQUEST;
		snprintf(res->message, sizeof(res->message), "address is empty or too long");
		return -1;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)email[i] < 0x20 || email[i] == 0x7f) {
			res->err = STRIPE_E_REQUEST;
			snprintf(res->message, sizeof(res->message), "address has control characters");
			return -1;
		}
	return 0;
}

enum stripe_errclass stripe_lookup(struct stripe_client *c, const char *email, int64_t deadline_ms,
    struct stripe_summary *out, struct stripe_result *res)
{
	struct stripe_customer *cands = NULL;
	struct stripe_credit credit;
	char lower[STRIPE_EMAIL_MAX];
	unsigned missing = 0;
	int n = 0, chosen, i;
	bool capped = false, expand, credited = false;

	memset(out, 0, sizeof(*out));
	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&c->lock);
	c->stats.lookups++;
	pthread_mutex_unlock(&c->lock);
	if (stripe_check_email(email, res) != 0)
		goto out;
	for (i = 0; email[i]; i++)
		lower[i] = (char)(email[i] >= 'A' && email[i] <= 'Z' ? email[i] + 32 : email[i]);
	lower[i] = '\0';
	/* the usual requests of a found customer: the customer list (subscriptions expanded),
	 * charges, open invoices; anything more is admitted one by one */
	if (stripe_credit_begin(c, &credit, 1 + !c->no_charges + !c->no_invoices, deadline_ms, res) != 0)
		goto out;
	credited = true;
	stripe_tl_credit = &credit;
	cands = calloc(STRIPE_CUSTOMERS_CAP, sizeof(*cands));
	if (cands == NULL) {
		res->err = STRIPE_E_INTERNAL;
		goto out;
	}
	expand = !c->no_subscriptions;
	if (expand && (stripe_lost(c) & STRIPE_PART_SUBSCRIPTIONS)) {
		missing |= STRIPE_PART_SUBSCRIPTIONS;
		expand = false;
	}
	if (stripe_find_customers(c, email, lower, deadline_ms, expand, cands, &n, &capped, res,
	    &missing) != 0)
		goto out;
	if (missing & STRIPE_PART_SUBSCRIPTIONS)
		expand = false;
	if (n > 0)
		out->found_by = STRIPE_BY_EMAIL;
	else if (stripe_search(c, email, lower, deadline_ms, expand, cands, &n, &capped, out, res,
	    &missing) != 0 || n == 0)
		goto out;
	chosen = stripe_choose_customer(cands, n);
	stripe_fill_customer(out, &cands[chosen], n, capped);
	stripe_details(c, &cands[chosen], deadline_ms, out, res, &missing);
out:
	if (res->err == STRIPE_OK) {
		out->parts_missing = missing;
		out->parts_refused &= ~missing;
		out->fetched_at = sm_wall_ms() / 1000;
		stripe_log_missing(c, missing);
	} else {
		memset(out, 0, sizeof(*out));
		/* Granting a permission will not fix this one: say what Stripe said. */
		if (res->err == STRIPE_E_PERMISSION && res->permission[0] == '\0')
			sm_log_once(&c->perm_logged[0], LOG_WARNING, "stripe: key %s: Stripe refused a "
			    "request without naming a permission (%s); lookups fail until that is "
			    "fixed on Stripe's side", c->masked, res->message);
	}
	if (credited) {
		stripe_tl_credit = NULL;
		stripe_credit_end(c, &credit);
	}
	stripe_customers_release(cands, n);
	free(cands);
	return res->err;
}

int stripe_check_permissions(struct stripe_client *c, int64_t deadline_ms,
    struct stripe_perm out[STRIPE_PERMS], struct stripe_result *res)
{
	/* Each probe is a one-item list of the shape the lookup sends. The Checkout Sessions
	 * probe names a buyer's email, as the guest request does, at a reserved domain
	 * (RFC 2606 .invalid) no buyer can have: Stripe's spec makes customer_details
	 * optional, but a validator that reads the spec (Prism) refuses the list without
	 * it, and the probe should prove the request the guest lookup really sends. */
	static const char *const probe[STRIPE_PERMS] = {
		"/v1/customers?limit=1", "/v1/subscriptions?status=all&limit=1",
		"/v1/products?limit=1", "/v1/charges?limit=1", "/v1/invoices?limit=1",
		"/v1/checkout/sessions?customer_details%5Bemail%5D=permission-probe%40example.invalid&limit=1",
		"/v1/events?limit=1"
	};
	struct stripe_call call;
	int i, rc = 0;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < STRIPE_PERMS; i++) {
		enum stripe_errclass e;

		stripe_call_init(&call);
		e = stripe_http_get(c, probe[i], deadline_ms, &call);
		out[i].part = i < STRIPE_PARTS ? 1u << i : STRIPE_PERM_EVENTS;
		out[i].permission = stripe_part_permission(out[i].part);
		out[i].dashboard = stripe_part_dashboard(out[i].part);
		out[i].granted = e == STRIPE_OK;
		/* A 403 that names no permission (no access to a Connect account, "not
		 * available for use by restricted keys") is not a grantable permission:
		 * Stripe's sanitised message says what it is. */
		out[i].err = e == STRIPE_OK || (e == STRIPE_E_PERMISSION && call.permission[0]) ?
		    STRIPE_OK : e;
		sm_strlcpy(out[i].message, e == STRIPE_E_PERMISSION && !call.permission[0] ?
		    call.message : "", sizeof(out[i].message));
		res->requests += call.requests;
		res->http_status = (int)call.status;
		sm_strlcpy(res->request_id, call.request_id, sizeof(res->request_id));
		if (out[i].err != STRIPE_OK && rc == 0) {
			rc = -1;
			res->err = e;
			sm_strlcpy(res->message, call.message, sizeof(res->message));
		}
		stripe_call_free(&call);
	}
	return rc;
}

int stripe_account_id(struct stripe_client *c, int64_t deadline_ms, char *out, size_t len,
    struct stripe_result *res)
{
	struct stripe_call call;
	json_t *root = NULL, *id;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	out[0] = '\0';
	stripe_call_init(&call);
	res->err = stripe_http_get(c, "/v1/account", deadline_ms, &call);
	res->requests = call.requests;
	res->http_status = (int)call.status;
	sm_strlcpy(res->request_id, call.request_id, sizeof(res->request_id));
	sm_strlcpy(res->message, call.message, sizeof(res->message));
	if (res->err != STRIPE_OK)
		goto out;
	root = json_loadb(call.body.data ? call.body.data : "", call.body.len, 0, NULL);
	id = json_is_object(root) ? json_object_get(root, "id") : NULL;
	if (!json_is_string(id) || json_string_length(id) >= len || json_string_length(id) == 0) {
		res->err = STRIPE_E_MALFORMED;
		goto out;
	}
	stripe_copy_text(out, len, json_string_value(id), json_string_length(id));
	rc = 0;
out:
	json_decref(root);
	stripe_call_free(&call);
	return rc;
}
