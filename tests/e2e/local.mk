# tests/e2e/local.mk - end-to-end tests: the daemon behind a real Postfix (swaks).
TESTS += tests/e2e/test_postfix.py
EXTRA_DIST += tests/e2e/test_postfix.py
TESTS += tests/e2e/test_examples.py
EXTRA_DIST += tests/e2e/test_examples.py
TESTS += tests/e2e/test_ctl.py
EXTRA_DIST += tests/e2e/test_ctl.py
TESTS += tests/e2e/test_sendmail.py
EXTRA_DIST += tests/e2e/test_sendmail.py
TESTS += tests/e2e/test_libmilter_log.py
EXTRA_DIST += tests/e2e/test_libmilter_log.py
TESTS += tests/e2e/test_stats.py
EXTRA_DIST += tests/e2e/test_stats.py
TESTS += tests/e2e/test_dashboard.py
EXTRA_DIST += tests/e2e/test_dashboard.py
TESTS += tests/e2e/test_rules.py
EXTRA_DIST += tests/e2e/test_rules.py
