# milter/local.mk - the daemon (stripe-milter); its ops tool is in ctl/.
noinst_LIBRARIES += milter/libmf.a
milter_libmf_a_CFLAGS = $(AM_CFLAGS) $(MILTER_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS) $(HIREDIS_CFLAGS)
milter_libmf_a_SOURCES = milter/mf_conf.c milter/mf_conf.h milter/mf_runtime.c milter/mf_runtime.h \
	milter/mf_milter.c milter/mf_milter.h milter/mf_stats.c milter/mf_stats.h \
	milter/mf_results.c milter/mf_results.h milter/mf_fleet.c milter/mf_fleet.h \
	milter/mf_coord.c milter/mf_coord.h milter/mf_accounts.c milter/mf_accounts.h \
	milter/mf_textfile.c milter/mf_textfile.h

sbin_PROGRAMS += milter/stripe-milter
milter_stripe_milter_CFLAGS = $(milter_libmf_a_CFLAGS)
milter_stripe_milter_SOURCES = milter/main.c
milter_stripe_milter_LDADD = milter/libmf.a fleet/libfleet.a lookup/liblookup.a mail/libmail.a stripe/libstripe.a cache/libcache.a \
	redis/librds.a common/libsmcommon.a \
	$(MILTER_LIBS) $(CURL_LIBS) $(JANSSON_LIBS) $(HIREDIS_LIBS) $(MHD_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)
include $(srcdir)/milter/units.mk

