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
# `make check-stress` (STRESS_N rounds, default 5, of the daemon-level tests under two busy
# loops per core, then 200 stops in a row; tests/stress.sh). Not in `make check`.
STRESS_TESTS = tests/milter/test_miltertest.py tests/e2e/test_postfix.py tests/fleet/test_fleet_daemon.py \
	tests/milter/test_accounts.py
check-stress: all
	STRESS_TESTS='$(STRESS_TESTS)' MAKE='$(MAKE)' top_srcdir='$(abs_top_srcdir)' $(SHELL) $(srcdir)/tests/stress.sh
.PHONY: check-stress
EXTRA_DIST += tests/stress.sh
# `make check-tsan` in a ./configure --enable-tsan build: the tests of the C code under
# ThreadSanitizer (every C test, and the tests that run the daemon); tests/tsan.sh fails a
# test on any report.
TSAN_DAEMON_TESTS = tests/milter/test_miltertest.py tests/milter/test_daemon.py \
	tests/milter/test_stop.py tests/milter/test_drain.py tests/milter/test_stripe_data.py \
	tests/fleet/test_fleet_daemon.py tests/milter/test_accounts.py \
	tests/e2e/test_postfix.py tests/e2e/test_ctl.py tests/e2e/test_stats.py tests/e2e/test_libmilter_log.py
check-tsan: all
	@tests=; for t in $(TESTS); do case $$t in *.py|*.sh) ;; *) tests="$$tests $$t" ;; esac; done; \
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="$$tests $(TSAN_DAEMON_TESTS)"
.PHONY: check-tsan
