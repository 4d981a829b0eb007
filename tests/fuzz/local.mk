# tests/fuzz/local.mk - the libFuzzer harnesses. Most are registered by the tests of their
# module (tests/stripe/local.mk, tests/milter/units.mk, tests/mail/local.mk); the ones for
# bytes from Redis, webhooks, the events page and the config file are registered here.
# Build and run with
#   CC=clang ./configure --enable-fuzzing && make fuzz [FUZZ_SECONDS=60] [FUZZ_JOBS=2]
# which runs every harness for FUZZ_SECONDS from its kept corpus tests/fuzz/corpus/<harness>/
# (and its dictionary tests/fuzz/<harness>.dict), FUZZ_JOBS at a time; new inputs go to
# tests/fuzz/work/<harness>/ in the build tree, crashes to tests/fuzz/artifacts/ (the path is
# printed and the target fails). tests/fuzz/run.sh says more (and how the corpora are made).
FUZZ_HARNESSES = fuzz_cache_entry fuzz_fl_sig fuzz_lk_summary fuzz_mail_addr fuzz_mail_authres \
	fuzz_mail_text fuzz_mf_conf fuzz_mf_hdr fuzz_mf_policy fuzz_stripe_event fuzz_stripe_parse
FUZZ_DICTS = tests/fuzz/fuzz_cache_entry.dict tests/fuzz/fuzz_fl_sig.dict tests/fuzz/fuzz_lk_summary.dict \
	tests/fuzz/fuzz_mail_authres.dict tests/fuzz/fuzz_mf_conf.dict tests/fuzz/fuzz_mf_policy.dict \
	tests/fuzz/fuzz_stripe_event.dict tests/fuzz/fuzz_stripe_parse.dict
FUZZ_SECONDS = 60
FUZZ_JOBS = 2
EXTRA_DIST += tests/fuzz/run.sh tests/fuzz/seeds.py tests/fuzz/corpus $(FUZZ_DICTS)

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_cache_entry tests/fuzz/fuzz_fl_sig tests/fuzz/fuzz_stripe_event \
	tests/fuzz/fuzz_mf_conf
tests_fuzz_fuzz_cache_entry_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(HIREDIS_CFLAGS)
tests_fuzz_fuzz_cache_entry_SOURCES = tests/fuzz/fuzz_cache_entry.c
tests_fuzz_fuzz_cache_entry_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_cache_entry_LDADD = $(FUZZ_STRIPE_LDADD)
tests_fuzz_fuzz_fl_sig_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_fuzz_fl_sig_SOURCES = tests/fuzz/fuzz_fl_sig.c
tests_fuzz_fuzz_fl_sig_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_fl_sig_LDADD = fleet/libfleet.a $(FUZZ_STRIPE_LDADD) $(MHD_LIBS)
tests_fuzz_fuzz_stripe_event_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_fuzz_stripe_event_SOURCES = tests/fuzz/fuzz_stripe_event.c
tests_fuzz_fuzz_stripe_event_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_stripe_event_LDADD = $(FUZZ_STRIPE_LDADD)
tests_fuzz_fuzz_mf_conf_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_mf_conf_SOURCES = tests/fuzz/fuzz_mf_conf.c
tests_fuzz_fuzz_mf_conf_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_mf_conf_LDADD = milter/libmf.a $(FUZZ_STRIPE_LDADD)

fuzz: $(FUZZ_HARNESSES:%=tests/fuzz/%)
	bash $(srcdir)/tests/fuzz/run.sh run $(srcdir)/tests/fuzz tests/fuzz $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_HARNESSES)
else
fuzz:
	@echo "make fuzz: configure CC=clang --enable-fuzzing first"; exit 1
endif
.PHONY: fuzz
