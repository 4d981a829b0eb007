#!/usr/bin/env python3
"""test_mload.py - the benchmark tools are right before their figures are believed:
tests/bench/mload (the milter-protocol load generator) against the do-nothing milters and
against stripe-milter.

* null_milter -m same: every message gets its forged headers deleted once and eight headers
  added, counted by mload from the actions it read; -m one: exactly one header.
* an expected header a milter does not add makes every message "bad" and mload exit 1
  (the check can fail);
* several connections and messages per connection: every message is counted once;
* stripe-milter with the Stripe stand-in: X-Stripe-Lookup is found, then cache=hit, on
  every message; the tally of its values matches.
* -H: every connection is open (negotiated) when mload says HOLDING.
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", os.path.join(HERE, "..", "..")),
                                "tests", "lib"))
sys.path.insert(0, HERE)
import benchlib as bl  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402


def main():
    t = smtest.TAP()
    try:
        bl.tool("mload")
        bl.tool("null_milter")
    except smtest.Unavailable as e:
        if os.environ.get("CI") == "true":
            t.ok(False, "benchmark tools built", str(e))
            return t.done()
        smtest.TAP.skip_all(str(e))
    same, one = bl.NullMilter("same"), bl.NullMilter("one")
    try:
        r = bl.mload(same.socket, 1, 50, forged=2, expect=[bl.LOOKUP + "found"],
                     tally="X-Stripe-Lookup")
        t.is_((r["msgs"], r["bad"], r["errors"]), (50, 0, 0), "same work: 50 messages, none bad")
        t.is_((r["adds"], r["deletes"]), (400, 100), "eight headers added, both forged ones deleted")
        t.is_(r["vals"], {"found": 50}, "tally of the added header's values")
        r = bl.mload(one.socket, 1, 20, forged=1, expect=["X-Null-Milter=seen"])
        t.is_((r["adds"], r["deletes"], r["bad"]), (20, 0, 0), "one header: one add per message")
        p = subprocess.run(bl.mload_argv(one.socket, 1, 10, expect=["X-Stripe-Lookup"]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = [ln for ln in p.stdout.decode().splitlines() if ln.startswith("RESULT")]
        t.ok(p.returncode == 1 and line and " bad=10 " in line[0],
             "a header the milter does not add: every message bad, exit status 1",
             "rc %d, %r" % (p.returncode, line))
        r = bl.mload(same.socket, 7, 333, per_conn=10, forged=0)
        t.is_((r["msgs"], r["errors"], r["adds"]), (333, 0, 333 * 8),
              "7 connections, 10 messages each before QUIT: each message counted once")
        held = []
        for kind, f in bl.mload_stream(one.socket, 30, 30, hold_s=1, forged=0):
            if kind == "HOLDING":
                held.append(bl.proc_sample(one.pid)["fds"])
            elif kind == "RESULT":
                held.append(f)
        t.ok(len(held) == 2 and held[0] >= 30 and held[1]["msgs"] == 30,
             "HOLDING: 30 connections open at once, then 30 messages", repr(held))
    finally:
        same.stop()
        one.stop()
    try:
        standin = smtest.Standin()
    except smtest.Unavailable as e:
        t.skip("stripe-milter under mload", str(e))
        return t.done()
    m = None
    try:
        bl.seed_customers(standin, "bench%d@customer.test", 3)
        m = mta.Milter(standin, None, options={"LogLevel": "info"})
        r = bl.mload(m.socket, 2, 6, distinct=3, forged=1, expect=[bl.LOOKUP + "found"],
                     tally="X-Stripe-Lookup")
        t.is_((r["msgs"], r["bad"], r["errors"], r["deletes"], r["adds"]), (6, 0, 0, 6, 48),
              "stripe-milter: every message found, the forged header deleted, eight headers "
              "added (as many as null_milter -m same adds)")
        r = bl.mload(m.socket, 1, 9, distinct=3, expect=[bl.LOOKUP + "found; cache=hit",
                                                           "X-Stripe-Customer-Id=cus_"])
        t.is_((r["msgs"], r["bad"]), (9, 0), "then every message a cache hit with its customer id")
        errs = [ln for ln in m.log().splitlines() if re.search(r"Z (error|crit|alert|emerg)", ln)]
        t.ok(not errs, "nothing logged as an error", "\n".join(errs[:5]))
    finally:
        if m is not None:
            m.stop()
        standin.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
