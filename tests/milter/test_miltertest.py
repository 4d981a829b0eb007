#!/usr/bin/env python3
"""test_miltertest.py - the milter protocol under miltertest (tests/milter/mt_message.lua).

Starts a private redis-server, the Stripe stand-in and the daemon, then runs the Lua script
once per case: headers added, forged copies deleted (several, case variants, folded),
every skip rule, Stripe hanging (deadline held), 429, 5xx, a restricted key without
permission, Redis down, and the same over an inet: socket.
"""
import hashlib
import os
import re
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

SCRIPT = os.path.join(smtest.srcdir(), "tests", "milter", "mt_message.lua")
STATE = {
    "products": [{"id": "prod_pro", "name": "Pro"}, {"id": "prod_team", "name": "Team"}],
    "customers": [{"id": "cus_jenny", "email": "jenny@customer.test", "name": "Jenny Rosen"},
                  {"id": "cus_pat", "email": "pat@customer.test", "name": "Pat Late",
                   "delinquent": True},
                  {"id": "cus_quinn", "email": "quinn@customer.test", "name": "Quinn"},
                  {"id": "cus_rae", "email": "rae@customer.test", "name": "Rae"}],
    "subscriptions": [
        {"customer": "cus_jenny", "status": "active",
         "items": [{"price": {"unit_amount": 4900, "currency": "usd", "product": "prod_pro",
                              "recurring": {"interval": "month", "interval_count": 1}}}]},
        {"customer": "cus_pat", "status": "past_due",
         "items": [{"price": {"unit_amount": 4900, "currency": "usd", "product": "prod_pro",
                              "recurring": {"interval": "month", "interval_count": 1}}}]},
        {"customer": "cus_quinn", "status": "active",
         "items": [{"price": {"unit_amount": 9900, "currency": "usd", "product": "prod_team",
                              "recurring": {"interval": "month", "interval_count": 1}}}]},
        {"customer": "cus_rae", "status": "active",
         "items": [{"price": {"unit_amount": 9900, "currency": "usd", "product": "prod_team",
                              "recurring": {"interval": "month", "interval_count": 1}}}]}],
    "keys": {"rk_test_nocust": {"missing": ["rak_customer_read"]}},
}


def main():
    t = smtest.TAP()
    try:
        if not os.path.exists("/usr/bin/miltertest"):
            raise smtest.Unavailable("miltertest is not installed (apt-get install miltertest)")
        redis = smtest.Redis()
        s = smtest.Standin()
        s.state(STATE)
        m = mta.Milter(s, redis, options={
            "LookupTimeout": "1000", "InternalHosts": "10.0.0.0/8, 2001:db8::/32",
            "Recipients": "support@example.test, @billing.example.test",
            "SkipSenderDomains": "example.test"})
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))

    def case(name, expect, status="", **env):
        e = {"MT_SOCKET": m.socket, "MT_EXPECT": expect, "MT_STATUS": status}
        e.update({k.upper(): v for k, v in env.items()})
        t0 = time.time()
        rc, out = mta.miltertest(SCRIPT, e)
        t.ok(rc == 0, name, out + "\nmilter log tail:\n" + m.log()[-1500:])
        return time.time() - t0

    try:
        case("found, headers added", r"^v=2; found; cache=miss; mode=test$", "active")
        case("second time: cache hit", r"^v=2; found; cache=hit; age=%d+; mode=test$", "active")
        case("forged copies deleted, ours added", r"^v=2; found;", "past_due",
             mt_envfrom="<pat@customer.test>", mt_from="<pat@customer.test>", mt_forged="yes")
        case("forged copies deleted on a skipped message too", r"^v=2; skipped=authenticated$",
             mt_auth="jenny", mt_forged="yes")
        case("SMTP AUTH skipped", r"^v=2; skipped=authenticated$", mt_auth="jenny")
        case("internal IPv4 host skipped", r"^v=2; skipped=internal%-host$", mt_ip="10.1.2.3")
        case("internal IPv6 host skipped", r"^v=2; skipped=internal%-host$", mt_ip="2001:db8::25")
        case("recipient filter: other recipient skipped", r"^v=2; skipped=recipient$",
             mt_rcpt="<sales@example.test>")
        case("recipient filter: domain entry matches", r"^v=2; found;", "active",
             mt_rcpt="<anyone@billing.example.test>")
        case("own sender domain skipped", r"^v=2; skipped=sender%-domain$",
             mt_envfrom="<me@example.test>", mt_from="me@example.test")
        case("null sender skipped", r"^v=2; skipped=null%-sender$", mt_envfrom="<>", mt_from="")
        case("bounce sender skipped", r"^v=2; skipped=bounce$",
             mt_envfrom="<MAILER-DAEMON@elsewhere.test>", mt_from="MAILER-DAEMON@elsewhere.test")
        case("no From header", r"^v=2; skipped=no%-sender$", mt_from="")
        case("malformed From header", r"^v=2; skipped=malformed%-sender$", mt_from="<<<oops")
        case("From names another address: its lookup", r"^v=2; not%-found;",
             mt_from="Someone <someone@elsewhere.test>")

        # HeaderPrivacy takes effect on a reload (it used to need a restart: the Stripe
        # client, which fetches plan names, was kept across the reload). prod_team's name
        # has never been asked for, so a client that still fetches plan names asks Stripe.
        m.reload({"HeaderPrivacy": "yes"})
        s.reset()
        case("HeaderPrivacy yes by reload: found", r"^v=2; found; cache=miss", "active",
             mt_envfrom="<quinn@customer.test>", mt_from="quinn@customer.test")
        t.ok(s.count("customers") >= 1 and s.count("products") == 0,
             "HeaderPrivacy yes by reload: no plan name asked from Stripe",
             "customers=%d products=%d" % (s.count("customers"), s.count("products")))
        m.reload({"HeaderPrivacy": None})
        s.reset()
        case("HeaderPrivacy back to no by reload: found", r"^v=2; found; cache=miss", "active",
             mt_envfrom="<rae@customer.test>", mt_from="rae@customer.test")
        t.ok(s.count("products") == 1, "HeaderPrivacy no by reload: plan names asked again",
             "products=%d" % s.count("products"))

        case("several From headers", r"^v=2; skipped=multiple%-from$", mt_from2="other@elsewhere.test")
        el = case("3000 forged copies of one name in two cases: all deleted", r"^v=2; found;", "active",
                  mt_many="3000")
        t.like(m.log(), r"forged_removed=3000\b", "the log counts 3000 removed (%.2f s)" % el)

        # Hostile or foreign data in Redis: a readable entry whose payload is not a summary,
        # and bytes that are no cache entry at all. Both are a miss: Stripe is asked.
        m.reload({"CachePrefix": "hostile"})
        now_ms = int(time.time() * 1000)
        hdr = b"SMC\x01\x00\x00\x00\x00" + struct.pack(">qII", now_ms, 600000, 0)
        redis.cmd("SET", "hostile:v1:sum1:test:-:" + hashlib.sha256(b"pat@customer.test").hexdigest(),
                  hdr + b'{"v": 99, "found": true}')
        redis.cmd("SET", "hostile:v1:sum1:test:-:" + hashlib.sha256(b"jenny@customer.test").hexdigest(),
                  b"\x00garbage\r\n")
        s.reset()
        case("an unreadable summary in Redis is purged and looked up again", r"^v=2; found; cache=miss",
             "past_due", mt_envfrom="<pat@customer.test>", mt_from="pat@customer.test")
        t.like(m.log(), r"cache entry hostile:v1:sum1:test:-:\w+ unreadable .*: purged", "and logged")
        case("bytes that are no cache entry: a miss", r"^v=2; found; cache=miss", "active")
        t.ok(s.count("customers") >= 2, "both went to Stripe")
        m.reload({"CachePrefix": "stripe-milter"})

        # On-InternalError: an MTA that does not let the milter delete headers (actions 1 =
        # SMFIF_ADDHDRS only) and a forged header that therefore cannot be removed.
        m.reload({"On-InternalError": "tempfail"})
        case("On-InternalError tempfail: forged header not deletable -> 4xx", ".", mt_actions="1",
             mt_forged="yes", mt_reply="tempfail")
        case("On-InternalError tempfail: nothing forged -> accepted", r"^v=2; found;", "active", mt_actions="1")
        m.reload({"On-InternalError": "accept"})
        case("On-InternalError accept: accepted with our headers", r"^v=2; found;", "*", mt_actions="1",
             mt_forged="yes")
        t.like(m.log(), r"internal error: could not delete a forged header; On-InternalError accept",
               "On-InternalError accept: logged")

        # The Authentication-Results gate.
        m.reload({"RequireAuthResults": "yes", "TrustedAuthservIDs": "mx.example.test"})
        case("gate: dmarc=pass from our authserv-id", r"^v=2; found;", "active",
             mt_authres="mx.example.test; dkim=pass header.d=customer.test; dmarc=pass (p=none) header.from=customer.test")
        case("gate: no Authentication-Results -> unverified", r"^v=2; skipped=unverified$")
        case("gate: dmarc=fail -> unverified", r"^v=2; skipped=unverified$",
             mt_authres="mx.example.test; dmarc=fail header.from=customer.test")
        case("gate: someone else's authserv-id -> unverified", r"^v=2; skipped=unverified$",
             mt_authres="evil.example.net; dmarc=pass header.from=customer.test")
        case("gate: aligned DKIM without DMARC", r"^v=2; found;", "active",
             mt_authres="mx.example.test; dkim=pass header.d=customer.test")
        m.reload({"RequireAuthResults": None, "TrustedAuthservIDs": None})

        mark = len(m.log())
        m.proc.send_signal(12)
        smtest.wait_for(lambda: re.search(r"stats: lookups found=\d+", m.log()[mark:]), timeout=30)
        t.like(m.log()[mark:], r"stats: lookups found=\d+", "SIGUSR2 logs the counters")

        # Stripe hangs for 30 s (or until the lookup's own StripeTimeout closes it); LookupTimeout
        # is 1 s: the message is answered while Stripe still holds the request, so only the
        # deadline can have ended the wait (no bound on the time it took).
        s.faults({"*": {"hang": True, "hang_s": 30}})
        t0 = time.time()
        el = case("Stripe hangs: error=timeout", r"^v=2; error=timeout$", mt_envfrom="<h1@elsewhere.test>",
                  mt_from="h1@elsewhere.test")
        t.ok(s.hangs_outlived(t0, time.time()), "deadline held: answered while Stripe still held the request "
             "(%.2f s; LookupTimeout 1 s)" % el)
        s.faults({"*": {"status": 429}})
        case("Stripe 429: error=rate-limited", r"^v=2; error=rate%-limited$",
             mt_envfrom="<h2@elsewhere.test>", mt_from="h2@elsewhere.test")
        s.faults({"*": {"status": 500, "should_retry": False}})
        case("Stripe 5xx: error=server", r"^v=2; error=server$", mt_envfrom="<h3@elsewhere.test>",
             mt_from="h3@elsewhere.test")
        s.faults({})
        with open(m.keyfile, "w") as f:
            f.write("rk_test_nocust\n")
        m.reload({"CachePrefix": "nocust"})
        case("restricted key without Customers: Read: error=permission", r"^v=2; error=permission$",
             mt_envfrom="<h4@elsewhere.test>", mt_from="h4@elsewhere.test")
        with open(m.keyfile, "w") as f:
            f.write(mta.Milter.KEY + "\n")
        m.reload({"CachePrefix": "stripe-milter"})
        # Redis stalls (the process stopped until the test resumes it): each Redis call gives
        # up after RedisTimeout (200 ms) and the message is answered through Stripe within
        # LookupTimeout (1 s); the bound is a generous 10 s, and a stalled Redis never answers.
        m.reload({"CachePrefix": "slow"})
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            smtest.wait_for(lambda: smtest.process_state(redis.proc.pid) in ("T", "t"), timeout=30,
                            what="redis-server stopped")
            el = case("Redis stalled: found through Stripe", r"^v=2; found; cache=miss", "past_due",
                      mt_envfrom="<pat@customer.test>", mt_from="pat@customer.test")
            t.ok(smtest.process_state(redis.proc.pid) in ("T", "t"), "Redis stalled: answered while "
                 "redis-server was still stopped (%.2f s; LookupTimeout 1 s)" % el)
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        m.reload({"CachePrefix": "stripe-milter"})
        redis.kill()
        case("Redis down: found through Stripe", r"^v=2; found;", "past_due",
             mt_envfrom="<pat@customer.test>", mt_from="pat@customer.test")
        t.ok(not smtest.wait_port(redis.port, 0.2), "... with nothing listening on Redis's port "
             "(a stalled Redis, above, shows the deadline)")
        m.stop()
        m2 = mta.Milter(s, None, socket="inet")
        try:
            rc, out = mta.miltertest(SCRIPT, {"MT_SOCKET": m2.socket, "MT_EXPECT": "^v=2; found;",
                                              "MT_STATUS": "active"})
            t.ok(rc == 0, "inet: socket, no Redis configured: found", out + m2.log()[-1000:])
        finally:
            took = m2.stop()
        # A clean exit (status 0) before stop()'s 10 s grace ran out (then it would be SIGKILL).
        t.ok(m2.rc == 0, "SIGTERM: clean exit (status %s) in %.2f s" % (m2.rc, took),
             m2.log()[-1500:])
        m3 = mta.Milter(s, None, socket="inet", port=m2.port)
        try:
            rc, out = mta.miltertest(SCRIPT, {"MT_SOCKET": m3.socket, "MT_EXPECT": "^v=2; found;",
                                              "MT_STATUS": "active"})
            t.ok(rc == 0, "restart on the same TCP port works at once", out + m3.log()[-1000:])
        finally:
            m3.stop()
    finally:
        m.stop()
        s.stop()
        redis.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
