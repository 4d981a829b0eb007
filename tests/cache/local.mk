# tests/cache/local.mk
