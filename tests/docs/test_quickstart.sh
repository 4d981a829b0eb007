#!/bin/sh
# test_quickstart.sh - the README's two quick-start commands, taken from README.md as written,
# run one after the other in ONE shell, in both orders, from the repository root: each must
# succeed and leave the shell where it started (the first used to leave it in _build, so the
# second failed). The commands' steps are stand-ins here (a copy of the root with an
# install-deps.sh, autogen.sh and configure that only write what make needs, and a Makefile
# whose demo and check targets record where they ran): the real steps are the whole build
# and suite, which CI runs through the same command (.ci/run). TAP on stdout.
src=${top_srcdir:-.}
n=0 fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }

cmds=$(sed -n '/^## Quick start/,/^## /p' "$src/README.md" | grep -E '^    \S' | sed 's/^    //')
demo=$(printf '%s\n' "$cmds" | grep 'make -j2 demo')
check=$(printf '%s\n' "$cmds" | grep 'make -j2 check')
[ -n "$demo" ]; ok $? "README quick start has the demo command"
[ -n "$check" ]; ok $? "README quick start has the check command"

root=$(mktemp -d /tmp/sm-quickstart-XXXXXX)
trap 'rm -rf "$root"' EXIT
printf '#!/bin/sh\nexit 0\n' > "$root/install-deps.sh"
printf '#!/bin/sh\nexit 0\n' > "$root/autogen.sh"
cat > "$root/configure" <<'EOS'
#!/bin/sh
printf 'demo:\n\t@pwd > %s/ran.demo\ncheck:\n\t@pwd > %s/ran.check\n' "$(cd .. && pwd)" "$(cd .. && pwd)" > Makefile
EOS
chmod +x "$root/install-deps.sh" "$root/autogen.sh" "$root/configure"

for order in "demo check" "check demo"; do
	rm -f "$root/ran.demo" "$root/ran.check" "$root/pwd.after"
	set -- $order
	first=$demo second=$check
	[ "$1" = check ] && first=$check second=$demo
	(cd "$root" && bash -c "set -e; $first; $second; pwd > pwd.after") >/dev/null 2>&1
	rc=$?
	[ $rc -eq 0 ] && [ -f "$root/ran.demo" ] && [ -f "$root/ran.check" ]
	ok $? "quick start, $1 then $2, in one shell: both commands succeed"
	[ "$(cat "$root/pwd.after" 2>/dev/null)" = "$root" ]
	ok $? "quick start, $1 then $2: the shell is still in the repository root"
	[ "$(cat "$root/ran.demo" 2>/dev/null)" = "$root/_build" ] && [ "$(cat "$root/ran.check" 2>/dev/null)" = "$root/_build" ]
	ok $? "quick start, $1 then $2: both built in _build"
done
echo "1..$n"
exit $fail
