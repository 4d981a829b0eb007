"""tlsredis.py - Redis reachable only over TLS and the stunnel4 client tunnel to it, for
tests/e2e/test_redis_tls.py and tests/bench/bench_redis_tls.py (README "Redis over TLS").

  PKI(dir)                 a CA, a server certificate (redis.test, 127.0.0.1) and a client
                           certificate made by openssl; other_ca() a CA that signed nothing.
  TLSRedis(pki, plain=False)  redis-server with tls-port (client certificates required) and
                           port 0, or also a plain port when plain (the bench's direct path).
  TLSSentinel(pki, master_port)  redis-sentinel on a TLS port only, watching the master at
                           127.0.0.1:master_port (a tunnel: Sentinel hands out that address).
  Stunnel(services)        stunnel4 run from the shipped conf/stunnel-redis.conf, its [redis]
                           section repeated per service with the accept/connect/CA/client
                           certificate of the test; log() its output.
Everything listens on loopback; every wait has a deadline.
"""
import os
import re
import shutil
import socket
import subprocess

import smtest


def _need(tool, pkg):
    if shutil.which(tool) is None:
        raise smtest.Unavailable("%s not installed (apt-get install %s)" % (tool, pkg))


class PKI:
    def __init__(self, d):
        _need("openssl", "openssl")
        self.dir = d
        self.ca, self.ca_key = self._ca("ca", "stripe-milter test CA")
        self.server, self.server_key = self._leaf("server", "redis.test",
                                                  "subjectAltName=DNS:redis.test,IP:127.0.0.1")
        self.client, self.client_key = self._leaf("client", "stripe-milter", "extendedKeyUsage=clientAuth")

    def _run(self, *args):
        r = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (args[0], r.stdout.decode()[-800:]))

    def _ca(self, name, cn):
        crt, key = os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + cn)
        return crt, key

    def _leaf(self, name, cn, ext):
        crt, key = os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")
        csr, extf = os.path.join(self.dir, name + ".csr"), os.path.join(self.dir, name + ".ext")
        with open(extf, "w") as f:
            f.write(ext + "\n")
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                  "-out", csr, "-subj", "/CN=" + cn)
        self._run("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
                  "-out", crt, "-days", "2", "-extfile", extf)
        return crt, key

    def other_ca(self):
        """A CA that signed none of the certificates (a tunnel trusting it must refuse)."""
        return self._ca("other-ca", "some other CA")[0]


class _Server:
    binary = "redis-server"
    pkg = "redis-server"

    def _start(self, pki, conf_text, name):
        _need(self.binary, self.pkg)
        self.pki = pki
        self.dir = smtest.tempdir("sm-%s-" % name)
        self.tls_port = smtest.free_port()
        self.conf = os.path.join(self.dir, name + ".conf")
        self.logfile = os.path.join(self.dir, name + ".log")
        with open(self.conf, "w") as f:
            f.write("bind 127.0.0.1\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n"
                    "tls-auth-clients yes\ndir %s\ndaemonize no\n%s"
                    % (self.tls_port, pki.server, pki.server_key, pki.ca, self.dir, conf_text))
        self.proc = smtest.spawn([self.binary, self.conf], log=self.logfile)
        if not smtest.wait_port(self.tls_port, 30.0):
            self.stop()
            raise smtest.Unavailable("%s did not start with TLS on %d: %s"
                                     % (self.binary, self.tls_port, self.log()[-800:]))

    def log(self):
        return _read(self.logfile)

    def cli(self, *args):
        """redis-cli over TLS with the client certificate; the reply text."""
        _need("redis-cli", "redis-tools")
        r = subprocess.run(["redis-cli", "--tls", "--cacert", self.pki.ca, "--cert", self.pki.client,
                            "--key", self.pki.client_key, "--sni", "redis.test", "-h", "127.0.0.1",
                            "-p", str(self.tls_port)] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return r.stdout.decode().strip()

    def stop(self):
        if self.proc is not None:
            smtest.stop(self.proc, grace=10.0)
            self.proc = None


class TLSRedis(_Server):
    def __init__(self, pki, plain=False):
        self.port = smtest.free_port() if plain else 0
        self._start(pki, "port %d\nsave \"\"\nappendonly no\n" % self.port, "redis-tls")
        if plain and not smtest.wait_port(self.port, 30.0):
            self.stop()
            raise smtest.Unavailable("redis-server did not open its plain port %d" % self.port)


class TLSSentinel(_Server):
    binary = "redis-sentinel"
    pkg = "redis-sentinel"

    def __init__(self, pki, master_port, master="mymaster"):
        # Sentinel reaches the master through the tunnel (plain to stunnel): no
        # tls-replication; the address it hands out is the tunnel's.
        self._start(pki, "port 0\nsentinel monitor %s 127.0.0.1 %d 1\n" % (master, master_port),
                    "sentinel-tls")


class Stunnel:
    """services: list of (accept_port, connect_port, ca_file); the client certificate is
    the PKI's. The shipped config's global section and [redis] section are used as they are,
    but for the test's paths and ports, and without setuid/setgid when not root."""

    def __init__(self, pki, services):
        _need("stunnel4", "stunnel4")
        self.dir = smtest.tempdir("sm-stunnel-")
        with open(os.path.join(smtest.srcdir(), "conf", "stunnel-redis.conf")) as f:
            shipped = f.read()
        head, sect = shipped.split("[redis]", 1)
        if os.geteuid() != 0:
            head = re.sub(r"(?m)^set[ug]id = .*\n", "", head)
        out = [head]
        for i, (accept, connect, ca) in enumerate(services):
            s = sect
            s = _subst(s, "accept", "127.0.0.1:%d" % accept)
            s = _subst(s, "connect", "127.0.0.1:%d" % connect)
            s = _subst(s, "CAfile", ca)
            s = _subst(s, "checkHost", "redis.test")
            s = _subst(s, "sni", "redis.test")
            s = s.replace(";cert = /etc/stunnel/stripe-milter-redis.crt", "cert = " + pki.client)
            s = s.replace(";key = /etc/stunnel/stripe-milter-redis.key", "key = " + pki.client_key)
            out.append("[redis%d]%s" % (i, s))
        self.conf = os.path.join(self.dir, "stunnel.conf")
        with open(self.conf, "w") as f:
            f.write("".join(out))
        self.logfile = os.path.join(self.dir, "stunnel.log")
        if os.geteuid() == 0:       # it drops to stunnel4: let it read the test's files
            for p in (self.dir, pki.dir):
                os.chmod(p, 0o755)
            for p in (pki.client_key,):
                os.chmod(p, 0o644)
        self.proc = smtest.spawn(["stunnel4", self.conf], log=self.logfile)
        for accept, _, _ in services:
            if not smtest.wait_port(accept, 30.0):
                self.stop()
                raise RuntimeError("stunnel4 did not listen on %d: %s" % (accept, self.log()[-1500:]))

    def log(self):
        return _read(self.logfile)

    def stop(self):
        if self.proc is not None:
            smtest.stop(self.proc, grace=10.0)
            self.proc = None


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _subst(text, key, value):
    new, n = re.subn(r"(?m)^%s = .*$" % re.escape(key), "%s = %s" % (key, value), text)
    if n != 1:
        raise AssertionError("conf/stunnel-redis.conf: expected one '%s = ' line in [redis], found %d" % (key, n))
    return new


def plain_ping(port, timeout=5.0):
    """What a plain-text PING gets from port (b"" when the server hangs up or says nothing)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64)
    except OSError:
        return b""
