# fleet/local.mk - what the instances sharing one Redis do together (libfleet.a).
noinst_LIBRARIES += fleet/libfleet.a
fleet_libfleet_a_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS) $(CRYPTO_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
fleet_libfleet_a_SOURCES = fleet/fleet.h fleet/fl_int.h fleet/fl_core.c fleet/fl_gate.c \
	fleet/fl_inval.c fleet/fl_poll.c fleet/fl_webhook.c fleet/fl_webhook.h fleet/fl_sig.c fleet/fl_sig.h
