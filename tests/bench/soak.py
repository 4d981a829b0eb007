#!/usr/bin/env python3
"""soak.py - `make soak`: stripe-milter behind a private Postfix for a bounded time, with the
trouble a mail host meets, checking that mail flows, every message is delivered exactly
once, and the daemon's resources stay flat.

What it does (SOAK_SECONDS, default 600; CI may run SOAK_SECONDS=120):
  * 50 concurrent SMTP sessions (SOAK_SESSIONS) send through Postfix at about SOAK_RATE
    (default 30) messages/s in all, each message with a unique Message-ID and a forged
    X-Stripe-Lookup header; senders are mixed: 80% customers already cached (hits), 10%
    customers never seen before (misses, looked up in the Stripe stand-in), 10% addresses
    Stripe does not know (not-found, from 3000, so some repeat); the new lookups stay under
    the default StripeRateLimit (20 requests/s) as on a real support address;
  * Stripe (the stand-in) fails every 10th request with a 500 throughout, and one request
    hangs for 30 s (at 45% of the run);
  * Redis is killed and started again (at 25%);
  * the Stripe key is rotated (at 65%): the new key is written to the key file, SIGUSR1; the
    old key is revoked at the stand-in GRACE (15) s later (lookups started before the reload
    keep the configuration they started with: LookupTimeout + StripeTimeout bound them);
    no request may use the old key after that;
  * RSS, open files and threads of stripe-milter are sampled every SOAK_SAMPLE (10) s and
    printed as a series with a slope. The in-process cache is capped at SOAK_L1_ENTRIES
    (1000) entries so that it is full early in the run: below its cap L1 grows by design
    (it keeps expired entries as stale candidates), which is not a leak.
Passes when: every message Postfix accepted was delivered exactly once (by Message-ID in
the Maildir), none refused, each carries exactly one X-Stripe-Lookup (the forged one
stripped), the old key was not used after the grace, Postfix logged no error, RSS, open
files and threads in the last quarter of the run (after every event) stay within the
first half's range (RSS: +10% + 2 MB; threads +4; open files +26, the Redis pools and two
generations of Stripe connections around the key rotation), RSS and threads do not grow
within it (median of its last third against its first third: +2 MB, +4), and once Postfix
is stopped the daemon is back to its idle threads (+4) and open files (+26).
Exit status 0 on pass, 1 on failure, 77 when a needed program is missing (1 under CI=true).
"""
import os
import random
import re
import signal
import smtplib
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", os.path.join(HERE, "..", "..")),
                                "tests", "lib"))
sys.path.insert(0, HERE)
import benchlib as bl  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
SESSIONS = int(os.environ.get("SOAK_SESSIONS", "50"))
RATE = float(os.environ.get("SOAK_RATE", "30"))
SAMPLE = float(os.environ.get("SOAK_SAMPLE", "10"))
OLD_KEY, NEW_KEY = "sk_test_soakold", "sk_test_soaknew"
HITS, MISSES = 50, 20000
GRACE = 15.0
# L1 keeps every entry (expired ones as stale candidates, for when Stripe fails) until its
# cap evicts the least recently used: RSS grows with distinct senders until then, by design.
# A soak looks for leaks, so its caches must reach their caps early: 1000 entries fill in
# about three minutes at the default mix (the default 10000 would take hours).
L1_ENTRIES = int(os.environ.get("SOAK_L1_ENTRIES", "1000"))
# Connections that may stay open after an event: the Redis pool (RedisPoolSize 8), the
# plan-name cache's 2, and the Stripe client's connections (up to StripeMaxConcurrent 8)
# for two generations of the client around a key rotation (measured: 4 -> 11 -> 12 -> 12
# Stripe connections over three rotations in a row; bounded, not growing per rotation).
POOLS = 8 + 2 + 2 * 8


def say(s=""):
    print(s, flush=True)


def ten_percent_failing(extra=()):
    """Fault rules: every 10th Stripe request answers 500 (rules count every request)."""
    rules = list(extra) + [{"status": 500, "after": 9 + 10 * k, "times": 1} for k in range(6000)]
    return {"*": rules}


class Sender:
    """The SMTP sessions. Each keeps one connection and paces itself to RATE/SESSIONS msg/s."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted = set()
        self.refused = []
        self.miss_next = 0
        self.seq = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(SESSIONS)]

    def next_message(self, rng):
        with self.lock:
            self.seq += 1
            n = self.seq
            x = rng.random()
            if x < 0.8:
                sender = "hit%d@customer.test" % rng.randrange(HITS)
            elif x < 0.9 and self.miss_next < MISSES:
                sender = "miss%d@customer.test" % self.miss_next
                self.miss_next += 1
            else:
                sender = "nf%d@nowhere.test" % rng.randrange(3000)
        mid = "<soak.%d.%d@client.test>" % (os.getpid(), n)
        msg = ("From: Someone <%s>\r\nTo: Support <support@example.test>\r\n"
               "Subject: soak %d\r\nMessage-ID: %s\r\nDate: %s\r\n"
               "X-Stripe-Lookup: found; forged=yes\r\n\r\nMessage %d of the soak.\r\n"
               % (sender, n, mid, time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), n))
        return sender, mid, msg

    def run(self, i):
        rng = random.Random(i)
        gap = SESSIONS / RATE
        conn = None
        while not self.stop.is_set():
            t0 = time.time()
            sender, mid, msg = self.next_message(rng)
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", self.port, timeout=120)
                    conn.ehlo("client%d.example.net" % i)
                conn.sendmail(sender, ["support@example.test"], msg)
                with self.lock:
                    self.accepted.add(mid)
            except (smtplib.SMTPException, OSError) as e:
                with self.lock:
                    self.refused.append("%s: %s" % (mid, e))
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            left = gap * rng.uniform(0.5, 1.5) - (time.time() - t0)
            if left > 0:
                self.stop.wait(left)
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(300)


def delivered(pf):
    """{Message-ID: count} and {X-Stripe-Lookup first word: count} of delivered messages."""
    ids, looks = {}, {}
    d = os.path.join(pf.mail, "support", "new")
    for name in os.listdir(d) if os.path.isdir(d) else []:
        with open(os.path.join(d, name), "rb") as f:
            head = mta.header_block(f.read())
        mid, look = None, []
        for k, v in mta.headers(head):
            if k.lower() == "message-id":
                mid = v.strip()
            elif k.lower() == "x-stripe-lookup":
                items = [x.strip() for x in v.split(";")]
                if items and items[0].startswith("v="):     # header contract version
                    items = items[1:]
                look.append(items[0] if items else "")
        ids[mid] = ids.get(mid, 0) + 1
        key = ",".join(look) if look else "(none)"
        looks[key] = looks.get(key, 0) + 1
    return ids, looks


def results_series(log, t0):
    """(found, not-found, timeout, other) per SAMPLE seconds from the milter's log lines."""
    import calendar
    out = {}
    for line in log.splitlines():
        mt = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z .* result=(\S+)", line)
        if not mt:
            continue
        t = calendar.timegm(time.strptime(mt.group(1), "%Y-%m-%dT%H:%M:%S")) + \
            float(mt.group(2) or 0)
        if t < t0:
            continue
        b = out.setdefault(int((t - t0) // SAMPLE), [0, 0, 0, 0])
        r = mt.group(3)
        b[0 if r == "found" else 1 if r == "not-found" else 2 if r == "error=timeout" else 3] += 1
    return [tuple(out.get(i, [0, 0, 0, 0])) for i in range(max(out) + 1 if out else 0)]


def main():
    failures = []
    try:
        redis = smtest.Redis()
        standin = smtest.Standin()
    except smtest.Unavailable as e:
        say("soak: skipped: %s" % e)
        return 1 if os.environ.get("CI") == "true" else 77
    m = pf = None
    try:
        standin.state({"keys": {OLD_KEY: {}, NEW_KEY: {}}, "strict_keys": True})
        bl.seed_customers(standin, "hit%d@customer.test", HITS)
        bl.seed_customers(standin, "miss%d@customer.test", min(MISSES, int(RATE * SECONDS * 0.25)))
        m = mta.Milter(standin, redis, key=OLD_KEY,
                       options={"LogLevel": "info", "StatsInterval": "10",
                                "CacheL1Entries": str(L1_ENTRIES)})
        pf = mta.Postfix(m.mta_socket, recipients=("support",))
        # warm the hits, with Stripe still healthy
        r = bl.mload(m.socket, 5, HITS, distinct=HITS, fmt="hit%d@customer.test", forged=0,
                     tally="X-Stripe-Lookup")
        say("soak: %d s, %d sessions, ~%.0f msg/s; hits warmed (%s)" % (SECONDS, SESSIONS, RATE,
                                                                         r.get("vals")))
        standin.faults(ten_percent_failing())
        idle = bl.proc_sample(m.proc.pid)
        s = Sender(pf.port)
        samples = []
        t0 = time.time()
        events = [(0.25, "redis"), (0.45, "hang"), (0.65, "rotate")]
        s.start()
        next_sample = t0
        reload_at = None
        while time.time() - t0 < SECONDS:
            now = time.time()
            if now >= next_sample:
                x = bl.proc_sample(m.proc.pid)
                x["t"] = now - t0
                with s.lock:
                    x["sent"] = len(s.accepted)
                samples.append(x)
                say("  t=%5.0f s  sent %6d  RSS %6.1f MB  threads %3d  open files %3d" % (
                    x["t"], x["sent"], x["rss_kb"] / 1024.0, x["threads"], x["fds"]))
                next_sample += SAMPLE
            while events and now - t0 >= events[0][0] * SECONDS:
                _, ev = events.pop(0)
                if ev == "redis":
                    say("  t=%5.0f s  Redis killed" % (now - t0))
                    redis.kill()
                    time.sleep(3)
                    redis.start()
                    say("  t=%5.0f s  Redis started again" % (time.time() - t0))
                elif ev == "hang":
                    standin.faults(ten_percent_failing([{"hang": True, "hang_s": 30, "times": 1}]))
                    say("  t=%5.0f s  Stripe: the next request hangs for 30 s" % (now - t0))
                elif ev == "rotate":
                    with open(m.keyfile, "w") as f:
                        f.write(NEW_KEY + "\n")
                    tail = m.reload({})
                    reload_at = time.time()
                    events.insert(0, ((reload_at - t0 + GRACE) / SECONDS, "revoke"))
                    line = [ln for ln in tail.splitlines() if "reload" in ln] or ["(no log line)"]
                    say("  t=%5.0f s  key rotated, SIGUSR1: %s" % (reload_at - t0, line[-1][:140]))
                elif ev == "revoke":
                    standin.add({"keys": {OLD_KEY: {"revoked": True}}})
                    say("  t=%5.0f s  old key revoked at the stand-in" % (now - t0))
            time.sleep(0.2)
        s.finish()
        sent_secs = time.time() - t0
        t0_wall = t0
        say("soak: senders stopped after %.0f s: %d accepted, %d refused" % (
            sent_secs, len(s.accepted), len(s.refused)))
        # every accepted message must arrive: wait for the count (deadline, not a sleep)
        end = time.time() + 180
        ids, looks = delivered(pf)
        while time.time() < end and sum(ids.values()) < len(s.accepted):
            time.sleep(1)
            ids, looks = delivered(pf)
        dup = [k for k, v in ids.items() if v > 1]
        lost = s.accepted - set(ids)
        extra = set(ids) - s.accepted
        say("delivered: %d messages, %d distinct Message-IDs; lost %d, duplicated %d, not "
            "confirmed to the client %d" % (sum(ids.values()), len(ids), len(lost), len(dup),
                                            len(extra)))
        say("X-Stripe-Lookup results: %s" % ", ".join("%s %d" % kv for kv in sorted(looks.items())))
        say("results per %.0f s (from the milter's log), found/not-found/timeout/other:" % SAMPLE)
        say("  " + " ".join("%d/%d/%d/%d" % b for b in results_series(m.log(), t0_wall)))
        if lost:
            failures.append("%d accepted messages not delivered, e.g. %s" % (len(lost), sorted(lost)[:3]))
        if dup:
            failures.append("%d messages delivered more than once, e.g. %s" % (len(dup), dup[:3]))
        if s.refused:
            failures.append("%d messages refused, e.g. %s" % (len(s.refused), s.refused[:3]))
        if extra:
            failures.append("%d delivered messages the client saw fail: %s" % (len(extra), sorted(extra)[:3]))
        if looks.get("(none)"):
            failures.append("%d messages without X-Stripe-Lookup" % looks["(none)"])
        if any("," in k for k in looks):
            failures.append("messages with two X-Stripe-Lookup headers (a forged one kept): %s"
                            % [k for k in looks if "," in k])
        # the old key after the reload
        if reload_at is None:
            failures.append("the key was never rotated")
        else:
            log = standin.requests()["log"]
            def old_key(e):
                return OLD_KEY in str(e.get("headers", {}).get("Authorization", ""))
            seen = [e for e in log if e["time"] > reload_at + GRACE]
            old = [e for e in seen if old_key(e)]
            late = [e["time"] - reload_at for e in log if e["time"] > reload_at and old_key(e)]
            say("Stripe requests more than %.0f s after the reload (in the stand-in's last "
                "10000): %d, with the old key: %d (old key last used %.1f s after the reload)"
                % (GRACE, len(seen), len(old), max(late) if late else 0.0))
            if old:
                failures.append("%d Stripe requests used the old key after the reload" % len(old))
            if not seen:
                failures.append("no Stripe request after the reload: rotation untested")
        # resources: series, slope, flatness
        def series(key, scale=1.0, fmt="%.0f"):
            return " ".join(fmt % (x[key] * scale) for x in samples)
        say("RSS MB:      " + series("rss_kb", 1 / 1024.0, "%.1f"))
        say("threads:     " + series("threads"))
        say("open files:  " + series("fds"))
        first = samples[:len(samples) // 2]
        second = samples[len(samples) // 2:]
        last = samples[len(samples) * 3 // 4:]
        if len(first) < 2 or len(last) < 2:
            failures.append("too few samples (%d) for a flatness check" % len(samples))
        else:
            ts = [x["t"] / 60.0 for x in second]
            say("slope over the second half: RSS %+.3f MB/min, threads %+.2f/min, open files "
                "%+.2f/min" % (bl.slope(ts, [x["rss_kb"] / 1024.0 for x in second]),
                               bl.slope(ts, [x["threads"] for x in second]),
                               bl.slope(ts, [x["fds"] for x in second])))
            rss1 = max(x["rss_kb"] for x in first) / 1024.0
            rss2 = max(x["rss_kb"] for x in last) / 1024.0
            if rss2 > rss1 * 1.10 + 2.0:
                failures.append("RSS grew: first half max %.1f MB, last quarter max %.1f MB"
                                % (rss1, rss2))
            # connection pools may fill after an event (Redis back, a hung Stripe connection
            # replaced): open files may grow by RedisPoolSize + StripeMaxConcurrent, once
            for key, name, room in (("fds", "open files", POOLS), ("threads", "threads", 4)):
                a, b = max(x[key] for x in first), max(x[key] for x in last)
                if b > a + room:
                    failures.append("%s grew: first half max %d, last quarter max %d" % (name, a, b))
            # still growing within the last quarter (after every event): RSS and threads.
            # Open files step up when a pool fills (+6 at once when the rotated Stripe client
            # opened more connections in a burst): bounded by POOLS above and at idle below.
            for key, name, room in (("rss_kb", "RSS (KB)", 2048), ("threads", "threads", 4)):
                k = max(1, len(last) // 3)
                head = sorted(x[key] for x in last[:k])[k // 2]
                tail = sorted(x[key] for x in last[-k:])[k // 2]
                if tail > head + room:
                    failures.append("%s still growing at the end: %s" % (
                        name, " ".join(str(x[key]) for x in last)))
        errs = [ln for ln in pf.log().splitlines() if " error:" in ln or " fatal:" in ln or
                "panic:" in ln]
        if errs:
            failures.append("Postfix logged errors: %s" % errs[:3])
        # with Postfix gone every milter connection is closed: back to the idle figures
        # (Redis pool and Stripe connections may stay open: RedisPoolSize + StripeMaxConcurrent)
        pf.stop()
        pf = None
        end = time.time() + 30
        while True:
            after = bl.proc_sample(m.proc.pid)
            ok = after["fds"] <= idle["fds"] + POOLS and after["threads"] <= idle["threads"] + 4
            if ok or time.time() > end:
                break
            time.sleep(0.5)
        say("idle before: RSS %.1f MB, %d threads, %d open files; idle after: RSS %.1f MB, %d "
            "threads, %d open files" % (idle["rss_kb"] / 1024.0, idle["threads"], idle["fds"],
                                        after["rss_kb"] / 1024.0, after["threads"], after["fds"]))
        if not ok:
            failures.append("not back to idle after the run: %d threads, %d open files "
                            "(idle before: %d, %d)" % (after["threads"], after["fds"],
                                                        idle["threads"], idle["fds"]))
    finally:
        if pf is not None:
            pf.stop()
        if m is not None:
            m.stop()
        standin.stop()
        redis.stop()
    if mta.SANITIZER_REPORTS:
        failures.append("sanitizer reports: %s" % mta.SANITIZER_REPORTS[0][:300])
    for f in failures:
        say("FAIL: " + f)
    say("soak: %s" % ("PASS" if not failures else "FAIL"))
    return 0 if not failures else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
