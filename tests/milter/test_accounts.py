#!/usr/bin/env python3
"""test_accounts.py - several Stripe accounts in one daemon (AccountTable, issue #21), through the
real daemon, a real redis-server and Stripe stand-ins: two merchant accounts are two stand-ins
(each its own data and keys); a Connect platform is one stand-in holding two connected accounts'
data sets, read with one platform key and Stripe-Account (tests/standin/README.md, "Connected
accounts' data").

  accounts     a customer of one account, of both (the better subscription shown, both listed),
               of neither; each stand-in asked with its own key; X-Stripe-Accounts tokens;
               forged X-Stripe-Accounts stripped; per-account metrics; ctl lookup/purge
               --account, check-key and -n per account.
  hang         one account's API never answers: the other's answer is on the message, the
               hanging one says error=timeout.
  revoked      one account's key revoked (401): error=auth there, the other answered.
  connect      one platform key, two connected accounts: each request names its account, the
               two accounts' requests are in flight at once (the stand-in's gather fault holds
               each until both came: sequential lookups would time out), the better shown.
  fleet        budget and breaker per account: each account's keys in Redis; one account's
               Stripe failing opens its breaker only, the other keeps answering.
  webhook      two endpoint secrets on one listener: each delivery purges its own account's
               entry only; a delivery neither secret signs is refused.
  polling      events polled per account (own position and lease in Redis): an event in one
               account purges that account's entry.
  reload       a reload re-reads the table (an account added); a broken table keeps the old one.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import hdrv2  # noqa: E402
import milterclient  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

KEY_EU = "sk_test_accounts_eu_0123456789ABCD"
KEY_US = "sk_test_accounts_us_0123456789EFGH"
KEY_PLATFORM = "sk_test_accounts_platform_0123456789"
SECRET_EU = "whsec_accounts_eu_secret_0123456789"
SECRET_US = "whsec_accounts_us_secret_0123456789"
ACCT_A = "acct_1AccountsTestA"
ACCT_B = "acct_1AccountsTestB"


def wait_for(cond, timeout=30.0, what="condition"):
    return smtest.wait_for(cond, timeout=timeout, what=what)


def write(path, text, mode=0o600):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def table(d, lines, name="accounts"):
    """Writes the key files and the AccountTable; lines: (name, key, "options")."""
    out = []
    for n, key, opts in lines:
        kf = write(os.path.join(d, "%s.key" % n), key + "\n")
        out.append("%s\t%s\t%s" % (n, kf, opts))
    return write(os.path.join(d, name), "# test accounts\n\n" + "\n".join(out) + "\n", 0o644)


def start(d, tbl, redis=None, extra=None):
    o = {"AccountTable": tbl, "StripeKeyFile": None, "MetricsListen": "127.0.0.1:%d" % smtest.free_port(),
         "LookupTimeout": "4000", "StripeTimeout": "8000"}
    o.update(extra or {})
    m = mta.Milter(redis=redis, options=o)
    m.metrics = o["MetricsListen"]
    return m


def metrics(m):
    return smtest.metrics(m.metrics)[1]


def send(m, addr, headers=()):
    return milterclient.message(m.socket, "<%s>" % addr, from_="X <%s>" % addr, headers=headers)


def tokens(value):
    """X-Stripe-Accounts as {"eu": "found", "eu.status": "past_due", ...}."""
    out = {}
    for item in re.split(r";\s*", value or ""):
        if "=" in item:
            k, v = item.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def auth_keys(s):
    """The keys the stand-in was called with (Bearer ...), from its request log."""
    keys = set()
    for e in s.requests()["log"]:
        a = (e.get("headers") or {}).get("Authorization", "")
        keys.add(a.split()[-1] if a else "")
    return keys


def two_standins(s1, s2):
    s1.state({"customers": [
        {"email": "only-eu@example.com", "name": "Eu Only", "delinquent": True,
         "subscriptions": [{"status": "past_due"}]},
        {"email": "both@example.com", "name": "Both EU", "created": 1600000000,
         "subscriptions": [{"status": "past_due"}]},
    ]})
    ids2 = s2.state({"customers": [
        {"email": "only-us@example.com", "name": "Us Only", "subscriptions": [{"status": "trialing"}]},
        {"email": "both@example.com", "name": "Both US", "created": 1500000000,
         "subscriptions": [{"status": "active"}]},
    ]})["ids"]
    return ids2


def readme_rules():
    """The three rules of README.md's "Several Stripe accounts" section: (sieve, postfix
    table, procmail recipe), as documented (the indented blocks after each tool's name)."""
    with open(os.path.join(smtest.srcdir(), "README.md")) as f:
        text = f.read()
    sec = text[text.index("### Several Stripe accounts"):]
    sec = sec[:sec.index("\n## ")]
    out = []
    for tool in ("Sieve:", "Postfix (`milter_header_checks`):", "procmail:"):
        block = sec[sec.index("\n" + tool + "\n") + len(tool) + 2:].lstrip("\n").split("\n\n")[0]
        out.append("\n".join(ln[4:] for ln in block.splitlines()) + "\n")
    return out


def rule_outcomes(d, h):
    """What the README's rules do with a message carrying the daemon's headers h: (sieve,
    postfix, procmail) outcomes."""
    sieve, table, recipe = readme_rules()
    tmp = smtest.tempdir("sm-acct-rules-")
    os.chmod(tmp, 0o755)     # sieve-test runs as nobody
    fields = ["%s: %s" % (k, v) for k, v in h.items() if k.startswith("X-Stripe-")]
    msg = ("From: X <x@example.com>\nSubject: t\n" + "\n".join(fields) + "\n\nbody\n").encode()
    write(os.path.join(tmp, "rules.sieve"), 'require ["fileinto", "regex"];\n' + sieve, 0o644)
    write(os.path.join(tmp, "table"), table, 0o644)
    write(os.path.join(tmp, "rc"), recipe, 0o644)
    return (hdrv2.sieve_outcome(tmp, msg, os.path.join(tmp, "rules.sieve")),
            hdrv2.postmap_outcome(fields, os.path.join(tmp, "table"), tmp),
            hdrv2.procmail_outcome(tmp, msg, os.path.join(tmp, "rc")))


def t_rules(t, s1, s2, r, d):
    for tool in ("sieve-test", "postmap", "procmail"):
        if not shutil.which(tool):
            if smtest.ci():     # CI installs them (test_rules.py needs them too)
                t.ok(False, "%s is needed to run the README's rules" % tool)
            else:
                t.skip("README rules", "%s is not installed" % tool)
            return
    two_standins(s1, s2)
    # us first: eu's tokens come after the fold
    tbl = table(d, [("us", KEY_US, "api-base=" + s2.url), ("eu", KEY_EU, "api-base=" + s1.url)])
    m = start(d, tbl, r)
    try:
        h = send(m, "both@example.com")
        t.like(h["X-Stripe-Accounts"], r"\n\teu\.status=past_due", "eu's status is on a continuation line")
        t.is_(rule_outcomes(d, h), (("Billing",), ("REDIRECT billing-eu@example.com",), "Billing"),
              "past due at eu, active at us (us shown): every README rule fires")
        h = send(m, "only-us@example.com")
        t.is_(rule_outcomes(d, h), (("keep",), (), "inbox"), "a customer of us only: no rule fires")
        h = send(m, "only-eu@example.com")
        t.is_(rule_outcomes(d, h), (("Billing",), ("REDIRECT billing-eu@example.com",), "Billing"),
              "a past-due customer of eu only: every rule fires")
    finally:
        m.stop()


# ---------------------------------------------------------------------------------------------

def t_accounts(t, s1, s2, r, d):
    ids2 = two_standins(s1, s2)
    tbl = table(d, [("eu", KEY_EU, "api-base=" + s1.url), ("us", KEY_US, "api-base=" + s2.url)])
    m = start(d, tbl, r)
    try:
        h = send(m, "only-eu@example.com")
        t.like(h["X-Stripe-Lookup"], r"^v=2; found; cache=miss; mode=test; .*account=eu$",
               "a customer of eu only: found, account=eu (last item)")
        tk = tokens(h.get("X-Stripe-Accounts"))
        t.is_((tk.get("eu"), tk.get("eu.status"), tk.get("eu.delinquent"), tk.get("us")),
              ("found", "past_due", "yes", "not-found"), "X-Stripe-Accounts: eu's status, us not found")
        t.is_(h.get("X-Stripe-Subscription-Status"), "past_due", "eu's customer's headers")
        t.is_(list(k for k in h if k.startswith("X-Stripe-"))[:2], ["X-Stripe-Lookup", "X-Stripe-Accounts"],
              "X-Stripe-Accounts right after X-Stripe-Lookup")

        h = send(m, "both@example.com")
        t.like(h["X-Stripe-Lookup"], r"; account=us$", "a customer of both: the better subscription's account")
        t.is_(h.get("X-Stripe-Customer-Id"), ids2["customers"][1], "... its customer (us: active over past_due)")
        tk = tokens(h.get("X-Stripe-Accounts"))
        t.is_((tk.get("eu"), tk.get("eu.status"), tk.get("us"), tk.get("us.status")),
              ("found", "past_due", "found", "active"), "... both outcomes listed")
        t.is_(h.get("X-Stripe-Name"), "Both US", "... the name is us's customer's")
        t.ok(all(hdrv2.parse_tokens(v, k) for k, v in h.items() if k.startswith("X-Stripe-") and
                 not hdrv2.is_text_header(k)), "every token header fits the v2 token grammar")

        h = send(m, "nobody@example.com")
        t.like(h["X-Stripe-Lookup"], r"^v=2; not-found; cache=miss; mode=test", "in neither: not-found")
        t.ok("account=" not in h["X-Stripe-Lookup"], "... no account named")
        t.is_(tokens(h.get("X-Stripe-Accounts")), {"eu": "not-found", "us": "not-found"}, "... both said not-found")

        t.is_(auth_keys(s1), {KEY_EU}, "eu's stand-in saw eu's key only")
        t.is_(auth_keys(s2), {KEY_US}, "us's stand-in saw us's key only")

        # forged: a sender's own X-Stripe-Accounts is removed, ours added
        res = milterclient.message(m.socket, "<only-us@example.com>", from_="X <only-us@example.com>",
                                   headers=[("X-Stripe-Accounts", "us=found; us.status=active; eu=found")])
        t.ok(any(c[1].lower() == "x-stripe-accounts" and c[2] == "" for c in res.changed), "forged X-Stripe-Accounts deleted",
             res.changed)
        t.is_(tokens(res.get("X-Stripe-Accounts")).get("eu"), "not-found", "ours says what Stripe said")
        t.is_(tokens(res.get("X-Stripe-Accounts")).get("us.status"), "trialing", "... us: trialing")

        # cached: the second message is answered from each account's own entry
        h = send(m, "only-eu@example.com")
        t.like(h["X-Stripe-Lookup"], r"found; cache=hit;.*account=eu$", "cached: still account eu")
        keys = [k for k in r.cmd("KEYS", "stripe-milter:v1:sum*")]
        t.is_(sorted(set(k.split(":")[4] for k in keys)), ["eu", "us"], "cache keys carry the account name")

        met = metrics(m)
        t.is_((met.get('stripe_milter_account_results_total{account="eu",result="found"}'),
               met.get('stripe_milter_account_results_total{account="us",result="not_found"}')),
              (3.0, 3.0), "per-account results counted (eu found 3, us not found 3)")
        t.ok(met.get('stripe_milter_stripe_requests_total{account="eu",outcome="ok"}', 0) >= 3 and
             met.get('stripe_milter_stripe_requests_total{account="us",outcome="ok"}', 0) >= 3,
             "Stripe requests counted per account")
        t.ok('stripe_milter_breaker_state{account="us"}' in met, "fleet metrics per account")

        # the tool
        rc, out, err = mta.ctl(m.conf, "lookup", "both@example.com")
        t.ok(rc == 0 and "account:     us" in out and re.search(r"account eu\s+found cus_", out) and
             "X-Stripe-Accounts: eu=found" in out, "ctl lookup: every account, the same choice", out + err)
        rc, out, err = mta.ctl(m.conf, "--json", "lookup", "both@example.com", "--account", "eu")
        j = json.loads(out) if rc == 0 else {}
        t.ok((j.get("account"), [a["account"] for a in j.get("accounts", [])]) == ("eu", ["eu"]),
             "ctl lookup --account eu: that account only", out + err)
        rc, out, err = mta.ctl(m.conf, "lookup", "both@example.com", "--account", "apac")
        t.ok(rc == 2 and "no account 'apac'" in err and "eu, us" in err, "an unknown account is a usage error", err)
        eu_entries = lambda: len([k for k in r.cmd("KEYS", "stripe-milter:v1:sum*") if ":eu:" in k])  # noqa: E731
        us_before, eu_before = len(keys) - eu_entries(), eu_entries()
        rc, out, err = mta.ctl(m.conf, "purge", "only-eu@example.com", "--account", "eu")
        t.ok(rc == 0 and "in account eu" in out and "in account us" not in out, "ctl purge --account eu", out + err)
        t.is_((eu_entries(), len(r.cmd("KEYS", "stripe-milter:v1:sum*")) - eu_entries()), (eu_before - 1, us_before),
              "eu's entry of that address gone, the others stay")
        rc, out, err = mta.ctl(m.conf, "check-key")
        t.ok(rc == 0 and "== account eu" in out and "== account us" in out and "sk_test_...ABCD" in out,
             "check-key: a section per account", out + err)
        rc, out, err = mta.ctl(m.conf, "--json", "check-key", "--account", "us")
        t.ok(rc == 0 and [a["name"] for a in json.loads(out)["accounts"]] == ["us"], "check-key --account us")
        p = subprocess.run([mta.binary("stripe-milter"), "-n", "-c", m.conf], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode()
        t.ok(p.returncode == 0 and "Stripe accounts eu (key sk_test_...ABCD), us (key sk_test_...EFGH)" in out
             and "# account us: permission rak_customer_read" in out, "-n: every account's key and permissions",
             out[:2000])
        t.ok(KEY_EU not in out and KEY_EU not in m.log(), "keys never printed or logged")
        # stats: a row per account, from Redis and from the local snapshot
        want = {"eu": 3, "us": 2}
        for args in (("--json", "stats"), ("--json", "stats", "--local")):
            wait_for(lambda: {a: v["found"] for a, v in json.loads(mta.ctl(m.conf, *args)[1] or "{}")
                              .get("accounts", {}).items()} == want, what="stats %s to show every account" % " ".join(args))
            st = json.loads(mta.ctl(m.conf, *args)[1])
            t.is_(sorted(st["accounts"]), ["eu", "us"], "stats %s: a row per account" % args[-1])
            t.ok(st["accounts"]["eu"]["requests"] >= 3 and st["accounts"]["us"]["not_found"] == 3,
                 "... with its own figures", st["accounts"])
        rc, out, err = mta.ctl(m.conf, "stats")
        t.ok(re.search(r"\n  eu +3 +2 +0 +0 ", out) and re.search(r"\n  us +2 +3 +0 +0 ", out),
             "stats: the accounts table (found, not_found, guest, error)", out)
        t.like(m.log(), r"result=found account=eu ", "the log line names the account")
    finally:
        m.stop()


def t_hang(t, s1, s2, r, d):
    two_standins(s1, s2)
    tbl = table(d, [("eu", KEY_EU, "api-base=" + s1.url), ("us", KEY_US, "api-base=" + s2.url)])
    m = start(d, tbl, r, {"LookupTimeout": "3000"})
    try:
        s1.faults({"*": {"hang": True, "hang_s": 30}})
        h = send(m, "both@example.com")
        t.like(h["X-Stripe-Lookup"], r"^v=2; found; .*account=us$", "eu hangs: us's customer shown")
        tk = tokens(h.get("X-Stripe-Accounts"))
        t.is_((tk.get("eu"), tk.get("eu.error"), tk.get("us"), tk.get("us.status")),
              ("error", "timeout", "found", "active"), "eu: error=timeout, us answered")
        h = send(m, "only-eu@example.com")
        t.like(h["X-Stripe-Lookup"], r"^v=2; error=timeout$", "a customer of eu only: error (not not-found)")
        t.is_(tokens(h.get("X-Stripe-Accounts")), {"eu": "error", "eu.error": "timeout", "us": "not-found"},
              "... us said not-found")
    finally:
        s1.faults({})
        m.stop()


def t_revoked(t, s1, s2, r, d):
    two_standins(s1, s2)
    s1.add({"keys": {KEY_EU: {"revoked": True}}})
    tbl = table(d, [("eu", KEY_EU, "api-base=" + s1.url), ("us", KEY_US, "api-base=" + s2.url)])
    m = start(d, tbl, r)
    try:
        h = send(m, "only-us@example.com")
        t.like(h["X-Stripe-Lookup"], r"^v=2; found; .*account=us$", "eu's key revoked: us still answers")
        tk = tokens(h.get("X-Stripe-Accounts"))
        t.is_((tk.get("eu"), tk.get("eu.error"), tk.get("us")), ("error", "auth", "found"), "eu: error=auth")
        met = metrics(m)
        t.is_(met.get('stripe_milter_account_results_total{account="eu",result="error",class="auth"}'), 1.0,
              "counted as eu's auth error")
        rc, out, err = mta.ctl(m.conf, "check-config")
        t.ok(rc == 1 and re.search(r"account eu .*auth", out) and re.search(r"account us .*: ok", out),
             "check-config: eu's key fails, us's is ok", out + err)
    finally:
        s1.add({"keys": {KEY_EU: {}}})
        m.stop()


def t_connect(t, s1, s2, r, d):
    ids = s1.state({"customers": [{"email": "platform@example.com"}], "connected": {
        ACCT_A: {"customers": [{"email": "shop@example.com", "name": "At A", "created": 1500000000,
                                "subscriptions": [{"status": "active"}]}]},
        ACCT_B: {"customers": [{"email": "shop@example.com", "name": "At B", "created": 1700000000,
                                "subscriptions": [{"status": "past_due"}]},
                               {"email": "b-only@example.com", "name": "Only B"}]},
    }})
    tbl = table(d, [("a", KEY_PLATFORM, "connect=" + ACCT_A + " api-base=" + s1.url),
                    ("b", KEY_PLATFORM, "connect=" + ACCT_B + " api-base=" + s1.url)])
    sec = write(os.path.join(d, "connect.whsec"), SECRET_US + "\n")
    port = smtest.free_port()
    m = start(d, tbl, r, {"WebhookListen": "127.0.0.1:%d" % port, "WebhookSecretFile": sec,
                          "LookupAddress": "header-from-or-envelope"})
    try:
        s1.reset()
        # each account's customer list request is held until the other's is in flight too
        s1.faults({"customers": {"gather": 2, "gather_ms": 20000, "times": 2}})
        h = send(m, "shop@example.com")
        s1.faults({})
        t.like(h["X-Stripe-Lookup"], r"^v=2; found; cache=miss; .*account=a$",
               "the two accounts asked at once (gathered), a's active customer shown")
        t.ok(not any("gather-timeout" in (e.get("fault") or "") for e in s1.requests()["log"]),
             "neither request waited for the other to end (no gather timeout)")
        t.is_(h.get("X-Stripe-Customer-Id"), ids["connected_ids"][ACCT_A]["customers"][0], "a's customer id")
        tk = tokens(h.get("X-Stripe-Accounts"))
        t.is_((tk.get("a.status"), tk.get("b.status")), ("active", "past_due"), "both listed")
        # no From: the envelope sender was only probed at MAIL FROM; at the end both
        # accounts' lookups start together (gathered), not one after the other's deadline
        s1.faults({"customers": {"gather": 2, "gather_ms": 20000, "times": 2}})
        h = milterclient.message(m.socket, "<b-only@example.com>", from_=None)
        s1.faults({})
        t.like(h["X-Stripe-Lookup"], r"^v=2; found; cache=miss; .*account=b$",
               "envelope fallback: b's customer")
        t.is_(tokens(h.get("X-Stripe-Accounts")).get("a"), "not-found",
              "... both accounts asked at once: a answered too (asked after b's deadline it would time out)")
        h = send(m, "b-only@example.com")
        t.like(h["X-Stripe-Lookup"], r"account=b$", "a customer of b only")
        t.is_(h.get("X-Stripe-Name"), "Only B", "... read from b's data")
        h = send(m, "platform@example.com")
        t.like(h["X-Stripe-Lookup"], r"^v=2; not-found", "the platform's own customer is in neither account")
        # one Connect endpoint signs both accounts' events: each goes to the account it names
        keys = lambda a: [k for k in r.cmd("KEYS", "stripe-milter:v1:sum*") if ":%s:" % a in k]  # noqa: E731
        n_a, n_b = len(keys("a")), len(keys("b"))
        ev = {"type": "customer.subscription.updated", "account": ACCT_B,
              "object_id": ids["connected_ids"][ACCT_B]["subscriptions"][0], "update": {"status": "active"},
              "webhook": {"url": "http://127.0.0.1:%d/" % port, "secret": SECRET_US}}
        res = s1.admin("POST", "/_standin/events", ev)
        t.is_((res["delivery"]["status"], res["event"].get("account")), (200, ACCT_B), "b's Connect event applied")
        t.is_((len(keys("a")), len(keys("b"))), (n_a, n_b - 1), "... it purged b's entry only")
        met = metrics(m)
        t.is_((met.get('stripe_milter_events_applied_total{account="b"}'),
               met.get('stripe_milter_events_applied_total{account="a"}')), (1.0, 0.0), "... counted on b")
        h = send(m, "shop@example.com")
        t.is_(tokens(h.get("X-Stripe-Accounts")).get("b.status"), "active", "b's change shows")
        accts = set((e.get("headers") or {}).get("Stripe-Account") for e in s1.requests()["log"])
        t.is_(accts, {ACCT_A, ACCT_B}, "every request named its connected account")
        t.is_(auth_keys(s1), {KEY_PLATFORM}, "with the platform's key")
    finally:
        s1.faults({})
        s1.state({})
        m.stop()


def t_fleet(t, s1, s2, r, d):
    s1.state({"customers": [{"email": "f%d@example.com" % i} for i in range(20)]})
    s2.state({"customers": [{"email": "f%d@example.com" % i, "subscriptions": [{"status": "active"}]}
                            for i in range(20)]})
    tbl = table(d, [("eu", KEY_EU, "api-base=" + s1.url), ("us", KEY_US, "api-base=" + s2.url)])
    m = start(d, tbl, r, {"FleetRateLimit": "50", "BreakerFailures": "2", "BreakerCooldown": "60000"})
    try:
        for i in (0, 10, 11):
            send(m, "f%d@example.com" % i)
        met = metrics(m)
        used = tuple(met.get('stripe_milter_budget_total{account="%s",decision="granted"}' % a, 0) -
                     met.get('stripe_milter_budget_total{account="%s",decision="refunded"}' % a, 0) for a in ("eu", "us"))
        t.is_(used, (float(s1.count()), float(s2.count())), "each account's requests charged to its own budget")
        for a in ("eu", "us"):
            t.ok(r.cmd("EXISTS", "stripe-milter:acct:%s:fleet:gcra" % a) == 1, "%s's own fleet budget in Redis" % a)
        t.ok(r.cmd("EXISTS", "stripe-milter:fleet:gcra") == 0, "no budget shared across accounts")
        s1.faults({"*": {"status": 500}})
        for i in range(1, 4):
            h = send(m, "f%d@example.com" % i)
            t.like(h["X-Stripe-Lookup"], r"^v=2; found;.*account=us$", "eu failing: us answers (%d)" % i)
        wait_for(lambda: metrics(m).get('stripe_milter_breaker_state{account="eu"}') == 1, what="eu's breaker open")
        met = metrics(m)
        t.is_((met.get('stripe_milter_breaker_state{account="eu"}'), met.get('stripe_milter_breaker_state{account="us"}')),
              (1.0, 0.0), "eu's breaker open, us's closed")
        t.ok(r.cmd("HGET", "stripe-milter:acct:eu:fleet:breaker", "open_until") not in (None, "0"),
             "eu's breaker state in Redis under its account")
        n_eu = s1.count()
        h = send(m, "f5@example.com")
        t.is_(tokens(h.get("X-Stripe-Accounts")).get("eu.error"), "unavailable", "eu: unavailable (breaker)")
        t.is_(tokens(h.get("X-Stripe-Accounts")).get("us.status"), "active", "... us answered")
        t.is_(s1.count(), n_eu, "eu's Stripe not asked while its breaker is open")
    finally:
        s1.faults({})
        m.stop()


def t_webhook(t, s1, s2, r, d):
    ids1 = s1.state({"customers": [{"email": "hook@example.com", "subscriptions": [{"status": "past_due"}]}]})["ids"]
    ids2 = s2.state({"customers": [{"email": "hook@example.com", "subscriptions": [{"status": "past_due"}]}]})["ids"]
    se = write(os.path.join(d, "eu.whsec"), SECRET_EU + "\n")
    su = write(os.path.join(d, "us.whsec"), SECRET_US + "\n")
    tbl = table(d, [("eu", KEY_EU, "api-base=%s webhook-secret=%s" % (s1.url, se)),
                    ("us", KEY_US, "api-base=%s webhook-secret=%s" % (s2.url, su))])
    port = smtest.free_port()
    m = start(d, tbl, r, {"WebhookListen": "127.0.0.1:%d" % port})
    url = "http://127.0.0.1:%d/" % port
    try:
        wait_for(lambda: metrics(m).get('stripe_milter_events_subscribed{account="us"}') == 1, what="subscribers")
        send(m, "hook@example.com")
        keys = lambda a: [k for k in r.cmd("KEYS", "stripe-milter:v1:sum*") if ":%s:" % a in k]  # noqa: E731
        t.is_((len(keys("eu")), len(keys("us"))), (1, 1), "an entry per account")
        ev = {"type": "customer.subscription.updated", "object_id": ids2["subscriptions"][0],
              "update": {"status": "active"}}
        res = s2.admin("POST", "/_standin/events", dict(ev, webhook={"url": url, "secret": "whsec_neither"}))
        t.is_((res["delivery"]["status"], res["delivery"]["body"].strip()), (400, "signature"),
              "signed by neither account's secret: refused")
        res = s2.admin("POST", "/_standin/events", dict(ev, webhook={"url": url, "secret": SECRET_US}))
        t.is_((res["delivery"]["status"], res["delivery"]["body"].strip()), (200, "applied"), "us's delivery applied")
        t.is_((len(keys("eu")), len(keys("us"))), (1, 0), "... us's entry purged, eu's kept")
        met = metrics(m)
        t.is_((met.get('stripe_milter_events_applied_total{account="us"}'),
               met.get('stripe_milter_events_applied_total{account="eu"}'),
               met.get('stripe_milter_events_rejected_total{account="eu",reason="signature"}')),
              (1.0, 0.0, 1.0), "counted on us (the refusal on the first account)")
        h = send(m, "hook@example.com")
        tk = tokens(h.get("X-Stripe-Accounts"))
        t.is_((tk.get("eu.status"), tk.get("us.status")), ("past_due", "active"), "the next message: us's change")
        ev1 = {"type": "customer.subscription.updated", "object_id": ids1["subscriptions"][0],
               "update": {"status": "canceled"}}
        res = s1.admin("POST", "/_standin/events", dict(ev1, webhook={"url": url, "secret": SECRET_EU}))
        t.is_(res["delivery"]["status"], 200, "eu's delivery applied")
        t.is_(len(keys("eu")), 0, "... eu's entry purged")
    finally:
        m.stop()


def t_polling(t, s1, s2, r, d):
    s1.state({"customers": [{"email": "poll@example.com", "subscriptions": [{"status": "active"}]}]})
    ids2 = s2.state({"customers": [{"email": "poll@example.com", "subscriptions": [{"status": "past_due"}]}]})["ids"]
    tbl = table(d, [("eu", KEY_EU, "api-base=" + s1.url), ("us", KEY_US, "api-base=" + s2.url)])
    m = start(d, tbl, r, {"EventsPollInterval": "1"})
    try:
        wait_for(lambda: all(metrics(m).get('stripe_milter_events_poller{account="%s",owner="%s"}' % (a, "")) is None
                             and any(k.startswith('stripe_milter_events_poller{account="%s"' % a) and v == 1
                                     for k, v in metrics(m).items()) for a in ("eu", "us")),
                 what="a poller per account")
        h = send(m, "poll@example.com")
        t.is_(tokens(h.get("X-Stripe-Accounts")).get("us.status"), "past_due", "us: past_due cached")
        s2.admin("POST", "/_standin/events", {"type": "customer.subscription.updated",
                                              "object_id": ids2["subscriptions"][0], "update": {"status": "active"}})
        wait_for(lambda: metrics(m).get('stripe_milter_events_applied_total{account="us"}', 0) >= 1,
                 what="us's event polled")
        t.is_(metrics(m).get('stripe_milter_events_applied_total{account="eu"}'), 0.0, "eu applied nothing")
        h = send(m, "poll@example.com")
        t.is_(tokens(h.get("X-Stripe-Accounts")).get("us.status"), "active", "us: the change shows")
        for a in ("eu", "us"):
            t.ok(r.cmd("EXISTS", "stripe-milter:acct:%s:fleet:poller" % a) == 1, "%s: its own poller lease" % a)
        t.ok(r.cmd("GET", "stripe-milter:acct:us:fleet:events:pos") is not None, "us: its own position")
        t.ok(all(e["params"].get("created") for e in s1.requests("events")["log"]) and s1.count("events") >= 1,
             "eu's events read from eu's API")
    finally:
        m.stop()


def t_reload(t, s1, s2, r, d):
    two_standins(s1, s2)
    tbl = table(d, [("eu", KEY_EU, "api-base=" + s1.url)], name="reload-accounts")
    m = start(d, tbl, r)
    try:
        h = send(m, "only-us@example.com")
        t.is_(tokens(h.get("X-Stripe-Accounts")), {"eu": "not-found"}, "one account: only eu asked")
        table(d, [("eu", KEY_EU, "api-base=" + s1.url), ("us", KEY_US, "api-base=" + s2.url)], name="reload-accounts")
        log = m.reload({})
        t.like(log, r"configuration reloaded .*Stripe accounts eu .*, us ", "reload: the table re-read")
        h = send(m, "only-us@example.com")
        t.like(h["X-Stripe-Lookup"], r"account=us$", "the added account answers")
        write(tbl, "EU /nonexistent\n", 0o644)
        log = m.reload({})
        t.like(log, r"'EU' is not an account name", "a broken table: said")
        t.like(log, r"reload failed: keeping the previous configuration", "... the old one kept")
        h = send(m, "only-us@example.com")
        t.like(h["X-Stripe-Lookup"], r"account=us$", "... and still serving both")
    finally:
        m.stop()


def t_config(t, d):
    """Bad tables: each a clear error at -n."""
    k = write(os.path.join(d, "k.key"), KEY_EU + "\n")
    cases = [
        ("eu %s\neu %s\n" % (k, k), "account eu is already named above"),
        ("eu %s bogus=1\n" % k, "unknown option 'bogus=1'"),
        ("eu\n", "account eu: no key file"),
        ("eu %s\nus %s\n" % (k, k), "account us reads the same account as eu"),
        ("# nothing\n", "names no account"),
        ("e.u %s\n" % k, "'e.u' is not an account name"),
    ]
    for i, (text, want) in enumerate(cases):
        tb = write(os.path.join(d, "bad%d" % i), text, 0o644)
        conf = write(os.path.join(d, "bad%d.conf" % i), "AccountTable %s\nSocket unix:%s/s.sock\nSyslog no\n"
                     "StatsFile %s/st/snapshot\n" % (tb, d, d), 0o644)
        p = subprocess.run([mta.binary("stripe-milter"), "-n", "-c", conf], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=60)
        t.ok(p.returncode != 0 and want in p.stdout.decode(), "bad table: %s" % want, p.stdout.decode())
    conf = write(os.path.join(d, "both.conf"), "AccountTable %s\nStripeKeyFile %s\nSocket unix:%s/s.sock\n"
                 "Syslog no\n" % (tb, k, d), 0o644)
    p = subprocess.run([mta.binary("stripe-milter"), "-n", "-c", conf], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=60)
    t.ok(p.returncode != 0 and "AccountTable is set with StripeKeyFile" in p.stdout.decode(),
         "AccountTable and StripeKeyFile: choose one")
    lk = write(os.path.join(d, "live.key"), "sk_live_accounts_0123456789ABCD\n")
    tb = write(os.path.join(d, "mixed"), "eu %s\nus %s\n" % (k, lk), 0o644)
    conf = write(os.path.join(d, "mixed.conf"), "AccountTable %s\nSocket unix:%s/s.sock\nSyslog no\n"
                 "StatsFile %s/st/snapshot\n" % (tb, d, d), 0o644)
    p = subprocess.run([mta.binary("stripe-milter"), "-n", "-c", conf], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=60)
    t.ok(p.returncode != 0 and "account us: a live key among test ones" in p.stdout.decode(),
         "live and test keys in one table: refused", p.stdout.decode())


# ---------------------------------------------------------------------------------------------

def main():
    t = smtest.TAP()
    try:
        mta.binary("stripe-milter")
        s1 = smtest.Standin()
        s2 = smtest.Standin()
        r = smtest.Redis()
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    d = smtest.tempdir("sm-accounts-")
    os.chmod(d, 0o755)
    try:
        only = os.environ.get("ACCOUNT_TESTS", "").split(",") if os.environ.get("ACCOUNT_TESTS") else None
        for name, fn in (("accounts", t_accounts), ("rules", t_rules), ("hang", t_hang), ("revoked", t_revoked),
                         ("connect", t_connect), ("fleet", t_fleet), ("webhook", t_webhook),
                         ("polling", t_polling), ("reload", t_reload)):
            if only and name not in only:
                continue
            r.cmd("FLUSHALL")
            s1.reset()
            s2.reset()
            t.subtest(name, fn, s1, s2, r, d)
        if not only or "config" in only:
            t.subtest("config", t_config, d)
    finally:
        s1.stop()
        s2.stop()
        r.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
