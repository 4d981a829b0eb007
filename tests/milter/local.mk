# tests/milter/local.mk - tests of the daemon's modules and of the milter protocol.
include $(srcdir)/tests/milter/units.mk
TESTS += tests/milter/test_miltertest.py
EXTRA_DIST += tests/milter/test_miltertest.py tests/milter/mt_message.lua
