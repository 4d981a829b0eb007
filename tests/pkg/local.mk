# tests/pkg/local.mk - the Debian package and the README's "Install" section. Not in `make
# check`: they install a package. `make check-package` (tests/pkg/test_deb.py) builds it and runs
# the Install section on this machine (a fast pre-check: systemd's part emulated);
# `make check-systemd` (tests/pkg/test_systemd.py) installs it into a Debian 12 root booted with
# systemd as PID 1 (tests/pkg/mkroot.sh makes the root once per machine). .ci/run runs both.
EXTRA_DIST += tests/pkg/test_deb.py tests/pkg/test_systemd.py tests/pkg/mkroot.sh
check-package: all
	$(MAKE) $(AM_MAKEFLAGS) check TESTS=tests/pkg/test_deb.py
check-systemd: all
	$(MAKE) $(AM_MAKEFLAGS) check TESTS=tests/pkg/test_systemd.py
.PHONY: check-package check-systemd
