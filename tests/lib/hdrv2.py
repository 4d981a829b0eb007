"""hdrv2 - the header contract v2 as a test sees it (tests only; standard library only).

* `TEXT_HEADERS` / `is_text_header(name)`: which X-Stripe-* headers carry untrusted free text
  (Name, Plan, Metadata-*); every other one is a token header.
* `parse_tokens(value)`: a token header's value -> list of items; raises ValueError when an
  item does not fit the v2 token grammar (so free text in a token header fails loudly).
* `strict_decode(value)`: this module's own strict RFC 2047 reader of a text header's value:
  plain text must obey the plain rules (printable ASCII without '"', ';', '=', ':', '\\', no
  leading, trailing or doubled spaces); otherwise only encoded words separated by folding
  white space, each at most 75 characters, "UTF-8" charset, Q with only the RFC 2047 5(3)
  literals and upper-case hex, B with correct padding, each word decoding to whole UTF-8
  characters. Raises ValueError on anything else.
* `policy_decode(headers)`: the values as Python's email package (policy.default) reads them.
* `stripe_text(s)`: what the contract promises a text header decodes to for Stripe text s,
  as stripe/ stores it (C0 controls and DEL as spaces, as stripe/ reads JSON; or, with
  controls_to_space=False, cut at a NUL as a C string is; at most 255 bytes, cut at a
  character boundary) and the renderer sends it (CR and LF
  removed).
* `HOSTILE`: names and plan names an attacker would choose against the shipped rules.
"""
import base64
import email
import email.policy
import re

TEXT_HEADERS = ("Name", "Plan")
TEXT_PREFIXES = ("Metadata-",)
# "found", "status=active", and X-Stripe-Accounts' "<account>=found", "<account>.status=past_due"
# (account names are [a-z0-9][a-z0-9_-]*)
TOKEN_ITEM = re.compile(r"^(?:[a-z][a-z_-]*|[a-z0-9][a-z0-9_-]*(?:\.[a-z_-]+)?=[A-Za-z0-9._,/+-]+"
                        r"(?: [A-Za-z0-9._,/+-]+)*)$")
ID = re.compile(r"^[A-Za-z0-9_]+$")
STATUS = re.compile(r"^[a-z_]+$")
Q_LITERAL = re.compile(r"^(?:[A-Za-z0-9!*+/_-]|=[0-9A-F]{2})*$")
B_PAYLOAD = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
EW = re.compile(r"^=\?UTF-8\?([QB])\?([^?\s]*)\?=$")


def is_text_header(name, prefix="X-Stripe-"):
    if not name.lower().startswith(prefix.lower()):
        raise ValueError("not a contract header: %r" % name)
    rest = name[len(prefix):]
    return rest in TEXT_HEADERS or any(rest.startswith(p) for p in TEXT_PREFIXES)


def unfold(value):
    """RFC 5322 unfolding: CRLF (or the milter's LF) before white space is removed."""
    return re.sub(r"\r?\n(?=[ \t])", "", value)


def parse_tokens(value, name=""):
    """A token header's value as a list of items ("v=2", "found", "status=active")."""
    v = unfold(value)
    if name.endswith("Customer-Id"):
        if not ID.match(v):
            raise ValueError("customer id %r" % v)
        return [v]
    if name.endswith("Subscription-Status"):
        if not STATUS.match(v):
            raise ValueError("status %r" % v)
        return [v]
    items = [x.strip(" \t") for x in v.split(";")]
    for x in items:
        if not TOKEN_ITEM.match(x):
            raise ValueError("item %r of %r is not a token" % (x, value))
    return items


def plain_ok(text):
    return (text != "" and text == text.strip(" ") and "  " not in text and
            all(0x20 <= ord(c) < 0x7f and c not in "\";=:\\" for c in text))


def _q_decode(payload):
    out = bytearray()
    i = 0
    while i < len(payload):
        c = payload[i]
        if c == "_":
            out.append(0x20)
        elif c == "=":
            out.append(int(payload[i + 1:i + 3], 16))
            i += 2
        else:
            out.append(ord(c))
        i += 1
    return bytes(out)


def strict_decode(value):
    """A text header's value -> its text; ValueError for anything not strictly right."""
    if "\r" in value or "\x00" in value:
        raise ValueError("CR or NUL in a value: %r" % value)
    for i, line in enumerate(value.split("\n")):
        if i > 0 and not line.startswith("\t"):
            raise ValueError("a line break not followed by a tab: %r" % value)
    v = unfold(value)
    if not v.startswith("=?"):
        if not plain_ok(v):
            raise ValueError("plain text that should have been encoded: %r" % v)
        return v
    text = ""
    for word in re.split(r"[ \t]+", v):
        if len(word) > 75:
            raise ValueError("encoded word longer than 75: %r" % word)
        m = EW.match(word)
        if not m:
            raise ValueError("not an encoded word: %r in %r" % (word, value))
        kind, payload = m.groups()
        if kind == "Q":
            if not Q_LITERAL.match(payload):
                raise ValueError("Q payload with a character RFC 2047 5(3) forbids: %r" % word)
            raw = _q_decode(payload)
        else:
            if not B_PAYLOAD.match(payload):
                raise ValueError("bad base64: %r" % word)
            raw = base64.b64decode(payload, validate=True)
        text += raw.decode("utf-8", "strict")     # whole characters in every word
    return text


def policy_decode(headers):
    """[(name, value)] -> {name: [decoded values]} as email.policy.default reads them."""
    raw = "".join("%s: %s\r\n" % (k, v.replace("\n", "\r\n")) for k, v in headers)
    msg = email.message_from_bytes(raw.encode("ascii") + b"\r\nbody\r\n", policy=email.policy.default)
    out = {}
    for k, v in msg.items():
        out.setdefault(k, []).append(str(v))
    return out


def stripe_text(s, size=256, controls_to_space=True):
    """The text a text header must decode to for Stripe text s (see the module comment)."""
    b = s.encode("utf-8", "surrogatepass")
    if controls_to_space:       # stripe/ reading JSON: every C0 control and DEL, NUL too
        b = bytes(0x20 if (c < 0x20 or c == 0x7f) else c for c in b)
    else:                       # a C string: a NUL ends it
        b = b.split(b"\x00", 1)[0]
    if len(b) > size - 1:
        n = size - 1
        while n > 0 and (b[n] & 0xc0) == 0x80:     # cut before the character b[n] is in
            n -= 1
        b = b[:n]
    return b.decode("utf-8", "replace").replace("\r", "").replace("\n", "")


# Every token of the contract, encoded-word look-alikes, CR/LF header lines, bidi overrides,
# quotes, and 10,000 characters. Each is a customer name or plan name in the tests.
CONTRACT_TOKENS = ("v=2; found; cache=hit; mode=live; delinquent=no; status=active; "
                   "cancel_at_period_end=no; balance=0.00 USD; past_due; unpaid; active; trialing; "
                   "delinquent=yes; status=past_due")
HOSTILE = [
    'Eve"; delinquent=no; status=active; x="',
    "Mallory; delinquent=no; balance=0.00 USD; matches=1",
    CONTRACT_TOKENS,
    "active",
    "past_due",
    "unpaid",
    "X-Stripe-Subscription-Status: active",
    "X-Stripe-Lookup: v=2; found; cache=hit",
    "Eve\r\nX-Stripe-Subscription-Status: active\r\nX-Stripe-Customer: delinquent=no",
    "=?UTF-8?Q?=0D=0AX-Stripe-Lookup:_found?=",
    "=?UTF-8?B?DQpYLVN0cmlwZS1DdXN0b21lcjogZGVsaW5xdWVudD1ubw==?=",
    "=?utf-8?q?delinquent=3Dno?= =?ISO-8859-1?Q?status=3Dactive?=",
    "\u202eon=tneuqnilled \u2066status=active\u2069 \u200fpast_due",
    "Ev\u00e9 \U0001F600 \u0645\u0631\u062d\u0628\u0627 \u202adelinquent=no\u202c",
    "tab\there\x0bvt\x1b[31mred\x7fdel \u0085nel \u2028ls",
    "Ev\x00e delinquent=no",
    " leading and  doubled  spaces ",
    "\\\"; status=active",
    "(comment) <angle@example.com> delinquent=no",
    "delinquent=no " * 700 + "x" * 200,                          # 10,000 characters
    ("\u00e9" * 5000) + "status=active",
]


# ---------------------------------------------------------------------------------------------
# The shipped rules run for real: conf/stripe.sieve through sieve-test, conf/milter_header_checks
# through postmap -q (the same regexp table code Postfix's cleanup uses).
# ---------------------------------------------------------------------------------------------

def hostile_state(now):
    """Stand-in state: for every HOSTILE string i, a past-due delinquent customer
    bad<i>@customer.test and a paying one good<i>@customer.test, both named the string, with a
    plan of that name and metadata note=<the string>; and their ordinary twins ordbad@ / ordgood@ (name "Pat Late", plan
    "Team"; "Jenny Rosen", plan "Pro"). Returns (state, [(address, twin)])."""
    day = 86400
    products = [{"id": "prod_ordbad", "name": "Team"}, {"id": "prod_ordgood", "name": "Pro"}]
    customers, subs, pairs = [], [], []

    def person(addr, cid, name, bad, product):
        customers.append({"id": cid, "email": addr, "name": name, "created": 1704067200,
                          "balance": 9900 if bad else 0, "currency": "usd", "delinquent": bad,
                          "metadata": {"note": name}})
        subs.append({"id": "sub_" + cid[4:], "customer": cid, "status": "past_due" if bad else "active",
                     "created": now - 60 * day,
                     "items": [{"price": {"id": "price_" + cid[4:], "unit_amount": 9900, "currency": "usd",
                                          "recurring": {"interval": "month", "interval_count": 1},
                                          "product": product},
                                "quantity": 1, "current_period_end": now + 3 * day}]})

    person("ordbad@customer.test", "cus_ordbad", "Pat Late", True, "prod_ordbad")
    person("ordgood@customer.test", "cus_ordgood", "Jenny Rosen", False, "prod_ordgood")
    for i, h in enumerate(HOSTILE):
        products.append({"id": "prod_h%d" % i, "name": h})
        person("bad%d@customer.test" % i, "cus_bad%d" % i, h, True, "prod_h%d" % i)
        person("good%d@customer.test" % i, "cus_good%d" % i, h, False, "prod_h%d" % i)
        pairs.append(("bad%d@customer.test" % i, "ordbad@customer.test"))
        pairs.append(("good%d@customer.test" % i, "ordgood@customer.test"))
    return {"products": products, "customers": customers, "subscriptions": subs, "charges": []}, pairs


def sieve_outcome(tmp, msg, script):
    """The actions conf/stripe.sieve takes on a message: a sorted tuple of 'Billing',
    'flagged', 'keep'. Raises RuntimeError when sieve-test fails."""
    import os
    import shutil
    import subprocess
    local = os.path.join(tmp, "stripe.sieve")
    if not os.path.exists(local):
        shutil.copy(script, local)
    path = os.path.join(tmp, "msg.eml")
    with open(path, "wb") as f:
        f.write(msg)
    r = subprocess.run(["sieve-test", "-o", "mail_uid=nobody", "-o", "mail_gid=nogroup", local, path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0 or "final result: success" not in out:
        raise RuntimeError("sieve-test failed:\n" + out)
    acts = set()
    if "store message in folder: Billing" in out:
        acts.add("Billing")
    if "\\flagged" in out.replace("\\\\", "\\"):
        acts.add("flagged")
    if not acts:
        acts.add("keep")
    return tuple(sorted(acts))


def postmap_outcome(fields, table, confdir):
    """The actions a Postfix regexp table (conf/milter_header_checks) takes on the raw
    X-Stripe-* fields of a message ("Name: value" with its folds, as Postfix's cleanup
    matches them): a sorted tuple like ('REDIRECT billing@example.test',). confdir: a
    directory for a minimal main.cf (postmap needs one)."""
    import os
    import subprocess
    main_cf = os.path.join(confdir, "main.cf")
    if not os.path.exists(main_cf):
        with open(main_cf, "w") as f:
            f.write("compatibility_level = 3.6\n")
    acts = []
    for f in fields:
        q = f.rstrip("\n")
        r = subprocess.run(["postmap", "-c", confdir, "-q", q, "regexp:" + table], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        if r.returncode == 0:
            acts.append(r.stdout.decode().strip())
        elif r.returncode != 1 or r.stderr.strip():
            raise RuntimeError("postmap -q failed (%d): %s" % (r.returncode, r.stderr.decode()))
    return tuple(sorted(acts))


def procmail_outcome(tmp, msg, rcfile):
    """The folder procmail delivers a message to with rcfile (conf/stripe.procmailrc)
    included and an "inbox/" catch-all after it: 'Billing' or 'inbox'."""
    import os
    import subprocess
    import tempfile
    d = tempfile.mkdtemp(prefix="procmail-", dir=tmp)
    rc = os.path.join(d, "rc")
    with open(rc, "w") as f:
        f.write("MAILDIR=%s\nLOGFILE=%s/log\nINCLUDERC=%s\n:0\ninbox/\n" % (d, d, rcfile))
    r = subprocess.run(["procmail", "-m", rc], input=msg, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    got = [n for n in ("Billing", "inbox") if os.path.isdir(os.path.join(d, n, "new")) and
           os.listdir(os.path.join(d, n, "new"))]
    if r.returncode != 0 or len(got) != 1:
        log = open(os.path.join(d, "log")).read() if os.path.exists(os.path.join(d, "log")) else ""
        raise RuntimeError("procmail (%d) delivered to %r:\n%s%s" % (r.returncode, got,
                           r.stdout.decode("utf-8", "replace"), log))
    return got[0]
