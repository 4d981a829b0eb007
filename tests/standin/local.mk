# tests/standin/local.mk - the Stripe stand-in (a test tool, never installed or linked), its
# tests, and the shared Python test library (tests/lib). The .py tests run through the TAP
# driver with $(PYTHON3) (TEST_EXTENSIONS in Makefile.am).
TESTS += \
	tests/standin/test_standin.py \
	tests/standin/test_fixtures.py \
	tests/standin/test_prism.py \
	tests/lib/test_smtest.py

EXTRA_DIST += \
	tests/standin/README.md \
	tests/standin/stripe_standin.py \
	tests/standin/test_standin.py \
	tests/standin/test_fixtures.py \
	tests/standin/test_prism.py \
	tests/lib/smtest.py \
	tests/lib/test_smtest.py
