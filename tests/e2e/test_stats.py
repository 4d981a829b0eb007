#!/usr/bin/env python3
"""test_stats.py - fleet statistics with three daemons on one Redis, read by
stripe-milterctl stats (text and --json) and scraped from /metrics; requests Stripe refused
(4xx) by endpoint and status.

Mixed StatsInterval (10 s, 1 s, 3600 s) read with a 1 s config: no live instance is shown
stale; each publisher stores its interval. A clean stop publishes a final snapshot (the
3600 s instance's traffic reaches the totals only that way) and the instance is listed as
stopped, in the totals; a killed one turns stale after two of its own intervals and leaves
the totals; both hashes are kept MF_FLEET_RETAIN_S (600 s). Messages by result (found,
not-found, guest, error by class, skipped by reason) per instance and fleet-wide; cache and
Stripe rows add up as printed; instances sorted. Every wait is on a condition with a deadline.
"""
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

SEED = os.path.join(smtest.srcdir(), "tests", "demo", "seed.json")
SCRIPT = os.path.join(smtest.srcdir(), "tests", "milter", "mt_message.lua")


ctl = mta.ctl


def send(m, sender, expect=".", **env):
    e = {"MT_SOCKET": m.socket, "MT_ENVFROM": "<%s>" % sender, "MT_FROM": sender,
         "MT_EXPECT": expect, "MT_STATUS": "*"}
    e.update(env)
    rc, out = mta.miltertest(SCRIPT, e)
    if rc != 0:
        raise AssertionError(out)


def stats(conf):
    rc, out, err = ctl(conf, "--json", "stats")
    if rc != 0:
        raise AssertionError("stats failed: %s" % err)
    return json.loads(out)


def wait_stats(conf, cond, what, timeout=40.0):
    """Polls `stats --json` until cond(st) holds; returns the last document."""
    end = time.time() + timeout
    st = stats(conf)
    while not cond(st):
        if time.time() > end:
            raise AssertionError("timed out waiting for %s: %s" % (what, json.dumps(st)[:3000]))
        time.sleep(0.2)
        st = stats(conf)
    return st


def inst(st, name):
    for i in st["instances"]:
        if i["instance"] == name:
            return i
    return None


def msgs(x):
    return x["messages"]["total"] if x else -1


def main():
    t = smtest.TAP()
    ms = []
    try:
        if not os.path.exists("/usr/bin/miltertest"):
            raise smtest.Unavailable("miltertest is not installed")
        redis = smtest.Redis()
        s = smtest.Standin(args=["--seed", SEED])
        mport = smtest.free_port()
        # names chosen so that start order and SCAN order differ from sorted order
        ms.append(mta.Milter(s, redis, options={"InstanceName": "mx-c", "StatsInterval": "10",
                                                 "MetricsListen": "127.0.0.1:%d" % mport}))
        ms.append(mta.Milter(s, redis, options={"InstanceName": "mx-a", "StatsInterval": "1"}))
        ms.append(mta.Milter(s, redis, options={"InstanceName": "mx-b", "StatsInterval": "3600"}))
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    try:
        run(t, redis, s, ms, mport)
    finally:
        for x in ms + [s, redis]:
            x.stop()
    mta.assert_clean(t)
    return t.done()


def run(t, redis, s, ms, mport):
    mc, ma, mb = ms
    reader = ma.conf            # StatsInterval 1: stricter than mx-c's 10 s

    # every instance publishes at start, each with its own interval
    st = wait_stats(reader, lambda st: len(st["instances"]) == 3, "three instances")
    t.is_([i["instance"] for i in st["instances"]], ["mx-a", "mx-b", "mx-c"], "instances sorted by name")
    t.is_({i["instance"]: i["interval_s"] for i in st["instances"]}, {"mx-a": 1, "mx-b": 3600, "mx-c": 10},
          "each instance publishes its own StatsInterval")
    t.is_(redis.cmd("HGET", "stripe-milter:stats:mx-c", "interval_s"), "10", "the interval is in the hash")

    # traffic: mx-c found x2 (one an L1 hit), not-found, null sender; mx-a a Stripe error
    send(mc, "jenny@customer.test", MT_EXPECT="found")
    send(mc, "jenny@customer.test", MT_EXPECT="found")
    send(mc, "nobody@elsewhere.test", MT_EXPECT="not%-found")
    send(mc, "", MT_ENVFROM="<>", MT_FROM="", MT_EXPECT="skipped=")
    s.faults({"*": {"status": 500, "should_retry": False}})
    send(ma, "failing@elsewhere.test", MT_EXPECT="error=server")
    s.faults({})
    send(ma, "pat@customer.test", MT_EXPECT="skipped=internal%-host", MT_IP="192.0.2.250")

    # mx-c publishes every 10 s: wait for its traffic; a 1 s reader must keep it live all along
    seen_stale = []

    def cond(st):
        c = inst(st, "mx-c")
        if c and c["state"] != "live":
            seen_stale.append(c["state"])
        return msgs(c) == 4 and msgs(inst(st, "mx-a")) == 2

    st = wait_stats(reader, cond, "mx-c's and mx-a's traffic")
    t.is_(seen_stale, [], "mx-c (10 s interval) never shown stale by a 1 s reader while it waited")
    t.is_({i["instance"]: i["state"] for i in st["instances"]}, {"mx-a": "live", "mx-b": "live", "mx-c": "live"},
          "mixed intervals: all live")
    c = inst(st, "mx-c")["messages"]
    t.is_((c["found"], c["not_found"], c["guest"], c["error"]["total"], c["skipped"]["total"]), (2, 1, 0, 0, 1),
          "mx-c: messages by result")
    t.is_(c["skipped"]["by_reason"]["null-sender"], 1, "mx-c: skipped by reason")
    a = inst(st, "mx-a")["messages"]
    t.is_((a["error"]["by_class"]["server"], a["skipped"]["by_reason"]["internal-host"]), (1, 1),
          "mx-a: error by class, skipped by reason")
    tm = st["totals"]["messages"]
    t.is_((tm["total"], tm["found"], tm["not_found"], tm["error"]["total"], tm["error"]["by_class"]["server"],
           tm["skipped"]["total"]), (6, 2, 1, 1, 1, 2), "fleet totals: messages by result and class")
    t.is_(tm["total"], tm["found"] + tm["not_found"] + tm["guest"] + tm["error"]["total"] + tm["skipped"]["total"],
          "fleet totals: results add up to all messages")
    tc = st["totals"]["cache"]
    t.is_(tc["lookups"], tc["l1_hits"] + tc["redis_hits"] + tc["misses"], "cache: lookups = L1 + Redis + misses")
    t.is_(tc["misses"], tc["misses_by"]["filled_by_the_lookup"] + tc["misses_by"]["waited_for_another_thread"],
          "cache: misses = filled + waited for another thread's fill")
    ts = st["totals"]["stripe"]
    t.is_(ts["requests"]["total"], sum(ts["requests"]["by_outcome"].values()), "Stripe: requests = sum of outcomes")
    t.ok(ts["requests"]["by_outcome"]["5xx"] >= 1 and ts["lookups"] >= 3,
         "Stripe: lookups and requests in their own units (%d lookups, %d requests)" %
         (ts["lookups"], ts["requests"]["total"]))
    t.ok(tm["lookup_latency"]["p99_le_ms"] > 0, "lookup latency percentiles")

    # text form: the arithmetic is printed and holds
    rc, out, err = ctl(reader, "stats")
    mo = re.search(r"^  lookups\s+(\d+)\s+= (\d+) L1 hits \+ (\d+) Redis hits \+ (\d+) misses", out, re.M)
    t.ok(rc == 0 and mo and int(mo.group(1)) == sum(int(x) for x in mo.group(2, 3, 4)),
         "text: cache lookups row adds up", out)
    mo = re.search(r"^  all messages\s+(\d+)\s+= (\d+) \+ (\d+) \+ (\d+) \+ (\d+) \+ (\d+)", out, re.M)
    t.ok(mo and int(mo.group(1)) == 6 and sum(int(x) for x in mo.group(2, 3, 4, 5, 6)) == 6,
         "text: all messages = found + not-found + guest + error + skipped", out)
    t.like(out, r"(?m)^    error=server\s+1$", "text: error by class")
    t.like(out, r"(?m)^    skipped=null-sender\s+1$", "text: skipped by reason")
    rows = re.findall(r"(?m)^  (mx-\S+)\s+(live|stale|stopped)\s+\S+ ago\s+\d+s((?:\s+\d+){5})", out)
    t.is_([(n, st_, [int(x) for x in v.split()]) for n, st_, v in rows],
          [("mx-a", "live", [2, 0, 0, 1, 1]), ("mx-b", "live", [0, 0, 0, 0, 0]), ("mx-c", "live", [4, 2, 1, 0, 1])],
          "text: instances sorted, with state and messages by result")

    # /metrics: the same results
    stc, _, body = smtest.http_call("http://127.0.0.1:%d" % mport, "GET", "/metrics")
    body = body.decode()
    t.ok('stripe_milter_messages_total{result="found"} 2' in body and
         'stripe_milter_messages_total{result="skipped",reason="null-sender"} 1' in body and
         'stripe_milter_lookup_duration_seconds_count 3' in body,
         "/metrics: messages by result and the lookup latency histogram", body[:400])

    # clean stop: mx-b (interval 3600 s) sends two messages; only its final snapshot carries them
    send(mb, "jenny@customer.test", MT_EXPECT="found")
    send(mb, "yuki@customer.test", MT_EXPECT=".")
    before = stats(reader)
    t.is_(msgs(inst(before, "mx-b")), 0, "mx-b's traffic not published yet (interval 3600 s)")
    mb.stop()
    t.ok("final snapshot published" in mb.log(), "clean stop: the final snapshot is logged")
    st = stats(reader)
    b = inst(st, "mx-b")
    t.is_((b["state"], b["in_totals"], msgs(b)), ("stopped", True, 2), "clean stop: stopped, in the totals, with its last traffic")
    t.is_(st["totals"]["messages"]["total"], 8, "fleet totals include the stopped instance's final snapshot")
    ttl = redis.cmd("TTL", "stripe-milter:stats:mx-b")
    t.ok(500 < ttl <= 600, "a stopped instance stays listed 10 minutes (TTL %s)" % ttl)
    rc, out, err = ctl(reader, "stats")
    t.like(out, r"(?m)^  mx-b\s+stopped\s.*final snapshot, in the totals", "text: stopped instance shown as such")

    # a crash: mx-a (1 s) is killed; stale after 2 intervals + 2 s, left out of the totals
    ma.proc.send_signal(signal.SIGKILL)
    ma.proc.wait()
    st = wait_stats(mc.conf, lambda st: inst(st, "mx-a") and inst(st, "mx-a")["state"] == "stale", "mx-a stale",
                    timeout=30)
    a = inst(st, "mx-a")
    t.is_((a["in_totals"], st["counts"]), (False, {"live": 1, "stopped": 1, "stale": 1}),
          "killed instance: stale, not in the totals")
    t.is_(st["totals"]["messages"]["total"], 6, "totals: mx-c 4 + mx-b 2")
    ttl = redis.cmd("TTL", "stripe-milter:stats:mx-a")
    t.ok(500 < ttl <= 600, "a stale instance stays listed up to 10 minutes (TTL %s)" % ttl)
    c = inst(st, "mx-c")
    t.is_(c["state"], "live", "mx-c still live")
    rc, out, err = ctl(mc.conf, "stats")
    t.like(out, r"(?m)^  mx-a\s+stale\s.*not in the totals", "text: stale instance shown as such")

    # a request Stripe refuses as invalid (4xx): counted by endpoint and status (issue 18)
    s.faults({"checkout_sessions": {"status": 400, "message": "Received unknown parameter: x"}})
    send(mc, "refused@elsewhere.test", MT_EXPECT="not%-found")
    s.faults({})
    st = wait_stats(mc.conf, lambda st: st["totals"]["stripe"]["rejected"], "mx-c's refusal")
    t.is_(st["totals"]["stripe"]["rejected"], {"/v1/checkout/sessions": {"400": 1}},
          "json: stripe.rejected by endpoint and status")
    rc, out, err = ctl(mc.conf, "stats")
    t.ok(re.search(r"(?m)^  refused as invalid \(4xx: report it\)\s+1$", out) and
         re.search(r"(?m)^    /v1/checkout/sessions 400\s+1$", out),
         "text: refusals under Stripe, by endpoint and status", out)


if __name__ == "__main__":
    sys.exit(main())
