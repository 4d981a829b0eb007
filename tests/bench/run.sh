#!/bin/sh
# tests/bench/run.sh - runs every benchmark program and prints its figures.
# Benchmarks print ratios against a baseline measured in the same run.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-.}
export top_srcdir top_builddir
found=0
for b in "$top_srcdir"/tests/bench/*.py "$top_builddir"/tests/bench/bench_*; do
	[ -e "$b" ] || continue
	case "$b" in *.o|*.c) continue ;; esac
	found=1
	echo "== $(basename "$b")"
	case "$b" in
	*.py) python3 "$b" ;;
	*) "$b" ;;
	esac
done
[ $found -eq 1 ] || echo "no benchmarks built"
