"""benchlib - shared parts of `make bench` (bench.py) and `make soak` (soak.py); benchmarks only.

* `mload(socket, conns, n, ...)`: runs tests/bench/mload (the milter-protocol load
  generator) and returns its RESULT line as a dict (rate, p50, p99, eom_p50, bad, errors,
  vals...). `mload_stream()` yields its PROGRESS/HOLDING lines as they come.
* `NullMilter(mode)`: the do-nothing milter built in tests/bench (mode "same": the header
  strip/add work stripe-milter does; "one": adds one header).
* `proc_sample(pid)`: RSS (KiB), threads, open files and CPU seconds of a process.
* `spread(values)`, `ratio_rows(...)`: medians and min..max over interleaved rounds.
* `seed_customers(standin, fmt, n)`: n customers with a subscription, a plan and two charges.
* `LOOKUP`: the X-Stripe-Lookup value prefix of header contract version 2.

Every process is started through smtest.spawn (dies with the caller) and stopped by PID.
"""
import os
import statistics
import subprocess
import time

import smtest

CLK_TCK = os.sysconf("SC_CLK_TCK")
LOOKUP = "X-Stripe-Lookup=v=2; "      # mload -e NAME=PREFIX


def tool(name):
    p = os.path.join(smtest.builddir(), "tests", "bench", name)
    if not os.access(p, os.X_OK):
        raise smtest.Unavailable("%s is not built (make check_PROGRAMS)" % p)
    return p


def _parse_result(line):
    out = {}
    for w in line.split()[1:]:
        k, _, v = w.partition("=")
        if k == "vals":
            out[k] = dict((a.rpartition(":")[0], int(a.rpartition(":")[2]))
                          for a in v.split(",") if a)
        else:
            out[k] = float(v)
    return out


def mload_argv(socket, conns, n, distinct=1, offset=0, fmt=None, forged=1, expect=(), tally=None,
               per_conn=100, body_delay_ms=0, hold_s=0, progress=0, warm=0, timeout_s=120):
    argv = [tool("mload"), "-q", "-s", socket, "-c", str(conns), "-n", str(n), "-m", str(per_conn),
            "-d", str(distinct), "-o", str(offset), "-x", str(forged), "-t", str(timeout_s)]
    if fmt:
        argv += ["-f", fmt]
    for e in expect:
        argv += ["-e", e]
    if tally:
        argv += ["-k", tally]
    if body_delay_ms:
        argv += ["-D", str(body_delay_ms)]
    if hold_s:
        argv += ["-H", str(hold_s)]
    if progress:
        argv += ["-p", str(progress)]
    if warm:
        argv += ["-w", str(warm)]
    return argv


def mload(socket, conns, n, pid=None, **kw):
    """Runs mload to the end; returns its figures, plus cpu_ms (CPU of `pid` per message)."""
    c0 = proc_sample(pid)["cpu"] if pid else None
    r = subprocess.run(mload_argv(socket, conns, n, **kw), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=3600)
    lines = [ln for ln in r.stdout.decode().splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise RuntimeError("mload failed: %s" % r.stderr.decode()[-800:])
    res = _parse_result(lines[-1])
    if pid:
        res["cpu_ms"] = (proc_sample(pid)["cpu"] - c0) * 1000.0 / max(1.0, res["msgs"])
    return res


def mload_stream(socket, conns, n, **kw):
    """Starts mload; yields (kind, fields) for PROGRESS/HOLDING lines and finally
    ("RESULT", dict)."""
    p = subprocess.Popen(mload_argv(socket, conns, n, **kw), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    for raw in p.stdout:
        line = raw.decode().strip()
        if line.startswith("RESULT "):
            yield "RESULT", _parse_result(line)
        elif line.startswith("PROGRESS ") or line.startswith("HOLDING "):
            yield line.split()[0], line.split()[1:]
    p.wait()


class NullMilter:
    """The do-nothing milter on a unix socket (or inet:PORT@127.0.0.1)."""

    def __init__(self, mode="same", socket="unix"):
        self.dir = smtest.tempdir("sm-null-")
        os.chmod(self.dir, 0o755)
        if socket == "unix":
            self.path = os.path.join(self.dir, "null.sock")
            self.socket = "unix:" + self.path
            self.mta_socket = self.socket
            listen = self.socket
        else:
            port = smtest.free_port()
            self.path = None
            self.socket = "inet:127.0.0.1:%d" % port
            self.mta_socket = self.socket
            listen = "inet:%d@127.0.0.1" % port
            self.port = port
        self.proc = smtest.spawn([tool("null_milter"), "-s", listen, "-m", mode],
                                 log=os.path.join(self.dir, "null.log"))
        self.pid = self.proc.pid
        end = time.time() + 10
        while time.time() < end:
            if self.path and os.path.exists(self.path):
                return
            if not self.path and smtest.wait_port(self.port, 0.1):
                return
            time.sleep(0.02)
        raise RuntimeError("null_milter did not start")

    def stop(self):
        smtest.stop(self.proc)


def proc_sample(pid):
    """{'rss_kb', 'threads', 'fds', 'cpu' (seconds user+system)} of a live process."""
    out = {"rss_kb": 0, "threads": 0, "fds": 0, "cpu": 0.0}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
    out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rpartition(")")[2].split()
    out["cpu"] = (int(st[11]) + int(st[12])) / float(CLK_TCK)
    return out


def spread(values, fmt="%.2f"):
    """'median [min-max]' of a list of numbers."""
    if not values:
        return "-"
    return (fmt + " [" + fmt + "-" + fmt + "]") % (statistics.median(values), min(values),
                                                   max(values))


def slope(xs, ys):
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def seed_customers(standin, fmt, n, start=0):
    """Adds n customers fmt % i (i from start), each with an active subscription to the one
    plan "Pro" (one product, as most sites have few) and two succeeded charges, so that a lookup makes the full set of Stripe
    requests and stripe-milter adds the same eight headers as null_milter -m same."""
    standin.add({"products": [{"id": "prod_bench_pro", "name": "Pro"}]})
    batch = []
    for i in range(start, start + n):
        batch.append({"email": fmt % i, "name": "Customer %d" % i,
                      "subscriptions": [{"status": "active", "items": [
                          {"price": {"unit_amount": 4900, "product": "prod_bench_pro"}}]}],
                      "charges": [{"amount": 4900}, {"amount": 4900}]})
        if len(batch) == 500:
            standin.add({"customers": batch})
            batch = []
    if batch:
        standin.add({"customers": batch})
