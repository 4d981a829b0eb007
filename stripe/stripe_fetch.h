/*
 * stripe_fetch.h - fetch jobs of one lookup (see stripe_fetch.c). Internal to stripe/.
 */
#ifndef STRIPE_FETCH_H
#define STRIPE_FETCH_H

#include "stripe/stripe_int.h"

#define STRIPE_JOBS_MAX 8

enum stripe_job_kind { STRIPE_JOB_CUSTOMERS, STRIPE_JOB_SUBS, STRIPE_JOB_CHARGES };

struct stripe_job {
	struct stripe_client *c;
	enum stripe_job_kind kind;
	int64_t deadline_ms;
	/* outcome */
	enum stripe_errclass err;
	int requests;
	unsigned missing;		/* STRIPE_PART_* lost to a 403 */
	struct stripe_call call;	/* the last request: status, Request-Id, message */
	/* customers */
	const char *email;
	struct stripe_customer *custs;	/* malloc'd, STRIPE_CUSTOMERS_LIMIT */
	int ncusts;
	/* subscriptions and charges */
	char customer_id[STRIPE_ID_MAX];
	bool subs_fetched;		/* subs[] already holds the list: products only */
	bool with_products;
	struct stripe_subscription *subs;	/* malloc'd, STRIPE_SUBS_FETCH, sorted best first */
	int nsubs;
	struct stripe_charges charges;
};

void stripe_job_init(struct stripe_job *j, struct stripe_client *c, enum stripe_job_kind kind,
    int64_t deadline_ms);
void stripe_job_free(struct stripe_job *j);
void stripe_jobs_run(struct stripe_job **jobs, int n);

#endif
