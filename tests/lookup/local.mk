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
# Allocation failure, one failing allocation per run over a whole lookup (curl's torture
# way): the project's allocations are counted through the linker's --wrap, the libraries'
# through their hooks (tests/harness/th_alloc.h). tests/milter/local.mk has the same over a
# message.
if HAVE_CHECK
check_PROGRAMS += tests/lookup/test_alloc_fail
TESTS += tests/lookup/test_alloc_fail
TH_ALLOC_WRAP = -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,--wrap=json_loadb
tests_lookup_test_alloc_fail_CFLAGS = $(TH_CFLAGS) $(CRYPTO_CFLAGS)
tests_lookup_test_alloc_fail_SOURCES = tests/lookup/test_alloc_fail.c tests/harness/th_alloc.c tests/harness/th_alloc.h
tests_lookup_test_alloc_fail_LDFLAGS = $(AM_LDFLAGS) $(TH_ALLOC_WRAP)
tests_lookup_test_alloc_fail_LDADD = $(TH_LDADD)
endif
