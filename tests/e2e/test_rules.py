#!/usr/bin/env python3
"""test_rules.py - the shipped rules against hostile Stripe data, through a real Postfix.

Customers whose names and plan names carry every token of the header contract
(`delinquent=no`, `status=active`, `past_due`, `X-Stripe-...: found` lines), encoded-word
look-alikes, CR/LF, bidi overrides and 10,000 characters (tests/lib/hdrv2.HOSTILE), each
once as a past-due delinquent customer and once as a paying one, plus an ordinary twin of
each kind (the same string is also their metadata value "note", MetadataKeys note). Every
message goes through the milter and a private Postfix whose milter_header_checks is
conf/milter_header_checks as shipped; the delivered message then goes through
conf/stripe.sieve with sieve-test and conf/stripe.procmailrc with procmail. For every
hostile customer, what the rules did (REDIRECT to billing@, the WARN line in Postfix's log,
Sieve's Billing folder or flags, procmail's folder) is exactly what they did for the ordinary
twin, and the ordinary twins show the rules do fire: the past-due one is redirected, warned
about and filed into Billing by Sieve and procmail; the paying one is left where it was
going and flagged. Every text header (name, plan, metadata) decodes to the Stripe text.
A guest buyer (no customer, a paid Checkout Session) is flagged by Sieve; a guest whose only
session is unpaid, and an unknown sender, are not.
"""
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import hdrv2  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

CONF = os.path.join(smtest.srcdir(), "conf")
FIRES = {"postfix": ("REDIRECT", "WARN"), "sieve": ("Billing",), "procmail": "Billing"}
QUIET = {"postfix": (), "sieve": ("flagged",), "procmail": "inbox"}


def main():
    t = smtest.TAP()
    for tool, pkg in (("sieve-test", "dovecot-sieve"), ("procmail", "procmail")):
        if not shutil.which(tool):
            smtest.TAP.skip_all("%s not installed (apt-get install %s)" % (tool, pkg))
    state, pairs = hdrv2.hostile_state(int(time.time()))
    state["checkout_sessions"] = [
        {"customer_details": {"email": "guest@customer.test"}, "amount_total": 4900},
        {"customer_details": {"email": "unpaid.guest@customer.test"}, "amount_total": 900,
         "payment_status": "unpaid"}]
    try:
        redis = smtest.Redis()
        s = smtest.Standin()
        s.state(state)
        m = mta.Milter(s, redis, options={"MetadataKeys": "note"})
        p = mta.Postfix(m.mta_socket, recipients=("support", "billing"),
                        milter_header_checks=open(os.path.join(CONF, "milter_header_checks")).read())
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    tmp = smtest.tempdir("sm-rules-")
    os.chmod(tmp, 0o777)
    script = os.path.join(CONF, "stripe.sieve")
    procmailrc = os.path.join(CONF, "stripe.procmailrc")
    names = {c["email"]: c["name"] for c in state["customers"]}
    try:
        seen = {}

        def outcome(addr):
            """(postfix actions, sieve actions, the delivered message) for a message from addr."""
            if addr in seen:
                return seen[addr]
            before = {r: len(p.mails(r)) for r in ("support", "billing")}
            mark = len(p.log())
            rc, out = p.send(addr, "support@example.test", headers=["From: <%s>" % addr])
            qid = re.search(r"queued as ([0-9A-Za-z]+)", out)
            if rc != 0 or qid is None:
                raise AssertionError("swaks failed for %s:\n%s" % (addr, out[-1500:]))
            where, msg = None, None
            end = time.time() + 30
            while time.time() < end and where is None:
                for r in ("support", "billing"):
                    got = p.mails(r)
                    if len(got) > before[r]:
                        where, msg = r, got[-1]
                time.sleep(0.05)
            if msg is None:
                raise AssertionError("%s not delivered:\n%s" % (addr, p.log()[-2000:]))
            acts = []
            if where == "billing":
                acts.append("REDIRECT")
            # Postfix logs the WARN action of milter_header_checks with the queue id
            # (a deadline on the wait for Postfix's "removed" line, generous for a loaded machine)
            smtest.wait_for(lambda: "%s: removed" % qid.group(1) in p.log()[mark:], timeout=60)
            if re.search(r"%s: milter-header-warning: header X-Stripe-Customer: .*: delinquent customer"
                         % qid.group(1), p.log()[mark:]):
                acts.append("WARN")
            seen[addr] = (tuple(acts), (hdrv2.sieve_outcome(tmp, msg, script),
                                        hdrv2.procmail_outcome(tmp, msg, procmailrc)), msg)
            return seen[addr]

        def ordinary():
            pf, (sv, pm), _ = outcome("ordbad@customer.test")
            t.is_(pf, FIRES["postfix"], "ordinary past-due customer: milter_header_checks REDIRECTs and WARNs")
            t.is_(sv, FIRES["sieve"], "ordinary past-due customer: stripe.sieve files into Billing")
            t.is_(pm, FIRES["procmail"], "ordinary past-due customer: stripe.procmailrc files into Billing")
            pf, (sv, pm), _ = outcome("ordgood@customer.test")
            t.is_(pf, QUIET["postfix"], "ordinary paying customer: milter_header_checks does nothing")
            t.is_(sv, QUIET["sieve"], "ordinary paying customer: stripe.sieve flags it")
            t.is_(pm, QUIET["procmail"], "ordinary paying customer: stripe.procmailrc leaves it in the inbox")
        t.run("the rules fire for ordinary customers", ordinary)

        def guests():
            pf, (sv, pm), msg = outcome("guest@customer.test")
            t.like(dict(mta.headers(msg)).get("X-Stripe-Checkout", ""),
                   r"^window=90d; sessions=1; paid=1; subscriptions=0;", "the guest's X-Stripe-Checkout")
            t.is_((pf, sv, pm), (QUIET["postfix"], ("flagged",), QUIET["procmail"]),
                  "paid guest buyer: stripe.sieve flags it, nothing else acts")
            for addr in ("unpaid.guest@customer.test", "unknown@customer.test"):
                pf, (sv, pm), _ = outcome(addr)
                t.is_((pf, sv, pm), (QUIET["postfix"], ("keep",), QUIET["procmail"]),
                      "%s: no rule acts" % addr)
        t.run("the guest rule of stripe.sieve", guests)

        def hostile():
            bad = []
            for addr, twin in pairs:
                pf, sv, msg = outcome(addr)
                tpf, tsv, _ = outcome(twin)
                if (pf, sv) != (tpf, tsv):
                    bad.append("%s named %r: postfix %r sieve+procmail %r; its ordinary twin: %r %r"
                               % (addr, names[addr][:60], pf, sv, tpf, tsv))
                texts = [(k, v) for k, v in mta.headers(msg)
                         if k.lower().startswith("x-stripe-") and hdrv2.is_text_header(k)]
                for k, v in texts:
                    if hdrv2.strict_decode(v) != hdrv2.stripe_text(names[addr]):
                        bad.append("%s: %s decodes to %r" % (addr, k, hdrv2.strict_decode(v)[:80]))
                if hdrv2.stripe_text(names[addr]) and \
                        sorted(k for k, _ in texts) != ["X-Stripe-Metadata-note", "X-Stripe-Name", "X-Stripe-Plan"]:
                    bad.append("%s: text headers %r" % (addr, texts))
            t.ok(not bad, "%d hostile customers (%d names x past-due/paying): every rule did exactly "
                 "what it did for the ordinary twin; names, plans and metadata decode to the Stripe text"
                 % (len(pairs), len(hdrv2.HOSTILE)), "\n".join(bad[:10]))
        t.run("hostile names and plan names fool no rule", hostile)
    finally:
        p.stop()
        m.stop()
        s.stop()
        redis.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
