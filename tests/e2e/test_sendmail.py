#!/usr/bin/env python3
"""test_sendmail.py - stripe-milter behind a real Sendmail, compared with a real Postfix.

Sendmail (sendmail-bin) conflicts with the postfix package, so it is not installed:
install-deps.sh extracts sendmail-bin, sendmail-base and sendmail-cf (apt-get download +
dpkg-deb -x) into /var/cache/stripe-milter-tests/sendmail ($STRIPE_MILTER_SENDMAIL_ROOT
overrides). This test builds a private sendmail.cf with m4 and those cf macros, in a temp dir:
the INPUT_MAIL_FILTER and milter macro lines are the ones conf/sendmail.mc ships (only the
socket path changed), example.test is a local domain, and the local mailer is a small shell
script that writes each message to DIR/mail/<user>/<n> (no system users, no /etc/mail, no
procmail). Mail goes in with `swaks --pipe '<sendmail> -C <cf> -bs'`, delivered in
interactive mode, so the message is on disk when swaks returns.

One milter (Redis + the stand-in seeded with tests/demo/seed.json) serves both MTAs. Checks:
* jenny@customer.test: the X-Stripe-* header block Sendmail delivers equals, byte for byte,
  the one Postfix delivers in the same run. Both are cache misses (the milter is reloaded with
  a fresh CachePrefix before each), so nothing is ignored; a second Sendmail message is a
  cache hit and differs from the Postfix block only in `cache=hit; age=N`.
* Forged X-Stripe- headers (several copies of one name, in different cases, a folded one, an
  unknown one) are all removed under both MTAs and the milter's own remain. Sendmail does
  not renumber header indexes after a delete, Postfix does: deleting the highest index first
  is right for both, and the milter's log says how many it removed.
* pat@customer.test (past_due) and a stranger: same blocks under both MTAs.
"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import mta  # noqa: E402
import smtest  # noqa: E402

SEED = os.path.join(smtest.srcdir(), "tests", "demo", "seed.json")
SM_ROOT = os.environ.get("STRIPE_MILTER_SENDMAIL_ROOT") or "/var/cache/stripe-milter-tests/sendmail"
SM_BIN = "usr/libexec/sendmail/sendmail"
SM_CF = "usr/share/sendmail/cf"
SHIPPED_SOCKET = "S=unix:/run/stripe-milter/stripe-milter.sock"

FORGED = [
    "X-Stripe-Subscription-Status: past_due",
    "x-stripe-subscription-status: canceled",
    "X-STRIPE-SUBSCRIPTION-STATUS: unpaid",
    "X-STRIPE-LOOKUP: found; cache=hit",
    "X-Stripe-Customer: name=\"CEO\";\r\n\tdelinquent=no",
    "X-Stripe-Lookup: found",
    "X-Stripe-Unknown-Header: anything",
    "x-stripe-lookup: found; cache=hit; mode=live",
]

# The local mailer: argv = recipients ($u, F=m). One copy per recipient, written to a temp
# name then renamed, so a reader never sees half a message.
DELIVER = """#!/bin/sh
msg=$(mktemp "%(mail)s/.in.XXXXXX") || exit 75
cat > "$msg" || exit 75
for u in "$@"; do
	u=$(printf '%%s' "$u" | tr -c 'A-Za-z0-9._+-' '_')
	mkdir -p "%(mail)s/$u" || exit 75
	n=$(date +%%s%%N).$$
	cp "$msg" "%(mail)s/$u/.$n" && mv "%(mail)s/$u/.$n" "%(mail)s/$u/$n" || exit 75
done
rm -f "$msg"
exit 0
"""


class Sendmail:
    """A private sendmail run per message (-bs over a pipe) with its own cf, queue and mail
    folders in a temp dir. Needs root, m4, swaks and the extracted packages."""

    def __init__(self, milter_path, root=SM_ROOT):
        if os.geteuid() != 0:
            raise smtest.Unavailable("a private sendmail with -C needs root")
        self.bin = os.path.join(root, SM_BIN)
        cfdir = os.path.join(root, SM_CF)
        if not os.access(self.bin, os.X_OK) or not os.path.isfile(os.path.join(cfdir, "m4", "cf.m4")):
            raise smtest.Unavailable(
                "no private sendmail in %s (sendmail-bin conflicts with postfix; ./install-deps.sh "
                "extracts sendmail-bin, sendmail-base and sendmail-cf there with apt-get download)"
                % root)
        for prog in ("m4", "swaks"):
            if not shutil.which(prog):
                raise smtest.Unavailable("%s is not installed" % prog)
        self.dir = smtest.tempdir("sm-sendmail-")
        os.chmod(self.dir, 0o755)
        self.mail = os.path.join(self.dir, "mail")
        self.queue = os.path.join(self.dir, "queue")
        self.logfile = os.path.join(self.dir, "sendmail.log")
        os.makedirs(self.mail)
        os.makedirs(self.queue, mode=0o700)
        # The mailer runs as DefaultUser (nobody) for recipients without a passwd entry.
        os.chmod(self.mail, 0o1777)
        self.deliver = os.path.join(self.dir, "deliver")
        with open(self.deliver, "w") as f:
            f.write(DELIVER % {"mail": self.mail})
        os.chmod(self.deliver, 0o755)
        with open(os.path.join(self.dir, "hosts"), "w") as f:
            f.write("127.0.0.1 mx.example.test localhost\n")
        with open(os.path.join(self.dir, "service.switch"), "w") as f:
            f.write("hosts files\naliases files\n")
        self.mc = os.path.join(self.dir, "sendmail.mc")
        self.cf = os.path.join(self.dir, "sendmail.cf")
        with open(self.mc, "w") as f:
            f.write(self._mc(milter_path))
        r = subprocess.run(["m4", "-D_CF_DIR_=%s/" % cfdir, os.path.join(cfdir, "m4", "cf.m4"),
                            self.mc], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        if r.returncode != 0 or b"ERROR" in r.stderr:
            raise RuntimeError("m4 failed building sendmail.cf:\n%s" % r.stderr.decode("utf-8", "replace"))
        with open(self.cf, "wb") as f:
            f.write(r.stdout)

    def _mc(self, milter_path):
        shipped = open(os.path.join(smtest.srcdir(), "conf", "sendmail.mc")).read()
        if SHIPPED_SOCKET not in shipped:
            raise RuntimeError("conf/sendmail.mc no longer has %s" % SHIPPED_SOCKET)
        milter_lines = shipped.replace(SHIPPED_SOCKET, "S=unix:" + milter_path)
        d = self.dir
        return "".join([
            "divert(-1)\n",
            "OSTYPE(`linux')dnl\n",
            "divert(0)dnl\n",
            "define(`confDOMAIN_NAME', `mx.example.test')dnl\n",
            "define(`confHOSTS_FILE', `%s/hosts')dnl\n" % d,
            "define(`confSERVICE_SWITCH_FILE', `%s/service.switch')dnl\n" % d,
            "define(`QUEUE_DIR', `%s')dnl\n" % self.queue,
            "define(`STATUS_FILE', `%s/statistics')dnl\n" % d,
            "define(`confPID_FILE', `%s/sendmail.pid')dnl\n" % d,
            "define(`ALIAS_FILE', `')dnl\n",
            "define(`confFORWARD_PATH', `')dnl\n",
            "define(`confDEF_USER_ID', `65534:65534')dnl\n",
            "define(`confDELIVERY_MODE', `interactive')dnl\n",
            "define(`confDONT_PROBE_INTERFACES', `True')dnl\n",
            "define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl\n",
            # The milter's socket lives under a temp dir in a world-writable /tmp (sticky).
            "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl\n",
            "define(`confLOG_LEVEL', `14')dnl\n",
            "define(`confTO_IDENT', `0')dnl\n",
            "FEATURE(`nocanonify')dnl\n",
            "LOCAL_DOMAIN(`example.test')dnl\n",
            # OSTYPE(linux) picked procmail: a shell script instead, no passwd lookup (no w),
            # no aliases (no A).
            "define(`LOCAL_MAILER_PATH', `%s')dnl\n" % self.deliver,
            "define(`LOCAL_MAILER_ARGS', `deliver $u')dnl\n",
            "define(`_DEF_LOCAL_MAILER_FLAGS', `lsDFMq')dnl\n",
            "define(`LOCAL_MAILER_FLAGS', `Pmn')dnl\n",
            milter_lines,
            "MAILER(`local')dnl\n",
            "MAILER(`smtp')dnl\n",
        ])

    def send(self, sender, rcpt, headers=None, body="Hello.\n", timeout=60):
        """Sends one message with swaks over a pipe to `sendmail -bs`; returns (rc, output)."""
        argv = ["swaks", "--pipe", "%s -C %s -bs" % (self.bin, self.cf), "--from", sender,
                "--to", rcpt, "--helo", "client.example.net", "--timeout", str(timeout),
                "--hide-informational"]
        for h in headers or []:
            name = h.split(":", 1)[0].strip().lower()
            std = name in ("from", "to", "subject", "date", "message-id")
            argv += ["--header" if std else "--add-header", h]
        argv += ["--body", body]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           cwd=self.dir, timeout=timeout + 30)
        out = r.stdout.decode("utf-8", "replace")
        with open(self.logfile, "a") as f:
            f.write(out)
        return r.returncode, out

    def mails(self, local):
        d = os.path.join(self.mail, local)
        try:
            names = sorted(n for n in os.listdir(d) if not n.startswith("."))
        except OSError:
            return []
        out = []
        for n in sorted(names, key=lambda n: tuple(int(x) for x in n.split("."))):
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out

    def log(self):
        try:
            with open(self.logfile, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        pass    # nothing runs between messages


def stripe_block(msg):
    """The X-Stripe-* lines (with continuations) of a delivered message, as text."""
    out, keep = [], False
    for line in mta.header_block(msg).decode("utf-8", "replace").splitlines(True):
        if line[:1] in (" ", "\t"):
            if keep:
                out.append(line)
            continue
        keep = line.lower().startswith("x-stripe-")
        if keep:
            out.append(line)
    return "".join(out)


def hdr(msg, name):
    return [v for k, v in mta.headers(msg) if k.lower() == name.lower()]


def main():
    t = smtest.TAP()
    started = []
    try:
        try:
            redis = smtest.Redis()
            started.append(redis)
            standin = smtest.Standin(args=["--seed", SEED])
            started.append(standin)
            milter = mta.Milter(standin, redis)
            started.append(milter)
            postfix = mta.Postfix(milter.mta_socket)
            started.append(postfix)
            sendmail = Sendmail(milter.path)
        except smtest.Unavailable as e:
            smtest.TAP.skip_all(str(e))
        run(t, milter, postfix, sendmail)
    finally:
        for x in reversed(started):
            x.stop()
    return t.done()


def run(t, milter, postfix, sendmail):
    prefixes = iter("sm-test-%d" % i for i in range(1000))

    def fresh_cache():
        tail = milter.reload({"CachePrefix": next(prefixes)})
        if "reload" not in tail:
            raise AssertionError("milter did not reload: %s" % tail)

    def via(mtaname, sender, headers=(), rcpt="support@example.test"):
        x = postfix if mtaname == "postfix" else sendmail
        local = rcpt.split("@")[0]
        h = list(headers)
        if not any(v.lower().startswith("from:") for v in h):
            h.insert(0, "From: <%s>" % sender)
        n = len(x.mails(local))
        rc, out = x.send(sender, rcpt, headers=h)
        got = x.wait_mail(local, n + 1) if mtaname == "postfix" else x.mails(local)
        if rc != 0 or len(got) <= n:
            raise AssertionError("%s did not deliver (rc %d):\n%s\nmilter log:\n%s" % (
                mtaname, rc, out[-2500:], milter.log()[-2000:]))
        return got[-1]

    t.diag("sendmail: %s" % sendmail.bin)
    pf = {}
    sm = {}

    def jenny():
        fresh_cache()
        pf["jenny"] = via("postfix", "jenny@customer.test",
                          ["From: Jenny Rosen <jenny@customer.test>"])
        fresh_cache()
        sm["jenny"] = via("sendmail", "jenny@customer.test",
                          ["From: Jenny Rosen <jenny@customer.test>"])
        p, s = stripe_block(pf["jenny"]), stripe_block(sm["jenny"])
        t.diag("Sendmail's block:\n" + s)
        t.like(p, r"^X-Stripe-Lookup: found; cache=miss; mode=test\n", "Postfix: a cache miss")
        t.is_(s, p, "jenny: Sendmail's X-Stripe-* block equals Postfix's byte for byte")
        for name in ("X-Stripe-Customer", "X-Stripe-Subscription-Status", "X-Stripe-Subscription"):
            t.ok(len(hdr(sm["jenny"], name)) == 1, "Sendmail: one %s" % name)
    t.run("paying customer: same headers via Sendmail and Postfix", jenny)

    def jenny_hit():
        msg = via("sendmail", "jenny@customer.test", ["From: Jenny Rosen <jenny@customer.test>"])
        s = stripe_block(msg)
        t.like(s, r"^X-Stripe-Lookup: found; cache=hit; age=\d+; mode=test\n",
               "Sendmail, second message: a cache hit")
        t.is_(re.sub(r"cache=hit; age=\d+;", "cache=miss;", s, count=1),
              stripe_block(pf["jenny"]), "cache hit: only cache=/age= differ from Postfix's block")
    t.run("cache hit via Sendmail", jenny_hit)

    def forged():
        for name in ("postfix", "sendmail"):
            fresh_cache()
            mark = len(milter.log())
            msg = via(name, "jenny@customer.test",
                      ["From: Jenny Rosen <jenny@customer.test>"] + FORGED)
            block = stripe_block(msg)
            t.is_(block, stripe_block(pf["jenny"]),
                  "%s: forged headers gone, block equals the clean one" % name)
            t.is_(hdr(msg, "X-Stripe-Subscription-Status"), ["active"],
                  "%s: 3 forged status copies (3 cases) gone, ours says active" % name)
            t.ok("CEO" not in block and "Unknown-Header" not in block and "live" not in block,
                 "%s: folded, unknown and lower-case forged headers gone" % name, block)
            log = milter.log()[mark:]
            t.like(log, r"forged_removed=%d\b" % len(FORGED),
                   "%s: milter log counts %d removed" % (name, len(FORGED)))
            t.ok(b"Subject:" in mta.header_block(msg) and b"Hello." in msg,
                 "%s: other headers and the body intact" % name)
    t.run("forged X-Stripe- headers removed under both MTAs", forged)

    def only_forged_of_one_name():
        # Five copies of a single name and nothing else: every index 5..1 deleted in turn.
        copies = ["X-Stripe-Lookup: forged %d" % i if i % 2 else "x-stripe-lookup: forged %d" % i
                  for i in range(1, 6)]
        for name in ("postfix", "sendmail"):
            msg = via(name, "nobody@elsewhere.test", copies + ["X-Other: kept"])
            t.ok(b"forged" not in msg, "%s: 5 copies of one name all deleted" % name,
                 mta.header_block(msg).decode("utf-8", "replace"))
            t.is_(hdr(msg, "X-Other"), ["kept"], "%s: neighbouring header kept" % name)
    t.run("many copies of one forged name", only_forged_of_one_name)

    def others():
        for sender in ("pat@customer.test", "mallory@attacker.test"):
            fresh_cache()
            p = stripe_block(via("postfix", sender))
            fresh_cache()
            s = stripe_block(via("sendmail", sender))
            t.is_(s, p, "%s: same block via Sendmail and Postfix" % sender)
    t.run("past-due customer and stranger", others)


if __name__ == "__main__":
    sys.exit(main())
