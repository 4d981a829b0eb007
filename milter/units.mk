# milter/units.mk - pure modules of the daemon (From parser, header rendering, policy).
