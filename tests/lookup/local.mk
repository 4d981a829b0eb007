# tests/lookup/local.mk - tests of lookup/ (keys, codec, plan names, sharing).
if HAVE_CHECK
check_PROGRAMS += tests/lookup/test_lookup
TESTS += tests/lookup/test_lookup
tests_lookup_test_lookup_CFLAGS = $(TH_CFLAGS)
tests_lookup_test_lookup_SOURCES = tests/lookup/test_lookup.c
tests_lookup_test_lookup_LDADD = $(TH_LDADD)
endif
if HAVE_CHECK
check_PROGRAMS += tests/lookup/test_lookup_warm
TESTS += tests/lookup/test_lookup_warm
tests_lookup_test_lookup_warm_CFLAGS = $(TH_CFLAGS)
tests_lookup_test_lookup_warm_SOURCES = tests/lookup/test_lookup_warm.c
tests_lookup_test_lookup_warm_LDADD = $(TH_LDADD)
endif
