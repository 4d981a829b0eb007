#!/usr/bin/env python3
"""test_postfix.py - stripe-milter behind a real Postfix on loopback, mail sent with swaks.

Real parts only: a private redis-server, the Stripe stand-in, the built daemon, a private
Postfix (its own config, queue and Maildirs; chroot n; virtual delivery). Checks the
delivered files: the header contract byte for byte, forged headers gone, skip rules, every
failure of Stripe and Redis still delivering mail within the lookup deadline, stale data,
reload, the header_checks defence in depth with the milter down, and the shipped
milter_header_checks routing example. Issue 18: a customer stored as Carol.Case@Example.COM is
found for mail from carol.case@example.com after a run of unknown senders (none of which cost
a 4xx at Stripe), a Checkout guest gets v=2; guest and X-Stripe-Checkout, and a key without
rak_checkout_session_read gets missing=guest and everything else.
"""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import hdrv2  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

DAY = 86400
NOW = int(time.time())


def ymd(t):
    return time.strftime("%Y-%m-%d", time.gmtime(t))


STATE = {
    "products": [{"id": "prod_pro", "name": "Pro"}, {"id": "prod_team", "name": "Team"},
                 {"id": "prod_long", "name": "Plan \"" + "x" * 600 + "\"\n"}],
    "customers": [
        {"id": "cus_jenny", "email": "jenny@customer.test", "name": "Jenny Rosen",
         "created": 1709251200, "balance": 0, "currency": "usd", "delinquent": False},
        {"id": "cus_pat", "email": "pat@customer.test", "name": "Pat Late",
         "created": 1704067200, "balance": 4900, "currency": "usd", "delinquent": True},
        # Stripe data is untrusted: a name that tries to inject a header, with NUL and
        # non-ASCII, and a plan name of 600 characters.
        {"id": "cus_eve", "email": "eve@customer.test",
         "name": "Eve\r\nX-Stripe-Subscription-Status: active\u0000 \u00c9v\u00e9\u202e",
         "created": 1704067200, "balance": 0, "currency": "jpy"},
    ],
    "subscriptions": [
        {"id": "sub_eve", "customer": "cus_eve", "status": "incomplete", "created": NOW - 30 * DAY,
         "items": [{"price": {"id": "price_eve", "unit_amount": 1200, "currency": "jpy",
                              "recurring": {"interval": "month", "interval_count": 3},
                              "product": "prod_long"},
                    "quantity": 1, "current_period_end": NOW + 3 * DAY}]},
        {"id": "sub_jenny", "customer": "cus_jenny", "status": "active", "created": NOW - 90 * DAY,
         "items": [{"price": {"id": "price_pro", "unit_amount": 4900, "currency": "usd",
                              "recurring": {"interval": "month", "interval_count": 1},
                              "product": "prod_pro"},
                    "quantity": 1, "current_period_end": NOW + 10 * DAY}]},
        {"id": "sub_pat", "customer": "cus_pat", "status": "past_due", "created": NOW - 60 * DAY,
         "items": [{"price": {"id": "price_team", "unit_amount": 9900, "currency": "usd",
                              "recurring": {"interval": "month", "interval_count": 1},
                              "product": "prod_team"},
                    "quantity": 1, "current_period_end": NOW + 3 * DAY}]},
    ],
    "charges": [
        {"customer": "cus_jenny", "amount": 4900, "currency": "usd", "status": "succeeded",
         "paid": True, "created": NOW - 40 * DAY},
        {"customer": "cus_jenny", "amount": 4900, "currency": "usd", "status": "succeeded",
         "paid": True, "created": NOW - 10 * DAY},
        {"customer": "cus_pat", "amount": 9900, "currency": "usd", "status": "failed",
         "paid": False, "failure_code": "card_declined", "created": NOW - 2 * DAY},
    ],
}

JENNY_HEADERS = (
    "X-Stripe-Lookup: v=2; found; cache=miss; mode=test\n"
    "X-Stripe-Customer-Id: cus_jenny\n"
    "X-Stripe-Customer: created=2024-03-01; delinquent=no; balance=0.00 USD;\n"
    "\tmatches=1\n"
    "X-Stripe-Name: Jenny Rosen\n"
    "X-Stripe-Subscription-Status: active\n"
    "X-Stripe-Subscription: amount=49.00 USD/month; status=active;\n"
    "\tperiod_end=%s; cancel_at_period_end=no\n"
    "X-Stripe-Plan: Pro\n"
    "X-Stripe-Charges: window=90d; count=2; succeeded=2; failed=0; refunded=0;\n"
    "\tdisputed=0; total=98.00 USD; last=%s succeeded\n"
) % (ymd(NOW + 10 * DAY), ymd(NOW - 10 * DAY))






class Env:
    def __init__(self):
        self.redis = smtest.Redis()
        self.standin = smtest.Standin()
        self.standin.state(STATE)
        self.milter = mta.Milter(self.standin, self.redis, options={"LookupTimeout": "1500"})
        self.postfix = mta.Postfix(
            self.milter.mta_socket, recipients=("support", "billing", "bob", "sales"),
            milter_header_checks=open(os.path.join(smtest.srcdir(), "conf",
                                                   "milter_header_checks")).read())
        self.sent = {}

    def send(self, sender, rcpt="support@example.test", headers=None, from_hdr=True, **kw):
        local = rcpt.split("@")[0]
        before = len(self.postfix.mails(local))
        h = list(headers or [])
        if from_hdr and not any(x.lower().startswith("from:") for x in h):
            h.insert(0, "From: <%s>" % sender)
        t0 = time.time()
        rc, out = self.postfix.send(sender, rcpt, headers=h, **kw)
        elapsed = time.time() - t0
        if rc != 0:
            raise AssertionError("swaks failed:\n%s" % out[-1500:])
        msgs = self.postfix.wait_mail(local, before + 1)
        if len(msgs) <= before:
            raise AssertionError("not delivered to %s; Postfix log:\n%s\nmilter log:\n%s" % (
                local, self.postfix.log()[-2000:], self.milter.log()[-2000:]))
        return msgs[-1], elapsed

    def stop(self):
        for x in (self.postfix, self.milter, self.standin, self.redis):
            x.stop()


def main():
    t = smtest.TAP()
    try:
        env = Env()
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    try:
        run(t, env)
    finally:
        env.stop()
    mta.assert_clean(t)
    return t.done()


def run(t, env):
    s = env.standin

    def contract():
        msg, _ = env.send("jenny@customer.test", headers=["From: Jenny Rosen <jenny@customer.test>"])
        got = mta.stripe_block(msg)
        return t.is_(got, JENNY_HEADERS, "paying customer: header block byte for byte") or None
    t.run("paying customer via Postfix", contract)

    def cached():
        s.reset()
        msg, _ = env.send("jenny@customer.test")
        t.like(mta.hdr(msg, "X-Stripe-Lookup")[0], r"^v=2; found; cache=hit; age=\d+; mode=test$",
               "second message from the sender is a cache hit")
        t.is_(s.count("*"), 0, "a cache hit costs no Stripe request")
    t.run("cache hit", cached)

    def forged():
        msg, _ = env.send("jenny@customer.test", headers=[
            "X-Stripe-Subscription-Status: past_due",
            "x-stripe-subscription-status: past_due",
            "X-STRIPE-LOOKUP: found; cache=hit",
            "X-Stripe-Customer: name=\"CEO\";\r\n\tdelinquent=no",
            "X-Stripe-Lookup: found",
            "X-Stripe-Unknown-Header: anything"])
        block = mta.stripe_block(msg)
        t.is_(mta.hdr(msg, "X-Stripe-Subscription-Status"), ["active"],
              "forged status copies (any case) are gone, ours says active")
        t.is_(len(mta.hdr(msg, "X-Stripe-Lookup")), 1, "exactly one X-Stripe-Lookup")
        t.ok("CEO" not in block and "Unknown-Header" not in block,
             "folded and unknown forged prefix headers are gone", block)
        t.like(mta.hdr(msg, "X-Stripe-Customer")[0], r"delinquent=no", "ours says not delinquent")
    t.run("forged headers stripped", forged)

    def routing():
        rc, out = env.postfix.send("pat@customer.test", "sales@example.test",
                                   headers=["From: <pat@customer.test>"])
        t.is_(rc, 0, "sent")
        billing = env.postfix.wait_mail("billing", 1)
        t.ok(len(billing) >= 1 and b"cus_pat" in billing[-1],
             "conf/milter_header_checks: past_due mail REDIRECTed to billing@")
    t.run("milter_header_checks routing example", routing)

    def not_found():
        s.reset()
        msg, _ = env.send("nobody@elsewhere.test")
        t.is_(mta.stripe_block(msg), "X-Stripe-Lookup: v=2; not-found; cache=miss; mode=test\n",
              "unknown sender: not-found only")
        t.ok(s.count("customers") >= 1, "it asked Stripe")
    t.run("not found", not_found)

    def null_sender():
        msg, _ = env.send("<>", headers=["From: MAILER-DAEMON@elsewhere.test"], from_hdr=False)
        t.is_(mta.hdr(msg, "X-Stripe-Lookup"), ["v=2; skipped=null-sender"], "null sender skipped")
    t.run("null sender", null_sender)

    def failure(name, fault, want, addr):
        s.faults(fault)
        try:
            msg, elapsed = env.send(addr)
        finally:
            s.faults({})
        t.like(mta.hdr(msg, "X-Stripe-Lookup")[0], want, "%s: delivered, %s" % (name, want))
        return elapsed

    def stripe_down():
        failure("Stripe 500", {"*": {"status": 500, "should_retry": False}}, r"^v=2; error=server$", "e1@elsewhere.test")
        failure("Stripe 429", {"*": {"status": 429}}, r"^v=2; error=rate-limited$", "e2@elsewhere.test")
        failure("Stripe 401", {"*": {"status": 401}}, r"^v=2; error=auth$", "e3@elsewhere.test")
        failure("Stripe garbage", {"*": {"malformed": True}}, r"^v=2; error=malformed$", "e4@elsewhere.test")
        # A reset is retried (StripeMaxRetries 2, backoffs of 250-500 ms and 500-1000 ms): up
        # to 1.5 s of backoff alone, as long as this test's LookupTimeout, so the message
        # waits for the last attempt's class only with a LookupTimeout the retries fit in.
        # (With 1.5 s it got error=timeout under load, rightly: the lookup had not ended.)
        env.milter.reload({"LookupTimeout": "10000"})
        failure("Stripe resets", {"*": {"reset": True}}, r"^v=2; error=network$", "e5@elsewhere.test")
        env.milter.reload({"LookupTimeout": "1500"})
        t0 = time.time()
        el = failure("Stripe hangs", {"*": {"hang": True, "hang_s": 60}}, r"^v=2; error=timeout$",
                     "e6@elsewhere.test")
        # Stripe hangs 60 s (or until the lookup's StripeTimeout closes it), LookupTimeout is
        # 1.5 s: the mail was accepted while Stripe still held the request, so only the
        # deadline ended the wait (no bound on the time it took).
        t.ok(s.hangs_outlived(t0, t0 + el), "hanging Stripe: mail accepted while Stripe still held the "
             "request (%.2f s, SMTP included; LookupTimeout 1.5 s)" % el)
    t.run("Stripe failures deliver mail", stripe_down)

    def permission():
        # a restricted key without Charges: Read
        with open(env.milter.keyfile, "w") as f:
            f.write("rk_test_nocharges\n")
        st = dict(STATE)
        st["keys"] = {"rk_test_nocharges": {"missing": ["rak_charge_read"]}}
        s.state(st)
        tail = env.milter.reload({"CachePrefix": "perm"})
        t.ok("reloaded" in tail, "SIGUSR1 reload with a new key", tail)
        msg, _ = env.send("jenny@customer.test")
        t.like(mta.hdr(msg, "X-Stripe-Lookup")[0], r"^v=2; found; .*missing=charges", "missing permission said")
        t.is_(mta.hdr(msg, "X-Stripe-Charges"), [], "no charges header without rak_charge_read")
        t.is_(mta.hdr(msg, "X-Stripe-Subscription-Status"), ["active"], "other groups still there")
        with open(env.milter.keyfile, "w") as f:
            f.write(mta.Milter.KEY + "\n")
        s.state(STATE)
        env.milter.reload({"CachePrefix": "stripe-milter"})
    t.run("restricted key missing a permission", permission)

    def stale():
        # The entry is aged instead of waiting for its TTL: with the in-process cache off, the
        # entry in Redis gets a fetch time 700 s in the past (CacheTTL 600 s, CacheStaleGrace
        # 3600 s), as if it had been written then.
        # Stripe answers 503 without a retry (Stripe-Should-Retry: false), so the failed fill
        # is over before the stale copy is served: no request of this case can reach the
        # stand-in during the next one. A 10 s LookupTimeout keeps a loaded machine from
        # turning the server error into a timeout.
        env.milter.reload({"CachePrefix": "stale", "CacheL1Entries": "0", "LookupTimeout": "10000"})
        env.send("jenny@customer.test")
        keys = env.redis.cmd("KEYS", "stale:v1:sum1:test:*:" +
                             hashlib.sha256(b"jenny@customer.test").hexdigest())
        t.is_(len(keys), 1, "the address's entry is in Redis")
        entry = env.redis.cmd("GET", keys[0], raw=True)
        fetched = int.from_bytes(entry[8:16], "big", signed=True)
        env.redis.cmd("SETRANGE", keys[0], "8", (fetched - 700000).to_bytes(8, "big", signed=True))
        s.faults({"*": {"status": 503, "should_retry": False}})
        try:
            msg, _ = env.send("jenny@customer.test")
        finally:
            s.faults({})
        t.like(mta.hdr(msg, "X-Stripe-Lookup")[0],
               r"^v=2; found; cache=stale; age=(7\d\d|[89]\d\d|\d{4,}); mode=test; stale=yes;\s+error=server",
               "Stripe down after the TTL: stale data served and marked, with its age")
        t.is_(mta.hdr(msg, "X-Stripe-Subscription-Status"), ["active"], "stale data is the customer's")
        env.milter.reload({"CachePrefix": "stripe-milter", "CacheL1Entries": None, "LookupTimeout": "1500"})
    t.run("stale on error", stale)

    def skips():
        env.milter.reload({"Recipients": "support@example.test", "SkipSenderDomains": "example.test"})
        # nothing of an earlier case still on its way to the stand-in
        smtest.wait_for(lambda: s.requests()["in_flight"] == 0, timeout=60)
        s.reset()
        msg, _ = env.send("jenny@customer.test", rcpt="bob@example.test")
        t.is_(mta.hdr(msg, "X-Stripe-Lookup"), ["v=2; skipped=recipient"], "recipient filter")
        t.is_(s.count("*"), 0, "a filtered recipient costs no Stripe request")
        msg, _ = env.send("colleague@example.test")
        t.is_(mta.hdr(msg, "X-Stripe-Lookup"), ["v=2; skipped=sender-domain"], "own domain skipped")
        env.milter.reload({"Recipients": None, "SkipSenderDomains": None, "InternalHosts": "127.0.0.0/8"})
        msg, _ = env.send("jenny@customer.test")
        t.is_(mta.hdr(msg, "X-Stripe-Lookup"), ["v=2; skipped=internal-host"], "internal host skipped")
        env.milter.reload({"InternalHosts": "192.0.2.250"})
        msg, _ = env.send("jenny@customer.test", headers=["From: a@x.test, jenny@customer.test"])
        t.like(mta.hdr(msg, "X-Stripe-Lookup")[0], r"^v=2; not-found; .*from-count=2", "several From addresses said")
        msg, _ = env.send("jenny@customer.test", headers=["From: <<<broken"])
        t.is_(mta.hdr(msg, "X-Stripe-Lookup"), ["v=2; skipped=malformed-sender"], "malformed From")
    t.run("skip rules", skips)

    def header_groups():
        env.milter.reload({"HeaderGroups": "lookup, subscription", "HeaderPrefix": "X-Billing-"})
        msg, _ = env.send("pat@customer.test", headers=["X-Billing-Lookup: forged"])
        t.is_([k for k, _ in mta.headers(msg) if k.lower().startswith("x-billing-")],
              ["X-Billing-Lookup", "X-Billing-Subscription-Status", "X-Billing-Subscription", "X-Billing-Plan"],
              "groups and prefix from the reloaded config; forged copy of the new prefix gone")
        env.milter.reload({"HeaderGroups": "all", "HeaderPrefix": "X-Stripe-"})
    t.run("header groups and prefix", header_groups)

    def hostile():
        msg, _ = env.send("eve@customer.test")
        block = mta.stripe_block(msg)
        t.is_(mta.hdr(msg, "X-Stripe-Subscription-Status"), ["incomplete"],
              "hostile name: no header injected, the real status only")
        t.ok(all(32 <= ord(ch) < 127 or ch in "\n\t" for ch in block) and "\x00" not in block,
             "hostile Stripe data: printable US-ASCII only", block)
        eve = STATE["customers"][2]["name"]
        t.is_(mta.hdr(msg, "X-Stripe-Customer"), ["created=2024-01-01; delinquent=no; balance=0 JPY; matches=1"],
              "the token header holds no text from the name")
        name = mta.hdr(msg, "X-Stripe-Name")[0]
        t.is_(hdrv2.strict_decode(name), hdrv2.stripe_text(eve),
              "hostile name: its own header, RFC 2047 encoded, decodes to the Stripe text "
              "(controls as spaces)")
        t.is_(hdrv2.policy_decode([("X-Stripe-Name", name)])["X-Stripe-Name"], [hdrv2.stripe_text(eve)],
              "email.policy.default reads the same text")
        sub = [f for f in mta.stripe_fields(msg) if f.startswith("X-Stripe-Subscription:")][0]
        t.ok("status=incomplete" in sub and "amount=1200 JPY/3 months" in sub,
             "status and amount in the Subscription token header", sub)
        plan = [f for f in mta.stripe_fields(msg) if f.startswith("X-Stripe-Plan:")][0]
        t.ok(len(plan) <= 1000 and all(len(line) <= 78 for line in plan.split("\n")),
             "600-character plan name capped at Stripe's 255 bytes, lines <= 78 (%d bytes)" % len(plan), plan)
        t.is_(hdrv2.strict_decode(plan.split(": ", 1)[1].rstrip("\n")),
              hdrv2.stripe_text(STATE["products"][2]["name"]), "the plan name decodes to its first 255 bytes")
        long_local = "x" * 2000
        msg, _ = env.send("jenny@customer.test", headers=["From: <%s@customer.test>" % long_local])
        t.is_(mta.hdr(msg, "X-Stripe-Lookup"), ["v=2; skipped=malformed-sender"],
              "a 2000-character From address: skipped, delivered")
    t.run("hostile Stripe data and From header", hostile)

    def case_after_strangers():
        # Search budgets big enough for every search of this case (the per-process bucket
        # and the fleet's, 5/s by default, would otherwise skip some: search=skipped, a
        # documented limit that is not what is tested here); set once, before the run.
        env.milter.reload({"StripeSearchRate": "20", "FleetSearchRateLimit": "50",
                           "CachePrefix": "case18"})
        s.add({"customers": [{"id": "cus_carol", "email": "Carol.Case@Example.COM",
                              "name": "Carol Case"}]})
        s.reset()
        for i in range(10):
            msg, _ = env.send("Stranger.%d@elsewhere.test" % i)
            t.is_(mta.hdr(msg, "X-Stripe-Lookup"), ["v=2; not-found; cache=miss; mode=test"],
                  "unknown sender %d: not-found, search asked (no search=skipped)" % i)
        msg, _ = env.send("carol.case@example.com")
        t.is_(mta.hdr(msg, "X-Stripe-Lookup"), ["v=2; found; cache=miss; mode=test; by=search"],
              "after 10 unknown senders, carol.case@example.com finds Carol.Case@Example.COM")
        t.is_(mta.hdr(msg, "X-Stripe-Customer-Id"), ["cus_carol"], "the customer is cus_carol")
        r = s.requests()
        bad = {k: v for k, v in r["by_status"].items() if str(k).startswith("4")}
        t.ok(not bad, "no request of the run got a 4xx from Stripe", r["by_status"])
        t.ok(r["by_endpoint"].get("customers_search", 0) == 11 and
             r["by_endpoint"].get("checkout_sessions", 0) == 21 and
             r["by_endpoint"].get("charges_search", 0) == 0,
             "each sender without an exact match: one customer search and, at once, the "
             "guest's sessions for both address forms (1 for carol's lowercase one); no "
             "charges search", r["by_endpoint"])
    t.run("issue 18: mixed-case customer found after unknown senders", case_after_strangers)

    def guest():
        s.add({"checkout_sessions": [
            {"customer_details": {"email": "buyer@shop.test"}, "amount_total": 4900,
             "currency": "usd", "created": NOW - 3 * DAY},
            {"customer_details": {"email": "buyer@shop.test"}, "amount_total": 1500,
             "currency": "eur", "mode": "subscription", "created": NOW - 2 * DAY},
            {"customer_details": {"email": "buyer@shop.test"}, "status": "expired",
             "created": NOW - DAY}]})
        msg, _ = env.send("buyer@shop.test")
        t.is_(mta.stripe_block(msg),
              "X-Stripe-Lookup: v=2; guest; cache=miss; mode=test\n"
              "X-Stripe-Checkout: window=90d; sessions=2; paid=2; subscriptions=1;\n"
              "\ttotal=15.00 EUR, 49.00 USD; last=%s paid subscription\n" % ymd(NOW - 2 * DAY),
              "Checkout guest: v=2; guest and X-Stripe-Checkout, byte for byte")
        # a key without Checkout Sessions: Read: missing=guest, everything else works
        with open(env.milter.keyfile, "w") as f:
            f.write("rk_test_nocheckout\n")
        s.add({"keys": {"rk_test_nocheckout": {"missing": ["rak_checkout_session_read"]}}})
        env.milter.reload({"CachePrefix": "nocheckout"})
        msg, _ = env.send("buyer@shop.test")
        t.is_(mta.hdr(msg, "X-Stripe-Lookup"),
              ["v=2; not-found; cache=miss; mode=test; missing=guest"],
              "key without rak_checkout_session_read: missing=guest")
        msg, _ = env.send("jenny@customer.test")
        t.is_(mta.stripe_block(msg), JENNY_HEADERS, "and a customer still gets every header")
        with open(env.milter.keyfile, "w") as f:
            f.write(mta.Milter.KEY + "\n")
        env.milter.reload({"CachePrefix": "stripe-milter"})
    t.run("issue 18: Checkout guest; missing=guest", guest)

    def redis_down():
        # In-process cache off: the lookup has to go to the dead Redis, then to Stripe.
        env.milter.reload({"CacheL1Entries": "0", "CachePrefix": "redisdown"})
        env.redis.kill()
        msg, el = env.send("jenny@customer.test")
        t.like(mta.hdr(msg, "X-Stripe-Lookup")[0], r"^v=2; found; cache=miss",
               "Redis dead: still found through Stripe (%.2f s)" % el)
    t.run("Redis down", redis_down)


if __name__ == "__main__":
    sys.exit(main())
