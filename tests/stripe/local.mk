# tests/stripe/local.mk - tests of the Stripe client (stripe/).
if HAVE_CHECK
check_PROGRAMS += tests/stripe/test_stripe_unit
tests_stripe_test_stripe_unit_CFLAGS = $(TH_CFLAGS)
tests_stripe_test_stripe_unit_SOURCES = tests/stripe/test_stripe_unit.c
tests_stripe_test_stripe_unit_LDADD = $(TH_LDADD)
TESTS += tests/stripe/test_stripe_unit
endif

if HAVE_CHECK
check_PROGRAMS += tests/stripe/test_stripe_lookup
tests_stripe_test_stripe_lookup_CFLAGS = $(TH_CFLAGS)
tests_stripe_test_stripe_lookup_SOURCES = tests/stripe/test_stripe_lookup.c
tests_stripe_test_stripe_lookup_LDADD = $(TH_LDADD)
TESTS += tests/stripe/test_stripe_lookup
endif

if HAVE_CHECK
check_PROGRAMS += tests/stripe/test_stripe_prism
tests_stripe_test_stripe_prism_CFLAGS = $(TH_CFLAGS)
tests_stripe_test_stripe_prism_SOURCES = tests/stripe/test_stripe_prism.c
tests_stripe_test_stripe_prism_LDADD = $(TH_LDADD)
TESTS += tests/stripe/test_stripe_prism
endif
