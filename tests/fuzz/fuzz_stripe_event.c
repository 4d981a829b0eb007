/*
 * fuzz_stripe_event.c - libFuzzer harness for Stripe events: a webhook body
 * (stripe_event_parse()) and, the same bytes, a GET /v1/events page
 * (stripe_events_page_parse()), both stripe/stripe_events.c.
 *
 * Checks beyond "no crash": an event accepted has an id and a type, ids (event, customer)
 * pass stripe_id_ok() (they become Redis keys), every string is NUL-terminated inside its
 * array with no control character, addresses hold an '@' and are distinct, at most
 * STRIPE_EVENT_EMAILS; a page never reports more events than asked for, and a refused page
 * reports none.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stripe/stripe_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PAGE_MAX 4

static void fuzz_text(const char *s, size_t cap, bool may_be_empty)
{
	size_t n = strnlen(s, cap), i;

	if (n == cap || (n == 0 && !may_be_empty))
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

static void fuzz_event(const struct stripe_event *ev)
{
	int i, j;

	fuzz_text(ev->id, sizeof(ev->id), false);
	if (!stripe_id_ok(ev->id, strlen(ev->id)))
		abort();
	fuzz_text(ev->type, sizeof(ev->type), false);
	fuzz_text(ev->object, sizeof(ev->object), true);
	fuzz_text(ev->customer_id, sizeof(ev->customer_id), true);
	if (ev->customer_id[0] && !stripe_id_ok(ev->customer_id, strlen(ev->customer_id)))
		abort();
	if (ev->nemails < 0 || ev->nemails > STRIPE_EVENT_EMAILS)
		abort();
	for (i = 0; i < ev->nemails; i++) {
		fuzz_text(ev->emails[i], sizeof(ev->emails[i]), false);
		if (strchr(ev->emails[i], '@') == NULL)
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(ev->emails[i], ev->emails[j]) == 0)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct stripe_event page[FUZZ_PAGE_MAX];
	struct stripe_event ev;
	char err[160];
	bool more = true;
	int i, n = -1;

	if (stripe_event_parse((const char *)data, size, &ev, err, sizeof(err)) == 0)
		fuzz_event(&ev);
	else if (strnlen(err, sizeof(err)) == 0)
		abort();
	if (stripe_events_page_parse((const char *)data, size, page, FUZZ_PAGE_MAX, &n, &more, err,
	    sizeof(err)) != 0) {
		if (n != 0 || more)
			abort();
		return 0;
	}
	if (n < 0 || n > FUZZ_PAGE_MAX)
		abort();
	for (i = 0; i < n; i++)
		fuzz_event(&page[i]);
	return 0;
}
