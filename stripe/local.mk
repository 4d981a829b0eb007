# stripe/local.mk - the Stripe client library (libstripe.a).
noinst_LIBRARIES += stripe/libstripe.a
stripe_libstripe_a_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
stripe_libstripe_a_SOURCES = stripe/stripe.h stripe/stripe_placeholder.c
