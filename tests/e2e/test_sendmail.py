#!/usr/bin/env python3
"""test_sendmail.py - stripe-milter behind a real Sendmail, compared with a real Postfix.

Sendmail (sendmail-bin) conflicts with the postfix package, so it is not installed:
install-deps.sh unpacks sendmail-bin, sendmail-base and sendmail-cf (apt-get download +
dpkg-deb -x) into /var/cache/stripe-milter-tests/sendmail ($STRIPE_MILTER_SENDMAIL_ROOT
overrides); without it the test skips. It builds a private sendmail.cf with m4 and those cf
macros in a temp dir: the INPUT_MAIL_FILTER and milter macro lines are conf/sendmail.mc's as
shipped (F=T and T= included; only the socket path changed), example.test is a local domain,
and the local mailer is a shell script writing each message to DIR/mail/<user>/<n> (no system
users, no aliases, no /etc/mail, no procmail). Mail goes in with
`swaks --pipe 'DIR/sendmail-bs -bs'`, which runs `sendmail -C DIR/sendmail.cf -bs` in private
UTS and mount namespaces (see RUN); delivery is interactive, so the message is on disk when
swaks returns.

One milter (Redis + the stand-in seeded with tests/demo/seed.json, default options) serves a
private Postfix and Sendmail. Checks:
* jenny@customer.test: the X-Stripe-* block Sendmail delivers equals, byte for byte, the one
  Postfix delivers in the same run. Both are cache misses (the milter is reloaded with a fresh
  CachePrefix before each), so nothing is ignored; a second Sendmail message is a cache hit
  and differs only in `cache=hit; age=N`. Sendmail keeps the milter's folding as sent, so no
  unfolding is needed.
* Forged X-Stripe- headers (three copies of one name in three cases, three of another, a
  folded one, an unknown one) are all removed under both MTAs, and five copies of one name
  around another header. Sendmail does not renumber header indexes after a delete, Postfix
  does: deleting the highest index first is right for both. The milter's own eight fields
  come out byte for byte, in the same order.
* pat (past_due), yuki (trialing, RFC 2047 name, JPY) and a stranger: same blocks.
* Hostile Stripe data (tests/lib/hdrv2.HOSTILE: names and plan names with every token of the
  header contract, encoded-word look-alikes, CR/LF, bidi overrides, 10,000 characters) as
  past-due and as paying customers: on what Sendmail delivers, conf/stripe.sieve (sieve-test),
  conf/stripe.procmailrc (procmail) and conf/milter_header_checks (postmap -q, Postfix's own
  regexp table code, on the raw fields) do exactly what they do for the ordinary twins, which
  show the rules firing; a few of those blocks equal Postfix's byte for byte.
* The shipped F=T: with the milter down Sendmail tempfails instead of delivering.
"""
import os
import re
import shutil
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import hdrv2  # noqa: E402
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


# Sendmail sleeps 60 s at start when the host name has no dot and does not resolve to a dotted
# name (before it reads its cf, so no option helps). Each run gets private UTS and mount
# namespaces: host name mx.example.test, this dir's hosts and nsswitch.conf (files only: no
# DNS) bound over /etc's. Nothing outside the namespaces changes.
RUN = """#!/bin/sh
exec unshare --uts --mount --propagation private sh -c 'mount --bind %(dir)s/hosts /etc/hosts &&
mount --bind %(dir)s/nsswitch.conf /etc/nsswitch.conf && hostname %(host)s &&
exec %(bin)s -C %(cf)s "$@"' sendmail "$@"
"""


class Sendmail:
    """A private sendmail run per message (-bs over a pipe) with its own cf, queue and mail
    folders in a temp dir. Needs root, m4, swaks, unshare and the extracted packages."""

    HOSTNAME = "mx.example.test"

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
        for prog in ("m4", "swaks", "unshare"):
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
            f.write("127.0.0.1 %s localhost\n" % self.HOSTNAME)
        with open(os.path.join(self.dir, "nsswitch.conf"), "w") as f:
            f.write("passwd: files\ngroup: files\nhosts: files\n")
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
        r = subprocess.run(["unshare", "--uts", "--mount", "--propagation", "private", "true"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            raise smtest.Unavailable("private namespaces (unshare --uts --mount) do not work "
                                     "here, and sendmail would sleep 60 s per message on an "
                                     "unqualified host name: %s" % r.stdout.decode().strip())
        # The wrapper (RUN), checked once: -bt -d0.1 prints the identity sendmail settled on.
        self.run = os.path.join(self.dir, "sendmail-bs")
        with open(self.run, "w") as f:
            f.write(RUN % {"dir": self.dir, "host": self.HOSTNAME, "bin": self.bin, "cf": self.cf})
        os.chmod(self.run, 0o755)
        r = subprocess.run([self.run, "-bt", "-d0.1"], input=b"", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        out = r.stdout.decode("utf-8", "replace")
        m = re.search(r"Version (\S+)", out)
        self.version = "%s (%s)" % (m.group(1) if m else "?", self.bin)
        if r.returncode != 0 or "$j = %s" % self.HOSTNAME not in out:
            raise RuntimeError("the private sendmail does not start:\n%s" % out[-1500:])

    def _mc(self, milter_path):
        shipped = open(os.path.join(smtest.srcdir(), "conf", "sendmail.mc")).read()
        if SHIPPED_SOCKET not in shipped:
            raise RuntimeError("conf/sendmail.mc no longer has %s" % SHIPPED_SOCKET)
        milter_lines = shipped.replace(SHIPPED_SOCKET, "S=unix:" + milter_path)
        d = self.dir
        return "".join([
            "OSTYPE(`linux')dnl\n",
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
            "define(`confTO_IDENT', `0')dnl\n",
            # Sendmail queues instead of delivering above QueueLA (8 x CPUs by default) and
            # refuses above RefuseLA: a test machine's load is no reason to hold test mail.
            "define(`confQUEUE_LA', `10000')dnl\n",
            "define(`confREFUSE_LA', `10000')dnl\n",
            "FEATURE(`nocanonify')dnl\n",
            "FEATURE(`accept_unresolvable_domains')dnl\n",
            "LOCAL_DOMAIN(`example.test')dnl\n",
            # OSTYPE(linux) picked procmail: a shell script instead, no passwd lookup (no w),
            # no aliases (no A).
            "define(`LOCAL_MAILER_PATH', `%s')dnl\n" % self.deliver,
            "define(`LOCAL_MAILER_ARGS', `deliver $u')dnl\n",
            "define(`_DEF_LOCAL_MAILER_FLAGS', `lsDFMq')dnl\n",
            "define(`LOCAL_MAILER_FLAGS', `Pmn')dnl\n",
            milter_lines,       # INPUT_MAIL_FILTER + confMILTER_MACROS_* as shipped
            "MAILER(`local')dnl\n",
            "MAILER(`smtp')dnl\n",
        ])

    def send(self, sender, rcpt, headers=None, body="Hello.\n", timeout=60):
        """Sends one message with swaks over a pipe to `sendmail -bs`; returns (rc, output)."""
        argv = ["swaks", "--pipe", "%s -bs" % self.run, "--from", sender,
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
            names = [n for n in os.listdir(d) if not n.startswith(".")]
        except OSError:
            return []
        out = []
        for n in sorted(names, key=lambda n: tuple(int(x) for x in n.split("."))):
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out

    def wait_mail(self, local, count=1, timeout=60.0):
        # Interactive delivery: the message is written before the reply to DATA. Wait for it
        # anyway (a deadline, not a delay), as for Postfix.
        smtest.wait_for(lambda: len(self.mails(local)) >= count, timeout=timeout)
        return self.mails(local)

    def log(self):
        try:
            with open(self.logfile, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        pass    # nothing runs between messages








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
        except Exception:  # noqa: BLE001 - a broken setup is a failure, reported as TAP
            t.ok(False, "set up the milter, Postfix and a private sendmail",
                 traceback.format_exc())
            return t.done()
        run(t, milter, postfix, sendmail)
    finally:
        for x in reversed(started):
            x.stop()
    mta.assert_clean(t)
    return t.done()


def run(t, milter, postfix, sendmail):
    prefixes = iter("sm-test-%d" % i for i in range(1000))

    def fresh_cache():
        # A new key space: the next lookup of any address is a miss (L1 and Redis).
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
        got = x.wait_mail(local, n + 1)
        if rc != 0 or len(got) <= n:
            raise AssertionError("%s did not deliver (rc %d):\n%s\nmilter log:\n%s" % (
                mtaname, rc, out[-2500:], milter.log()[-2000:]))
        return got[-1]

    t.diag("sendmail: %s" % sendmail.version)
    pf = {}

    def jenny():
        fresh_cache()
        pf["jenny"] = via("postfix", "jenny@customer.test",
                          ["From: Jenny Rosen <jenny@customer.test>"])
        fresh_cache()
        msg = via("sendmail", "jenny@customer.test", ["From: Jenny Rosen <jenny@customer.test>"])
        p, s = mta.stripe_block(pf["jenny"]), mta.stripe_block(msg)
        t.like(p, r"^X-Stripe-Lookup: v=2; found; cache=miss; mode=test\n", "Postfix: a cache miss")
        # Sendmail writes the milter's "\n\t" folds as they are, like Postfix: no unfolding
        # needed, the raw blocks (order, folding, spacing) compare as they are.
        t.is_(s, p, "jenny: Sendmail's X-Stripe-* block equals Postfix's byte for byte")
        t.like(s, r"X-Stripe-Subscription-Status: active\n", "Sendmail: the customer is active")
        t.is_(len(mta.stripe_fields(msg)), 8, "Sendmail: eight X-Stripe- headers")
    t.run("paying customer: same headers via Sendmail and Postfix", jenny)

    def jenny_hit():
        msg = via("sendmail", "jenny@customer.test", ["From: Jenny Rosen <jenny@customer.test>"])
        s = mta.stripe_block(msg)
        t.like(s, r"^X-Stripe-Lookup: v=2; found; cache=hit; age=\d+; mode=test\n",
               "Sendmail, second message: a cache hit")
        t.is_(re.sub(r"cache=hit; age=\d+;", "cache=miss;", s, count=1),
              mta.stripe_block(pf["jenny"]), "cache hit: only cache=/age= differ from Postfix's block")
    t.run("cache hit via Sendmail", jenny_hit)

    def forged():
        clean = mta.stripe_fields(pf["jenny"])
        for name in ("postfix", "sendmail"):
            fresh_cache()
            mark = len(milter.log())
            msg = via(name, "jenny@customer.test",
                      ["From: Jenny Rosen <jenny@customer.test>"] + FORGED)
            got = mta.stripe_fields(msg)
            # Sendmail's smfi_addheader() would insert a header before the first one of the
            # same name (a deleted one stays in its list), scattering the milter's fields where
            # the forged copies were; the milter inserts at the end (smfi_insheader with the
            # largest index), so both MTAs keep its order.
            t.is_(got, clean, "%s: forged headers gone; the milter's eight fields, byte for byte, "
                  "in its order" % name)
            t.is_(mta.hdr(msg, "X-Stripe-Subscription-Status"), ["active"],
                  "%s: 3 forged status copies (3 cases) gone, ours says active" % name)
            block = "".join(got)
            t.ok("CEO" not in block and "Unknown-Header" not in block and "live" not in block,
                 "%s: folded, unknown and lower-case forged headers gone" % name, block)
            t.like(milter.log()[mark:], r"forged_removed=%d\b" % len(FORGED),
                   "%s: milter log counts %d removed" % (name, len(FORGED)))
            hb = mta.header_block(msg)
            t.ok(b"\nSubject: " in hb and b"\nX-Mailer: " in hb and
                 msg[len(hb):].strip() == b"Hello.", "%s: other headers and the body intact" % name,
                 msg.decode("utf-8", "replace"))
    t.run("forged X-Stripe- headers removed under both MTAs", forged)

    def one_name_many_copies():
        # Five copies of one name, two spellings, around another header: indexes 5..1 go in
        # turn. Lowest-first would leave copies behind under Postfix (it renumbers).
        copies = [("X-Stripe-Lookup" if i % 2 else "x-stripe-lookup") + ": forged %d" % i
                  for i in range(1, 6)]
        copies.insert(2, "X-Other: kept")
        for name in ("postfix", "sendmail"):
            msg = via(name, "nobody@elsewhere.test", copies)
            t.ok(b"forged" not in msg, "%s: 5 copies of one name all deleted" % name,
                 mta.header_block(msg).decode("utf-8", "replace"))
            t.is_(mta.hdr(msg, "X-Other"), ["kept"], "%s: the header between them kept" % name)
            t.like(mta.hdr(msg, "X-Stripe-Lookup")[0] if mta.hdr(msg, "X-Stripe-Lookup") else "",
                   r"^v=2; not-found; ", "%s: the milter's own Lookup, once" % name)
    t.run("many copies of one forged name", one_name_many_copies)

    def others():
        for sender in ("pat@customer.test", "yuki@customer.test", "mallory@attacker.test"):
            fresh_cache()
            p = mta.stripe_block(via("postfix", sender))
            fresh_cache()
            s = mta.stripe_block(via("sendmail", sender))
            t.is_(s, p, "%s: same block via Sendmail and Postfix" % sender)
    t.run("past-due, trialing (non-ASCII name, JPY) and unknown senders", others)

    def hostile():
        # The same hostile customers as tests/e2e/test_rules.py, added to the seeded stand-in.
        state, pairs = hdrv2.hostile_state(int(time.time()))
        milter.standin.add(state)
        names = {c["email"]: c["name"] for c in state["customers"]}
        if not shutil.which("sieve-test") or not shutil.which("postmap") or not shutil.which("procmail"):
            t.skip("hostile rules via Sendmail", "sieve-test, procmail or postmap missing "
                   "(apt-get install dovecot-sieve procmail postfix)")
            return
        tmp = smtest.tempdir("sm-sendmail-rules-")
        os.chmod(tmp, 0o777)
        pmconf = smtest.tempdir("sm-postmap-")
        table = os.path.join(smtest.srcdir(), "conf", "milter_header_checks")
        script = os.path.join(smtest.srcdir(), "conf", "stripe.sieve")
        procmailrc = os.path.join(smtest.srcdir(), "conf", "stripe.procmailrc")
        seen = {}

        def outcome(addr):
            if addr not in seen:
                msg = via("sendmail", addr)
                seen[addr] = (hdrv2.postmap_outcome(mta.stripe_fields(msg), table, pmconf),
                              (hdrv2.sieve_outcome(tmp, msg, script),
                               hdrv2.procmail_outcome(tmp, msg, procmailrc)), msg)
            return seen[addr]

        t.is_(outcome("ordbad@customer.test")[:2],
              (("REDIRECT billing@example.test", "WARN delinquent customer"), (("Billing",), "Billing")),
              "Sendmail, ordinary past-due customer: REDIRECT, WARN, filed into Billing (Sieve, procmail)")
        t.is_(outcome("ordgood@customer.test")[:2], ((), (("flagged",), "inbox")),
              "Sendmail, ordinary paying customer: no Postfix action, flagged, procmail's inbox")
        bad = []
        for addr, twin in pairs:
            pf, sv, msg = outcome(addr)
            if (pf, sv) != outcome(twin)[:2]:
                bad.append("%s named %r: %r %r, twin %r" % (addr, names[addr][:60], pf, sv, outcome(twin)[:2]))
            for k, v in mta.headers(msg):
                if k.lower().startswith("x-stripe-") and hdrv2.is_text_header(k) and \
                        hdrv2.strict_decode(v) != hdrv2.stripe_text(names[addr]):
                    bad.append("%s: %s decodes to %r" % (addr, k, hdrv2.strict_decode(v)[:80]))
        t.ok(not bad, "Sendmail, %d hostile customers: every rule did what it did for the ordinary "
             "twin; names and plans decode to the Stripe text" % len(pairs), "\n".join(bad[:10]))
        for addr in ("bad0@customer.test", "good8@customer.test", "bad9@customer.test", "good19@customer.test"):
            fresh_cache()
            p = mta.stripe_block(via("postfix", addr))
            fresh_cache()
            s = mta.stripe_block(via("sendmail", addr))
            t.is_(s, p, "%s (%r): same block via Sendmail and Postfix" % (addr, names[addr][:30]))
    t.run("hostile names and plan names fool no shipped rule via Sendmail", hostile)

    def milter_down():
        # conf/sendmail.mc ships F=T: with the milter unreachable Sendmail tempfails the
        # message instead of delivering it unfiltered (forged headers and all).
        milter.stop()
        n = len(sendmail.mails("support"))
        rc, out = sendmail.send("mallory@attacker.test", "support@example.test",
                                headers=["From: <mallory@attacker.test>"] + FORGED[:1])
        t.ok(rc != 0 and re.search(r"^<\*\* 4\d\d", out, re.M) is not None,
             "milter down, F=T: Sendmail answers 4xx", out[-1500:])
        # Sendmail refused the message (4xx to DATA) and delivers interactively, so nothing
        # can still be on its way: the mailbox is checked at once.
        t.is_(len(sendmail.mails("support")), n, "milter down, F=T: nothing delivered")
    t.run("shipped F=T: milter down means tempfail", milter_down)


if __name__ == "__main__":
    sys.exit(main())
