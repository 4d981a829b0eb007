#!/usr/bin/env python3
"""test_smtest.py - tests of the shared Python test library (tests/lib/smtest.py): TAP output and
exit codes, subtests, skip_all, ports, temp dirs, spawn with PR_SET_PDEATHSIG, stop (TERM then
KILL), and the Redis fixture."""

import os
import signal
import subprocess
import sys
import time

LIB = os.path.join(os.environ.get("top_srcdir") or
                   os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                   "tests", "lib")
sys.path.insert(0, LIB)
import smtest  # noqa: E402

t = smtest.TAP()


def child(code, ci=None, srcdir=None):
    """Run a Python snippet that imports smtest; returns (exit code, stdout). CI is unset in the
    child unless ci gives its value; srcdir sets top_srcdir (where .ci/allowed-skips is read)."""
    env = dict(os.environ)
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    if srcdir is not None:
        env["top_srcdir"] = srcdir
    p = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r)\nimport smtest\n"
                        % LIB + code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                       env=env)
    return p.returncode, p.stdout.decode()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def t_all_pass():
    rc, out = child("t = smtest.TAP()\nt.ok(True, 'a')\nt.is_(1, 1, 'b')\nsys.exit(t.done())")
    return rc == 0 and out == "ok 1 - a\nok 2 - b\n1..2\n"


t.run("TAP: passing tests, plan at the end, exit 0", t_all_pass)


def t_fail():
    rc, out = child("t = smtest.TAP(2)\nt.ok(True, 'a')\nt.is_('x', 'y', 'b # c')\n"
                    "sys.exit(t.done())")
    return (rc == 1 and out.startswith("1..2\nok 1 - a\nnot ok 2 - b \\# c\n")
            and "# got:  'x'\n# want: 'y'\n" in out)


t.run("TAP: a failure prints not ok, '# ' diagnostics, escapes '#', exit 1", t_fail)


def t_plan_mismatch():
    rc, out = child("t = smtest.TAP(3)\nt.ok(True, 'a')\nsys.exit(t.done())")
    return rc == 1 and "# planned 3 tests but ran 1" in out


t.run("TAP: plan not met makes the exit code 1", t_plan_mismatch)


def t_subtests():
    rc, out = child(
        "t = smtest.TAP()\n"
        "def good(s):\n    s.ok(True, 'x')\n    s.ok(True, 'y')\n"
        "def bad(s):\n    s.ok(True, 'x')\n    s.ok(False, 'y')\n"
        "def empty(s):\n    pass\n"
        "def boom(s):\n    raise ValueError('boom')\n"
        "def skipped(s):\n    s.skip('x', 'why')\n"
        "t.subtest('good', good)\nt.subtest('bad', bad)\nt.subtest('empty', empty)\n"
        "t.subtest('boom', boom)\nt.subtest('skipped', skipped)\nsys.exit(t.done())")
    top = [l for l in out.splitlines() if not l.startswith((" ", "#"))]
    return (rc == 1 and top == ["ok 1 - good", "not ok 2 - bad", "not ok 3 - empty",
                                "not ok 4 - boom", "ok 5 - skipped # SKIP all 1 subtest(s) skipped",
                                "1..5"]
            and "    ok 1 - x\n    ok 2 - y\n    1..2\n" in out and "    not ok 2 - y" in out
            and "ValueError: boom" in out)


t.run("TAP: subtests are indented and count as one test each; failing/empty/raising fail; "
      "all-skipped is a skip",
      t_subtests)


def t_skip():
    rc, out = child("t = smtest.TAP()\nt.skip('s', 'no redis')\nt.ok(True, 'a')\n"
                    "sys.exit(t.done())")
    rc2, out2 = child("smtest.TAP.skip_all('redis-server not installed')\nprint('not reached')")
    return (rc == 0 and out == "ok 1 - s # SKIP no redis\nok 2 - a\n1..2\n"
            and rc2 == 0 and out2 == "1..0 # SKIP redis-server not installed\n")


t.run("TAP: skip and skip_all", t_skip)


def t_skip_ci():
    # Under CI=true a skip fails, unless .ci/allowed-skips lists the test (by file name without
    # extension: here "-c", as sys.argv[0] is "-c") with a piece of the reason and a why.
    top = smtest.tempdir("sm-ci-")
    os.mkdir(os.path.join(top, ".ci"))
    snippet_all = "smtest.TAP.skip_all('redis-server not installed')\nprint('not reached')"
    snippet_one = "t = smtest.TAP()\nt.skip('s', 'no redis')\nt.ok(True, 'a')\nsys.exit(t.done())"
    rc1, out1 = child(snippet_all, ci="true", srcdir=top)
    rc2, out2 = child(snippet_one, ci="true", srcdir=top)
    rc3, out3 = child(snippet_all, ci="false", srcdir=top)
    with open(os.path.join(top, ".ci", "allowed-skips"), "w") as f:
        f.write("# comment\n-c | redis-server not | because\n-c | no redis |\n")
    rc4, out4 = child(snippet_all, ci="true", srcdir=top)
    rc5, out5 = child(snippet_one, ci="true", srcdir=top)   # listed without a why: not allowed
    ok = (rc1 == 1 and out1.startswith("1..1\nnot ok 1 - cannot run: redis-server not installed\n")
          and rc2 == 1 and "not ok 1 - s (skip under CI=true: no redis)" in out2
          and rc3 == 0 and out3 == "1..0 # SKIP redis-server not installed\n"
          and rc4 == 0 and out4 == "1..0 # SKIP redis-server not installed\n"
          and rc5 == 1 and "not ok 1" in out5)
    if not ok:
        t.diag(repr([(rc1, out1), (rc2, out2), (rc3, out3), (rc4, out4), (rc5, out5)]))
    return ok


t.run("TAP: under CI=true skip and skip_all fail unless .ci/allowed-skips lists them", t_skip_ci)


def t_run_exception():
    rc, out = child("t = smtest.TAP()\nt.run('r', lambda: 1/0)\nt.run('f', lambda: False)\n"
                    "t.run('n', lambda: None)\nsys.exit(t.done())")
    return (rc == 1 and "not ok 1 - r\n# Traceback" in out and "not ok 2 - f\n" in out
            and "ok 3 - n\n" in out)


t.run("TAP: run() turns an exception or False into a failure", t_run_exception)


def t_port_tmp():
    import socket
    p = smtest.free_port()
    s = socket.socket()
    s.bind(("127.0.0.1", p))
    s.close()
    rc, out = child("d = smtest.tempdir()\nopen(d + '/f', 'w').close()\nprint(d)")
    d = out.strip()
    return 1024 <= p <= 65535 and rc == 0 and d and not os.path.exists(d)


t.run("free_port is bindable; tempdir is removed at exit", t_port_tmp)


def t_pdeathsig():
    # A child starts `sleep` through smtest.spawn and is SIGKILLed: sleep must die too.
    p = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, %r)\n"
                          "import smtest\np = smtest.spawn(['sleep', '30'])\n"
                          "print(p.pid, flush=True)\ntime.sleep(30)" % LIB],
                         stdout=subprocess.PIPE)
    pid = int(p.stdout.readline())
    was = alive(pid)
    p.kill()
    p.wait()
    smtest.wait_for(lambda: not alive(pid), timeout=30)
    return was and not alive(pid)


t.run("spawn: the child dies when the test process is killed (PR_SET_PDEATHSIG)", t_pdeathsig)


def ignores_term(pid):
    """SIGTERM is in the process's ignored set (SigIgn in /proc/PID/status)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except OSError:
        pass
    return False


def t_stop_kill():
    # Wait until the shell ignores TERM (a state, not a delay), then stop it: TERM is ignored,
    # so only SIGKILL after the grace period ends it (no sooner than the grace: a lower bound).
    p = smtest.spawn(["sh", "-c", "trap '' TERM; sleep 30"])
    smtest.wait_for(lambda: ignores_term(p.pid), timeout=30, what="the shell ignoring SIGTERM")
    t0 = time.monotonic()
    smtest.stop(p, grace=0.3)
    dt = time.monotonic() - t0
    return p.poll() == -signal.SIGKILL and dt >= 0.3


t.run("stop: SIGTERM, then SIGKILL after the grace period", t_stop_kill)


def t_stop_term():
    # A grace of 60 s: a process that obeyed TERM ends long before it (SIGKILL would say so
    # in the status anyway).
    p = smtest.spawn(["sleep", "30"])
    t0 = time.monotonic()
    smtest.stop(p, grace=60)
    return p.poll() == -signal.SIGTERM and time.monotonic() - t0 < 30


t.run("stop: a process that obeys SIGTERM is not killed", t_stop_term)


def redis_sub(s):
    try:
        r = smtest.Redis()
    except smtest.Unavailable as e:
        s.skip("Redis fixture", str(e))
        return
    s.is_(r.cmd("PING"), "PONG", "PING")
    s.is_(r.cmd("SET", "k", "v\r\n"), "OK", "SET")
    s.is_(r.cmd("GET", "k"), "v\r\n", "GET returns binary-safe value")
    s.is_(r.cmd("GET", "nope"), None, "GET of a missing key is None")
    s.is_(r.cmd("RPUSH", "l", "a", "b"), 2, "integer reply")
    s.is_(r.cmd("LRANGE", "l", 0, -1), ["a", "b"], "array reply")
    s.ok(os.path.exists(r.unix_path), "unix socket exists in the temp dir")
    try:
        r.cmd("NOSUCHCMD")
        s.ok(False, "error reply raises")
    except smtest.Redis.ReplyError:
        s.ok(True, "error reply raises")
    r.kill()
    try:
        r.cmd("PING", timeout=0.5)
        s.ok(False, "after kill() the server is gone")
    except OSError:
        s.ok(True, "after kill() the server is gone")
    r.start()
    s.is_(r.cmd("PING"), "PONG", "start() brings it back on the same port")
    pid = r.proc.pid
    r.stop()
    s.ok(not alive(pid), "stop() ends it")


t.subtest("Redis fixture: private redis-server on a free port", redis_sub)


def standin_sub(s):
    import threading
    st = smtest.Standin()
    ids = st.state({"customers": [{"email": "a@example.com"}]})["ids"]
    s.ok(len(ids["customers"]) == 1 and ids["customers"][0].startswith("cus_"), "state() gives ids")
    code, hdrs, body = st.get("/v1/customers?email=a%40example.com")
    s.ok(code == 200 and body["data"][0]["id"] == ids["customers"][0], "get() with the default key")
    threading.Timer(0.2, lambda: st.get("/v1/account")).start()
    s.is_(st.wait_count("account", 1, timeout=3), 1, "wait_count waits for a request")
    s.is_(st.wait_count("charges", 1, timeout=0.1), 0, "wait_count gives up after its timeout")
    s.is_(st.count("*"), 2, "count('*')")
    pid = st.proc.pid
    st.stop()
    s.ok(not alive(pid), "stop() ends it")


t.subtest("Standin fixture", standin_sub)

sys.exit(t.done())
