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

# libFuzzer harnesses (configure CC=clang --enable-fuzzing); run e.g.
#   tests/fuzz/fuzz_stripe_parse -max_total_time=60
if ENABLE_FUZZING
FUZZ_STRIPE_LDADD = lookup/liblookup.a stripe/libstripe.a cache/libcache.a redis/librds.a common/libsmcommon.a \
	$(CURL_LIBS) $(JANSSON_LIBS) $(HIREDIS_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_stripe_parse tests/fuzz/fuzz_lk_summary
tests_fuzz_fuzz_stripe_parse_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) $(HIREDIS_CFLAGS)
tests_fuzz_fuzz_stripe_parse_SOURCES = tests/fuzz/fuzz_stripe_parse.c
tests_fuzz_fuzz_stripe_parse_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_stripe_parse_LDADD = $(FUZZ_STRIPE_LDADD)
tests_fuzz_fuzz_lk_summary_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) $(HIREDIS_CFLAGS)
tests_fuzz_fuzz_lk_summary_SOURCES = tests/fuzz/fuzz_lk_summary.c
tests_fuzz_fuzz_lk_summary_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_lk_summary_LDADD = $(FUZZ_STRIPE_LDADD)
endif
