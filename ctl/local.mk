# ctl/local.mk - stripe-milterctl, the ops tool: it links the daemon's modules (libmf.a) to
# build the same runtime from the same config file.
bin_PROGRAMS += ctl/stripe-milterctl
ctl_stripe_milterctl_CFLAGS = $(milter_libmf_a_CFLAGS)
ctl_stripe_milterctl_SOURCES = ctl/ctl_main.c ctl/ctl_cmds.c ctl/ctl_stats.c ctl/ctl.h
ctl_stripe_milterctl_LDADD = $(milter_stripe_milter_LDADD)
