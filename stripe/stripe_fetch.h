/*
 * stripe_fetch.h - fetch jobs of one lookup (see stripe_fetch.c). Internal to stripe/.
 */
#ifndef STRIPE_FETCH_H
#define STRIPE_FETCH_H

#include "stripe/stripe_int.h"

#define STRIPE_JOBS_MAX 8

enum stripe_job_kind {
	STRIPE_JOB_CUSTOMERS,	/* GET /v1/customers?email= (one exact form), paged */
	STRIPE_JOB_SEARCH,	/* GET /v1/customers/search?query=email:'...', paged */
	STRIPE_JOB_SUBS,	/* subscriptions (unless given) and their plan names */
	STRIPE_JOB_CHARGES,	/* charges of a customer, paged */
	STRIPE_JOB_GUEST,	/* GET /v1/checkout/sessions?customer_details[email]= (one form) */
	STRIPE_JOB_INVOICES	/* GET /v1/invoices?customer=&status=open */
};

struct stripe_job {
	struct stripe_client *c;
	enum stripe_job_kind kind;
	int64_t deadline_ms;
	/* outcome */
	enum stripe_errclass err;
	int requests;
	unsigned missing;		/* STRIPE_PART_* lost to a 403 */
	struct stripe_call call;	/* the last request: status, Request-Id, message */
	struct stripe_credit *credit;	/* the lookup's reserved budget (stripe_tl_credit) */
	/* customers, search, guest */
	const char *email;
	bool expand_subs;		/* ask for data.subscriptions */
	struct stripe_customer *custs;	/* malloc'd, STRIPE_CUSTOMERS_CAP */
	int ncusts;
	bool capped;			/* more customers exist than were read */
	/* subscriptions, charges, invoices */
	char customer_id[STRIPE_ID_MAX];
	bool subs_fetched;		/* subs[] already holds the list: plan names only */
	bool with_products;
	struct stripe_subscription *subs;	/* malloc'd, STRIPE_SUBS_CAP, sorted best first */
	int nsubs;
	struct stripe_charges charges;
	struct stripe_invoices invoices;
	struct stripe_checkout checkout;	/* guest */
};

void stripe_job_init(struct stripe_job *j, struct stripe_client *c, enum stripe_job_kind kind,
    int64_t deadline_ms);
void stripe_job_free(struct stripe_job *j);
void stripe_jobs_run(struct stripe_job **jobs, int n);

#endif
