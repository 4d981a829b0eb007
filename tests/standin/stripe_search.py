"""stripe_search.py - Stripe's Search Query Language for the stand-in and the contract audit.

Python 3 standard library only; never part of the product. The rules and the query fields per
resource are data, tests/data/stripe/search-query-language.json (copied from
docs.stripe.com/search, with sources); this module only applies them:

    lang = load()                                   # the JSON file, read once
    q = parse("email:'a@b.c' AND created>=1", "customers", lang)    # or QueryError
    q.matches(customer_dict)                        # True/False, as Stripe's search would
    q.fields()                                      # ["email", "created"]

parse() refuses what Stripe refuses, with Stripe's 400 wording where it is known: a field the
resource does not list ("Field `x` is an unsupported search field for resource `charges`. ..."),
an operator the field's type does not allow, more than 10 clauses, AND mixed with OR,
parentheses, an unquoted string value, an unterminated quote, a substring (~) under 3
characters. QueryError carries the message; the caller answers 400 invalid_request_error with
param "query".

Matching follows the documented semantics: token fields match exactly, ignoring case; string
fields match when the value's words occur in the field in the same order (name:"one two three"
finds "one two three four"), `~` finds a substring; numeric fields compare as numbers; null is
field presence; `-` negates; metadata["k"] reads metadata. Known limits: words are runs of
letters and digits (Stripe's tokenizer is not published); charges' refunded follows the docs'
note (true fully, false partially, null not refunded).
"""

import json
import os
import re

_LANG = None


def data_path():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "data", "stripe", "search-query-language.json")


def load(path=None):
    """The search language data (cached when path is None)."""
    global _LANG
    if path is not None:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    if _LANG is None:
        with open(data_path(), encoding="utf-8") as f:
            _LANG = json.load(f)
    return _LANG


class QueryError(Exception):
    """A query Stripe refuses: HTTP 400 invalid_request_error, param "query"."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field      # the unsupported field, when that is the reason


PARSE_FAIL = "We were unable to parse your search query."
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_META = re.compile(r"""metadata\[(['"])((?:\\.|(?!\1).)*)\1\]""")
_OPS = (">=", "<=", ":", "~", ">", "<", "=")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_BARE = re.compile(r"""[^\s()'"]+""")


class Clause:
    def __init__(self, neg, field, key, op, value, quoted):
        self.neg = neg          # a leading -
        self.field = field      # "email", "metadata", "payment_method_details.card.last4"
        self.key = key          # the metadata key, or None
        self.op = op            # one of _OPS
        self.value = value      # the text, unescaped
        self.quoted = quoted

    def is_null(self):
        return not self.quoted and self.value.lower() == "null"


class Query:
    def __init__(self, resource, types, clauses, combinator):
        self.resource = resource
        self.types = types          # field -> token|string|numeric
        self.clauses = clauses
        self.combinator = combinator    # "AND" or "OR"

    def fields(self):
        return [c.field for c in self.clauses]

    def matches(self, obj):
        res = [self._one(c, obj) != c.neg for c in self.clauses]
        return all(res) if self.combinator == "AND" else any(res)

    def _one(self, c, obj):
        if c.field == "metadata":
            have = (obj.get("metadata") or {}).get(c.key)
        else:
            have = obj
            for part in c.field.split("."):
                have = have.get(part) if isinstance(have, dict) else None
        if self.resource == "charges" and c.field == "refunded":
            # docs: refunded:"true" fully refunded, "false" partially, null not refunded
            part = (obj.get("amount_refunded") or 0) > 0 and not obj.get("refunded")
            v = "null" if c.is_null() else c.value.lower()
            return {"true": bool(obj.get("refunded")), "false": part,
                    "null": (obj.get("amount_refunded") or 0) == 0}.get(v, False)
        if c.is_null():
            return have is None or have == ""
        typ = self.types[c.field]
        if typ == "numeric":
            if isinstance(have, bool) or not isinstance(have, (int, float)):
                return False
            want = float(c.value)
            return {":": have == want, "=": have == want, ">": have > want, "<": have < want,
                    ">=": have >= want, "<=": have <= want}[c.op]
        if have is None:
            return False
        text = ("true" if have else "false") if isinstance(have, bool) else str(have)
        if c.op == "~":
            return c.value.lower() in text.lower()
        if typ == "string":
            return word_match(text, c.value)
        return text.lower() == c.value.lower()


def words(v):
    return re.findall(r"[0-9a-z]+", v.lower())


def word_match(have, want):
    """True when want's words occur in have's, in order and next to each other (Stripe: "an
    exact match on a string type returns any record that contains all of the words from the
    query in the same order"): 'one@x.com' finds 'Some.One@X.COM' and 'one@x.com.evil' too."""
    h, w = words(have), words(want)
    if not w:
        return have.lower() == want.lower()
    return any(h[i:i + len(w)] == w for i in range(len(h) - len(w) + 1))


def unsupported(field, resource):
    return QueryError("Field `%s` is an unsupported search field for resource `%s`. See "
                      "http://stripe.com/docs/search#query-fields-for-%s for a list of supported "
                      "fields." % (field, resource, resource.replace("_", "-")), field=field)


def _quoted(text, pos):
    """text[pos] is a quote: (unescaped value, position after the closing quote)."""
    q = text[pos]
    out = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == q:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise QueryError(PARSE_FAIL + " A quoted value is not closed.")


def parse(query, resource, lang=None, tolerate=()):
    """Parse `query` for `resource` ("customers", "charges", ...) by the rules in lang; returns
    a Query or raises QueryError. `tolerate`: (field, type) pairs accepted beyond the data (a
    transition the caller names; see stripe_standin.py)."""
    lang = lang or load()
    rules = lang["rules"]
    res = lang["resources"].get(resource)
    if res is None:
        raise QueryError("Search is not available for resource `%s`." % resource)
    types = dict(res["fields"])
    types.update(dict(tolerate))
    ops_by_type = rules["operators_by_type"]
    max_clauses = rules["max_clauses"]["value"]
    sub_min = rules["substring_min"]["value"]
    text = query.strip()
    if not text:
        raise QueryError(PARSE_FAIL + " The query is empty.")
    clauses = []
    combinator = None
    pos = 0
    n = len(text)
    while True:
        if text[pos] in "()":
            raise QueryError(PARSE_FAIL + " Parentheses are not supported.")
        neg = text[pos] == "-"
        if neg:
            pos += 1
        m = _META.match(text, pos)
        if m:
            field, key = "metadata", re.sub(r"\\(.)", r"\1", m.group(2))
        else:
            m = _FIELD.match(text, pos)
            if not m:
                raise QueryError(PARSE_FAIL + " Expected a field at position %d." % pos)
            field, key = m.group(0), None
        pos = m.end()
        op = next((o for o in _OPS if text.startswith(o, pos)), None)
        if op is None:
            raise QueryError(PARSE_FAIL + " Expected an operator after `%s`." % field)
        pos += len(op)
        if field not in types:
            raise unsupported(field, resource)
        if pos < n and text[pos] in "'\"":
            value, pos = _quoted(text, pos)
            quoted = True
        else:
            m = _BARE.match(text, pos)
            if not m:
                raise QueryError(PARSE_FAIL + " Expected a value after `%s%s`." % (field, op))
            value, pos, quoted = m.group(0), m.end(), False
        c = Clause(neg, field, key, op, value, quoted)
        typ = types[field]
        if op not in ops_by_type[typ]:
            raise QueryError(PARSE_FAIL + " The operator `%s` is not supported on `%s`, a %s "
                             "field." % (op, field, typ))
        if not quoted and not c.is_null() and not _NUMBER.fullmatch(value):
            raise QueryError(PARSE_FAIL + " String values must be quoted: `%s`." % value)
        if c.is_null() and op != ":":
            raise QueryError(PARSE_FAIL + " null is only matched with `:`.")
        if typ == "numeric" and not c.is_null() and not _NUMBER.fullmatch(value):
            raise QueryError(PARSE_FAIL + " `%s` is a numeric field: `%s` is not a number."
                             % (field, value))
        if op == "~" and len(value) < sub_min:
            raise QueryError(PARSE_FAIL + " A substring match (~) needs at least %d characters."
                             % sub_min)
        clauses.append(c)
        if len(clauses) > max_clauses:
            raise QueryError(PARSE_FAIL + " A query may combine at most %d clauses."
                             % max_clauses)
        # between clauses: spaces, then AND/OR (any case) or the next clause (AND by default)
        m = re.compile(r"\s*").match(text, pos)
        if m.end() >= n:
            break
        if m.end() == pos and text[pos] not in "()":
            raise QueryError(PARSE_FAIL + " Clauses must be separated by a space.")
        pos = m.end()
        m = re.compile(r"(AND|OR)\s+", re.I).match(text, pos)
        word = "AND"
        if m:
            word = m.group(1).upper()
            pos = m.end()
            if pos >= n:
                raise QueryError(PARSE_FAIL + " A query cannot end with %s." % word)
        if m or combinator is None or word != combinator:
            if combinator is not None and word != combinator:
                raise QueryError(PARSE_FAIL + " You can't combine AND and OR in the same query.")
            combinator = word
    return Query(resource, types, clauses, combinator or "AND")
