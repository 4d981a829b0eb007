#!/bin/sh
# tsan.sh - runs one test of a ThreadSanitizer build (./configure --enable-tsan sets it as
# LOG_COMPILER, PY_LOG_COMPILER and SH_LOG_COMPILER): "$@" is the interpreter, if any, and the
# test. Every instrumented process the test starts (the C test itself, stripe-milter,
# stripe-milterctl, the bench tools) writes its ThreadSanitizer reports to a folder of this
# test's own (TSAN_OPTIONS log_path, one file per process: report.PID), with the suppressions
# of tests/tsan.supp (frames inside libmilter only, each with its reason).
#
# Any report fails the test: the reports are printed into its log as TAP diagnostics and the
# exit status is 1 (the TAP driver counts it as an ERROR). The folder is kept
# (tsan-reports/NAME in the build folder) until the test runs again. atexit_sleep_ms=0: no
# 1 s pause in every instrumented process's exit (the tests start and stop hundreds of daemons).
for last; do :; done
name=$(printf '%s\n' "$last" | sed 's|.*/||; s|\.[^.]*$||')
dir="$(pwd)/tsan-reports/$name"
rm -rf "$dir" && mkdir -p "$dir" || exit 99
# the daemon may drop privileges (UserID) before it reports
chmod 1777 "$dir"
TSAN_OPTIONS="log_path=$dir/report suppressions=${top_srcdir:-.}/tests/tsan.supp exitcode=66 halt_on_error=0 second_deadlock_stack=1 atexit_sleep_ms=0 ${TSAN_OPTIONS:-}"
export TSAN_OPTIONS
"$@"
rc=$?
reports=$(ls "$dir" 2>/dev/null | grep '^report\.' || true)
if [ -n "$reports" ]; then
	echo "# ThreadSanitizer: $(printf '%s\n' "$reports" | wc -l) process(es) reported ($dir):"
	for f in $reports; do
		sed 's/^/# /' "$dir/$f"
	done
	exit 1
fi
exit $rc
