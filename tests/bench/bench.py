#!/usr/bin/env python3
"""bench.py - `make bench`: what stripe-milter costs per message beside the milters a site
already runs, measured against baselines in the same run with rounds interleaved.

Sections (BENCH_ONLY=warm,tcp,syscalls,cold,prefetch,postfix,resources picks some; default
all):

  warm       milter protocol (tests/bench/mload) on unix sockets: stripe-milter answering from
             its in-process cache (L1) and from Redis (L1 off) against the do-nothing milters
             (null_milter -m same: the same header strip/add work; -m one: one header), at
             concurrency 1, 20 and 200. Figures: msg/s ratio, added p50/p99 latency, daemon
             CPU per message.
  tcp        the same over inet: sockets (stripe-milter and the do-nothing milter both on TCP)
             at concurrency 5 and 20, and stripe-milter inet against its own unix socket.
  syscalls   system calls per message of the do-nothing milter and stripe-milter (L1, Redis),
             counted with strace -f -c (a count, robust to the machine's load).
  cold       the Stripe stand-in answering every request after 100 ms: latency of one lookup
             (concurrency 1), lookups/s and Stripe requests/s under the default limits
             (concurrency 20), and with StripeRateLimit raised (StripeMaxConcurrent caps it).
  prefetch   the same slow Stripe; the body takes 600 ms after the headers: the wait at end
             of message with prefetch, against no slow body and against the do-nothing milter.
  postfix    a private Postfix relaying to smtp-sink, smtp-source sending (BENCH_PF_MSGS, 20
             sessions): accepted msg/s with no milter, the do-nothing milter, stripe-milter warm
             and opendkim verifying a DKIM signature (opendkim from Debian).
  resources  RSS, threads and open files: idle, at 200 open milter connections, and every
             BENCH_BIG/10 messages over BENCH_BIG messages (default 200000; the issue's run is
             BENCH_BIG=1000000) from BENCH_DISTINCT (default 10000) not-found senders, with a
             2000-entry L1 so most lookups are Redis hits.

Knobs: BENCH_ROUNDS (default 5), BENCH_SCALE (message counts x this, default 1),
BENCH_BEFORE=/path/to/an/older/stripe-milter adds it to the warm section as one more target
(before/after figures of a change, measured in the same run).
Every ratio is printed as "median [min-max]" over the per-round ratios; a run in which any
message lacks its expected headers or fails is reported and makes the exit status 1.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", os.path.join(HERE, "..", "..")),
                                "tests", "lib"))
sys.path.insert(0, HERE)
import benchlib as bl  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
BIG = int(os.environ.get("BENCH_BIG", "200000"))
DISTINCT = int(os.environ.get("BENCH_DISTINCT", "10000"))
PF_MSGS = int(os.environ.get("BENCH_PF_MSGS", "1500"))
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
BEFORE = os.environ.get("BENCH_BEFORE")

WARM_FMT = "bench%d@customer.test"
WARM_N = 20                      # warm customers, all cached before measuring
FOUND_HIT = bl.LOOKUP + "found; cache=hit"
PROBLEMS = []
SUMMARY = []


def want(section):
    return not ONLY or section in ONLY


def n_for(conns):
    return max(200, int({1: 1500, 5: 3000}.get(conns, 4000) * SCALE))


def check(name, r):
    if r.get("bad") or r.get("errors"):
        PROBLEMS.append("%s: %d messages without the expected headers, %d failed (%s)"
                        % (name, r.get("bad", 0), r.get("errors", 0), r.get("vals")))


def say(line=""):
    print(line, flush=True)


def summary(line):
    SUMMARY.append(line)
    say("  => " + line)


def milter(standin, redis, socket="unix", binary=None, **opts):
    o = {"LogLevel": "info", "StatsInterval": "10", "CacheL1TTL": "3600", "CacheTTL": "3600"}
    o.update({k: str(v) for k, v in opts.items()})
    if binary is None:
        return mta.Milter(standin, redis, socket=socket, options=o)
    built = mta.binary
    mta.binary = lambda name: binary
    try:
        return mta.Milter(standin, redis, socket=socket, options=o)
    finally:
        mta.binary = built


def msock(m):
    """mload's spelling of a milter's socket."""
    return m.socket if m.socket.startswith("unix:") else "inet:127.0.0.1:%d" % m.port


def interleave(targets, conns, rounds, label, **kw):
    """Runs every target once per round, the order rotating each round; returns
    {name: [result per round]}."""
    res = {name: [] for name in targets}
    names = list(targets)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            sock, pid, expect = targets[name]
            x = bl.mload(sock, conns, n_for(conns), pid=pid, expect=expect, **kw)
            check("%s %s c=%d" % (label, name, conns), x)
            res[name].append(x)
    return res


def ratios(res, name, base, key="rate"):
    return [a[key] / b[key] for a, b in zip(res[name], res[base]) if b[key]]


def diffs(res, name, base, key):
    return [a[key] - b[key] for a, b in zip(res[name], res[base])]


def table(res, conns):
    say("  %-22s %-26s %-22s %-22s %-14s" % ("c=%d" % conns, "msg/s", "p50 ms", "p99 ms",
                                            "CPU ms/msg"))
    for name, runs in res.items():
        say("  %-22s %-26s %-22s %-22s %-14s" % (
            name, bl.spread([x["rate"] for x in runs], "%.0f"),
            bl.spread([x["p50"] for x in runs], "%.3f"), bl.spread([x["p99"] for x in runs], "%.3f"),
            bl.spread([x.get("cpu_ms", 0) for x in runs], "%.3f")))


# ---------------------------------------------------------------------------------------------

def sect_warm(standin, redis):
    say("\n== warm cache: stripe-milter against do-nothing milters (milter protocol, unix socket)")
    say("   %d rounds interleaved; messages per run: %s; %d customers, all cached; 1 forged "
        "X-Stripe- header per message" % (ROUNDS, {c: n_for(c) for c in (1, 20, 200)}, WARM_N))
    l1 = milter(standin, redis)
    rd = milter(standin, redis, CacheL1Entries=0)
    same, one = bl.NullMilter("same"), bl.NullMilter("one")
    before = milter(standin, redis, binary=BEFORE) if BEFORE else None
    try:
        for m in (l1, rd) + ((before,) if before else ()):   # fill Redis and L1; all hits?
            bl.mload(msock(m), 10, WARM_N, distinct=WARM_N, fmt=WARM_FMT)
            r = bl.mload(msock(m), 1, WARM_N, distinct=WARM_N, fmt=WARM_FMT, expect=[FOUND_HIT])
            check("warm-up", r)
        targets = {
            "do-nothing (same work)": (same.socket, same.pid, [bl.LOOKUP + "found"]),
            "do-nothing (1 header)": (one.socket, one.pid, ["X-Null-Milter"]),
            "stripe-milter L1": (msock(l1), l1.proc.pid, [FOUND_HIT]),
            "stripe-milter Redis": (msock(rd), rd.proc.pid, [FOUND_HIT]),
        }
        if before:
            targets["stripe-milter L1 before"] = (msock(before), before.proc.pid, [FOUND_HIT])
        for conns in (1, 20, 200):
            res = interleave(targets, conns, ROUNDS, "warm", distinct=WARM_N, fmt=WARM_FMT)
            table(res, conns)
            base = "do-nothing (same work)"
            for name in [n for n in targets if n.startswith("stripe-milter")]:
                summary("%s c=%d: %sx msg/s of do-nothing (same work), %sx of do-nothing "
                        "(1 header); added latency p50 %s ms, p99 %s ms; CPU %s vs %s ms/msg" % (
                            name, conns, bl.spread(ratios(res, name, base)),
                            bl.spread(ratios(res, name, "do-nothing (1 header)")),
                            bl.spread(diffs(res, name, base, "p50"), "%.3f"),
                            bl.spread(diffs(res, name, base, "p99"), "%.3f"),
                            bl.spread([x["cpu_ms"] for x in res[name]], "%.3f"),
                            bl.spread([x["cpu_ms"] for x in res[base]], "%.3f")))
    finally:
        for x in (l1, rd, same, one) + ((before,) if before else ()):
            x.stop()


def sect_tcp(standin, redis):
    say("\n== TCP: stripe-milter (L1) and the do-nothing milter on inet: sockets")
    l1u = milter(standin, redis)
    l1t = milter(standin, redis, socket="inet")
    same = bl.NullMilter("same", socket="inet")
    try:
        for m in (l1u, l1t):
            bl.mload(msock(m), 10, WARM_N, distinct=WARM_N, fmt=WARM_FMT)
        targets = {
            "do-nothing inet": (same.socket, same.pid, [bl.LOOKUP + "found"]),
            "stripe-milter inet": (msock(l1t), l1t.proc.pid, [FOUND_HIT]),
            "stripe-milter unix": (msock(l1u), l1u.proc.pid, [FOUND_HIT]),
        }
        for conns in (5, 20):
            res = interleave(targets, conns, ROUNDS, "tcp", distinct=WARM_N, fmt=WARM_FMT)
            table(res, conns)
            summary("TCP c=%d: stripe-milter inet %sx msg/s of do-nothing inet; stripe-milter "
                    "inet vs its own unix socket %sx" % (
                        conns, bl.spread(ratios(res, "stripe-milter inet", "do-nothing inet")),
                        bl.spread(ratios(res, "stripe-milter inet", "stripe-milter unix"))))
    finally:
        for x in (l1u, l1t, same):
            x.stop()


class Offsets:
    """Never-used sender numbers, so every cold lookup is a real miss."""

    def __init__(self, start=0):
        self.next = start

    def take(self, n):
        v = self.next
        self.next += n
        return v


def cold_run(standin, m, conns, n, off):
    """One run of n never-seen found customers; returns (mload result, lookups/s, requests/s,
    requests per lookup), the rates over the time Stripe was busy."""
    standin.reset()
    t0 = time.time()
    r = bl.mload(msock(m), conns, n, distinct=n, offset=off, fmt="cold%d@customer.test",
                 expect=["X-Stripe-Lookup"], tally="X-Stripe-Lookup", per_conn=1000, forged=0)
    # lookups that missed the mail's deadline still finish in the background: wait for them
    last, quiet_since = -1, time.time()
    while time.time() - quiet_since < 1.5 and time.time() - t0 < 120:
        c = standin.count()
        if c != last:
            last, quiet_since = c, time.time()
        time.sleep(0.1)
    log = standin.requests()["log"]
    lookups = standin.count("customers")
    end = max((e["time"] + (e.get("ms") or 0) / 1000.0 for e in log), default=t0 + 1)
    secs = max(0.001, end - t0)
    return r, lookups / secs, len(log) / secs, len(log) / float(max(1, lookups))


def sect_cold(standin):
    say("\n== cold lookups: every Stripe request answered after 100 ms, default limits "
        "(StripeRateLimit 20/s, StripeMaxConcurrent 8, LookupTimeout 3000 ms), no Redis")
    rounds = max(2, ROUNDS // 2)
    n1, n20 = max(5, int(10 * SCALE)), max(40, int(100 * SCALE))
    off = Offsets()
    bl.seed_customers(standin, "cold%d@customer.test", rounds * (n1 + n20 + 2 * n20 + 20))
    standin.faults({"*": {"latency_ms": 100}})
    m = milter(standin, None)
    fast = milter(standin, None, StripeRateLimit=1000, StripeRateBurst=1000)
    same = bl.NullMilter("same")
    try:
        one, many, raised, base = [], [], [], []
        for _ in range(rounds):
            base.append(bl.mload(same.socket, 1, n1, distinct=n1, fmt="cold%d@customer.test",
                                 forged=0))
            one.append(cold_run(standin, m, 1, n1, off.take(n1)))
            many.append(cold_run(standin, m, 20, n20, off.take(n20)))
            raised.append(cold_run(standin, fast, 40, 2 * n20, off.take(2 * n20)))
        say("  concurrency 1, %d lookups per round: p50 %s ms, p99 %s ms (do-nothing p50 %s ms); "
            "%s Stripe requests per lookup" % (
                n1, bl.spread([x[0]["p50"] for x in one], "%.0f"),
                bl.spread([x[0]["p99"] for x in one], "%.0f"),
                bl.spread([x["p50"] for x in base], "%.3f"),
                bl.spread([x[3] for x in one], "%.1f")))
        for label, runs, n in (("default limits, concurrency 20", many, n20),
                               ("StripeRateLimit 1000, concurrency 40", raised, 2 * n20)):
            say("  %s, %d lookups per round: mail p50 %s ms, p99 %s ms; %s lookups/s, %s Stripe "
                "requests/s, %s requests per lookup; results %s" % (
                    label, n, bl.spread([x[0]["p50"] for x in runs], "%.0f"),
                    bl.spread([x[0]["p99"] for x in runs], "%.0f"),
                    bl.spread([x[1] for x in runs], "%.1f"), bl.spread([x[2] for x in runs], "%.1f"),
                    bl.spread([x[3] for x in runs], "%.1f"), runs[-1][0].get("vals")))
        summary("cold lookup at 100 ms per Stripe request: p50 %s ms per lookup (concurrency 1); "
                "%s lookups/s under the default limits (mail p50 %s ms); %s lookups/s with "
                "StripeRateLimit 1000" % (
                    bl.spread([x[0]["p50"] for x in one], "%.0f"),
                    bl.spread([x[1] for x in many], "%.1f"),
                    bl.spread([x[0]["p50"] for x in many], "%.0f"),
                    bl.spread([x[1] for x in raised], "%.1f")))
    finally:
        standin.faults({})
        for x in (m, fast, same):
            x.stop()


def sect_prefetch(standin):
    say("\n== prefetch: Stripe at 100 ms per request, a body that takes 600 ms after the "
        "headers; the wait at end of message")
    rounds = max(2, ROUNDS // 2)
    n = max(10, int(20 * SCALE))
    bl.seed_customers(standin, "pre%d@customer.test", rounds * 2 * n)
    standin.faults({"*": {"latency_ms": 100}})
    m = milter(standin, None)
    same = bl.NullMilter("same")
    off = Offsets()
    try:
        slow, fast, base = [], [], []
        for _ in range(rounds):
            kw = dict(fmt="pre%d@customer.test", forged=0, expect=[bl.LOOKUP + "found"],
                      tally="X-Stripe-Lookup")
            base.append(bl.mload(same.socket, 5, n, distinct=n, body_delay_ms=600, **kw))
            o = off.take(n)
            slow.append(bl.mload(msock(m), 5, n, distinct=n, offset=o, body_delay_ms=600, **kw))
            o = off.take(n)
            fast.append(bl.mload(msock(m), 5, n, distinct=n, offset=o, **kw))
            check("prefetch slow body", slow[-1])
            check("prefetch fast body", fast[-1])
        summary("prefetch: end-of-message wait with a 600 ms body p50 %s ms, p99 %s ms "
                "(do-nothing %s ms); without a slow body the wait is the lookup: p50 %s ms" % (
                    bl.spread([x["eom_p50"] for x in slow], "%.1f"),
                    bl.spread([x["eom_p99"] for x in slow], "%.1f"),
                    bl.spread([x["eom_p50"] for x in base], "%.2f"),
                    bl.spread([x["eom_p50"] for x in fast], "%.0f")))
    finally:
        standin.faults({})
        m.stop()
        same.stop()


def strace_count(pid, fn):
    """System calls made by every thread of pid while fn() runs: (total, {name: calls})."""
    if not shutil.which("strace"):
        raise smtest.Unavailable("strace is not installed (apt-get install strace)")
    out = os.path.join(smtest.tempdir("sm-strace-"), "count")
    p = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # strace prints "attached" per thread on stderr once it is in place
    end = time.time() + 10
    while time.time() < end and b"attached" not in p.stderr.read1(4096):
        pass
    try:
        fn()
    finally:
        p.send_signal(2)
        p.wait(30)
    calls = {}
    with open(out) as f:
        for line in f:
            w = line.split()
            if len(w) >= 5 and w[0][0].isdigit() and w[-1] not in ("total",):
                try:
                    calls[w[-1]] = int(w[3])
                except ValueError:
                    pass
    return sum(calls.values()), calls


def sect_syscalls(standin, redis):
    say("\n== system calls per message (strace -f -c on the milter, 1000 messages, concurrency "
        "1 and 20; counts, not timings)")
    l1 = milter(standin, redis)
    rd = milter(standin, redis, CacheL1Entries=0)
    same = bl.NullMilter("same")
    try:
        for m in (l1, rd):
            bl.mload(msock(m), 10, WARM_N, distinct=WARM_N, fmt=WARM_FMT)
        for conns in (1, 20):
            row = {}
            for name, sock, pid in (("do-nothing (same work)", same.socket, same.pid),
                                    ("stripe-milter L1", msock(l1), l1.proc.pid),
                                    ("stripe-milter Redis", msock(rd), rd.proc.pid)):
                n = 1000
                total, calls = strace_count(pid, lambda: bl.mload(
                    sock, conns, n, distinct=WARM_N, fmt=WARM_FMT, per_conn=1000))
                row[name] = total / float(n)
                top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
                say("  c=%-3d %-24s %6.1f per message (%s)" % (
                    conns, name, total / float(n),
                    ", ".join("%s %.1f" % (k, v / float(n)) for k, v in top)))
            summary("system calls per message c=%d: do-nothing %.1f, stripe-milter L1 %.1f, "
                    "Redis %.1f" % (conns, row["do-nothing (same work)"], row["stripe-milter L1"],
                                    row["stripe-milter Redis"]))
    finally:
        for x in (l1, rd, same):
            x.stop()


# ---------------------------------------------------------------------------------------------
# Through Postfix

def dkim_sign(msg, keyfile, domain, selector):
    """msg (str, CRLF lines) signed with rsa-sha256, relaxed/relaxed, using the openssl tool."""
    import base64
    import hashlib
    head, _, body = msg.partition("\r\n\r\n")

    def relax_body(b):
        lines = [re.sub(r"[ \t]+", " ", ln).rstrip(" \t") for ln in b.split("\r\n")]
        while lines and lines[-1] == "":
            lines.pop()
        return "".join(ln + "\r\n" for ln in lines)

    def relax_header(h):
        name, _, value = h.partition(":")
        value = re.sub(r"\r\n[ \t]", " ", value)
        value = re.sub(r"[ \t]+", " ", value).strip()
        return name.strip().lower() + ":" + value

    headers = head.split("\r\n")
    names = [h.split(":", 1)[0] for h in headers]
    bh = base64.b64encode(hashlib.sha256(relax_body(body).encode()).digest()).decode()
    sig = ("v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s; t=%d; h=%s; bh=%s; b="
           % (domain, selector, int(time.time()), ":".join(names), bh))
    data = "".join(relax_header(h) + "\r\n" for h in headers) + relax_header("DKIM-Signature: " + sig)
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", keyfile], input=data.encode(),
                       stdout=subprocess.PIPE, check=True)
    b = base64.b64encode(r.stdout).decode()
    return "DKIM-Signature: " + sig + b + "\r\n" + msg


class OpenDKIM:
    """opendkim in verify mode, reading the signer's public key from a TestDNSData file."""

    def __init__(self, pubtxt_file):
        if not shutil.which("opendkim"):
            raise smtest.Unavailable("opendkim is not installed (apt-get install opendkim "
                                     "opendkim-tools)")
        self.dir = smtest.tempdir("sm-odkim-")
        os.chmod(self.dir, 0o777)
        self.path = os.path.join(self.dir, "odkim.sock")
        self.socket = "unix:" + self.path
        with open(pubtxt_file) as f:
            txt = "".join(re.findall(r'"([^"]*)"', f.read()))
        dns = os.path.join(self.dir, "dns")
        with open(dns, "w") as f:
            f.write("bench._domainkey.customer.test %s\n" % txt)
        conf = os.path.join(self.dir, "opendkim.conf")
        with open(conf, "w") as f:
            f.write("Mode v\nSocket local:%s\nUMask 000\nBackground no\nSyslog no\n"
                    "PidFile %s/pid\nUserID opendkim\nTestDNSData file:%s\n"
                    "AlwaysAddARHeader yes\nAuthservID mx.example.test\n"
                    % (self.path, self.dir, dns))
        self.proc = smtest.spawn(["opendkim", "-f", "-x", conf],
                                 log=os.path.join(self.dir, "opendkim.log"))
        self.pid = self.proc.pid
        end = time.time() + 10
        while time.time() < end and not os.path.exists(self.path):
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(self.path):
            raise RuntimeError("opendkim did not start: %s" % open(
                os.path.join(self.dir, "opendkim.log")).read()[-1000:])

    def stop(self):
        smtest.stop(self.proc)


class Sink:
    """smtp-sink on a free loopback port; with dump_dir it writes each message there."""

    def __init__(self, dump_dir=None):
        if not shutil.which("smtp-sink"):
            raise smtest.Unavailable("smtp-sink is not installed (postfix)")
        self.port = smtest.free_port()
        argv = ["smtp-sink", "-u", "postfix", "-h", "sink.test"]
        if dump_dir:
            argv += ["-d", os.path.join(dump_dir, "%Y%m%d%H/%M.")]
        argv += ["127.0.0.1:%d" % self.port, "256"]
        self.proc = smtest.spawn(argv, log=os.path.join(smtest.tempdir("sm-sink-"), "sink.log"))
        if not smtest.wait_port(self.port, 10):
            raise RuntimeError("smtp-sink did not start")

    def stop(self):
        smtest.stop(self.proc)


def relay_postfix(milter_socket, sink_port, extra=""):
    return mta.Postfix(milter_socket, main_extra=(
        "default_transport = smtp\nrelayhost = [127.0.0.1]:%d\n"
        "smtp_connection_cache_on_demand = yes\nsmtpd_milters = %s\n"
        "milter_connect_timeout = 10s\n%s" % (sink_port, milter_socket or "", extra)))


def queue_empty(pf):
    for d in ("maildrop", "incoming", "active", "deferred", "hold"):
        p = os.path.join(pf.dir, "spool", d)
        for _root, _dirs, files in os.walk(p):
            if files:
                return False
    return True


def wait_drained(pf, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        if queue_empty(pf):
            return True
        time.sleep(0.2)
    return False


def smtp_source(port, n, sessions, msgfile, sender):
    t0 = time.time()
    r = subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(n), "-d", "-f", sender,
                        "-t", "user@sink.test", "-F", msgfile, "-M", "client.example.net",
                        "127.0.0.1:%d" % port], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=3600)
    secs = time.time() - t0
    if r.returncode != 0:
        raise RuntimeError("smtp-source failed: %s" % r.stdout.decode()[-500:])
    return n / secs


def sect_postfix(standin, redis):
    say("\n== through Postfix: smtp-source (%d messages, 20 sessions) -> Postfix -> smtp-sink; "
        "accepted msg/s" % PF_MSGS)
    d = smtest.tempdir("sm-bench-pf-")
    keydir = os.path.join(d, "dkim")
    os.makedirs(keydir)
    subprocess.run(["opendkim-genkey", "-D", keydir, "-d", "customer.test", "-s", "bench"],
                   check=True)
    body = "".join("Line %03d of a plain text message body, as a customer would write it.\r\n" % i
                   for i in range(30))
    msg = ("From: Customer 0 <bench0@customer.test>\r\nTo: <user@sink.test>\r\n"
           "Subject: Question about my invoice\r\nDate: Fri, 27 Nov 2026 18:00:00 +0000\r\n"
           "Message-ID: <bench.1@customer.test>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body)
    msg = dkim_sign(msg, os.path.join(keydir, "bench.private"), "customer.test", "bench")
    msgfile = os.path.join(d, "msg.txt")
    with open(msgfile, "w") as f:
        f.write(msg.replace("\r\n", "\n"))
    sink = Sink()
    sm = milter(standin, redis)
    same = bl.NullMilter("same")
    odk = OpenDKIM(os.path.join(keydir, "bench.txt"))
    pfs = {}
    try:
        bl.mload(msock(sm), 1, 1, distinct=1, fmt=WARM_FMT)      # bench0 cached
        pfs = {"no milter": relay_postfix(None, sink.port),
               "do-nothing (same work)": relay_postfix(same.mta_socket, sink.port),
               "stripe-milter warm": relay_postfix(sm.mta_socket, sink.port),
               "opendkim verify": relay_postfix(odk.socket, sink.port)}
        # one message through opendkim's Postfix with delivery checked: the signature verifies
        chk = verify_dkim_once(odk, msgfile)
        say("  opendkim check on one message: %s" % chk)
        res = {k: [] for k in pfs}
        names = list(pfs)
        rounds = max(2, ROUNDS // 2 + 1)
        for r in range(rounds):
            for name in names[r % 4:] + names[:r % 4]:
                pf = pfs[name]
                res[name].append(smtp_source(pf.port, PF_MSGS, 20, msgfile, "bench0@customer.test"))
                if not wait_drained(pf):
                    PROBLEMS.append("postfix %s: queue not drained" % name)
        for name in names:
            say("  %-24s %s msg/s" % (name, bl.spread(res[name], "%.0f")))
        def rr(a, b):
            return bl.spread([x / y for x, y in zip(res[a], res[b])])
        summary("through Postfix (%d rounds interleaved), accepted msg/s: no milter %s / do-nothing "
                "%s / stripe-milter warm %s / opendkim verify %s; stripe-milter %sx of the "
                "do-nothing milter, %sx of no milter, %sx of opendkim" % (
                    rounds, *(bl.spread(res[n], "%.0f") for n in names),
                    rr("stripe-milter warm", "do-nothing (same work)"),
                    rr("stripe-milter warm", "no milter"), rr("stripe-milter warm", "opendkim verify")))
        if "stripe-milter" in sm.log() and "result=found cache=hit" not in sm.log():
            PROBLEMS.append("postfix: stripe-milter did not answer from its cache")
    finally:
        for pf in pfs.values():
            pf.stop()
        for x in (sink, sm, same, odk):
            x.stop()


def verify_dkim_once(odk, msgfile):
    """Sends the signed message through a Postfix with opendkim delivering to a Maildir and
    returns its Authentication-Results (the bench is only fair if opendkim really verifies)."""
    pf = mta.Postfix(odk.socket, recipients=("user",))
    try:
        with open(msgfile) as f:
            data = f.read().replace("To: <user@sink.test>", "To: <user@example.test>")
        subprocess.run(["smtp-source", "-m", "1", "-f", "bench0@customer.test", "-t",
                        "user@example.test", "-F", "/dev/stdin", "127.0.0.1:%d" % pf.port],
                       input=data.encode(), check=True, stdout=subprocess.DEVNULL)
        got = pf.wait_mail("user", 1, timeout=30)
        if not got:
            PROBLEMS.append("opendkim check: message not delivered")
            return "not delivered"
        ar = mta.hdr(got[0], "Authentication-Results")
        if not any("dkim=pass" in a for a in ar):
            PROBLEMS.append("opendkim check: no dkim=pass (%r)" % ar)
        return "; ".join(a.replace("\n", " ") for a in ar) or "(no Authentication-Results)"
    finally:
        pf.stop()


# ---------------------------------------------------------------------------------------------

def fmt_sample(s):
    return "RSS %6.1f MB, %3d threads, %3d open files" % (s["rss_kb"] / 1024.0, s["threads"],
                                                        s["fds"])


def sect_resources(standin, redis):
    every = max(1, BIG // 10)
    say("\n== resources: stripe-milter with Redis and a 2000-entry L1, %d messages from %d "
        "distinct not-found senders (CacheNegativeTTL 1 day so the run stays on the caches)"
        % (BIG, DISTINCT))
    # The fill makes DISTINCT cold lookups: Stripe and fleet budgets are lifted for it (a
    # not-found lookup also searches, and FleetSearchRateLimit is 5/s by default).
    m = milter(standin, redis, CacheL1Entries=2000, CacheNegativeTTL=86400, CacheL1TTL=30,
               StripeRateLimit=1000, StripeRateBurst=1000, StripeMaxConcurrent=32,
               FleetRateLimit=0, FleetSearchRateLimit=0, LookupTimeout=30000)
    same = bl.NullMilter("same")
    pid = m.proc.pid
    fmt = "nf%d@nowhere.test"
    at200 = {"rss_kb": 0, "threads": 0, "fds": 0}
    try:
        time.sleep(1.0)         # the daemon's own start-up threads settle
        idle = bl.proc_sample(pid)
        say("  idle:                         %s   (do-nothing milter: %s)" % (
            fmt_sample(idle), fmt_sample(bl.proc_sample(same.pid))))
        t0 = time.time()
        r = bl.mload(msock(m), 20, DISTINCT, distinct=DISTINCT, fmt=fmt, forged=0,
                     expect=[bl.LOOKUP + "not-found"], per_conn=1000, timeout_s=300)
        check("resources fill", r)
        say("  %d cold not-found lookups (filling Redis): %.0f s, %.0f/s; %s" % (
            DISTINCT, time.time() - t0, r["rate"], fmt_sample(bl.proc_sample(pid))))
        for name, target, tpid in (("stripe-milter", msock(m), pid),
                                   ("do-nothing", same.socket, same.pid)):
            for kind, f in bl.mload_stream(target, 200, 2000, distinct=DISTINCT, fmt=fmt, hold_s=3,
                                           forged=0, per_conn=1000):
                if kind == "HOLDING":
                    time.sleep(0.5)
                    s = bl.proc_sample(tpid)
                    say("  200 open connections (%s): %s" % (name, fmt_sample(s)))
                    if name == "stripe-milter":
                        at200 = s
                elif kind == "RESULT":
                    check("resources 200 connections %s" % name, f)
        series = []
        for kind, f in bl.mload_stream(msock(m), 20, BIG, distinct=DISTINCT, fmt=fmt, forged=0,
                                       progress=every, per_conn=1000,
                                       expect=[bl.LOOKUP + "not-found"],
                                       tally="X-Stripe-Lookup"):
            if kind == "PROGRESS":
                s = bl.proc_sample(pid)
                s["msgs"], s["secs"] = int(f[0]), float(f[1])
                series.append(s)
                prev = series[-2] if len(series) > 1 else {"msgs": 0, "secs": 0.0}
                say("  %8d messages %7.1f s: %s  (%.0f msg/s)" % (
                    s["msgs"], s["secs"], fmt_sample(s),
                    (s["msgs"] - prev["msgs"]) / max(0.001, s["secs"] - prev["secs"])))
            elif kind == "RESULT":
                check("resources big run", f)
                say("  run: %.0f msg/s, p50 %.2f ms, p99 %.2f ms, results %s" % (
                    f["rate"], f["p50"], f["p99"], f.get("vals")))
        time.sleep(2.0)
        after = bl.proc_sample(pid)
        say("  idle after the run:           %s" % fmt_sample(after))
        half = series[len(series) // 2:]
        sl = bl.slope([x["msgs"] for x in half], [x["rss_kb"] / 1024.0 for x in half]) * 100000
        summary("resources: idle %s; at 200 connections %s; over %d messages RSS %s MB "
                "(slope over the second half %+.2f MB per 100k messages), threads %s, open files "
                "%s; idle after %s" % (
                    fmt_sample(idle), fmt_sample(at200), BIG,
                    "/".join("%.1f" % (x["rss_kb"] / 1024.0) for x in series), sl,
                    "/".join(str(x["threads"]) for x in series),
                    "/".join(str(x["fds"]) for x in series), fmt_sample(after)))
    finally:
        m.stop()
        same.stop()


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = open("/proc/loadavg").read().split()[:3]
    return "%d CPUs (%s), load average %s, %s" % (os.cpu_count() or 0, cpu, " ".join(load),
                                                   time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def main():
    say("stripe-milter benchmarks: %s" % machine())
    say("rounds %d, scale %g%s" % (ROUNDS, SCALE, ", sections " + ",".join(ONLY) if ONLY else ""))
    t0 = time.time()
    try:
        bl.tool("mload")
        standin = smtest.Standin()
        redis = smtest.Redis()
    except smtest.Unavailable as e:
        say("bench: skipped: %s" % e)
        return 77 if os.environ.get("CI") != "true" else 1
    try:
        bl.seed_customers(standin, WARM_FMT, WARM_N)
        for name, fn, args in (("warm", sect_warm, (standin, redis)),
                               ("tcp", sect_tcp, (standin, redis)),
                               ("syscalls", sect_syscalls, (standin, redis)),
                               ("cold", sect_cold, (standin,)),
                               ("prefetch", sect_prefetch, (standin,)),
                               ("postfix", sect_postfix, (standin, redis)),
                               ("resources", sect_resources, (standin, redis))):
            if want(name):
                try:
                    fn(*args)
                except smtest.Unavailable as e:
                    say("  %s: skipped: %s" % (name, e))
                    if os.environ.get("CI") == "true":
                        PROBLEMS.append("%s skipped under CI: %s" % (name, e))
    finally:
        standin.stop()
        redis.stop()
    say("\n== summary (%.0f s; ratios are median [min-max] over interleaved rounds)"
        % (time.time() - t0))
    for line in SUMMARY:
        say("  " + line)
    if mta.SANITIZER_REPORTS:
        PROBLEMS.append("sanitizer reports: %s" % mta.SANITIZER_REPORTS[0][:500])
    for p in PROBLEMS:
        say("PROBLEM: " + p)
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
