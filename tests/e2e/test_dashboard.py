#!/usr/bin/env python3
"""test_dashboard.py - no panel of the Grafana dashboard (contrib/grafana) and no alert rule
(contrib/prometheus) can silently show nothing: every series selector in their PromQL
(metric name and its label matchers; Grafana variables match anything) matches at least
one series in a live /metrics scrape of a running daemon with Redis, after traffic.
The only metric not from the daemon is Prometheus's own `up`.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

SEED = os.path.join(smtest.srcdir(), "tests", "demo", "seed.json")
SCRIPT = os.path.join(smtest.srcdir(), "tests", "milter", "mt_message.lua")
DASHBOARD = os.path.join(smtest.srcdir(), "contrib", "grafana", "stripe-milter.json")
RULES = os.path.join(smtest.srcdir(), "contrib", "prometheus", "stripe-milter.rules.yml")
FROM_PROMETHEUS = {"up"}

SEL = re.compile(r'\b(stripe_milter_[a-z0-9_]+|up)\b(?!\s*\()(\{[^}]*\})?')
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def scrape(port):
    st, _, body = smtest.http_call("http://127.0.0.1:%d" % port, "GET", "/metrics")
    series = []
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'([a-zA-Z_:][\w:]*)(?:\{(.*)\})? ', line)
        labels = dict((k, v) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        series.append((m.group(1), labels))
    return st, series


def matches(series, name, matchers):
    for n, labels in series:
        if n != name:
            continue
        ok = True
        for k, op, v in matchers:
            if "$" in v:            # a Grafana variable: any value
                continue
            have = labels.get(k, "")
            if op == "=":
                ok = have == v
            elif op == "!=":
                ok = have != v
            elif op == "=~":
                ok = re.fullmatch(v, have) is not None
            else:
                ok = re.fullmatch(v, have) is None
            if not ok:
                break
        if ok:
            return True
    return False


def selectors(expr):
    # drop grouping clauses (by/without/on/ignoring (...)) so label lists are not read as names
    expr = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', ' ', expr)
    for m in SEL.finditer(expr):
        yield m.group(1), MATCHER.findall(m.group(2) or "")


def exprs_dashboard():
    d = json.load(open(DASHBOARD))
    out = []

    def walk(panels):
        for p in panels:
            for tg in p.get("targets", []):
                out.append(("panel '%s'" % p["title"], tg["expr"]))
            walk(p.get("panels", []))
    walk(d["panels"])
    for v in d["templating"]["list"]:
        if v.get("type") == "query":
            out.append(("variable $%s" % v["name"], v["definition"].replace("label_values(", "").split(",")[0]))
    return out


def exprs_rules():
    out, cur = [], None
    lines = open(RULES).read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r'\s*- (alert|record): (\S+)', line)
        if m:
            cur = m.group(2)
        m = re.match(r'(\s*)expr: ?(.*)$', line)
        if m:
            expr = m.group(2)
            if expr.strip() in (">", "|"):
                ind = len(m.group(1))
                body = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > ind):
                    body.append(lines[i].strip())
                    i += 1
                expr = " ".join(body)
                out.append(("rule %s" % cur, expr))
                continue
            out.append(("rule %s" % cur, expr))
        i += 1
    return out


def main():
    t = smtest.TAP()
    try:
        if not os.path.exists("/usr/bin/miltertest"):
            raise smtest.Unavailable("miltertest is not installed")
        redis = smtest.Redis()
        s = smtest.Standin(args=["--seed", SEED])
        port = smtest.free_port()
        # WebhookListen too: its listener's series exist only when it runs (with its secret)
        sec = os.path.join(smtest.tempdir("sm-dash-"), "wh.secret")
        with open(os.open(sec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write("whsec_dashboard_test_0123456789\n")
        m = mta.Milter(s, redis, options={"MetricsListen": "127.0.0.1:%d" % port,
                                          "WebhookListen": "127.0.0.1:%d" % smtest.free_port(),
                                          "WebhookSecretFile": sec})
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    try:
        for sender in ("jenny@customer.test", "nobody@elsewhere.test"):
            rc, out = mta.miltertest(SCRIPT, {"MT_SOCKET": m.socket, "MT_ENVFROM": "<%s>" % sender,
                                              "MT_FROM": sender, "MT_EXPECT": ".", "MT_STATUS": "*"})
            t.is_(rc, 0, "a message from %s" % sender)
        st, series = scrape(port)
        t.is_(st, 200, "/metrics scraped (%d series)" % len(series))
        d = exprs_dashboard()
        r = exprs_rules()
        t.ok(len(d) >= 20 and len(r) >= 10, "queries found: %d in the dashboard, %d in the rules" % (len(d), len(r)))
        for where, expr in d + r:
            sels = list(selectors(expr))
            missing = ["%s%s" % (n, ms) for n, ms in sels
                       if n not in FROM_PROMETHEUS and not matches(series, n, ms)]
            t.ok(sels and not missing, "%s: every selector matches a live series" % where,
                 "expr: %s\nnot in the scrape: %s" % (expr, missing))
    finally:
        for x in (m, s, redis):
            x.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
