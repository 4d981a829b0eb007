/*
 * stripe_fetch.c - the per-resource fetches of a lookup, and running them concurrently.
 *
 * Interface (stripe_fetch.h): a struct stripe_job describes one fetch (customers by one
 *	email, subscriptions (+ plan names) of a customer, or charges of a customer);
 *	stripe_jobs_run(jobs, n) runs them at once (n-1 threads plus the caller) and returns
 *	when all are done. Each job records its requests and its error, if any.
 *
 * Rules: a 403 naming a rak_* permission on subscriptions, products or charges is not an
 *	error: the job flags the part in job->missing and carries on without it. A 403 on
 *	customers, or one naming no permission, is an error.
 *	Plan names come first from the caller's product cache (product_get, given the job's
 *	deadline), then from one GET /v1/products?ids[]=... for the rest; names fetched are
 *	offered to product_put.
 *
 * Known limits: one page of subscriptions (100) is read; charges are paged until
 *	charges_max. If a thread cannot be created, that job runs in the caller (serially).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sm_log.h"
#include "stripe/stripe_fetch.h"

void stripe_job_init(struct stripe_job *j, struct stripe_client *c, enum stripe_job_kind kind,
    int64_t deadline_ms)
{
	memset(j, 0, sizeof(*j));
	j->c = c;
	j->kind = kind;
	j->deadline_ms = deadline_ms;
	stripe_call_init(&j->call);
}

void stripe_job_free(struct stripe_job *j)
{
	stripe_call_free(&j->call);
	free(j->custs);
	free(j->subs);
	j->custs = NULL;
	j->subs = NULL;
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

static void stripe_job_customers(struct stripe_job *j)
{
	char enc[STRIPE_EMAIL_MAX * 3 + 1], path[STRIPE_PATH_MAX], msg[160];

	if (stripe_url_encode(j->email, enc, sizeof(enc)) != 0) {
		j->err = STRIPE_E_REQUEST;
		return;
	}
	snprintf(path, sizeof(path), "/v1/customers?email=%s&limit=%d", enc, STRIPE_CUSTOMERS_LIMIT);
	j->custs = calloc(STRIPE_CUSTOMERS_LIMIT, sizeof(*j->custs));
	if (j->custs == NULL) {
		j->err = STRIPE_E_INTERNAL;
		return;
	}
	if (stripe_job_get(j, path, 0) != 0)
		return;
	if (stripe_parse_customers(j->call.body.data, j->call.body.len, j->c->meta_keys,
	    j->c->nmeta_keys, j->custs, STRIPE_CUSTOMERS_LIMIT, &j->ncusts, msg, sizeof(msg)) != 0)
		stripe_job_malformed(j, msg);
}

/* Names from the caller's cache; returns how many ids still need fetching (in need[]). */
static int stripe_products_cached(struct stripe_job *j, char need[][STRIPE_ID_MAX])
{
	struct stripe_client *c = j->c;
	char name[STRIPE_TEXT_MAX];
	int i, k, n = 0;

	for (i = 0; i < j->nsubs && i < STRIPE_SUBS_MAX; i++) {
		const char *pid = j->subs[i].product_id;

		if (pid[0] == '\0')
			continue;
		if (c->product_get && c->product_get(c->product_arg, pid, j->deadline_ms, name, sizeof(name)) == 0) {
			if (name[0])
				stripe_copy_text(j->subs[i].plan, sizeof(j->subs[i].plan), name, strlen(name));
			continue;
		}
		for (k = 0; k < n && strcmp(need[k], pid) != 0; k++)
			;
		if (k == n)
			sm_strlcpy(need[n++], pid, STRIPE_ID_MAX);
	}
	return n;
}

static void stripe_products_apply(struct stripe_job *j, const struct stripe_product *p, int np)
{
	int i, k;

	for (k = 0; k < np; k++) {
		if (j->c->product_put)
			j->c->product_put(j->c->product_arg, p[k].id, p[k].name);
		for (i = 0; i < j->nsubs && i < STRIPE_SUBS_MAX; i++)
			if (strcmp(j->subs[i].product_id, p[k].id) == 0 && p[k].name[0])
				sm_strlcpy(j->subs[i].plan, p[k].name, sizeof(j->subs[i].plan));
	}
}

static void stripe_job_products(struct stripe_job *j)
{
	char need[STRIPE_SUBS_MAX][STRIPE_ID_MAX], path[STRIPE_PATH_MAX], msg[160];
	struct stripe_product prods[STRIPE_SUBS_MAX];
	int n = stripe_products_cached(j, need), np, i;
	size_t o;

	if (n == 0)
		return;
	o = (size_t)snprintf(path, sizeof(path), "/v1/products?limit=%d", n);
	for (i = 0; i < n && o < sizeof(path); i++)
		o += (size_t)snprintf(path + o, sizeof(path) - o, "&ids[]=%s", need[i]);
	if (stripe_job_get(j, path, STRIPE_PART_PLAN_NAMES) != 0)
		return;
	if (stripe_parse_products(j->call.body.data, j->call.body.len, prods, STRIPE_SUBS_MAX, &np,
	    msg, sizeof(msg)) != 0) {
		stripe_job_malformed(j, msg);
		return;
	}
	stripe_products_apply(j, prods, np);
}

static void stripe_job_subs(struct stripe_job *j)
{
	char path[STRIPE_PATH_MAX], msg[160];
	bool more;

	if (!j->subs_fetched) {
		snprintf(path, sizeof(path), "/v1/subscriptions?customer=%s&status=all&limit=%d",
		    j->customer_id, STRIPE_SUBS_FETCH);
		j->subs = calloc(STRIPE_SUBS_FETCH, sizeof(*j->subs));
		if (j->subs == NULL) {
			j->err = STRIPE_E_INTERNAL;
			return;
		}
		if (stripe_job_get(j, path, STRIPE_PART_SUBSCRIPTIONS) != 0)
			return;
		if (stripe_parse_subscriptions(j->call.body.data, j->call.body.len, j->subs,
		    STRIPE_SUBS_FETCH, &j->nsubs, &more, msg, sizeof(msg)) != 0) {
			stripe_job_malformed(j, msg);
			return;
		}
		j->subs_fetched = true;
		stripe_subs_sort(j->subs, j->nsubs);
	}
	if (j->with_products)
		stripe_job_products(j);
}

static void stripe_job_charges(struct stripe_job *j)
{
	struct stripe_client *c = j->c;
	char path[STRIPE_PATH_MAX], after[STRIPE_ID_MAX] = "", msg[160];
	int64_t since = sm_wall_ms() / 1000 - (int64_t)c->charges_window_days * 86400;
	bool more = true;
	int page;

	j->charges.window_days = c->charges_window_days;
	for (page = 0; more && j->charges.count < c->charges_max && page < 10; page++) {
		int want = c->charges_max - j->charges.count;
		size_t o = (size_t)snprintf(path, sizeof(path),
		    "/v1/charges?customer=%s&created[gte]=%lld&limit=%d", j->customer_id,
		    (long long)since, want > 100 ? 100 : want);

		if (after[0])
			snprintf(path + o, sizeof(path) - o, "&starting_after=%s", after);
		if (stripe_job_get(j, path, STRIPE_PART_CHARGES) != 0)
			return;
		if (stripe_parse_charges(j->call.body.data, j->call.body.len, &j->charges,
		    c->charges_max, &more, after, sizeof(after), msg, sizeof(msg)) != 0) {
			stripe_job_malformed(j, msg);
			return;
		}
		if (after[0] == '\0')
			more = false;
	}
	if (more)
		j->charges.truncated = true;
}

static void *stripe_job_thread(void *arg)
{
	struct stripe_job *j = arg;

	switch (j->kind) {
	case STRIPE_JOB_CUSTOMERS:
		stripe_job_customers(j);
		break;
	case STRIPE_JOB_SUBS:
		stripe_job_subs(j);
		break;
	case STRIPE_JOB_CHARGES:
		stripe_job_charges(j);
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
