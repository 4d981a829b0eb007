#!/bin/sh
# test_manpages.sh - every man page renders without warnings (mandoc -T lint at warning
# level, groff -ww) and names every option and command it must. TAP on stdout.
src=${top_srcdir:-.}
pages="stripe-milter.8 stripe-milter.conf.5 stripe-milterctl.8"
n=0 fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
# Skips the whole file; under CI=true a failure unless .ci/allowed-skips lists it.
skip_all() {
	case $(printf '%s' "${CI:-}" | tr 'A-Z' 'a-z') in
	true|1|yes)
		if ! awk -F'|' -v why="$1" '
			/^[ \t]*#/ || NF < 3 { next }
			{ t = $1; r = $2; b = $3; gsub(/^[ \t]+|[ \t]+$/, "", t); gsub(/^[ \t]+|[ \t]+$/, "", r)
			  gsub(/^[ \t]+|[ \t]+$/, "", b); sub(/.*\//, "", t); sub(/\..*/, "", t)
			  if (t == "test_manpages" && r != "" && b != "" && index(why, r)) found = 1 }
			END { exit !found }' "$src/.ci/allowed-skips" 2>/dev/null; then
			printf '1..1\nnot ok 1 - cannot run: %s\n# CI=true: a missing tool fails\n' "$1"
			exit 1
		fi;;
	esac
	echo "1..0 # SKIP $1"
	exit 0
}
if ! command -v mandoc >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
	skip_all "mandoc or groff not installed (apt-get install mandoc groff-base)"
fi
for p in $pages; do
	f="$src/conf/$p"
	# Cross references to the other pages are "not found" until installed: not a fault.
	out=$(mandoc -T lint -W warning "$f" 2>&1 | grep -v "referenced manual not found")
	[ -z "$out" ]; ok $? "mandoc -T lint: $p"
	[ -n "$out" ] && echo "$out" | sed 's/^/# /'
	out=$(groff -ww -z -mandoc "$f" 2>&1)
	[ -z "$out" ]; ok $? "groff -ww: $p"
	[ -n "$out" ] && echo "$out" | sed 's/^/# /'
done
for c in stats lookup purge flush check-key check-config; do
	grep -q "^\.It Cm $c" "$src/conf/stripe-milterctl.8"; ok $? "stripe-milterctl.8 documents $c"
done
for s in SIGUSR1 SIGUSR2 SIGTERM; do
	grep -q "$s" "$src/conf/stripe-milter.8"; ok $? "stripe-milter.8 documents $s"
done
echo "1..$n"
exit $fail
