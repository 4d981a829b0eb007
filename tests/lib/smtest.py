"""smtest - the shared Python test library of stripe-milter's tests (tests only).

Standard library only. Import it from a test with:

    sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", ...), "tests", "lib"))
    import smtest

What it has:

* TAP output (`TAP`): plan, ok / not ok with `# ` diagnostics, skip, `skip_all`, subtests
  (indented, counted as one test of the parent), `run` (an exception is a failing test),
  `done()` returns the exit code (0 only when every test passed and the plan was met).
  Under CI=true (`ci()`) a skip or skip_all is a failure unless `.ci/allowed-skips` lists the
  test and reason (`ci_skip_allowed()`): in CI a missing tool must not pass silently.
  TAP goes to stdout; nothing else must (diagnostics are `# ` lines).
* Paths: `srcdir()`, `builddir()`, `stripe_data()` (tests/data/stripe, Stripe's reference data,
  or $STRIPE_DATA_DIR; None when absent).
* Waiting: `wait_for(cond, timeout)` polls a condition with a deadline (tests wait for a state,
  never sleep for one).
* Processes: `free_port()`, `tempdir()` (removed at exit unless $TH_KEEP is set), `spawn()`
  (child gets PR_SET_PDEATHSIG=SIGKILL so it dies with the test, and its own process group),
  `stop()` (SIGTERM, then SIGKILL after a grace period; by PID or process group).
* Fixtures (each raises `Unavailable(reason)` when it cannot run, for the caller to skip):
  `Redis` (private redis-server on a free loopback port and a unix socket in a temp dir, with a
  tiny RESP client: `r.cmd("GET", "k")`, `kill()` to crash it, `start()` again), `Standin`
  (tests/standin/stripe_standin.py: `state`, `add`, `faults`, `requests`, `count`, `wait_count`,
  `reset`, `get`; admin API in tests/standin/README.md), `Prism` (Prism mock server on
  tests/data/stripe/openapi-lookup-strict.json).
"""

import atexit
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

__all__ = ["TAP", "Unavailable", "ci", "ci_skip_allowed", "srcdir", "builddir", "stripe_data",
           "wait_for", "process_state", "free_port", "tempdir",
           "spawn", "stop", "wait_port", "http_call", "metrics", "Redis", "Standin", "Prism"]


# ---------------------------------------------------------------------------------------------
# TAP
# ---------------------------------------------------------------------------------------------

class TAP:
    """A TAP producer. With `plan=n` the plan is printed first; without, at done()."""

    def __init__(self, plan=None, out=None, indent=""):
        self.out = out or sys.stdout
        self.indent = indent
        self.n = 0
        self.failed = 0
        self.skipped = 0
        self.planned = None
        if plan is not None:
            self.plan(plan)

    def _p(self, line):
        self.out.write(self.indent + line + "\n")
        self.out.flush()

    def plan(self, n):
        self.planned = n
        self._p("1..%d" % n)

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            self._p("# " + line)

    def ok(self, cond, name="", diag=None):
        self.n += 1
        name = str(name).replace("#", "\\#").replace("\n", " ")
        self._p("%s %d%s" % ("ok" if cond else "not ok", self.n, " - " + name if name else ""))
        if not cond:
            self.failed += 1
            if diag is not None:
                self.diag(diag)
        return bool(cond)

    def is_(self, got, want, name=""):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want))

    def isnt(self, got, unwanted, name=""):
        return self.ok(got != unwanted, name, "got %r, wanted anything else" % (got,))

    def like(self, got, regex, name=""):
        import re
        return self.ok(isinstance(got, str) and re.search(regex, got) is not None, name,
                       "got:  %r\nwant match of: %r" % (got, regex))

    def skip(self, name, reason):
        """A skipped test: counted in the plan, never as a pass of anything it did not run.
        Under CI=true it fails instead, unless .ci/allowed-skips lists it (see ci_skip_allowed)."""
        if ci() and not ci_skip_allowed(reason):
            return self.ok(False, "%s (skip under CI=true: %s)" % (name, reason),
                           "CI=true: a skip fails unless .ci/allowed-skips lists it")
        self.n += 1
        self.skipped += 1
        self._p("ok %d - %s # SKIP %s" % (self.n, str(name).replace("#", "\\#"), reason))
        return False

    def run(self, name, fn, *args, **kw):
        """Run fn as one test; an exception makes it fail with the traceback as diagnostics.
        fn may return a bool (the test's result) or None (passed if it did not raise)."""
        try:
            r = fn(*args, **kw)
        except Exception:  # noqa: BLE001 - a test failure, reported
            return self.ok(False, name, traceback.format_exc())
        return self.ok(r is None or bool(r), name)

    def subtest(self, name, fn, *args, **kw):
        """Run fn(sub_tap) with a child TAP (indented lines); counts as one test here, passing
        only when every child test passed, at least one ran, and its plan (if any) was met.
        A subtest whose tests were all skipped is reported as skipped, never as a pass."""
        self._p("# Subtest: %s" % name)
        sub = TAP(out=self.out, indent=self.indent + "    ")
        try:
            fn(sub, *args, **kw)
        except Exception:  # noqa: BLE001
            sub.ok(False, "subtest raised", traceback.format_exc())
        ok = sub.finish_plan()
        if ok and sub.n > 0 and sub.skipped == sub.n:
            self.skip(name, "all %d subtest(s) skipped" % sub.n)
            return False
        return self.ok(ok and sub.n > 0, name)

    def finish_plan(self):
        if self.planned is None:
            self._p("1..%d" % self.n)
            self.planned = self.n
        elif self.planned != self.n:
            self.diag("planned %d tests but ran %d" % (self.planned, self.n))
            return False
        return self.failed == 0

    def done(self):
        """Print the plan if not printed yet; return the exit code (0 = all passed)."""
        return 0 if self.finish_plan() else 1

    def bail_out(self, reason):
        self._p("Bail out! %s" % reason)
        sys.exit(1)

    @staticmethod
    def skip_all(reason):
        """Skip the whole test file; under CI=true (and not allow-listed) a failure instead."""
        if ci() and not ci_skip_allowed(reason):
            sys.stdout.write("1..1\nnot ok 1 - cannot run: %s\n# CI=true: a test whose tool is "
                             "missing or fails to start fails (.ci/allowed-skips)\n"
                             % str(reason).replace("#", "\\#").replace("\n", " "))
            sys.stdout.flush()
            sys.exit(1)
        sys.stdout.write("1..0 # SKIP %s\n" % reason)
        sys.stdout.flush()
        sys.exit(0)


def ci():
    """True when $CI says this is a CI run (true, 1 or yes): skips then fail."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def ci_skip_allowed(reason, test=None):
    """True when .ci/allowed-skips (under srcdir) lists this test with a reason that is a
    substring of `reason`. Lines: `TEST | REASON | why it is allowed`; TEST is compared by
    file name without extension (tests/milter/test_daemon.py matches test_daemon)."""
    name = test or os.path.splitext(os.path.basename(sys.argv[0] or ""))[0]
    try:
        with open(os.path.join(srcdir(), ".ci", "allowed-skips"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [x.strip() for x in line.split("|")]
        if len(parts) < 3 or not parts[1] or not parts[2]:
            continue
        if os.path.splitext(os.path.basename(parts[0]))[0] == name and parts[1] in str(reason):
            return True
    return False


class Unavailable(Exception):
    """A fixture cannot run here (program or file absent, or it did not start); the test
    skips (TAP.skip_all / TAP.skip), which fails under CI=true."""


# ---------------------------------------------------------------------------------------------
# Paths, ports, temp dirs, processes
# ---------------------------------------------------------------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))


def srcdir():
    d = os.environ.get("top_srcdir")
    return d if d else os.path.dirname(os.path.dirname(_HERE))


def builddir():
    d = os.environ.get("top_builddir")
    return d if d else srcdir()


def stripe_data():
    """The Stripe reference data folder (tests/data/stripe, or $STRIPE_DATA_DIR), or None."""
    d = os.environ.get("STRIPE_DATA_DIR") or os.path.join(srcdir(), "tests", "data", "stripe")
    return d if os.path.isdir(d) else None


def wait_for(cond, timeout=20.0, what=None):
    """Poll cond() (every 10-50 ms) until it returns a true value or `timeout` seconds pass;
    returns its last value. How tests wait for a state (a counter, a log line, a process gone)
    instead of sleeping: the timeout is generous, it only bounds a failing run. With `what`,
    a timeout raises AssertionError naming it."""
    end = time.monotonic() + timeout
    step = 0.01
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            break
        time.sleep(step)
        step = min(step * 2, 0.05)
    if not v and what:
        raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
    return v


def process_state(pid):
    """The state letter of a process from /proc/PID/stat (R, S, T, Z, ...), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return None


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_port(port, timeout=5.0, host="127.0.0.1"):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


_tempdirs = []


def _cleanup():
    if os.environ.get("TH_KEEP"):
        return
    for d in _tempdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def tempdir(prefix="sm-test-"):
    """A private temp dir, removed when the test exits (kept with TH_KEEP=1)."""
    d = tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TMPDIR") or "/tmp")
    _tempdirs.append(d)
    return d


_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _child_setup():
    # In the child between fork and exec: die with the parent, own process group.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setpgid(0, 0)


_children = []


def spawn(argv, log=None, env=None, cwd=None):
    """Start argv with stdin from /dev/null and stdout+stderr to `log` (or /dev/null). The child
    is killed (SIGKILL) if this process dies, and leads its own process group. Returns a Popen."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=env, cwd=cwd, preexec_fn=_child_setup, close_fds=True)
    finally:
        if log:
            out.close()
    _children.append(p)
    return p


def stop(proc, grace=2.0, group=False):
    """Stop a process (Popen or PID): SIGTERM, then SIGKILL after `grace` seconds. With
    group=True signal its whole process group (for programs that start children, like npx)."""
    pid = proc.pid if hasattr(proc, "pid") else int(proc)
    if pid <= 0:
        return

    def sig(s):
        try:
            if group:
                os.killpg(pid, s)
            else:
                os.kill(pid, s)
        except (ProcessLookupError, PermissionError):
            pass

    def reaped():
        if hasattr(proc, "poll"):
            return proc.poll() is not None
        try:
            r, _ = os.waitpid(pid, os.WNOHANG)
            return r == pid
        except ChildProcessError:
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True
    sig(signal.SIGTERM)
    end = time.time() + grace
    while time.time() < end:
        if reaped():
            if group:
                sig(signal.SIGKILL)  # stragglers in the group
            return
        time.sleep(0.01)
    sig(signal.SIGKILL)
    if hasattr(proc, "wait"):
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


@atexit.register
def _kill_children():
    for p in _children:
        if p.poll() is None:
            stop(p, grace=1.0)


def http_call(base_url, method, path, body=None, headers=None, timeout=10.0):
    """One HTTP request; returns (status, headers dict (lower-case names), body bytes).
    body may be bytes, str or a JSON-able object."""
    u = base_url.split("://", 1)[1]
    host, _, port = u.partition(":")
    c = http.client.HTTPConnection(host, int(port.rstrip("/")), timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def metrics(addr, timeout=10.0):
    """A daemon's Prometheus page at addr ("127.0.0.1:PORT", or a port number) as (HTTP
    status, {"name{labels}": float}); (None, {}) while nothing listens there yet."""
    if isinstance(addr, int):
        addr = "127.0.0.1:%d" % addr
    try:
        st, _, body = http_call("http://" + addr, "GET", "/metrics", timeout=timeout)
    except OSError:
        return None, {}
    vals = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            vals[k] = float(v)
    return st, vals


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------

class Redis:
    """A private redis-server: r.port (loopback TCP), r.unix_path, r.dir; r.cmd(*args) sends
    one command and returns the reply (str, int, list, None; an error reply raises
    Redis.ReplyError). kill() is a crash (SIGKILL); start() again reuses the port and dir."""

    class ReplyError(Exception):
        pass

    def __init__(self, extra="", port=0):
        if shutil.which("redis-server") is None:
            raise Unavailable("redis-server not installed (apt-get install redis-server)")
        self.dir = tempdir("sm-redis-")
        self.port = port or free_port()
        self.unix_path = os.path.join(self.dir, "redis.sock")
        self.log = os.path.join(self.dir, "redis.log")
        self.conf = os.path.join(self.dir, "redis.conf")
        with open(self.conf, "w") as f:
            f.write("bind 127.0.0.1\nport %d\nunixsocket %s\nunixsocketperm 700\nsave \"\"\n"
                    "appendonly no\ndir %s\ndaemonize no\nenable-debug-command yes\n%s"
                    % (self.port, self.unix_path, self.dir, extra))
        self.proc = None
        self.start()

    def start(self):
        self.proc = spawn(["redis-server", self.conf], log=self.log)
        if not wait_port(self.port, 30.0):
            self.stop()
            raise Unavailable("redis-server did not start on port %d (log %s)"
                              % (self.port, self.log))

    def stop(self):
        if self.proc is not None:
            stop(self.proc)
        self.proc = None

    def kill(self):
        """SIGKILL, as a crash would (restart with start())."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cmd(self, *args, timeout=10.0, raw=False):
        """One command; bulk replies as str (UTF-8, replacing bad bytes) or, raw, as bytes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            req = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                req += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(req)
            return self._reply(s.makefile("rb"), raw)
        finally:
            s.close()

    def _reply(self, f, raw=False):
        line = f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise Redis.ReplyError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = f.read(n + 2)[:-2]
            return data if raw else data.decode("utf-8", "replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply(f, raw) for _ in range(n)]
        raise ConnectionError("bad RESP reply %r" % line)


class Standin:
    """The Stripe stand-in (tests/standin/stripe_standin.py) on a free loopback port.

        s = Standin()
        ids = s.state({"customers": [{"email": "a@example.com"}]})["ids"]
        s.faults({"charges": {"status": 500, "times": 1}})
        st, hdrs, body = s.get("/v1/customers?email=a%40example.com")   # key sk_test_smtest
        s.count("customers"); s.reset(); s.stop()
    """

    KEY = "sk_test_smtest"

    def __init__(self, args=(), python=None):
        self.dir = tempdir("sm-standin-")
        self.port_file = os.path.join(self.dir, "port")
        self.log = os.path.join(self.dir, "standin.log")
        script = os.path.join(srcdir(), "tests", "standin", "stripe_standin.py")
        py = python or os.environ.get("PYTHON3") or sys.executable
        self.proc = spawn([py, script, "--port", "0", "--port-file", self.port_file] + list(args),
                          log=self.log)
        end = time.time() + 30
        self.port = None
        while time.time() < end and self.proc.poll() is None:
            try:
                with open(self.port_file) as f:
                    self.port = int(f.read().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise Unavailable("Stripe stand-in did not start (log %s)" % self.log)
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc is not None:
            stop(self.proc)
        self.proc = None

    def admin(self, method, path, body=None):
        st, _, data = http_call(self.url, method, path, body)
        out = json.loads(data.decode("utf-8")) if data else None
        if st != 200:
            raise RuntimeError("%s %s -> %d %s" % (method, path, st, data[:500]))
        return out

    def state(self, st):
        """Replace all data; returns {"ok": true, "ids": {"customers": [...], ...}}."""
        return self.admin("PUT", "/_standin/state", st)

    def add(self, st):
        """Add (or replace, by id) objects, keeping the rest."""
        return self.admin("POST", "/_standin/state", st)

    def faults(self, rules):
        return self.admin("PUT", "/_standin/faults", rules)

    def requests(self, endpoint=None):
        return self.admin("GET", "/_standin/requests" + ("?endpoint=" + endpoint if endpoint
                                                         else ""))

    def count(self, endpoint="*"):
        r = self.requests()
        return r["total"] if endpoint == "*" else r["by_endpoint"].get(endpoint, 0)

    def reset(self):
        return self.admin("POST", "/_standin/requests/reset", {})

    def wait_count(self, endpoint, n, timeout=30.0):
        """Wait until at least n requests reached endpoint ("*" for all); returns the count."""
        end = time.time() + timeout
        while True:
            c = self.count(endpoint)
            if c >= n or time.time() >= end:
                return c
            time.sleep(0.02)

    def hangs_outlived(self, since, answered):
        """True when the stand-in held at least one request with a hang fault that started at
        or after `since`, and every such request was still unanswered at `answered` (still
        open, or ended after it): the client answered its mail while Stripe had not, so only
        its own deadline can have ended the wait. Wall-clock times from time.time(); no bound
        on how long anything took."""
        hangs = [e for e in self.requests()["log"] if "hang" in (e.get("fault") or "") and e["time"] >= since]
        return bool(hangs) and all(e.get("status") is None or e["time"] + (e.get("ms") or 0) / 1000.0 > answered
                                   for e in hangs)

    def get(self, path, key=KEY, headers=None, timeout=10.0):
        """GET a Stripe path; returns (status, headers, parsed JSON or raw bytes)."""
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Bearer " + key
        st, hd, data = http_call(self.url, "GET", path, headers=h, timeout=timeout)
        try:
            return st, hd, json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return st, hd, data


class Prism:
    """Prism's mock server on the trimmed Stripe OpenAPI spec (validates requests: an invalid
    one gets 422 with a `validation` array). Starts in 5-10 s; ~160 MB."""

    def __init__(self, spec_name="openapi-lookup-strict.json", timeout=60.0):
        data = stripe_data()
        prism = os.environ.get("PRISM") or os.path.join(srcdir(), "tests", "prism",
                                                         "node_modules", ".bin", "prism")
        if data is None:
            raise Unavailable("tests/data/stripe is absent: no OpenAPI spec to validate against")
        self.spec = os.path.join(data, spec_name)
        if not os.path.isfile(self.spec):
            raise Unavailable("%s is absent" % self.spec)
        if not os.access(prism, os.X_OK):
            raise Unavailable("Prism not installed (run ./install-deps.sh: npm "
                              "@stoplight/prism-cli@5.14.2)")
        if shutil.which("node") is None:
            raise Unavailable("node is not installed (Prism needs Node.js)")
        self.dir = tempdir("sm-prism-")
        self.log = os.path.join(self.dir, "prism.log")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = spawn([prism, "mock", self.spec, "-h", "127.0.0.1", "-p", str(self.port)],
                          log=self.log)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                break
            try:
                st, _, _ = http_call(self.url, "GET", "/v1/account",
                                     headers={"Authorization": "Bearer sk_test_x"}, timeout=2)
                if st > 0:
                    self.startup_s = timeout - (end - time.time())
                    return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise Unavailable("Prism did not come up within %.0f s (log %s)" % (timeout, self.log))

    def get(self, path, key="sk_test_x", headers=None):
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Bearer " + key
        st, hd, data = http_call(self.url, "GET", path, headers=h)
        try:
            return st, hd, json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return st, hd, data

    def stop(self):
        # Prism (node) may start children: stop the whole process group.
        if self.proc is not None:
            stop(self.proc, group=True)
        self.proc = None
