#!/usr/bin/env python3
"""test_libmilter_log.py - everything libmilter and Postfix log while the suite's kinds of
message pass through stripe-milter behind a real Postfix: no line from libmilter at all, no
milter warning from Postfix.

How libmilter's lines are captured: libmilter logs with syslog(3). The daemon, logging to
stderr (-v, as every test runs it), opens syslog with LOG_PERROR, so glibc copies each
syslog(3) line of the process to stderr as "ident[pid]: text"; the daemon's own lines carry a
timestamp instead. tests/lib/mta.py collects such lines from every daemon a test stops and
mta.assert_clean() fails on any of them, so the whole suite checks this; this test sends one
message of each kind and says how many lines it saw.

It can fail: before the header callback answered as negotiated (SMFIP_NR_HDR, milter/
mf_milter.c), libmilter logged "milter claimed not to reply in state 7 but did anyway 0" for
every header of every message, and this test reported them.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

SEED = os.path.join(smtest.srcdir(), "tests", "demo", "seed.json")


def main():
    t = smtest.TAP()
    # the detector itself: a libmilter line as glibc copies it, and one of the daemon's own
    sample = ("stripe-milter[42]: stripe-milter: milter claimed not to reply in state 7 but did "
              "anyway 0\n2026-01-01T00:00:00.000Z info: NOQUEUE: sender=j***@x result=found\n")
    t.is_(len(mta.libmilter_lines(sample)), 1, "the detector finds libmilter's line and only it")
    try:
        redis = smtest.Redis()
        standin = smtest.Standin(args=["--seed", SEED])
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    milter = postfix = None
    try:
        milter = mta.Milter(standin, redis)
        postfix = mta.Postfix(milter.mta_socket)
        many = ["X-Filler-%d: value %d" % (i, i) for i in range(60)]
        messages = [
            ("jenny@customer.test", ["Subject: a paying customer"]),
            ("pat@customer.test", ["Subject: a past-due customer"]),
            ("nobody@unknown.test", ["Subject: not a customer"]),
            ("jenny@customer.test", ["X-Stripe-Customer-Id: cus_forged", "x-stripe-lookup: forged",
                                     "X-STRIPE-Subscription-Status: active"]),
            ("pat@customer.test", many),
            ("yuki@customer.test", ["From: Someone <jenny@customer.test>",
                                    "Authentication-Results: mx.example.test; dmarc=pass"]),
            ("mailer-daemon@example.net", ["From: MAILER-DAEMON <postmaster@example.net>",
                                           "Subject: Undelivered Mail Returned to Sender"]),
        ]
        for i, (sender, headers) in enumerate(messages):
            h = list(headers)
            if not any(x.lower().startswith("from:") for x in h):
                h.insert(0, "From: <%s>" % sender)
            rc, out = postfix.send(sender, "support@example.test", headers=h)
            if rc != 0:
                t.ok(False, "message %d sent" % i, out[-1000:])
        got = postfix.wait_mail("support", len(messages))
        t.is_(len(got), len(messages), "every message delivered")
        lookups = [h for m in got for (n, h) in mta.headers(m) if n.lower() == "x-stripe-lookup"]
        t.ok(any(v.startswith("v=2; found;") for v in lookups), "customers were looked up", str(lookups))
    finally:
        if postfix:
            postfix.stop()
        if milter:
            milter.stop()
        standin.stop()
        redis.stop()
    lines = mta.libmilter_lines(milter.log()) if milter else ["(no milter)"]
    t.ok(not lines, "libmilter logged nothing for %d messages (%d lines)" % (len(messages), len(lines)),
         "\n".join(lines[:10]))
    pf = postfix.log() if postfix else ""
    warn = [l for l in pf.splitlines() if re.search(r"(warning|error|fatal):.*milter", l, re.I)]
    t.ok(not warn, "Postfix logged no milter warning or error", "\n".join(warn[:10]))
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
