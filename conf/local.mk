# conf/local.mk - sample config, MTA snippets, systemd unit, rule examples, man pages.
dist_man_MANS += conf/stripe-milter.8 conf/stripe-milter.conf.5 conf/stripe-milterctl.8
examplesdir = $(pkgdatadir)/examples
dist_examples_DATA = conf/stripe-milter.conf conf/postfix-main.cf conf/header_checks \
	conf/milter_header_checks conf/sendmail.mc conf/stripe-milter.service conf/stripe.sieve
