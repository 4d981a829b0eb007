#!/usr/bin/env python3
"""test_stop.py - stripe-milter stopped STOP_N times in a row under load (20 in `make check`,
200 in `make check-stress`), every log line read: 0 lines from libmilter, 0 error lines, 0 sanitizer reports, exit status 0 each
time (issue 20: libmilter once logged "listenfd=-1 corrupted, terminating" at a stop).

Each round starts the daemon, lets a client connect to the milter socket and hang up in a loop
(so a stop also meets libmilter's listener coming back from accept(), not only waiting in its
poll()), waits for a varying number of those connections (0..7) and stops the daemon with
SIGTERM while the client goes on.

The load: two busy loops per core for the test's whole run, started and stopped here (they
die with the test: smtest.spawn), unless $STRESS_LOADED says `make check-stress` already loads
the machine. Stop times are printed (# max/median), never asserted: no wall-clock bound.
"""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402


class Hammer:
    """Connects to a unix socket and hangs up, over and over, in a thread of its own."""

    def __init__(self, path):
        self.path = path
        self.n = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.done.is_set():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1.0)
            try:
                s.connect(self.path)
                with self.lock:
                    self.n += 1
            except OSError:
                # the socket is gone or refuses: the daemon is stopping; try again shortly
                self.done.wait(0.005)
            finally:
                s.close()

    def count(self):
        with self.lock:
            return self.n

    def stop(self):
        self.done.set()
        self.th.join(10)


def error_lines(log):
    return [ln for ln in log.splitlines() if " error: " in ln or "stripe-milter: " in ln[:16]]


def main():
    t = smtest.TAP()
    n = int(os.environ.get("STOP_N", "20"))
    try:
        mta.binary("stripe-milter")
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    load = []
    if not os.environ.get("STRESS_LOADED"):
        for _ in range(2 * (os.cpu_count() or 1)):
            load.append(smtest.spawn(["sh", "-c", "while :; do :; done"]))
    t.diag("%d stops, %s" % (n, "load from make check-stress" if not load
                             else "%d busy loops" % len(load)))
    bad_rc, libmilter, errors, reports, not_stopped, times = [], [], [], [], [], []
    try:
        for i in range(n):
            m = mta.Milter(options={"LookupThreads": "2"})
            h = Hammer(m.path)
            # a different moment in the listener's loop each round: after 0..7 accepted
            # connections (a wait on a count, with a deadline)
            want = i % 8
            smtest.wait_for(lambda: h.count() >= want, timeout=30)
            times.append(m.stop())
            h.stop()
            log = m.log()
            if m.rc != 0:
                bad_rc.append((i, m.rc))
            lines = mta.libmilter_lines(log)
            if lines:
                libmilter.append((i, lines))
            errs = error_lines(log)
            if errs:
                errors.append((i, errs))
            if "stopped" not in log:
                not_stopped.append(i)
            for mark in mta._SANITIZER_MARKS:
                if mark in log:
                    reports.append((i, log[log.find(mark) - 200:][:3000]))
                    break
    finally:
        for p in load:
            smtest.stop(p)
    times.sort()
    t.diag("stop took median %.3f s, max %.3f s" % (times[len(times) // 2], times[-1]))
    t.is_(len(times), n, "%d stops done" % n)
    t.ok(not bad_rc, "every stop exited with status 0", "round, status: %r" % bad_rc[:10])
    t.ok(not libmilter, "no line from libmilter in %d stops" % n,
         "\n".join("round %d: %s" % (i, " | ".join(ls)) for i, ls in libmilter[:10]))
    t.ok(not errors, "no error line in %d stops" % n,
         "\n".join("round %d: %s" % (i, " | ".join(ls)) for i, ls in errors[:10]))
    t.ok(not not_stopped, "every round logged 'stopped'", "rounds: %r" % not_stopped[:20])
    t.ok(not reports, "no sanitizer report", "\n\n".join("round %d:\n%s" % r for r in reports[:3]))
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
