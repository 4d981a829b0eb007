# tests/local.mk - the test harness library and every test folder's fragment.
#
# Each folder's tests print TAP. C tests link libth.a (tests/harness/th.h) and Check.
TH_LDADD = tests/harness/libth.a fleet/libfleet.a lookup/liblookup.a mail/libmail.a stripe/libstripe.a \
	cache/libcache.a redis/librds.a common/libsmcommon.a \
	$(CHECK_LIBS) $(CURL_LIBS) $(JANSSON_LIBS) $(HIREDIS_LIBS) $(MHD_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)
TH_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) $(HIREDIS_CFLAGS)

if HAVE_CHECK
noinst_LIBRARIES += tests/harness/libth.a
tests_harness_libth_a_CFLAGS = $(TH_CFLAGS)
tests_harness_libth_a_SOURCES = tests/harness/th.c tests/harness/th.h

check_PROGRAMS += tests/harness/test_harness
tests_harness_test_harness_CFLAGS = $(TH_CFLAGS)
tests_harness_test_harness_SOURCES = tests/harness/test_harness.c
tests_harness_test_harness_LDADD = $(TH_LDADD)
TESTS += tests/harness/test_harness
endif

include $(srcdir)/tests/common/local.mk
include $(srcdir)/tests/standin/local.mk
include $(srcdir)/tests/stripe/local.mk
include $(srcdir)/tests/cache/local.mk
include $(srcdir)/tests/mail/local.mk
include $(srcdir)/tests/lookup/local.mk
include $(srcdir)/tests/fleet/local.mk
include $(srcdir)/tests/milter/local.mk
include $(srcdir)/tests/e2e/local.mk
include $(srcdir)/tests/fuzz/local.mk
include $(srcdir)/tests/pkg/local.mk
include $(srcdir)/tests/bench/local.mk
EXTRA_DIST += tests/bench/bench_stripe_lookup.py tests/bench/stripe_lookup_bench.c
TESTS += tests/docs/test_manpages.sh tests/docs/test_prometheus.py
TESTS += tests/docs/test_quickstart.sh
EXTRA_DIST += tests/docs/test_quickstart.sh
EXTRA_DIST += tests/docs/test_prometheus.py
EXTRA_DIST += tests/docs/test_manpages.sh
# Stripe's reference data (tests/data/stripe/README.md) and the design document.
EXTRA_DIST += tests/prism/package.json tests/prism/package-lock.json \
	tests/data/stripe/README.md tests/data/stripe/LICENSE \
	tests/data/stripe/fixtures3.json tests/data/stripe/openapi-lookup-strict.json \
	tests/data/stripe/openapi-lookup-errors.json tests/data/stripe/extend_spec.py docs/DESIGN.md
