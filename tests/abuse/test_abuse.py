#!/usr/bin/env python3
"""test_abuse.py - `make check-abuse`: the webhook and metrics listeners of a running daemon
under attack from one client (issue 22), loopback only, each attack bounded.

One daemon (MetricsListen, WebhookListen, MetricsFile), a private redis-server and the Stripe
stand-in. While each attack runs, the legitimate work goes on from 127.0.0.1: mail through the
milter protocol, signed webhook deliveries (a subscription's status flipped in the stand-in and
its event delivered signed, as Stripe does), and scrapes of /metrics. The attacker is 127.0.0.2
(Linux routes all of 127.0.0.0/8 on lo), so "one client" is one address.

Attacks, against both listeners:
  slow     ABUSE_CONNS_SLOW (200) connections sending a header byte every second, reopened
           when closed, for ABUSE_SECONDS;
  idle     ABUSE_CONNS_IDLE (500) connections that send nothing, reopened when closed;
  flood    bad requests at full speed over kept-alive connections (webhook: 100,000 with
           wrong signatures; metrics: POSTs);
  bodies   Content-Length 10 GiB and 18446744073709551615 (answered 413 from the headers
           while the client sends no body: refused without reading it), a chunked body that
           never ends (411), a body trickled past the request deadline (closed);
  headers  a 100 KB header line and 5,000 headers (answered 4xx or closed by MHD).

Checked: >= 95% of the signed deliveries answered 200 and applied (the next message shows the
last status), >= 95% of scrapes answered; every message got its X-Stripe-Lookup within the
lookup deadline (no error=timeout); the counters show the attack; the daemon's log grew by
less than 1 MB over the 100,000-request flood; descriptors and RSS come back to their
baseline once the attack's connections are gone. The figures are printed as "# figure" lines.

ABUSE_SECONDS (default 45) bounds each slow/idle attack; .ci/run sets it (see there).
Sleeps here pace a stream (mail, deliveries, scrapes, the attacker's trickle) or are the
attack itself; every state is waited for with smtest.wait_for.
"""
import atexit
import hashlib
import hmac
import json
import os
import re
import resource
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import milterclient  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

SECRET = "whsec_abuse_test_secret_0123456789"
ATTACKER = "127.0.0.2"
# an attack must outlast the request deadline (WebhookRequestTimeout 10 s) to be cut by it
SECONDS = max(12.0, float(os.environ.get("ABUSE_SECONDS", "45")))
N_SLOW = int(os.environ.get("ABUSE_CONNS_SLOW", "200"))
N_IDLE = int(os.environ.get("ABUSE_CONNS_IDLE", "500"))
N_FLOOD = int(os.environ.get("ABUSE_FLOOD", "100000"))


def figure(t, text):
    t.diag("figure: " + text)


# ---- the daemon's resources --------------------------------------------------------------

def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def listener_fds(pid, ports):
    """Descriptors of pid that are connections accepted on one of ports (not the listening
    sockets): what an attack on the listeners holds."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[9] in inodes and int(f[1].split(":")[1], 16) in ports and f[3] != "0A":
                n += 1
    return n


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def logsize(m):
    """Size of the daemon's log, through its own descriptor (stderr is the log file)."""
    return os.stat("/proc/%d/fd/2" % m.proc.pid).st_size


def logtext(m, start):
    with open("/proc/%d/fd/2" % m.proc.pid, errors="replace") as f:
        f.seek(start)
        return f.read()


# ---- legitimate work -----------------------------------------------------------------------

class Legit:
    """Mail, signed deliveries and scrapes from 127.0.0.1 until stop()."""

    def __init__(self, s, m, sub, url, metrics_addr):
        # the deliveries change hook@example.com's subscription, the mail stream is from
        # pay@example.com: a lookup of hook@ in flight while an event purges its entry could
        # store the old status again (fleet/fl_inval.c, known limits), so only the final
        # check looks hook@ up
        self.s, self.m, self.sub, self.url, self.maddr = s, m, sub, url, metrics_addr
        self.stop_ev = threading.Event()
        self.deliveries = []    # (status, body)
        self.scrapes = []       # bool
        self.mail = []          # (seconds, X-Stripe-Lookup)
        self.status = "active"
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._mail, self._hooks, self._scrape)]

    def start(self):
        for th in self.threads:
            th.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for th in self.threads:
            th.join(60)

    def _mail(self):
        while not self.stop_ev.is_set():
            t0 = time.monotonic()
            try:
                h = milterclient.message(self.m.socket, "<pay@example.com>", from_="Pay <pay@example.com>",
                                         timeout=30)
                self.mail.append((time.monotonic() - t0, h.get("X-Stripe-Lookup", "")))
            except Exception as e:  # a failure is a result: counted, not raised
                self.mail.append((time.monotonic() - t0, "exception: %s" % e))
            self.stop_ev.wait(0.2)     # paces the mail stream

    def _hooks(self):
        while not self.stop_ev.is_set():
            with self.lock:
                new = "past_due" if self.status == "active" else "active"
            ev = {"type": "customer.subscription.updated", "object_id": self.sub,
                  "update": {"status": new}, "previous_attributes": {"status": self.status},
                  "webhook": {"url": self.url, "secret": SECRET}}
            try:
                res = self.s.admin("POST", "/_standin/events", ev)["delivery"]
            except Exception as e:
                res = {"status": 0, "body": str(e)}
            with self.lock:
                self.status = new       # the stand-in changed it, whatever the delivery did
                self.deliveries.append((res["status"], res["body"].strip()))
            self.stop_ev.wait(0.5)     # paces the deliveries

    def _scrape(self):
        while not self.stop_ev.is_set():
            try:
                st, _, _ = smtest.http_call("http://" + self.maddr, "GET", "/metrics", timeout=5)
                self.scrapes.append(st == 200)
            except OSError:
                self.scrapes.append(False)
            self.stop_ev.wait(0.5)     # paces the scrapes (Prometheus: every scrape_interval)


# ---- the attacker ----------------------------------------------------------------------------

def attacker_socket(port):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setblocking(False)
    c.bind((ATTACKER, 0))
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    return c


def hold(port, n, seconds, trickle):
    """Keeps n connections from ATTACKER open for `seconds`, reopening closed ones every
    half second; with trickle, sends one header byte a second on each. Returns (opened,
    closed by the server)."""
    sel = selectors.DefaultSelector()
    socks = set()
    opened = closed = 0
    head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: " if trickle else b""
    sent = {}
    end = time.monotonic() + seconds
    next_tick = 0.0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_tick:
            next_tick = now + 0.5
            while len(socks) < n:
                try:
                    c = attacker_socket(port)
                except OSError:
                    break
                socks.add(c)
                sent[c] = 0
                sel.register(c, selectors.EVENT_READ)
                opened += 1
            if trickle:
                for c in list(socks):
                    if sent[c] < len(head) or int(now * 2) % 2 == 0:
                        try:
                            c.send(head[sent[c]:sent[c] + 1] if sent[c] < len(head) else b"a")
                            sent[c] += 1
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            pass    # seen as closed by the read below
        for key, _ in sel.select(timeout=max(0.0, min(next_tick, end) - time.monotonic())):
            c = key.fileobj
            try:
                data = c.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c)
                c.close()
                socks.discard(c)
                closed += 1
    for c in socks:
        sel.unregister(c)
        c.close()
    sel.close()
    return opened, closed


def signed(body, secret=SECRET, ts=None):
    ts = ts or int(time.time())
    mac = hmac.new(secret.encode(), (str(ts) + ".").encode() + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (ts, mac)


def flood(port, n, request, conns=4):
    """n requests (bytes) at full speed from ATTACKER over `conns` kept-alive connections;
    returns {status: count} (0 = the connection closed before an answer)."""
    out = {}
    lock = threading.Lock()
    per = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]

    def one(k):
        got = {}
        c = None
        buf = b""
        i = 0
        while i < k:
            if c is None:
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                c.bind((ATTACKER, 0))
                c.settimeout(30)
                c.connect(("127.0.0.1", port))
                buf = b""
            try:
                c.sendall(request)
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        raise ConnectionResetError
                    buf += d
                hdr, _, rest = buf.partition(b"\r\n\r\n")
                st = int(hdr.split(b" ", 2)[1])
                clen = 0
                for line in hdr.split(b"\r\n")[1:]:
                    k2, _, v = line.partition(b":")
                    if k2.strip().lower() == b"content-length":
                        clen = int(v)
                while len(rest) < clen:
                    d = c.recv(65536)
                    if not d:
                        raise ConnectionResetError
                    rest += d
                buf = rest[clen:]
                got[st] = got.get(st, 0) + 1
                if b"connection: close" in hdr.lower():
                    c.close()
                    c = None
            except OSError:
                got[0] = got.get(0, 0) + 1
                if c:
                    c.close()
                c = None
            i += 1
        if c:
            c.close()
        with lock:
            for k2, v in got.items():
                out[k2] = out.get(k2, 0) + v

    ths = [threading.Thread(target=one, args=(k,)) for k in per]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return out


def raw(port, data, read_timeout=10.0):
    """Sends data from ATTACKER, reads until close or the status line and headers are in;
    returns the status (0: closed without one)."""
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.bind((ATTACKER, 0))
    c.settimeout(read_timeout)
    c.connect(("127.0.0.1", port))
    buf = b""
    try:
        try:
            c.sendall(data)
        except OSError:
            pass    # the server may answer and close before taking all of it
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                break
            buf += d
    except OSError:
        pass
    finally:
        c.close()
    try:
        return int(buf.split(b" ", 2)[1]) if buf.startswith(b"HTTP/") else 0
    except (IndexError, ValueError):
        return 0


# ---- the test ----------------------------------------------------------------------------------

class World:
    pass


def ctr(w, name):
    return smtest.metrics(w.maddr)[1].get(name, 0)


def settle(t, w, what):
    """Waits for the attack's connections to be gone, then compares FDs and RSS with the
    baseline."""
    def quiet():
        m = smtest.metrics(w.maddr)[1]
        return (m.get('stripe_milter_http_connections{listener="webhook"}', 99) <= 0 and
                m.get('stripe_milter_http_connections{listener="metrics"}', 99) <= 1)
    smtest.wait_for(quiet, timeout=60, what="the attack's connections to close")
    try:
        smtest.wait_for(lambda: listener_fds(w.pid, (w.wport, w.mport)) == 0, timeout=30,
                        what="the listeners' connections to be closed")
    except AssertionError:
        pass    # judged just below
    n = listener_fds(w.pid, (w.wport, w.mport))
    f, r = fds(w.pid), rss_kb(w.pid)
    figure(t, "%s: after it, %d descriptors (baseline %d; %d on the listeners), RSS %d KiB (baseline %d KiB, +%d)"
           % (what, f, w.fd0, n, r, w.rss0, r - w.rss0))
    t.is_(n, 0, "%s: no connection of the listeners left open" % what)
    # the rest may grow by the pools legitimate work fills (Redis: RedisPoolSize 8; Stripe's
    # kept-alive connections), not by the attack
    t.ok(f <= w.fd0 + 8, "%s: descriptors back to the baseline, give or take the Redis and Stripe pools "
         "(%d, baseline %d)" % (what, f, w.fd0))
    t.ok(r <= w.rss0 + 32 * 1024, "%s: RSS within 32 MiB of the baseline (%d KiB, baseline %d KiB)"
         % (what, r, w.rss0))


def judge(t, w, lg, what):
    d = lg.deliveries
    ok = sum(1 for st, body in d if st == 200)
    sc = sum(1 for x in lg.scrapes if x)
    timeouts = [x for x in lg.mail if "error=timeout" in x[1] or x[1].startswith("exception")
                or not x[1]]
    worst = max((x[0] for x in lg.mail), default=0.0)
    figure(t, "%s: deliveries %d/%d applied (%.1f%%), scrapes %d/%d answered (%.1f%%), "
           "messages %d (slowest %.2f s, %d without a lookup result)"
           % (what, ok, len(d), 100.0 * ok / max(1, len(d)), sc, len(lg.scrapes),
              100.0 * sc / max(1, len(lg.scrapes)), len(lg.mail), worst, len(timeouts)))
    t.ok(len(d) >= 1 and ok >= 0.95 * len(d), "%s: >= 95%% of signed deliveries applied (%d/%d; %s)"
         % (what, ok, len(d), sorted(set(d))[:4]))
    t.ok(len(lg.scrapes) >= 1 and sc >= 0.95 * len(lg.scrapes), "%s: >= 95%% of scrapes answered (%d/%d)"
         % (what, sc, len(lg.scrapes)))
    t.ok(lg.mail and not timeouts, "%s: every message got its lookup within LookupTimeout (%d, %s)"
         % (what, len(lg.mail), timeouts[:2]))
    # the last status the stand-in holds is what mail says: the deliveries were applied
    h = milterclient.message(w.m.socket, "<hook@example.com>", from_="Hook <hook@example.com>")
    t.is_(h.get("X-Stripe-Subscription-Status"), lg.status, "%s: mail shows the last delivered status" % what)


def during(t, w, what, attack):
    lg = Legit(w.s, w.m, w.sub, w.url, w.maddr)
    # hook@'s entry cached before the deliveries: each one must purge it to be seen
    lg.status = milterclient.message(w.m.socket, "<hook@example.com>", from_="Hook <hook@example.com>") \
        .get("X-Stripe-Subscription-Status")
    lg.start()
    try:
        res = attack()
    finally:
        lg.stop()
    judge(t, w, lg, what)
    return res


def t_hold(t, w, listener, trickle):
    port = w.wport if listener == "webhook" else w.mport
    n = N_SLOW if trickle else N_IDLE
    kind = "slow" if trickle else "idle"
    what = "%s %s x%d %.0fs" % (listener, kind, n, SECONDS)
    before = smtest.metrics(w.maddr)[1]
    opened, closed = during(t, w, what, lambda: hold(port, n, SECONDS, trickle))
    after = smtest.metrics(w.maddr)[1]
    lab = '{listener="%s",reason="per_client"}' % listener
    refused = after.get("stripe_milter_http_connections_refused_total" + lab, 0) - \
        before.get("stripe_milter_http_connections_refused_total" + lab, 0)
    lab = '{listener="%s",state="request"}' % listener
    late = after.get("stripe_milter_http_connections_timed_out_total" + lab, 0) - \
        before.get("stripe_milter_http_connections_timed_out_total" + lab, 0)
    figure(t, "%s: attacker opened %d connections, %d closed by the daemon: %d refused (per client), "
           "%d past the request deadline" % (what, opened, closed, refused, late))
    t.ok(refused > 0, "%s: refusals counted (%d)" % (what, refused))
    t.ok(late > 0, "%s: connections closed at the request deadline, counted (%d)" % (what, late))
    settle(t, w, what)


def t_flood(t, w):
    body = json.dumps({"id": "evt_forged", "object": "event", "type": "customer.updated"}).encode()
    req = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nStripe-Signature: " +
           signed(body, "whsec_wrong").encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    sig0 = ctr(w, 'stripe_milter_events_rejected_total{account="default",reason="signature"}')
    log0 = logsize(w.m)
    t0 = time.monotonic()
    got = during(t, w, "webhook flood x%d" % N_FLOOD, lambda: flood(w.wport, N_FLOOD, req))
    took = time.monotonic() - t0
    grew = logsize(w.m) - log0
    sig = ctr(w, 'stripe_milter_events_rejected_total{account="default",reason="signature"}') - sig0
    figure(t, "webhook flood: %d bad signatures in %.1f s (%.0f/s), answers %s, counted %d, log grew %d bytes"
           % (N_FLOOD, took, N_FLOOD / max(took, 0.001), got, sig, grew))
    t.is_(got.get(400, 0), N_FLOOD, "webhook flood: every bad signature answered 400")
    t.is_(sig, N_FLOOD, "webhook flood: every one counted (events_rejected_total{reason=signature})")
    t.ok(grew < 1 << 20, "webhook flood: the log grew by less than 1 MB (%d bytes)" % grew)
    smtest.wait_for(lambda: "more rejected in the last" in logtext(w.m, log0), timeout=30,
                    what="the summary line")
    t.like(logtext(w.m, log0), r"webhook listener: \d+ more rejected in the last \d+s, not logged one by one; "
           r"by reason:.* signature=\d+", "webhook flood: summarized by reason in the log")

    # metrics: POSTs at full speed (405). Each is a connection of its own (the listener
    # answers from the headers, which closes it): a fifth of the webhook's count keeps this
    # at seconds rather than minutes of connection churn.
    n = max(1000, N_FLOOD // 5)
    log0 = logsize(w.m)
    got = during(t, w, "metrics flood x%d" % n, lambda: flood(w.mport, n, b"POST /metrics HTTP/1.1\r\nHost: x\r\n"
                                                              b"Content-Length: 0\r\n\r\n"))
    grew = logsize(w.m) - log0
    figure(t, "metrics flood: %d POSTs, answers %s, log grew %d bytes" % (n, got, grew))
    t.is_(got.get(405, 0), n, "metrics flood: every POST answered 405")
    t.ok(grew < 1 << 20, "metrics flood: the log grew by less than 1 MB (%d bytes)" % grew)
    settle(t, w, "floods")


def t_bodies(t, w):
    for listener, port, method in (("webhook", w.wport, b"POST"), ("metrics", w.mport, b"GET")):
        tl0 = ctr(w, 'stripe_milter_http_requests_rejected_total{listener="%s",reason="too_large"}' % listener)
        for clen in (10 << 30, 18446744073709551615):
            # headers only: the answer must come without a byte of the body
            st = raw(port, method + b" / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % clen)
            t.is_(st, 413, "%s: Content-Length %d answered 413 from the headers alone" % (listener, clen))
        # a client that sends its oversized body anyway: refused after the headers, the rest
        # unread: the client can only fill the socket buffers before the daemon closes
        st, sent = offer(port, method + b" / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (256 << 20),
                         256 << 20)
        t.is_(st, 413, "%s: a 256 MiB body sent anyway: 413" % listener)
        figure(t, "%s bodies: of a 256 MiB body the client could send %d bytes before the daemon closed"
               % (listener, sent))
        t.ok(sent < 32 << 20, "%s: the oversized body was not read (%d bytes went out)" % (listener, sent))
        t.is_(ctr(w, 'stripe_milter_http_requests_rejected_total{listener="%s",reason="too_large"}' % listener) - tl0,
              3, "%s: counted as too_large" % listener)
        # an endless chunked body: 411 at once
        st = raw(port, method + b" / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + b"x" * 4096)
        t.is_(st, 411, "%s: a chunked (endless) body: 411" % listener)
    # a body within the limit, trickled past the deadline: closed, counted
    late0 = ctr(w, 'stripe_milter_http_connections_timed_out_total{listener="webhook",state="request"}')
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.bind((ATTACKER, 0))
    c.connect(("127.0.0.1", w.wport))
    c.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    closed = [False]

    def trickled():
        try:
            c.sendall(b"x")
            c.settimeout(1.0)   # the trickle: a byte a second
            return c.recv(100) == b""
        except socket.timeout:
            return False
        except OSError:
            return True
    smtest.wait_for(trickled, timeout=60, what="the trickled body to be cut at the deadline")
    closed[0] = True
    c.close()
    t.ok(ctr(w, 'stripe_milter_http_connections_timed_out_total{listener="webhook",state="request"}') > late0,
         "webhook: a body trickled a byte a second is closed at the request deadline, counted")
    settle(t, w, "bodies")


def offer(port, head, n):
    """Sends head and up to n body bytes from ATTACKER until the server stops taking them;
    returns (status of its answer, body bytes that went out)."""
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.bind((ATTACKER, 0))
    c.settimeout(10)
    c.connect(("127.0.0.1", port))
    chunk = b"x" * 65536
    sent = 0
    try:
        c.sendall(head)
        while sent < n:
            sent += c.send(chunk)
    except OSError:
        pass    # closed by the daemon (or its send buffer stayed full for 10 s)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                break
            buf += d
    except OSError:
        pass
    c.close()
    st = int(buf.split(b" ", 2)[1]) if buf.startswith(b"HTTP/") else 0
    return st, sent


def t_headers(t, w):
    for listener, port in (("webhook", w.wport), ("metrics", w.mport)):
        p0 = ctr(w, 'stripe_milter_http_requests_rejected_total{listener="%s",reason="protocol"}' % listener)
        st1 = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
        st2 = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n")
        st3 = raw(port, b"\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n")
        figure(t, "%s headers: 100 KB header -> %d, 5000 headers -> %d, garbage -> %d (0 = closed)"
               % (listener, st1, st2, st3))
        for what, st in (("a 100 KB header", st1), ("5000 headers", st2), ("a non-HTTP request", st3)):
            t.ok(st == 0 or 400 <= st < 500, "%s: %s answered 4xx or closed (%d)" % (listener, what, st))
        t.ok(ctr(w, 'stripe_milter_http_requests_rejected_total{listener="%s",reason="protocol"}' % listener) > p0,
             "%s: counted as protocol" % listener)
    settle(t, w, "headers")


def main():
    t = smtest.TAP()
    # this test's files (the daemon's socket, config, log) under the build tree, not /tmp:
    # it runs for minutes, and other jobs on the machine may sweep /tmp meanwhile
    os.environ["TMPDIR"] = tempfile.mkdtemp(prefix="abuse-", dir=os.path.abspath(smtest.builddir()))
    if not os.environ.get("TH_KEEP"):
        atexit.register(shutil.rmtree, os.environ["TMPDIR"], True)
    try:
        mta.binary("stripe-milter")
        s = smtest.Standin()
        r = smtest.Redis()
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    d = smtest.tempdir("sm-abuse-")
    w = World()
    w.s = s
    sec = os.path.join(d, "wh.secret")
    with open(os.open(sec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(SECRET + "\n")
    w.wport, w.mport = smtest.free_port(), smtest.free_port()
    w.maddr = "127.0.0.1:%d" % w.mport
    w.url = "http://127.0.0.1:%d/" % w.wport
    prom = os.path.join(d, "stripe-milter.prom")
    ids = s.state({"customers": [{"email": "pay@example.com", "name": "Pay",
                                  "subscriptions": [{"status": "active"}]},
                                 {"email": "hook@example.com", "name": "Hook",
                                  "subscriptions": [{"status": "active"}]}]})["ids"]
    w.sub = ids["subscriptions"][1]
    m = mta.Milter(standin=s, redis=r, options={
        "MetricsListen": w.maddr, "WebhookListen": "127.0.0.1:%d" % w.wport, "WebhookSecretFile": sec,
        "LogLevel": "info", "ListenerLogInterval": "5", "MetricsFile": prom, "MetricsFileInterval": "1",
        "StripeTimeout": "10000"})
    w.m = m
    w.pid = m.proc.pid
    try:
        # the attacker's sockets: raised here, after the daemon started with its own limit
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        smtest.wait_for(lambda: smtest.metrics(w.maddr)[0] == 200, timeout=30, what="/metrics")
        smtest.wait_for(lambda: os.path.exists(prom), timeout=30, what="the MetricsFile")
        t.is_(milterclient.message(m.socket, "<pay@example.com>", from_="Pay <pay@example.com>")
              .get("X-Stripe-Subscription-Status"), "active", "the customer is active before the attacks")
        figure(t, "ABUSE_SECONDS=%g, %d slow and %d idle connections, a flood of %d; daemon RLIMIT_NOFILE %s; "
               "pools: webhook %d, metrics %d" % (SECONDS, N_SLOW, N_IDLE, N_FLOOD, open("/proc/%d/limits" % w.pid)
                                                 .read().split("Max open files")[1].split()[0],
                                                 ctr(w, 'stripe_milter_http_connection_limit{listener="webhook"}'),
                                                 ctr(w, 'stripe_milter_http_connection_limit{listener="metrics"}')))
        w.fd0, w.rss0 = fds(w.pid), rss_kb(w.pid)
        # a warm-up round of the legitimate work, so that the baseline includes its buffers
        during(t, w, "no attack (5 s)", lambda: time.sleep(5))     # the quiet period itself
        w.fd0, w.rss0 = fds(w.pid), rss_kb(w.pid)
        figure(t, "baseline: %d descriptors, RSS %d KiB" % (w.fd0, w.rss0))
        only = os.environ.get("ABUSE_TESTS", "").split(",") if os.environ.get("ABUSE_TESTS") else None
        for name, fn, args in (("webhook-slow", t_hold, ("webhook", True)), ("webhook-idle", t_hold, ("webhook", False)),
                               ("metrics-slow", t_hold, ("metrics", True)), ("metrics-idle", t_hold, ("metrics", False)),
                               ("flood", t_flood, ()), ("bodies", t_bodies, ()), ("headers", t_headers, ())):
            if only and name not in only:
                continue
            t.subtest(name, fn, w, *args)
        # the textfile carries what the rules need, with no listener involved
        with open(prom) as f:
            text = f.read()
        t.ok(re.search(r"(?m)^stripe_milter_exposition_timestamp_seconds \d", text), "MetricsFile: its timestamp")
        t.ok(re.search(r'(?m)^stripe_milter_http_requests_rejected_total\{listener="webhook",reason="too_large"\} [1-9]',
                       text) or (only and "bodies" not in only), "MetricsFile: the listeners' counters")
        # stripe-milterctl stats shows the listeners' refusals (published to Redis)
        want = smtest.metrics(w.maddr)[1].get(
            'stripe_milter_http_requests_rejected_total{listener="webhook",reason="too_large"}', 0)

        def published():
            rc, out, err = mta.ctl(m.conf, "--json", "stats")
            try:
                li = json.loads(out)["totals"]["listeners"]
            except (ValueError, KeyError):
                return None
            return li if li.get("webhook", {}).get("too_large", -1) == want else None
        li = smtest.wait_for(published, timeout=30, what="the listeners' counters in stripe-milterctl stats")
        figure(t, "stripe-milterctl stats --json: listeners %s" % json.dumps(li, sort_keys=True))
        t.ok(li and "metrics" in li, "stripe-milterctl stats: both listeners' counters")
        rc, out, err = mta.ctl(m.conf, "stats")
        t.like(out, r"listeners \(what they refused\):\n  webhook:\n    refused: client at its limit",
               "stripe-milterctl stats: the listeners group")
        total = logsize(m)
        text = logtext(m, 0)
        attack = sum(len(x) + 1 for x in text.splitlines()
                     if re.search(r" listener: |webhook delivery rejected|libmicrohttpd", x))
        figure(t, "the daemon's log: %d bytes for the whole run, %d of them about the attacks "
               "(the rest: a line per legitimate message and event at LogLevel info)" % (total, attack))
        t.ok(attack < 256 << 10, "the log about the attacks stayed bounded over all of them (%d bytes)" % attack)
    finally:
        m.stop()
        s.stop()
        r.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
