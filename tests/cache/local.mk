# tests/cache/local.mk - tests of the cache library (cache/), against real redis-servers.
if HAVE_CHECK
CACHE_TESTS = tests/cache/test_cache_l1 tests/cache/test_cache_redis tests/cache/test_cache_restart \
	tests/cache/test_cache_sentinel tests/cache/test_cache_unreadable tests/cache/test_cache_purge_fill
check_PROGRAMS += $(CACHE_TESTS)
TESTS += $(CACHE_TESTS)

tests_cache_test_cache_l1_CFLAGS = $(TH_CFLAGS)
tests_cache_test_cache_l1_SOURCES = tests/cache/test_cache_l1.c tests/cache/tc.h tests/harness/th_clock.c
tests_cache_test_cache_l1_LDADD = $(TH_LDADD)

tests_cache_test_cache_redis_CFLAGS = $(TH_CFLAGS)
tests_cache_test_cache_redis_SOURCES = tests/cache/test_cache_redis.c tests/cache/tc.h tests/harness/th_clock.c
tests_cache_test_cache_redis_LDADD = $(TH_LDADD)

tests_cache_test_cache_restart_CFLAGS = $(TH_CFLAGS)
tests_cache_test_cache_restart_SOURCES = tests/cache/test_cache_restart.c tests/cache/tc.h tests/harness/th_clock.c
tests_cache_test_cache_restart_LDADD = $(TH_LDADD)

tests_cache_test_cache_sentinel_CFLAGS = $(TH_CFLAGS)
tests_cache_test_cache_sentinel_SOURCES = tests/cache/test_cache_sentinel.c tests/cache/tc.h
tests_cache_test_cache_sentinel_LDADD = $(TH_LDADD)

tests_cache_test_cache_unreadable_CFLAGS = $(TH_CFLAGS)
tests_cache_test_cache_unreadable_SOURCES = tests/cache/test_cache_unreadable.c tests/cache/tc.h
tests_cache_test_cache_unreadable_LDADD = $(TH_LDADD)

tests_cache_test_cache_purge_fill_CFLAGS = $(TH_CFLAGS)
tests_cache_test_cache_purge_fill_SOURCES = tests/cache/test_cache_purge_fill.c tests/cache/tc.h
tests_cache_test_cache_purge_fill_LDADD = $(TH_LDADD)
endif
