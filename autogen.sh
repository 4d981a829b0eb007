#!/bin/sh
# autogen.sh - generate ./configure and the Makefile.in files from a git checkout.
set -e
cd "$(dirname "$0")"
autoreconf --install --force --warnings=all,no-portability
