# tests/fuzz/local.mk - the libFuzzer harnesses live here but are registered by the tests of
# their module (tests/stripe/local.mk, tests/milter/units.mk, tests/mail/local.mk); build with
#   CC=clang ./configure --enable-fuzzing && make
# and run e.g. tests/fuzz/fuzz_mail_addr -max_total_time=60
