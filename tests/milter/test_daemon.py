#!/usr/bin/env python3
"""test_daemon.py - stripe-milter as a daemon: -n, -V, usage, key file checks, Background +
PidFile + UserID + SocketGroup + UMask, LookupAddress modes, a failed reload keeping the old
configuration, an inet6 socket.
"""
import grp
import os
import pwd
import signal
import socket
import stat
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

SCRIPT = os.path.join(smtest.srcdir(), "tests", "milter", "mt_message.lua")
SEED = os.path.join(smtest.srcdir(), "tests", "demo", "seed.json")


def daemon(*args):
    p = subprocess.run([mta.binary("stripe-milter")] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def write(path, text, mode=0o600):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
        f.write(text)
    os.chmod(path, mode)


def lookup(sock, expect, **env):
    e = {"MT_SOCKET": sock, "MT_EXPECT": expect, "MT_STATUS": "*"}
    e.update({k.upper(): v for k, v in env.items()})
    return mta.miltertest(SCRIPT, e)


def main():
    t = smtest.TAP()
    try:
        mta.binary("stripe-milter")
        s = smtest.Standin(args=["--seed", SEED])
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    d = smtest.tempdir("sm-daemon-")
    os.chmod(d, 0o755)
    key = os.path.join(d, "key")
    write(key, "sk_test_daemon0123456789abcdefWXYZ\n")
    base = "StripeKeyFile %s\nStripeAPIBase %s\nSyslog no\nStatsFile %s/stats/snapshot\n" % (key, s.url, d)
    try:
        run(t, s, d, key, base)
    finally:
        s.stop()
    mta.assert_clean(t)
    return t.done()


def run(t, s, d, key, base):
    conf = os.path.join(d, "ok.conf")
    write(conf, base + "Socket unix:%s/x.sock\n" % d, 0o644)
    rc, out = daemon("-n", "-c", conf)
    t.ok(rc == 0 and "OK (Stripe key sk_test_...WXYZ, test mode)" in out and "LookupTimeout" in out,
         "-n: checks the config and key, prints effective settings, masked key", out)
    t.ok("sk_test_daemon" not in out, "-n never prints the key")
    t.ok("# permission rak_customer_read (Customers: Read): granted" in out and
         "# permission rak_checkout_session_read (Checkout Sessions: Read): granted" in out and
         "rak_event_read" not in out,
         "-n: probes the permissions this configuration needs (guest buyers by default; events "
         "only with EventsPollInterval)", out)
    s.add({"keys": {"rk_test_daemon_nocheckout": {"missing": ["rak_checkout_session_read",
                                                            "rak_event_read"]}}})
    rk = os.path.join(d, "rk")
    write(rk, "rk_test_daemon_nocheckout\n")
    cn = os.path.join(d, "nocs.conf")
    write(cn, base.replace(key, rk) + "Socket unix:%s/y.sock\nEventsPollInterval 60\n"
          "RedisHost 127.0.0.1\n" % d, 0o644)
    rc, out = daemon("-n", "-c", cn)
    t.ok(rc == 0 and "# warning: permission rak_checkout_session_read (Checkout Sessions: Read) "
         "MISSING: without it, guest buyers" in out and "# warning: permission rak_event_read "
         "(Events: Read) MISSING: without it, events polling" in out,
         "-n: a missing optional permission is a warning saying what is lost", out)
    bad = os.path.join(d, "bad.conf")
    write(bad, base + "LookupTimeout soon\n", 0o644)
    rc, out = daemon("-n", "-c", bad)
    t.ok(rc == 1 and "bad.conf:5: LookupTimeout: 'soon'" in out, "-n: a bad option names file and line", out)
    meta = os.path.join(d, "meta.conf")
    write(meta, base + "MetadataKeys tier, plan:code\n", 0o644)
    rc, out = daemon("-n", "-c", meta)
    t.ok(rc == 1 and "MetadataKeys: 'plan:code' cannot be part of a header name" in out,
         "-n: a metadata key that cannot name an X-Stripe-Metadata-<key> header is refused", out)
    write(meta, base + "MetadataKeys tier, account.ref, a/b+c@d_e-f\n", 0o644)
    rc, out = daemon("-n", "-c", meta)
    t.is_(rc, 0, "-n: metadata keys of letters, digits and ._+/@- are fine")
    hook = os.path.join(d, "hook.conf")
    write(hook, base + "Socket unix:%s/x.sock\nWebhookListen 127.0.0.1:9898\n" % d, 0o644)
    rc, out = daemon("-n", "-c", hook)
    t.ok(rc == 1 and "WebhookListen needs WebhookSecretFile" in out,
         "-n: WebhookListen without a secret file is refused (it would refuse every delivery)", out)
    rc, out = daemon("-V")
    t.ok(rc == 0 and out.startswith("stripe-milter "), "-V prints the version")
    rc, out = daemon("-x")
    t.is_(rc, 2, "unknown flag: exit 2")
    os.chmod(key, 0o644)
    rc, out = daemon("-n", "-c", conf)
    t.ok(rc == 1 and "accessible by group or others" in out and "chmod 600" in out,
         "a group-readable key file is refused, saying what to do", out)
    os.chmod(key, 0o600)
    pk = os.path.join(d, "pk")
    write(pk, "pk_test_publishable\n")
    c2 = os.path.join(d, "pk.conf")
    write(c2, base.replace(key, pk), 0o644)
    rc, out = daemon("-n", "-c", c2)
    t.ok(rc == 1 and "pk_" in out and "pk_test_publishable" not in out,
         "a publishable key is refused without echoing it", out)

    # Background, PidFile, UserID, SocketGroup, UMask
    if os.geteuid() != 0:
        t.skip("daemon mode with UserID", "needs root")
        return
    nobody = pwd.getpwnam("nobody")
    # -n checks the key as UserID, the user a reload reads it as: root-only is refused
    cu = os.path.join(d, "user.conf")
    write(cu, base + "Socket unix:%s/u.sock\nUserID nobody\n" % d, 0o644)
    rc, out = daemon("-n", "-c", cu)
    t.ok(rc == 1 and "Permission denied" in out and "checked as UserID nobody" in out,
         "-n with UserID: a key only root can read is refused (a reload could not re-read it)", out)
    # the documented setup: root:<UserID's group> 0440
    os.chown(key, 0, nobody.pw_gid)
    os.chmod(key, 0o440)
    rc, out = daemon("-n", "-c", cu)
    t.ok(rc == 0 and "files readable by nobody" in out, "-n with UserID: a key root:nogroup 0440 is OK", out)
    run_dir = os.path.join(d, "run")
    os.mkdir(run_dir)
    os.chmod(run_dir, 0o1777)
    pid_dir = os.path.join(d, "pid")     # the daemon's user may remove files here
    os.mkdir(pid_dir)
    os.chown(pid_dir, nobody.pw_uid, nobody.pw_gid)
    sock = os.path.join(run_dir, "m.sock")
    pidf = os.path.join(pid_dir, "m.pid")
    logf = os.path.join(d, "bg.log")
    c3 = os.path.join(d, "bg.conf")
    write(c3, base + "Socket unix:%s\nBackground yes\nPidFile %s\nUserID nobody\nSocketGroup postfix\n"
          "UMask 007\nLookupAddress envelope\nLogLevel debug\n" % (sock, pidf), 0o644)
    with open(logf, "w") as lf:
        rc = subprocess.run([mta.binary("stripe-milter"), "-v", "-c", c3], stdout=lf, stderr=lf,
                            timeout=30).returncode
    t.is_(rc, 0, "Background yes: the starting process returns 0 once the daemon serves")
    t.ok(os.path.exists(sock), "and by then the socket exists")
    smtest.wait_for(lambda: os.path.exists(pidf) and os.path.exists(sock), timeout=30,
                    what="the pid file and the socket")
    pid = int(open(pidf).read().strip())
    status = open("/proc/%d/status" % pid).read()
    uid = [l for l in status.splitlines() if l.startswith("Uid:")][0].split()[1:]
    t.is_(uid, [str(pwd.getpwnam("nobody").pw_uid)] * 4, "UserID: every uid is nobody's")
    st = os.stat(sock)
    t.is_((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, stat.S_IMODE(st.st_mode) & 0o077),
          ("nobody", "postfix", 0o070), "socket: owned by UserID, SocketGroup postfix, UMask 007")
    rc, out = lookup("unix:" + sock, r"^v=2; found;", mt_envfrom="<pat@customer.test>",
                     mt_from="Jenny <jenny@customer.test>", mt_status="past_due")
    t.ok(rc == 0, "LookupAddress envelope: the envelope sender is looked up, not From", out)
    pst = os.stat(pidf)
    t.ok(pst.st_uid == 0 and stat.S_IMODE(pst.st_mode) & 0o022 == 0,
         "the pid file stays root's, writable by root only (not handed to UserID)")
    r = subprocess.run([mta.binary("stripe-milter"), "-f", "-v", "-c", c3],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    t.ok(r.returncode == 1 and b"locked by a running stripe-milter (pid %d)" % pid in r.stdout,
         "a second daemon with the same PidFile is refused, naming the running one",
         r.stdout.decode()[-800:])
    rc, out = lookup("unix:" + sock, r"^v=2; found;", mt_envfrom="<pat@customer.test>")
    t.is_(rc, 0, "and the first one keeps its socket and serves")

    # key rotation under UserID: the file replaced in place, SIGUSR1, the next lookup uses it
    new_key = "sk_test_rotated0123456789abcdefNEWK"
    tmp = key + ".new"
    write(tmp, new_key + "\n", 0o440)
    os.chown(tmp, 0, nobody.pw_gid)
    os.rename(tmp, key)
    mark = len(open(logf).read())
    os.kill(pid, signal.SIGUSR1)
    smtest.wait_for(lambda: "reload" in open(logf).read()[mark:], timeout=30)
    log = open(logf).read()[mark:]
    t.ok("configuration reloaded" in log and "sk_test_...NEWK" in log,
         "reload under UserID re-reads the rotated key", log[-1500:])
    s.reset()
    rc, out = lookup("unix:" + sock, r"^v=2; found;", mt_envfrom="<jenny@customer.test>")
    auth = [e["headers"].get("Authorization", "") for e in s.requests().get("log", [])]
    t.ok(rc == 0 and auth and all(a == "Bearer " + new_key for a in auth),
         "the next lookup after the reload uses the new key (the stand-in saw only it)",
         "%s %s %s" % (out[-500:], [a[:16] for a in auth], open(logf).read()[-3000:]))

    # a reload that fails keeps the old configuration
    with open(c3, "a") as f:
        f.write("NoSuchOption 1\n")
    mark = len(open(logf).read())
    os.kill(pid, signal.SIGUSR1)
    smtest.wait_for(lambda: "reload failed" in open(logf).read()[mark:], timeout=30)
    log = open(logf).read()
    t.ok("reload failed: keeping the previous configuration" in log and "unknown option 'NoSuchOption'" in log,
         "a failed reload is logged with the reason", log[-1500:])
    rc, out = lookup("unix:" + sock, r"^v=2; found;", mt_envfrom="<jenny@customer.test>")
    t.is_(rc, 0, "and the milter still serves with the old configuration")
    os.kill(pid, signal.SIGTERM)
    smtest.wait_for(lambda: smtest.process_state(pid) in (None, "Z"), timeout=60)
    t.ok(smtest.process_state(pid) in (None, "Z"), "SIGTERM stops the background daemon")
    t.ok(not os.path.exists(pidf), "the pid file is removed at exit")
    log = open(logf).read()
    mta.LIBMILTER_LINES.extend(mta.libmilter_lines(log))
    for mark in mta._SANITIZER_MARKS:
        if mark in log:
            mta.SANITIZER_REPORTS.append(log)

    # a daemon that cannot start fails the start command, although it detached first
    badkey = os.path.join(d, "badkey")
    write(badkey, "sk_test_daemon0123456789abcdefWXYZ\n", 0o644)
    c4 = os.path.join(d, "bgbad.conf")
    write(c4, base.replace(key, badkey) + "Socket unix:%s/bad.sock\nBackground yes\n" % run_dir, 0o644)
    r = subprocess.run([mta.binary("stripe-milter"), "-v", "-c", c4], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    t.ok(r.returncode == 1 and b"accessible by group or others" in r.stdout,
         "Background yes with a bad key: the start command exits 1 and says why", r.stdout.decode())
    # the same with the log going to syslog (no -v): stderr is kept until the daemon is ready
    c5 = os.path.join(d, "bgsys.conf")
    write(c5, base.replace(key, badkey).replace("Syslog no", "Syslog yes") +
          "Socket unix:%s/bad2.sock\nBackground yes\n" % run_dir, 0o644)
    r = subprocess.run([mta.binary("stripe-milter"), "-c", c5], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    t.ok(r.returncode == 1 and b"accessible by group or others" in r.stderr,
         "Background yes, Syslog yes, a bad key: the start command exits 1 and says why on stderr",
         r.stderr.decode())
    c6 = os.path.join(d, "nodir.conf")
    write(c6, base.replace("Syslog no", "Syslog yes") + "Socket unix:%s/no/such/dir/m.sock\n"
          "Background yes\n" % d, 0o644)
    r = subprocess.run([mta.binary("stripe-milter"), "-c", c6], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    t.ok(r.returncode == 1 and b"does not exist" in r.stderr and b"install -d" in r.stderr,
         "a socket folder that does not exist: the start says which and how to create it",
         r.stderr.decode())

    # LookupAddress header-from-or-envelope, and an inet6 socket
    m = mta.Milter(s, None, socket="unix", options={"LookupAddress": "header-from-or-envelope"})
    try:
        rc, out = lookup(m.socket, r"^v=2; found;", mt_envfrom="<pat@customer.test>", mt_from="<<<bad",
                         mt_status="past_due")
        t.is_(rc, 0, "header-from-or-envelope: a bad From falls back to the envelope")
        rc, out = lookup(m.socket, r"^v=2; found;", mt_envfrom="<pat@customer.test>",
                         mt_from="jenny@customer.test", mt_status="active")
        t.is_(rc, 0, "header-from-or-envelope: a good From wins")
    finally:
        m.stop()
    port = smtest.free_port()
    m = mta.Milter(s, None, socket="unix", options={"Socket": "inet6:%d@::1" % port}, wait=False)
    try:
        # miltertest 1.6.0 cannot connect over IPv6: a milter option negotiation by hand.
        ok = smtest.wait_port(port, 5, host="::1")
        reply = b""
        if ok:
            with socket.create_connection(("::1", port), timeout=5) as c:
                c.sendall(struct.pack("!IcIII", 13, b"O", 6, 0x1ff, 0x1fffff))
                reply = c.recv(64)
        t.ok(len(reply) >= 5 and reply[4:5] == b"O", "inet6 socket on ::1 negotiates (%r)" % reply[:8],
             m.log()[-800:])
    finally:
        m.stop()


if __name__ == "__main__":
    sys.exit(main())
