#!/bin/bash
# tests/fuzz/run.sh - runs the libFuzzer harnesses from their kept corpora (make fuzz), or
# rebuilds the kept corpora (maintainers).
#
#   run.sh run SRCDIR BINDIR SECONDS JOBS HARNESS...
#	Runs each harness BINDIR/HARNESS for SECONDS from SRCDIR/corpus/HARNESS (read only: new
#	inputs go to BINDIR/work/HARNESS), with SRCDIR/HARNESS.dict when there is one, JOBS at
#	a time. Prints one line per harness (executions, edges "cov:", corpus) and, for a crash,
#	leak, timeout or sanitizer report, the reproducer's path (BINDIR/artifacts/HARNESS-*)
#	and the end of the log (BINDIR/work/HARNESS.log). Ends with "# PASS: n" and "# FAIL: n"
#	lines (what .ci/run counts); exits 1 when any harness failed.
#   run.sh merge SRCDIR BINDIR SEEDDIR HARNESS...
#	Rebuilds SRCDIR/corpus/HARNESS as the minimal set (libFuzzer -merge=1) of what it
#	holds, SEEDDIR/HARNESS (tests/fuzz/seeds.py writes it) and BINDIR/work/HARNESS: keeps
#	only inputs that add coverage, under content-hash names.
#
# Environment: FUZZ_FLAGS, extra libFuzzer flags (e.g. -runs=10000000 instead of a time).
# A sanitizer report is a failure: the harnesses are built with ASan and UBSan and
# -fno-sanitize-recover (configure --enable-fuzzing).
set -u
mode=$1 src=$2 bin=$3
shift 3

fuzz_one() {
	h=$1 secs=$2
	work=$bin/work/$h
	log=$bin/work/$h.log
	mkdir -p "$work" "$bin/artifacts"
	dict=
	[ -f "$src/$h.dict" ] && dict=-dict=$src/$h.dict
	# shellcheck disable=SC2086
	"$bin/$h" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 \
	    -artifact_prefix="$bin/artifacts/$h-" $dict ${FUZZ_FLAGS:-} "$work" "$src/corpus/$h" \
	    >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | sed 's/cov: //')
	corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | sed 's/corp: //')
	kept=$(ls "$src/corpus/$h" 2>/dev/null | wc -l)
	if [ $rc -eq 0 ]; then
		echo "ok   $h: ${execs:-?} executions, cov: ${cov:-?} edges, corpus ${corp:-?} (kept seeds: $kept)"
		return 0
	fi
	echo "FAIL $h (exit $rc) after ${execs:-?} executions: reproducer:" \
	    "$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -1)"
	echo "     rerun: $bin/$h <reproducer>   log: $log"
	grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log" | head -20 | sed 's/^/     /'
	return 1
}

case $mode in
run)
	secs=$1 jobs=$2
	shift 2
	out=$bin/work/results
	mkdir -p "$bin/work"
	: >"$out"
	running=0
	for h in "$@"; do
		( if fuzz_one "$h" "$secs" >"$bin/work/$h.result"; then r=pass; else r=fail; fi
		  cat "$bin/work/$h.result"; echo "$r" >>"$out" ) &
		running=$((running + 1))
		if [ $running -ge "$jobs" ]; then
			wait -n 2>/dev/null || wait
			running=$((running - 1))
		fi
	done
	wait
	pass=$(grep -c '^pass' "$out") fail=$(grep -c '^fail' "$out")
	echo "# PASS: $pass"
	echo "# FAIL: $fail"
	[ "$fail" -eq 0 ]
	;;
merge)
	seeds=$1
	shift
	for h in "$@"; do
		new=$bin/work/$h.merged
		rm -rf "$new" && mkdir -p "$new" "$src/corpus/$h" "$bin/work/$h" "$seeds/$h"
		"$bin/$h" -merge=1 -timeout=30 "$new" "$src/corpus/$h" "$seeds/$h" "$bin/work/$h" \
		    >"$bin/work/$h.merge.log" 2>&1 || { tail -20 "$bin/work/$h.merge.log"; exit 1; }
		rm -rf "$src/corpus/$h" && mv "$new" "$src/corpus/$h"
		echo "$h: $(ls "$src/corpus/$h" | wc -l) inputs kept," \
		    "$(grep -oE 'MERGE-OUTER: [0-9]+ new files with [0-9]+ new features' "$bin/work/$h.merge.log" | tail -1)"
	done
	;;
*)
	echo "usage: run.sh run|merge ..." >&2
	exit 2
	;;
esac
