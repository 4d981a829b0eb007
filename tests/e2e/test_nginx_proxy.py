#!/usr/bin/env python3
"""test_nginx_proxy.py - conf/nginx-stripe-webhook.conf as shipped (ports, certificate and
paths substituted) in a private Debian nginx on loopback, in front of a daemon's
WebhookListen: the stand-in delivers a signed event over HTTPS (its certificate verified
against the test's own CA, made here with openssl) and the daemon applies it; nginx itself
refuses what the file says it refuses (a body over client_max_body_size: 413, GET: 403,
another path: 404) without the daemon seeing it; the daemon's per-client limit holds
nginx's connections to max_conns.

nginx runs with its own prefix, pid, logs and temp paths in a temp dir (`-p`, `-e`,
`-c`), never the system's. Without nginx or openssl the test skips (fails under CI=true).
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", "."), "tests", "lib"))
import milterclient  # noqa: E402
import mta  # noqa: E402
import smtest  # noqa: E402

SECRET = "whsec_nginx_test_secret_0123456789"
CONF = os.path.join(smtest.srcdir(), "conf", "nginx-stripe-webhook.conf")


def nginx_conf(d, port, wport):
    """The shipped server block with this test's ports and certificate, in a main file of
    the test's own (prefix, pid, logs, temp paths under d)."""
    with open(CONF) as f:
        site = f.read()
    subs = [("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % port),
            ("    listen [::]:443 ssl;\n", ""),
            ("/etc/ssl/certs/webhooks.example.com.pem", os.path.join(d, "cert.pem")),
            ("/etc/ssl/private/webhooks.example.com.key", os.path.join(d, "key.pem")),
            ("server 127.0.0.1:9898 ", "server 127.0.0.1:%d " % wport)]
    for old, new in subs:
        if old not in site:
            raise AssertionError("the example no longer has %r" % old)
        site = site.replace(old, new)
    with open(os.path.join(d, "site.conf"), "w") as f:
        f.write(site)
    main = """user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
daemon off;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/site.conf;
}}
""".format(d=d)
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(main)
    return path


def main():
    t = smtest.TAP()
    try:
        for tool in ("nginx", "openssl"):
            if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
                raise smtest.Unavailable("%s is not installed (install-deps.sh)" % tool)
        mta.binary("stripe-milter")
        s = smtest.Standin()
        r = smtest.Redis()
    except smtest.Unavailable as e:
        smtest.TAP.skip_all(str(e))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    d = smtest.tempdir("sm-nginx-")
    os.chmod(d, 0o755)
    m = ng = None
    try:
        # the test's own certificate for 127.0.0.1 (self-signed: it is its own CA)
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        t.ok(p.returncode == 0, "openssl made a test certificate", p.stdout.decode(errors="replace"))
        sec = os.path.join(d, "wh.secret")
        with open(os.open(sec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(SECRET + "\n")
        ids = s.state({"customers": [{"email": "pay@example.com", "name": "Pay",
                                      "subscriptions": [{"status": "active"}]}]})["ids"]
        sub = ids["subscriptions"][0]
        wport, port, mport = smtest.free_port(), smtest.free_port(), smtest.free_port()
        m = mta.Milter(standin=s, redis=r, options={
            "WebhookListen": "127.0.0.1:%d" % wport, "WebhookSecretFile": sec,
            "MetricsListen": "127.0.0.1:%d" % mport, "LogLevel": "info"})
        conf = nginx_conf(d, port, wport)
        p = subprocess.run([nginx, "-t", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        t.ok(p.returncode == 0, "nginx -t accepts the example", p.stdout.decode(errors="replace"))
        ng = smtest.spawn([nginx, "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf],
                          log=os.path.join(d, "nginx.out"))
        if not smtest.wait_port(port, timeout=30):
            raise AssertionError("nginx did not listen: %s" % open(os.path.join(d, "error.log")).read()[-1500:])
        url = "https://127.0.0.1:%d/stripe/webhook" % port
        cafile = os.path.join(d, "cert.pem")

        t.is_(milterclient.message(m.socket, "<pay@example.com>", from_="Pay <pay@example.com>")
              .get("X-Stripe-Subscription-Status"), "active", "mail: active before the event")
        res = s.admin("POST", "/_standin/events", {
            "type": "customer.subscription.updated", "object_id": sub, "update": {"status": "past_due"},
            "previous_attributes": {"status": "active"},
            "webhook": {"url": url, "secret": SECRET, "cafile": cafile}})
        t.is_((res["delivery"]["status"], res["delivery"]["body"].strip()), (200, "applied"),
              "a signed event delivered over HTTPS through nginx: 200 applied")
        t.is_(milterclient.message(m.socket, "<pay@example.com>", from_="Pay <pay@example.com>")
              .get("X-Stripe-Subscription-Status"), "past_due", "mail: the new status at once")
        # forged through the proxy: the daemon still checks the signature
        res = s.admin("POST", "/_standin/events", {
            "type": "customer.subscription.updated", "object_id": sub, "update": {"status": "active"},
            "webhook": {"url": url, "secret": "whsec_wrong", "cafile": cafile}})
        t.is_((res["delivery"]["status"], res["delivery"]["body"].strip()), (400, "signature"),
              "a forged event through nginx: 400 signature (from the daemon)")

        # nginx's own refusals, before the daemon
        big = json.dumps({"pad": "x" * (2 << 20)})
        res = s.admin("POST", "/_standin/events", {
            "type": "customer.subscription.updated", "object_id": sub, "update": {"status": "active"},
            "webhook": {"url": url, "secret": SECRET, "cafile": cafile, "body": big}})
        t.is_(res["delivery"]["status"], 413, "a body over client_max_body_size: 413 from nginx")
        import http.client
        import ssl
        ctx = ssl.create_default_context(cafile=cafile)
        for method, path, want in (("GET", "/stripe/webhook", 403), ("POST", "/elsewhere", 404)):
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
            c.request(method, path, body=b"{}" if method == "POST" else None)
            st = c.getresponse().status
            c.close()
            t.is_(st, want, "%s %s: %d from nginx" % (method, path, want))
        mt = smtest.metrics(mport)[1]
        t.is_((mt['stripe_milter_events_rejected_total{account="default",reason="signature"}'],
               mt['stripe_milter_http_requests_rejected_total{listener="webhook",reason="too_large"}'],
               mt['stripe_milter_http_connections_refused_total{listener="webhook",reason="per_client"}']),
              (1, 0, 0), "the daemon saw one forged delivery, no oversized body, refused no connection of nginx")
        with open(os.path.join(d, "access.log")) as f:
            log = f.read()
        t.like(log, r'"POST /stripe/webhook HTTP/1.1" 200 ', "nginx logged the delivery")
        t.ok(not re.search(r"\[(emerg|alert|crit)\]", open(os.path.join(d, "error.log")).read()),
             "no emerg/alert/crit lines in nginx's error log")
    finally:
        if ng is not None:
            smtest.stop(ng)
        if m is not None:
            m.stop()
        s.stop()
        r.stop()
    mta.assert_clean(t)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
