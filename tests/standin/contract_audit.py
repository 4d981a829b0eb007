#!/usr/bin/env python3
"""contract_audit.py - checks recorded Stripe requests against Stripe's published contract.

Python 3 standard library only; a test tool, never part of the product. The stand-in
(stripe_standin.py --audit-dir DIR, or $STANDIN_AUDIT_DIR, which `make check` sets) appends one
JSON line per Stripe request it received to DIR/<test>.<pid>.jsonl. This module reads them all
and checks each request against Stripe's published documents, vendored in tests/data/stripe:

  - the OpenAPI spec (openapi-lookup-strict.json): the method and path are an operation of it,
    every query parameter is one the operation declares, in the shape it declares (a[]= for
    arrays, a[k]= for objects with the keys it lists), integers are integers, enums take one of
    their values, strings respect maxLength, limit is 1-100 (its description);
  - the Search Query Language (search-query-language.json, via stripe_search.py): the query
    of a /search request uses only the resource's fields and follows the rules;
  - expand[] paths at most 4 levels deep (docs.stripe.com/api/expanding_objects);
  - Stripe-Version, when sent, is a version name (YYYY-MM-DD[.name]); Stripe-Account an acct_ id;
    an Authorization header is present;
  - the stand-in itself refused it with a 400 that no fault rule asked for.

A request a test sent outside the contract on purpose (to test the stand-in's refusals) carries
`X-Standin-Outside-Contract: <why>` and is reported as declared, not as a failure; requests the
stand-in tolerates for a named transition (stripe_standin.Standin.SEARCH_TOLERATED) are listed as
known defects (TAP TODO). Everything else outside the contract fails, with the requests and the
tests that sent them.

    python3 contract_audit.py DIR          # TAP on stdout; exit 1 when a request is outside

TAP: one case per request shape (method, path template, parameter names, search fields and
operators; requests of a shape with different problems apart), so the totals show how much of
the contract the suite exercised.
"""

import json
import os
import re
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import stripe_search  # noqa: E402 - next to this file

DATA = os.path.join(HERE, "..", "data", "stripe")
VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


def load_spec(path=None):
    with open(path or os.path.join(DATA, "openapi-lookup-strict.json"), encoding="utf-8") as f:
        return json.load(f)


class Contract:
    """The vendored documents, ready to check requests against."""

    def __init__(self, spec=None, lang=None, tolerated=None):
        self.spec = spec or load_spec()
        self.lang = lang or stripe_search.load()
        self.tolerated = tolerated if tolerated is not None else standin_tolerated()
        self.ops = []       # (method, template, regex, {name: parameter})
        for tpl, ops in self.spec.get("paths", {}).items():
            rx = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(tpl)) + "$")
            for method, op in ops.items():
                params = {p["name"]: p for p in op.get("parameters", []) if p.get("in") == "query"}
                self.ops.append((method.upper(), tpl, rx, params))
        # literal paths first: /v1/customers/search before /v1/customers/{customer}
        self.ops.sort(key=lambda o: "{" in o[1])

    def operation(self, method, path):
        for m, tpl, rx, params in self.ops:
            if m == method and rx.match(path):
                return tpl, params
        return None, None

    def check(self, rec):
        """(shape, [problems], tolerated) for one recorded request."""
        problems = []
        method, path = rec.get("method"), rec.get("path") or ""
        tpl, params = self.operation(method, path)
        pairs = urllib.parse.parse_qsl(rec.get("query") or "", keep_blank_values=True)
        names = sorted({re.sub(r"\[.*$", "", k) for k, _ in pairs})
        shape = ["%s %s" % (method, tpl or path)]
        if tpl is None:
            problems.append("%s %s is not an operation of Stripe's spec" % (method, path))
            params = {}
        search_note = None
        tolerated = False
        for k, v in pairs:
            problems += self.check_param(k, v, params) if tpl else []
        for name in names:
            if tpl and name not in params:
                problems.append("Received unknown parameter: %s" % name)
        if tpl and tpl.endswith("/search"):
            resource = tpl.split("/")[2]
            query = [v for k, v in pairs if k == "query"]
            if not query:
                problems.append("Missing required param: query.")
            for q in query:
                try:
                    parsed = stripe_search.parse(q, resource, self.lang)
                    search_note = parsed
                except stripe_search.QueryError as e:
                    tol = self.tolerated.get(resource, ())
                    try:
                        parsed = stripe_search.parse(q, resource, self.lang, tolerate=tol)
                        search_note = parsed
                        tolerated = True
                    except stripe_search.QueryError:
                        pass
                    problems.append(e.message)
        for k, v in pairs:
            if re.sub(r"\[.*$", "", k) == "expand" and v.count(".") + 1 > \
                    self.lang["rules"]["expand_depth"]["value"]:
                problems.append("You cannot expand more than 4 levels of a property. "
                                "Property: %s" % v)
        hdrs = rec.get("headers") or {}
        ver = hdrs.get("Stripe-Version")
        if ver is not None and not VERSION_RE.match(ver):
            problems.append("Invalid Stripe API version: %s" % ver)
        acct = hdrs.get("Stripe-Account")
        if acct is not None and not re.match(r"^acct_[A-Za-z0-9]+$", acct):
            problems.append("Stripe-Account is not an account id: %s" % acct)
        if not rec.get("auth"):
            problems.append("no Authorization header (no API key)")
        if rec.get("status") == 400 and not rec.get("fault") and rec.get("error") \
                and not any(rec["error"] in p for p in problems):
            problems.append("the stand-in refused it: %s" % rec["error"])
        shape.append(",".join(names) or "-")
        if search_note is not None:
            shape.append(" ".join(sorted({"%s%s%s" % ("-" if c.neg else "", c.field, c.op)
                                          for c in search_note.clauses}))
                         + " [%s]" % search_note.combinator)
        return " ".join(shape), problems, tolerated and len(problems) == 1

    @staticmethod
    def check_param(key, value, params):
        name = re.sub(r"\[.*$", "", key)
        p = params.get(name)
        if p is None:
            return []
        sub = re.findall(r"\[([^\[\]]*)\]", key)
        schema = p.get("schema") or {}
        alts = schema.get("anyOf") or [schema]
        out = []
        if not sub:
            scalar = [a for a in alts if a.get("type") in ("string", "integer", "boolean")]
            if not scalar:
                return ["%s must be sent as %s[]=... or %s[key]=..." % (name, name, name)]
            a = scalar[0]
        elif len(sub) == 1 and (sub[0] == "" or sub[0].isdigit()):
            arr = [a for a in alts if a.get("type") == "array"]
            if not arr:
                return ["Invalid array: %s is not an array parameter" % name]
            a = arr[0].get("items") or {}
        elif len(sub) == 1:
            objs = [a for a in alts if a.get("type") == "object"]
            if not objs or sub[0] not in (objs[0].get("properties") or {}):
                return ["Received unknown parameter: %s" % key]
            a = objs[0]["properties"][sub[0]]
        else:
            return ["Invalid parameter nesting: %s" % key]
        typ = a.get("type")
        if typ == "integer" and not re.match(r"^-?\d+$", value):
            out.append("Invalid integer: %s (%s)" % (value, key))
        if typ == "boolean" and value not in ("true", "false"):
            out.append("Invalid boolean: %s (%s)" % (value, key))
        if a.get("enum") and value not in a["enum"]:
            out.append("Invalid %s: must be one of %s" % (key, ", ".join(a["enum"])))
        if a.get("maxLength") is not None and len(value) > a["maxLength"]:
            out.append("Invalid %s: longer than %d" % (key, a["maxLength"]))
        if name == "limit" and re.match(r"^-?\d+$", value) and not 1 <= int(value) <= 100:
            out.append("Invalid limit: must be between 1 and 100")
        return out


def standin_tolerated():
    """The stand-in's named transitions ({resource: [(field, type)]}), from stripe_standin.py."""
    try:
        import stripe_standin
        return dict(stripe_standin.Standin.SEARCH_TOLERATED)
    except (ImportError, AttributeError):
        return {}


def read_records(directory):
    recs = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        recs.append({"test": name, "method": "?", "path": "?",
                                     "unreadable": line[:200]})
    return recs


def audit(directory, contract=None, out=sys.stdout):
    """Check every record in directory; print TAP to out. Returns the number of request shapes
    outside the contract (0: all inside)."""
    contract = contract or Contract()
    recs = read_records(directory)
    shapes = {}     # shape -> {"n", "tests", "problems", "examples", "declared", "tolerated"}
    for r in recs:
        if "unreadable" in r:
            shape, problems, tol = "unreadable record in %s" % r["test"], [r["unreadable"]], False
        else:
            shape, problems, tol = contract.check(r)
        declared = r.get("declared")
        # requests of one shape are grouped by what is wrong with them (nothing, or the same
        # problems), so a good request never hides in a failing group or the reverse
        key = (shape, "declared" if declared and problems else "", tuple(sorted(problems)))
        s = shapes.setdefault(key, {"n": 0, "tests": set(), "problems": {}, "examples": [],
                                    "declared": set(), "tolerated": True})
        s["n"] += 1
        s["tests"].add(r.get("test", "?"))
        if declared:
            s["declared"].add(declared)
        for p in problems:
            s["problems"][p] = s["problems"].get(p, 0) + 1
        if problems:
            s["tolerated"] = s["tolerated"] and tol
            if len(s["examples"]) < 3:
                s["examples"].append("%s %s%s  [%s, status %s]" % (
                    r.get("method"), r.get("path"), "?" + r["query"] if r.get("query") else "",
                    r.get("test"), r.get("status")))
    failed = 0
    out.write("1..%d\n" % (len(shapes) + 1))
    out.write("# %d requests recorded by %d stand-in runs in %s\n" % (
        len(recs), len([n for n in os.listdir(directory) if n.endswith(".jsonl")]), directory))
    i = 0
    for (shape, decl, _), s in sorted(shapes.items()):
        i += 1
        who = "%d request%s from %s" % (s["n"], "" if s["n"] == 1 else "s",
                                         ", ".join(sorted(s["tests"])[:4])
                                         + (" and %d more" % (len(s["tests"]) - 4)
                                            if len(s["tests"]) > 4 else ""))
        if not s["problems"]:
            out.write("ok %d - %s (%s)\n" % (i, shape, who))
            continue
        if decl:
            out.write("ok %d - %s: outside the contract on purpose (%s; %s)\n"
                      % (i, shape, "; ".join(sorted(s["declared"]))[:200], who))
            continue
        todo = ""
        if s["tolerated"]:
            todo = " # TODO known defect, tolerated by the stand-in until it is fixed (%s)" \
                % "stripe_standin.py SEARCH_TOLERATED"
        else:
            failed += 1
        out.write("not ok %d - %s: OUTSIDE Stripe's contract (%s)%s\n" % (i, shape, who, todo))
        for p, n in sorted(s["problems"].items()):
            out.write("#   %s  (x%d)\n" % (p, n))
        for e in s["examples"]:
            out.write("#   e.g. %s\n" % e[:600])
    i += 1
    if recs:
        out.write("ok %d - %d of %d request shapes inside Stripe's published contract\n"
                  % (i, len(shapes) - failed, len(shapes)) if failed == 0 else
                  "not ok %d - %d request shape(s) outside Stripe's published contract\n"
                  % (i, failed))
    else:
        failed += 1
        out.write("not ok %d - no requests recorded in %s (is the stand-in recording?)\n"
                  % (i, directory))
    return failed


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: contract_audit.py RECORDS_DIR\n")
        return 2
    return 1 if audit(argv[1]) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
