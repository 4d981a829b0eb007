# tests/milter/units.mk - unit tests of mf_hdr, mf_policy.
if HAVE_CHECK
check_PROGRAMS += tests/milter/test_hdr tests/milter/test_policy
TESTS += tests/milter/test_hdr tests/milter/test_policy
tests_milter_test_hdr_CFLAGS = $(TH_CFLAGS)
tests_milter_test_hdr_SOURCES = tests/milter/test_hdr.c
tests_milter_test_hdr_LDADD = milter/libmf.a $(TH_LDADD)
tests_milter_test_policy_CFLAGS = $(TH_CFLAGS)
tests_milter_test_policy_SOURCES = tests/milter/test_policy.c
tests_milter_test_policy_LDADD = milter/libmf.a $(TH_LDADD)
endif

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_mf_hdr tests/fuzz/fuzz_mf_policy
tests_fuzz_fuzz_mf_hdr_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS)
tests_fuzz_fuzz_mf_hdr_SOURCES = tests/fuzz/fuzz_mf_hdr.c
tests_fuzz_fuzz_mf_hdr_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_mf_hdr_LDADD = milter/libmf.a lookup/liblookup.a mail/libmail.a stripe/libstripe.a \
	cache/libcache.a redis/librds.a common/libsmcommon.a $(CURL_LIBS) $(JANSSON_LIBS) $(HIREDIS_LIBS) \
	$(CRYPTO_LIBS) $(PTHREAD_LIBS)
tests_fuzz_fuzz_mf_policy_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_mf_policy_SOURCES = tests/fuzz/fuzz_mf_policy.c
tests_fuzz_fuzz_mf_policy_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_mf_policy_LDADD = milter/libmf.a mail/libmail.a common/libsmcommon.a
endif

# The renderer driven from Python (test_hdr_property.py): JSON summaries in, header lines out.
check_PROGRAMS += tests/milter/hdr_dump
tests_milter_hdr_dump_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_milter_hdr_dump_SOURCES = tests/milter/hdr_dump.c
tests_milter_hdr_dump_LDADD = milter/libmf.a mail/libmail.a stripe/libstripe.a common/libsmcommon.a \
	$(CURL_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS)
TESTS += tests/milter/test_hdr_property.py
EXTRA_DIST += tests/milter/test_hdr_property.py tests/lib/hdrv2.py
