# tests/common/local.mk - unit tests of common/: the secret reader and the pid file, and the
# small helpers of sm_util.
if HAVE_CHECK
check_PROGRAMS += tests/common/test_secret tests/common/test_util
TESTS += tests/common/test_secret tests/common/test_util
tests_common_test_secret_CFLAGS = $(TH_CFLAGS)
tests_common_test_secret_SOURCES = tests/common/test_secret.c
tests_common_test_secret_LDADD = $(TH_LDADD)
tests_common_test_util_CFLAGS = $(TH_CFLAGS)
tests_common_test_util_SOURCES = tests/common/test_util.c
tests_common_test_util_LDADD = $(TH_LDADD)
endif
