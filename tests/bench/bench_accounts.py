#!/usr/bin/env python3
"""bench_accounts.py - the figures of issue #21 (several Stripe accounts, AccountTable): two
Stripe stand-ins, one per account, each answering every request after 100 ms; messages sent
by tests/bench/mload. Baselines are measured in the same run, rounds interleaved.

  cold      never-seen customers (present in both accounts), concurrency 1: end-of-message
            latency with one account against two. Two accounts asked at once cost the same
            round trips as one, so the ratio is about 1 (asked one after the other it would be
            about 2); "round trips" is the median latency over the stand-in's 100 ms.
  hang      the second account's API never answers, LookupTimeout 1000 ms, concurrency 5:
            p99 of end-of-message must stay within LookupTimeout + 100 ms (a failed check
            makes the exit status 1), and every message still carries the first account's
            answer. The first BreakerFailures messages wait the whole LookupTimeout; then the
            hanging account's breaker opens and it answers error=unavailable at once.

    ACCOUNTS_BENCH_ROUNDS=3 ACCOUNTS_BENCH_N=20 python3 bench_accounts.py
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", os.path.join(HERE, "..", "..")),
                                "tests", "lib"))
sys.path.insert(0, HERE)
import benchlib as bl  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

ROUNDS = int(os.environ.get("ACCOUNTS_BENCH_ROUNDS", "3"))
N = int(os.environ.get("ACCOUNTS_BENCH_N", "20"))
LATENCY_MS = 100
HANG_TIMEOUT_MS = 1000
FMT = "acct%d@customer.test"
PROBLEMS = []


def write(path, text, mode=0o600):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
        f.write(text)
    return path


def daemon(d, name, standins, **opts):
    """A daemon reading one account per stand-in (named a0, a1, ...)."""
    lines = []
    for i, s in enumerate(standins):
        k = write(os.path.join(d, "%s-a%d.key" % (name, i)), "sk_test_bench_accounts_%d_0123456789\n" % i)
        lines.append("a%d %s api-base=%s" % (i, k, s.url))
    tbl = write(os.path.join(d, name + ".accounts"), "\n".join(lines) + "\n", 0o644)
    o = {"AccountTable": tbl, "StripeKeyFile": None, "LogLevel": "notice", "StatsInterval": "10",
         "StripeRateLimit": "1000", "StripeRateBurst": "1000"}
    o.update({k: str(v) for k, v in opts.items()})
    return mta.Milter(options=o)


def round_trips(standins, t0):
    """Round trips in the stand-ins' logs since t0 (requests made one message at a time)."""
    log = sorted((e["time"], e["time"] + (e.get("ms") or 0) / 1000.0) for s in standins
                 for e in s.requests()["log"] if e["time"] >= t0)
    trips, end = 0, 0.0
    for start, stop in log:
        if start >= end:
            trips += 1
        end = max(end, stop)
    return trips


def cold(m, n, off):
    return bl.mload(m.socket, 1, n, distinct=n, offset=off, fmt=FMT, expect=[bl.LOOKUP + "found"],
                    tally="X-Stripe-Lookup", per_conn=1000, forged=0)


def bench_cold(s1, s2, d):
    print("== cold lookups, concurrency 1, every Stripe request answered after %d ms: one account "
          "against two" % LATENCY_MS)
    one = daemon(d, "one", [s1])
    two = daemon(d, "two", [s1, s2])
    off = 0
    res = {"one": [], "two": []}
    try:
        for r in range(ROUNDS):
            for name, m in (("one", one), ("two", two)) if r % 2 == 0 else (("two", two), ("one", one)):
                t0 = time.time()
                x = cold(m, N, off)
                x["trips"] = round_trips([s1, s2], t0) / float(N)
                off += N
                if x.get("bad") or x.get("errors"):
                    PROBLEMS.append("cold %s: %s" % (name, x))
                res[name].append(x)
        rt = {k: [x["trips"] for x in v] for k, v in res.items()}
        ratio = [b["p50"] / a["p50"] for a, b in zip(res["one"], res["two"])]
        print("  one account:  p50 %s ms, p99 %s ms, %s round trips" % (
            bl.spread([x["p50"] for x in res["one"]], "%.0f"), bl.spread([x["p99"] for x in res["one"]], "%.0f"),
            bl.spread(rt["one"], "%.2f")))
        print("  two accounts: p50 %s ms, p99 %s ms, %s round trips" % (
            bl.spread([x["p50"] for x in res["two"]], "%.0f"), bl.spread([x["p99"] for x in res["two"]], "%.0f"),
            bl.spread(rt["two"], "%.2f")))
        print("  => two accounts / one account, p50: %s (asked one after the other: about 2)" %
              bl.spread(ratio, "%.2f"))
        if statistics.median(rt["two"]) > statistics.median(rt["one"]) + 0.5:
            PROBLEMS.append("cold: two accounts take more round trips than one")
    finally:
        one.stop()
        two.stop()


def bench_hang(s1, s2, d):
    print("== the second account's API hanging, LookupTimeout %d ms, concurrency 5" % HANG_TIMEOUT_MS)
    m = daemon(d, "hang", [s1, s2], LookupTimeout=HANG_TIMEOUT_MS)
    s2.faults({"*": {"hang": True, "hang_s": 60}})
    p99, p50 = [], []
    try:
        for r in range(ROUNDS):
            x = bl.mload(m.socket, 5, 5 * N, distinct=5 * N, offset=100000 + r * 5 * N, fmt=FMT,
                         expect=[bl.LOOKUP + "found"], tally="X-Stripe-Lookup", per_conn=1000, forged=0)
            if x.get("bad") or x.get("errors"):
                PROBLEMS.append("hang: messages without the first account's answer: %s" % x)
            p99.append(x["p99"])
            p50.append(x["p50"])
        print("  end of message p99 %s ms, p50 %s ms (bound: LookupTimeout + 100 = %d ms)" % (
            bl.spread(p99, "%.0f"), bl.spread(p50, "%.0f"), HANG_TIMEOUT_MS + 100))
        if max(p99) > HANG_TIMEOUT_MS + 100:
            PROBLEMS.append("hang: p99 %.0f ms past LookupTimeout + 100 ms" % max(p99))
    finally:
        s2.faults({})
        m.stop()


def main():
    try:
        mta.binary("stripe-milter")
        bl.tool("mload")
        s1, s2 = smtest.Standin(), smtest.Standin()
    except (smtest.Unavailable, RuntimeError) as e:
        print("bench_accounts: skipped: %s" % e)
        return 0
    d = smtest.tempdir("sm-bench-acct-")
    os.chmod(d, 0o755)
    try:
        for s in (s1, s2):
            bl.seed_customers(s, FMT, ROUNDS * N * 2)
            bl.seed_customers(s, FMT, ROUNDS * 5 * N, start=100000)
            s.faults({"*": {"latency_ms": LATENCY_MS}})
        bench_cold(s1, s2, d)
        for s in (s1, s2):
            s.faults({"*": {"latency_ms": LATENCY_MS}})
        bench_hang(s1, s2, d)
    finally:
        s1.stop()
        s2.stop()
    for p in PROBLEMS:
        print("PROBLEM: " + p)
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
