#!/usr/bin/env python3
"""test_contract_checker.py - proves the contract audit (contract_audit.py) catches requests
outside Stripe's published contract, on a private recording directory: a stand-in records a
charges search on billing_details.email (a field Stripe's search does not have) and the audit
fails it; a recording of valid requests passes; each kind of violation is named."""

import io
import json
import os
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import smtest  # noqa: E402
import contract_audit  # noqa: E402

t = smtest.TAP()
Q = urllib.parse.quote
STRICT = contract_audit.Contract(tolerated={})     # no transition: the published contract only


def record(directory, name, recs):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name + ".1.jsonl"), "w") as f:
        for r in recs:
            base = {"test": name, "method": "GET", "query": "", "headers": {},
                    "auth": "Bearer rk_test", "status": 200, "fault": None, "error": None,
                    "declared": None}
            base.update(r)
            f.write(json.dumps(base) + "\n")


def run_audit(directory, contract=STRICT):
    out = io.StringIO()
    failed = contract_audit.audit(directory, contract, out=out)
    return failed, out.getvalue()


def t_live_billing_email():
    """A real stand-in records the request; the audit of that recording fails and names it."""
    d = smtest.tempdir("sm-audit-")
    s = smtest.Standin(args=["--audit-dir", d])
    try:
        s.get("/v1/customers/search?query=" + Q("email:'carol.case@example.com'"))
        s.get("/v1/charges/search?query=" + Q("billing_details.email:'guest@example.com' AND "
                                               "created>=1700000000") + "&limit=100")
    finally:
        s.stop()
    failed, out = run_audit(d)
    t.diag(out.replace("\n", "\n# "))
    return (failed == 1 and "Field `billing_details.email` is an unsupported search field for "
            "resource `charges`" in out and "not ok" in out
            and "billing_details.email%3A" in out       # the request itself is listed
            and "ok 2 - GET /v1/customers/search query email: [AND]" in out)


t.run("a charges search on billing_details.email, recorded by a stand-in, fails the audit "
      "and is listed", t_live_billing_email)


def t_transition_is_todo():
    """With the stand-in's named transition the same request is a known defect (TODO), not a
    pass: it still shows as not ok."""
    d = smtest.tempdir("sm-audit-")
    record(d, "guest", [{"path": "/v1/charges/search",
                         "query": "query=" + Q("billing_details.email:'g@x.com'")}])
    c = contract_audit.Contract(tolerated={"charges": [("billing_details.email", "string")]})
    failed, out = run_audit(d, c)
    t.diag(out.replace("\n", "\n# "))
    return failed == 0 and "not ok 1 - " in out and "# TODO known defect" in out


t.run("a transition the stand-in names is listed as a known defect (TODO)", t_transition_is_todo)


def t_valid_passes():
    d = smtest.tempdir("sm-audit-")
    record(d, "good", [
        {"path": "/v1/customers", "query": "email=a%40b.c&limit=10&expand[]=data.subscriptions",
         "headers": {"Stripe-Version": "2026-10-28.endive"}},
        {"path": "/v1/customers/search",
         "query": "query=" + Q("email~'carol' OR email:'carol@x.com'") + "&limit=10"},
        {"path": "/v1/charges", "query": "customer=cus_1&created%5Bgte%5D=1700000000&limit=100"},
        {"path": "/v1/products", "query": "ids%5B%5D=prod_1&ids%5B%5D=prod_2"},
        {"path": "/v1/customers/cus_123", "query": "expand%5B%5D=subscriptions"},
    ])
    failed, out = run_audit(d)
    t.diag(out.replace("\n", "\n# "))
    return failed == 0 and "not ok" not in out and "ok 6 - 5 of 5 request shapes" in out


t.run("requests inside the contract pass", t_valid_passes)


BAD = [
    ({"path": "/v1/customers", "query": "emial=a%40b.c"}, "Received unknown parameter: emial"),
    ({"path": "/v1/customers", "query": "limit=101"}, "Invalid limit"),
    ({"path": "/v1/customers", "query": "limit=ten"}, "Invalid integer"),
    ({"path": "/v1/subscriptions", "query": "status=alive"}, "Invalid status"),
    ({"path": "/v1/charges", "query": "created%5Bsince%5D=1"},
     "Received unknown parameter: created[since]"),
    ({"path": "/v1/subscriptions", "query": "expand%5B%5D=data.items.data.price.product"},
     "You cannot expand more than 4 levels"),
    ({"path": "/v1/customers/search", "query": "query=" + Q(
        " AND ".join("email:'a%d@x.com'" % i for i in range(11)))}, "at most 10 clauses"),
    ({"path": "/v1/customers/search", "query": "query=" + Q("email:'a' AND name:'b' OR phone:'1'")},
     "You can't combine AND and OR"),
    ({"path": "/v1/customers/search", "query": "query=" + Q("(email:'a' OR name:'b')")},
     "Parentheses"),
    ({"path": "/v1/customers/search", "query": "query=" + Q("email:'it\\'s")}, "not closed"),
    ({"path": "/v1/customers/search", "query": "query=" + Q("email:bare@x.com")}, "must be quoted"),
    ({"path": "/v1/customers/search", "query": "query=" + Q("email~'ab'")}, "at least 3"),
    ({"path": "/v1/customers/search", "query": "query=" + Q("created~'170'")},
     "The operator `~` is not supported on `created`"),
    ({"path": "/v1/charges/search", "query": "query=" + Q("receipt_email:'a@b.c'")},
     "Field `receipt_email` is an unsupported search field for resource `charges`"),
    ({"path": "/v1/customers/search", "query": ""}, "Missing required param: query."),
    ({"path": "/v1/checkout/sessions_typo", "query": ""}, "is not an operation of Stripe's spec"),
    ({"method": "POST", "path": "/v1/customers", "query": ""},
     "POST /v1/customers is not an operation"),
    ({"path": "/v1/customers", "headers": {"Stripe-Version": "latest"}},
     "Invalid Stripe API version: latest"),
    ({"path": "/v1/customers", "auth": None}, "no Authorization header"),
    ({"path": "/v1/customers", "status": 400, "error": "Something the stand-in refused"},
     "the stand-in refused it: Something the stand-in refused"),
]


def t_each_violation():
    bad = []
    for rec, want in BAD:
        d = smtest.tempdir("sm-audit-")
        record(d, "bad", [rec])
        failed, out = run_audit(d)
        if failed != 1 or want not in out:
            bad.append((rec, want, out))
    for rec, want, out in bad:
        t.diag("not caught: %s (wanted %r)\n# %s" % (rec, want, out.replace("\n", "\n# ")))
    return not bad


t.run("each kind of request outside the contract fails the audit, named (%d kinds)" % len(BAD),
      t_each_violation)


def t_declared():
    """A test that sends a bad request on purpose says so; the audit reports it as declared."""
    d = smtest.tempdir("sm-audit-")
    record(d, "selftest", [{"path": "/v1/customers", "query": "bogus=1",
                            "declared": "testing the stand-in's 400"}])
    failed, out = run_audit(d)
    t.diag(out.replace("\n", "\n# "))
    return failed == 0 and "outside the contract on purpose (testing the stand-in's 400" in out


t.run("a request declared outside the contract (X-Standin-Outside-Contract) is reported, "
      "not failed", t_declared)


def t_empty():
    d = smtest.tempdir("sm-audit-")
    failed, out = run_audit(d)
    return failed == 1 and "no requests recorded" in out


t.run("an empty recording fails (the audit never passes on nothing)", t_empty)

sys.exit(t.done())
