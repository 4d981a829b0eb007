#!/usr/bin/env python3
"""test_codec_upgrade.py - a rolling upgrade: two daemons whose summary codecs differ (the
build's milter/stripe-milter, codec 1, and tests/milter/stripe-milter-codec2, the same
sources built with CPPFLAGS=-DLK_SUMMARY_VERSION=2) on one redis-server with one
CachePrefix. Each answers from its own entries (the codec version is part of the key:
"<prefix>:v1:sum<N>:..."), neither purges the other's, and neither logs a warning or error.

The in-process cache is off (CacheL1Entries 0), so every answer after the first comes
from Redis: a "cache=hit" is the daemon reading its own entry there.
"""
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import milterclient  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

HDR_LEN = 24    # the cache entry's header (cache/cache_entry.c), then the summary's bytes
BAD_LEVEL = re.compile(r"^\S+ (warning|error|crit|alert|emerg): .*$", re.M)


def lookup(m, addr):
    h = milterclient.message(m.socket, "<%s>" % addr, from_="X <%s>" % addr)
    return h.get("X-Stripe-Lookup", "")


def main():
    t = smtest.TAP()
    try:
        codec2 = os.path.join(smtest.builddir(), "tests", "milter", "stripe-milter-codec2")
        if not os.access(codec2, os.X_OK):
            raise smtest.Unavailable("%s is not built (make check builds it)" % codec2)
        mta.binary("stripe-milter")
        redis = smtest.Redis()
        s = smtest.Standin()
        s.state({"customers": [{"id": "cus_up", "email": "up@customer.test", "name": "Up Grade"}]})
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    opts = {"CacheL1Entries": "0", "LookupTimeout": "10000"}
    old = new = None
    try:
        old = mta.Milter(s, redis, options=opts)
        new = mta.Milter(s, redis, options=opts, program=codec2)
        for addr, word in (("up@customer.test", "found"), ("nobody@elsewhere.test", "not-found")):
            s.reset()
            t.like(lookup(old, addr), r"^v=2; %s; cache=miss" % word, "%s, codec 1: filled" % addr)
            t.like(lookup(new, addr), r"^v=2; %s; cache=miss" % word,
                   "%s, codec 2: filled too (the codec 1 entry is not its own)" % addr)
            n = s.count("customers")
            for i in range(2):
                t.like(lookup(old, addr), r"^v=2; %s; cache=hit" % word,
                       "%s, codec 1: its own entry (%d)" % (addr, i))
                t.like(lookup(new, addr), r"^v=2; %s; cache=hit" % word,
                       "%s, codec 2: its own entry (%d)" % (addr, i))
            t.is_(s.count("customers"), n, "%s: no more Stripe requests once both are cached" % addr)
            sha = hashlib.sha256(addr.encode()).hexdigest()
            keys = sorted(k if isinstance(k, str) else k.decode()
                          for k in redis.cmd("KEYS", "stripe-milter:v1:*" + sha))
            t.is_(keys, ["stripe-milter:v1:sum1:test:-:" + sha, "stripe-milter:v1:sum2:test:-:" + sha],
                  "%s: one entry per codec version" % addr)
            for k in keys:
                body = redis.cmd("GET", k, raw=True)[HDR_LEN:]
                t.is_(json.loads(body.decode())["v"], int(k.split(":")[2][3:]),
                      "%s holds its codec's summary" % k.split(":")[2])
    finally:
        for m in (old, new):
            if m is not None:
                m.stop()
        s.stop()
        redis.stop()
    for m, name in ((old, "codec 1"), (new, "codec 2")):
        log = m.log() if m else ""
        t.ok(log and "unreadable" not in log and "purged" not in log, "%s: no entry purged" % name)
        t.is_(BAD_LEVEL.findall(log), [], "%s: no warning or error in the log" % name)
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
