# tests/milter/local.mk - tests of the daemon's modules and of the milter protocol.
include $(srcdir)/tests/milter/units.mk
TESTS += tests/milter/test_miltertest.py tests/milter/test_stripe_data.py
EXTRA_DIST += tests/milter/test_miltertest.py tests/milter/mt_message.lua \
	tests/milter/test_stripe_data.py tests/milter/mt_headers.lua
if HAVE_CHECK
check_PROGRAMS += tests/milter/test_conf
tests_milter_test_conf_CFLAGS = $(TH_CFLAGS)
tests_milter_test_conf_SOURCES = tests/milter/test_conf.c
tests_milter_test_conf_LDADD = milter/libmf.a $(TH_LDADD)
TESTS += tests/milter/test_conf
endif
TESTS += tests/milter/test_daemon.py tests/milter/test_accounts.py
EXTRA_DIST += tests/milter/test_daemon.py tests/milter/test_accounts.py

# A daemon whose summary codec is version 2 (the build-time override LK_SUMMARY_VERSION):
# test_codec_upgrade.py runs it beside milter/stripe-milter on one Redis, as a rolling
# upgrade would. Only lookup/ knows the codec's version, so only it is built again.
check_PROGRAMS += tests/milter/stripe-milter-codec2
tests_milter_stripe_milter_codec2_CPPFLAGS = $(AM_CPPFLAGS) -DLK_SUMMARY_VERSION=2
tests_milter_stripe_milter_codec2_CFLAGS = $(milter_libmf_a_CFLAGS) $(lookup_liblookup_a_CFLAGS)
tests_milter_stripe_milter_codec2_SOURCES = milter/main.c $(lookup_liblookup_a_SOURCES)
tests_milter_stripe_milter_codec2_LDADD = milter/libmf.a fleet/libfleet.a mail/libmail.a \
	stripe/libstripe.a cache/libcache.a redis/librds.a common/libsmcommon.a \
	$(MILTER_LIBS) $(CURL_LIBS) $(JANSSON_LIBS) $(HIREDIS_LIBS) $(MHD_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)
TESTS += tests/milter/test_codec_upgrade.py
EXTRA_DIST += tests/milter/test_codec_upgrade.py

# Allocation failure over one message (tests/milter/test_alloc_fail_msg.c): the callbacks under
# the real libmilter in the test's process, miltertest as the MTA, one failing allocation per
# run (tests/harness/th_alloc.h; TH_ALLOC_WRAP is in tests/lookup/local.mk).
if HAVE_CHECK
check_PROGRAMS += tests/milter/test_alloc_fail_msg
TESTS += tests/milter/test_alloc_fail_msg
tests_milter_test_alloc_fail_msg_CFLAGS = $(TH_CFLAGS) $(MILTER_CFLAGS) $(CRYPTO_CFLAGS)
tests_milter_test_alloc_fail_msg_SOURCES = tests/milter/test_alloc_fail_msg.c tests/harness/th_alloc.c
tests_milter_test_alloc_fail_msg_LDFLAGS = $(AM_LDFLAGS) $(TH_ALLOC_WRAP)
tests_milter_test_alloc_fail_msg_LDADD = milter/libmf.a $(TH_LDADD) $(MILTER_LIBS)
endif
TESTS += tests/milter/test_stop.py
EXTRA_DIST += tests/milter/test_stop.py
TESTS += tests/milter/test_drain.py
EXTRA_DIST += tests/milter/test_drain.py
