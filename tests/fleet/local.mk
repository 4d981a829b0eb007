# tests/fleet/local.mk - tests of fleet/ (unit, against a real redis-server, and the daemons).
if HAVE_CHECK
check_PROGRAMS += tests/fleet/test_fleet_unit
tests_fleet_test_fleet_unit_CFLAGS = $(TH_CFLAGS)
tests_fleet_test_fleet_unit_SOURCES = tests/fleet/test_fleet_unit.c
tests_fleet_test_fleet_unit_LDADD = $(TH_LDADD)
TESTS += tests/fleet/test_fleet_unit

check_PROGRAMS += tests/fleet/test_fleet_redis
tests_fleet_test_fleet_redis_CFLAGS = $(TH_CFLAGS)
tests_fleet_test_fleet_redis_SOURCES = tests/fleet/test_fleet_redis.c
tests_fleet_test_fleet_redis_LDADD = $(TH_LDADD)
TESTS += tests/fleet/test_fleet_redis
endif
TESTS += tests/fleet/test_fleet_daemon.py
EXTRA_DIST += tests/fleet/test_fleet_daemon.py tests/lib/milterclient.py tests/bench/bench_fleet.py
TESTS += tests/fleet/test_fleet_poll.py
EXTRA_DIST += tests/fleet/test_fleet_poll.py
