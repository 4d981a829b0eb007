/*
 * stripe_products.c - plan names (product names) of a lookup's subscriptions, fetched at
 * most once at a time per product across all the threads of a client.
 *
 * Interface (stripe_int.h): stripe_plan_names(c, subs, n, deadline, call, &requests,
 *	&missing); stripe_flights_init()/_destroy() (by stripe_client_new()/_free()).
 *
 * Rules: a name comes first from the caller's product cache (product_get, given the
 *	lookup's deadline). Ids still
 *	unknown are looked up in the client's table of fetches in flight: an id another
 *	thread is fetching is waited for (until the deadline) instead of asked again; the
 *	rest are fetched by this thread with one GET /v1/products?ids[]=...&limit=n (ids
 *	percent-encoded), offered to product_put, and handed to the waiting threads. A
 *	product without a name, or one Stripe did not return, leaves the plan as it was
 *	(the price's or legacy plan's nickname).
 *
 * Diagnostics: a 403 naming rak_product_read sets STRIPE_PART_PLAN_NAMES in *missing and
 *	is not an error; other failures are returned (waiting threads then go without the
 *	names: they never fail because another lookup failed).
 *
 * Known limits: names only for the first STRIPE_SUBS_MAX subscriptions (those shown).
 *	Cold runs over many customers of a few products cost one products request per
 *	product only while the caller's cache does not hold the name yet.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stripe/stripe_int.h"

struct stripe_flight {
	char id[STRIPE_ID_MAX];
	char name[STRIPE_TEXT_MAX];
	bool done, named;
	int refs;			/* the fetching thread + waiting ones */
	struct stripe_flight *next;
};

void stripe_flights_init(struct stripe_client *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->flight_cond, &ca);
	pthread_condattr_destroy(&ca);
	c->flights = NULL;
}

void stripe_flights_destroy(struct stripe_client *c)
{
	struct stripe_flight *f = c->flights, *next;

	for (; f != NULL; f = next) {	/* none should be left: no lookup may be running */
		next = f->next;
		free(f);
	}
	c->flights = NULL;
	pthread_cond_destroy(&c->flight_cond);
}

/* Drops one reference (lock held); frees the flight when it was the last. */
static void stripe_flight_unref(struct stripe_client *c, struct stripe_flight *f)
{
	struct stripe_flight **pp;

	if (--f->refs > 0)
		return;
	for (pp = &c->flights; *pp != NULL; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	free(f);
}

static void stripe_set_plan(struct stripe_subscription *subs, int n, const char *pid,
    const char *name)
{
	int i;

	if (name[0] == '\0')
		return;
	for (i = 0; i < n; i++)
		if (strcmp(subs[i].product_id, pid) == 0)
			stripe_copy_text(subs[i].plan, sizeof(subs[i].plan), name, strlen(name));
}

/* Sorts the ids not in the caller's cache into own (to fetch) and wait (in flight). */
static void stripe_flights_claim(struct stripe_client *c, struct stripe_subscription *subs, int n,
    int64_t deadline_ms, struct stripe_flight **own, int *nown, struct stripe_flight **wait,
    int *nwait)
{
	char name[STRIPE_TEXT_MAX];
	struct stripe_flight *f;
	int i, k;

	for (i = 0; i < n; i++) {
		const char *pid = subs[i].product_id;
		bool seen = false;

		if (pid[0] == '\0')
			continue;
		for (k = 0; k < *nown && !seen; k++)
			seen = strcmp(own[k]->id, pid) == 0;
		for (k = 0; k < *nwait && !seen; k++)
			seen = strcmp(wait[k]->id, pid) == 0;
		if (seen)
			continue;
		if (c->product_get && c->product_get(c->product_arg, pid, deadline_ms, name,
		    sizeof(name)) == 0) {
			stripe_set_plan(subs, n, pid, name);
			continue;
		}
		pthread_mutex_lock(&c->lock);
		for (f = c->flights; f != NULL && strcmp(f->id, pid) != 0; f = f->next)
			;
		if (f != NULL) {
			f->refs++;
			wait[(*nwait)++] = f;
		} else if ((f = calloc(1, sizeof(*f))) != NULL) {
			sm_strlcpy(f->id, pid, sizeof(f->id));
			f->refs = 1;
			f->next = c->flights;
			c->flights = f;
			own[(*nown)++] = f;
		}
		pthread_mutex_unlock(&c->lock);
	}
}

/* Fetches the own ids; fills the flights. Returns the error class. */
static enum stripe_errclass stripe_flights_fetch(struct stripe_client *c,
    struct stripe_flight **own, int nown, int64_t deadline_ms, struct stripe_call *call,
    int *requests, unsigned *missing)
{
	char path[STRIPE_PATH_MAX], enc[STRIPE_ID_MAX * 3 + 1], msg[160];
	struct stripe_product prods[STRIPE_SUBS_MAX];
	enum stripe_errclass e;
	int np = 0, i, k;
	size_t o;

	o = (size_t)snprintf(path, sizeof(path), "/v1/products?limit=%d", nown);
	for (i = 0; i < nown; i++) {
		if (stripe_url_encode(own[i]->id, enc, sizeof(enc)) != 0)
			return STRIPE_E_INTERNAL;
		o += (size_t)snprintf(path + o, sizeof(path) - o, "&ids[]=%s", enc);
		if (o >= sizeof(path))
			return STRIPE_E_INTERNAL;
	}
	e = stripe_http_get(c, path, deadline_ms, call);
	*requests += call->requests;
	if (e == STRIPE_E_PERMISSION && call->permission[0]) {
		*missing |= STRIPE_PART_PLAN_NAMES;
		return STRIPE_OK;
	}
	if (e != STRIPE_OK)
		return e;
	if (stripe_parse_products(call->body.data, call->body.len, prods, STRIPE_SUBS_MAX, &np,
	    msg, sizeof(msg)) != 0) {
		call->err = STRIPE_E_MALFORMED;
		snprintf(call->message, sizeof(call->message), "%s", msg);
		return STRIPE_E_MALFORMED;
	}
	for (k = 0; k < np; k++) {
		if (c->product_put)
			c->product_put(c->product_arg, prods[k].id, prods[k].name);
		for (i = 0; i < nown; i++)
			if (strcmp(own[i]->id, prods[k].id) == 0) {
				sm_strlcpy(own[i]->name, prods[k].name, sizeof(own[i]->name));
				own[i]->named = true;
			}
	}
	return STRIPE_OK;
}

/* Waits for f to be done until the deadline (lock held). */
static void stripe_flight_wait(struct stripe_client *c, struct stripe_flight *f, int64_t deadline_ms)
{
	struct timespec ts;
	int64_t at;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + sm_ms_left(deadline_ms);
	ts.tv_sec = (time_t)(at / 1000);
	ts.tv_nsec = (long)(at % 1000) * 1000000L;
	while (!f->done)
		if (pthread_cond_timedwait(&c->flight_cond, &c->lock, &ts) == ETIMEDOUT)
			break;
}

enum stripe_errclass stripe_plan_names(struct stripe_client *c, struct stripe_subscription *subs,
    int n, int64_t deadline_ms, struct stripe_call *call, int *requests, unsigned *missing)
{
	struct stripe_flight *own[STRIPE_SUBS_MAX], *wait[STRIPE_SUBS_MAX];
	enum stripe_errclass e = STRIPE_OK;
	int nown = 0, nwait = 0, i;

	if (n > STRIPE_SUBS_MAX)
		n = STRIPE_SUBS_MAX;
	stripe_flights_claim(c, subs, n, deadline_ms, own, &nown, wait, &nwait);
	if (nown > 0)
		e = stripe_flights_fetch(c, own, nown, deadline_ms, call, requests, missing);
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < nown; i++) {
		own[i]->done = true;
		if (own[i]->named)
			stripe_set_plan(subs, n, own[i]->id, own[i]->name);
		stripe_flight_unref(c, own[i]);
	}
	if (nown > 0)
		pthread_cond_broadcast(&c->flight_cond);
	for (i = 0; i < nwait; i++) {
		stripe_flight_wait(c, wait[i], deadline_ms);
		if (wait[i]->done && wait[i]->named)
			stripe_set_plan(subs, n, wait[i]->id, wait[i]->name);
		stripe_flight_unref(c, wait[i]);
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}
