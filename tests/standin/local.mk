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

# The contract audit (tests/standin/contract_audit.py): every stand-in this `make check` starts
# records each Stripe request it receives in tests/standin-audit/ (emptied before the tests
# run), and test_contract_audit.py, which waits for every other test's log, checks them all
# against Stripe's published contract (tests/data/stripe: the OpenAPI spec and the Search
# Query Language). test_contract_checker.py proves the audit catches a request outside it.
STANDIN_AUDIT_DIR = $(abs_top_builddir)/tests/standin-audit
AM_TESTS_ENVIRONMENT += STANDIN_AUDIT_DIR='$(STANDIN_AUDIT_DIR)'; export STANDIN_AUDIT_DIR;
TESTS += tests/standin/test_contract_checker.py tests/standin/test_contract_audit.py
tests/standin/test_contract_audit.log: $(TEST_LOGS:tests/standin/test_contract_audit.log=)
# built by `make check` before it runs the tests (check_DATA), so each run starts empty
check_DATA = standin-audit-reset
standin-audit-reset:
	rm -rf '$(STANDIN_AUDIT_DIR)' && mkdir -p '$(STANDIN_AUDIT_DIR)'
.PHONY: standin-audit-reset
EXTRA_DIST += tests/standin/stripe_search.py tests/standin/contract_audit.py \
	tests/standin/test_contract_checker.py tests/standin/test_contract_audit.py \
	tests/data/stripe/search-query-language.json
