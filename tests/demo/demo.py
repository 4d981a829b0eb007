#!/usr/bin/env python3
"""demo.py - the README's first command: stripe-milter on a working demo setup.

Starts a private redis-server, the Stripe stand-in seeded with tests/demo/seed.json, the
built stripe-milter and a private Postfix on loopback; sends four messages with swaks (a
paying customer, a past-due one, a past-due one whose Stripe name imitates the header
grammar, and a message carrying forged X-Stripe- headers), prints the headers each delivered
message got, and stops everything it started.

Needs root (Postfix) and the packages from ./install-deps.sh. Exit status 0 when all four
messages arrived with the expected lookup result and subscription status.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
os.environ.setdefault("top_srcdir", os.path.abspath(os.path.join(HERE, "..", "..")))
os.environ.setdefault("top_builddir", os.environ["top_srcdir"])

import mta  # noqa: E402
import smtest  # noqa: E402

MESSAGES = [
    ("A paying customer writes to support", "jenny@customer.test",
     ["From: Jenny Rosen <jenny@customer.test>", "Subject: Question about my invoice"],
     r"^v=2; found;", "active"),
    ("A past-due customer writes to support", "pat@customer.test",
     ["From: Pat Late <pat@customer.test>", "Subject: Why is my account locked?"],
     r"^v=2; found;", "past_due"),
    ("A past-due customer named '\"; delinquent=no; status=active' in Stripe", "max@customer.test",
     ["From: Max <max@customer.test>", "Subject: Still active, right?"],
     r"^v=2; found;", "past_due"),
    ("A stranger forges our headers", "mallory@attacker.test",
     ["From: Mallory <mallory@attacker.test>", "Subject: Please prioritise me",
      "X-Stripe-Subscription-Status: active", "X-Stripe-Lookup: v=2; found; cache=hit"],
     r"^v=2; not-found;", None),
]


def main():
    print("== starting redis-server, the Stripe stand-in, stripe-milter and Postfix on loopback")
    try:
        redis = smtest.Redis()
        standin = smtest.Standin(args=["--seed", os.path.join(HERE, "seed.json")])
        milter = mta.Milter(standin, redis, options={"LogLevel": "info"})
        postfix = mta.Postfix(milter.mta_socket)
    except smtest.Unavailable as e:
        print("demo cannot run here: %s" % e)
        return 1
    ok = True
    try:
        for title, sender, hdrs, want, status in MESSAGES:
            before = len(postfix.mails("support"))
            rc, out = postfix.send(sender, "support@example.test", headers=hdrs,
                                   body="Hello, this is a demo message.\n")
            print("\n== %s (MAIL FROM:<%s>)" % (title, sender))
            if rc != 0:
                print("swaks failed:\n" + out)
                ok = False
                continue
            msgs = postfix.wait_mail("support", before + 1)
            if len(msgs) <= before:
                print("message not delivered; Postfix log:\n" + postfix.log()[-1500:])
                ok = False
                continue
            print("   sent with:     " + "\n                  ".join(hdrs))
            print("   delivered with:")
            for field in mta.stripe_fields(msgs[-1]):
                print("      " + field.rstrip("\n").replace("\n", "\n      "))
            got = dict((k.lower(), v) for k, v in mta.headers(msgs[-1]))
            lookup = got.get("x-stripe-lookup", "")
            if not re.search(want, lookup):
                print("   UNEXPECTED X-Stripe-Lookup: %r" % lookup)
                ok = False
            if got.get("x-stripe-subscription-status") != status:
                print("   UNEXPECTED X-Stripe-Subscription-Status: %r" % got.get("x-stripe-subscription-status"))
                ok = False
        print("\n== stripe-milter log")
        for line in milter.log().splitlines()[-4:]:
            print("   " + line)
    finally:
        postfix.stop()
        milter.stop()
        standin.stop()
        redis.stop()
    print("\n== demo %s; everything it started is stopped" % ("passed" if ok else "FAILED"))
    return 0 if ok else 1



if __name__ == "__main__":
    sys.exit(main())
