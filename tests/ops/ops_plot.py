#!/usr/bin/env python3
"""ops_plot.py - the picture in the README's Operations section: the dashboard's main series
from a real Prometheus scraping two daemons through a short soak with trouble in it.

Starts a private redis-server, the Stripe stand-in, two stripe-milter daemons on one Redis
(MetricsListen each) and Debian's `prometheus` (scrape and rule evaluation every second,
loading contrib/prometheus/stripe-milter.rules.yml), sends messages through both daemons with
miltertest (4 at a time, about 30 a second: known customers, new addresses, internal hosts)
through five
phases: healthy, Stripe answering 5xx, Stripe slow (4 s: lookups time out at 1 s, requests
at 3 s), Stripe answering 429,
recovered. Then it asks Prometheus (query_range) for the dashboard's main series over 15 s
windows and plots them with gnuplot into OUT (default docs/operations.png).

Run by `make ops-plot` (not part of `make check`: it takes about 3 minutes). Needs
prometheus, gnuplot-nox, miltertest, redis-server (install-deps.sh).
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

SRC = smtest.srcdir()
SEED = os.path.join(SRC, "tests", "demo", "seed.json")
SCRIPT = os.path.join(SRC, "tests", "milter", "mt_message.lua")
RULES = os.path.join(SRC, "contrib", "prometheus", "stripe-milter.rules.yml")
KNOWN = ["jenny@customer.test", "pat@customer.test", "yuki@customer.test"]
PHASES = [("healthy", 45, {}),
          ("Stripe 5xx", 30, {"*": {"status": 500, "should_retry": False}}),
          ("Stripe slow", 30, {"*": {"latency_ms": 4000}}),
          ("Stripe 429", 30, {"*": {"status": 429}}),
          ("recovered", 35, {})]
W = "15s"
PANELS = [
    ("messages per second, by X-Stripe-Lookup result", "", [
        ("found", 'sum(rate(stripe_milter_messages_total{result="found"}[%s]))' % W),
        ("not-found", 'sum(rate(stripe_milter_messages_total{result="not_found"}[%s]))' % W),
        ("error", 'sum(rate(stripe_milter_messages_total{result="error"}[%s]))' % W),
        ("skipped", 'sum(rate(stripe_milter_messages_total{result="skipped"}[%s]))' % W)]),
    ("share of looked-up messages answered; cache hit ratio", "", [
        ("answered",
         'sum(rate(stripe_milter_messages_total{result=~"found|not_found|guest"}[%s])) / '
         'sum(rate(stripe_milter_messages_total{result!="skipped"}[%s]))' % (W, W)),
        ("cache hit ratio", 'sum(rate(stripe_milter_cache_hits_total[%s])) / '
         'sum(rate(stripe_milter_cache_lookups_total[%s]))' % (W, W))]),
    ("Stripe HTTP requests per second, by outcome", "", [
        ("ok, not_found", 'sum(rate(stripe_milter_stripe_requests_total{outcome=~"ok|not_found"}[%s]))' % W),
        ("5xx", 'sum(rate(stripe_milter_stripe_requests_total{outcome="5xx"}[%s]))' % W),
        ("timeout", 'sum(rate(stripe_milter_stripe_requests_total{outcome="timeout"}[%s]))' % W),
        ("429", 'sum(rate(stripe_milter_stripe_requests_total{outcome="429"}[%s]))' % W)]),
    ("lookup latency per message (ms, bucket upper bounds)", "", [
        ("p50", '1000 * histogram_quantile(0.50, sum by (le) (rate(stripe_milter_lookup_duration_seconds_bucket[%s])))' % W),
        ("p95", '1000 * histogram_quantile(0.95, sum by (le) (rate(stripe_milter_lookup_duration_seconds_bucket[%s])))' % W)]),
]


def prom_get(base, path, params):
    url = "%s%s?%s" % (base, path, urllib.parse.urlencode(params))
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read().decode())


def start_prometheus(ports, workdir):
    port = smtest.free_port()
    conf = os.path.join(workdir, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "rule_files: ['%s']\n"
                "scrape_configs:\n  - job_name: stripe-milter\n    static_configs:\n"
                "      - targets: [%s]\n" % (RULES, ", ".join("'127.0.0.1:%d'" % p for p in ports)))
    proc = smtest.spawn(["prometheus", "--config.file=" + conf, "--storage.tsdb.path=" + os.path.join(workdir, "data"),
                         "--web.listen-address=127.0.0.1:%d" % port],
                        log=os.path.join(workdir, "prometheus.log"))
    base = "http://127.0.0.1:%d" % port
    end = time.time() + 60
    while time.time() < end:
        try:
            with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("prometheus did not start: see %s/prometheus.log" % workdir)


def traffic(milters, stop, counter):
    rnd = random.Random()
    while not stop.is_set():
        m = rnd.choice(milters)
        x = rnd.random()
        env = {"MT_SOCKET": m.socket, "MT_EXPECT": ".", "MT_STATUS": "*"}
        if x < 0.5:
            a = rnd.choice(KNOWN)
        else:
            a = "u%d.%d@elsewhere.test" % (os.getpid(), rnd.randrange(10 ** 9))
        if x > 0.9:
            env["MT_IP"] = "192.0.2.250"         # an internal host: skipped
        env["MT_ENVFROM"] = "<%s>" % a
        env["MT_FROM"] = a
        mta.miltertest(SCRIPT, env)
        counter[0] += 1
        stop.wait(0.1)      # pace: about 30 messages a second in all, on a shared machine


def plot(base, t0, t1, marks, out, workdir):
    files = []
    for i, (title, _, series) in enumerate(PANELS):
        for j, (name, expr) in enumerate(series):
            res = prom_get(base, "/api/v1/query_range", {"query": expr, "start": t0, "end": t1, "step": "2"})
            path = os.path.join(workdir, "p%d_%d.dat" % (i, j))
            with open(path, "w") as f:
                for r in res["data"]["result"][:1]:
                    for ts, v in r["values"]:
                        if v not in ("NaN", "+Inf", "-Inf"):
                            f.write("%.1f %s\n" % (float(ts) - t0, v))
            files.append((i, name, path))
    g = ["set terminal pngcairo size 1100,1250 font 'DejaVu Sans,10' noenhanced",
         "set output '%s'" % out,
         "set multiplot layout %d,1 title 'stripe-milter: two daemons on one Redis, scraped by Prometheus every second (rates over %s)'" % (len(PANELS), W),
         "set grid", "set key outside right top", "set xrange [0:%d]" % (t1 - t0), "set lmargin 10", "set rmargin 24"]
    for i, (title, _, series) in enumerate(PANELS):
        g.append("unset arrow; unset label")
        for k, (name, start) in enumerate(marks):
            g.append("set arrow from %d, graph 0 to %d, graph 1 nohead dt 2 lc rgb '#888888'" % (start, start))
            g.append("set label '%s' at %d, graph 0.95 offset 0.5,0 font ',9' tc rgb '#555555'" % (name, start))
        g.append("set title '%s'" % title)
        g.append("set xlabel '%s'" % ("seconds" if i == len(PANELS) - 1 else ""))
        g.append("set yrange [0:%s]" % ("1.05" if i == 1 else "*"))
        g.append("plot " + ", ".join("'%s' using 1:2 with lines lw 2 title '%s'" % (p, n)
                                     for (pi, n, p) in files if pi == i))
    g.append("unset multiplot")
    script = os.path.join(workdir, "plot.gp")
    with open(script, "w") as f:
        f.write("\n".join(g) + "\n")
    subprocess.run(["gnuplot", script], check=True)


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(SRC, "docs", "operations.png"))
    for tool in ("prometheus", "gnuplot", "miltertest", "redis-server"):
        if subprocess.run(["sh", "-c", "command -v " + tool], stdout=subprocess.DEVNULL).returncode != 0:
            sys.exit("ops_plot: %s is not installed (./install-deps.sh)" % tool)
    workdir = tempfile.mkdtemp(prefix="sm-ops-plot-")
    redis = s = prom = None
    milters = []
    try:
        redis = smtest.Redis()
        s = smtest.Standin(args=["--seed", SEED])
        ports = [smtest.free_port(), smtest.free_port()]
        for k, p in enumerate(ports):
            milters.append(mta.Milter(s, redis, options={
                "InstanceName": "mx%d" % (k + 1), "MetricsListen": "127.0.0.1:%d" % p,
                "LookupTimeout": "1000", "StripeTimeout": "3000", "StatsInterval": "5"}))
        prom, base = start_prometheus(ports, workdir)
        stop = threading.Event()
        counter = [0]
        t0 = time.time()
        workers = [threading.Thread(target=traffic, args=(milters, stop, counter)) for _ in range(4)]
        for w in workers:
            w.start()
        marks = []
        for name, secs, faults in PHASES:
            s.faults(faults)
            marks.append((name, int(time.time() - t0)))
            print("ops_plot: %-12s %3d s (%d messages so far)" % (name, secs, counter[0]), flush=True)
            time.sleep(secs)
        stop.set()
        for w in workers:
            w.join()
        time.sleep(3)                           # the last scrapes
        t1 = time.time()
        plot(base, int(t0), int(t1), marks, out, workdir)
        print("ops_plot: %d messages; wrote %s" % (counter[0], out))
    finally:
        for x in milters + [s, redis]:
            if x is not None:
                x.stop()
        if prom is not None:
            smtest.stop(prom)
    return 0


if __name__ == "__main__":
    sys.exit(main())
