# milter/units.mk - pure modules of the daemon (header contract, skip-rule lists).
milter_libmf_a_SOURCES += milter/mf_hdr.c milter/mf_hdr.h \
	milter/mf_policy.c milter/mf_policy.h
