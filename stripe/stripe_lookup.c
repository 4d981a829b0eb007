/*
 * stripe_lookup.c - the lookup flow: email -> customers -> (subscriptions + plan names)
 * and charges -> struct stripe_summary; and the permission probe for check-key.
 *
 * Interface: stripe_lookup(), stripe_check_permissions() (stripe.h);
 *	stripe_choose_customer(), stripe_subs_sort(), stripe_subs_summarise() (stripe_int.h).
 *
 * Flow: GET /v1/customers?email= for the address as given and, when different, its
 *	lowercased form (both at once); matches are merged by id. One match: its
 *	subscriptions (then plan names) and its charges are fetched at once. Several: the
 *	subscriptions of the newest STRIPE_CHOOSE_MAX are fetched at once, the choice is
 *	made (active/trialing, then past_due, then newest, then smallest id), then plan
 *	names and charges of the chosen one at once.
 *
 * Diagnostics: a part lost to a missing permission is logged once per client with the
 *	permission to grant; other failures come back in struct stripe_result only.
 *
 * Known limits: customers past the first STRIPE_CUSTOMERS_LIMIT per variant are not
 *	seen (matches counts what was seen); a plan-name or charges failure other than a
 *	permission fails the whole lookup (the caller serves stale data instead).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/sm_log.h"
#include "stripe/stripe_fetch.h"

static const char *const stripe_dashboard[4] = {
	"Customers: Read", "Subscriptions: Read", "Products: Read", "Charges: Read"
};

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

	for (i = 1; i < 4; i++) {
		unsigned part = 1u << i;

		if (missing & part)
			sm_log_once(&c->perm_logged[i], LOG_WARNING, "stripe: key %s lacks the %s "
			    "permission: %s left out of lookups; grant \"%s\" to the restricted key",
			    c->masked, stripe_part_permission(part), stripe_part_name(part),
			    stripe_dashboard[i]);
	}
}

/* Merges the customers of the email variants, without duplicates, newest first. */
static int stripe_merge_customers(struct stripe_job *cj, int nj, struct stripe_customer *out)
{
	int i, k, m, n = 0;

	for (i = 0; i < nj; i++)
		for (k = 0; k < cj[i].ncusts; k++) {
			for (m = 0; m < n && strcmp(out[m].id, cj[i].custs[k].id) != 0; m++)
				;
			if (m == n && n < STRIPE_CANDIDATES_MAX)
				out[n++] = cj[i].custs[k];
		}
	for (i = 1; i < n; i++)	/* insertion sort: newest first, then id */
		for (k = i; k > 0 && (out[k].created > out[k - 1].created ||
		    (out[k].created == out[k - 1].created && strcmp(out[k].id, out[k - 1].id) < 0)); k--) {
			struct stripe_customer t = out[k];

			out[k] = out[k - 1];
			out[k - 1] = t;
		}
	return n;
}

/* Step 1: customers for the address as given and lowercased. -1 on error. */
static int stripe_find_customers(struct stripe_client *c, const char *email, int64_t deadline_ms,
    struct stripe_customer *cands, int *ncands, struct stripe_result *res, unsigned *missing)
{
	struct stripe_job cj[2], *jobs[2] = { &cj[0], &cj[1] };
	char lower[STRIPE_EMAIL_MAX];
	int i, nj = 1;

	for (i = 0; email[i]; i++)
		lower[i] = (char)(email[i] >= 'A' && email[i] <= 'Z' ? email[i] + 32 : email[i]);
	lower[i] = '\0';
	for (i = 0; i < 2; i++)
		stripe_job_init(&cj[i], c, STRIPE_JOB_CUSTOMERS, deadline_ms);
	cj[0].email = email;
	cj[1].email = lower;
	if (strcmp(email, lower) != 0)
		nj = 2;
	stripe_jobs_run(jobs, nj);
	for (i = 0; i < nj; i++)
		stripe_merge(res, &cj[i], missing);
	*ncands = res->err == STRIPE_OK ? stripe_merge_customers(cj, nj, cands) : 0;
	for (i = 0; i < 2; i++)
		stripe_job_free(&cj[i]);
	return res->err == STRIPE_OK ? 0 : -1;
}

/* Step 2 with several candidates: their subscriptions decide. Fills *chosen_subs with the
 * chosen one's job (moved). Returns the chosen index or -1 on error. */
static int stripe_choose(struct stripe_client *c, struct stripe_customer *cands, int n,
    int64_t deadline_ms, struct stripe_job *chosen_subs, struct stripe_result *res,
    unsigned *missing)
{
	struct stripe_job sj[STRIPE_CHOOSE_MAX], *jobs[STRIPE_CHOOSE_MAX];
	int i, k = n < STRIPE_CHOOSE_MAX ? n : STRIPE_CHOOSE_MAX, best = -1;

	for (i = 0; i < k; i++) {
		stripe_job_init(&sj[i], c, STRIPE_JOB_SUBS, deadline_ms);
		sm_strlcpy(sj[i].customer_id, cands[i].id, sizeof(sj[i].customer_id));
		jobs[i] = &sj[i];
	}
	stripe_jobs_run(jobs, k);
	for (i = 0; i < k; i++) {
		stripe_merge(res, &sj[i], missing);
		cands[i].best = sj[i].nsubs > 0 ? sj[i].subs[0].status : STRIPE_SUB_NONE;
	}
	if (res->err == STRIPE_OK) {
		best = stripe_choose_customer(cands, n);
		if (best < k) {
			*chosen_subs = sj[best];	/* moved: its buffers now belong to chosen_subs */
			chosen_subs->requests = 0;	/* already counted */
			chosen_subs->missing = 0;
			stripe_call_init(&sj[best].call);
			sj[best].subs = NULL;
		}
	}
	for (i = 0; i < k; i++)
		stripe_job_free(&sj[i]);
	return best;
}

static void stripe_fill_customer(struct stripe_summary *out, const struct stripe_customer *cu,
    int matches)
{
	out->found = true;
	out->matches = matches;
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

/* Step 3: subscriptions (or just plan names) and charges of the chosen customer, at once. */
static void stripe_details(struct stripe_client *c, const struct stripe_customer *cu,
    struct stripe_job *sj, int64_t deadline_ms, struct stripe_summary *out,
    struct stripe_result *res, unsigned *missing)
{
	struct stripe_job chj, *jobs[2];
	int n = 0;

	stripe_job_init(&chj, c, STRIPE_JOB_CHARGES, deadline_ms);
	sm_strlcpy(chj.customer_id, cu->id, sizeof(chj.customer_id));
	sm_strlcpy(sj->customer_id, cu->id, sizeof(sj->customer_id));
	sj->with_products = !c->no_plan_names && !(*missing & STRIPE_PART_SUBSCRIPTIONS);
	if (!c->no_subscriptions && !(*missing & STRIPE_PART_SUBSCRIPTIONS))
		jobs[n++] = sj;
	if (!c->no_charges)
		jobs[n++] = &chj;
	stripe_jobs_run(jobs, n);
	stripe_merge(res, sj, missing);
	stripe_merge(res, &chj, missing);
	if (sj->subs_fetched)
		stripe_subs_summarise(out, sj->subs, sj->nsubs);
	if (!c->no_charges && !(chj.missing & STRIPE_PART_CHARGES))
		out->charges = chj.charges;
	stripe_job_free(&chj);
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
	struct stripe_job sj;
	unsigned missing = 0;
	int n = 0, chosen = 0;

	memset(out, 0, sizeof(*out));
	memset(res, 0, sizeof(*res));
	stripe_job_init(&sj, c, STRIPE_JOB_SUBS, deadline_ms);
	pthread_mutex_lock(&c->lock);
	c->stats.lookups++;
	pthread_mutex_unlock(&c->lock);
	if (stripe_check_email(email, res) != 0)
		goto out;
	cands = calloc(STRIPE_CANDIDATES_MAX, sizeof(*cands));
	if (cands == NULL) {
		res->err = STRIPE_E_INTERNAL;
		goto out;
	}
	if (stripe_find_customers(c, email, deadline_ms, cands, &n, res, &missing) != 0 || n == 0)
		goto out;
	if (n > 1 && !c->no_subscriptions) {
		chosen = stripe_choose(c, cands, n, deadline_ms, &sj, res, &missing);
		if (chosen < 0)
			goto out;
	} else {
		chosen = stripe_choose_customer(cands, n);
	}
	stripe_fill_customer(out, &cands[chosen], n);
	stripe_details(c, &cands[chosen], &sj, deadline_ms, out, res, &missing);
out:
	if (res->err == STRIPE_OK) {
		out->parts_missing = missing;
		out->fetched_at = sm_wall_ms() / 1000;
		stripe_log_missing(c, missing);
	} else {
		memset(out, 0, sizeof(*out));
	}
	stripe_job_free(&sj);
	free(cands);
	return res->err;
}

int stripe_check_permissions(struct stripe_client *c, int64_t deadline_ms,
    struct stripe_perm out[STRIPE_PERMS], struct stripe_result *res)
{
	static const char *const probe[STRIPE_PERMS] = {
		"/v1/customers?limit=1", "/v1/subscriptions?status=all&limit=1",
		"/v1/products?limit=1", "/v1/charges?limit=1"
	};
	struct stripe_call call;
	int i, rc = 0;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < STRIPE_PERMS; i++) {
		enum stripe_errclass e;

		stripe_call_init(&call);
		e = stripe_http_get(c, probe[i], deadline_ms, &call);
		out[i].part = 1u << i;
		out[i].permission = stripe_part_permission(out[i].part);
		out[i].dashboard = stripe_dashboard[i];
		out[i].granted = e == STRIPE_OK;
		out[i].err = e == STRIPE_E_PERMISSION || e == STRIPE_OK ? STRIPE_OK : e;
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
