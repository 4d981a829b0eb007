#!/bin/sh
# mkroot.sh KIND DIR - a Debian 12 root for tests/pkg/test_systemd.py, made once per machine.
#
#   KIND postfix:  systemd, dbus, Postfix ("Internet Site", Debian's default answer), redis-server,
#                  swaks, and the package's run-time dependencies;
#   KIND sendmail: systemd, dbus, Debian's sendmail, and the same dependencies (no Postfix).
#
# The root is built in DIR.tmp and renamed to DIR only when debootstrap and the checks below
# succeeded, so a half-built root is never used; an existing DIR is left as it is. The tests
# never write into DIR: they boot it with a tmpfs overlay (systemd-nspawn --volatile=overlay).
# The mirror is the first Debian URI in the host's apt sources (deb.debian.org otherwise).
# Downloaded packages are kept in DIR/../debs (shared by both kinds).
# Diagnostics: debootstrap's log is DIR.log; exit status non-zero when the root is not usable.
set -eu
kind=$1
dir=$2
[ -d "$dir" ] && exit 0
mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p; s/^deb  *\(http[^ ]*\/debian\) .*/\1/p' \
	/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
deps="adduser,libmilter1.0.1,libcurl4,libjansson4,libhiredis0.14,libmicrohttpd12,libssl3"
base="systemd,systemd-sysv,dbus,libpam-systemd,ca-certificates"
case $kind in
postfix) extra="postfix,redis-server,swaks" ;;
sendmail) extra="sendmail-bin,sendmail-cf,m4,make" ;;
*) echo "mkroot.sh: unknown kind $kind" >&2; exit 2 ;;
esac
cache=$(dirname "$dir")/debs
mkdir -p "$cache"
rm -rf "$dir.tmp"
if ! DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --cache-dir="$cache" \
	--include="$base,$deps,$extra" bookworm "$dir.tmp" "$mirror" >"$dir.log" 2>&1; then
	echo "mkroot.sh: debootstrap failed, see $dir.log:" >&2
	tail -15 "$dir.log" >&2
	exit 1
fi
echo "stripe-milter-test-$kind" >"$dir.tmp/etc/hostname"
# No root password prompt and no getty: the tests drive the root from outside.
chroot "$dir.tmp" systemctl mask console-getty.service getty@tty1.service >/dev/null 2>&1 || true
mv "$dir.tmp" "$dir"
