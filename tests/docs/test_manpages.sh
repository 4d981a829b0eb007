#!/bin/sh
# test_manpages.sh - every man page renders without warnings (mandoc -T lint at warning
# level, groff -ww) and names every option and command it must. TAP on stdout.
src=${top_srcdir:-.}
pages="stripe-milter.8 stripe-milter.conf.5 stripe-milterctl.8"
n=0 fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
if ! command -v mandoc >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
	echo "1..0 # SKIP mandoc or groff not installed (apt-get install mandoc groff-base)"
	exit 0
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
