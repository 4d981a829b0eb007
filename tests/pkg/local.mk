# tests/pkg/local.mk - the Debian package and the README's Install section, installed on this
# machine and purged again (tests/pkg/test_deb.py). Not in `make check`: it installs a
# package; `make check-package` (and .ci/run) runs it.
EXTRA_DIST += tests/pkg/test_deb.py
check-package: all
	$(MAKE) $(AM_MAKEFLAGS) check TESTS=tests/pkg/test_deb.py
.PHONY: check-package
