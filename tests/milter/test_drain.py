#!/usr/bin/env python3
"""test_drain.py - a stop does not cut the messages in progress (StopTimeout).

A message that has begun (MAIL FROM, headers, body sent; end of message not yet) when the
daemon gets SIGTERM still gets its lookup and its headers, and the daemon exits 0 after it,
having logged that it waited. A message whose MTA never finishes it is given up after
StopTimeout (a warning says how many were left); a second SIGTERM ends the wait at once;
with StopTimeout 0 the daemon does not wait. No new connection is accepted meanwhile.
The same through a real Postfix: an SMTP client stops inside DATA, the daemon gets SIGTERM,
the client finishes, and the delivered message has its lookup header (Postfix logs nothing
about the milter).

Every wait is on a condition (a log line, a count, the process gone) with a deadline; no
time is asserted.
"""
import os
import re
import signal
import smtplib
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import milterclient  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

ADDR = "drain@customer.test"
WAITING = "message(s) in progress (StopTimeout"


class Held:
    """One message sent in a thread of its own that stops before end of message until
    release() (or never, for a client that goes silent)."""

    def __init__(self, m):
        self.at_eom = threading.Event()
        self.go = threading.Event()
        self.result = None
        self.error = None
        self.th = threading.Thread(target=self._run, args=(m,), daemon=True)
        self.th.start()

    def _hold(self):
        self.at_eom.set()
        self.go.wait(120)

    def _run(self, m):
        try:
            self.result = milterclient.message(m.socket, "<%s>" % ADDR, from_="D <%s>" % ADDR,
                                               before_eom=self._hold)
        except (OSError, milterclient.MilterError) as e:
            self.error = e

    def release(self):
        self.go.set()
        self.th.join(60)


def can_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        s.sendall(b"\0\0\0\rO\0\0\0\x06\0\0\0\x11\0\x1f\xff\xff")
        return bool(s.recv(64))     # a negotiation reply: someone accepted it
    except OSError:
        return False
    finally:
        s.close()


def held_then_term(t, s, opts, what):
    """A daemon with one message held before end of message, then SIGTERM: (milter, Held)."""
    m = mta.Milter(s, None, options=opts)
    h = Held(m)
    t.ok(h.at_eom.wait(60), "%s: a message is in progress" % what)
    m.proc.send_signal(signal.SIGTERM)
    return m, h


def gone(m):
    return m.proc.poll() is not None


def stopped(t, m, what):
    """Waits for the daemon to exit (it exits by itself); checks status and its log."""
    smtest.wait_for(lambda: gone(m), timeout=60, what="%s: the daemon exits" % what)
    rc = m.proc.returncode
    log = m.log()
    m.stop()
    t.is_(rc, 0, "%s: exit status 0" % what)
    t.ok("stopped" in log, "%s: logged 'stopped'" % what)
    return log


def postfix_case(t, s, opts):
    mport = smtest.free_port()
    m = mta.Milter(s, None, options=dict(opts, MetricsListen="127.0.0.1:%d" % mport))
    pf = None
    try:
        pf = mta.Postfix(milter_socket=m.mta_socket, default_action="tempfail")
    except smtest.Unavailable as e:
        m.stop()
        t.ok(False, "Postfix case cannot run: %s" % e)
        return
    try:
        c = smtplib.SMTP("127.0.0.1", pf.port, timeout=60)
        c.ehlo("client.example.net")
        t.is_(c.mail("<%s>" % ADDR)[0], 250, "Postfix: MAIL FROM taken")
        t.is_(c.rcpt("<support@example.test>")[0], 250, "Postfix: RCPT taken")
        t.is_(c.docmd("DATA")[0], 354, "Postfix: DATA started")
        c.send(("From: D <%s>\r\nTo: support@example.test\r\nSubject: drain\r\n\r\n"
                "first half\r\n" % ADDR).encode())
        smtest.wait_for(lambda: in_progress(mport) == 1, timeout=60,
                        what="the milter has the message (stripe_milter_messages_in_progress 1)")
        m.proc.send_signal(signal.SIGTERM)
        smtest.wait_for(lambda: WAITING in m.log(), timeout=60, what="the wait's log line")
        c.send(b"second half\r\n.\r\n")
        code, text = c.getreply()
        t.is_(code, 250, "Postfix: the message is queued after the SIGTERM (%s)" % text.decode(errors="replace"))
        c.quit()
        mails = pf.wait_mail("support", 1)
        t.is_(len(mails), 1, "Postfix: delivered")
        t.like((mta.hdr(mails[0], "X-Stripe-Lookup") or [""])[0] if mails else "", r"^v=2; found",
               "Postfix: with its lookup header")
        log = stopped(t, m, "Postfix")
        t.like(log, r"the messages in progress finished in \d+ ms", "Postfix: the daemon waited for it")
    finally:
        if pf:
            bad = [ln for ln in pf.log().splitlines()
                   if re.search(r"(warning|error|fatal|panic):", ln)]
            t.ok(not bad, "Postfix logged no warning or error", "\n".join(bad[:10]))
            pf.stop()
        m.stop()


def in_progress(mport):
    """The daemon's stripe_milter_messages_in_progress (None while it does not answer)."""
    st, vals = smtest.metrics(mport)
    return vals.get("stripe_milter_messages_in_progress") if st == 200 else None


def main():
    t = smtest.TAP()
    try:
        mta.binary("stripe-milter")
        s = smtest.Standin()
        s.state({"customers": [{"id": "cus_drain", "email": ADDR, "name": "Dee Rain"}]})
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    opts = {"LookupTimeout": "10000", "StopTimeout": "60"}
    try:
        # 1. a message in progress at SIGTERM finishes with its headers; then the exit
        m = mta.Milter(s, None, options=opts)
        h = Held(m)
        t.ok(h.at_eom.wait(60), "a message is in progress (body sent, no end of message yet)")
        m.proc.send_signal(signal.SIGTERM)
        smtest.wait_for(lambda: WAITING in m.log(), timeout=60, what="the wait's log line")
        t.like(m.log(), r"waiting up to 60 s for 1 message\(s\) in progress",
               "the daemon says it waits for the one message")
        t.ok(not gone(m), "and it has not exited")
        t.ok(not can_connect(m.path), "no new connection is accepted while it waits")
        h.release()
        t.ok(h.error is None, "the message's connection was not cut", repr(h.error))
        t.like((h.result or {}).get("X-Stripe-Lookup", ""), r"^v=2; found",
               "the message got its lookup header after the SIGTERM")
        t.is_(getattr(h.result, "reply", None), "a", "and was accepted")
        log = stopped(t, m, "after the message")
        t.like(log, r"the messages in progress finished in \d+ ms", "it logged that they finished")
        t.ok(" warning: " not in log and " error: " not in log, "no warning or error line",
             "\n".join(ln for ln in log.splitlines() if " warning: " in ln or " error: " in ln))

        # 2. an MTA that never finishes its message: given up after StopTimeout
        m, h = held_then_term(t, s, dict(opts, StopTimeout="1"), "StopTimeout 1")
        log = stopped(t, m, "StopTimeout 1, the message never ends")
        t.like(log, r"warning: stopping with 1 message\(s\) still in progress after \d+ ms",
               "a warning says one message was left to the MTA")
        h.release()

        # 3. a second SIGTERM ends the wait
        m, h = held_then_term(t, s, opts, "second signal")
        smtest.wait_for(lambda: WAITING in m.log(), timeout=60, what="the wait's log line")
        m.proc.send_signal(signal.SIGTERM)
        log = stopped(t, m, "second SIGTERM")
        t.like(log, r"signal 15: not waiting any longer", "the second signal ends the wait")
        h.release()

        # 4. StopTimeout 0: no wait
        m, h = held_then_term(t, s, dict(opts, StopTimeout="0"), "StopTimeout 0")
        log = stopped(t, m, "StopTimeout 0")
        t.like(log, r"stopping with 1 message\(s\) in progress \(StopTimeout 0\)",
               "it says it did not wait")
        t.ok("waiting up to" not in log, "and did not wait")
        h.release()

        # 5. through a real Postfix: an SMTP client stops inside DATA (Postfix has sent
        #    MAIL FROM to the milter), the daemon gets SIGTERM, the client finishes
        postfix_case(t, s, opts)

        # 6. nothing in progress: no wait, no line about it
        m = mta.Milter(s, None, options=opts)
        milterclient.message(m.socket, "<%s>" % ADDR, from_="D <%s>" % ADDR)
        m.proc.send_signal(signal.SIGTERM)
        log = stopped(t, m, "nothing in progress")
        t.ok("in progress" not in log, "no line about messages in progress")
    finally:
        s.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
