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
  as stripe/ stores it (cut at a NUL; controls as stripe/ turns them into spaces when
  asked; at most 255 bytes, cut at a character boundary) and the renderer sends it (CR and LF
  removed).
* `HOSTILE`: names and plan names an attacker would choose against the shipped rules.
"""
import base64
import email
import email.policy
import re

TEXT_HEADERS = ("Name", "Plan")
TEXT_PREFIXES = ("Metadata-",)
TOKEN_ITEM = re.compile(r"^(?:[a-z][a-z_-]*|[a-z][a-z_-]*=[A-Za-z0-9._,/+-]+(?: [A-Za-z0-9._,/+-]+)*)$")
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
    b = s.encode("utf-8", "surrogatepass").split(b"\x00", 1)[0]
    if controls_to_space:
        b = bytes(0x20 if (c < 0x20 or c == 0x7f) else c for c in b)
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
