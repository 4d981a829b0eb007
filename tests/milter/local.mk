# tests/milter/local.mk - tests of the daemon's modules and of the milter protocol.
include $(srcdir)/tests/milter/units.mk
