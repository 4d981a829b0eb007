# tests/milter/units.mk - unit tests of mf_addr, mf_hdr, mf_policy.
