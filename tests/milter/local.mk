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
