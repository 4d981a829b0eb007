# tests/mail/local.mk - unit tests and libFuzzer harnesses of mail/.
if HAVE_CHECK
check_PROGRAMS += tests/mail/test_addr tests/mail/test_authres tests/mail/test_text
TESTS += tests/mail/test_addr tests/mail/test_authres tests/mail/test_text
tests_mail_test_addr_CFLAGS = $(TH_CFLAGS)
tests_mail_test_addr_SOURCES = tests/mail/test_addr.c
tests_mail_test_addr_LDADD = mail/libmail.a $(TH_LDADD)
tests_mail_test_authres_CFLAGS = $(TH_CFLAGS)
tests_mail_test_authres_SOURCES = tests/mail/test_authres.c
tests_mail_test_authres_LDADD = mail/libmail.a $(TH_LDADD)
tests_mail_test_text_CFLAGS = $(TH_CFLAGS)
tests_mail_test_text_SOURCES = tests/mail/test_text.c
tests_mail_test_text_LDADD = mail/libmail.a $(TH_LDADD)
endif

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_mail_addr tests/fuzz/fuzz_mail_authres tests/fuzz/fuzz_mail_text
tests_fuzz_fuzz_mail_addr_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_mail_addr_SOURCES = tests/fuzz/fuzz_mail_addr.c
tests_fuzz_fuzz_mail_addr_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_mail_addr_LDADD = mail/libmail.a
tests_fuzz_fuzz_mail_authres_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_mail_authres_SOURCES = tests/fuzz/fuzz_mail_authres.c
tests_fuzz_fuzz_mail_authres_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_mail_authres_LDADD = mail/libmail.a
tests_fuzz_fuzz_mail_text_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_mail_text_SOURCES = tests/fuzz/fuzz_mail_text.c
tests_fuzz_fuzz_mail_text_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_mail_text_LDADD = mail/libmail.a
endif
