#!/usr/bin/env python3
"""test_examples.py - the examples users copy from conf/, exercised for real.

* conf/stripe.sieve run with sieve-test on messages Postfix delivered through the milter:
  the past-due customer's mail is filed into Billing (flagged $PaymentFailed: its open
  invoice's payment failed twice, X-Stripe-Invoice), the paying customer's flagged, a
  stranger's left alone (forged headers did not fool it).
* conf/header_checks with milter_default_action = accept and the milter down: forged
  X-Stripe- headers are dropped; without the rule they get through (the reason it ships).
  With the milter up the rule leaves the milter's own headers alone.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

CONF = os.path.join(smtest.srcdir(), "conf")
SEED = os.path.join(smtest.srcdir(), "tests", "demo", "seed.json")
FORGED = ["X-Stripe-Subscription-Status: active", "X-Stripe-Lookup: found; cache=hit"]


def sieve(tmp, msg):
    """sieve-test's report for a message under conf/stripe.sieve."""
    script = os.path.join(tmp, "stripe.sieve")
    if not os.path.exists(script):
        shutil.copy(os.path.join(CONF, "stripe.sieve"), script)
    path = os.path.join(tmp, "msg.eml")
    with open(path, "wb") as f:
        f.write(msg)
    r = subprocess.run(["sieve-test", "-o", "mail_uid=nobody", "-o", "mail_gid=nogroup",
                        script, path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def stripe_names(msg):
    return [k for k, _ in mta.headers(msg) if k.lower().startswith("x-stripe-")]


def main():
    t = smtest.TAP()
    try:
        redis = smtest.Redis()
        s = smtest.Standin(args=["--seed", SEED])
        m = mta.Milter(s, redis)
        hc = open(os.path.join(CONF, "header_checks")).read()
        p = mta.Postfix(m.mta_socket, header_checks=hc)
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    tmp = smtest.tempdir("sm-sieve-")
    os.chmod(tmp, 0o777)
    try:
        def deliver(sender, headers=()):
            n = len(p.mails("support"))
            rc, out = p.send(sender, "support@example.test",
                             headers=["From: <%s>" % sender] + list(headers))
            got = p.wait_mail("support", n + 1)
            if rc != 0 or len(got) <= n:
                raise AssertionError("not delivered: %s\n%s" % (out[-800:], p.log()[-1500:]))
            return got[-1]

        if shutil.which("sieve-test"):
            msg = deliver("pat@customer.test")
            rc, out = sieve(tmp, msg)
            t.ok(rc == 0 and "store message in folder: Billing" in out,
                 "sieve: past-due customer filed into Billing", out)
            # the invoice rule: an open invoice with failed payment attempts (issue #11)
            t.ok(rc == 0 and "$PaymentFailed" in out and
                 any(k == "X-Stripe-Invoice" and "attempts=2" in v for k, v in mta.headers(msg)),
                 "sieve: past-due customer with a failed retry filed into Billing, flagged",
                 out + "\n" + mta.stripe_block(msg) if isinstance(msg, bytes) else out)
            rc, out = sieve(tmp, deliver("jenny@customer.test"))
            t.ok(rc == 0 and "\\flagged $Customer" in out.replace("\\\\", "\\") and "Billing" not in out,
                 "sieve: paying customer flagged", out)
            rc, out = sieve(tmp, deliver("mallory@attacker.test", FORGED))
            t.ok(rc == 0 and "flagged" not in out and "Billing" not in out,
                 "sieve: stranger with forged headers neither flagged nor filed", out)
        else:
            for name in ("past-due filed", "failed retry filed and flagged", "paying flagged",
                         "stranger untouched"):
                t.skip("sieve: " + name, "sieve-test not installed (apt-get install dovecot-sieve)")

        msg = deliver("jenny@customer.test", FORGED)
        t.is_(stripe_names(msg)[:1], ["X-Stripe-Lookup"],
              "milter up + header_checks: the milter's own headers are kept")
        t.is_(mta.headers(msg) and [v for k, v in mta.headers(msg) if k == "X-Stripe-Subscription-Status"],
              ["active"], "milter up + header_checks: one status, the milter's")

        m.stop()
        msg = deliver("mallory@attacker.test", FORGED)
        t.is_(stripe_names(msg), [], "milter down + header_checks: forged headers dropped, mail delivered")
        p.stop()
        p2 = mta.Postfix(m.mta_socket)
        try:
            n = len(p2.mails("support"))
            p2.send("mallory@attacker.test", "support@example.test",
                    headers=["From: <mallory@attacker.test>"] + FORGED)
            got = p2.wait_mail("support", n + 1)
            t.ok(len(got) > n and "X-Stripe-Subscription-Status" in stripe_names(got[-1]),
                 "milter down without the rule: the forged header gets through (why the rule ships)")
        finally:
            p2.stop()
    finally:
        p.stop()
        m.stop()
        s.stop()
        redis.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
