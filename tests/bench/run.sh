#!/bin/sh
# tests/bench/run.sh - `make bench`: runs tests/bench/bench.py (every figure of issue #14 against
# baselines measured in the same run, rounds interleaved), then any other benchmark script
# in tests/bench (bench_*.py; each prints its own figures and baselines).
# Knobs are environment variables, see bench.py: BENCH_ONLY, BENCH_ROUNDS, BENCH_SCALE,
# BENCH_BIG, BENCH_DISTINCT, BENCH_PF_MSGS. Exit status: non-zero when any benchmark failed.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-.}
export top_srcdir top_builddir
PYTHON3=${PYTHON3:-python3}
rc=0
echo "== bench.py"
"$PYTHON3" "$top_srcdir/tests/bench/bench.py" || rc=1
for b in "$top_srcdir"/tests/bench/bench_*.py; do
	[ -e "$b" ] || continue
	echo "== $(basename "$b")"
	"$PYTHON3" "$b" || rc=1
done
exit $rc
