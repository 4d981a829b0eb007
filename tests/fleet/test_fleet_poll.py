#!/usr/bin/env python3
"""test_fleet_poll.py - the events poller as a fleet sees it: two instances on one real
redis-server and the Stripe stand-in, no webhook at all.

  visible   one change per kind of object (customer, subscription, invoice, charge), each
            announced by an event type the old fixed types[] list left out where there is
            one (invoice.updated, charge.updated): by polling alone the change shows on
            every instance within the poll interval + 5 s; the poller asks for every type
            (no type/types filter) and sends one request per round.
  sigkill   the poller is killed (SIGKILL) just after it renewed its lease, the worst case:
            the other instance takes over within three intervals (README), and not before
            the lease ran out.
  sigterm   a poller stopped cleanly deletes its lease before it exits: the other instance,
            or a new one, takes over at once instead of after the lease.

The time bounds asserted here ARE the things under test (how long a change takes to show,
how long a fleet is without a poller); every wait is on a condition, with a deadline.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mta  # noqa: E402
import smtest  # noqa: E402
from test_fleet_daemon import metrics, poller_of, send, wait_for  # noqa: E402
import test_fleet_daemon  # noqa: E402

INTERVAL = 2    # EventsPollInterval, seconds
LEASE = "stripe-milter:fleet:poller"


def start(s, r, d, name):
    return test_fleet_daemon.start(s, r, d, name, {"EventsPollInterval": str(INTERVAL),
                                                   "LookupTimeout": "10000"})


def lease_holder(r):
    v = r.cmd("GET", LEASE)
    if v is None:
        return None
    v = v if isinstance(v, str) else v.decode()
    return v.split(" ")[0]


def one_poller(ms):
    wait_for(lambda: sum(poller_of(m)[0] for m in ms) == 1, what="one poller elected")
    return [m for m in ms if poller_of(m)[0] == 1][0]


def t_visible(t, s, r, d):
    addr = "pv@example.com"
    ids = s.state({"customers": [{
        "email": addr, "name": "Before", "delinquent": True, "subscriptions": [{"status": "active"}],
        "charges": [{"amount": 2000, "currency": "usd"}],
        "invoices": [{"status": "open", "amount_due": 4900}]}]})["ids"]
    cus, sub, ch, inv = (ids["customers"][0], ids["subscriptions"][0], ids["charges"][0],
                         ids["invoices"][0])
    ms = [start(s, r, d, n) for n in ("A", "B")]
    try:
        one_poller(ms)
        for m in ms:
            h = send(m, addr)
            t.ok(h.get("X-Stripe-Name") == "Before" and h.get("X-Stripe-Subscription-Status") == "active"
                 and "open=1" in h.get("X-Stripe-Invoice", "") and "refunded=0" in h.get("X-Stripe-Charges", ""),
                 "%s: the customer cached as it was" % m.name, repr(h))
        cases = [
            ("customer", {"type": "customer.updated", "object_id": cus, "update": {"name": "After"},
                          "previous_attributes": {"name": "Before"}},
             lambda h: h.get("X-Stripe-Name") == "After"),
            ("subscription", {"type": "customer.subscription.updated", "object_id": sub,
                              "update": {"status": "past_due"}, "previous_attributes": {"status": "active"}},
             lambda h: h.get("X-Stripe-Subscription-Status") == "past_due"),
            ("invoice", {"type": "invoice.updated", "object_id": inv,
                         "update": {"status": "paid", "amount_paid": 4900, "amount_remaining": 0},
                         "previous_attributes": {"status": "open"}},
             lambda h: "open=0" in h.get("X-Stripe-Invoice", "")),
            ("charge", {"type": "charge.updated", "object_id": ch,
                        "update": {"refunded": True, "amount_refunded": 2000},
                        "previous_attributes": {"refunded": False}},
             lambda h: "refunded=1" in h.get("X-Stripe-Charges", "")),
        ]
        for what, ev, shows in cases:
            t0 = time.time()
            s.admin("POST", "/_standin/events", ev)
            seen = {}

            def everywhere():
                for m in ms:
                    if m.name not in seen and shows(send(m, addr)):
                        seen[m.name] = time.time() - t0
                return len(seen) == len(ms)
            wait_for(everywhere, timeout=120, what="%s change on every instance" % what)
            worst = max(seen.values())
            t.ok(worst <= INTERVAL + 5, "%s (%s) by polling: on every instance after %.2f s (bound %d s: "
                 "interval + 5)" % (what, ev["type"], worst, INTERVAL + 5))
        log = s.requests("events")["log"]
        t.ok(log and all("type" not in e["params"] and "types" not in e["params"] for e in log),
             "the poller lists every type (no type or types[] filter): %d requests" % len(log))
        polls = sum(metrics(m)['stripe_milter_events_polls_total{account="default"}'] for m in ms)
        t.ok(abs(len(log) - polls) <= 1, "one request per round: %d requests, %d rounds" % (len(log), polls))
        applied = sum(metrics(m)['stripe_milter_events_applied_total{account="default"}'] for m in ms)
        t.is_(applied, len(cases), "each event applied once in the fleet")
    finally:
        for m in ms:
            m.stop()


def t_sigkill(t, s, r, d):
    s.state({"customers": [{"email": "k@example.com"}]})
    ms = [start(s, r, d, n) for n in ("C", "D")]
    try:
        own = one_poller(ms)
        other = ms[1] if own is ms[0] else ms[0]
        t.is_(lease_holder(r), own.name, "the lease names the poller")
        # the worst case: kill just after a renewal (the lease's time to live is near its full
        # two intervals), so the other instance must wait for all of it
        wait_for(lambda: r.cmd("PTTL", LEASE) > 2 * INTERVAL * 1000 - 150, what="a fresh renewal")
        t0 = time.time()
        own.proc.kill()
        own.proc.wait()
        own.proc = None
        wait_for(lambda: lease_holder(r) == other.name, timeout=60, what="takeover")
        took = time.time() - t0
        t.ok(took <= 3 * INTERVAL, "after SIGKILL the other instance took over in %.2f s (README: within "
             "three intervals, %d s)" % (took, 3 * INTERVAL))
        t.ok(took >= 2 * INTERVAL - 0.5, "... once the lease ran out (%.2f s, lease %d s)" % (took, 2 * INTERVAL))
        wait_for(lambda: poller_of(other) == (1, other.name), what="the survivor reports it polls")
    finally:
        for m in ms:
            m.stop()


def t_sigterm(t, s, r, d):
    s.state({"customers": [{"email": "t@example.com"}]})
    ms = [start(s, r, d, n) for n in ("E", "F")]
    late = None
    try:
        own = one_poller(ms)
        other = ms[1] if own is ms[0] else ms[0]
        t0 = time.time()
        own.stop()
        t.ok(lease_holder(r) != own.name, "a poller stopped with SIGTERM no longer holds the lease when "
             "it has exited (%s)" % lease_holder(r))
        t.like(own.log(), r"events poller stopped; lease released", "it says so")
        wait_for(lambda: lease_holder(r) == other.name, timeout=60, what="handover")
        took = time.time() - t0
        t.ok(took < 2 * INTERVAL, "the other instance took over %.2f s after the stop began, before a "
             "lease could have expired (%d s)" % (took, 2 * INTERVAL))
        # the last poller stops; a new instance finds no lease and polls at once
        other.stop()
        t.is_(lease_holder(r), None, "the last poller's lease is gone with it")
        late = start(s, r, d, "G")
        wait_for(lambda: poller_of(late) == (1, "G"), timeout=60, what="the new instance polls")
        t.is_(lease_holder(r), "G", "a new instance takes the lease on its first try")
    finally:
        for m in ms + ([late] if late else []):
            m.stop()


def main():
    t = smtest.TAP()
    try:
        mta.binary("stripe-milter")
        s = smtest.Standin()
        r = smtest.Redis()
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    d = smtest.tempdir("sm-poll-")
    try:
        for name, fn in (("visible", t_visible), ("sigkill", t_sigkill), ("sigterm", t_sigterm)):
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
