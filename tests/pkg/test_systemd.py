#!/usr/bin/env python3
"""test_systemd.py - the Debian package under systemd as PID 1, in a booted Debian 12 root.

What a new administrator's host does, with systemd itself applying the unit's sandbox:

  Postfix root (Debian 12 minbase + systemd, dbus, Postfix "Internet Site", swaks, the
  package's dependencies; tests/pkg/mkroot.sh, cached under /var/cache/stripe-milter-tests):
  - the freshly built .deb (STRIPE_MILTER_DEB, else built here with dpkg-buildpackage from a
    copy of the tree) is installed with README.md's Install commands, run inside the root in
    order from `apt-get install` on (build and source-install lines run on the host in
    tests/pkg/test_deb.py); the unit is enabled and waits for the key;
  - `systemctl start`: the daemon runs as stripe-milter with no capability, seccomp on;
  - README step 5: swaks to postmaster@$(postconf -h myhostname) through the root's Postfix
    gets `X-Stripe-Lookup: v=2; found` (and the README's `systemctl reload`s work);
  - key rotation: a new key, `systemctl reload`, the Stripe stand-in sees only the new key
    in the requests after that;
  - `kill -9` of the main process: Restart= brings a new one, which enriches mail again;
  - `systemctl stop`; the boot's journal has no error line of the unit, no SIGSYS (a system
    call outside SystemCallFilter kills the daemon with it), no line from libmilter;
  - `systemd-analyze security stripe-milter`: printed, fails above 2.0;
  - README "Removing it": the postconf lines undo step 3 (main.cf as before it), purge
    leaves nothing.
  Sendmail root (the same without Postfix, with Debian's sendmail): the unit starts although
  /var/spool/postfix does not exist, the socket is where conf/sendmail.mc puts it
  (/run/stripe-milter), a message through Sendmail gets `found`; reload, stop; clean journal.

How: the cached root is never written. Each run mounts an overlay (the root read-only below,
a folder under /tmp above), edits it before boot (Postfix's and Sendmail's SMTP port: a
free loopback port, as the root shares the host's network to reach the stand-in on the
host's loopback), boots it with `systemd-nspawn --register=no -b`, and runs commands inside
with nsenter into its PID 1's namespaces (`machinectl`/`systemd-run -M` need a registered
machine). Everything waits on conditions with deadlines.

Not in `make check`: `make check-systemd` (and .ci/run). Needs root, debootstrap and
systemd-nspawn (./install-deps.sh); builds the roots on first use (a few minutes, network
to the Debian mirror), skips (fails under CI=true) when they cannot be made.
"""
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "pkg"))
import mta  # noqa: E402
import smtest  # noqa: E402
import test_deb  # noqa: E402

CACHE = "/var/cache/stripe-milter-tests/roots"
KEY1 = "rk_test_systemdtest0123456789abcKEY1"
KEY2 = "rk_test_systemdtest0123456789abcKEY2"
CUSTOMER = test_deb.CUSTOMER
# Two more customers (added to the stand-in), one per message after the README's, so that each
# lookup goes to Stripe (a customer already looked up is cached).
MORE = {1: ("after-reload@customer.test", "cus_systemd_reload"),
        2: ("after-restart@customer.test", "cus_systemd_restart")}
SEED = test_deb.SEED
MAX_EXPOSURE = 2.0
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sh(cmd, **kw):
    return test_deb.sh(cmd, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(fn, timeout, step=0.2):
    """Polls fn() until it returns something true or the deadline passes; returns the last value."""
    end = time.time() + timeout
    v = fn()
    while not v and time.time() < end:
        time.sleep(step)    # poll interval of a wait on a condition with a deadline
        v = fn()
    return v


class Machine:
    """A booted copy of a cached root: overlay mount, systemd-nspawn -b, nsenter."""

    def __init__(self, t, kind, work, name=None):
        self.t = t
        self.kind = kind
        self.base = os.path.join(CACHE, "bookworm-" + kind)
        self.dir = os.path.join(work, name or kind)
        self.upper = os.path.join(self.dir, "upper")
        self.root = os.path.join(self.dir, "merged")
        self.log = os.path.join(self.dir, "console.log")
        self.proc = None
        self.leader = None
        for d in (self.upper, os.path.join(self.dir, "wk"), self.root):
            os.makedirs(d)
        rc, out = sh("mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s" % (
            self.base, self.upper, os.path.join(self.dir, "wk"), self.root))
        if rc != 0:
            raise smtest.Unavailable("cannot mount an overlay on %s: %s" % (self.base, out))
        self.mounted = True

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def boot(self):
        self.proc = smtest.spawn(["systemd-nspawn", "--register=no", "--keep-unit", "--console=pipe", "-q",
                                  "-D", self.root, "-b"], log=self.log)
        self.leader = wait_for(self._find_leader, 60)
        if not self.leader:
            return False
        state = wait_for(lambda: self.run("systemctl is-system-running --wait", timeout=300)[1].strip()
                         in ("running", "degraded") and "up", 300)
        return bool(state)

    def _find_leader(self):
        """The container's PID 1: a descendant of systemd-nspawn whose own pid namespace calls it 1."""
        if self.proc.poll() is not None:
            return None
        parents = {}
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                st = open("/proc/%s/status" % p).read()
            except OSError:
                continue
            ppid = int(re.search(r"^PPid:\s+(\d+)", st, re.M).group(1))
            ns = re.search(r"^NSpid:\s+(.*)$", st, re.M).group(1).split()
            parents[int(p)] = (ppid, ns)
        for pid, (ppid, ns) in parents.items():
            if len(ns) < 2 or ns[-1] != "1":
                continue
            a = ppid
            for _ in range(4):
                if a == self.proc.pid:
                    return pid
                a = parents.get(a, (0, None))[0]
        return None

    def run(self, cmd, stdin=None, timeout=300):
        """A shell command inside the booted root (its namespaces, root folder, clean env)."""
        argv = ["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
                "env", "-i", "PATH=" + PATH, "LANG=C.UTF-8", "HOME=/root", "/bin/sh", "-c", cmd]
        r = subprocess.run(argv, input=stdin.encode() if stdin else None, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def ok(self, cmd, name, stdin=None):
        rc, out = self.run(cmd, stdin=stdin)
        self.t.ok(rc == 0, name, "ran in the %s root: %s\n%s" % (self.kind, cmd, out[-2500:]))
        return rc, out

    def unit_prop(self, prop):
        return self.run("systemctl show -P %s stripe-milter" % prop)[1].strip()

    def journal(self):
        return self.run("journalctl -b --no-pager -o short-monotonic")[1]

    def shutdown(self):
        if self.proc is not None and self.proc.poll() is None:
            if self.leader:
                self.run("systemctl poweroff --no-block", timeout=30)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                smtest.stop(self.proc, grace=10)
        if self.mounted:
            rc, out = sh("umount %s" % self.root)
            self.mounted = rc != 0


def journal_problems(journal):
    """The unit's error lines, SIGSYS kills, libmilter's lines and start failures in a journal."""
    bad = []
    for line in journal.splitlines():
        low = line.lower()
        # the unit's lines (systemd's about it, and the daemon's own): not the host name
        if "stripe-milter.service" not in low and not re.search(r" stripe-milter\[\d+\]: ", line):
            continue
        if ("sigsys" in low or "status=31" in low or "bad system call" in low or
                "failed at step" in low or "reload failed" in low or "control process exited" in low):
            bad.append(line)
        elif re.search(r"stripe-milter\[\d+\]: .*\b(error|cannot|failed)\b", low):
            bad.append(line)
        elif re.search(r"stripe-milter\[\d+\]: (mi_|smfi_|milter_|.*: mi_)", line):
            bad.append(line)            # libmilter's own syslog lines
    return bad


def journal_errors(m):
    """The boot's journal lines at priority err or worse that name stripe-milter."""
    out = m.run("journalctl -b -p err -o short-monotonic --no-pager -u stripe-milter.service; "
                "journalctl -b -p err -o short-monotonic --no-pager -t stripe-milter")[1]
    return [l for l in out.splitlines() if l.strip() and not l.startswith("-- ")]


def build_deb(t, work):
    deb = os.environ.get("STRIPE_MILTER_DEB")
    if deb:
        t.ok(os.path.exists(deb), "the .deb from STRIPE_MILTER_DEB: %s" % deb)
        return deb if os.path.exists(deb) else None
    src = os.path.join(work, "src")
    test_deb.copy_tree(src)
    t0 = time.time()
    rc, out = sh("dpkg-buildpackage -b -us -uc -j2", cwd=src, timeout=3600)
    debs = [f for f in os.listdir(work) if f.startswith("stripe-milter_") and f.endswith(".deb")]
    t.ok(rc == 0 and len(debs) == 1, "dpkg-buildpackage builds the .deb (%.0f s)" % (time.time() - t0),
         out[-2500:])
    return os.path.join(work, debs[0]) if rc == 0 and debs else None


def standin_keys(standin, since):
    """The keys of the Stripe requests the stand-in got after its first `since` requests;
    returns (keys, requests so far)."""
    st, _, body = smtest.http_call(standin.url, "GET", "/_standin/requests")
    rep = json.loads(body) if st == 200 else {"total": since, "log": []}
    log = rep["log"][max(0, len(rep["log"]) - (rep["total"] - since)):] if rep["total"] > since else []
    keys = []
    for e in log:
        auth = {k.lower(): v for k, v in e["headers"].items()}.get("authorization", "")
        keys.append(auth.split()[-1] if auth else "")
    return keys, rep["total"]


def mails(m, box):
    try:
        text = open(m.path(box), errors="replace").read()
    except OSError:
        return []
    return [x for x in re.split(r"^From \S+ .*$", text, flags=re.M) if x.strip()]


def header(msg, name):
    for n, v in mta.headers(msg.lstrip("\n").encode("utf-8", "surrogateescape")):
        if n.lower() == name.lower():
            return v
    return None


class PostfixHost:
    def __init__(self, t, m, standin, deb):
        self.t = t
        self.m = m
        self.standin = standin
        self.deb = deb
        self.port = free_port()
        self.seen = 0
        self.mainpid = None

    def prepare(self):
        """Before boot: Postfix's SMTP on a free loopback port, the .deb in /root."""
        mc = self.m.path("/etc/postfix/master.cf")
        text = open(mc).read()
        text2 = re.sub(r"^smtp(\s+inet\s)", r"127.0.0.1:%d\1" % self.port, text, count=1, flags=re.M)
        open(mc, "w").write(text2)
        # redis-server (the unit orders itself after it) on a free port too; apt's timers off
        # (they would take dpkg's lock under the test).
        rc = self.m.path("/etc/redis/redis.conf")
        if os.path.exists(rc):
            text_r = open(rc).read()
            open(rc, "w").write(re.sub(r"^port 6379$", "port %d" % free_port(), text_r, flags=re.M))
        for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
            link = self.m.path("/etc/systemd/system/" + timer)
            if not os.path.lexists(link):
                os.symlink("/dev/null", link)
        os.makedirs(self.m.path("/root/src"), exist_ok=True)
        sh("cp %s %s" % (shlex.quote(self.deb), shlex.quote(self.m.path("/root/"))))
        return text != text2

    def mail(self, n):
        """Sends one message as the stand-in customer; returns the delivered message (or None)."""
        t, m = self.t, self.m
        before = len(mails(m, "/var/mail/root"))
        rc, out = m.run("swaks --server 127.0.0.1:%d --from %s --to postmaster@$(postconf -h myhostname) "
                        "--header 'Subject: systemd test %d'" % (self.port, MORE[n][0], n))
        t.ok(rc == 0, "swaks: message %d accepted by the root's Postfix" % n, out[-1500:])
        got = wait_for(lambda: len(mails(m, "/var/mail/root")) > before and mails(m, "/var/mail/root"), 60)
        return got[-1] if got else None

    def check_found(self, msg, what, cus=CUSTOMER[1]):
        t = self.t
        t.ok(msg is not None, "%s: delivered to postmaster@myhostname (root's mailbox)" % what,
             self.m.run("tail -20 /var/log/mail.log; journalctl -b -n 30 --no-pager -u postfix@-")[1])
        if msg is not None:
            t.like(header(msg, "X-Stripe-Lookup") or "", r"^v=2; found;", "%s: X-Stripe-Lookup: v=2; found" % what)
            t.is_(header(msg, "X-Stripe-Customer-Id"), cus, "%s: X-Stripe-Customer-Id %s" % (what, cus))

    def active_pid(self):
        if self.m.unit_prop("ActiveState") != "active":
            return None
        pid = self.m.unit_prop("MainPID")
        return int(pid) if pid.isdigit() and int(pid) > 0 else None


def readme_commands():
    cmds = test_deb.install_section()
    start = [i for i, c in enumerate(cmds) if c.startswith("apt-get install -y ../")]
    return cmds[start[0]:] if start else []


def postfix_root(t, work, standin, deb):
    m = Machine(t, "postfix", work)
    h = PostfixHost(t, m, standin, deb)
    try:
        t.ok(h.prepare(), "the root's Postfix listens on 127.0.0.1:%d (master.cf, before boot)" % h.port)
        t.ok(m.boot(), "the Postfix root boots with systemd as PID 1 (systemd-nspawn -b)",
             open(m.log, errors="replace").read()[-3000:])
        if not m.leader:
            return
        maincf_before = m.run("postconf -n")[1]
        cmds = readme_commands()
        t.ok(len(cmds) >= 8, "README Install: %d commands from `apt-get install` on" % len(cmds))
        for cmd in cmds:
            if cmd.startswith("./configure"):
                continue                    # the source install: test_deb.py, on the host
            c = cmd.replace("customer@example.net", CUSTOMER[0])
            c = c.replace("swaks --server 127.0.0.1 ", "swaks --server 127.0.0.1:%d " % h.port)
            stdin = KEY1 + "\n" if "/dev/stdin" in c else None
            if cmd.startswith("apt-get remove"):
                after_stop(t, m, h)
            rc, out = m.run("cd /root/src && " + c, stdin=stdin)
            t.ok(rc == 0, "README in the root: %s" % cmd[:100], "ran: %s\n%s" % (c, out[-2500:]))
            if cmd.startswith("apt-get install -y ../"):
                after_install(t, m, h)
            elif cmd == "stripe-milter -n":
                t.ok("OK (Stripe key rk_test_...KEY1" in out and "files readable by stripe-milter" in out,
                     "stripe-milter -n: OK, checked as stripe-milter")
            elif cmd.startswith("systemctl start"):
                after_start(t, m, h)
            elif cmd.startswith("swaks "):
                h.check_found(last_mail(m), "README step 5 (swaks)")
                rotate_and_kill(t, m, h)
            elif cmd.startswith("postconf -X") or cmd.startswith("postconf -e 'smtpd_milters ="):
                pass
            elif cmd.startswith("rm ") and "/etc/postfix/" in cmd:
                t.is_(m.run("postconf -n")[1], maincf_before,
                      "README Removing: main.cf is as before step 3 (postconf -n)")
            elif cmd.startswith("apt-get purge"):
                rc2, left = m.run("dpkg-query -W -f='${Status}' stripe-milter; getent passwd stripe-milter; "
                                  "ls -d /etc/stripe-milter* /var/spool/postfix/stripe-milter "
                                  "/lib/systemd/system/stripe-milter.service 2>/dev/null")
                t.ok("ok installed" not in left and "stripe-milter:" not in left and "/etc/" not in left,
                     "purged: no package, user, key folder, config, socket folder or unit left", left)
    finally:
        m.shutdown()


def last_mail(m):
    got = wait_for(lambda: mails(m, "/var/mail/root"), 60)
    return got[-1] if got else None


def after_install(t, m, h):
    rc, out = m.run("systemctl is-enabled stripe-milter; systemctl is-active stripe-milter; "
                    "systemctl show -P ConditionResult stripe-milter")
    t.is_(out.split(), ["enabled", "inactive", "no"],
          "installed: the unit is enabled, not started, its key condition false")
    rc, out = m.run("stat -c '%U:%G %a' /var/spool/postfix/stripe-milter /etc/stripe-milter")
    t.is_(out.split("\n")[:2], ["stripe-milter:postfix 750", "root:stripe-milter 750"],
          "the socket folder and the key folder")
    # test-only: the Stripe stand-in on the host's loopback (the root shares the network)
    m.run("printf '\\n# added by tests/pkg/test_systemd.py\\nStripeAPIBase %s\\n' >> /etc/stripe-milter.conf"
          % h.standin.url)


def after_start(t, m, h):
    pid = wait_for(h.active_pid, 60)
    t.ok(pid, "systemctl start: the unit is active", m.run("systemctl status --no-pager stripe-milter")[1])
    if not pid:
        return
    h.mainpid = pid
    rc, st = m.run("cat /proc/%d/status" % pid)
    f = dict(l.split(":", 1) for l in st.splitlines() if ":" in l)
    rc, uid = m.run("id -u stripe-milter")
    t.is_(f.get("Uid", "").split(), [uid.strip()] * 4, "the daemon runs as stripe-milter (User=)")
    t.is_(f.get("CapBnd", "").strip(), "0000000000000000", "no capability at all (CapabilityBoundingSet=)")
    t.is_(f.get("NoNewPrivs", "").strip(), "1", "NoNewPrivileges")
    t.is_(f.get("Seccomp", "").strip(), "2", "a seccomp filter (SystemCallFilter=)")
    rc, out = m.run("stat -c '%U:%G' /var/spool/postfix/stripe-milter/stripe-milter.sock")
    t.is_(out.strip(), "stripe-milter:postfix", "the socket: stripe-milter, group postfix (SocketGroup)")


def rotate_and_kill(t, m, h):
    # Key rotation, README step 2: the same install command with the new key, then reload.
    keys, h.seen = standin_keys(h.standin, 0)
    t.ok(keys and set(keys) == {KEY1}, "before rotation the stand-in saw the first key only", str(keys))
    m.ok("install -o root -g stripe-milter -m 0440 /dev/stdin /etc/stripe-milter/stripe.key",
         "the new key installed", stdin=KEY2 + "\n")
    m.ok("systemctl reload stripe-milter", "systemctl reload stripe-milter (ExecReload under the sandbox)")
    ok = wait_for(lambda: "configuration reloaded" in m.run(
        "journalctl -b -u stripe-milter --no-pager -o cat --since=-5min | tail -3")[1], 30)
    t.ok(ok, "the daemon logged the reload")
    # Customer data is cached per key's account; a new address makes the lookup go to Stripe.
    msg = h.mail(1)
    h.check_found(msg, "after the reload", MORE[1][1])
    keys, h.seen = standin_keys(h.standin, h.seen)
    t.ok(keys and set(keys) == {KEY2}, "after the reload the stand-in sees only the new key (%d requests)"
         % len(keys), str(keys))
    t.is_(h.active_pid(), h.mainpid, "the reload kept the same process")
    # kill -9: Restart=on-failure brings it back.
    old = h.mainpid
    m.ok("kill -9 %d" % old, "kill -9 of the daemon (%d)" % old)
    new = wait_for(lambda: (h.active_pid() or old) != old and h.active_pid(), 60)
    t.ok(new, "Restart= started a new daemon after kill -9 (pid %s)" % new,
         m.run("systemctl status --no-pager stripe-milter")[1])
    h.mainpid = new or old
    restarts = m.unit_prop("NRestarts")
    t.is_(restarts, "1", "NRestarts=1")
    ok = wait_for(lambda: m.run("test -S /var/spool/postfix/stripe-milter/stripe-milter.sock")[0] == 0, 30)
    msg = h.mail(2)
    h.check_found(msg, "after the restart", MORE[2][1])


def after_stop(t, m, h):
    """Before the README's apt-get remove: stop, journal, exposure."""
    m.ok("systemctl stop stripe-milter", "systemctl stop stripe-milter")
    t.is_(m.unit_prop("ActiveState"), "inactive", "stopped: inactive (a clean exit, not failed)")
    journal = m.journal()
    t.ok("Main process exited, code=killed, status=9/KILL" in journal,
         "the journal has the kill -9 (so it is the journal of this boot)")
    bad = journal_problems(journal) + journal_errors(m)
    t.ok(not bad, "the journal: no error line of stripe-milter, no SIGSYS, no libmilter line", "\n".join(bad[:30]))
    rc, out = m.run("systemd-analyze security --no-pager stripe-milter")
    m_ = re.search(r"Overall exposure level for stripe-milter.service: ([\d.]+)", out)
    t.diag("systemd-analyze security stripe-milter (in the root): %s" % (m_.group(0) if m_ else out[-500:]))
    t.ok(m_ and float(m_.group(1)) <= MAX_EXPOSURE, "exposure %s <= %.1f" % (m_.group(1) if m_ else "?",
                                                                        MAX_EXPOSURE), out[-3000:])
    # The control: the same unit without @chown (the socket's group needs it) must die of SIGSYS,
    # and the journal check above must see that; then the drop-in goes again.
    dropin = "/etc/systemd/system/stripe-milter.service.d"
    m.ok("mkdir -p %s && printf '[Service]\\nSystemCallFilter=\\nSystemCallFilter=@system-service\\n"
         "SystemCallFilter=~@privileged @resources\\n' > %s/no-chown.conf && systemctl daemon-reload && "
         "systemctl start stripe-milter" % (dropin, dropin), "control: the unit without @chown in its filter")
    seen = wait_for(lambda: [l for l in journal_problems(m.journal()) if "status=31/SYS" in l], 60)
    t.ok(seen, "control: the daemon dies of SIGSYS and the journal check sees it", "\n".join(seen or [])[:500])
    m.ok("rm -r %s && systemctl daemon-reload && systemctl stop stripe-milter && "
         "systemctl reset-failed stripe-milter" % dropin, "control: drop-in removed, unit stopped")


def smtp_send(port, sender, rcpt, subject):
    """One message over SMTP from the host (the root shares its network); returns an error or None."""
    import smtplib
    msg = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nhello\r\n" % (sender, rcpt, subject)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
            c.sendmail(sender, [rcpt], msg)
        return None
    except (OSError, smtplib.SMTPException) as e:
        return str(e)


def sendmail_root(t, work, standin, deb):
    """Debian's Sendmail, no Postfix: the unit starts, the socket is in /run/stripe-milter as
    conf/sendmail.mc says, a message through Sendmail gets found; reload, stop, clean journal."""
    m = Machine(t, "sendmail", work)
    port, msp = free_port(), free_port()
    try:
        # Before boot: Sendmail's MTA and MSP on free loopback ports (.mc and the built .cf),
        # the host name qualified (Sendmail waits for that at start), the .deb in /root.
        for f in ("/etc/mail/sendmail.mc", "/etc/mail/sendmail.cf"):
            text = open(m.path(f)).read()
            text = re.sub(r"(Name=MTA-v4, Port=)smtp", r"\g<1>%d" % port, text)
            text = re.sub(r"(Name=MSP-v4, Port=)submission", r"\g<1>%d" % msp, text)
            # The machine running the tests is loaded: Sendmail must not refuse or queue for it.
            text = re.sub(r"^#?O (QueueLA|RefuseLA)=.*$", r"O \1=1000", text, flags=re.M)
            # The test senders' domains (customer.test) do not resolve.
            if f.endswith(".mc"):
                text = text.replace("MAILER_DEFINITIONS\n", "define(`confQUEUE_LA', `1000')dnl\n"
                                    "define(`confREFUSE_LA', `1000')dnl\n"
                                    "FEATURE(`accept_unresolvable_domains')dnl\n"
                                    # local delivery by Sendmail's mail.local (sensible-mda is not in
                                    # the minimal root)
                                    "define(`LOCAL_MAILER_PATH', `/usr/libexec/sendmail/mail.local')dnl\n"
                                    "define(`LOCAL_MAILER_ARGS', `mail.local -d $u')dnl\n"
                                    "MAILER_DEFINITIONS\n", 1)
            open(m.path(f), "w").write(text)
        with open(m.path("/etc/hosts"), "a") as f:
            f.write("127.0.1.1\tstripe-milter-test-sendmail.localdomain stripe-milter-test-sendmail\n")
        sh("cp %s %s" % (shlex.quote(deb), shlex.quote(m.path("/root/"))))
        t.ok(m.boot(), "the Sendmail root boots with systemd as PID 1",
             open(m.log, errors="replace").read()[-3000:])
        if not m.leader:
            return
        t.ok(m.run("test -e /var/spool/postfix")[0] != 0 and m.run("command -v postconf")[0] != 0,
             "the Sendmail root has no Postfix and no /var/spool/postfix")
        m.ok("apt-get install -y /root/%s" % os.path.basename(deb), "apt-get install the .deb (no Postfix)")
        rc, out = m.run("systemctl is-enabled stripe-milter; systemctl show -P ConditionResult stripe-milter")
        t.is_(out.split(), ["enabled", "no"], "the unit is enabled and waits for the key")
        # README "Sendmail": the socket where conf/sendmail.mc expects it, no SocketGroup.
        sock_line = re.search(r"S=unix:(\S+?),", open(os.path.join(smtest.srcdir(), "conf", "sendmail.mc")).read())
        m.ok("sed -i -e 's|^Socket .*|Socket unix:/run/stripe-milter/stripe-milter.sock|' -e '/^SocketGroup postfix$/d' "
             "/etc/stripe-milter.conf && printf '\\nStripeAPIBase %s\\nInternalHosts 192.0.2.1\\n' "
             ">> /etc/stripe-milter.conf" % standin.url, "the config for a Sendmail host (README), test lines")
        m.ok("install -o root -g stripe-milter -m 0440 /dev/stdin /etc/stripe-milter/stripe.key",
             "the key installed", stdin=KEY1 + "\n")
        m.ok("systemctl start stripe-milter", "systemctl start stripe-milter (no Postfix spool: ReadWritePaths=-)")
        sock = sock_line.group(1) if sock_line else "?"
        ok = wait_for(lambda: m.run("test -S %s" % sock)[0] == 0, 60)
        t.ok(ok and m.unit_prop("ActiveState") == "active", "the daemon serves on %s, as conf/sendmail.mc "
             "expects" % sock, m.run("systemctl status --no-pager stripe-milter")[1])
        # Sendmail with the repository's INPUT_MAIL_FILTER line, rebuilt as its comment says.
        mc_line = [l for l in open(os.path.join(smtest.srcdir(), "conf", "sendmail.mc"))
                   if l.startswith("INPUT_MAIL_FILTER")][0]
        mc = m.path("/etc/mail/sendmail.mc")
        text = open(mc).read().replace("MAILER_DEFINITIONS\n", mc_line + "MAILER_DEFINITIONS\n", 1)
        open(mc, "w").write(text)
        m.ok("make -C /etc/mail >/dev/null && systemctl restart sendmail", "sendmail.cf rebuilt with the "
             "milter (make -C /etc/mail), Sendmail restarted")
        wait_for(lambda: m.run("grep -q '^Xstripe-milter' /etc/mail/sendmail.cf")[0] == 0, 5)
        before = len(mails(m, "/var/mail/root"))
        err = wait_for(lambda: smtp_send(port, CUSTOMER[0], "root@localhost", "sendmail test") is None, 60, 1)
        t.ok(err, "the message is accepted by the root's Sendmail on 127.0.0.1:%d" % port)
        got = wait_for(lambda: len(mails(m, "/var/mail/root")) > before and mails(m, "/var/mail/root"), 60)
        t.ok(got, "delivered to root's mailbox", m.run("tail -20 /var/log/mail.log; journalctl -b -n 30 "
                                                     "--no-pager")[1])
        t.like(m.run("journalctl -b -o cat --no-pager -t sm-mta")[1],
               r"Milter \(stripe-milter\) (insert|add).*: header: X-Stripe-Lookup: v=2; found;",
               "Sendmail's log: the milter added X-Stripe-Lookup: v=2; found")
        if got:
            t.like(header(got[-1], "X-Stripe-Lookup") or "", r"^v=2; found;", "Sendmail: X-Stripe-Lookup: v=2; found")
            t.is_(header(got[-1], "X-Stripe-Customer-Id"), CUSTOMER[1], "Sendmail: X-Stripe-Customer-Id")
        m.ok("systemctl reload stripe-milter", "systemctl reload stripe-milter")
        ok = wait_for(lambda: "configuration reloaded" in m.run("journalctl -b -u stripe-milter -o cat --no-pager")[1], 30)
        t.ok(ok, "the daemon logged the reload")
        m.ok("systemctl stop stripe-milter", "systemctl stop stripe-milter")
        t.is_(m.unit_prop("ActiveState"), "inactive", "stopped: inactive")
        t.ok(m.run("test -e %s" % sock)[0] != 0, "the socket went with the runtime folder")
        bad = journal_problems(m.journal()) + journal_errors(m)
        t.ok(not bad, "the journal: no error line of stripe-milter, no SIGSYS, no libmilter line",
             "\n".join(bad[:30]))
    finally:
        m.shutdown()


def install_deps_root(t, work, script=None):
    """install-deps.sh --build in the Postfix root ("Internet Site", configured by its
    installation): it installs the build dependencies and leaves Postfix as it was."""
    m = Machine(t, "postfix", work, name="install-deps")
    archives = os.path.join(os.path.dirname(CACHE), "apt-archives")     # downloads, kept
    os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
    mounts = []
    try:
        for src, dst, opt in (("proc", "/proc", "-t proc"), (archives, "/var/cache/apt/archives", "--bind")):
            rc, out = sh("mount %s %s %s" % (opt, src, shlex.quote(m.path(dst))))
            t.ok(rc == 0, "mount %s in the chroot" % dst, out)
            mounts.append(m.path(dst))
        sh("cp /etc/resolv.conf %s" % m.path("/etc/resolv.conf"))   # the Debian mirror by name
        os.makedirs(m.path("/root/deps"))
        sh("cp %s %s" % (script or os.path.join(smtest.srcdir(), "install-deps.sh"), m.path("/root/deps/install-deps.sh")))

        def chroot(cmd, timeout=300):
            return sh("chroot %s /usr/bin/env -i PATH=%s LANG=C.UTF-8 /bin/sh -c %s"
                      % (m.root, PATH, shlex.quote(cmd)), timeout=timeout)
        state = "debconf-show postfix | sort; md5sum /etc/postfix/main.cf /etc/postfix/master.cf"
        rc, before = chroot(state)
        t.like(before, r"main_mailer_type: Internet Site", "the root's Postfix is configured as "
               "Internet Site (debconf-show postfix)")
        rc, tmp_before = chroot("ls -A /tmp")
        t0 = time.time()
        rc, out = chroot("/root/deps/install-deps.sh --build", timeout=3600)
        t.ok(rc == 0, "install-deps.sh --build in the root (%.0f s)" % (time.time() - t0), out[-2000:])
        rc, pk = chroot("dpkg-query -W -f='${Package} ${Status}\n' libmilter-dev clang valgrind lintian "
                        "miltertest 2>/dev/null | grep ' installed$' | cut -d' ' -f1")
        t.is_(pk.split(), ["clang", "libmilter-dev"], "--build installed build dependencies, no test tool")
        rc, after = chroot(state)
        t.is_(after, before, "Postfix unchanged: debconf-show postfix, main.cf, master.cf")
        rc, tmp_after = chroot("ls -A /tmp")
        t.is_(tmp_after, tmp_before, "install-deps.sh left nothing in /tmp (its apt log is removed)")
        rc, out = chroot("/root/deps/install-deps.sh --build")
        t.ok(rc == 0 and out == "", "a second run: nothing missing, prints nothing", out)
    finally:
        for d in reversed(mounts):
            sh("umount %s" % shlex.quote(d))
        m.shutdown()


def main():
    t = smtest.TAP()
    if os.geteuid() != 0:
        smtest.TAP.skip_all("booting a root with systemd-nspawn needs root")
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "dpkg-buildpackage"):
        if subprocess.run(["bash", "-c", "command -v %s" % tool], stdout=subprocess.DEVNULL).returncode:
            smtest.TAP.skip_all("%s is not installed (./install-deps.sh installs it)" % tool)
    t0 = time.time()
    mkroot = os.path.join(smtest.srcdir(), "tests", "pkg", "mkroot.sh")
    for kind in ("postfix", "sendmail"):
        d = os.path.join(CACHE, "bookworm-" + kind)
        fresh = not os.path.isdir(d)
        rc, out = sh("%s %s %s" % (mkroot, kind, d), timeout=3600)
        if rc != 0:
            smtest.TAP.skip_all("cannot make the Debian 12 root %s: %s" % (d, out[-500:]))
        t.diag("root %s: %s (%.0f s)" % (kind, "built now" if fresh else "cached", time.time() - t0))
    work = smtest.tempdir("sm-systemd-")
    os.chmod(work, 0o755)
    deb = build_deb(t, work)
    if deb:
        standin = smtest.Standin(args=["--seed", SEED])
        standin.add({"customers": [{"id": c, "email": e, "name": "Systemd Test"} for e, c in MORE.values()]})
        try:
            postfix_root(t, work, standin, deb)
            sendmail_root(t, work, standin, deb)
        finally:
            standin.stop()
    install_deps_root(t, work)
    t.diag("test_systemd.py took %.0f s" % (time.time() - t0))
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
