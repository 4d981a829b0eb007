#!/usr/bin/env python3
"""bench_fleet.py - the figures of issue #13 (fleet): stripe-milter instances on one real
redis-server, the Stripe stand-in answering each request after 100 ms, messages sent with
tests/lib/milterclient.py. Prints figures; asserts nothing (tests/fleet/ tests the behaviour).

  singleflight  2 and 4 instances, N cold senders (default 500) sent to every instance at
                once, default settings; rounds until every sender was answered found. Stripe
                requests per sender (one lookup = 3 requests: customers, subscriptions,
                charges) and addresses whose customer list was fetched more than once.
  budget        4 instances, a burst of 10x FleetRateLimit senders at once: the most requests
                the stand-in saw in any one second against the budget + burst, and 429s.
  breaker       Stripe failing (500s, then resets) for OUTAGE seconds (default 60) under a
                steady stream: requests Stripe saw while the breaker was open against the
                cool-downs elapsed, message latency while open against the same messages
                with Stripe healthy, and the time from recovery to the first answer found.
  backlog       Stripe hanging under a steady stream with LookupTimeout 1 s: lookups left
                queued at the end and the time a stop takes, breaker off against on.
  verp          a VERP stream (new envelope sender per message, one customer in From):
                Stripe requests per message; and the latency a From = envelope message pays
                for probing at MAIL FROM (header-from) against LookupAddress envelope (its
                fill starts at MAIL FROM), cold senders, same run.

    FLEET_BENCH=singleflight,verp FLEET_BENCH_N=500 FLEET_BENCH_OUTAGE=60 python3 bench_fleet.py
"""
import concurrent.futures
import os
import re
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..", "..")), "tests", "lib"))
import milterclient  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

N = int(os.environ.get("FLEET_BENCH_N", "500"))
OUTAGE = float(os.environ.get("FLEET_BENCH_OUTAGE", "60"))
LATENCY = {"*": {"latency_ms": 100}}


def metrics(m):
    with urllib.request.urlopen("http://%s/metrics" % m.metrics, timeout=10) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out


def start(s, r, name, extra=None):
    o = {"MetricsListen": "127.0.0.1:%d" % smtest.free_port(), "InstanceName": name,
         "StripeTimeout": "10000", "LogLevel": "notice", "LookupThreads": "32"}
    o.update(extra or {})
    m = mta.Milter(standin=s, redis=r, options=o)
    m.metrics = o["MetricsListen"]
    return m


def send(m, addr, envfrom=None):
    h = milterclient.message(m.socket, "<%s>" % (envfrom or addr), from_="X <%s>" % addr)
    if "X-Stripe-Lookup" in h:   # without the contract's version word
        h["X-Stripe-Lookup"] = re.sub(r"^v=\d+; ", "", h["X-Stripe-Lookup"])
    return h


def idle(ms):
    end = time.time() + 60
    while time.time() < end:
        if all(metrics(m)["stripe_milter_lookups_inflight"] == 0 and
               metrics(m)["stripe_milter_lookups_queued"] == 0 for m in ms):
            return
        time.sleep(0.1)


def pool_run(fn, items, workers=200):
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(fn, items))


def bench_singleflight(s, r):
    for ninst in (2, 4):
        r.cmd("FLUSHALL")
        emails = ["sf%d.%d@example.com" % (ninst, i) for i in range(N)]
        s.state({"customers": [{"email": e} for e in emails]})
        s.faults(LATENCY)
        ms = [start(s, r, "S%d" % i) for i in range(ninst)]
        try:
            s.reset()
            todo, rounds, first_dups = list(emails), 0, None
            t0 = time.time()
            while todo and rounds < 20:
                rounds += 1
                res = pool_run(lambda p: send(p[0], p[1]).get("X-Stripe-Lookup", ""),
                               [(m, e) for e in todo for m in ms])
                idle(ms)
                if first_dups is None:
                    per = {}
                    for e in s.requests("customers")["log"]:
                        em = e["params"].get("email")
                        per[em] = per.get(em, 0) + 1
                    first_dups = sum(1 for v in per.values() if v > 1)
                # an address is done once a message got it found (here or from the cache)
                done = {p for p, x in zip([e for e in todo for _ in ms], res) if x.startswith("found")}
                todo = [e for e in todo if e not in done]
                if todo:   # the rest were past their deadline: the next messages ask again
                    res2 = pool_run(lambda e: send(ms[0], e).get("X-Stripe-Lookup", ""), todo)
                    idle(ms)
                    todo = [e for e, x in zip(todo, res2) if not x.startswith("found")]
            total = s.count()
            print("singleflight %d instances: %d senders, %d rounds, %.1f s; Stripe requests %d = "
                  "%.2f per sender (one lookup = 3.00; ratio to one lookup each %.3f); addresses "
                  "fetched twice in the first round: %d of %d" %
                  (ninst, N, rounds, time.time() - t0, total, total / float(N), total / (3.0 * N),
                   first_dups, N))
        finally:
            for m in ms:
                m.stop()
            s.faults({})


def bench_budget(s, r):
    rate, burst = 20, 20
    n = 10 * rate
    r.cmd("FLUSHALL")
    s.state({"customers": [{"email": "b%d@example.com" % i} for i in range(n)],
             "rate_limit_per_s": rate + burst})
    s.faults(LATENCY)
    ms = [start(s, r, "B%d" % i) for i in range(4)]
    try:
        s.reset()
        res = pool_run(lambda i: send(ms[i % 4], "b%d@example.com" % i).get("X-Stripe-Lookup", ""),
                       range(n))
        idle(ms)
        rq = s.requests()
        times = sorted(e["time"] for e in rq["log"])
        most, j = 0, 0
        for i in range(len(times)):
            while times[i] - times[j] >= 1.0:
                j += 1
            most = max(most, i - j + 1)
        late = sum(1 for x in res if "error=" in x)
        print("budget: %d senders from 4 instances against FleetRateLimit %d + burst %d: Stripe saw "
              "%d requests, at most %d in any second (%.2f x budget+burst), %d answered 429; "
              "%d messages past their deadline said so" %
              (n, rate, burst, len(times), most, most / float(rate + burst),
               rq["by_status"].get("429", 0), late))
    finally:
        s.state({"rate_limit_per_s": None})
        s.faults({})
        for m in ms:
            m.stop()


def timed(m, addr):
    t0 = time.time()
    h = send(m, addr)
    return time.time() - t0, h.get("X-Stripe-Lookup", "")


def bench_breaker(s, r):
    cool = 5000
    r.cmd("FLUSHALL")
    s.state({"customers": [{"email": "o%d@example.com" % i} for i in range(5000)]})
    s.faults(LATENCY)
    ms = [start(s, r, "O%d" % i, {"BreakerCooldown": str(cool)}) for i in range(2)]
    try:
        healthy = [timed(ms[i % 2], "o%d@example.com" % i)[0] for i in range(20)]
        s.faults({"*": [{"status": 500, "latency_ms": 100, "times": 20},
                        {"reset": True, "after": 20}]})
        s.reset()
        i, t0, lat_open, open_at = 20, time.time(), [], None
        while time.time() < t0 + OUTAGE:
            el, hdr = timed(ms[i % 2], "o%d@example.com" % i)
            i += 1
            if open_at is None and metrics(ms[0])['stripe_milter_breaker_state{account="default"}'] == 1:
                open_at, before = time.time(), s.count()
            elif open_at is not None:
                lat_open.append(el)
            time.sleep(0.1)
        open_s = time.time() - (open_at or time.time())
        seen_open = s.count() - (before if open_at else 0)
        s.faults(LATENCY)
        t_rec = time.time()
        while True:
            el, hdr = timed(ms[i % 2], "o%d@example.com" % i)
            i += 1
            if hdr.startswith("found") or time.time() > t_rec + 3 * cool / 1000.0:
                break
            time.sleep(0.1)
        resumed = time.time() - t_rec
        print("breaker: Stripe failing %.0f s, steady stream: open after %.1f s; while open (%.1f s, "
              "%.1f cool-downs of %d ms) Stripe saw %d requests; message latency while open p50 "
              "%.3f s p99 %.3f s against %.3f s with Stripe healthy (%.2f x); lookups resumed %.1f s "
              "after recovery (cool-down %.1f s)" %
              (OUTAGE, (open_at or t0) - t0, open_s, open_s * 1000 / cool, cool, seen_open,
               statistics.median(lat_open) if lat_open else 0,
               sorted(lat_open)[int(len(lat_open) * 0.99)] if lat_open else 0,
               statistics.median(healthy), (statistics.median(lat_open) / statistics.median(healthy))
               if lat_open else 0, resumed, cool / 1000.0))
    finally:
        s.faults({})
        for m in ms:
            m.stop()


def bench_backlog(s, r):
    """Stripe hanging, LookupTimeout 1 s, a steady stream (BACKLOG_S seconds at 10 messages a
    second): lookups left queued or running at the end and the time a stop takes, with the
    breaker off (as before) against the default breaker, same run."""
    secs = float(os.environ.get("FLEET_BENCH_BACKLOG_S", "30"))
    out = []
    for label, extra in (("breaker off", {"BreakerFailures": "0"}), ("breaker on", {})):
        r.cmd("FLUSHALL")
        s.state({"customers": [{"email": "h%d@example.com" % i} for i in range(2000)]})
        s.faults({"*": {"hang": True, "hang_s": 60}})
        m = start(s, r, "H", dict(extra, LookupTimeout="1000", BreakerCooldown="5000"))
        lat = []
        try:
            t0, i = time.time(), 0
            with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
                futs = []
                while time.time() < t0 + secs:
                    futs.append(ex.submit(timed, m, "h%d@example.com" % i))
                    i += 1
                    time.sleep(0.1)
                lat = [f.result()[0] for f in futs]
            mm = metrics(m)
            left = mm["stripe_milter_lookups_queued"] + mm["stripe_milter_lookups_inflight"]
        finally:
            stop_s = m.stop()
            s.faults({})
        out.append((label, i, statistics.median(lat), sorted(lat)[int(len(lat) * 0.99)], left, stop_s))
    for label, n, p50, p99, left, stop_s in out:
        print("backlog (%s): Stripe hanging, %d messages in %.0f s, LookupTimeout 1 s: message p50 %.2f s "
              "p99 %.2f s; lookups still queued or running at the end: %d; stop took %.1f s"
              % (label, n, secs, p50, p99, left, stop_s))
    if out[0][5] > 0:
        print("backlog: stop time with the breaker %.2f x without it; lookups left %d against %d"
              % (out[1][5] / out[0][5], out[1][4], out[0][4]))


def bench_verp(s, r):
    r.cmd("FLUSHALL")
    n = 200
    s.state({"customers": [{"email": "member@example.com"}] +
             [{"email": "c%d@example.com" % i} for i in range(2 * n)]})
    s.faults(LATENCY)
    m = start(s, r, "V")
    try:
        s.reset()
        for i in range(n):
            send(m, "member@example.com", envfrom="list-bounces+%d=x@lists.example.org" % i)
        print("verp: %d messages, distinct envelope senders, one customer in From: %d Stripe requests "
              "(%.3f per message; before this change every envelope sender cost a lookup)"
              % (n, s.count(), s.count() / float(n)))
        lat = {}
        for mode, base in (("envelope", 0), ("header-from", n)):
            m.reload({"LookupAddress": mode})
            lat[mode] = [timed(m, "c%d@example.com" % (base + i))[0] for i in range(50)]
        a, b = statistics.median(lat["header-from"]), statistics.median(lat["envelope"])
        print("verp: a cold From = envelope message takes %.3f s with probing at MAIL FROM against "
              "%.3f s when the fill starts at MAIL FROM (ratio %.2f; milterclient sends the "
              "message in one go, so MAIL FROM and the From header are close together)" % (a, b, a / b))
    finally:
        s.faults({})
        m.stop()


def main():
    try:
        mta.binary("stripe-milter")
        s = smtest.Standin()
        r = smtest.Redis()
    except (smtest.Unavailable, RuntimeError) as e:
        print("bench_fleet: skipped: %s" % e)
        return 0
    which = os.environ.get("FLEET_BENCH", "singleflight,budget,breaker,backlog,verp").split(",")
    try:
        for name in which:
            globals()["bench_" + name](s, r)
    finally:
        s.stop()
        r.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
