# stripe/local.mk - the Stripe client library (libstripe.a).
noinst_LIBRARIES += stripe/libstripe.a
stripe_libstripe_a_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
stripe_libstripe_a_SOURCES = stripe/stripe.h stripe/stripe_int.h stripe/stripe_fetch.h \
	stripe/stripe_names.c stripe/stripe_money.c stripe/stripe_key.c stripe/stripe_parse.c \
	stripe/stripe_client.c stripe/stripe_http.c stripe/stripe_fetch.c \
	stripe/stripe_lookup.c stripe/stripe_products.c stripe/stripe_events.c
