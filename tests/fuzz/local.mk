# tests/fuzz/local.mk - the libFuzzer harnesses live here but are registered by the tests of
# their module (tests/stripe/local.mk, tests/milter/units.mk); build with
#   CC=clang ./configure --enable-fuzzing && make
# and run e.g. tests/fuzz/fuzz_mf_addr -max_total_time=60
