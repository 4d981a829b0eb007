#!/bin/sh
# install-deps.sh - install every build and test dependency of stripe-milter.
#
# Run as root on Debian 12 (bookworm). Idempotent: packages already present are not
# reinstalled, and when everything is there it prints nothing and exits 0.
#
#   ./install-deps.sh          build + test dependencies (apt) and Prism (npm, for tests)
#   ./install-deps.sh --build  only what `./configure && make` needs
#
# Leaves the host alone: packages already installed are never touched (an installed Postfix
# keeps its debconf answers and its files: the install-time answers are preseeded only when
# Postfix itself is being installed), services it installs are not started or enabled, and
# its logs are temporary files removed before it exits.
#
# Diagnostics: apt/npm errors are shown with the failing command (the last lines of their
# log); exit status is non-zero when anything could not be installed.
set -eu
status=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stripe-milter-deps.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

here=$(cd "$(dirname "$0")" && pwd)
build_pkgs="build-essential autoconf automake pkg-config libmilter-dev libcurl4-openssl-dev
 libjansson-dev libhiredis-dev libmicrohttpd-dev libssl-dev check clang libclang-rt-14-dev libtsan2"
test_pkgs="redis-server redis-sentinel redis-tools miltertest postfix swaks python3
 valgrind dovecot-sieve procmail groff-base mandoc curl procps iproute2 prometheus gnuplot-nox
 debhelper lintian debootstrap systemd-container"
test_pkgs="$test_pkgs stunnel4"	# Redis over TLS (tests/e2e/test_redis_tls.py, bench_redis_tls.py)
test_pkgs="$test_pkgs nginx"	# the TLS proxy example (tests/e2e/test_nginx_proxy.py)

want="$build_pkgs"
[ "${1:-}" = "--build" ] || want="$want $test_pkgs"

# Node.js and npm may come from Debian or from NodeSource (whose nodejs conflicts with
# Debian's npm package): ask for them only when the commands are absent.
if [ "${1:-}" != "--build" ] && ! command -v npm >/dev/null 2>&1; then
	want="$want nodejs npm"
fi

# Keeps a service this script installed from starting at boot (the tests start their own
# servers on private ports): systemctl when there is one (it edits the unit links with or
# without a running systemd), else deb-systemd-helper (the offline tool packages use), and
# update-rc.d for the System V links.
disable_at_boot() {
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --quiet "$1.service" >/dev/null 2>&1 || true
	elif command -v deb-systemd-helper >/dev/null 2>&1; then
		DPKG_MAINTSCRIPT_PACKAGE=install-deps deb-systemd-helper disable "$1.service" >/dev/null 2>&1 || true
	fi
	if [ -e "/etc/init.d/$1" ] && command -v update-rc.d >/dev/null 2>&1; then
		update-rc.d "$1" disable >/dev/null 2>&1 || true
	fi
}

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps.sh: missing packages:$missing (run as root)" >&2
		exit 1
	fi
	echo "install-deps.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# postfix asks questions at install time; answer them so no prompt appears. Only when
	# it is being installed now: an installed Postfix's answers are the administrator's
	# (the next dpkg-reconfigure would apply ours).
	case " $missing " in
	*" postfix "*)
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		echo "postfix postfix/mailname string localhost" | debconf-set-selections
		;;
	esac
	apt-get update -qq >/dev/null || { echo "install-deps.sh: apt-get update failed" >&2; exit 1; }
	# Never let package scripts start daemons (redis, postfix) on this machine:
	# the tests start their own on private ports.
	rc_policy=/usr/sbin/policy-rc.d
	made_policy=0
	if [ ! -e "$rc_policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$rc_policy"; chmod 755 "$rc_policy"; made_policy=1
	fi
	apt-get install -y -qq --no-install-recommends $missing >"$tmp/apt.log" 2>&1 || {
		[ $made_policy -eq 1 ] && rm -f "$rc_policy"
		echo "install-deps.sh: apt-get install failed:" >&2
		tail -20 "$tmp/apt.log" >&2
		exit 1
	}
	[ $made_policy -eq 1 ] && rm -f "$rc_policy"
	for p in $missing; do
		case $p in
		redis-server|redis-sentinel|postfix|nginx) disable_at_boot "$p" ;;
		dovecot-sieve) disable_at_boot dovecot ;;
		esac
	done
fi

[ "${1:-}" = "--build" ] && exit 0

# Prism validates the Stripe client's requests against Stripe's OpenAPI spec (tests only).
# tests/prism/package.json + package-lock.json pin the whole set (prism-cli 5.14.2 with the
# prism-http, prism-http-server and faker versions that run on Debian 12's Node 18.20 and on
# Node 20; unpinned, prism-http-server floats to releases that need Node 24). `npm ci`
# installs exactly the lockfile and never rewrites the tracked files; it runs again only when
# the lockfile changed since the last install (stamp in node_modules).
prism_dir="$here/tests/prism"
prism_stamp="$prism_dir/node_modules/.stripe-milter-lock"
if [ ! -x "$prism_dir/node_modules/.bin/prism" ] ||
   ! cmp -s "$prism_dir/package-lock.json" "$prism_stamp"; then
	echo "install-deps.sh: installing Prism into tests/prism (npm ci, from package-lock.json)"
	if (cd "$prism_dir" && npm ci --no-audit --no-fund --loglevel=error >"$tmp/npm.log" 2>&1) &&
	   cp "$prism_dir/package-lock.json" "$prism_stamp"; then
		:
	else
		echo "install-deps.sh: npm ci failed (the Prism tests will skip, and fail under CI=true):" >&2
		tail -20 "$tmp/npm.log" >&2
		status=1
	fi
fi

# A private Sendmail for tests/e2e/test_sendmail.py. sendmail-bin conflicts with postfix, so
# the packages are only downloaded and unpacked (never installed) into a cache folder; nothing
# of the system changes. Failure here only makes that test skip.
sm_cache=/var/cache/stripe-milter-tests/sendmail
if [ ! -x "$sm_cache/usr/libexec/sendmail/sendmail" ] && [ "$(id -u)" -eq 0 ]; then
	sm_log=$tmp/sendmail.log
	sm_tmp="$sm_cache.tmp.$$"
	if rm -rf "$sm_tmp" && mkdir -p "$sm_tmp/debs" && cd "$sm_tmp/debs" &&
	   { apt-get download -q sendmail-bin sendmail-base sendmail-cf >"$sm_log" 2>&1 ||
	     { apt-get update -qq >>"$sm_log" 2>&1 &&
	       apt-get download -q sendmail-bin sendmail-base sendmail-cf >>"$sm_log" 2>&1; }; } &&
	   { sm_ok=1; for d in ./*.deb; do dpkg-deb -x "$d" "$sm_tmp/root" || sm_ok=0; done
	     [ "$sm_ok" = 1 ]; } &&
	   [ -x "$sm_tmp/root/usr/libexec/sendmail/sendmail" ] &&
	   rm -rf "$sm_cache" && mv "$sm_tmp/root" "$sm_cache"; then
		echo "install-deps.sh: private sendmail unpacked into $sm_cache (for tests only)"
	else
		echo "install-deps.sh: could not fetch sendmail (tests/e2e/test_sendmail.py will be skipped):" >&2
		tail -20 "$sm_log" >&2
	fi
	cd "$here"
	rm -rf "$sm_tmp"
fi
exit $status
