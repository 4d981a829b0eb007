"""milterclient.py - a small milter protocol (version 6) client, the MTA side, for tests that
send many messages to stripe-milter at once (miltertest starts one process per message).

    hdrs = milterclient.message("unix:/path/milter.sock", "<a@example.com>",
                                from_="A <a@example.com>")
    hdrs["X-Stripe-Lookup"]     # headers the milter added (name -> value); hdrs.reply: 'a'

It speaks like Postfix: offers header add/change actions and every protocol step, honours the
steps and replies the milter turns off (SMFIP_NO*, SMFIP_NR_*), and collects the header
modifications sent at end of message. Errors raise MilterError.
"""

import socket
import struct

SMFIF_ADDHDRS, SMFIF_CHGHDRS = 0x01, 0x10
P_NOCONNECT, P_NOHELO, P_NOMAIL, P_NORCPT, P_NOBODY, P_NOHDRS, P_NOEOH, P_NR_HDR = (
    0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80)
P_NOUNKNOWN, P_NODATA, P_NR_CONN, P_NR_HELO, P_NR_MAIL, P_NR_RCPT, P_NR_DATA = (
    0x100, 0x200, 0x1000, 0x2000, 0x4000, 0x8000, 0x10000)
P_NR_EOH, P_NR_BODY = 0x40000, 0x80000
P_ALL = 0x1FFFFF


class MilterError(Exception):
    pass


class Result(dict):
    """Added/changed headers (name -> value, last one wins), plus .reply (final action byte
    as str), .added [(name, value)], .changed [(index, name, value)]."""
    reply = None
    added = None
    changed = None


def _connect(sock_spec, timeout):
    if sock_spec.startswith("unix:") or sock_spec.startswith("local:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(sock_spec.split(":", 1)[1])
        return s
    if sock_spec.startswith("inet:"):
        port, host = sock_spec[5:].split("@")
        return socket.create_connection((host, int(port)), timeout=timeout)
    raise MilterError("unknown socket %r" % sock_spec)


class _Conn:
    def __init__(self, sock_spec, timeout):
        self.s = _connect(sock_spec, timeout)
        self.buf = b""

    def send(self, cmd, data=b""):
        self.s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise MilterError("milter closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        (n,) = struct.unpack(">I", self._read(4))
        if n < 1 or n > 1 << 24:
            raise MilterError("bad packet length %d" % n)
        p = self._read(n)
        return p[:1], p[1:]

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def _z(s):
    return s.encode("utf-8") + b"\0"


def message(sock_spec, envfrom, rcpt="<support@example.test>", from_=None, headers=(),
            client_ip="198.51.100.7", timeout=60.0, macros=None, before_eom=None):
    """Sends one message over a new connection; returns a Result. before_eom, when given, is
    called once the body is sent and before end of message (a test's moment to act while
    the message is in progress)."""
    c = _Conn(sock_spec, timeout)
    try:
        c.send(b"O", struct.pack(">III", 6, SMFIF_ADDHDRS | SMFIF_CHGHDRS, P_ALL))
        cmd, data = c.recv()
        if cmd != b"O" or len(data) < 12:
            raise MilterError("bad negotiation reply %r" % cmd)
        _, _, proto = struct.unpack(">III", data[:12])
        res = Result()
        res.added, res.changed = [], []

        def step(cmd, payload, skip_flag, nr_flag):
            if proto & skip_flag:
                return True
            c.send(cmd, payload)
            if proto & nr_flag:
                return True
            while True:
                r, _ = c.recv()
                if r == b"p":  # progress
                    continue
                if r == b"c":
                    return True
                res.reply = r.decode()
                return False

        if macros:
            for where, kv in macros.items():
                c.send(b"D", where.encode() + b"".join(_z(k) + _z(v) for k, v in kv.items()))
        if not step(b"C", _z("client.example.net") + b"4" + struct.pack(">H", 25) + _z(client_ip),
                    P_NOCONNECT, P_NR_CONN):
            return res
        if not step(b"M", _z(envfrom), P_NOMAIL, P_NR_MAIL):
            return res
        if not step(b"R", _z(rcpt), P_NORCPT, P_NR_RCPT):
            return res
        if not step(b"T", b"", P_NODATA, P_NR_DATA):
            return res
        hl = list(headers)
        if from_ is not None:
            hl.insert(0, ("From", from_))
        hl.append(("Subject", "milterclient"))
        for name, value in hl:
            if not step(b"L", _z(name) + _z(value), P_NOHDRS, P_NR_HDR):
                return res
        if not step(b"N", b"", P_NOEOH, P_NR_EOH):
            return res
        if not step(b"B", b"Hello.\r\n", P_NOBODY, P_NR_BODY):
            return res
        if before_eom is not None:
            before_eom()
        c.send(b"E")
        while True:
            r, d = c.recv()
            if r == b"h":
                name, value = d.split(b"\0")[:2]
                res.added.append((name.decode(), value.decode()))
                res[name.decode()] = value.decode()
            elif r in (b"i", b"m"):
                (idx,) = struct.unpack(">I", d[:4])
                name, value = d[4:].split(b"\0")[:2]
                if r == b"m":
                    res.changed.append((idx, name.decode(), value.decode()))
                else:
                    res.added.append((name.decode(), value.decode()))
                    res[name.decode()] = value.decode()
            elif r == b"p":
                continue
            else:
                res.reply = r.decode()
                break
        c.send(b"Q")
        return res
    finally:
        c.close()
