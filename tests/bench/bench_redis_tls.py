#!/usr/bin/env python3
"""bench_redis_tls.py - what Redis over TLS through the stunnel4 tunnel costs (README "Redis
over TLS"): lookups answered from Redis, direct against through the tunnel, measured in the
same run with rounds interleaved.

One redis-server listens on a plain port and on a TLS port (client certificates required,
certificates made by openssl: tests/lib/tlsredis.py); stunnel4 runs the shipped
conf/stunnel-redis.conf on loopback. Two stripe-milter daemons with the in-process cache
off (CacheL1Entries 0, so every lookup is a Redis GET): one on the plain port ("direct"),
one on the tunnel ("tunnel"). mload sends the same warm messages (20 customers, all in
Redis; every answer must be found; cache=hit) at concurrency 1 and 20. Figures: msg/s of
tunnel / direct, the added p50 and p99 latency per message (MAIL to the reply at end of
message), and the CPU stunnel4 spends per message. On one machine the tunnel's TLS costs
CPU on both ends of the same 2 cores; across a network the round trip to the Redis
dominates either way. Asserts nothing but that every message got its headers.

    BENCH_ROUNDS=5 BENCH_SCALE=1 python3 bench_redis_tls.py
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", os.path.join(HERE, "..", "..")), "tests", "lib"))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402  (the warm section's helpers: milter, interleave, ratios, ...)
import benchlib as bl  # noqa: E402
import smtest  # noqa: E402
import tlsredis  # noqa: E402


def run():
    B.say("\n== Redis over TLS: lookups answered from Redis, direct against through stunnel4")
    stop = []
    try:
        pki = tlsredis.PKI(smtest.tempdir("sm-pki-"))
        redis = tlsredis.TLSRedis(pki, plain=True)
        stop.append(redis)
        standin = smtest.Standin()
        stop.append(standin)
        local = smtest.free_port()
        tun = tlsredis.Stunnel(pki, [(local, redis.tls_port, pki.ca)])
        stop.append(tun)
        bl.seed_customers(standin, B.WARM_FMT, B.WARM_N)
        direct = B.milter(standin, None, RedisHost="127.0.0.1", RedisPort=redis.port, CacheL1Entries=0)
        stop.append(direct)
        tunnel = B.milter(standin, None, RedisHost="127.0.0.1", RedisPort=local, CacheL1Entries=0)
        stop.append(tunnel)
        for m in (direct, tunnel):      # fill Redis; then every answer a Redis hit?
            bl.mload(B.msock(m), 10, B.WARM_N, distinct=B.WARM_N, fmt=B.WARM_FMT)
            B.check("warm-up", bl.mload(B.msock(m), 1, B.WARM_N, distinct=B.WARM_N, fmt=B.WARM_FMT,
                                        expect=[B.FOUND_HIT]))
        targets = {"direct": (B.msock(direct), direct.proc.pid, [B.FOUND_HIT]),
                   "tunnel": (B.msock(tunnel), tunnel.proc.pid, [B.FOUND_HIT])}
        B.say("   %d rounds interleaved; messages per run: %s" % (B.ROUNDS, {c: B.n_for(c) for c in (1, 20)}))
        for conns in (1, 20):
            cpu = []
            res = {name: [] for name in targets}
            for r in range(B.ROUNDS):       # interleaved as bench.py does, with stunnel's CPU
                for name in (list(targets) if r % 2 == 0 else list(reversed(list(targets)))):
                    sock, pid, expect = targets[name]
                    c0 = bl.proc_sample(tun.proc.pid)["cpu"]
                    x = bl.mload(sock, conns, B.n_for(conns), pid=pid, expect=expect, distinct=B.WARM_N,
                                 fmt=B.WARM_FMT)
                    B.check("tls %s c=%d" % (name, conns), x)
                    if name == "tunnel":
                        cpu.append((bl.proc_sample(tun.proc.pid)["cpu"] - c0) * 1000.0 / max(1.0, x["msgs"]))
                    res[name].append(x)
            B.table(res, conns)
            B.summary("Redis through the stunnel4 tunnel c=%d: %sx msg/s of direct; added latency p50 %s ms, "
                      "p99 %s ms; stunnel4 CPU %s ms/msg" % (
                          conns, bl.spread(B.ratios(res, "tunnel", "direct")),
                          bl.spread(B.diffs(res, "tunnel", "direct", "p50"), "%.3f"),
                          bl.spread(B.diffs(res, "tunnel", "direct", "p99"), "%.3f"),
                          bl.spread(cpu, "%.3f")))
    finally:
        for x in reversed(stop):
            x.stop()


def main():
    B.say("stripe-milter Redis-over-TLS benchmark: %s" % B.machine())
    try:
        bl.tool("mload")
        run()
    except smtest.Unavailable as e:
        B.say("bench_redis_tls: skipped: %s" % e)
        return 1 if os.environ.get("CI") == "true" else 0
    for p in B.PROBLEMS:
        B.say("PROBLEM: " + p)
    return 1 if B.PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
