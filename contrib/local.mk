# contrib/local.mk - for operators: Grafana dashboard, Prometheus alert rules and their tests.
contribdir = $(pkgdatadir)/contrib
dist_contrib_DATA = contrib/grafana/stripe-milter.json contrib/prometheus/stripe-milter.rules.yml \
	contrib/prometheus/stripe-milter.rules.test.yml
