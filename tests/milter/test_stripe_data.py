#!/usr/bin/env python3
"""test_stripe_data.py - issue #11 through the milter: real Stripe account data as the headers
show it. The daemon runs against a private redis-server and the Stripe stand-in; each message
goes through miltertest (tests/milter/mt_headers.lua), which prints every X-Stripe-* header
added.

Cases (the issue's "Done when"): a mixed-case stored address found from any casing of the
sender; 30 customers for one address with only the oldest subscribed; a tiered price, a
`gold-plan` product and a `cus-legacy` id; an open invoice after two failed attempts; a guest
buyer found by the Checkout Sessions bought with the address; a 429 with Stripe-Should-Retry: true retried; and a 403 that
names no permission logged with Stripe's message.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

SCRIPT = os.path.join(smtest.srcdir(), "tests", "milter", "mt_headers.lua")
NEXT_ATTEMPT = 1796083200          # 2026-12-01
PRICE = {"unit_amount": 4900, "currency": "usd", "product": "prod_pro",
         "recurring": {"interval": "month", "interval_count": 1}}


def state():
    many = [{"id": "cus_many%02d" % i, "email": "many@customer.test", "created": 1700000000 + i}
            for i in range(30)]
    many[0]["subscriptions"] = [{"id": "sub_oldest", "status": "active",
                                 "items": [{"price": PRICE}]}]
    return {
        "products": [{"id": "prod_pro", "name": "Pro"}, {"id": "gold-plan", "name": "Gold"}],
        "customers": many + [
            {"id": "cus_mixed", "email": "Some.One@Customer.TEST", "name": "Some One",
             "subscriptions": [{"status": "active", "items": [{"price": PRICE}]}]},
            {"id": "cus-legacy", "email": "tiered@customer.test", "subscriptions": [
                {"id": "sub-tiered", "status": "active", "items": [{"price": {
                    "id": "price-tiered", "billing_scheme": "tiered", "tiers_mode": "graduated",
                    "unit_amount": None, "unit_amount_decimal": None, "currency": "usd",
                    "product": "gold-plan", "recurring": {"interval": "month",
                                                          "interval_count": 1}}}]}]},
            {"id": "cus_late", "email": "late@customer.test", "delinquent": True,
             "subscriptions": [{"id": "sub_late", "status": "past_due",
                                "items": [{"price": PRICE}]}],
             "charges": [{"amount": 4900, "status": "failed"},
                         {"amount": 4900, "status": "failed"}],
             "invoices": [{"id": "in_late", "subscription": "sub_late", "amount_due": 4900,
                           "currency": "usd", "attempt_count": 2,
                           "next_payment_attempt": NEXT_ATTEMPT}]},
            {"id": "cus_retry", "email": "retry@customer.test",
             "subscriptions": [{"status": "active", "items": [{"price": PRICE}]}]},
            {"id": "cus_connect", "email": "connect@customer.test"},
        ],
        # a guest: a charge with only a billing email cannot be found (no Stripe search
        # has that field); the Checkout Session bought with the address is
        "charges": [{"id": "ch_guest", "amount": 2500, "currency": "eur",
                     "billing_details": {"email": "receipt.only@customer.test"}}],
        "checkout_sessions": [{"amount_total": 2500, "currency": "eur",
                               "customer_details": {"email": "guest.buyer@customer.test"}},
                              {"amount_total": 900, "currency": "eur", "status": "expired",
                               "customer_details": {"email": "guest.buyer@customer.test"}}],
    }


def messages(port, result):
    """stripe_milter_messages_total{result="<result>"} from the daemon's /metrics."""
    v = smtest.metrics(port)[1].get('stripe_milter_messages_total{result="%s"}' % result)
    return None if v is None else int(v)


def main():
    t = smtest.TAP()
    try:
        if not os.path.exists("/usr/bin/miltertest"):
            raise smtest.Unavailable("miltertest is not installed (apt-get install miltertest)")
        redis = smtest.Redis()
        s = smtest.Standin()
        s.state(state())
        mport = smtest.free_port()
        m = mta.Milter(s, redis, options={"LookupTimeout": "5000", "StripeTimeout": "10000",
                                          "MetricsListen": "127.0.0.1:%d" % mport})
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))

    def headers(sender):
        rc, out = mta.miltertest(SCRIPT, {"MT_SOCKET": m.socket, "MT_FROM": sender})
        h = {}
        for line in out.splitlines():
            mm = re.match(r"^HDR (X-Stripe-[A-Za-z-]+): (.*)$", line)
            if mm:
                h[mm.group(1)] = mm.group(2)
        return rc, h, out

    def check(name, sender, want):
        """want: {header: regex}; None = the header must be absent."""
        rc, h, out = headers(sender)
        bad = [k for k, v in want.items() if (v is None and k in h) or
               (v is not None and not re.search(v, h.get(k, "\0absent")))]
        t.ok(rc == 0 and not bad, name, "wrong: %s\n%s\nmilter log tail:\n%s"
             % (bad, out, m.log()[-1500:]))
        return h

    try:
        # 1. Stored as typed at checkout; any casing of the sender finds it (the first by
        # search, the others from the cache, whose key ignores case).
        for i, sender in enumerate(["some.one@customer.test", "SOME.ONE@CUSTOMER.TEST",
                                    "Some.One@Customer.TEST"]):
            check("mixed-case stored address found from %s" % sender, sender, {
                "X-Stripe-Lookup": r"^v=2; found; cache=%s" % ("miss" if i == 0 else "hit"),
                "X-Stripe-Customer-Id": r"^cus_mixed$",
                "X-Stripe-Subscription-Status": r"^active$"})
        t.is_(s.requests()["by_endpoint"]["customers_search"], 1,
              "one search for three casings (the answer is cached case-insensitively)")
        # 2. 30 customers, only the oldest subscribed.
        check("30 customers for one address, the oldest subscribed", "many@customer.test", {
            "X-Stripe-Customer-Id": r"^cus_many00$",
            "X-Stripe-Customer": r"(^|; )matches=30(;|$)",
            "X-Stripe-Subscription-Status": r"^active$",
            "X-Stripe-Plan": r"^Pro$"})
        # 3. A tiered price, a custom product id and a custom customer id.
        check("tiered price, gold-plan product, cus-legacy id", "tiered@customer.test", {
            "X-Stripe-Customer-Id": r"^cus-legacy$",
            "X-Stripe-Subscription": r"^amount=tiered/month; status=active",
            "X-Stripe-Plan": r"^Gold$"})
        # 4. An open invoice after two failed attempts.
        check("open invoice after two failed attempts: amount due, next attempt",
              "late@customer.test", {
                  "X-Stripe-Subscription-Status": r"^past_due$",
                  "X-Stripe-Invoice": r"^open=1; past_due=1; due=49\.00 USD; attempts=2; "
                                      r"next_attempt=2026-12-01(; |$)",
                  "X-Stripe-Invoice-Url": r"^=\?UTF-8\?",
                  "X-Stripe-Charges": r"failed=2"})
        # 5. A guest buyer: no customer, a completed Checkout Session bought with the
        # address (stored lowercase; the sender writes it in mixed case: the lowercased
        # form is asked too)
        check("guest buyer found by the Checkout Session of the address",
              "Guest.Buyer@Customer.TEST", {
                  "X-Stripe-Lookup": r"^v=2; guest; cache=miss; mode=test$",
                  "X-Stripe-Checkout": r"^window=90d; sessions=1; paid=1; subscriptions=0; "
                                       r"total=25\.00 EUR; last=\d{4}-\d\d-\d\d paid payment$",
                  "X-Stripe-Charges": None, "X-Stripe-Customer-Id": None})
        check("a charge with only a receipt email: not found (documented)",
              "receipt.only@customer.test", {
                  "X-Stripe-Lookup": r"^v=2; not-found; cache=miss; mode=test$",
                  "X-Stripe-Checkout": None})
        check("nobody: not-found, no charges line", "nobody@customer.test", {
            "X-Stripe-Lookup": r"^v=2; not-found; cache=miss; mode=test$",
            "X-Stripe-Charges": None})
        t.is_((messages(mport, "guest"), messages(mport, "not_found")), (1, 2),
              "/metrics counts the guest buyer as guest, the others as not-found")
        # 6. 429 with Stripe-Should-Retry: true is retried.
        s.faults({"customers": {"status": 429, "should_retry": True, "times": 1}})
        s.reset()
        check("429 with Stripe-Should-Retry: true retried", "retry@customer.test", {
            "X-Stripe-Lookup": r"^v=2; found; cache=miss",
            "X-Stripe-Customer-Id": r"^cus_retry$"})
        log = s.requests()["log"]
        st = [e["status"] for e in log if e["endpoint"] == "customers"]
        t.is_(st[:2], [429, 200], "the stand-in saw the 429, then the retry")
        # 7. A 403 naming no permission: an error, with Stripe's message in the log.
        s.faults({"customers": {"status": 403, "message": "The required permissions are not "
                                "available for use by restricted keys."}})
        check("403 without a permission name: error=permission", "connect@customer.test", {
            "X-Stripe-Lookup": r"^v=2; error=permission$"})
        t.ok(smtest.wait_for(lambda: "not available for use by restricted keys" in m.log(), 10),
             "the milter log has Stripe's message", m.log()[-1500:])
        # 8. A 4xx is a defect report, never a switch: a refused guest request leaves the
        # sender not-found (not an error), is counted by endpoint and status, and is logged
        # once per distinct message with Stripe's Request-Id; a refused customer search
        # reads search=skipped and the guest's sessions are still asked.
        s.faults({"checkout_sessions": {"status": 400, "message": "Received unknown "
                                        "parameter: defect"}})
        for i in range(3):
            check("refused guest request %d: not-found, missing=guest, not an error" % i,
                  "refused%d@customer.test" % i, {
                      "X-Stripe-Lookup": r"^v=2; not-found; cache=miss; mode=test; missing=guest$"})
        lines = [x for x in m.log().splitlines() if "Stripe refused a request as invalid" in x]
        t.ok(len(lines) == 1 and re.search(r"HTTP 400 on /v1/checkout/sessions, request req_\w+\): "
                                           r'"Received unknown parameter: defect"', lines[0]),
             "logged once, with the endpoint, the Request-Id and Stripe's message", "\n".join(lines))
        s.faults({"customers_search": {"status": 400, "message": "Search is not available."}})
        s.reset()
        check("refused customer search: search=skipped", "searchless@customer.test", {
            "X-Stripe-Lookup": r"^v=2; not-found; cache=miss; mode=test; search=skipped$"})
        t.is_(s.count("checkout_sessions"), 1, "the guest's sessions were still asked")
        met = smtest.metrics(mport)[1]
        t.is_((met.get('stripe_milter_stripe_rejected_total{account="default",endpoint="/v1/checkout/sessions",'
                       'status="400"}'),
               met.get('stripe_milter_stripe_rejected_total{account="default",endpoint="/v1/customers/search",'
                       'status="400"}'),
               met.get('stripe_milter_stripe_rejected_total{account="default",endpoint="/v1/customers",'
                       'status="404"}'),
               met.get('stripe_milter_stripe_search_backed_off{account="default"}')),
              (3.0, 1.0, 0.0, 0.0), "/metrics counts each refusal by endpoint and status")
        s.faults({})
    finally:
        m.stop()
        s.stop()
        redis.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
