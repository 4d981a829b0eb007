#!/usr/bin/env python3
"""test_stats_local.py - `stripe-milterctl stats` on one host without Redis: the snapshot file
the daemon keeps (StatsFile, format in milter/mf_stats.h), read by `stats`, `stats --json` and
`stats --watch`.

A daemon without Redis answers `stats` with its own figures (source "local", state live,
its pid), text and JSON agreeing with the messages sent; --watch refreshes with rates; the
file is 0644 in a folder the daemon made, and started as root with UserID both belong to
that user (the systemd case: RuntimeDirectory is root's). A second daemon given the same
file leaves it alone and says why. A clean stop leaves a final snapshot shown as stopped
(exit 0); after kill -9 the snapshot is shown STALE at once (no process holds its lock;
exit 1), not as live; a stopped (SIGSTOP) daemon still holds it and turns stale after two
of its intervals, then live again after SIGCONT. A reload moving StatsFile writes the new
path and removes the old file. With Redis `stats` stays fleet-wide and
`stats --local` reads the snapshot. A missing, malformed or symlinked file gets a clear
error and exit 1, without echoing the file. Every wait is on a condition with a deadline.
"""
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

SEED = os.path.join(smtest.srcdir(), "tests", "demo", "seed.json")
SCRIPT = os.path.join(smtest.srcdir(), "tests", "milter", "mt_message.lua")


ctl = mta.ctl


def send(m, sender, expect="."):
    rc, out = mta.miltertest(SCRIPT, {"MT_SOCKET": m.socket, "MT_ENVFROM": "<%s>" % sender, "MT_FROM": sender,
                                      "MT_EXPECT": expect, "MT_STATUS": "*"})
    if rc != 0:
        raise AssertionError(out)


def jstats(conf, *args):
    rc, out, err = ctl(conf, "--json", "stats", *args)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, err


def wait_json(conf, cond, what, timeout=40.0, args=()):
    """Polls `stats --json` until cond(rc, doc) holds; returns (rc, doc)."""
    last = []

    def check():
        rc, st, err = jstats(conf, *args)
        last[:] = [rc, st, err]
        return st is not None and cond(rc, st)
    if not smtest.wait_for(check, timeout=timeout):
        raise AssertionError("timed out waiting for %s: %r" % (what, last))
    return last[0], last[1]


def state(st):
    return st["instances"][0]["state"]


def conf_with(m, path, **opts):
    """A copy of m's config with other options (for the tool only)."""
    with open(m.conf) as f:
        lines = [ln for ln in f if ln.split(" ", 1)[0] not in opts]
    with open(path, "w") as f:
        f.writelines(lines)
        for k, v in opts.items():
            f.write("%s %s\n" % (k, v))
    return path


def main():
    t = smtest.TAP()
    ms = []
    try:
        if not shutil.which("miltertest"):
            raise smtest.Unavailable("miltertest is not installed")
        mta.binary("stripe-milterctl")
        s = smtest.Standin(args=["--seed", SEED])
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    redis = None
    try:
        run(t, s, ms)
        try:
            redis = smtest.Redis()
        except smtest.Unavailable as e:
            if smtest.ci():
                t.ok(False, "redis-server needed for the --local case: %s" % e)
            else:
                t.skip("stats with Redis and --local", str(e))
        if redis:
            with_redis(t, s, redis, ms)
    finally:
        for m in ms:
            m.stop()
        if redis:
            redis.stop()
        s.stop()
    mta.assert_clean(t)
    return t.done()


def run(t, s, ms):
    m = mta.Milter(s, None, options={"InstanceName": "solo"})
    ms.append(m)
    rc, st = wait_json(m.conf, lambda rc, st: rc == 0, "the first snapshot")
    t.is_((st["source"], st["snapshot"]["why"], state(st), st["snapshot"]["pid"], st["snapshot"]["writer_running"]),
          ("local", "no Redis configured", "live", m.proc.pid, True),
          "no Redis: stats reads this host's snapshot; live, its pid, the writer running")
    t.is_(st["instances"][0]["instance"], "solo", "the instance is named as in Redis (InstanceName)")
    t.ok("keys" not in st, "no Redis key count without Redis")
    sf = os.stat(m.stats_file)
    t.is_((oct(sf.st_mode & 0o777), oct(os.stat(os.path.dirname(m.stats_file)).st_mode & 0o777)),
          ("0o644", "0o755"), "snapshot 0644 in a folder of mode 0755 the daemon made")

    send(m, "jenny@customer.test", "found")
    send(m, "jenny@customer.test", "found")
    send(m, "nobody@elsewhere.test", "not%-found")
    rc, st = wait_json(m.conf, lambda rc, st: st["totals"]["messages"]["total"] == 3, "three messages")
    tm = st["totals"]["messages"]
    t.is_((rc, tm["found"], tm["not_found"], st["totals"]["cache"]["l1_hits"]), (0, 2, 1, 1),
          "--json: messages by result and the cache's L1 hit, as sent")
    t.is_(st["instances"][0]["messages"]["total"], 3, "the instance and its totals agree")

    rc, out, err = ctl(m.conf, "stats")
    t.ok(rc == 0 and "this host's daemon only (no Redis configured), from %s:" % m.stats_file in out and
         "live: pid %d keeps the file" % m.proc.pid in out and "this instance:" in out,
         "text: says where from, live, and the pid", out + err)
    t.like(out, r"(?m)^  all messages\s+3\s+= 2 \+ 1 \+ 0 \+ 0 \+ 0$", "text: the same groups, adding up")
    t.ok("cache keys" not in out, "text: no Redis key count")

    # --watch, bounded by --count: three refreshes with rates; a message in between shows
    p = subprocess.Popen([mta.binary("stripe-milterctl"), "-c", m.conf, "stats", "--watch", "1", "--count", "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    send(m, "pat@customer.test", ".")
    out, err = p.communicate(timeout=60)
    out = out.decode()
    t.ok(p.returncode == 0 and out.count("this instance:") == 3 and out.count("live: pid") == 3 and "/s" in out,
         "stats --watch 1 --count 3: three refreshes of the local view, with rates", out[-3000:] + err.decode())
    p = subprocess.run([mta.binary("stripe-milterctl"), "-c", m.conf, "--json", "stats", "--watch", "1",
                        "--count", "2"], stdout=subprocess.PIPE, timeout=60)
    docs = [json.loads(x) for x in p.stdout.decode().replace("}\n{", "}\n\x00{").split("\x00")]
    t.is_((p.returncode, [d["source"] for d in docs]), (0, ["local", "local"]),
          "--json --watch: one document per refresh")

    # the systemd case: started as root, becomes UserID; its folder and file are that user's
    if os.geteuid() == 0:
        mu = mta.Milter(s, None, options={"UserID": "nobody", "StripeKeyFile": None, "StripeKey": mta.Milter.KEY})
        ms.append(mu)
        rc, st = wait_json(mu.conf, lambda rc, st: rc == 0, "the UserID daemon's snapshot")
        nobody = pwd.getpwnam("nobody").pw_uid
        t.is_((os.stat(mu.stats_file).st_uid, os.stat(os.path.dirname(mu.stats_file)).st_uid, state(st)),
              (nobody, nobody, "live"), "UserID nobody: the folder (made as root) and the file are nobody's; live")
        # rewritten as that user, not only created at start
        first = os.stat(mu.stats_file).st_ino
        t.ok(smtest.wait_for(lambda: os.stat(mu.stats_file).st_ino != first, timeout=20),
             "the daemon, as nobody, replaces the file every StatsInterval")
        mu.stop()
        ms.remove(mu)
    else:
        t.skip("UserID daemon", "needs root")

    # a second daemon on the same file: refuses to take it over
    m2 = mta.Milter(s, None, options={"StatsFile": m.stats_file, "InstanceName": "intruder"})
    ms.append(m2)
    t.ok(smtest.wait_for(lambda: "kept by another running stripe-milter (pid %d)" % m.proc.pid in m2.log(),
                         timeout=20), "a second daemon with the same StatsFile says whose it is", m2.log()[-2000:])
    rc, st, err = jstats(m.conf)
    t.is_((st["instances"][0]["instance"], st["snapshot"]["pid"]), ("solo", m.proc.pid),
          "and the file stays the first daemon's")
    m2.stop()
    ms.remove(m2)

    # a reload moving StatsFile: the new file (its folder made by the running daemon), the old one gone
    old, moved = m.stats_file, os.path.join(m.dir, "stats2", "snapshot")
    m.reload({"StatsFile": moved})
    t.ok(smtest.wait_for(lambda: os.path.exists(moved) and not os.path.exists(old), timeout=20),
         "reload moving StatsFile: written at the new path, the old file removed")
    rc, st = wait_json(m.conf, lambda rc, st: rc == 0, "the moved snapshot")
    t.is_((state(st), st["snapshot"]["path"], st["totals"]["messages"]["total"]), ("live", moved, 4),
          "and read there, live, with the same counters")

    # hung (SIGSTOP): still holds the file, stale after two intervals (+2 s), live again after SIGCONT
    m.proc.send_signal(signal.SIGSTOP)
    try:
        rc, st = wait_json(m.conf, lambda rc, st: state(st) == "stale", "a stopped process's snapshot stale",
                           timeout=30)
        rc2, out, err = ctl(m.conf, "stats")
    finally:
        m.proc.send_signal(signal.SIGCONT)
    t.is_((rc, st["snapshot"]["writer_running"], rc2), (1, True, 1),
          "hung daemon: stale (exit 1) though it still holds the file")
    t.ok("keeps the file but has not rewritten it" in out, "text: says it may hang", out[:600])
    wait_json(m.conf, lambda rc, st: state(st) == "live", "live again after SIGCONT")
    t.ok(True, "live again after SIGCONT")

    # clean stop: the final snapshot, stopped, exit 0, with the figures
    send(m, "jenny@customer.test", "found")
    m.stop()
    ms.remove(m)
    rc, st, err = jstats(m.conf)
    t.is_((rc, state(st), st["snapshot"]["writer_running"], st["totals"]["messages"]["total"]),
          (0, "stopped", False, 5), "clean stop: the final snapshot (all 5 messages), stopped, exit 0")
    rc, out, err = ctl(m.conf, "stats")
    t.ok(rc == 0 and "stopped: the final snapshot of a clean stop" in out, "text: stopped", out[:600])

    # kill -9: the snapshot is stale at once, never live
    mk = mta.Milter(s, None, options={"StatsInterval": "60"})
    ms.append(mk)
    wait_json(mk.conf, lambda rc, st: rc == 0 and state(st) == "live", "the new daemon live")
    pid = mk.proc.pid
    mk.proc.send_signal(signal.SIGKILL)
    mk.proc.wait()
    ms.remove(mk)
    rc, st, err = jstats(mk.conf)
    t.is_((rc, state(st), st["snapshot"]["writer_running"], st["snapshot"]["pid"], st["instances"][0]["interval_s"]),
          (1, "stale", False, pid, 60),
          "kill -9: stale at once (within its 60 s interval), no writer, exit 1")
    rc, out, err = ctl(mk.conf, "stats")
    t.ok(rc == 1 and "STALE: no running daemon keeps it (pid %d was killed or crashed)" % pid in out and
         "not live" in out and " live: " not in out, "text: STALE, never live", out[:600])
    p = subprocess.run([mta.binary("stripe-milterctl"), "-c", mk.conf, "stats", "--watch", "1", "--count", "2"],
                       stdout=subprocess.PIPE, timeout=60)
    t.ok(p.returncode == 1 and p.stdout.decode().count("STALE") == 2, "--watch: stale each refresh, exit 1")

    # bad files: missing, malformed, a symbolic link; nothing of the file is echoed
    d = smtest.tempdir("sm-statsfile-")
    missing = conf_with(mk, os.path.join(d, "missing.conf"), StatsFile=os.path.join(d, "none", "snapshot"))
    rc, out, err = ctl(missing, "stats")
    t.ok(rc == 1 and "no statistics snapshot at %s/none/snapshot: the daemon is not running here" % d in err,
         "missing snapshot: says so, exit 1", err)
    bad = os.path.join(d, "bad")
    with open(bad, "w") as f:
        f.write("stripe-milter-stats 1\ninstance x\nlookups 3\nSECRET-LOOKING text here\n")
    rc, out, err = ctl(conf_with(mk, os.path.join(d, "bad.conf"), StatsFile=bad), "stats")
    t.ok(rc == 1 and "malformed line 4" in err and "SECRET" not in err + out, "malformed: the line number only", err)
    with open(os.path.join(d, "other"), "w") as f:
        f.write("stripe-milter-stats 1\ninstance x\nlookups 3\nstopped 1\n")
    os.symlink(os.path.join(d, "other"), os.path.join(d, "link"))
    rc, out, err = ctl(conf_with(mk, os.path.join(d, "link.conf"), StatsFile=os.path.join(d, "link")), "stats")
    t.ok(rc == 1 and "link" in err and out == "", "a symbolic link is not followed", err)
    rc, out, err = ctl(conf_with(mk, os.path.join(d, "other.conf"), StatsFile=os.path.join(d, "other")), "stats")
    t.ok(rc == 0 and "stopped:" in out, "the same file, not linked, reads (the link was the only fault)", out + err)
    rc, out, err = ctl(conf_with(mk, os.path.join(d, "rel.conf"), StatsFile="relative/snapshot"), "stats")
    t.ok(rc == 2 and "StatsFile 'relative/snapshot' must be the absolute path" in err, "relative StatsFile: config error", err)


def with_redis(t, s, redis, ms):
    m = mta.Milter(s, redis, options={"InstanceName": "mx-r"})
    ms.append(m)
    rc, st = wait_json(m.conf, lambda rc, st: rc == 0 and st["instances"], "the Redis publication")
    t.is_((st["source"], st["instances"][0]["instance"], "keys" in st), ("redis", "mx-r", True),
          "with Redis: stats stays fleet-wide (source redis)")
    rc, st = wait_json(m.conf, lambda rc, st: rc == 0, "the local snapshot", args=("--local",))
    t.is_((st["source"], st["snapshot"]["why"], state(st)), ("local", "--local", "live"),
          "with Redis: stats --local reads this host's snapshot")
    redis.kill()
    rc, out, err = ctl(m.conf, "stats")
    t.ok(rc == 1 and "stripe-milterctl stats --local" in err, "Redis down: exit 1, points to --local", err)
    rc, out, err = ctl(m.conf, "stats", "--local")
    t.ok(rc == 0 and "live: pid %d" % m.proc.pid in out, "Redis down: --local still answers", out[:600] + err)
    m.stop()
    ms.remove(m)


if __name__ == "__main__":
    sys.exit(main())
