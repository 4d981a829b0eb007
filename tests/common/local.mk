# tests/common/local.mk - unit tests of common/: the secret reader and the pid file.
if HAVE_CHECK
check_PROGRAMS += tests/common/test_secret
TESTS += tests/common/test_secret
tests_common_test_secret_CFLAGS = $(TH_CFLAGS)
tests_common_test_secret_SOURCES = tests/common/test_secret.c
tests_common_test_secret_LDADD = $(TH_LDADD)
endif
