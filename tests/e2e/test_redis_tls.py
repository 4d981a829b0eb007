#!/usr/bin/env python3
"""test_redis_tls.py - Redis over TLS through the shipped stunnel4 tunnel (README "Redis over
TLS", conf/stunnel-redis.conf, conf/stunnel-redis.service).

Debian's redis-server 7 listens with tls-port only (port 0; client certificates required),
certificates made by openssl here; stunnel4 runs the shipped config (its [redis] section with
this test's ports and files) as a client tunnel on loopback. The milter, configured with
RedisHost 127.0.0.1 and the tunnel's port, finds a customer; a new milter process (empty
in-process cache) finds it again with cache=hit and no Stripe request: it came from the
TLS-only Redis, which holds the entry (read with redis-cli --tls). A plain PING to the TLS
port gets no PONG. A tunnel that trusts another CA refuses the server: the milter runs on
without Redis (mail still gets its headers from Stripe, /healthz degraded). Sentinel: a
redis-sentinel on a TLS port only, reached through a second tunnel, watching the master by
its tunnel address; the milter asks it and reaches the master through the tunnel it names
(cache hit, no Stripe request). The shipped unit is ordered before stripe-milter and runs the
config at the path the README gives.
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402
import tlsredis  # noqa: E402

SEED = os.path.join(smtest.srcdir(), "tests", "demo", "seed.json")
SCRIPT = os.path.join(smtest.srcdir(), "tests", "milter", "mt_message.lua")
ADDR = "jenny@customer.test"


def send(m, sender, expect):
    rc, out = mta.miltertest(SCRIPT, {"MT_SOCKET": m.socket, "MT_ENVFROM": "<%s>" % sender, "MT_FROM": sender,
                                      "MT_EXPECT": expect, "MT_STATUS": "*"})
    return rc == 0, out


def milter(s, port, **opts):
    o = {"RedisHost": "127.0.0.1", "RedisPort": str(port), "CacheL1TTL": "3600", "InstanceName": "tls%d" % port}
    o.update(opts)
    return mta.Milter(s, None, options=o)


def main():
    t = smtest.TAP()
    stop = []
    try:
        if not os.path.exists("/usr/bin/miltertest"):
            raise smtest.Unavailable("miltertest is not installed")
        d = smtest.tempdir("sm-pki-")
        pki = tlsredis.PKI(d)
        redis = tlsredis.TLSRedis(pki)
        stop.append(redis)
        s = smtest.Standin(args=["--seed", SEED])
        stop.append(s)
    except smtest.Unavailable as e:
        for x in stop:
            x.stop()
        smtest.TAP.skip_all(str(e))
    try:
        run(t, pki, redis, s, stop)
    finally:
        for x in reversed(stop):
            x.stop()
    mta.assert_clean(t)
    return t.done()


def run(t, pki, redis, s, stop):
    t.ok(b"+PONG" not in tlsredis.plain_ping(redis.tls_port),
         "redis-server answers TLS only: a plain PING to its tls-port gets no PONG")
    t.is_(redis.cli("PING"), "PONG", "redis-cli --tls with the client certificate: PONG")
    local, slocal, bad = smtest.free_port(), smtest.free_port(), smtest.free_port()
    try:
        sentinel = tlsredis.TLSSentinel(pki, local)
        stop.append(sentinel)
    except smtest.Unavailable as e:
        if smtest.ci():
            raise
        sentinel = None
        t.skip("Sentinel through the tunnel", str(e))
    services = [(local, redis.tls_port, pki.ca)]
    if sentinel:
        services.append((slocal, sentinel.tls_port, pki.ca))
    tun = tlsredis.Stunnel(pki, services)
    stop.append(tun)

    # a lookup through the tunnel; a new process (empty L1) gets it from Redis
    m = milter(s, local)
    stop.append(m)
    ok, out = send(m, ADDR, "found; cache=miss")
    t.ok(ok, "through the tunnel: found (filled from Stripe)", out)
    n = s.count()
    t.ok(smtest.wait_for(lambda: "sum" in redis.cli("--scan", "--pattern", "stripe-milter:*"), timeout=20),
         "the entry is in the TLS-only Redis (redis-cli --tls --scan)", redis.cli("--scan"))
    m.stop()
    stop.remove(m)
    m = milter(s, local)
    stop.append(m)
    ok, out = send(m, ADDR, "found; cache=hit")
    t.ok(ok and s.count() == n, "a new milter process: found; cache=hit, no Stripe request (%d then %d): "
         "Redis was used, over TLS" % (n, s.count()), out)
    st = field(m, "l2_hits", lambda v: v >= 1)
    t.ok(st and st["redis_errors"] == 0, "its statistics, published to that Redis through the tunnel: "
         "a Redis hit, no Redis error", str(st))
    m.stop()
    stop.remove(m)

    # a tunnel that does not trust the server's CA: no Redis, mail still enriched
    tbad = tlsredis.Stunnel(pki, [(bad, redis.tls_port, pki.other_ca())])
    stop.append(tbad)
    mb = milter(s, bad, MetricsListen="127.0.0.1:%d" % smtest.free_port())
    stop.append(mb)
    ok, out = send(mb, "pat@customer.test", "found; cache=miss")
    t.ok(ok, "tunnel refusing the server's certificate: mail still gets its headers (from Stripe)", out)
    port = int(mb.options["MetricsListen"].rsplit(":", 1)[1])

    def degraded():
        return b"degraded" in smtest.http_call("http://127.0.0.1:%d" % port, "GET", "/healthz")[2]
    t.ok(smtest.wait_for(degraded, timeout=30), "and /healthz says degraded (Redis unreachable)")
    t.ok(smtest.wait_for(lambda: re.search(r"certificate verify failed|CERTIFICATE_VERIFY_FAILED", tbad.log()),
                         timeout=20), "stunnel logs why: certificate verify failed", tbad.log()[-1500:])
    mb.stop()
    stop.remove(mb)

    # Sentinel on TLS through a second tunnel; the master address it hands out is the tunnel's
    if sentinel:
        t.is_(sentinel.cli("SENTINEL", "get-master-addr-by-name", "mymaster").split(),
              ["127.0.0.1", str(local)], "Sentinel (TLS only) names the master by its tunnel address")
        n = s.count()
        ms = mta.Milter(s, None, options={"RedisSentinels": "127.0.0.1:%d" % slocal, "CacheL1TTL": "3600",
                                          "InstanceName": "sentinel-client"})
        stop.append(ms)
        ok, out = send(ms, ADDR, "found; cache=hit")
        t.ok(ok and s.count() == n, "RedisSentinels through the tunnel: the master found, cache=hit, no Stripe "
             "request", out + ms.log()[-1500:])
        st = field(ms, "l2_hits", lambda v: v >= 1)
        t.ok(st and st["sentinel_discoveries"] >= 1 and st["redis_errors"] == 0,
             "its statistics: the master discovered through Sentinel, a Redis hit, no Redis error", str(st))
        ms.stop()
        stop.remove(ms)

    # the shipped unit: before stripe-milter, wanted by it, running the documented config path
    with open(os.path.join(smtest.srcdir(), "conf", "stunnel-redis.service")) as f:
        unit = f.read()
    with open(os.path.join(smtest.srcdir(), "README.md")) as f:
        readme = f.read()
    t.ok(re.search(r"(?m)^Before=stripe-milter\.service$", unit) and
         re.search(r"(?m)^WantedBy=.*\bstripe-milter\.service\b", unit) and
         "ExecStart=/usr/bin/stunnel4 /etc/stunnel/stripe-milter-redis.conf" in unit and
         "/etc/stunnel/stripe-milter-redis.conf" in readme,
         "stunnel-redis.service: ordered before stripe-milter, wanted by it, runs the config the README installs")
    if shutil.which("systemd-analyze"):
        d = smtest.tempdir("sm-unit-")
        shutil.copy(os.path.join(smtest.srcdir(), "conf", "stunnel-redis.service"), d)
        r = subprocess.run(["systemd-analyze", "verify", "./stunnel-redis.service"], cwd=d, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        out = r.stdout.decode()
        t.ok(r.returncode == 0 and out.strip() == "", "systemd-analyze verify stunnel-redis.service: clean", out)
    elif smtest.ci():
        t.ok(False, "systemd-analyze (package systemd) is needed to verify the shipped unit")
    else:
        t.skip("systemd-analyze verify", "systemd-analyze not installed")


def field(m, name, cond, timeout=30.0):
    """Waits until m's instance, read by `stats --json` (through the same tunnel), has
    cond(fields[name]); its raw fields, or None at the deadline."""
    last = {}

    def check():
        rc, out, err = mta.ctl(m.conf, "--json", "stats")
        try:
            st = json.loads(out)
        except ValueError:
            return False
        for i in st.get("instances", []):
            if i["instance"] == m.options["InstanceName"] and i["state"] == "live":
                last.clear()
                last.update(i["fields"])
                return cond(i["fields"].get(name, 0))
        return False
    return dict(last) if smtest.wait_for(check, timeout=timeout) else None


if __name__ == "__main__":
    sys.exit(main())
