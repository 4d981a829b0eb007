# tests/standin/local.mk
