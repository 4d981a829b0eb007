#!/usr/bin/env python3
"""test_contract_audit.py - the contract audit of the whole `make check` (runs last).

Every stand-in this run started recorded each Stripe request it received in $STANDIN_AUDIT_DIR
(tests/standin/local.mk empties it first and makes this test's log wait for every other test's).
contract_audit.py checks each against Stripe's published contract (tests/data/stripe: the
OpenAPI spec, the Search Query Language) and prints one TAP case per request shape; a request
outside the contract fails it, listed with the tests that sent it. Run alone (no other test
recorded anything in this run) it skips."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import smtest  # noqa: E402
import contract_audit  # noqa: E402

d = os.environ.get("STANDIN_AUDIT_DIR")
if not d or not os.path.isdir(d) or not any(n.endswith(".jsonl") for n in os.listdir(d)):
    smtest.TAP().skip_all("no stand-in requests recorded in this run (STANDIN_AUDIT_DIR=%s): "
                          "run it with the rest of make check" % d)
sys.exit(1 if contract_audit.audit(d) else 0)
