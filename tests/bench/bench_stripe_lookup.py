#!/usr/bin/env python3
"""bench_stripe_lookup.py - requests and latency of a cold Stripe lookup, before and after
issue #11, with the stand-in answering every request after 100 ms (Stripe's own latency is of
that order), so latency / 100 ms is the number of sequential round trips.

"before" is the client at BASE (default 1e46fcd, the tree issue #11 was filed against; taken
with `git archive`), "after" the client of this tree (the build directory's libstripe.a). Both
are driven by the same program (stripe_lookup_bench.c) against the same stand-in state, in the
same run; figures are printed as after/before ratios. Without git history (a release tarball)
only "after" is printed.

Cases: the common one (a customer with one subscription and recent charges; plan-name cache
cold, then warm as it is in practice), a mixed-case stored address (found only by "after"),
and an unknown sender (most mail: "after" adds the search fallback).

    top_srcdir=. top_builddir=_build python3 tests/bench/bench_stripe_lookup.py [--lookups N]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("top_srcdir") or os.path.join(HERE, "..", "..")
BUILD = os.environ.get("top_builddir") or "."
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
import smtest  # noqa: E402

BASE = os.environ.get("STRIPE_BENCH_BASE", "1e46fcd")
LATENCY_MS = 100

STATE = {
    "products": [{"id": "prod_pro", "name": "Pro"}],
    "customers": [
        {"id": "cus_common", "email": "jenny@example.com", "name": "Jenny",
         "subscriptions": [{"status": "active", "items": [{"price": {
             "unit_amount": 4900, "product": "prod_pro",
             "recurring": {"interval": "month", "interval_count": 1}}}]}],
         "charges": [{"amount": 4900}, {"amount": 4900}, {"amount": 4900, "status": "failed"}]},
        {"id": "cus_mixed", "email": "Some.One@Example.COM",
         "subscriptions": [{"status": "active", "items": [{"price": {"product": "prod_pro"}}]}],
         "charges": [{"amount": 4900}]},
    ],
}
CASES = [
    ("common case, plan-name cache cold", "jenny@example.com", "cold"),
    ("common case, plan-name cache warm", "jenny@example.com", "warm"),
    ("stored Some.One@Example.COM, sender some.one@example.com", "some.one@example.com", "warm"),
    ("unknown sender", "nobody@example.com", "warm"),
]


def pkg_flags():
    try:
        out = subprocess.run(["pkg-config", "--cflags", "--libs", "libcurl", "jansson"],
                             check=True, capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as e:
        raise smtest.Unavailable("pkg-config libcurl jansson: %s" % e)
    return out + ["-lpthread"]


def build_after(tmp):
    libs = [os.path.join(BUILD, "stripe", "libstripe.a"),
            os.path.join(BUILD, "common", "libsmcommon.a")]
    for lib in libs:
        if not os.path.exists(lib):
            raise smtest.Unavailable("%s not built (run make first)" % lib)
    exe = os.path.join(tmp, "after")
    subprocess.run(["cc", "-O2", "-I", BUILD, "-I", SRC,
                    os.path.join(HERE, "stripe_lookup_bench.c"), "-o", exe] + libs + pkg_flags(),
                   check=True)
    return exe


def build_before(tmp):
    """The client at BASE, from git; None without history."""
    src = os.path.join(tmp, "before-src")
    os.makedirs(src)
    try:
        arc = subprocess.run(["git", "-C", SRC, "archive", BASE, "stripe", "common"],
                             check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    subprocess.run(["tar", "-x", "-C", src], input=arc, check=True)
    cs = [os.path.join(d, f) for d in (os.path.join(src, "stripe"), os.path.join(src, "common"))
          for f in sorted(os.listdir(d)) if f.endswith(".c")]
    exe = os.path.join(tmp, "before")
    # config.h from this build (PACKAGE_* and feature macros only); the old sources first.
    subprocess.run(["cc", "-O2", "-I", src, "-I", BUILD,
                    os.path.join(HERE, "stripe_lookup_bench.c")] + cs + ["-o", exe] + pkg_flags(),
                   check=True)
    return exe


def run(exe, url, email, mode, n):
    out = subprocess.run([exe, url, email, str(n), mode], check=True, capture_output=True,
                         text=True, timeout=600).stdout
    f = dict(kv.split("=") for kv in out.split())
    return float(f["requests"]), float(f["ms"]), int(f["found"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lookups", type=int, default=5)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-stripe-")
    s = None
    try:
        after = build_after(tmp)
        before = build_before(tmp)
        s = smtest.Standin()
        s.state(STATE)
        s.faults({"*": {"latency_ms": LATENCY_MS}})
        print("cold Stripe lookups, stand-in answering after %d ms; %d lookups per figure; "
              "before = client at %s, after = this tree" % (LATENCY_MS, a.lookups,
                                                           BASE if before else "(no git: n/a)"))
        print("%-58s %21s %21s %12s" % ("case", "requests/lookup", "latency ms (trips)",
                                          "found"))
        for name, email, mode in CASES:
            ra, ma, fa = run(after, s.url, email, mode, a.lookups)
            if before:
                rb, mb, fb = run(before, s.url, email, mode, a.lookups)
                print("%-58s %5.1f -> %4.1f (x%.2f) %5.0f -> %4.0f (x%.2f) %4d -> %d" % (
                    name, rb, ra, ra / rb if rb else 0, mb, ma, ma / mb if mb else 0,
                    fb, fa))
            else:
                print("%-58s %21.1f %14.0f (%2.0f) %12d" % (name, ra, ma, ma / LATENCY_MS, fa))
        print("round trips = latency / %d ms; target for the common case: at most 2 round "
              "trips and 3 requests" % LATENCY_MS)
    except smtest.Unavailable as e:
        print("skipped: %s" % e)
    finally:
        if s:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
