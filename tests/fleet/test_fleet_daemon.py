#!/usr/bin/env python3
"""test_fleet_daemon.py - stripe-milter instances sharing one real redis-server, with the Stripe
stand-in: each "Done when" of issue #13 as a test. Counts are what the stand-in saw (or Redis
holds); waits are for conditions, with deadlines only as a guard against hanging.

  webhook      a subscription changed in the stand-in plus its signed event: the next message
               on either instance shows the new status; forged, stale, replayed, oversized
               deliveries are rejected (400), counted, and purge nothing; the previous secret
               works during a rotation; customer.updated purges the old address.
  polling      one poller for two instances (elected in Redis), events applied from
               GET /v1/events, the other instance takes over when the poller dies.
  breaker      Stripe failing: the breaker opens after BreakerFailures, Stripe then sees at most
               one probe per cool-down, messages get error=unavailable at once, and lookups
               resume within one cool-down of Stripe recovering.
  budget       a burst of 10x the fleet budget from 4 instances: the stand-in sees no more than
               rate x time + burst, never answers 429, and late messages say so.
  budget-stalled  the same burst with Redis stalled (SIGSTOP): each instance keeps its share
               (the 4 peers Redis last counted), so the same bounds hold.
  singleflight 2 and 4 instances, cold senders sent to all at once: one fill per address.
  verp         a VERP stream (a new envelope sender per message, one customer in From): one
               Stripe lookup in all; From equal to the envelope, and the envelope used when
               there is no From, are still looked up.
"""
import json
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import milterclient  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

SECRET = "whsec_fleet_test_secret_0123456789"
OLD_SECRET = "whsec_fleet_previous_secret_abcdef"


def metrics(m):
    """/metrics of a Milter started with MetricsListen as {"name{labels}": float}; {} while
    the listener is not up yet."""
    return smtest.metrics(m.metrics)[1]


def wait_for(cond, timeout=30.0, what="condition"):
    """Polls cond() until it is true; the deadline only guards against a hang."""
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def start(s, r, d, name, extra=None):
    o = {"MetricsListen": "127.0.0.1:%d" % smtest.free_port(), "InstanceName": name,
         "StripeTimeout": "10000", "LogLevel": "info"}
    o.update(extra or {})
    m = mta.Milter(standin=s, redis=r, options=o)
    m.metrics = o["MetricsListen"]
    m.name = name
    # a purge published before an instance listens would not reach its L1
    wait_for(lambda: metrics(m).get('stripe_milter_events_subscribed{account="default"}') == 1, what="the purge subscriber")
    return m


def plain(h):
    """X-Stripe-Lookup without the contract's version word ("v=2; found; ..." -> "found; ...")."""
    if "X-Stripe-Lookup" in h:
        h["X-Stripe-Lookup"] = re.sub(r"^v=\d+; ", "", h["X-Stripe-Lookup"])
    return h


def send(m, addr, envfrom=None):
    return plain(milterclient.message(m.socket, "<%s>" % (envfrom or addr), from_="X <%s>" % addr))


def write_secret(d, name, text):
    p = os.path.join(d, name)
    with open(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text + "\n")
    return p


def customers_requests(s):
    """emails asked for by GET /v1/customers, with their counts."""
    out = {}
    for e in s.requests("customers")["log"]:
        em = e["params"].get("email")
        out[em] = out.get(em, 0) + 1
    return out


# ---------------------------------------------------------------------------------------------

def t_webhook(t, s, r, d):
    sec = write_secret(d, "wh.secret", SECRET)
    old = write_secret(d, "wh.old", OLD_SECRET)
    wport = [smtest.free_port(), smtest.free_port()]
    ids = s.state({"customers": [
        {"email": "pay@example.com", "name": "Pay", "subscriptions": [{"status": "past_due"}]},
        {"email": "old@example.com", "name": "Mover", "subscriptions": [{"status": "active"}]},
    ]})["ids"]
    sub, mover = ids["subscriptions"][0], ids["customers"][1]
    opts = {"WebhookSecretFile": sec, "WebhookPreviousSecretFile": old}
    a = start(s, r, d, "A", dict(opts, WebhookListen="127.0.0.1:%d" % wport[0]))
    b = start(s, r, d, "B", dict(opts, WebhookListen="127.0.0.1:%d" % wport[1]))
    url = "http://127.0.0.1:%d/" % wport[0]
    try:
        # both instances hold the entry: A filled it, B has it in L1 from Redis
        t.is_(send(a, "pay@example.com")["X-Stripe-Subscription-Status"], "past_due", "A: past_due")
        t.like(send(b, "pay@example.com")["X-Stripe-Lookup"], r"cache=hit", "B: from the cache")
        t.like(send(b, "pay@example.com")["X-Stripe-Lookup"], r"cache=hit", "B: again (L1)")
        key = [k for k in r.cmd("KEYS", "stripe-milter:v1:*")]
        t.is_(len(key), 1, "one cache entry in Redis")
        t.ok(r.cmd("EXISTS", "stripe-milter:fleet:cus:" + ids["customers"][0]) == 1,
             "the index knows the customer's entry")

        # forged: right event, wrong secret
        ev = {"type": "customer.subscription.updated", "object_id": sub,
              "update": {"status": "active"}, "previous_attributes": {"status": "past_due"}}
        res = s.admin("POST", "/_standin/events", dict(ev, webhook={"url": url, "secret": "whsec_wrong"}))
        t.is_(res["delivery"]["status"], 400, "forged signature: 400")
        t.is_(res["delivery"]["body"].strip(), "signature", "... says why")
        # stale: right secret, timestamp 10 minutes old
        res = s.admin("POST", "/_standin/events", dict(ev, webhook={
            "url": url, "secret": SECRET, "timestamp": int(time.time()) - 600}))
        t.is_((res["delivery"]["status"], res["delivery"]["body"].strip()), (400, "stale"), "stale: 400")
        # no header, a header without v1, a body over WebhookMaxBody
        res = s.admin("POST", "/_standin/events", dict(ev, webhook={"url": url, "header": ""}))
        t.is_((res["delivery"]["status"], res["delivery"]["body"].strip()), (400, "malformed"),
              "no Stripe-Signature: 400")
        big = json.dumps({"pad": "x" * 1100000})
        res = s.admin("POST", "/_standin/events", dict(ev, webhook={"url": url, "secret": SECRET, "body": big}))
        t.is_((res["delivery"]["status"], res["delivery"]["body"].strip()), (413, "too_large"),
              "body over WebhookMaxBody: 413 from its Content-Length, before the body is read")
        t.is_(len(r.cmd("KEYS", "stripe-milter:v1:*")), 1, "rejected deliveries purged nothing")
        t.like(send(b, "pay@example.com")["X-Stripe-Subscription-Status"], "active|past_due", "B answers")
        t.like(send(a, "pay@example.com")["X-Stripe-Lookup"], r"cache=hit", "A: still cached")
        m = metrics(a)
        t.is_((m['stripe_milter_events_rejected_total{account="default",reason="signature"}'],
               m['stripe_milter_events_rejected_total{account="default",reason="stale"}'],
               m['stripe_milter_events_rejected_total{account="default",reason="malformed"}'],
               m['stripe_milter_http_requests_rejected_total{listener="webhook",reason="too_large"}'],
               m['stripe_milter_events_applied_total{account="default"}']), (1, 1, 1, 1, 0), "rejections counted by reason")

        # the real one, signed with the previous secret (a rotation in progress)
        mark = metrics(b).get('stripe_milter_events_applied_total{account="default"}', 0)
        b_purges = metrics(b)['stripe_milter_events_purges_received_total{account="default"}']
        res = s.admin("POST", "/_standin/events", dict(ev, webhook={"url": url, "secret": OLD_SECRET}))
        t.is_((res["delivery"]["status"], res["delivery"]["body"].strip()), (200, "applied"),
              "signed event: 200 applied")
        t.is_(len(r.cmd("KEYS", "stripe-milter:v1:*")), 0, "the entry is gone from Redis")
        # B's L1 is purged through pub/sub: wait for B to have received the purge
        wait_for(lambda: metrics(b)['stripe_milter_events_purges_received_total{account="default"}'] > b_purges,
                 what="B to receive the purge")
        h = send(b, "pay@example.com")
        t.is_(h["X-Stripe-Subscription-Status"], "active", "B: the new status at once")
        t.like(h["X-Stripe-Lookup"], r"cache=miss", "B: fetched again")
        t.is_(send(a, "pay@example.com")["X-Stripe-Subscription-Status"], "active", "A: new status")
        t.is_(metrics(b).get('stripe_milter_events_applied_total{account="default"}', 0), mark, "B applied nothing itself")

        # a replay of that delivery (same body and header, within the tolerance): 200, no purge
        n_purged = metrics(a)['stripe_milter_events_keys_purged_total{account="default"}']
        body = json.dumps(res["event"], separators=(",", ":"))
        ts = int(time.time())
        import hmac
        import hashlib
        sig = "t=%d,v1=%s" % (ts, hmac.new(SECRET.encode(), (str(ts) + "." + body).encode(),
                                          hashlib.sha256).hexdigest())
        for i in range(2):
            st, _, out = smtest.http_call(url[:-1], "POST", "/", body=body,
                                          headers={"Stripe-Signature": sig})
            t.is_((st, out.decode().strip()), (200, "duplicate"), "replay %d: 200 duplicate" % i)
        t.is_(len(r.cmd("KEYS", "stripe-milter:v1:*")), 1, "the refilled entry stays")
        t.is_(metrics(a)['stripe_milter_events_keys_purged_total{account="default"}'], n_purged, "replays purged nothing")

        # customer.updated: the email changed; the old address's entry (found) and the new
        # address's (not found yet) are both purged
        t.is_(send(a, "old@example.com")["X-Stripe-Customer-Id"], mover, "old address found")
        t.like(send(a, "new@example.com")["X-Stripe-Lookup"], r"^not-found", "new address not yet")
        res = s.admin("POST", "/_standin/events", {
            "type": "customer.updated", "object_id": mover, "update": {"email": "new@example.com"},
            "previous_attributes": {"email": "old@example.com"},
            "webhook": {"url": url, "secret": SECRET}})
        t.is_(res["delivery"]["status"], 200, "customer.updated applied")
        t.like(send(a, "old@example.com")["X-Stripe-Lookup"], r"^not-found; cache=miss", "old address: gone")
        t.is_(send(a, "new@example.com").get("X-Stripe-Customer-Id"), mover, "new address: found")
    finally:
        a.stop()
        b.stop()


# ---------------------------------------------------------------------------------------------

def poller_of(m):
    """(1 when m is the poller, owner name it reports)."""
    for k, v in metrics(m).items():
        if k.startswith('stripe_milter_events_poller{account="default",'):
            return int(v), k.split('owner="')[1].split('"')[0]
    return 0, ""


def t_polling(t, s, r, d):
    ids = s.state({"customers": [
        {"email": "poll@example.com", "subscriptions": [{"status": "past_due"}]}]})["ids"]
    sub = ids["subscriptions"][0]
    ms = [start(s, r, d, n, {"EventsPollInterval": "1"}) for n in ("A", "B")]
    try:
        wait_for(lambda: sum(poller_of(m)[0] for m in ms) == 1 and
                 all(poller_of(m)[1] for m in ms), what="one poller elected")
        owners = [poller_of(m) for m in ms]
        t.is_(sum(o[0] for o in owners), 1, "exactly one instance polls")
        t.is_(owners[0][1], owners[1][1], "both name the same poller")
        own = ms[0] if owners[0][0] else ms[1]
        other = ms[1] if own is ms[0] else ms[0]
        for m in ms:
            t.is_(send(m, "poll@example.com")["X-Stripe-Subscription-Status"], "past_due",
                  "%s: past_due cached" % m.name)
        polls0 = metrics(own)['stripe_milter_events_polls_total{account="default"}']
        s.admin("POST", "/_standin/events", {"type": "customer.subscription.updated", "object_id": sub,
                                             "update": {"status": "active"}})
        wait_for(lambda: metrics(own)['stripe_milter_events_applied_total{account="default"}'] >= 1, what="event polled")
        t.ok(metrics(own)['stripe_milter_events_polls_total{account="default"}'] <= polls0 + 2,
             "applied by the next poll (polls before: %d)" % polls0)
        wait_for(lambda: metrics(other)['stripe_milter_events_purges_received_total{account="default"}'] >= 1,
                 what="the other instance's L1 purged")
        for m in ms:
            t.is_(send(m, "poll@example.com")["X-Stripe-Subscription-Status"], "active",
                  "%s: active after the event" % m.name)
        t.is_(metrics(other)['stripe_milter_events_polls_total{account="default"}'], 0, "the other instance never polled")
        log = s.requests("events")["log"]
        t.ok(log and all("gt" in e["params"].get("created", {}) for e in log), "created[gt] sent")
        t.ok(all("types" not in e["params"] and "type" not in e["params"] for e in log),
             "every type listed (no type filter: the poller keeps what the webhook applies)")
        pos = int(r.cmd("GET", "stripe-milter:fleet:events:pos"))
        t.ok(pos > 0, "position kept in Redis")

        # the poller dies: the other takes over within the lease and applies the next event
        own.proc.kill()
        own.proc.wait()
        own.proc = None
        wait_for(lambda: poller_of(other)[0] == 1, timeout=30, what="takeover")
        t.is_(poller_of(other), (1, other.name), "the other instance took over")
        s.admin("POST", "/_standin/events", {"type": "customer.subscription.updated", "object_id": sub,
                                             "update": {"status": "canceled"}})
        wait_for(lambda: metrics(other)['stripe_milter_events_applied_total{account="default"}'] >= 1, what="new poller applies")
        t.is_(send(other, "poll@example.com")["X-Stripe-Subscription-Status"], "canceled",
              "the change shows after the takeover")
        t.is_(metrics(other)['stripe_milter_events_duplicate_total{account="default"}'] +
              metrics(other)['stripe_milter_events_applied_total{account="default"}'] >= 1, True, "events counted")
    finally:
        for m in ms:
            m.stop()


def t_breaker(t, s, r, d):
    s.state({"customers": [{"email": "b%d@example.com" % i} for i in range(2000)]})
    cool = 1500
    ms = [start(s, r, d, n, {"BreakerFailures": "3", "BreakerCooldown": str(cool)}) for n in ("A", "B")]
    try:
        # 500s first, then connection resets
        s.faults({"*": [{"status": 500, "times": 2}, {"reset": True, "after": 2}]})
        s.reset()
        h = send(ms[0], "b0@example.com")
        t.like(h["X-Stripe-Lookup"], r"error=(server|network)", "first message: Stripe's 500s and a reset")
        n_open = s.count()
        # three failed attempts open it; requests of the same lookup already in flight
        # (the client asks for some in parallel) and curl's silent resend after a reset on a
        # kept-alive connection (tests/standin/README.md) may add a few, all failing
        log = s.requests()["log"]
        t.ok(n_open >= 3 and all(e["status"] in (500, 0) for e in log),
             "failed attempts open the breaker (%d requests: %s)" % (n_open, ", ".join(
                 "%s %s" % (e["endpoint"], e["status"]) for e in log)))
        wait_for(lambda: metrics(ms[0])['stripe_milter_breaker_state{account="default"}'] == 1, what="breaker open")
        t_open = time.time()
        answers = []
        i = 1
        # a steady stream over three cool-downs while Stripe still fails
        while time.time() < t_open + 3 * cool / 1000.0 or i < 21:
            answers.append(send(ms[i % 2], "b%d@example.com" % i)["X-Stripe-Lookup"])
            i += 1
            time.sleep(0.05)    # pacing: a steady mail stream is the thing under test
        t_end = time.time()
        unavailable = sum("error=unavailable" in a for a in answers)
        probes = s.count() - n_open
        allowed = int((t_end - t_open) * 1000 / cool) + 1
        t.ok(probes <= allowed, "Stripe saw %d probe(s) in %.1f s of cool-downs of %d ms (at most %d)"
             % (probes, t_end - t_open, cool, allowed))
        t.ok(unavailable >= len(answers) - 3 * probes,
             "messages answered error=unavailable without asking Stripe: %d of %d" % (unavailable, len(answers)))
        t.ok(probes >= 1, "a probe was sent after a cool-down")
        t.ok(all(("error=unavailable" in a) or ("error=network" in a) for a in answers),
             "every answer is unavailable or the failed probe's error")
        for m in ms:
            t.ok(metrics(m)['stripe_milter_breaker_rejected_total{account="default"}'] >= 1, "%s counted rejections" % m.name)
        # Stripe recovers: lookups resume once one probe succeeded. First let every lookup
        # of the failing phase end (a probe still in flight would be logged after the reset)
        wait_for(lambda: all(metrics(m)["stripe_milter_lookups_inflight"] == 0 for m in ms)
                 and s.requests()["in_flight"] == 0, what="the failing phase's lookups to end")
        s.faults({})
        s.reset()
        res, n_open = None, 0
        for _ in range(400):	# a guard: the breaker closes within one cool-down
            res = send(ms[i % 2], "b%d@example.com" % i)["X-Stripe-Lookup"]
            i += 1
            if "error=unavailable" not in res:
                break
            n_open += 1
            time.sleep(cool / 4000.0)   # pacing the stream (4 messages per cool-down), not a wait
        t.like(res, r"^found", "lookups resumed (after %d messages answered unavailable at once)" % n_open)
        log = s.requests()["log"]
        t.ok(len(log) == 3 and all(e["status"] == 200 for e in log),
             "recovery: the probe and the rest of its lookup, nothing more (%d requests: %s)"
             % (len(log), ", ".join("%s %s" % (e["endpoint"], e["status"]) for e in log)))
        wait_for(lambda: all(metrics(m)['stripe_milter_breaker_state{account="default"}'] == 0 or
                             send(m, "b0@example.com") is not None and
                             metrics(m)['stripe_milter_breaker_state{account="default"}'] == 0 for m in ms),
                 what="closed everywhere")
        t.ok(True, "closed on both instances")
    finally:
        s.faults({})
        for m in ms:
            m.stop()


BUDGET_RATE, BUDGET_BURST = 4, 4


def budget_fleet(s, r, d, name, emails):
    """Four instances sharing FleetRateLimit 4 / FleetRateBurst 4; the stand-in knows emails
    and answers 429 beyond rate + burst requests in a second, like Stripe's own limit."""
    s.state({"customers": [{"email": e} for e in emails], "rate_limit_per_s": BUDGET_RATE + BUDGET_BURST})
    opts = {"FleetRateLimit": str(BUDGET_RATE), "FleetRateBurst": str(BUDGET_BURST),
            "LookupTimeout": "2000", "StripeTimeout": "3000"}
    return [start(s, r, d, "%s%d" % (name, i), opts) for i in range(4)]


def budget_burst(t, s, ms, fmt, why):
    """40 messages at once (addresses fmt % i) over the instances ms: Stripe never answers
    429 and sees at most burst + rate x time; every message is answered, the late ones with
    an error class. Returns the number of requests Stripe saw."""
    rate, burst = BUDGET_RATE, BUDGET_BURST
    s.reset()
    results = [None] * 40

    def one(i):
        results[i] = send(ms[i % 4], fmt % i).get("X-Stripe-Lookup", "")
    ths = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    t0 = time.time()	# no slot of the budget can be earlier than this
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    # background fills end within StripeTimeout: wait until nothing is in flight
    wait_for(lambda: all(metrics(m)["stripe_milter_lookups_inflight"] == 0 for m in ms),
             what="lookups to finish")
    rq = s.requests()
    times = sorted(e["time"] for e in rq["log"])
    n = len(times)
    span = times[-1] + 0.001 - t0 if n else 0	# the stand-in logs times rounded to 1 ms
    t.is_(rq["by_status"].get("429", 0), 0, "Stripe never answered 429")
    # GCRA: the k-th slot is no earlier than t0 + (k - burst) / rate, so by the last
    # request Stripe saw at most burst + rate x (last - t0) (same host, same clock)
    t.ok(0 < n <= rate * span + burst,
         "Stripe saw %d requests within %.2f s of the burst: at most burst + rate x time = %.1f%s"
         % (n, span, rate * span + burst, why))
    late = [x for x in results if "error=" in x]
    t.ok(all(x.startswith("found") or x.startswith("not-found") or
             "error=rate-limited" in x or "error=timeout" in x for x in results),
         "every message is answered: data, or error=rate-limited/timeout")
    t.ok(len(late) > 0, "messages past the budget say so (%d)" % len(late))
    return n


def t_budget(t, s, r, d):
    ms = budget_fleet(s, r, d, "I", ["r%d@example.com" % i for i in range(0, 40, 2)])
    try:
        n = budget_burst(t, s, ms, "r%d@example.com", "")
        denied = sum(metrics(m)['stripe_milter_budget_total{account="default",decision="denied"}'] for m in ms)
        granted = sum(metrics(m)['stripe_milter_budget_total{account="default",decision="granted"}'] -
                      metrics(m)['stripe_milter_budget_total{account="default",decision="refunded"}'] for m in ms)
        # A gate call Redis did not answer in time (a loaded machine) is decided locally and
        # counted as a fallback; with none, the slots must match the requests exactly.
        fallbacks = sum(metrics(m)['stripe_milter_fleet_redis_fallbacks_total{account="default"}'] for m in ms)
        t.ok(abs(n - int(granted)) <= int(fallbacks),
             "every request Stripe saw had a slot of the fleet budget (%d requests, granted - "
             "handed back = %d, decided locally because Redis did not answer: %d)"
             % (n, granted, fallbacks))
        t.ok(denied > 0, "requests refused by the budget: %d" % denied)
    finally:
        s.state({"rate_limit_per_s": None})
        for m in ms:
            m.stop()


def t_budget_stalled(t, s, r, d):
    """The burst of t_budget while Redis is stalled: each instance keeps its share of the
    fleet budget (rate / 4, burst / 4, the 4 peers Redis last told it of), so the fleet
    together still stays within it. Before, each fell back to its own StripeRateLimit."""
    ms = budget_fleet(s, r, d, "P", ["q%d@example.com" % i for i in range(0, 40, 2)] +
                      ["w%d@example.com" % i for i in range(8)])
    try:
        # each instance's budget calls note it in Redis; a second round tells every one of
        # them that there are 4 (paced by waiting for each answer: the budget is small)
        for rnd in range(2):
            for i, m in enumerate(ms):
                send(m, "w%d@example.com" % (rnd * 4 + i))
        wait_for(lambda: all(metrics(m)["stripe_milter_lookups_inflight"] == 0 for m in ms),
                 what="warm-up lookups to finish")
        peers = [metrics(m).get('stripe_milter_fleet_peers{account="default"}') for m in ms]
        t.is_(peers, [4] * 4, "every instance counts 4 instances in the fleet budget")
        before = sum(metrics(m)['stripe_milter_fleet_redis_fallbacks_total{account="default"}'] for m in ms)
        r.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: smtest.process_state(r.proc.pid) in ("T", "t"), what="redis-server stopped")
            budget_burst(t, s, ms, "q%d@example.com", " (4 shares of rate/4, burst/4)")
        finally:
            r.proc.send_signal(signal.SIGCONT)
        fallbacks = sum(metrics(m)['stripe_milter_fleet_redis_fallbacks_total{account="default"}'] for m in ms) - before
        t.ok(fallbacks > 0, "Redis stalled: budget decisions made locally (%d)" % fallbacks)
    finally:
        r.proc.send_signal(signal.SIGCONT)
        s.state({"rate_limit_per_s": None})
        for m in ms:
            m.stop()


def t_singleflight(t, s, r, d):
    for ninst in (2, 4):
        r.cmd("FLUSHALL")
        n = 30
        s.state({"customers": [{"email": "sf%d.%d@example.com" % (ninst, i)} for i in range(n)]})
        ms = [start(s, r, d, "S%d" % i) for i in range(ninst)]
        try:
            s.reset()
            ths = [threading.Thread(target=send, args=(m, "sf%d.%d@example.com" % (ninst, i)))
                   for i in range(n) for m in ms]
            for th in ths:
                th.start()
            for th in ths:
                th.join()
            wait_for(lambda: all(metrics(m)["stripe_milter_lookups_inflight"] == 0 and
                                 metrics(m)["stripe_milter_lookups_queued"] == 0 for m in ms),
                     what="lookups to finish")
            per = customers_requests(s)
            by = s.requests()["by_endpoint"]
            t.is_(sorted(per.values()), [1] * n, "%d instances: each address fetched once" % ninst)
            t.is_((by["customers"], by["subscriptions"], by["charges"]), (n, n, n),
                  "%d instances: %d lookups x 3 requests exactly (%d)" % (ninst, n, s.count()))
        finally:
            for m in ms:
                m.stop()


def t_verp(t, s, r, d):
    ids = s.state({"customers": [{"email": "member@example.com", "name": "Member"},
                                 {"email": "same@example.com", "name": "Same"}]})["ids"]
    m = start(s, r, d, "V")
    try:
        s.reset()
        for i in range(20):
            h = send(m, "member@example.com", envfrom="list-bounces+%d=x@lists.example.org" % i)
            t.is_(h.get("X-Stripe-Customer-Id"), ids["customers"][0], "VERP message %d: the From customer" % i)
        per = customers_requests(s)
        t.is_(per, {"member@example.com": 1}, "Stripe was asked about the From address once, "
              "never about the 20 envelope senders")
        t.is_(s.count(), 3, "20 messages, 3 Stripe requests (one lookup)")
        # From equal to the envelope: the probe becomes the lookup at the From header
        s.reset()
        h = send(m, "same@example.com")
        t.is_(h.get("X-Stripe-Customer-Id"), ids["customers"][1], "From = envelope: found")
        t.is_(s.count(), 3, "one lookup for it")
        # header-from-or-envelope without a From header: the envelope is used and looked up
        m.reload({"LookupAddress": "header-from-or-envelope"})
        s.reset()
        h = plain(milterclient.message(m.socket, "<member2@example.com>", from_=None))
        t.like(h.get("X-Stripe-Lookup", ""), r"^not-found; cache=miss", "no From: the envelope is looked up")
        t.is_(customers_requests(s), {"member2@example.com": 1}, "... once")
        lk = metrics(m)
        t.ok(lk.get("stripe_milter_lookup_probes_total", 0) >= 22, "probes counted")
    finally:
        m.stop()


# ---------------------------------------------------------------------------------------------

def main():
    t = smtest.TAP()
    try:
        mta.binary("stripe-milter")
        s = smtest.Standin()
        r = smtest.Redis()
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    d = smtest.tempdir("sm-fleet-")
    try:
        only = os.environ.get("FLEET_TESTS", "").split(",") if os.environ.get("FLEET_TESTS") else None
        for name, fn in (("webhook", t_webhook), ("polling", t_polling), ("breaker", t_breaker),
                         ("budget", t_budget), ("budget-stalled", t_budget_stalled),
                         ("singleflight", t_singleflight), ("verp", t_verp)):
            if only and name not in only:
                continue
            r.cmd("FLUSHALL")
            s.reset()
            t.subtest(name, fn, s, r, d)
    finally:
        s.stop()
        r.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
