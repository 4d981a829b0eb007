# conf/local.mk - sample config, MTA snippets, systemd unit, rule examples, man pages.
dist_man_MANS += conf/stripe-milter.8 conf/stripe-milter.conf.5 conf/stripe-milterctl.8
examplesdir = $(pkgdatadir)/examples
dist_examples_DATA = conf/stripe-milter.conf conf/postfix-main.cf conf/header_checks \
	conf/milter_header_checks conf/sendmail.mc conf/stripe.sieve conf/stripe.procmailrc \
	conf/stripe-milter.accounts

# The unit, with the configured paths (sbindir, sysconfdir as make expands them).
conf/stripe-milter.service: $(srcdir)/conf/stripe-milter.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && sed -e 's|@sbindir[@]|$(sbindir)|g' \
	    -e 's|@sysconfdir[@]|$(sysconfdir)|g' $(srcdir)/conf/stripe-milter.service.in > $@.tmp && mv $@.tmp $@
EXTRA_DIST += conf/stripe-milter.service.in
CLEANFILES += conf/stripe-milter.service
if INSTALL_UNIT
systemdsystemunit_DATA = conf/stripe-milter.service
else
noinst_DATA = conf/stripe-milter.service
endif
# Redis over TLS: the stunnel4 client tunnel and its unit (README "Redis over TLS").
dist_examples_DATA += conf/stunnel-redis.conf conf/stunnel-redis.service
