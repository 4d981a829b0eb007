#!/usr/bin/env python3
"""bench_tcp.py - one SMTP session's throughput through Postfix + stripe-milter, with the
milter on an inet: socket against the same on a unix: socket (the baseline of this run).

libmilter never sets TCP_NODELAY, so on TCP small milter replies wait for delayed ACKs
(~40 ms each, about 10 msg/s for one session); stripe-milter sets it on accepted
connections. Prints messages per second for each and the ratio inet/unix (1.0 = as fast).
Lookups are cache hits after the first message, so the figure is the milter path itself.

Usage: bench_tcp.py [messages]   (default 200)
"""
import os
import smtplib
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402


def run(standin, socket, n):
    m = mta.Milter(standin, None, socket=socket, options={"LogLevel": "notice"})
    p = mta.Postfix(m.mta_socket)
    try:
        msg = ("From: Jenny <jenny@customer.test>\r\nTo: support@example.test\r\n"
               "Subject: bench\r\n\r\nhello\r\n")
        s = smtplib.SMTP("127.0.0.1", p.port, timeout=30)
        s.ehlo("bench.example.net")
        s.sendmail("jenny@customer.test", ["support@example.test"], msg)   # warm the cache
        t0 = time.time()
        for _ in range(n):
            s.sendmail("jenny@customer.test", ["support@example.test"], msg)
        elapsed = time.time() - t0
        s.quit()
        got = p.wait_mail("support", n + 1, timeout=60)
        ok = len(got) >= n + 1 and all(b"X-Stripe-Lookup: found" in g for g in got)
        return n / elapsed, ok
    finally:
        p.stop()
        m.stop()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    try:
        standin = smtest.Standin(args=["--seed", os.path.join(smtest.srcdir(), "tests", "demo",
                                                              "seed.json")])
    except smtest.Unavailable as e:
        print("bench_tcp: skipped: %s" % e)
        return 0
    try:
        unix, ok1 = run(standin, "unix", n)
        inet, ok2 = run(standin, "inet", n)
    except smtest.Unavailable as e:
        print("bench_tcp: skipped: %s" % e)
        return 0
    finally:
        standin.stop()
    print("one SMTP session, %d messages, Postfix -> stripe-milter (cache hits)" % n)
    print("  unix: socket  %7.1f msg/s  (baseline)" % unix)
    print("  inet: socket  %7.1f msg/s  ratio inet/unix = %.2f" % (inet, inet / unix))
    if not (ok1 and ok2):
        print("  WARNING: not every message was delivered with its headers")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
