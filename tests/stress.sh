#!/bin/sh
# stress.sh - `make check-stress`: the daemon-level tests, STRESS_N times (default 5), on a
# loaded machine, then the stop test 200 times in a row under the same load.
#
#   make check-stress [STRESS_N=5]
#
# The load is two busy loops per core (nproc), started here and stopped here on every way
# out: the EXIT/INT/TERM/HUP traps kill them by PID, and each loop also ends by itself as
# soon as this script is gone (it spins on `kill -0` of this script's PID), so even a
# SIGKILL of the script leaves none behind.
#
# The tests ($STRESS_TESTS, set by tests/local.mk): the milter under miltertest
# (tests/milter/test_miltertest.py), behind Postfix (tests/e2e/test_postfix.py), the fleet's
# daemons (tests/fleet/test_fleet_daemon.py), several Stripe accounts in one daemon
# (tests/milter/test_accounts.py); then tests/milter/test_stop.py with STOP_N=200.
# The package test's mail path (tests/pkg/test_deb.py) is not here: it needs the package
# installed on this machine (make check-package).
#
# Each round runs `make check TESTS=...` with TH_KEEP=1 and its own TMPDIR under
# stress-logs/round-N in the build folder: a round that passes is removed; a failing one is
# kept (the tests' .log files, make's output, every daemon's, Postfix's and Redis's files) and
# named. Prints automake's summary lines of every round (.ci/run adds them up) and the time
# taken; exits 1 when any round failed.
set -u
n=${STRESS_N:-5}
tests=${STRESS_TESTS:?STRESS_TESTS is not set (run make check-stress)}
make=${MAKE:-make}
top=$(pwd)
logs="$top/stress-logs"
me=$$

cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
pids="" child=""
stop_load() {
	for p in $pids $child; do kill "$p" 2>/dev/null; done
	for p in $pids $child; do wait "$p" 2>/dev/null; done
	pids="" child=""
}
trap 'stop_load' EXIT
trap 'stop_load; exit 130' INT TERM HUP
i=0
while [ "$i" -lt $((2 * cores)) ]; do
	sh -c "while kill -0 $me 2>/dev/null; do :; done" &
	pids="$pids $!"
	i=$((i + 1))
done
echo "check-stress: $n round(s) of: $tests"
echo "check-stress: load: $((2 * cores)) busy loops ($cores cores)"

# one_round NAME TESTS [VAR=value...]: make check TESTS=... in a kept-on-failure folder.
failed=0
one_round() {
	name=$1 tests_here=$2
	shift 2
	dir="$logs/$name"
	rm -rf "$dir" && mkdir -p "$dir/tmp" || return 1
	t0=$(date +%s)
	# in the background: a signal to this script runs its trap at once (the shell runs
	# traps only between commands, and `wait` returns for them)
	env TH_KEEP=1 TMPDIR="$dir/tmp" STRESS_LOADED=1 "$@" \
		$make check TESTS="$tests_here" >"$dir/make.log" 2>&1 &
	child=$!
	wait "$child"
	rc=$?
	child=""
	grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' "$dir/make.log"
	if [ "$rc" -eq 0 ]; then
		echo "check-stress: $name passed in $(($(date +%s) - t0)) s"
		rm -rf "$dir"
		return 0
	fi
	for t in $tests_here; do
		base=${t%.*}
		cp "$base.log" "$base.trs" "$dir/" 2>/dev/null
	done
	grep -hE '^(FAIL|ERROR|not ok)' "$dir"/*.log "$dir/make.log" 2>/dev/null | head -40
	echo "check-stress: $name FAILED after $(($(date +%s) - t0)) s; its logs are kept in $dir"
	failed=$((failed + 1))
	return 1
}

start=$(date +%s)
r=1
while [ "$r" -le "$n" ]; do
	one_round "round-$r" "$tests"
	r=$((r + 1))
done
one_round "stop-200" tests/milter/test_stop.py STOP_N=200
stop_load
echo "check-stress: $n round(s) and 200 stops in $(($(date +%s) - start)) s, $failed failed"
rmdir "$logs" 2>/dev/null
[ "$failed" -eq 0 ]
