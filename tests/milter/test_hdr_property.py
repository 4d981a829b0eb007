#!/usr/bin/env python3
"""test_hdr_property.py - the header contract v2 over random and hostile free text.

Drives the real renderer (tests/milter/hdr_dump: JSON summaries in, mf_hdr_render() lines
out) with summaries whose customer names, plan names and metadata values are random printable
ASCII, random Unicode (controls, bidi overrides, emoji, RTL, combining marks), every token of
the contract, encoded-word look-alikes, CR/LF/NUL and texts of 10,000 characters. For every
summary:

* the token headers are byte for byte those of the same summary with ordinary text, and
  each parses back (tests/lib/hdrv2.parse_tokens) to the same tokens: "v=2" first in Lookup,
  delinquent= and every status= as the summary says;
* every text header (Name, Plan, Metadata-*) decodes, with this suite's own strict RFC 2047
  reader and with Python's email.policy.default, to exactly the text minus CR and LF (cut at
  a NUL, at most 255 bytes at a character boundary, as stripe/ stores it); a text that is
  empty after that has no header; each Plan line directly follows its Subscription line;
* lines are at most 78 columns (998 always).

The seed is printed; STRIPE_MILTER_PROPERTY_SEED and STRIPE_MILTER_PROPERTY_N override.
"""
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import hdrv2  # noqa: E402
import smtest  # noqa: E402

STATUSES = ["active", "trialing", "past_due", "unpaid", "incomplete", "paused", "canceled",
            "incomplete_expired"]
META_KEYS = ["tier", "note", "account.ref", "plan-code", "a/b+c@d", "x_y", "Region", "k9"]
POOL = ("\u00e9\u00fc\u00df\u00c5\u0645\u0631\u062d\u05e9\u05dc\u4e2d\u6587\u65e5\u672c"
        "\U0001F600\U0001F4B8\u0301\u0308\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
        "\u200e\u200f\ufeff\u2028\u2029\u0085\u00a0\u3000\ufffd\U0010FFFF"
        "\t\r\n\x00\x01\x1b\x7f ;=\"\\:?_()<>,.@")
TOKENS = ["delinquent=no", "delinquent=yes", "status=active", "status=past_due", "past_due",
          "active", "unpaid", "v=2", "found", "cache=hit", "X-Stripe-Lookup: found",
          "X-Stripe-Subscription-Status: active", "=?UTF-8?Q?", "?=", "=?", "; ", '"', "\r\n",
          "\u202e", "cancel_at_period_end=no", "balance=0.00 USD", "=?UTF-8?B?DQo=?="]


def rand_text(rng):
    k = rng.randrange(8)
    if k == 0:
        return rng.choice(hdrv2.HOSTILE)
    if k == 1:
        return "".join(chr(rng.randrange(0x20, 0x7f)) for _ in range(rng.randrange(0, 90)))
    if k == 2:
        return "".join(rng.choice(POOL) for _ in range(rng.randrange(0, 60)))
    if k == 3:
        return "".join(rng.choice(TOKENS) + rng.choice(["", " ", ";", "\r\n"])
                       for _ in range(rng.randrange(1, 12)))
    if k == 4:      # a correct encoded word of hostile text: must stay literal text
        inner = rng.choice(TOKENS) + rng.choice(TOKENS)
        return "=?UTF-8?Q?%s?=" % "".join("=%02X" % b for b in inner.encode())
    if k == 5:
        return rng.choice(["Jenny Rosen", "Pro", "Team Plan", "gold", "O'Brien & Sons"])
    if k == 6:      # long
        return "".join(rng.choice(POOL + "abcdefgh ") for _ in range(rng.randrange(200, 10001)))
    return "".join(chr(rng.choice([rng.randrange(0x20, 0x7f), rng.randrange(0xa0, 0xd7ff),
                                   rng.randrange(0xe000, 0x10ffff)])) for _ in range(rng.randrange(1, 40)))


def summary(rng):
    subs = [{"status": rng.choice(STATUSES), "plan": rand_text(rng), "amount": rng.randrange(0, 10 ** 7),
             "currency": rng.choice(["usd", "eur", "jpy", "kwd"]), "interval": rng.choice(["month", "year", ""]),
             "interval_count": rng.randrange(1, 4), "period_end": 1796126400 + rng.randrange(0, 10 ** 7),
             "cancel_at_period_end": rng.random() < 0.3, "quantity": rng.randrange(1, 5)}
            for _ in range(rng.randrange(0, 5))]
    keys = rng.sample(META_KEYS, rng.randrange(0, len(META_KEYS) + 1))
    return {"name": rand_text(rng), "customer_id": "cus_%08d" % rng.randrange(10 ** 8),
            "delinquent": rng.random() < 0.5, "created": 1709294400 + rng.randrange(0, 10 ** 7),
            "matches": rng.randrange(1, 3), "balance": [rng.randrange(-10 ** 5, 10 ** 5), "usd"],
            "subs": subs, "meta": [[k, rand_text(rng)] for k in keys], "charges": True}


def ordinary(s):
    o = json.loads(json.dumps(s))
    o["name"] = "Ordinary Name"
    for i, sub in enumerate(o["subs"]):
        sub["plan"] = "Plan %d" % i
    o["meta"] = [[k, "value"] for k, _ in o["meta"]]
    return o


class Renderer:
    def __init__(self):
        path = os.path.join(smtest.builddir(), "tests", "milter", "hdr_dump")
        if not os.access(path, os.X_OK):
            raise smtest.Unavailable("%s not built (make check builds it)" % path)
        self.p = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def render(self, s):
        self.p.stdin.write((json.dumps(s) + "\n").encode())
        self.p.stdin.flush()
        out = json.loads(self.p.stdout.readline())
        if isinstance(out, dict):
            raise AssertionError("hdr_dump: %s for %r" % (out, s))
        return [tuple(x) for x in out]

    def close(self):
        self.p.stdin.close()
        return self.p.wait(timeout=30)


def check_one(s, got, plain):
    """The properties for one summary; returns a list of problems (empty when all hold)."""
    bad = []
    tok = [(k, v) for k, v in got if not hdrv2.is_text_header(k)]
    tok_o = [(k, v) for k, v in plain if not hdrv2.is_text_header(k)]
    if tok != tok_o:
        bad.append("token headers differ from the ordinary-text rendering:\n%r\n%r" % (tok, tok_o))
    parsed = {}
    for k, v in tok:
        try:
            parsed.setdefault(k, []).append(hdrv2.parse_tokens(v, k))
        except ValueError as e:
            bad.append("%s: %s" % (k, e))
    if parsed.get("X-Stripe-Lookup", [[None]])[0][:2] != ["v=2", "found"]:
        bad.append("Lookup is not 'v=2; found': %r" % parsed.get("X-Stripe-Lookup"))
    want_d = "delinquent=%s" % ("yes" if s["delinquent"] else "no")
    if want_d not in (parsed.get("X-Stripe-Customer") or [[]])[0]:
        bad.append("Customer does not say %s: %r" % (want_d, parsed.get("X-Stripe-Customer")))
    st = [[i for i in items if i.startswith("status=")] for items in parsed.get("X-Stripe-Subscription", [])]
    if sorted(x[0][7:] for x in st if x) != sorted(sub["status"] for sub in s["subs"]):
        bad.append("Subscription statuses %r, summary %r" % (st, [x["status"] for x in s["subs"]]))
    # text headers
    want = []
    want.append(("X-Stripe-Name", hdrv2.stripe_text(s["name"], controls_to_space=False)))
    for sub in s["subs"]:
        want.append(("X-Stripe-Plan", hdrv2.stripe_text(sub["plan"], controls_to_space=False)))
    for k, v in s["meta"]:
        want.append(("X-Stripe-Metadata-" + k, hdrv2.stripe_text(v, controls_to_space=False)))
    want = [(k, v) for k, v in want if v != ""]
    texts = [(k, v) for k, v in got if hdrv2.is_text_header(k)]
    if [k for k, _ in texts] != [k for k, _ in want]:
        bad.append("text headers %r, expected %r" % ([k for k, _ in texts], [k for k, _ in want]))
    pol = hdrv2.policy_decode(got)
    seen = {}
    for (k, v), (_, w) in zip(texts, want):
        try:
            d = hdrv2.strict_decode(v)
            if d != w:
                bad.append("%s strict-decodes to %r, not %r (value %r)" % (k, d, w, v))
        except ValueError as e:
            bad.append("%s: %s" % (k, e))
        i = seen.get(k, 0)
        seen[k] = i + 1
        p = pol.get(k, [None] * (i + 1))[i]
        if p != w:
            bad.append("%s: email.policy.default reads %r, not %r (value %r)" % (k, p, w, v))
    for i, (k, v) in enumerate(got):
        if k == "X-Stripe-Plan" and (i == 0 or got[i - 1][0] != "X-Stripe-Subscription"):
            bad.append("Plan line %d does not follow a Subscription line" % i)
        lines = (k + ": " + v).split("\n")
        if any(len(ln) > 998 for ln in lines) or any(len(ln) > 78 for ln in lines):
            bad.append("%s: a line over 78 columns: %r" % (k, lines))
    return bad


def main():
    t = smtest.TAP()
    seed = int(os.environ.get("STRIPE_MILTER_PROPERTY_SEED") or random.SystemRandom().randrange(2 ** 32))
    n = int(os.environ.get("STRIPE_MILTER_PROPERTY_N") or 2000)
    t.diag("seed %d, %d summaries (STRIPE_MILTER_PROPERTY_SEED=%d reproduces)" % (seed, n, seed))
    try:
        r = Renderer()
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    rng = random.Random(seed)

    def hostile_list():
        # every hostile string as the name, every plan name and every metadata value at once
        for h in hdrv2.HOSTILE:
            s = summary(rng)
            s["name"] = h
            s["subs"] = [dict(sub, plan=h) for sub in s["subs"]] or [
                {"status": "past_due", "plan": h, "amount": 4900, "currency": "usd", "interval": "month"}]
            s["meta"] = [[k, h] for k in META_KEYS]
            bad = check_one(s, r.render(s), r.render(ordinary(s)))
            t.ok(not bad, "hostile text %r: tokens unchanged, text decodes back" % h[:40], "\n".join(bad))
    t.run("the hostile list", hostile_list)

    def random_summaries():
        failures = []
        for i in range(n):
            s = summary(rng)
            bad = check_one(s, r.render(s), r.render(ordinary(s)))
            if bad:
                failures.append("summary %d: %s" % (i, "\n  ".join(b[:600] for b in bad[:3])))
        t.ok(not failures, "%d random summaries: every token header parses back to the same tokens, "
             "every text header decodes to the text (%d failed)" % (n, len(failures)),
             "\n".join(failures[:5]))
    t.run("random summaries", random_summaries)

    def checker_can_fail():
        # the checks themselves catch what v1 did: a name inside a token header, and an
        # encoded-word look-alike passed through
        s = summary(rng)
        s["subs"] = []
        got = r.render(s)
        forged = [(k, v + '; name="x; delinquent=no"') if k == "X-Stripe-Customer" else (k, v) for k, v in got]
        t.ok(check_one(s, forged, r.render(ordinary(s))), "a name inside a token header is caught")
        s["name"] = "=?UTF-8?Q?a=0D=0Ab?="
        got = r.render(s)
        passed = [(k, s["name"]) if k == "X-Stripe-Name" else (k, v) for k, v in got]
        t.ok(check_one(s, passed, r.render(ordinary(s))), "a look-alike passed through is caught")
    t.run("the checks can fail", checker_can_fail)
    t.is_(r.close(), 0, "hdr_dump exits cleanly")
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
