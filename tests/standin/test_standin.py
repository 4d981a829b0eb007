#!/usr/bin/env python3
"""test_standin.py - TAP tests of the Stripe stand-in (tests/standin/stripe_standin.py): Stripe
behaviour (lists, pagination, filters, errors, keys), every fault kind, counters, admin API,
command line and signals. Starts the stand-in on a free loopback port."""

import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir") or
                                os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                                "tests", "lib"))
import smtest  # noqa: E402

t = smtest.TAP()
try:
    S = smtest.Standin()
except smtest.Unavailable as e:
    t.skip_all(str(e))

K = "sk_test_standin"
HOSTILE = "J\u00fcrgen \u2603\r\nX-Stripe-Lookup: forged\u0000end\t\"q\"\\ \u2028"


def get(path, key=K, headers=None, timeout=10.0):
    return S.get(path, key=key, headers=headers, timeout=timeout)


def raw_get(path, key=K, timeout=5.0, headers=None):
    """(status, headers, body bytes); exceptions propagate."""
    h = dict(headers or {})
    if key:
        h["Authorization"] = "Bearer " + key
    return smtest.http_call(S.url, "GET", path, headers=h, timeout=timeout)


def bad(why):
    """Headers for a request sent outside Stripe's contract on purpose (to test the stand-in's
    refusal): the contract audit (contract_audit.py) reports it as declared, not as a defect."""
    return {"X-Standin-Outside-Contract": why}


def err(body):
    return body.get("error", {}) if isinstance(body, dict) else {}


# ------------------------------------------------------------------ basics, auth, Request-Id
def t_health():
    st, h, b = smtest.http_call(S.url, "GET", "/_standin/health")
    return st == 200 and json.loads(b) == {"ok": True} and h["request-id"].startswith("req_")


t.run("health answers 200 {ok:true} with a Request-Id", t_health)


def t_noauth():
    S.reset()
    st, h, b = get("/v1/customers?email=a%40b.c", key=None, headers=bad("no key: Stripe's 401"))
    t.diag("no key: %d %s" % (st, b))
    return (st == 401 and err(b)["type"] == "invalid_request_error"
            and "did not provide an API key" in err(b)["message"]
            and S.count("customers") == 1)


t.run("no Authorization: 401 Stripe error, still counted", t_noauth)


def t_badkeys():
    S.state({"keys": {"sk_test_revoked": {"revoked": True}}})
    r = {}
    for k in ("pk_test_abc", "sk_test_revoked", "nonsense", "sk_test_fine", "rk_live_fine1"):
        st, _, b = get("/v1/customers", key=k)
        r[k] = (st, err(b).get("message", ""))
    t.diag(repr(r))
    return (r["pk_test_abc"][0] == 401 and "publishable" in r["pk_test_abc"][1]
            and r["sk_test_revoked"][0] == 401 and r["sk_test_revoked"][1].startswith("Expired")
            and r["nonsense"][0] == 401 and "Invalid API Key" in r["nonsense"][1]
            and r["sk_test_fine"][0] == 200 and r["rk_live_fine1"][0] == 200)


t.run("pk_ key, revoked key, malformed key: 401; well-formed sk_/rk_ keys accepted", t_badkeys)


def t_basic_auth():
    import base64
    st, _, b = raw_get("/v1/customers", key=None,
                       headers={"Authorization": "Basic " + base64.b64encode(b"sk_test_b:").decode()})
    return st == 200


t.run("Basic auth with the key as user name is accepted (curl -u key:)", t_basic_auth)


def t_reqid():
    ids = set()
    for path, key in (("/v1/customers", K), ("/v1/customers", None), ("/v1/nope", K),
                      ("/_standin/requests", None)):
        _, h, _ = raw_get(path, key=key, headers=bad("Request-Id on 401 and 404 answers"))
        ids.add(h.get("request-id"))
    return all(i and re.match(r"^req_[A-Za-z0-9]{14}$", i) for i in ids) and len(ids) == 4


t.run("every response (ok, 401, 404, admin) has a distinct Request-Id: req_...", t_reqid)


def t_version():
    st, h, _ = raw_get("/v1/customers", headers={"Stripe-Version": "2025-03-31.basil"})
    st2, _, b2 = get("/v1/customers", headers=dict(bad("a malformed Stripe-Version"),
                                             **{"Stripe-Version": "garbage"}))
    return st == 200 and h.get("stripe-version") == "2025-03-31.basil" and st2 == 400 \
        and "version" in err(b2)["message"]


t.run("Stripe-Version echoed; a malformed version is a 400", t_version)

# ------------------------------------------------------------------ customers, email, pagination
S.state({"customers": [
    {"email": "a@b.c", "name": "lower"},
    {"email": "A@b.c", "name": "upper"},
    {"email": "p@x.y", "id": "cus_p1", "created": 1000},
    {"email": "p@x.y", "id": "cus_p2", "created": 2000},
    {"email": "p@x.y", "id": "cus_p3", "created": 3000},
    {"email": "p@x.y", "id": "cus_p4a", "created": 4000},
    {"email": "p@x.y", "id": "cus_p4b", "created": 4000},
    {"email": "gone@x.y", "id": "cus_gone", "deleted": True},
]})


def t_case():
    st1, _, b1 = get("/v1/customers?email=a%40b.c")
    st2, _, b2 = get("/v1/customers?email=A%40b.c")
    st3, _, b3 = get("/v1/customers?email=a%40B.C")
    return (st1 == st2 == st3 == 200 and [c["name"] for c in b1["data"]] == ["lower"]
            and [c["name"] for c in b2["data"]] == ["upper"] and b3["data"] == [])


t.run("email filter is exact and case-sensitive", t_case)


def t_list_shape():
    st, _, b = get("/v1/customers?email=a%40b.c")
    c = b["data"][0]
    return (b["object"] == "list" and b["has_more"] is False and b["url"] == "/v1/customers"
            and re.match(r"^cus_[A-Za-z0-9]{14}$", c["id"]) and isinstance(c["created"], int)
            and c["object"] == "customer" and "invoice_settings" in c and c["delinquent"] is False)


t.run("list object shape; generated cus_ id and created; template fields present", t_list_shape)


def t_pages():
    seen = []
    cursor = None
    pages = 0
    while True:
        q = "/v1/customers?email=p%40x.y&limit=2" + ("&starting_after=" + cursor if cursor else "")
        st, _, b = get(q)
        if st != 200:
            return False
        pages += 1
        seen += [c["id"] for c in b["data"]]
        if not b["has_more"]:
            break
        cursor = b["data"][-1]["id"]
        if pages > 5:
            return False
    t.diag("pages=%d order=%s" % (pages, seen))
    return pages == 3 and seen == ["cus_p4b", "cus_p4a", "cus_p3", "cus_p2", "cus_p1"]


t.run("newest first (created, then id) and starting_after pagination with has_more", t_pages)


def t_ending_before():
    st, _, b = get("/v1/customers?email=p%40x.y&limit=2&ending_before=cus_p1")
    return st == 200 and [c["id"] for c in b["data"]] == ["cus_p3", "cus_p2"] and b["has_more"]


t.run("ending_before returns the page just before the cursor", t_ending_before)


def t_limits():
    out = {}
    for v in ("0", "101", "abc", "-1", "1", "100"):
        st, _, b = get("/v1/customers?limit=" + v, headers=bad("limit outside 1..100"))
        out[v] = (st, err(b).get("param"), err(b).get("type"))
    t.diag(repr(out))
    return (all(out[v] == (400, "limit", "invalid_request_error") for v in ("0", "101", "abc", "-1"))
            and out["1"][0] == 200 and out["100"][0] == 200)


t.run("limit outside 1..100 or not an integer: 400 invalid_request_error param=limit", t_limits)


def t_default_limit():
    S.add({"customers": [{"email": "many@x.y"} for _ in range(12)]})
    st, _, b = get("/v1/customers?email=many%40x.y")
    return st == 200 and len(b["data"]) == 10 and b["has_more"] is True


t.run("default limit is 10", t_default_limit)


def t_bad_cursor_and_param():
    st1, _, b1 = get("/v1/customers?starting_after=cus_nope", headers=bad("an unknown cursor"))
    st2, _, b2 = get("/v1/customers?emial=a%40b.c", headers=bad("an unknown parameter"))
    return (st1 == 400 and err(b1).get("code") == "resource_missing"
            and err(b1).get("param") == "starting_after"
            and st2 == 400 and err(b2).get("code") == "parameter_unknown"
            and err(b2).get("param") == "emial" and "doc_url" in err(b2))


t.run("unknown starting_after id and unknown parameter: 400 with code/param/doc_url",
      t_bad_cursor_and_param)


def t_plus_is_space():
    S.add({"customers": [{"email": "x+tag@b.c", "id": "cus_plus"}]})
    st1, _, b1 = get("/v1/customers?email=x+tag%40b.c")
    st2, _, b2 = get("/v1/customers?email=x%2Btag%40b.c")
    return b1["data"] == [] and [c["id"] for c in b2["data"]] == ["cus_plus"]


t.run("'+' in a query string is a space (form encoding); %2B matches '+'", t_plus_is_space)


def t_search():
    st, _, b = get("/v1/customers/search?query=" + "email%3A%27A%40B.C%27")
    st2, _, b2 = get("/v1/customers/search", headers=bad("search without a query"))
    st3, _, b3 = get("/v1/customers/search?query=bogus", headers=bad("an unparsable query"))
    names = sorted(c["name"] for c in b["data"])
    t.diag("search: %d %s" % (st, names))
    return (st == 200 and b["object"] == "search_result" and names == ["lower", "upper"]
            and "next_page" in b and st2 == 400 and err(b2)["code"] == "parameter_missing"
            and st3 == 400)


t.run("customers/search query=email:'x' (case-insensitive like Stripe's search); errors",
      t_search)


def search(resource, query, why=None):
    """(status, body) of a search; `why`: the query is outside Stripe's contract on purpose."""
    st, _, b = get("/v1/%s/search?query=%s" % (resource, urllib.parse.quote(query)),
                   headers=bad(why) if why else None)
    return st, b


def t_search_language():
    """The rules of docs.stripe.com/search (tests/data/stripe/search-query-language.json)."""
    S.add({"customers": [{"email": "Sea.Rules@Example.COM", "name": "Ann Lee", "id": "cus_sq1",
                          "metadata": {"tier": "gold"}},
                         {"email": "other@example.com", "name": "Bob", "id": "cus_sq2"}]})

    def ids(q):
        st, b = search("customers", q)
        return sorted(c["id"] for c in b["data"] if c["id"].startswith("cus_sq")) \
            if st == 200 else st
    got = {
        "exact, any case": ids("email:'sea.rules@example.com'"),
        "substring ~": ids('email~"rules"'),
        "OR (any case)": ids("name:'ann' or name:'bob'"),
        "space is AND": ids("name:'ann' email:'example.com'"),
        "negation": ids("-name:'bob' AND email~'example'"),
        "metadata": ids('metadata["tier"]:"GOLD"'),
        "metadata presence": ids("-metadata['tier']:null AND email~'example'"),
        "numeric >": ids("created>1 AND email~'rules'"),
        "escaped quote": ids("name:'ann \\'x' OR name:'ann'"),
    }
    want = {"exact, any case": ["cus_sq1"], "substring ~": ["cus_sq1"],
            "OR (any case)": ["cus_sq1", "cus_sq2"], "space is AND": ["cus_sq1"],
            "negation": ["cus_sq1"], "metadata": ["cus_sq1"], "metadata presence": ["cus_sq1"],
            "numeric >": ["cus_sq1"], "escaped quote": ["cus_sq1"]}
    t.diag(repr(got))
    return got == want


t.run("search language: exact match ignores case, ~ substring, OR/AND/space, -, metadata, "
      "null, numeric, escapes", t_search_language)


def t_search_refusals():
    """Stripe's 400 (invalid_request_error, param query) for each query outside the rules."""
    cases = [
        ("charges", "billing_details.email:'guest@example.com' AND created>=1700000000",
         "Field `billing_details.email` is an unsupported search field for resource `charges`. "
         "See http://stripe.com/docs/search#query-fields-for-charges for a list of supported "
         "fields."),
        ("charges", "receipt_email:'a@b.c'", "Field `receipt_email` is an unsupported search "
         "field for resource `charges`"),
        ("customers", "address:'x'", "Field `address` is an unsupported search field for "
         "resource `customers`"),
        ("customers", " AND ".join("name:'n%d'" % i for i in range(11)), "at most 10 clauses"),
        ("customers", "name:'a' AND email:'b' OR phone:'1'", "You can't combine AND and OR"),
        ("customers", "(name:'a' OR name:'b')", "Parentheses"),
        ("customers", "name:'unterminated", "not closed"),
        ("customers", "name:ann", "must be quoted"),
        ("customers", "email~'ab'", "at least 3"),
        ("customers", "email>'a'", "The operator `>` is not supported on `email`"),
        ("charges", "currency~'usd'", "The operator `~` is not supported on `currency`"),
        ("charges", "amount>'ten'", "not a number"),
    ]
    bad_ones = []
    for res, q, want in cases:
        st, b = search(res, q, why="a query Stripe refuses")
        e = err(b)
        if not (st == 400 and e.get("type") == "invalid_request_error"
                and e.get("param") == "query" and want in e.get("message", "")):
            bad_ones.append((res, q, st, e))
    ok10 = search("customers", " AND ".join("name:'n%d'" % i for i in range(10)))[0]
    for x in bad_ones:
        t.diag("not refused as Stripe does: %r" % (x,))
    return not bad_ones and ok10 == 200


t.run("search refusals: unsupported field (billing_details.email on charges), 11 clauses (10 pass), AND+OR, parentheses, quoting, "
      "~ under 3, operator vs type: 400 param=query", t_search_refusals)


def t_charges_search_fields():
    """Charges search answers the fields Stripe lists (and only those, see above)."""
    S.add({"charges": [{"id": "ch_sq1", "amount": 5000, "currency": "eur", "status": "failed",
                        "billing_details": {"address": {"postal_code": "75001"}},
                        "metadata": {"order": "A-1"}}]})
    want = {"payment_method_details.card.last4:4242 AND currency:'EUR'": True,
            "billing_details.address.postal_code:'75001'": True,
            "amount>=5000 AND status:'failed'": True,
            "metadata['order']:'a-1'": True,
            "amount<5000": False}
    got = {}
    for q in want:
        st, b = search("charges", q)
        got[q] = st == 200 and "ch_sq1" in [c["id"] for c in b["data"]]
    t.diag(repr(got))
    return got == want


t.run("charges search: card last4, currency, postal code, amount, status, metadata",
      t_charges_search_fields)


def t_embedded_list():
    """customer.subscriptions included by expand: at most 10, newest first, has_more, url."""
    S.add({"customers": [{"id": "cus_many", "email": "many.subs@x.y",
                          "subscriptions": [{"id": "sub_m%02d" % i} for i in range(12)]
                          + [{"id": "sub_mcanc", "status": "canceled"}]}]})
    st, _, b = get("/v1/customers/cus_many?expand[]=subscriptions")
    st2, _, b2 = get("/v1/customers?email=many.subs%40x.y&expand[]=data.subscriptions")
    sub = b.get("subscriptions") or {}
    ids = [x["id"] for x in sub.get("data", [])]
    t.diag("embedded: %s has_more=%s" % (ids, sub.get("has_more")))
    return (st == 200 and ids == ["sub_m%02d" % i for i in range(11, 1, -1)]
            and sub.get("has_more") is True and sub.get("object") == "list"
            and sub.get("url") == "/v1/customers/cus_many/subscriptions"
            and st2 == 200 and len(b2["data"][0]["subscriptions"]["data"]) == 10)


t.run("an included list (customer.subscriptions) carries 10 items, newest first, has_more",
      t_embedded_list)


def t_retrieve():
    st1, _, b1 = get("/v1/customers/cus_p1")
    st2, _, b2 = get("/v1/customers/cus_nope")
    st3, _, b3 = get("/v1/customers/cus_gone")
    st4, _, b4 = get("/v1/customers?email=gone%40x.y")
    return (st1 == 200 and b1["id"] == "cus_p1" and st2 == 404
            and err(b2)["code"] == "resource_missing" and "cus_nope" in err(b2)["message"]
            and st3 == 200 and b3.get("deleted") is True and b4["data"] == [])


t.run("retrieve customer; 404 resource_missing; deleted customer stub, not listed", t_retrieve)


def t_unknown_and_write():
    st1, _, b1 = get("/v1/coupons", headers=bad("an endpoint the stand-in does not serve"))
    st2, _, b2 = smtest.http_call(S.url, "POST", "/v1/customers", body="email=x%40y.z",
                                  headers=dict(bad("a write: the stand-in is read-only"),
                                               Authorization="Bearer " + K))
    log = S.requests()["log"]
    return (st1 == 404 and "Unrecognized request URL" in err(b1)["message"] and st2 == 405
            and log[-1]["method"] == "POST" and log[-1]["endpoint"] == "customers")


t.run("unknown URL: 404 Unrecognized request URL; writes refused (read-only), logged",
      t_unknown_and_write)

# ------------------------------------------------------------------ hostile strings
def t_hostile():
    S.add({"customers": [{"id": "cus_hostile", "email": "h@x.y", "name": HOSTILE,
                          "metadata": {"k\r\n": HOSTILE}}]})
    st, h, raw = raw_get("/v1/customers/cus_hostile")
    b = json.loads(raw.decode("utf-8"))
    return (st == 200 and b["name"] == HOSTILE and b["metadata"] == {"k\r\n": HOSTILE}
            and b"\x00" not in raw and b"\r" not in raw and b"\n" not in raw
            and b"\\u0000" in raw and b"\\r\\n" in raw and "\u2603".encode() in raw)


t.run("CR/LF/NUL/non-ASCII strings round-trip JSON-escaped (raw UTF-8, no raw CR/LF/NUL)",
      t_hostile)

# ------------------------------------------------------------------ products, prices, subs
IDS = S.state({
    "products": [{"id": "prod_a", "name": "Alpha"}, {"id": "prod_b", "name": "Beta"},
                 {"id": "prod_c", "name": "Gamma", "active": False}],
    "prices": [{"id": "price_a", "product": "prod_a", "unit_amount": 4900}],
    "customers": [{"id": "cus_s", "email": "s@x.y", "subscriptions": [
        {"id": "sub_live", "items": [{"price": "price_a", "quantity": 2}]},
        {"id": "sub_old", "status": "canceled",
         "items": [{"price": {"product": "prod_b", "unit_amount": 1000, "currency": "jpy"}}]},
        {"id": "sub_legacy", "status": "past_due", "current_period_end": 1900000000,
         "current_period_start": 1800000000,
         "items": {"object": "list", "data": [{"price": {"product": "prod_a"}}]}},
    ], "charges": [
        {"id": "ch_ok", "amount": 4900, "created": 1790000000},
        {"id": "ch_fail", "amount": 4900, "status": "failed", "created": 1790000100},
        {"id": "ch_ref", "amount": 3000, "refunded": True, "created": 1790000200},
        {"id": "ch_part", "amount": 3000, "amount_refunded": 1000, "created": 1790000300},
        {"id": "ch_disp", "amount": 100, "disputed": True, "status": "pending",
         "created": 1700000000},
    ]}],
})["ids"]


def t_products_ids():
    st, _, b = get("/v1/products?ids[]=prod_a&ids[]=prod_c")
    st2, _, b2 = get("/v1/products?ids%5B0%5D=prod_b")
    st3, _, b3 = get("/v1/products?ids[]=prod_a&starting_after=prod_b",
                     headers=bad("ids with starting_after"))
    st4, _, b4 = get("/v1/products/prod_b")
    return (st == 200 and sorted(p["id"] for p in b["data"]) == ["prod_a", "prod_c"]
            and [p["id"] for p in b2["data"]] == ["prod_b"] and st3 == 400
            and st4 == 200 and b4["name"] == "Beta")


t.run("products?ids[]=a&ids[]=b (and ids[0]=) returns exactly those; retrieve by id",
      t_products_ids)


def t_sub_items():
    st, _, b = get("/v1/subscriptions?customer=cus_s")
    subs = {s["id"]: s for s in b["data"]}
    live = subs.get("sub_live", {})
    it = live.get("items", {}).get("data", [{}])[0]
    return (st == 200 and set(subs) == {"sub_live", "sub_legacy"}
            and live["items"]["object"] == "list" and it["object"] == "subscription_item"
            and it["id"].startswith("si_") and it["quantity"] == 2
            and it["price"]["id"] == "price_a" and it["price"]["unit_amount"] == 4900
            and it["price"]["product"] == "prod_a" and it["plan"]["amount"] == 4900
            and isinstance(it.get("current_period_end"), int)
            and it["current_period_end"] > time.time() and "current_period_end" not in live)


t.run("subscription items are a list object; current_period_* on items; canceled hidden",
      t_sub_items)


def t_sub_legacy():
    st, _, b = get("/v1/subscriptions?status=past_due")
    s = b["data"][0]
    it = s["items"]["data"][0]
    return (len(b["data"]) == 1 and s["current_period_end"] == 1900000000
            and "current_period_end" not in it)


t.run("current_period_* given on the subscription stay there (pre-basil shape)", t_sub_legacy)


def t_sub_status():
    st1, _, b1 = get("/v1/subscriptions?customer=cus_s&status=all")
    st2, _, b2 = get("/v1/subscriptions?status=canceled")
    st3, _, b3 = get("/v1/subscriptions?status=bogus", headers=bad("an unknown status"))
    old = [s for s in b1["data"] if s["id"] == "sub_old"]
    return (len(b1["data"]) == 3 and [s["id"] for s in b2["data"]] == ["sub_old"]
            and old[0]["currency"] == "jpy" and isinstance(old[0]["canceled_at"], int)
            and st3 == 400 and err(b3)["param"] == "status")


t.run("status=all / canceled / bogus (400)", t_sub_status)


def t_expand():
    st1, _, b1 = get("/v1/subscriptions?expand[]=data.items.data.price.product",
                     headers=bad("an expansion 5 levels deep"))
    st2, _, b2 = get("/v1/subscriptions/sub_live?expand[]=items.data.price.product"
                     "&expand[]=customer", headers=bad("retrieve a subscription: a Stripe "
                                                       "endpoint the trimmed spec leaves out "
                                                       "(the client never calls it)"))
    it = b2["items"]["data"][0] if st2 == 200 else {}
    return (st1 == 400 and "4 levels" in err(b1)["message"] and st2 == 200
            and it["price"]["product"]["name"] == "Alpha" and b2["customer"]["id"] == "cus_s")


t.run("expand: more than 4 levels is Stripe's 400; shallower ones expand ids", t_expand)


def t_charges():
    st, _, b = get("/v1/charges?customer=cus_s&limit=100")
    c = {x["id"]: x for x in b["data"]}
    f, r, p, d, ok = c["ch_fail"], c["ch_ref"], c["ch_part"], c["ch_disp"], c["ch_ok"]
    return (st == 200 and [x["id"] for x in b["data"]][:4] == ["ch_part", "ch_ref", "ch_fail", "ch_ok"]
            and ok["status"] == "succeeded" and ok["paid"] is True and ok["refunded"] is False
            and f["status"] == "failed" and f["paid"] is False
            and f["failure_code"] == "card_declined" and f["outcome"]["type"] == "issuer_declined"
            and r["refunded"] is True and r["amount_refunded"] == 3000
            and p["refunded"] is False and p["amount_refunded"] == 1000
            and d["disputed"] is True and d["status"] == "pending")


t.run("charges: succeeded/failed (failure_code, outcome)/refunded full only/partial/disputed",
      t_charges)


def t_charges_created():
    st, _, b = get("/v1/charges?customer=cus_s&created[gte]=1790000100&limit=10")
    st2, _, b2 = get("/v1/charges?created%5Blt%5D=1790000000")
    st3, _, b3 = get("/v1/charges?created[gte]=soon", headers=bad("created[gte] not an integer"))
    return (sorted(x["id"] for x in b["data"]) == ["ch_fail", "ch_part", "ch_ref"]
            and [x["id"] for x in b2["data"]] == ["ch_disp"] and st3 == 400)


t.run("charges created[gte]/[lt] filters; bad integer 400", t_charges_created)


def t_account():
    st, _, b = get("/v1/account")
    return st == 200 and b["object"] == "account" and b["id"].startswith("acct_")


t.run("/v1/account", t_account)

# ------------------------------------------------------------------ checkout sessions
def t_checkout_sessions():
    S.add({"checkout_sessions": [
        {"id": "cs_test_g1", "customer_details": {"email": "Guest@Shop.example"}, "created": 1000,
         "amount_total": 1500},
        {"id": "cs_test_g2", "customer_details": {"email": "guest@shop.example"}, "created": 2000,
         "amount_total": 2500, "currency": "eur", "mode": "subscription"},
        {"id": "cs_test_g3", "customer_details": {"email": "guest@shop.example"}, "created": 3000,
         "status": "expired"},
        {"id": "cs_test_g4", "customer_details": {"email": "other@shop.example"}, "created": 4000},
    ], "keys": {"rk_test_nocheckout": {"missing": ["rak_checkout_session_read"]}}})
    q = "/v1/checkout/sessions?customer_details%5Bemail%5D=guest%40shop.example"
    st1, _, b1 = get(q + "&limit=1")
    st2, _, b2 = get(q + "&limit=1&starting_after=cs_test_g3")
    st3, _, b3 = get(q.replace("guest%40", "GUEST%40"))
    st4, _, b4 = get("/v1/checkout/sessions?customer_details%5Bname%5D=x",
                     headers=bad("an unknown customer_details key"))
    st5, _, b5 = get("/v1/checkout/sessions?customer_details%5Bemail%5D=x&status=bogus",
                     headers=bad("an unknown status"))
    st6, _, b6 = get(q, key="rk_test_nocheckout")
    s1, s2 = b1["data"][0], b2["data"][0]
    t.diag("pages: %s %s; 400s: %s / %s" % (s1["id"], s2["id"], err(b4).get("message"),
                                            err(b5).get("message")))
    return (st1 == st2 == st3 == 200 and b1["url"] == "/v1/checkout/sessions"
            and s1["id"] == "cs_test_g3" and b1["has_more"] is True
            and s1["status"] == "expired" and s1["payment_status"] == "unpaid"
            and s2["id"] == "cs_test_g2" and b2["has_more"] is False
            and s2["status"] == "complete" and s2["payment_status"] == "paid"
            and s2["amount_total"] == 2500 and s2["currency"] == "eur"
            and s2["mode"] == "subscription" and s2["customer"] is None
            and s2["object"] == "checkout.session" and b3["data"] == []
            and st4 == 400 and err(b4).get("param") == "customer_details[name]"
            and st5 == 400 and err(b5).get("param") == "status"
            and st6 == 403 and "rak_checkout_session_read" in err(b6).get("message", ""))


t.run("checkout/sessions: customer_details[email] exact and case-sensitive, newest first, "
      "limit and starting_after, unknown hash key and bad status 400, "
      "rak_checkout_session_read 403", t_checkout_sessions)

# ------------------------------------------------------------------ keys and permissions
PERM_RE = (r"^The provided key 'rk_test_\*\*\*\.\.\.%s' does not have the required permissions "
           r"for this endpoint on account '(acct_[A-Za-z0-9]+)'\. Having the '%s' permission "
           r"would allow this request to continue\.$")


def t_missing_perm():
    S.add({"keys": {"rk_test_nocharge": {"missing": ["rak_charge_read"]}},
           "account": {"id": "acct_standin1"}})
    st1, _, b1 = get("/v1/charges?customer=cus_s", key="rk_test_nocharge")
    st2, _, _ = get("/v1/customers?email=s%40x.y", key="rk_test_nocharge")
    msg = err(b1).get("message", "")
    t.diag("403 message: " + msg)
    m = re.match(PERM_RE % ("arge", "rak_charge_read"), msg)
    return st1 == 403 and m is not None and m.group(1) == "acct_standin1" and st2 == 200


t.run("restricted key without rak_charge_read: 403 with Stripe's exact message; other "
      "endpoints fine", t_missing_perm)


def t_connect():
    S.add({"connected_accounts": ["acct_child"]})
    st1, _, _ = get("/v1/customers", headers={"Stripe-Account": "acct_child"})
    st2, _, b2 = get("/v1/customers", headers={"Stripe-Account": "acct_other"})
    S.add({"connected_accounts": None})
    return st1 == 200 and st2 == 403 and "acct_other" in err(b2)["message"]


t.run("Stripe-Account: allowed connected account 200, other 403", t_connect)

# ------------------------------------------------------------------ connected accounts' data
# "connected": {"acct_...": {data set}}: a request with Stripe-Account reads that account's data
# (docs.stripe.com/connect/authentication), one without it the platform's. Added with POST so
# the platform data the later cases use (cus_s) stays.
def acct(a):
    return {"Stripe-Account": a}


CONN = S.add({
    "customers": [{"id": "cus_cplat", "email": "same@conn.example", "name": "Platform"}],
    "connected": {
        "acct_one": {"customers": [{"id": "cus_c1", "email": "same@conn.example", "name": "One",
                                    "metadata": {"tier": "gold"},
                                    "subscriptions": [{"id": "sub_c1", "items": [
                                        {"price": {"product": {"name": "One Pro"},
                                                   "unit_amount": 900}}]}],
                                    "charges": [{"id": "ch_c1", "amount": 900}]}],
                     "account": {"email": "owner@one.example"}},
        "acct_two": {"customers": [{"email": "same@conn.example", "name": "Two",
                                    "charges": [{"amount": 1200, "currency": "eur"}]}],
                     "checkout_sessions": [{"id": "cs_test_c2",
                                            "customer_details": {"email": "same@conn.example"}}]},
    }})


def t_connected_ids():
    c1, c2 = CONN["connected_ids"]["acct_one"], CONN["connected_ids"]["acct_two"]
    t.diag("ids %r; connected_ids %r" % (CONN["ids"]["customers"], CONN["connected_ids"]))
    return (CONN["ids"]["customers"] == ["cus_cplat"] and set(CONN["connected_ids"]) ==
            {"acct_one", "acct_two"} and set(c1) == set(CONN["ids"])
            and c1["customers"] == ["cus_c1"] and c1["subscriptions"] == ["sub_c1"]
            and c1["charges"] == ["ch_c1"] and len(c1["prices"]) == 1 and len(c1["products"]) == 1
            and len(c2["customers"]) == 1 and c2["customers"][0].startswith("cus_")
            and len(c2["charges"]) == 1 and c2["checkout_sessions"] == ["cs_test_c2"]
            and "connected_ids" not in S.add({}))


t.run("connected: the state answer's connected_ids lists each account's ids like ids (nested "
      "ones included); absent without connected", t_connected_ids)


def t_connected_reads():
    """The same email in two connected accounts and on the platform: each header reads its own."""
    got = {}
    for a in (None, "acct_one", "acct_two"):
        h = acct(a) if a else None
        _, _, cl = get("/v1/customers?email=same%40conn.example&expand[]=data.subscriptions",
                       headers=h)
        cus = cl["data"][0] if len(cl["data"]) == 1 else {}
        _, _, ch = get("/v1/charges?customer=%s" % cus.get("id"), headers=h)
        _, _, sb = get("/v1/subscriptions?customer=%s&expand[]=data.customer" % cus.get("id"),
                       headers=h)
        _, _, pr = get("/v1/prices?limit=100&expand[]=data.product", headers=h)
        _, _, cs = get("/v1/checkout/sessions?customer_details%5Bemail%5D=same%40conn.example",
                       headers=h)
        _, _, ac = get("/v1/account", headers=h)
        got[a] = (len(cl["data"]), cus.get("name"), len(cus.get("subscriptions", {})["data"]),
                  [(x["amount"], x["currency"]) for x in ch["data"]],
                  [(x["customer"]["name"], x["items"]["data"][0]["price"]["unit_amount"])
                   for x in sb["data"]],
                  "One Pro" in [x["product"]["name"] for x in pr["data"]],
                  [x["id"] for x in cs["data"]], ac["id"], ac["email"])
    t.diag(repr(got))
    return got == {
        None: (1, "Platform", 0, [], [], False, [], "acct_standin1", "site@stripe.com"),
        "acct_one": (1, "One", 1, [(900, "usd")], [("One", 900)], True, [], "acct_one",
                     "owner@one.example"),
        "acct_two": (1, "Two", 0, [(1200, "eur")], [], False, ["cs_test_c2"], "acct_two",
                     "site@stripe.com")}


t.run("connected: the same email in two accounts and the platform, each read through its "
      "Stripe-Account (list, expand, charges, subscriptions, checkout sessions, account)",
      t_connected_reads)


def t_connected_isolated():
    """Another data set's objects are not there: 404 on retrieve, 400 as a cursor; the
    platform's lists do not see the accounts' objects."""
    st1, _, b1 = get("/v1/customers/cus_c1", headers=acct("acct_one"))
    st2, _, b2 = get("/v1/customers/cus_c1", headers=acct("acct_two"))
    st3, _, b3 = get("/v1/customers/cus_c1")
    st4, _, b4 = get("/v1/charges?customer=cus_c1")
    st5, _, b5 = get("/v1/customers?starting_after=cus_c1", headers=dict(
        acct("acct_two"), **bad("a cursor from another account")))
    st6, _, b6 = get("/v1/customers/cus_s", headers=acct("acct_one"))
    st7, _, b7 = get("/v1/customers/cus_s")
    _, _, b8 = get("/v1/charges?limit=100")
    return (st1 == 200 and b1["name"] == "One" and st2 == 404
            and err(b2).get("code") == "resource_missing" and st3 == 404
            and st4 == 200 and b4["data"] == []
            and st5 == 400 and err(b5).get("param") == "starting_after"
            and st6 == 404 and st7 == 200 and b7["id"] == "cus_s"
            and not [c for c in b8["data"] if c["id"] == "ch_c1"])


t.run("connected: an account's objects are not the platform's nor another account's (404, "
      "cursor 400); platform data unaffected", t_connected_isolated)


def t_connected_search():
    got = {}
    for a in (None, "acct_one", "acct_two"):
        h = acct(a) if a else None
        _, _, b = get("/v1/customers/search?query=" + urllib.parse.quote(
            "email:'same@conn.example'"), headers=h)
        _, _, g = get("/v1/customers/search?query=" + urllib.parse.quote(
            "metadata['tier']:'gold' AND email~'conn.example'"), headers=h)
        _, _, c = get("/v1/charges/search?query=" + urllib.parse.quote("currency:'eur'"),
                      headers=h)
        got[a] = ([x["name"] for x in b["data"]], [x["name"] for x in g["data"]],
                  [x["amount"] for x in c["data"]])
    t.diag(repr(got))
    return got == {None: (["Platform"], [], []), "acct_one": (["One"], ["One"], []),
                   "acct_two": (["Two"], [], [1200])}


t.run("connected: customers and charges search per account", t_connected_search)


def t_connected_refused():
    """An account in neither connected nor connected_accounts: Stripe's 403; one listed in
    connected_accounts only reads the platform's data, as before."""
    st1, _, b1 = get("/v1/customers", headers=dict(acct("acct_three"),
                                                   **bad("an account the key cannot reach")))
    S.add({"connected_accounts": ["acct_listed"]})
    st2, _, b2 = get("/v1/customers?email=same%40conn.example", headers=acct("acct_listed"))
    st3, _, b3 = get("/v1/customers?email=same%40conn.example", headers=acct("acct_one"))
    st4, _, _ = get("/v1/customers", headers=dict(acct("acct_three"),
                                                  **bad("an account the key cannot reach")))
    S.add({"connected_accounts": None})
    return (st1 == 403 and err(b1).get("code") == "account_invalid"
            and "does not have access to account 'acct_three'" in err(b1)["message"]
            and st2 == 200 and [c["name"] for c in b2["data"]] == ["Platform"]
            and st3 == 200 and [c["name"] for c in b3["data"]] == ["One"] and st4 == 403)


t.run("connected: an unknown account is refused (403 account_invalid); connected_accounts "
      "alone still reads the platform's data", t_connected_refused)


def t_connected_events_log():
    """Events per account; POST adds to an account's data set; the log keeps the header."""
    ev = S.admin("POST", "/_standin/events", {"type": "customer.updated", "account": "acct_one",
                                              "object_id": "cus_c1", "update": {"name": "One+"}})
    st0, _, _ = smtest.http_call(S.url, "POST", "/_standin/events",
                                 {"type": "customer.updated", "account": "acct_two",
                                  "object_id": "cus_c1"})
    added = S.add({"connected": {"acct_two": {"customers": [{"id": "cus_c2b",
                                                             "email": "same@conn.example"}]}}})
    S.reset()
    _, _, e1 = get("/v1/events?type=customer.*", headers=acct("acct_one"))
    _, _, e2 = get("/v1/events?type=customer.*", headers=acct("acct_two"))
    _, _, e0 = get("/v1/events?type=customer.*")
    _, _, c1 = get("/v1/customers/cus_c1", headers=acct("acct_one"))
    _, _, c2 = get("/v1/customers?email=same%40conn.example", headers=acct("acct_two"))
    log = S.requests(endpoint="events")["log"]
    t.diag("events: one %s two %s platform %s" % ([e["id"] for e in e1["data"]], e2["data"],
                                                   [e["id"] for e in e0["data"]]))
    return (ev["event"]["account"] == "acct_one" and st0 == 400
            and [e["id"] for e in e1["data"]] == [ev["event"]["id"]]
            and e1["data"][0]["data"]["object"]["name"] == "One+" and e2["data"] == []
            and ev["event"]["id"] not in [e["id"] for e in e0["data"]]
            and c1["name"] == "One+" and added["connected_ids"]["acct_two"]["customers"] == [
                "cus_c2b"] and len(c2["data"]) == 2
            and [e["headers"].get("Stripe-Account") for e in log] == ["acct_one", "acct_two", None])


t.run("connected: events per account (POST /_standin/events \"account\"); POST state adds to "
      "an account; the request log keeps Stripe-Account", t_connected_events_log)


def t_connected_admin():
    """GET /_standin/state shows each data set; bad connected fields are 400; null removes an
    account's data set (POST) or all of them."""
    _, _, raw = smtest.http_call(S.url, "GET", "/_standin/state")
    dump = json.loads(raw)
    bads = []
    for body in ({"connected": []}, {"connected": {"nope": {}}},
                 {"connected": {"acct_x": {"keys": {}}}},
                 {"connected": {"acct_x": {"customers": {}}}},
                 {"connected": {"acct_x": {"account": {"id": "acct_y"}}}},
                 {"connected": {"acct_x": {"connected": {}}}}):
        st, _, b = smtest.http_call(S.url, "POST", "/_standin/state", body)
        bads.append(st)
    S.add({"connected": {"acct_two": None}})
    st1, _, _ = get("/v1/customers", headers=dict(acct("acct_two"),
                                                  **bad("an account whose data set was removed")))
    st2, _, _ = get("/v1/customers", headers=acct("acct_one"))
    S.add({"connected": None})
    st3, _, b3 = get("/v1/customers/cus_c1", headers=acct("acct_one"))
    _, _, raw2 = smtest.http_call(S.url, "GET", "/_standin/state")
    t.diag("400s %r; after removals %d %d %d" % (bads, st1, st2, st3))
    return (sorted(dump["connected"]) == ["acct_one", "acct_two"]
            and [c["id"] for c in dump["connected"]["acct_one"]["customers"]] == ["cus_c1"]
            and dump["connected"]["acct_one"]["account"]["id"] == "acct_one"
            and "keys" not in dump["connected"]["acct_one"]
            and bads == [400] * 6 and st1 == 403 and st2 == 200
            and st3 == 404 and "connected" not in json.loads(raw2))


t.run("connected: GET /_standin/state per account; bad shapes 400; null removes one "
      "account's data set (POST) or all of them", t_connected_admin)

# ------------------------------------------------------------------ faults
def t_fault_permission():
    S.faults({"customers": {"status": 403, "permission": "rak_customer_read"}})
    st, _, b = get("/v1/customers", key="rk_test_abcd1234")
    S.faults({})
    return st == 403 and re.match(PERM_RE % ("1234", "rak_customer_read"), err(b)["message"])


t.run("fault permission: 403 naming the permission, key masked", t_fault_permission)


def t_should_retry():
    res = []
    for rule in ({"status": 500, "should_retry": True}, {"status": 500, "should_retry": False},
                 {"status": 500}):
        S.faults({"charges": rule})
        st, h, b = raw_get("/v1/charges")
        res.append((st, h.get("stripe-should-retry"), json.loads(b)["error"]["type"]))
    S.faults({})
    t.diag(repr(res))
    return res == [(500, "true", "api_error"), (500, "false", "api_error"), (500, None, "api_error")]


t.run("status 500 with Stripe-Should-Retry true / false / absent", t_should_retry)


def t_statuses():
    res = {}
    for code in (400, 401, 404, 409, 429, 502, 503):
        S.faults({"*": {"status": code}})
        st, _, b = get("/v1/account")
        res[code] = (st, err(b).get("type"), err(b).get("code"))
    S.faults({})
    t.diag(repr(res))
    return (all(res[c][0] == c for c in res) and res[429][2] == "rate_limit"
            and res[409][2] == "lock_timeout" and res[503][1] == "api_error"
            and res[401][1] == "invalid_request_error")


t.run("status faults 400/401/404/409/429/502/503 on '*' with Stripe-shaped bodies", t_statuses)


def t_override_error():
    S.faults({"customers": {"status": 429, "type": "rate_limit_error", "code": "x",
                            "message": "slow down"}})
    st, _, b = get("/v1/customers")
    S.faults({})
    return st == 429 and err(b)["type"] == "rate_limit_error" and err(b)["message"] == "slow down"


t.run("a fault can set the error type/code/message", t_override_error)


def t_times():
    S.faults({"customers": {"status": 503, "times": 2}})
    sts = [get("/v1/customers")[0] for _ in range(4)]
    S.faults({})
    return sts == [503, 503, 200, 200]


t.run("times: applies to the next n requests only", t_times)


def t_after():
    S.faults({"customers": {"status": 500, "after": 1, "times": 1}})
    sts = [get("/v1/customers")[0] for _ in range(3)]
    S.faults({"customers": {"status": 500, "after": 2}})
    sts2 = [get("/v1/customers")[0] for _ in range(4)]
    S.faults({})
    return sts == [200, 500, 200] and sts2 == [200, 200, 500, 500]


t.run("after: lets n requests through first", t_after)


def t_rule_list():
    S.faults({"charges": [{"status": 500, "times": 1}, {"status": 429, "after": 1, "times": 1}]})
    sts = [get("/v1/charges")[0] for _ in range(3)]
    S.faults({})
    return sts == [500, 429, 200]


t.run("a list of rules: first applicable wins", t_rule_list)


def t_latency():
    # A lower bound on the delayed answer (load only adds to it); the other endpoint is shown
    # undelayed by the stand-in's log (no fault applied), not by a clock.
    S.faults({"customer": {"latency_ms": 500}})
    S.reset()
    t0 = time.monotonic()
    st, _, b = get("/v1/customers/cus_s")
    dt = time.monotonic() - t0
    st2, _, _ = get("/v1/customers?limit=1")
    log = S.requests()["log"]
    S.faults({})
    faults = [(e["endpoint"], e["fault"]) for e in log]
    t.diag("latency %.3f s; faults applied %r" % (dt, faults))
    return st == 200 and b["id"] == "cus_s" and dt >= 0.5 and st2 == 200 and \
        faults == [("customer", "latency_ms"), ("customers", None)]


t.run("latency_ms delays the normal answer of that endpoint only", t_latency)


def t_in_flight_and_gather():
    # One after the other: never two in flight. Together, each held until the other is in
    # flight (gather): both answered, max_in_flight 2. Alone with gather 2: answered after
    # gather_ms, logged gather-timeout.
    S.reset()
    seq = [get("/v1/customers?limit=1")[0] for _ in range(3)]
    m1 = S.requests()["max_in_flight"]
    S.faults({"subscriptions": {"gather": 2}, "charges": {"gather": 2}})
    S.reset()
    out = {}
    th = [threading.Thread(target=lambda p=p: out.__setitem__(p, get(p, timeout=60)[0]))
          for p in ("/v1/subscriptions", "/v1/charges")]
    for x in th:
        x.start()
    for x in th:
        x.join()
    r2 = S.requests()
    S.faults({"subscriptions": {"gather": 2, "gather_ms": 200}})
    S.reset()
    alone = get("/v1/subscriptions")[0]
    r3 = S.requests()
    S.faults({})
    t.diag("sequential max %d; together %r max %d; alone %d %r" % (
        m1, out, r2["max_in_flight"], alone, [e["fault"] for e in r3["log"]]))
    return (seq == [200, 200, 200] and m1 == 1 and list(out.values()) == [200, 200]
            and r2["max_in_flight"] == 2 and r2["in_flight"] == 0
            and [e["fault"] for e in r2["log"]] == ["gather", "gather"]
            and alone == 200 and [e["fault"] for e in r3["log"]] == ["gather,gather-timeout"])


t.run("in_flight / max_in_flight count requests at once; gather holds a request until n are in "
      "flight", t_in_flight_and_gather)


def t_hang():
    # The client gives up after 1 s; the hang (120 s by default) would last far longer, so a
    # generous bound (10 s) still proves that the client's timeout, not an answer, ended it.
    S.faults({"customers": {"hang": True}})
    t0 = time.monotonic()
    e = None
    try:
        raw_get("/v1/customers", timeout=1.0)
    except Exception as x:  # noqa: BLE001
        e = x
    dt = time.monotonic() - t0
    S.faults({})

    # the stand-in notices the client went away and closes its side
    def closed():
        log = S.requests(endpoint="customers")["log"]
        f = log[-1].get("fault") if log else None
        return f if f and f.endswith("client-closed") else None
    fault = smtest.wait_for(closed, timeout=20)
    t.diag("hang: %r after %.2f s; logged fault %r" % (e, dt, fault))
    return isinstance(e, (socket.timeout, TimeoutError)) and 0.95 <= dt < 10 \
        and fault == "hang:client-closed"


t.run("hang: no answer until the client gives up (client timeout); released on disconnect",
      t_hang)


def t_reset():
    S.faults({"customers": {"reset": True}})
    e = None
    try:
        raw_get("/v1/customers", timeout=3)
    except Exception as x:  # noqa: BLE001
        e = x
    S.faults({})
    t.diag("reset: %r" % (e,))
    return isinstance(e, ConnectionResetError)


t.run("reset: connection reset without a response", t_reset)


def t_malformed():
    S.faults({"customers": {"malformed": True}})
    st, h, raw = raw_get("/v1/customers?email=s%40x.y")
    S.faults({})
    try:
        json.loads(raw)
        parsed = True
    except ValueError:
        parsed = False
    return st == 200 and not parsed and raw.startswith(b"{") and h["content-type"] == \
        "application/json"


t.run("malformed: 200 with truncated JSON", t_malformed)


def t_partial():
    S.faults({"customers": {"partial": True}})
    e = None
    try:
        raw_get("/v1/customers")
    except Exception as x:  # noqa: BLE001
        e = x
    S.faults({})
    return isinstance(e, http.client.IncompleteRead)


t.run("partial: body shorter than Content-Length, then close", t_partial)


def t_huge():
    S.faults({"customers": {"huge_mb": 2}})
    st, h, raw = raw_get("/v1/customers", timeout=10)
    S.faults({})
    b = json.loads(raw)
    t.diag("huge: %d bytes, %d objects" % (len(raw), len(b["data"])))
    return (st == 200 and len(raw) == 2 * 1048576 and int(h["content-length"]) == len(raw)
            and b["object"] == "list" and len(b["data"]) > 100
            and b["data"][0]["object"] == "customer")


t.run("huge_mb: a valid JSON list of exactly n MiB", t_huge)


def t_raw_body():
    S.faults({"account": {"status": 502, "body": "<html>Bad gateway</html>",
                          "content_type": "text/html"}})
    st, h, raw = raw_get("/v1/account")
    S.faults({})
    return st == 502 and raw == b"<html>Bad gateway</html>" and h["content-type"] == "text/html"


t.run("body: raw text with a chosen status and content type", t_raw_body)


def t_bad_rules():
    bad = []
    for rules in ({"customers": {"stauts": 500}}, {"custmers": {"status": 500}}, [1]):
        st, _, _ = smtest.http_call(S.url, "PUT", "/_standin/faults", rules)
        bad.append(st)
    for state in ({"custmers": []}, {"customers": [{"subscriptions": 5}]},
                  {"subscriptions": [{"items": "x"}]}, {"customers": {}}):
        st, _, _ = smtest.http_call(S.url, "PUT", "/_standin/state", state)
        bad.append(st)
    st, _, b = get("/v1/customers")
    return bad == [400] * 7 and st == 200


t.run("admin rejects misspelt rule fields, endpoints, state fields and bad shapes (400); "
      "the stand-in keeps serving", t_bad_rules)

def t_extras():
    S.state({"customers": [
        {"id": "cus_new", "email": "lag@x.y", "created": int(time.time())},
        {"id": "cus_old", "email": "lag@x.y", "created": int(time.time()) - 3600,
         "phone": "$absent", "address": {"city": "Z\u00fcrich"}}],
        "search_lag_s": 60, "strict_keys": True, "keys": {"sk_test_only": {}}})
    st1, _, b1 = get("/v1/customers/search?query=email%3A%27lag%40x.y%27", key="sk_test_only")
    st2, _, b2 = get("/v1/customers?email=lag%40x.y", key="sk_test_only")
    st3, _, _ = get("/v1/customers", key="sk_test_other")
    st4, _, b4 = smtest.http_call(S.url, "GET", "/_standin/state")
    dump = json.loads(b4)
    old = [c for c in b2["data"] if c["id"] == "cus_old"][0]
    S.state({})
    t.diag("search with lag: %s; list: %s" % ([c["id"] for c in b1["data"]],
                                              [c["id"] for c in b2["data"]]))
    return ([c["id"] for c in b1["data"]] == ["cus_old"]
            and [c["id"] for c in b2["data"]] == ["cus_new", "cus_old"]
            and st3 == 401 and "phone" not in old and old["address"]["city"] == "Z\u00fcrich"
            and old["address"]["country"] is None and st4 == 200
            and [c["id"] for c in dump["customers"]] == ["cus_new", "cus_old"])


t.run("search_lag_s hides new customers from search only; strict_keys; \"$absent\" drops a "
      "field; deep merge keeps sibling fields; GET /_standin/state", t_extras)


def t_add_keeps():
    S.state({"customers": [{"id": "cus_k1", "email": "k@x.y"}]})
    r = S.add({"customers": [{"id": "cus_k2", "email": "k@x.y"}]})
    st, _, b = get("/v1/customers?email=k%40x.y")
    return r["ids"]["customers"] == ["cus_k2"] and \
        sorted(c["id"] for c in b["data"]) == ["cus_k1", "cus_k2"]


t.run("POST /_standin/state adds objects and keeps the others", t_add_keeps)

def t_rate_limit():
    S.state({"rate_limit_per_s": 3})
    sts = [get("/v1/account")[0] for _ in range(5)]
    _, _, b = get("/v1/account")
    # The stand-in's window is 1 s of its own clock: this sleep is the thing under test (the
    # window passing), and load only makes it longer.
    time.sleep(1.05)
    after = get("/v1/account")[0]
    S.state({})
    t.diag("rate limit 3/s: %s, then %d" % (sts, after))
    return sts == [200, 200, 200, 429, 429] and err(b).get("code") == "rate_limit" and after == 200


t.run("rate_limit_per_s: beyond n requests in a second, 429 code rate_limit", t_rate_limit)

# ------------------------------------------------------------------ counters and log
def t_counters():
    S.reset()
    for _ in range(3):
        get("/v1/customers?email=s%40x.y")
    get("/v1/charges?customer=cus_s")
    # admin calls are not counted
    smtest.http_call(S.url, "GET", "/_standin/health")
    S.faults({})
    S.add({})
    S.requests()
    st, _, raw = smtest.http_call(S.url, "GET", "/_standin/requests")
    r = json.loads(raw)
    txt = raw.decode()
    log = r["log"]
    return (r["total"] == 4 and r["by_endpoint"]["customers"] == 3
            and r["by_endpoint"]["charges"] == 1 and r["by_endpoint"]["products"] == 0
            and '"total":4' in txt and '"customers":3' in txt
            and len(log) == 4 and log[0]["path"] == "/v1/customers"
            and log[0]["query"] == "email=s%40x.y" and log[0]["params"] == {"email": "s@x.y"}
            and log[0]["headers"].get("Authorization") == "Bearer " + K
            and log[0]["status"] == 200 and r["by_status"] == {"200": 4})


t.run("counters per endpoint, compact JSON, log with headers; admin calls not counted",
      t_counters)


def t_reset_counters():
    S.reset()
    r = S.requests()
    return r["total"] == 0 and r["log"] == [] and r["by_endpoint"]["customers"] == 0


t.run("POST /_standin/requests/reset zeroes counters and log", t_reset_counters)

# ------------------------------------------------------------------ command line, signals
def t_seed_log_sigterm():
    d = smtest.tempdir()
    seed = os.path.join(d, "seed.json")
    logf = os.path.join(d, "req.log")
    faults = os.path.join(d, "faults.json")
    with open(seed, "w") as f:
        json.dump({"customers": [{"email": "seed@x.y", "id": "cus_seed"}]}, f)
    with open(faults, "w") as f:
        json.dump({"account": {"status": 503, "times": 1}}, f)
    s2 = smtest.Standin(args=["--seed", seed, "--log", logf, "--faults", faults])
    st, _, b = s2.get("/v1/customers?email=seed%40x.y")
    fst = [s2.get("/v1/account")[0] for _ in range(2)]
    with open(logf) as f:
        logtxt = f.read()
    p = s2.proc
    p.send_signal(signal.SIGTERM)
    rc = p.wait(30)
    t.diag("SIGTERM exit %s" % rc)
    return (st == 200 and [c["id"] for c in b["data"]] == ["cus_seed"] and fst == [503, 200]
            and "/v1/customers?email=seed%40x.y -> 200" in logtxt and rc == 0)


t.run("--seed loads state, --faults loads rules, --log gets a line per request, SIGTERM stops "
      "cleanly", t_seed_log_sigterm)


def t_sigint_with_hang():
    s3 = smtest.Standin()
    s3.faults({"*": {"hang": True}})
    c = socket.create_connection(("127.0.0.1", s3.port))
    c.sendall(b"GET /v1/account HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk_test_x\r\n\r\n")
    in_flight = smtest.wait_for(lambda: s3.requests()["in_flight"] == 1, timeout=20)
    p = s3.proc
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    rc = p.wait(60)
    dt = time.monotonic() - t0
    c.close()
    # The hang would last 120 s: stopping well before (a generous 30 s) shows SIGINT ended it.
    t.diag("SIGINT exit %s after %.2f s with a hanging request" % (rc, dt))
    return in_flight and rc == 0 and dt < 30


t.run("SIGINT stops cleanly even with a hanging request open", t_sigint_with_hang)


def t_port_file():
    # When the port file exists the server is already listening.
    s4 = smtest.Standin()
    try:
        socket.create_connection(("127.0.0.1", s4.port), timeout=1).close()
        return True
    finally:
        s4.stop()


t.run("--port 0 --port-file: port written once listening", t_port_file)

S.stop()
sys.exit(t.done())
