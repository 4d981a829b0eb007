/*
 * stripe_fetch.c - the per-resource fetches of a lookup, and running them concurrently.
 *
 * Interface (stripe_fetch.h): a struct stripe_job describes one fetch (customers by one
 *	exact address form or by search, subscriptions (+ plan names) of a customer, its
 *	charges, a guest buyer's Checkout Sessions by one exact address form, or its open
 *	invoices);
 *	stripe_jobs_run(jobs, n) runs them at once (n-1 threads plus the caller) and returns
 *	when all are done. Each job records its requests and its error, if any.
 *
 * Requests (every id and address percent-encoded; search literals escaped):
 *	GET /v1/customers?email=E&limit=100[&expand[]=data.subscriptions][&starting_after=]
 *	GET /v1/customers/search?query=email:'E'&limit=100[&expand[]=...][&page=]
 *	GET /v1/subscriptions?customer=ID&status=all&limit=100[&starting_after=]
 *	GET /v1/products?limit=n&ids[]=...	(stripe_products.c)
 *	GET /v1/charges?customer=ID&created[gte]=T&limit=n[&starting_after=]
 *	GET /v1/checkout/sessions?customer_details[email]=E&limit=n	(one page; status and
 *		window are filtered here: the API version of the vendored spec has no status
 *		or created filter for this list)
 *	GET /v1/invoices?customer=ID&status=open&limit=100
 *
 * Rules: a 403 naming a rak_* permission on subscriptions, products, charges, invoices or
 *	checkout sessions is not an error: the job flags the part in job->missing and
 *	carries on without it.
 *	A 403 naming rak_subscription_read on a customer list that expands subscriptions
 *	asks again without the expansion (and the client remembers it for
 *	STRIPE_LOST_RETRY_MS). A 403 on customers otherwise, or one naming no permission,
 *	is an error. Customers are read up to STRIPE_CUSTOMERS_CAP per job (capped set when
 *	more exist); subscriptions up to STRIPE_SUBS_CAP. Paging stops at a page cap, and as
 *	soon as a page does not move the cursor (a list that says has_more but repeats
 *	itself, as a mock server's or a broken proxy's may), so no answer makes it loop;
 *	repeated ids count once.
 *
 * Known limits: if a thread cannot be created, that job runs in the caller (serially).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_log.h"
#include "stripe/stripe_fetch.h"

#define STRIPE_EXPAND_SUBS "&expand[]=data.subscriptions"

void stripe_job_init(struct stripe_job *j, struct stripe_client *c, enum stripe_job_kind kind,
    int64_t deadline_ms)
{
	memset(j, 0, sizeof(*j));
	j->c = c;
	j->kind = kind;
	j->deadline_ms = deadline_ms;
	j->credit = stripe_tl_credit;
	stripe_call_init(&j->call);
}

void stripe_job_free(struct stripe_job *j)
{
	stripe_call_free(&j->call);
	stripe_customers_release(j->custs, j->ncusts);
	free(j->custs);
	free(j->subs);
	j->custs = NULL;
	j->subs = NULL;
	j->ncusts = j->nsubs = 0;
}

/* One GET; a 403 naming a rak_* permission on an optional part becomes missing |= part
 * (a 403 naming none, e.g. no access to a Connect account, stays an error). 0 when data
 * is in call. */
static int stripe_job_get(struct stripe_job *j, const char *path, unsigned optional_part)
{
	enum stripe_errclass e = stripe_http_get(j->c, path, j->deadline_ms, &j->call);

	j->requests += j->call.requests;
	if (e == STRIPE_E_PERMISSION && optional_part && j->call.permission[0]) {
		j->missing |= optional_part;
		return -1;
	}
	j->err = e;
	return e == STRIPE_OK ? 0 : -1;
}

static void stripe_job_malformed(struct stripe_job *j, const char *msg)
{
	j->err = j->call.err = STRIPE_E_MALFORMED;
	snprintf(j->call.message, sizeof(j->call.message), "%s", msg);
}

static void stripe_job_oom(struct stripe_job *j)
{
	j->err = j->call.err = STRIPE_E_INTERNAL;
	snprintf(j->call.message, sizeof(j->call.message), "out of memory or request too long");
}

/* The customer list asked for subscriptions the key may not read: drop the expansion. */
static bool stripe_job_lost_subs(struct stripe_job *j)
{
	if (!j->expand_subs || j->call.err != STRIPE_E_PERMISSION ||
	    strcmp(j->call.permission, stripe_part_permission(STRIPE_PART_SUBSCRIPTIONS)) != 0)
		return false;
	j->expand_subs = false;
	j->missing |= STRIPE_PART_SUBSCRIPTIONS;
	pthread_mutex_lock(&j->c->lock);
	j->c->lost |= STRIPE_PART_SUBSCRIPTIONS;
	j->c->lost_until_ms = sm_now_ms() + STRIPE_LOST_RETRY_MS;
	pthread_mutex_unlock(&j->c->lock);
	return true;
}

/* Pages of customers, by one exact form (CUSTOMERS) or by search (SEARCH). */
static void stripe_job_customers(struct stripe_job *j)
{
	char enc[STRIPE_EMAIL_MAX * 6 + 32], lit[STRIPE_EMAIL_MAX * 2 + 16];
	char path[STRIPE_PATH_MAX], after[STRIPE_ID_MAX] = "", page[STRIPE_PATH_MAX / 4] = "";
	char aenc[STRIPE_ID_MAX * 3 + 1], msg[160], cursor[STRIPE_PATH_MAX / 4] = "";
	bool search = j->kind == STRIPE_JOB_SEARCH, more = true;
	int n, pages = 0;

	if (search) {
		char q[STRIPE_EMAIL_MAX * 2 + 16];

		if (stripe_search_escape(j->email, lit, sizeof(lit)) != 0 ||
		    (size_t)snprintf(q, sizeof(q), "email:'%s'", lit) >= sizeof(q) ||
		    stripe_url_encode(q, enc, sizeof(enc)) != 0) {
			stripe_job_oom(j);
			return;
		}
	} else if (stripe_url_encode(j->email, enc, sizeof(enc)) != 0) {
		stripe_job_oom(j);
		return;
	}
	j->custs = calloc(STRIPE_CUSTOMERS_CAP, sizeof(*j->custs));
	if (j->custs == NULL) {
		stripe_job_oom(j);
		return;
	}
	while (more && j->ncusts < STRIPE_CUSTOMERS_CAP && pages++ < STRIPE_CUSTOMERS_PAGES) {
		n = snprintf(path, sizeof(path), search ? "/v1/customers/search?query=%s&limit=%d%s" :
		    "/v1/customers?email=%s&limit=%d%s", enc, STRIPE_CUSTOMERS_PAGE,
		    j->expand_subs ? STRIPE_EXPAND_SUBS : "");
		if (after[0] && stripe_url_encode(after, aenc, sizeof(aenc)) == 0)
			n += snprintf(path + n, sizeof(path) - (size_t)n, "&starting_after=%s", aenc);
		if (page[0] && stripe_url_encode(page, aenc, sizeof(aenc)) == 0)
			n += snprintf(path + n, sizeof(path) - (size_t)n, "&page=%s", aenc);
		if ((size_t)n >= sizeof(path)) {
			stripe_job_oom(j);
			return;
		}
		if (stripe_job_get(j, path, 0) != 0) {
			if (stripe_job_lost_subs(j)) {
				j->err = STRIPE_OK;
				continue;	/* the same page without the expansion */
			}
			return;
		}
		if (stripe_parse_customers(j->call.body.data, j->call.body.len, j->c->meta_keys,
		    j->c->nmeta_keys, search ? j->email : NULL, j->custs, STRIPE_CUSTOMERS_CAP,
		    &j->ncusts, &more, after, sizeof(after), page, search ? sizeof(page) : 0,
		    msg, sizeof(msg)) != 0) {
			stripe_job_malformed(j, msg);
			return;
		}
		if (search ? page[0] == '\0' : after[0] == '\0')
			more = false;
		if (more && strcmp(cursor, search ? page : after) == 0)
			break;	/* no progress: stop (more stays set: the count is a lower bound) */
		sm_strlcpy(cursor, search ? page : after, sizeof(cursor));
		if (search && more && stripe_search_take(j->c) != 0)
			break;	/* no budget for another page: the count is a lower bound */
	}
	j->capped = more;
}

/* Drops repeated subscription ids (a list that repeated itself), keeping the first. */
static void stripe_subs_dedup(struct stripe_subscription *subs, int *n)
{
	int i, k, m = 0;

	for (i = 0; i < *n; i++) {
		for (k = 0; k < m && strcmp(subs[k].id, subs[i].id) != 0; k++)
			;
		if (k < m)
			continue;
		if (m != i)
			subs[m] = subs[i];
		m++;
	}
	*n = m;
}

static void stripe_job_subs(struct stripe_job *j)
{
	char path[STRIPE_PATH_MAX], cenc[STRIPE_ID_MAX * 3 + 1], aenc[STRIPE_ID_MAX * 3 + 1];
	char msg[160], cursor[STRIPE_ID_MAX] = "";
	bool more = true;
	int n, pages = 0;

	if (!j->subs_fetched) {
		if (stripe_url_encode(j->customer_id, cenc, sizeof(cenc)) != 0) {
			stripe_job_oom(j);
			return;
		}
		free(j->subs);
		j->nsubs = 0;
		j->subs = calloc(STRIPE_SUBS_CAP, sizeof(*j->subs));
		if (j->subs == NULL) {
			stripe_job_oom(j);
			return;
		}
		while (more && j->nsubs < STRIPE_SUBS_CAP && pages++ < STRIPE_SUBS_CAP / STRIPE_SUBS_FETCH) {
			n = snprintf(path, sizeof(path),
			    "/v1/subscriptions?customer=%s&status=all&limit=%d", cenc, STRIPE_SUBS_FETCH);
			if (j->nsubs > 0 && stripe_url_encode(j->subs[j->nsubs - 1].id, aenc,
			    sizeof(aenc)) == 0)
				snprintf(path + n, sizeof(path) - (size_t)n, "&starting_after=%s", aenc);
			if (stripe_job_get(j, path, STRIPE_PART_SUBSCRIPTIONS) != 0)
				return;
			n = j->nsubs;
			if (stripe_parse_subscriptions(j->call.body.data, j->call.body.len, j->subs,
			    STRIPE_SUBS_CAP, &j->nsubs, &more, msg, sizeof(msg)) != 0) {
				stripe_job_malformed(j, msg);
				return;
			}
			if (j->nsubs == n || strcmp(cursor, j->subs[j->nsubs - 1].id) == 0)
				more = false;	/* nothing usable, or no progress: stop */
			else
				sm_strlcpy(cursor, j->subs[j->nsubs - 1].id, sizeof(cursor));
		}
		stripe_subs_dedup(j->subs, &j->nsubs);
		j->subs_fetched = true;
	}
	stripe_subs_sort(j->subs, j->nsubs);
	if (j->with_products) {
		enum stripe_errclass e = stripe_plan_names(j->c, j->subs, j->nsubs, j->deadline_ms,
		    &j->call, &j->requests, &j->missing);

		if (e != STRIPE_OK)
			j->err = e;
	}
}

static void stripe_job_charges(struct stripe_job *j)
{
	struct stripe_client *c = j->c;
	char path[STRIPE_PATH_MAX], after[STRIPE_ID_MAX] = "", msg[160];
	char cenc[STRIPE_ID_MAX * 3 + 1], aenc[STRIPE_ID_MAX * 3 + 1], cursor[STRIPE_ID_MAX] = "";
	int64_t since = sm_wall_ms() / 1000 - (int64_t)c->charges_window_days * 86400;
	bool more = true;
	int page;

	j->charges.window_days = c->charges_window_days;
	if (stripe_url_encode(j->customer_id, cenc, sizeof(cenc)) != 0) {
		stripe_job_oom(j);
		return;
	}
	for (page = 0; more && j->charges.count < c->charges_max && page < 10; page++) {
		int want = c->charges_max - j->charges.count;
		size_t o = (size_t)snprintf(path, sizeof(path),
		    "/v1/charges?customer=%s&created[gte]=%lld&limit=%d", cenc,
		    (long long)since, want > 100 ? 100 : want);

		if (after[0] && stripe_url_encode(after, aenc, sizeof(aenc)) == 0)
			snprintf(path + o, sizeof(path) - o, "&starting_after=%s", aenc);
		if (stripe_job_get(j, path, STRIPE_PART_CHARGES) != 0)
			return;
		if (stripe_parse_charges(j->call.body.data, j->call.body.len, NULL, 0, &j->charges,
		    c->charges_max, &more, after, sizeof(after), msg, sizeof(msg)) != 0) {
			stripe_job_malformed(j, msg);
			return;
		}
		if (after[0] == '\0')
			more = false;
		if (more && strcmp(cursor, after) == 0)
			break;	/* no progress: stop (truncated) */
		sm_strlcpy(cursor, after, sizeof(cursor));
	}
	if (more)
		j->charges.truncated = true;
}

/* A guest buyer: Checkout Sessions whose customer_details.email is this exact form (one
 * page, newest first; the filter is exact and case-sensitive, so the lookup asks for the
 * address as given and lowercased, as for customers). */
static void stripe_job_guest(struct stripe_job *j)
{
	struct stripe_client *c = j->c;
	char enc[STRIPE_EMAIL_MAX * 3 + 1], path[STRIPE_PATH_MAX], msg[160];
	int64_t since = sm_wall_ms() / 1000 - (int64_t)c->charges_window_days * 86400;
	int want = c->charges_max > 100 ? 100 : c->charges_max;
	bool more = false;

	j->checkout.window_days = c->charges_window_days;
	if (stripe_url_encode(j->email, enc, sizeof(enc)) != 0 ||
	    (size_t)snprintf(path, sizeof(path),
	    "/v1/checkout/sessions?customer_details%%5Bemail%%5D=%s&limit=%d", enc, want) >=
	    sizeof(path)) {
		stripe_job_oom(j);
		return;
	}
	if (stripe_job_get(j, path, STRIPE_PART_GUEST) != 0)
		return;
	if (stripe_parse_sessions(j->call.body.data, j->call.body.len, j->email, since,
	    &j->checkout, &more, msg, sizeof(msg)) != 0)
		stripe_job_malformed(j, msg);
}

static void stripe_job_invoices(struct stripe_job *j)
{
	char path[STRIPE_PATH_MAX], cenc[STRIPE_ID_MAX * 3 + 1], msg[160];
	bool more = false;

	if (stripe_url_encode(j->customer_id, cenc, sizeof(cenc)) != 0) {
		stripe_job_oom(j);
		return;
	}
	snprintf(path, sizeof(path), "/v1/invoices?customer=%s&status=open&limit=%d", cenc,
	    STRIPE_INVOICES_FETCH);
	if (stripe_job_get(j, path, STRIPE_PART_INVOICES) != 0)
		return;
	if (stripe_parse_invoices(j->call.body.data, j->call.body.len, sm_wall_ms() / 1000,
	    &j->invoices, &more, msg, sizeof(msg)) != 0)
		stripe_job_malformed(j, msg);
}

static void *stripe_job_thread(void *arg)
{
	struct stripe_job *j = arg;

	stripe_tl_credit = j->credit;	/* this thread spends its lookup's budget too */
	switch (j->kind) {
	case STRIPE_JOB_CUSTOMERS:
	case STRIPE_JOB_SEARCH:
		stripe_job_customers(j);
		break;
	case STRIPE_JOB_SUBS:
		stripe_job_subs(j);
		break;
	case STRIPE_JOB_CHARGES:
		stripe_job_charges(j);
		break;
	case STRIPE_JOB_GUEST:
		stripe_job_guest(j);
		break;
	case STRIPE_JOB_INVOICES:
		stripe_job_invoices(j);
		break;
	}
	return NULL;
}

void stripe_jobs_run(struct stripe_job **jobs, int n)
{
	pthread_t tid[STRIPE_JOBS_MAX];
	bool started[STRIPE_JOBS_MAX] = { false };
	int i;

	for (i = 1; i < n && i < STRIPE_JOBS_MAX; i++)
		started[i] = pthread_create(&tid[i], NULL, stripe_job_thread, jobs[i]) == 0;
	if (n > 0)
		stripe_job_thread(jobs[0]);
	for (i = 1; i < n && i < STRIPE_JOBS_MAX; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			stripe_job_thread(jobs[i]);
	}
}
