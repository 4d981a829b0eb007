#!/usr/bin/env python3
"""test_deb.py - the Debian package and the README's "Install" section, on this machine.

Runs every command of README.md's "## Install" section, in order, as root, on a copy of the
source tree, and checks what each step did:
  - dpkg-buildpackage builds stripe-milter_<version>_amd64.deb (<version> from configure.ac,
    the same as the README names); lintian reports no error and no warning;
  - apt-get installs it: user and group stripe-milter (system, no login, in group postfix),
    /etc/stripe-milter root:stripe-milter 0750, /var/spool/postfix/stripe-milter
    stripe-milter:postfix 0750, binaries, man pages, /etc/stripe-milter.conf as a conffile,
    the examples, the unit enabled and its start condition false while there is no key;
  - the source build (./configure --prefix=/usr --sysconfdir=/etc) gives the same paths;
  - the key installed as the README says; `stripe-milter -n` on the installed default config
    (no -c) says OK as stripe-milter;
  - the daemon started from the installed unit's ExecStart line, behind a private Postfix
    configured with the README's postconf lines and the installed header tables; a message
    from a customer is delivered with X-Stripe-Lookup: found and the customer's id; the
    reloads of step 5 take effect;
  - apt-get remove keeps the key, the config and the user; apt-get purge then leaves no
    file, folder, user or group behind and the postfix group as it was. The package is purged in any case (also when a step fails).

systemd is not PID 1 on the CI machine (and on most containers): where the README says
`systemctl start stripe-milter`, this test checks the unit's ConditionPathExists itself and
runs its ExecStart line as a child process; `systemctl reload` runs its ExecReload line with
$MAINPID set. RuntimeDirectory and the sandboxing options are systemd's and are not applied.

Substitutions (so the machine's own Postfix is never touched): /etc/postfix/ -> the private
Postfix's config folder, `postconf -e` / `postfix reload` -> with `-c` that folder, the
relative socket unix:stripe-milter/... -> the absolute /var/spool/postfix/stripe-milter/...
(the private Postfix's queue folder is elsewhere), swaks --server 127.0.0.1 -> its port,
customer@example.net -> a stand-in customer, postmaster@example.com -> a private mailbox,
`make install` -> with DESTDIR (the package is what gets installed), apt-get and dpkg under
the machine's apt lock (flock /tmp/apt.lock). Two test-only lines are added to the installed
/etc/stripe-milter.conf: StripeAPIBase (the Stripe stand-in) and Syslog no (the daemon's log
to a file this test reads).

Not part of `make check` (it installs and removes a package on the machine): run by
`make check-package` and by .ci/run. It takes a machine-wide lock, so two runs never overlap,
and skips (fails under CI=true) when stripe-milter is already installed here.
"""
import fcntl
import grp
import os
import pwd
import re
import shlex
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

PKG = "stripe-milter"
LOCK = "/tmp/stripe-milter-package-test.lock"
APT_LOCK = "/tmp/apt.lock"
SEED = os.path.join(smtest.srcdir(), "tests", "demo", "seed.json")
CUSTOMER = ("jenny@customer.test", "cus_demo_jenny")
KEY = "rk_test_packagetest0123456789abcdKEY1"
SOCKET_DIR = "/var/spool/postfix/stripe-milter"
LEFTOVER_ROOTS = ["/etc", "/lib/systemd", "/usr/lib/systemd", "/usr/sbin", "/usr/bin", "/usr/share/doc",
                  "/usr/share/man", "/var/spool/postfix", "/var/lib/systemd", "/var/lib/dpkg/info", "/run"]


def sh(cmd, stdin=None, cwd=None, timeout=1200, env=None):
    """Runs a shell command; returns (rc, output)."""
    r = subprocess.run(["bash", "-c", cmd], input=stdin.encode() if stdin else None,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, timeout=timeout,
                       env=env)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def install_section():
    """The commands of README.md's Install section, in order."""
    text = open(os.path.join(smtest.srcdir(), "README.md")).read()
    m = re.search(r"^## Install\n(.*?)^## ", text, re.S | re.M)
    if not m:
        raise AssertionError("README.md has no '## Install' section")
    return [c.group(2) for c in re.finditer(r"^( {4}| {7})(\S.*)$", m.group(1), re.M)]


def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PKG], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return r.returncode == 0 and b"not-installed" not in r.stdout


def leftovers():
    """Every path named like the package under the places a package or its scripts write."""
    out = set()
    for root in LEFTOVER_ROOTS:
        for d, dirs, files in os.walk(root):
            if d.startswith("/run/user") or d.startswith("/proc"):
                continue
            for n in dirs + files:
                if PKG in n:
                    out.add(os.path.join(d, n))
    return out


def ids_present():
    found = []
    for what, fn in (("user", pwd.getpwnam), ("group", grp.getgrnam)):
        try:
            fn(PKG)
            found.append(what)
        except KeyError:
            pass
    return found


def owner(path):
    st = os.stat(path)
    return (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, stat.S_IMODE(st.st_mode))


def unit_value(unit, key):
    for line in open(unit):
        if line.startswith(key + "="):
            return line.split("=", 1)[1].strip()
    return None


class Run:
    def __init__(self, t, work):
        self.t = t
        self.work = work
        self.src = os.path.join(work, "src")
        self.version = re.search(r"AC_INIT\(\[stripe-milter\], \[([^\]]+)\]",
                                 open(os.path.join(smtest.srcdir(), "configure.ac")).read()).group(1)
        self.deb = "stripe-milter_%s_amd64.deb" % self.version
        self.standin = None
        self.postfix = None
        self.daemon = None
        self.daemon_log = os.path.join(work, "daemon.log")
        self.group_before = grp.getgrnam("postfix").gr_mem if self._has_group("postfix") else None

    @staticmethod
    def _has_group(g):
        try:
            grp.getgrnam(g)
            return True
        except KeyError:
            return False

    # -- the README commands, substituted --
    def run_command(self, cmd):
        t = self.t
        if cmd.startswith("systemctl start %s" % PKG):
            return self.systemctl_start()
        if "systemctl reload %s" % PKG in cmd:
            before, _, _ = cmd.partition("&& systemctl reload %s" % PKG)
            if before.strip():
                rc, out = sh(before)
                t.ok(rc == 0, "README: %s" % before.strip(), out[-1500:])
            return self.systemctl_reload()
        c = cmd
        if self.postfix:
            c = c.replace("/etc/postfix/", self.postfix.etc + "/")
            c = c.replace("postconf -e", "postconf -c %s -e" % self.postfix.etc)
            c = c.replace("postconf -X", "postconf -c %s -X" % self.postfix.etc)
            c = c.replace("$(postconf -h myhostname)", "$(postconf -c %s -h myhostname)" % self.postfix.etc)
            c = c.replace("postfix reload", "postfix -c %s reload" % self.postfix.etc)
            c = c.replace("swaks --server 127.0.0.1 ", "swaks --server 127.0.0.1:%d " % self.postfix.port)
        c = c.replace("unix:stripe-milter/stripe-milter.sock", "unix:%s/stripe-milter.sock" % SOCKET_DIR)
        c = c.replace("customer@example.net", CUSTOMER[0]).replace(
            "postmaster@$(postconf -c %s -h myhostname)" % (self.postfix.etc if self.postfix else ""),
            "support@example.test")
        if "make install" in c:
            c = c.replace("&& make &&", "&& make -j2 &&")
            c = c.replace("make install", "make install DESTDIR=%s/destdir" % self.work)
        stdin = KEY + "\n" if "/dev/stdin" in c else None
        if "apt-get" in c or c.startswith("dpkg "):
            # Other apt users on the machine may not take APT_LOCK: wait for dpkg's own lock too.
            c = c.replace("apt-get ", "apt-get -o DPkg::Lock::Timeout=900 ")
            c = "flock %s bash -c %s" % (APT_LOCK, shlex.quote("export DEBIAN_FRONTEND=noninteractive; " + c))
        rc, out = sh(c, stdin=stdin, cwd=self.src)
        t.ok(rc == 0, "README: %s" % cmd[:110], "ran: %s\n%s" % (c, out[-2500:]))
        return rc, out

    def systemctl_start(self):
        t = self.t
        unit = "/lib/systemd/system/%s.service" % PKG
        cond = unit_value(unit, "ConditionPathExists")
        t.ok(cond and os.path.exists(cond), "systemctl start (no systemd here): the unit's "
             "ConditionPathExists=%s now holds" % cond)
        argv = shlex.split(unit_value(unit, "ExecStart"))
        t.diag("systemd is not PID 1 here: running the unit's ExecStart line: %s" % " ".join(argv))
        self.daemon = smtest.spawn(argv, log=self.daemon_log)
        sock = os.path.join(SOCKET_DIR, "stripe-milter.sock")
        end = time.time() + 60
        while time.time() < end and not os.path.exists(sock) and self.daemon.poll() is None:
            time.sleep(0.05)
        t.ok(os.path.exists(sock), "the daemon from ExecStart serves on %s" % sock, self.log()[-2000:])
        if os.path.exists(sock):
            t.is_(owner(sock)[:2], ("stripe-milter", "postfix"), "the socket: stripe-milter, group postfix")
            # the socket is made while the daemon is still root (it opens the socket, sets
            # its group, then becomes UserID): wait for the switch, with a deadline
            want = [str(pwd.getpwnam(PKG).pw_uid)] * 4
            end = time.time() + 30
            while True:
                st = open("/proc/%d/status" % self.daemon.pid).read()
                uid = [l for l in st.splitlines() if l.startswith("Uid:")][0].split()[1:]
                if uid == want or time.time() > end or self.daemon.poll() is not None:
                    break
                time.sleep(0.05)    # poll interval of the wait above
            t.is_(uid, want, "the daemon runs as stripe-milter (UserID)")
        return 0, ""

    def systemctl_reload(self):
        t = self.t
        line = unit_value("/lib/systemd/system/%s.service" % PKG, "ExecReload")
        mark = len(self.log())
        cmd = line.replace("$MAINPID", str(self.daemon.pid))
        rc, out = sh(cmd)
        t.ok(rc == 0, "systemctl reload (no systemd here): the unit's ExecReload: %s" % cmd, out)
        end = time.time() + 30
        while time.time() < end and "reload" not in self.log()[mark:]:
            time.sleep(0.05)
        t.like(self.log()[mark:], r"configuration reloaded", "the reload took effect")
        return 0, ""

    def log(self):
        try:
            return open(self.daemon_log, errors="replace").read()
        except OSError:
            return ""

    # -- checks between the commands --
    def after_build(self):
        t = self.t
        deb = os.path.join(self.work, self.deb)
        t.ok(os.path.exists(deb), "dpkg-buildpackage -b -us -uc built %s" % self.deb,
             str(os.listdir(self.work)))
        rc, out = sh("lintian --pedantic -I %s" % shlex.quote(deb))
        bad = [l for l in out.splitlines() if re.match(r"^[EW]: ", l)]
        t.ok(rc == 0 and not bad, "lintian: no errors, no warnings (overrides carry their reasons)", out[-2000:])

    def after_install(self):
        t = self.t
        pw = pwd.getpwnam(PKG)
        t.ok(pw.pw_uid < 1000 and pw.pw_shell in ("/usr/sbin/nologin", "/bin/false"),
             "system user stripe-milter, no login shell", str(pw))
        t.ok(PKG in grp.getgrnam("postfix").gr_mem, "stripe-milter is in group postfix")
        t.is_(owner("/etc/stripe-milter"), ("root", PKG, 0o750), "/etc/stripe-milter root:stripe-milter 0750")
        t.is_(owner(SOCKET_DIR), (PKG, "postfix", 0o750), "%s stripe-milter:postfix 0750" % SOCKET_DIR)
        for p in ("/usr/sbin/stripe-milter", "/usr/bin/stripe-milterctl"):
            t.ok(os.access(p, os.X_OK), "%s installed" % p)
        for p in ("/usr/share/man/man8/stripe-milter.8.gz", "/usr/share/man/man5/stripe-milter.conf.5.gz",
                  "/usr/share/man/man8/stripe-milterctl.8.gz"):
            t.ok(os.path.exists(p), "%s installed" % p)
        ex = "/usr/share/doc/stripe-milter/examples"
        t.ok(all(os.path.exists(os.path.join(ex, f)) for f in
                 ("header_checks", "milter_header_checks", "postfix-main.cf", "stripe-milter.conf")),
             "the Postfix tables and the full sample config in %s" % ex)
        rc, out = sh("dpkg-query -W -f='${Conffiles}' %s" % PKG)
        t.ok("/etc/stripe-milter.conf" in out, "/etc/stripe-milter.conf is a conffile", out)
        conf = open("/etc/stripe-milter.conf").read()
        t.ok("Socket unix:%s/stripe-milter.sock" % SOCKET_DIR in conf and "UserID stripe-milter" in conf
             and "StripeKeyFile /etc/stripe-milter/stripe.key" in conf,
             "the installed config names the Debian paths")
        unit = "/lib/systemd/system/%s.service" % PKG
        t.ok(os.path.exists(unit) and unit_value(unit, "ExecStart") ==
             "/usr/sbin/stripe-milter -f -c /etc/stripe-milter.conf", "the unit runs the installed binary")
        cond = unit_value(unit, "ConditionPathExists")
        t.ok(cond == "/etc/stripe-milter/stripe.key" and not os.path.exists(cond),
             "no key yet: the unit's start condition is false, so the daemon is not started")
        t.ok(os.path.islink("/etc/systemd/system/multi-user.target.wants/%s.service" % PKG),
             "the unit is enabled at boot")
        rc, out = sh("stripe-milter -n")
        t.ok(rc == 1 and "/etc/stripe-milter/stripe.key" in out, "-n without a key says which file is missing",
             out[-800:])
        # test-only: the Stripe stand-in, and the daemon's log to a file this test reads
        with open("/etc/stripe-milter.conf", "a") as f:
            f.write("\n# added by tests/pkg/test_deb.py\nStripeAPIBase %s\nSyslog no\n" % self.standin.url)
        self.postfix = mta.Postfix(None, recipients=("support", "billing"))

    def after_source_install(self):
        t = self.t
        d = os.path.join(self.work, "destdir")
        want = ["usr/sbin/stripe-milter", "usr/bin/stripe-milterctl", "usr/share/man/man8/stripe-milter.8",
                "usr/share/man/man5/stripe-milter.conf.5", "usr/lib/systemd/system/stripe-milter.service"]
        missing = [w for w in want if not os.path.exists(os.path.join(d, w))]
        t.ok(not missing, "the source build installs the package's paths", str(missing))
        unit = os.path.join(d, "usr/lib/systemd/system/stripe-milter.service")
        if os.path.exists(unit):
            t.is_(unit_value(unit, "ExecStart"), "/usr/sbin/stripe-milter -f -c /etc/stripe-milter.conf",
                  "its unit is generated with the configured paths")
        rc, out = sh("%s/usr/sbin/stripe-milter -h" % d)
        t.ok("default /etc/stripe-milter.conf" in out, "and its binary's default config is "
             "/etc/stripe-milter.conf (SM_SYSCONFDIR expanded)", out)

    def after_key(self, out):
        self.t.ok("OK (Stripe key rk_test_...KEY1" in out and "files readable by stripe-milter" in out,
                  "stripe-milter -n on the installed default config: OK, checked as stripe-milter", out[-1500:])
        self.t.is_(owner("/etc/stripe-milter/stripe.key"), ("root", PKG, 0o440), "the key: root:stripe-milter 0440")

    def after_mail(self):
        t = self.t
        msgs = self.postfix.wait_mail("support", 1, timeout=60)
        t.ok(len(msgs) == 1, "the test message is delivered", self.postfix.log()[-1500:])
        if msgs:
            h = dict((n.lower(), v) for n, v in mta.headers(msgs[-1]))
            t.like(h.get("x-stripe-lookup", ""), r"^(v=\d+; )?found; cache=miss; mode=test",
                   "X-Stripe-Lookup: found (from the host itself, InternalHosts left out)")
            t.is_(h.get("x-stripe-customer-id"), CUSTOMER[1], "X-Stripe-Customer-Id of the stand-in customer")

    def stop_daemon(self):
        if self.daemon is not None:
            smtest.stop(self.daemon, grace=15.0)
            self.t.ok(self.daemon.returncode == 0, "the daemon stops cleanly on SIGTERM", self.log()[-1500:])
            mta.LIBMILTER_LINES.extend(mta.libmilter_lines(self.log()))
            self.daemon = None


def copy_tree(dst):
    src = smtest.srcdir()
    os.makedirs(dst)
    rc, out = sh("tar -C %s --exclude=./.git --exclude='./_build*' --exclude=./autom4te.cache "
                 "--exclude=./tests/prism/node_modules --exclude=./debian/stripe-milter "
                 "--exclude=./debian/.debhelper -cf - . | tar -C %s -xf -" % (shlex.quote(src), shlex.quote(dst)))
    if rc != 0:
        raise AssertionError("copying the source tree failed: %s" % out)
    # A tree configured in place (config.status at the top) would be reused: start clean.
    sh("rm -f config.status config.log Makefile config.h stamp-h1", cwd=dst)


def main():
    t = smtest.TAP()
    if os.geteuid() != 0:
        smtest.TAP.skip_all("installing a package needs root")
    for tool in ("dpkg-buildpackage", "dh", "lintian", "apt-get", "postfix", "swaks", "flock"):
        if subprocess.run(["bash", "-c", "command -v %s" % tool], stdout=subprocess.DEVNULL).returncode != 0:
            smtest.TAP.skip_all("%s is not installed (./install-deps.sh installs it)" % tool)
    lock = open(LOCK, "w")
    fcntl.flock(lock, fcntl.LOCK_EX)        # one package test per machine at a time
    if installed() or ids_present():
        smtest.TAP.skip_all("stripe-milter (package, user or group) is already on this machine: "
                            "the package test would remove it")
    before = leftovers()
    commands = install_section()
    t.ok(len(commands) >= 10, "README's Install section has its commands (%d)" % len(commands),
         "\n".join(commands))
    work = smtest.tempdir("sm-pkg-")
    os.chmod(work, 0o755)
    r = Run(t, work)
    t.ok(any(r.deb in c for c in commands), "the README names the version configure.ac builds (%s)" % r.deb)
    copy_tree(r.src)
    purged = False
    try:
        r.standin = smtest.Standin(args=["--seed", SEED])
        for cmd in commands:
            if "apt-get remove" in cmd or "apt-get purge" in cmd:
                r.stop_daemon()     # before its binary goes
                purged = True
            rc, out = r.run_command(cmd)
            if cmd.startswith("dpkg-buildpackage"):
                r.after_build()
            elif "apt-get install -y ../" in cmd:
                if rc != 0:
                    break
                r.after_install()
            elif "make install" in cmd:
                r.after_source_install()
            elif cmd == "stripe-milter -n":
                r.after_key(out)
            elif cmd == "stripe-milterctl check-config":
                t.ok("config:  /etc/stripe-milter.conf: ok" in out and "stripe:  ok" in out,
                     "stripe-milterctl check-config on the installed default config: config and "
                     "Stripe ok", out[-1000:])
            elif cmd.startswith("apt-get remove"):
                t.ok(os.path.exists("/etc/stripe-milter/stripe.key") and os.path.exists(
                    "/etc/stripe-milter.conf") and ids_present() == ["user", "group"] and
                    not os.path.exists("/usr/sbin/stripe-milter"),
                    "apt-get remove: the program goes, the key, config, user and group stay")
            elif cmd.startswith("swaks "):
                r.after_mail()
            if cmd.startswith("systemctl start") and r.daemon is None:
                break
            if rc != 0 and (cmd.startswith("dpkg-buildpackage") or cmd.startswith("./install-deps")):
                break
    finally:
        if r.daemon is not None:
            r.daemon.send_signal(signal.SIGTERM)
            r.stop_daemon()
        if r.postfix:
            r.postfix.stop()
        if r.standin:
            r.standin.stop()
        if installed() or not purged:
            rc, out = sh("flock %s apt-get -o DPkg::Lock::Timeout=900 purge -y %s" % (APT_LOCK, PKG))
            t.ok(not installed(), "cleanup: the package is purged", out[-1000:])
    t.ok(not installed(), "after apt-get purge: the package is gone")
    t.is_(ids_present(), [], "no stripe-milter user or group left")
    t.is_(sorted(leftovers() - before), [], "no file or folder left behind")
    if r.group_before is not None:
        t.is_(sorted(grp.getgrnam("postfix").gr_mem), sorted(r.group_before), "group postfix as it was")
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
