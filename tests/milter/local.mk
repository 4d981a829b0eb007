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
TESTS += tests/milter/test_daemon.py
EXTRA_DIST += tests/milter/test_daemon.py

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
