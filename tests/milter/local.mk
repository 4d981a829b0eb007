# tests/milter/local.mk
