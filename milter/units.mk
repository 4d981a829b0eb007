# milter/units.mk - pure modules of the daemon (From parser, header rendering, policy).
milter_libmf_a_SOURCES += milter/mf_addr.c milter/mf_addr.h milter/mf_hdr.c milter/mf_hdr.h \
	milter/mf_policy.c milter/mf_policy.h
