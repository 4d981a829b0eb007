# tests/bench/local.mk - the benchmark tools (built with the tests, run by `make bench` and
# `make soak`, never installed): the milter-protocol load generator and the do-nothing
# milters the figures are measured against.
check_PROGRAMS += tests/bench/mload tests/bench/null_milter
tests_bench_mload_SOURCES = tests/bench/mload.c
tests_bench_mload_CFLAGS = $(AM_CFLAGS) $(MILTER_CFLAGS)
tests_bench_mload_LDADD = $(PTHREAD_LIBS)
tests_bench_null_milter_SOURCES = tests/bench/null_milter.c
tests_bench_null_milter_CFLAGS = $(AM_CFLAGS) $(MILTER_CFLAGS)
tests_bench_null_milter_LDADD = $(MILTER_LIBS) $(PTHREAD_LIBS)
EXTRA_DIST += tests/bench/run.sh tests/bench/bench.py tests/bench/benchlib.py tests/bench/soak.py \
	tests/bench/bench_accounts.py
TESTS += tests/bench/test_mload.py
EXTRA_DIST += tests/bench/test_mload.py
