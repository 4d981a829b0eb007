# tests/stripe/local.mk
