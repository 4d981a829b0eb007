#!/usr/bin/env python3
"""test_ctl.py - stripe-milterctl and the metrics listener against real redis-server, the
Stripe stand-in and running daemons (messages sent with miltertest).

stats from two instances summed, one stopped instance shown stopped (the fleet
statistics in depth are test_stats.py's); check-key
with a key missing each permission; lookup of a found, a missing and a Stripe-failing
address; purge then lookup goes to Stripe; flush; check-config; usage errors; /metrics
scraped during a run with counters matching the traffic; /healthz with Redis down.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

SEED = os.path.join(smtest.srcdir(), "tests", "demo", "seed.json")
SCRIPT = os.path.join(smtest.srcdir(), "tests", "milter", "mt_message.lua")
PERMS = [("customer", "rak_customer_read", "Customers: Read"),
         ("subscriptions", "rak_subscription_read", "Subscriptions: Read"),
         ("plan-names", "rak_product_read", "Products: Read"),
         ("charges", "rak_charge_read", "Charges: Read"),
         ("invoices", "rak_invoice_read", "Invoices: Read"),
         ("guest", "rak_checkout_session_read", "Checkout Sessions: Read")]


ctl = mta.ctl


def send(m, sender):
    rc, out = mta.miltertest(SCRIPT, {"MT_SOCKET": m.socket, "MT_ENVFROM": "<%s>" % sender,
                                      "MT_FROM": sender, "MT_EXPECT": ".", "MT_STATUS": "*"})
    if rc != 0:
        raise AssertionError(out)


def main():
    t = smtest.TAP()
    try:
        if not os.path.exists("/usr/bin/miltertest"):
            raise smtest.Unavailable("miltertest is not installed")
        redis = smtest.Redis()
        s = smtest.Standin(args=["--seed", SEED])
        mport = smtest.free_port()
        m1 = mta.Milter(s, redis, options={"InstanceName": "mx1", "MetricsListen": "127.0.0.1:%d" % mport})
        m2 = mta.Milter(s, redis, options={"InstanceName": "mx2"})
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    try:
        run(t, redis, s, m1, m2, mport)
    finally:
        for x in (m1, m2, s, redis):
            x.stop()
    mta.assert_clean(t)
    return t.done()


def run(t, redis, s, m1, m2, mport):
    conf = m1.conf

    # --- metrics and stats from two instances
    st, before = smtest.metrics(mport)
    t.is_(st, 200, "/metrics answers")
    for a in ("jenny@customer.test", "pat@customer.test", "nobody@elsewhere.test"):
        send(m1, a)
    send(m1, "jenny@customer.test")
    send(m2, "yuki@customer.test")
    st, after = smtest.metrics(mport)
    t.is_(after['stripe_milter_lookups_total{result="found"}'], 3.0, "metrics: 3 found on mx1")
    t.is_(after['stripe_milter_lookups_total{result="not_found"}'], 1.0, "metrics: 1 not found")
    t.is_(after['stripe_milter_cache_hits_total{level="l1"}'], 1.0, "metrics: the repeat was an L1 hit")
    t.ok(after['stripe_milter_stripe_requests_total{account="default",outcome="ok"}'] >= 5,
         "metrics: Stripe requests counted (%s)" % after.get('stripe_milter_stripe_requests_total{account="default",outcome="ok"}'))
    t.is_(after.get("stripe_milter_redis_up"), 1.0, "metrics: Redis up")
    t.ok(after.get("stripe_milter_redis_pool_open", 0) >= 1 and
         0 <= after.get("stripe_milter_redis_pool_in_use", -1) <= after["stripe_milter_redis_pool_open"],
         "metrics: Redis pool gauges (open %s, in use %s)" % (after.get("stripe_milter_redis_pool_open"),
                                                             after.get("stripe_milter_redis_pool_in_use")))
    t.ok(after['stripe_milter_stripe_request_duration_seconds_count{account="default"}'] ==
         after['stripe_milter_stripe_request_duration_seconds_bucket{account="default",le="+Inf"}'] > 0,
         "metrics: latency histogram consistent")
    # wait for both instances' publications (StatsInterval 1 s in the fixture) to hold the traffic
    last = {}

    def published():
        last["r"] = ctl(conf, "--json", "stats")
        rc_, out_, _ = last["r"]
        last["st"] = json.loads(out_) if rc_ == 0 else {"instances": []}
        return bool(last["st"]["instances"]) and last["st"]["totals"]["messages"]["total"] == 5
    smtest.wait_for(published, timeout=60)
    rc, out, err = last["r"]
    st = last["st"]
    names = [i["instance"] for i in st["instances"]]
    t.is_((rc, names), (0, ["mx1", "mx2"]), "stats: both instances reported, sorted")
    t.is_(st["totals"]["cache"]["lookups"], 5, "stats: fleet lookups summed over instances (4 + 1)")
    t.is_(st["totals"]["cache"]["l1_hits"], 1, "stats: L1 hits summed")
    t.ok(st["totals"]["stripe"]["requests"]["by_outcome"]["ok"] >= 6, "stats: Stripe requests summed")
    t.ok(st["totals"]["stripe"]["request_latency"]["p99_le_ms"] > 0, "stats: latency percentiles")
    t.ok(st["keys"]["count"] >= 4, "stats: keys under the prefix counted (%d)" % st["keys"]["count"])
    rc, out, err = ctl(conf, "stats")
    t.like(out, r"mx1 +live .*ago", "stats: text form lists instances")
    m2.stop()           # a clean stop: final snapshot, listed as stopped, still in the totals
    rc, out, err = ctl(conf, "--json", "stats")
    st = json.loads(out)
    state = {i["instance"]: i["state"] for i in st["instances"]}
    t.is_(state, {"mx1": "live", "mx2": "stopped"}, "stats: the stopped instance is shown stopped")
    t.is_((st["counts"]["stopped"], st["totals"]["cache"]["lookups"]), (1, 5), "stats: and its final figures kept in the totals")
    rc, out, err = ctl(conf, "stats", "--watch", "1", "--count", "2")
    t.ok(rc == 0 and out.count("fleet totals") == 2 and "/s" in out, "stats --watch: refreshes with rates")

    # --- lookup, purge
    rc, out, err = ctl(conf, "lookup", "jenny@customer.test")
    t.ok(rc == 0 and "source:      redis" in out and "X-Stripe-Subscription-Status: active" in out,
         "lookup: found, from Redis, with the exact headers", out + err)
    rc, out, err = ctl(conf, "--json", "lookup", "missing@elsewhere.test")
    j = json.loads(out)
    t.is_((rc, j["result"], j["headers"][0]["value"]), (0, "not-found", "v=2; not-found; cache=miss; mode=test"),
          "lookup: a missing address")
    s.reset()
    rc, out, err = ctl(conf, "purge", "jenny@customer.test")
    t.is_(rc, 0, "purge")
    rc, out, err = ctl(conf, "lookup", "jenny@customer.test")
    t.ok("source:      stripe" in out and s.count("customers") >= 1, "purge then lookup goes to Stripe", out)
    s.reset()
    rc, out, err = ctl(conf, "lookup", "--no-cache", "jenny@customer.test")
    t.ok(rc == 0 and s.count("customers") >= 1, "lookup --no-cache asks Stripe although cached")
    s.faults({"*": {"status": 500, "should_retry": False}})
    rc, out, err = ctl(conf, "lookup", "failing@elsewhere.test")
    s.faults({})
    t.ok(rc == 1 and "error:       server" in out and "X-Stripe-Lookup: v=2; error=server" in out,
         "lookup: Stripe failing says so, exit 1", out + err)

    # --- check-key, one missing permission at a time
    st_ = json.load(open(SEED))
    keys = {}
    for res, perm, dash in PERMS:
        keys["rk_test_no_%s" % res.replace("-", "_")] = {"missing": [perm]}
    keys["rk_test_no_events"] = {"missing": ["rak_event_read"]}
    st_["keys"] = keys
    s.state(st_)
    rc, out, err = ctl(conf, "check-key")
    t.ok(rc == 0 and out.count("granted  ") == len(PERMS), "check-key: full key, all granted", out)
    t.ok(re.search(r"events\s+rak_event_read\s+Events: Read\s+unused\s+\(not used by this "
                   r"configuration\)", out) and
         re.search(r"guest\s+rak_checkout_session_read\s+Checkout Sessions: Read\s+granted\s+"
                   r"guest buyers", out),
         "check-key: events probed but unused without EventsPollInterval; checkout sessions "
         "needed with GuestLookup (the default)", out)
    t.like(out, r"^key sk_test_\.\.\.\w* \(test mode\), account acct_\w+", "check-key: mode and account shown")
    for res, perm, dash in PERMS:
        kf = os.path.join(m1.dir, "key-%s" % res)
        with open(os.open(kf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write("rk_test_no_%s\n" % res.replace("-", "_"))
        c2 = os.path.join(m1.dir, "ck-%s.conf" % res)
        with open(c2, "w") as f:
            f.write(open(conf).read().replace(m1.keyfile, kf))
        rc, out, err = ctl(c2, "check-key")
        ok = rc == 1 and re.search(r"%s\s+%s\s+%s\s+MISSING" % (res, perm, re.escape(dash)), out) and \
            ("grant %s (%s)" % (dash, perm)) in out and out.count("granted  ") == len(PERMS) - 1
        t.ok(ok, "check-key: key without %s exits 1 and says what to grant" % perm, out + err)
    # EventsPollInterval needs rak_event_read: the row says what is lost without it
    kf = os.path.join(m1.dir, "key-events")
    with open(os.open(kf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write("rk_test_no_events\n")
    c3 = os.path.join(m1.dir, "ck-events.conf")
    with open(c3, "w") as f:
        f.write(open(conf).read().replace(m1.keyfile, kf) + "\nEventsPollInterval 60\n")
    rc, out, err = ctl(c3, "check-key")
    t.ok(rc == 1 and re.search(r"events\s+rak_event_read\s+Events: Read\s+MISSING\s+events "
                               r"polling: changes seen only when the cache entry expires", out)
         and "grant Events: Read (rak_event_read)" in out,
         "check-key: EventsPollInterval set and no rak_event_read: MISSING, what is lost", out + err)
    with open(c3, "w") as f:
        f.write(open(conf).read().replace(m1.keyfile, kf) + "\nGuestLookup no\n")
    rc, out, err = ctl(c3, "check-key")
    t.ok(rc == 0 and re.search(r"guest\s+rak_checkout_session_read\s+Checkout Sessions: Read\s+"
                               r"granted\s+\(not used", out) is None and
         re.search(r"guest\s+rak_checkout_session_read\s+Checkout Sessions: Read\s+unused", out),
         "check-key: GuestLookup no: checkout sessions unused", out + err)
    rc, out, err = ctl(conf, "--json", "check-key")
    t.is_((rc, json.loads(out)["missing"]), (0, 0), "check-key --json")
    # A 403 that names no permission: not "grant rak_*", but Stripe's (sanitised) message.
    s.faults({"charges": {"status": 403, "message": "The required permissions are not available "
                          "for use by restricted keys (rk_test_secretsecretsecret)."}})
    rc, out, err = ctl(conf, "check-key")
    s.faults({})
    t.ok(rc == 1 and re.search(r"charges\s+rak_charge_read\s+Charges: Read\s+error", out) and
         "charges: Stripe refused without naming a permission: The required permissions are "
         "not available for use by restricted keys" in out and "grant Charges" not in out and
         "secretsecret" not in out, "check-key: a 403 naming no permission shows Stripe's message",
         out + err)

    # --- check-config, flush, usage
    rc, out, err = ctl(conf, "check-config")
    t.ok(rc == 0 and "redis:   ok" in out and "stripe:  ok" in out, "check-config: all answer", out + err)
    rc, out, err = ctl(conf, "flush")
    t.is_(rc, 2, "flush without --yes refuses (exit 2)")
    rc, out, err = ctl(conf, "flush", "--yes")
    t.ok(rc == 0 and re.search(r"deleted [1-9]\d* keys", out), "flush --yes deletes", out)
    rc, out, err = ctl(conf, "frobnicate")
    t.is_(rc, 2, "unknown command: exit 2")
    rc, out, err = ctl("/nonexistent.conf", "stats")
    t.is_(rc, 2, "bad config: exit 2")

    # --- Redis down
    redis.kill()

    def degraded():     # the next publication (StatsInterval 1 s) finds Redis gone
        return b"degraded" in smtest.http_call("http://127.0.0.1:%d" % mport, "GET", "/healthz")[2]
    smtest.wait_for(degraded, timeout=60)
    st, _, body = smtest.http_call("http://127.0.0.1:%d" % mport, "GET", "/healthz")
    t.ok(st == 200 and b"degraded" in body and b"Redis" in body,
         "/healthz with Redis down: serving, degraded, says why (%d %r)" % (st, body))
    st, vals = smtest.metrics(mport)
    t.is_(vals.get("stripe_milter_redis_up"), 0.0, "metrics: Redis down shows")
    rc, out, err = ctl(conf, "check-config")
    t.ok(rc == 1 and "UNREACHABLE" in out, "check-config: Redis down exits 1", out + err)
    rc, out, err = ctl(conf, "stats")
    t.is_(rc, 1, "stats: Redis down exits 1")
    st, _, _ = smtest.http_call("http://127.0.0.1:%d" % mport, "GET", "/nope")
    t.is_(st, 404, "unknown path: 404")


if __name__ == "__main__":
    sys.exit(main())
