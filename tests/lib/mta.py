"""mta - fixtures for end-to-end tests of stripe-milter (tests only).

* `Milter(standin, redis=None, socket="unix"|"inet", options={...})`: writes a config and a
  key file (mode 0600) in a temp dir and runs the built daemon in the foreground, logging to
  its own file; `reload(options)` rewrites the config and sends SIGUSR1; `stop()`; `log()`.
* `Postfix(milter_socket, ...)`: a private Postfix on a free loopback port: its own config,
  queue and Maildir folders in a temp dir, `chroot n` everywhere, virtual delivery to
  Maildirs (`texthash:` map, so no system users and no postmap). `send()` uses swaks;
  `wait_mail(local)` returns delivered messages as bytes. Needs root and the postfix
  package; raises smtest.Unavailable otherwise.
* `miltertest(script, env)`: runs a miltertest Lua script; returns (rc, output).
* `headers(msg)`: parses a delivered message's header block into [(name, value)].

Every process is started through smtest.spawn (dies with the test) and stopped by PID.
"""

import email.parser
import email.policy
import os
import re
import shutil
import signal
import subprocess
import time

import smtest


# Sanitizer findings (ASan, UBSan, LeakSanitizer) in the logs of daemons this test stopped.
SANITIZER_REPORTS = []
_SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                    "WARNING: ThreadSanitizer", "definitely lost in", "Invalid read", "Invalid write",
                    "uninitialised value", "Conditional jump or move depends")


# Lines libmilter logged (syslog(3); the daemon copies them to its stderr log as
# "ident[pid]: text" when it logs to stderr) in daemons this test stopped. libmilter logs
# only errors and warnings without debugging (smfi_setdbg), so every such line is a defect:
# "milter claimed not to reply in state N but did anyway", a bad protocol reply, ...
LIBMILTER_LINES = []
_LIBMILTER_LINE = re.compile(r"^[\w.-]+\[\d+\]: .*$", re.M)


def libmilter_lines(log):
    """The lines of a daemon log that came from libmilter (through syslog(3))."""
    return _LIBMILTER_LINE.findall(log)


def assert_clean(t):
    """TAP tests: no daemon stopped so far printed a sanitizer report or a libmilter line."""
    t.ok(not SANITIZER_REPORTS, "no sanitizer reports from stripe-milter",
         "\n\n".join(SANITIZER_REPORTS)[:4000])
    t.ok(not LIBMILTER_LINES, "no error lines from libmilter in the daemons' logs (%d)"
         % len(LIBMILTER_LINES), "\n".join(LIBMILTER_LINES[:20]))


def binary(name):
    folder = "ctl" if name == "stripe-milterctl" else "milter"
    p = os.path.join(smtest.builddir(), folder, name)
    if not os.access(p, os.X_OK):
        raise smtest.Unavailable("%s is not built (run make)" % p)
    return p


class Milter:
    KEY = "sk_test_smtest"

    def __init__(self, standin=None, redis=None, socket="unix", options=None, key=None,
                 wait=True, port=None, program=None):
        self.dir = smtest.tempdir("sm-milter-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "stripe-milter.conf")
        self.keyfile = os.path.join(self.dir, "stripe.key")
        self.logfile = os.path.join(self.dir, "milter.log")
        # this daemon's own snapshot (StatsFile): never the host's /run/stripe-milter
        self.stats_file = os.path.join(self.dir, "stats", "snapshot")
        if socket == "unix":
            self.path = os.path.join(self.dir, "milter.sock")
            self.socket = "unix:" + self.path
            self.mta_socket = self.socket
            self.port = None
        else:
            self.port = port or smtest.free_port()
            self.socket = "inet:%d@127.0.0.1" % self.port      # libmilter's spelling
            self.mta_socket = "inet:127.0.0.1:%d" % self.port  # Postfix's spelling
            self.path = None
        self.standin = standin
        self.redis = redis
        with open(os.open(self.keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write((key or self.KEY) + "\n")
        self.options = dict(options or {})
        self._write_conf()
        # STRIPE_MILTER_WRAPPER runs the daemon under a tool, e.g. "valgrind -q --leak-check=full".
        wrapper = os.environ.get("STRIPE_MILTER_WRAPPER", "").split()
        # program: another build of the daemon (a path), e.g. one with another codec version
        self.proc = smtest.spawn(wrapper + [program or binary("stripe-milter"), "-f", "-v", "-c", self.conf],
                                 log=self.logfile)
        if wait and not self.wait_ready():
            self.stop()
            raise RuntimeError("stripe-milter did not start: %s" % self.log()[-2000:])

    def _write_conf(self):
        o = {
            "Socket": self.socket,
            "Background": "no",
            "Syslog": "no",
            "LogLevel": "debug",
            "StripeKeyFile": self.keyfile,
            "InternalHosts": "192.0.2.250",
            "LookupTimeout": "3000",
            "StripeTimeout": "5000",
            "StatsInterval": "1",
            "StatsFile": self.stats_file,
        }
        if self.standin is not None:
            o["StripeAPIBase"] = self.standin.url
        try:
            import grp
            grp.getgrnam("postfix")
            if self.path:
                o["SocketGroup"] = "postfix"    # so Postfix's smtpd may connect
        except (KeyError, ImportError):
            pass
        if self.redis is not None:
            o["RedisHost"] = "127.0.0.1"
            o["RedisPort"] = str(self.redis.port)
        o.update(self.options)
        with open(self.conf, "w") as f:
            for k, v in o.items():
                if v is not None:
                    f.write("%s %s\n" % (k, v))

    # The daemon's own "ready" line: logged once every listener (milter socket, MetricsListen,
    # WebhookListen) and thread is up. The milter socket alone is made earlier, while the daemon
    # is still root, before the runtime and the HTTP listeners exist (under ThreadSanitizer
    # that gap was long enough for a test's first /metrics scrape to find nothing).
    READY_LINE = re.compile(r"stripe-milter \S+ listening on ")

    def wait_ready(self, timeout=60.0):
        """Waits (a deadline on the wait) for the socket and, when LogLevel lets the notice
        through, the daemon's ready line; False when the daemon exited."""
        quiet = str(self.options.get("LogLevel", "debug")).lower() in (
            "emerg", "alert", "crit", "err", "error", "warning", "warn")

        def socket_up():
            if self.path:
                return os.path.exists(self.path)
            return bool(self.port and smtest.wait_port(self.port, 0.1))

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            if socket_up() and (quiet or self.READY_LINE.search(self.log())):
                return "ready"
            return None
        return smtest.wait_for(ready, timeout=timeout) == "ready"

    def reload(self, options):
        self.options.update(options)
        self._write_conf()
        mark = len(self.log())
        self.proc.send_signal(signal.SIGUSR1)
        smtest.wait_for(lambda: "reload" in self.log()[mark:], timeout=60)
        return self.log()[mark:]

    def log(self):
        try:
            with open(self.logfile, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """Stops the daemon (SIGTERM); returns the seconds it took to exit."""
        t0 = time.time()
        if self.proc is not None:
            smtest.stop(self.proc, grace=10.0)
            self.rc = self.proc.returncode
            self.proc = None
            log = self.log()
            for mark in _SANITIZER_MARKS:
                i = log.find(mark)
                if i >= 0:
                    SANITIZER_REPORTS.append("%s:\n%s" % (self.logfile, log[max(0, i - 200):i + 3000]))
                    break
            LIBMILTER_LINES.extend(libmilter_lines(log))
        return time.time() - t0


class Postfix:
    def __init__(self, milter_socket=None, recipients=("support", "billing", "bob"),
                 main_extra="", header_checks=None, milter_header_checks=None,
                 default_action="accept"):
        if os.geteuid() != 0:
            raise smtest.Unavailable("a private Postfix needs root")
        if not shutil.which("postfix") or not os.path.exists("/usr/share/postfix/master.cf.dist"):
            raise smtest.Unavailable("postfix is not installed (apt-get install postfix)")
        if not shutil.which("swaks"):
            raise smtest.Unavailable("swaks is not installed (apt-get install swaks)")
        self.dir = smtest.tempdir("sm-postfix-")
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.mail = os.path.join(self.dir, "mail")
        for d in ("etc", "spool", "data", "mail"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        shutil.chown(os.path.join(self.dir, "data"), "postfix")
        shutil.chown(self.mail, 65534, 65534)
        self.port = smtest.free_port()
        self.logfile = os.path.join(self.dir, "maillog")
        with open(os.path.join(self.etc, "vmailbox"), "w") as f:
            for r in recipients:
                f.write("%s@example.test %s/\n" % (r, r))
        main = [
            "compatibility_level = 3.6",
            "queue_directory = %s/spool" % self.dir,
            "data_directory = %s/data" % self.dir,
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "myhostname = mx.example.test",
            "mydomain = example.test",
            "myorigin = example.test",
            "mydestination =",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "smtpd_recipient_restrictions = permit_mynetworks, reject",
            "virtual_mailbox_domains = example.test",
            "virtual_mailbox_base = %s" % self.mail,
            "virtual_mailbox_maps = texthash:%s/vmailbox" % self.etc,
            "virtual_alias_maps =",
            "virtual_uid_maps = static:65534",
            "virtual_gid_maps = static:65534",
            "maillog_file = /dev/stdout",
            "default_transport = error:no outside delivery in tests",
            "smtp_dns_support_level = disabled",
            "biff = no",
            "alias_maps =",
            "alias_database =",
            "milter_default_action = %s" % default_action,
            "milter_protocol = 6",
            # Mail from loopback is treated as remote mail: headers are not rewritten, as on
            # an MX receiving from the Internet.
            "local_header_rewrite_clients =",
        ]
        if milter_socket:
            main.append("smtpd_milters = %s" % milter_socket)
        if header_checks:
            p = os.path.join(self.etc, "header_checks")
            with open(p, "w") as f:
                f.write(header_checks)
            main.append("header_checks = regexp:%s" % p)
        if milter_header_checks:
            p = os.path.join(self.etc, "milter_header_checks")
            with open(p, "w") as f:
                f.write(milter_header_checks)
            main.append("milter_header_checks = regexp:%s" % p)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("\n".join(main) + "\n" + main_extra)
        self._master_cf()
        self.proc = smtest.spawn(["postfix", "-c", self.etc, "start-fg"], log=self.logfile)
        if not smtest.wait_port(self.port, 20):
            log = self.log()
            self.stop()
            raise smtest.Unavailable("Postfix did not start: %s" % log[-1500:])

    def _master_cf(self):
        out = []
        with open("/usr/share/postfix/master.cf.dist") as f:
            for line in f:
                w = line.split()
                if len(w) >= 8 and not line[0].isspace() and not line.startswith("#"):
                    if w[0] == "smtp" and w[1] == "inet":
                        w[0] = "127.0.0.1:%d" % self.port
                    w[4] = "n"          # chroot n: no copies of files into a jail
                    line = " ".join(w) + "\n"
                out.append(line)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.writelines(out)

    def log(self):
        try:
            with open(self.logfile, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def send(self, sender, rcpt, headers=None, body="Hello.\n", data=None, timeout=60):
        """Sends one message with swaks; returns (rc, swaks output)."""
        argv = ["swaks", "--server", "127.0.0.1:%d" % self.port, "--from", sender, "--to", rcpt,
                "--helo", "client.example.net", "--timeout", str(timeout), "--hide-informational"]
        if data is not None:
            argv += ["--data", "-"]
        else:
            for h in headers or []:
                # swaks writes its own From/To/Subject/Date/Message-Id: replace those,
                # add every other header as given (several copies stay several).
                name = h.split(":", 1)[0].strip().lower()
                std = name in ("from", "to", "subject", "date", "message-id")
                argv += ["--header" if std else "--add-header", h]
            argv += ["--body", body]
        r = subprocess.run(argv, input=data.encode() if isinstance(data, str) else data,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout + 30)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def mails(self, local):
        d = os.path.join(self.mail, local, "new")
        try:
            names = sorted(os.listdir(d), key=lambda n: os.path.getmtime(os.path.join(d, n)))
        except OSError:
            return []
        out = []
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out

    def wait_mail(self, local, count=1, timeout=60.0):
        smtest.wait_for(lambda: len(self.mails(local)) >= count, timeout=timeout)
        return self.mails(local)

    def stop(self):
        if self.proc is not None:
            subprocess.run(["postfix", "-c", self.etc, "stop"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
            # master's children share its process group: none outlives the test.
            smtest.stop(self.proc, grace=5.0, group=True)
            self.proc = None


def headers(msg):
    """[(name, value)] of a message's header block, values unfolded as Postfix wrote them."""
    m = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(msg)
    return [(k, str(v)) for k, v in m.items()]


def stripe_fields(msg, prefix="x-stripe-"):
    """Each X-Stripe-* field of a delivered message as raw text (continuation lines included)."""
    out, keep = [], False
    for line in header_block(msg).decode("utf-8", "replace").splitlines(True):
        if line[:1] in (" ", "\t"):
            if keep:
                out[-1] += line
            continue
        keep = line.lower().startswith(prefix)
        if keep:
            out.append(line)
    return out


def stripe_block(msg):
    """The X-Stripe-* lines (with continuations) of a delivered message, as text."""
    return "".join(stripe_fields(msg))


def hdr(msg, name):
    """Every value of a header (any case of its name), unfolded as the parser gives it."""
    return [v for k, v in headers(msg) if k.lower() == name.lower()]


def header_block(msg):
    """The raw header block of a message (bytes), for byte-for-byte checks."""
    i = msg.find(b"\n\n")
    return msg if i < 0 else msg[:i + 1]


def ctl(conf, *args):
    """Runs stripe-milterctl -c conf ARGS; (exit code, stdout, stderr)."""
    p = subprocess.run([binary("stripe-milterctl"), "-c", conf] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def miltertest(script, env, timeout=60):
    if not shutil.which("miltertest"):
        raise smtest.Unavailable("miltertest is not installed (apt-get install miltertest)")
    e = dict(os.environ)
    e.update(env)
    r = subprocess.run(["miltertest", "-s", script], env=e, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")
