#!/usr/bin/python3
# manager_call SOCKET METHOD [STRING...]: calls METHOD of
# org.freedesktop.systemd1.Manager on a systemd manager's private socket (a
# peer connection: no bus daemon, no Hello) and prints the reply's first
# string or object path. The handshake is sd-bus's: AUTH, NEGOTIATE_UNIX_FD
# and BEGIN in one write, the call only after the server's answers (systemd
# 252 leaves a call that arrives in the same read as BEGIN unanswered).
import os
import socket
import struct
import sys


def pad(buf, n):
    return buf + b"\0" * ((-len(buf)) % n)


def field(buf, code, sig, val):
    buf = pad(buf, 8) + bytes([code, 1]) + sig.encode() + b"\0"
    if sig == "g":
        return buf + bytes([len(val)]) + val.encode() + b"\0"
    return pad(buf, 4) + struct.pack("<I", len(val)) + val.encode() + b"\0"


def call(path, method, args):
    body = b""
    for a in args:
        body = pad(body, 4) + struct.pack("<I", len(a)) + a.encode() + b"\0"
    fields = field(b"", 1, "o", "/org/freedesktop/systemd1")
    fields = field(fields, 2, "s", "org.freedesktop.systemd1.Manager")
    fields = field(fields, 3, "s", method)
    if args:
        fields = field(fields, 8, "g", "s" * len(args))
    head = b"l\x01\x00\x01" + struct.pack("<III", len(body), 1, len(fields)) + fields
    return pad(head, 8) + body


def read_exactly(s, buf, n):
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("manager_call: the manager closed the connection")
        buf += chunk
    return buf


def error_name(buf, end):
    """The ERROR_NAME header field (code 4) of a reply."""
    pos = 16
    while pos < end:
        pos += -pos % 8
        code, sig_len = buf[pos], buf[pos + 1]
        sig = buf[pos + 2:pos + 2 + sig_len].decode()
        pos += 3 + sig_len
        if sig in ("s", "o"):
            pos += -pos % 4
            n = struct.unpack_from("<I", buf, pos)[0]
            if code == 4:
                return buf[pos + 4:pos + 4 + n].decode()
            pos += 5 + n
        elif sig == "g":
            pos += 2 + buf[pos]
        else:
            pos += -pos % 4 + 4
    return "error"


def main():
    path, method, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    uid = str(os.geteuid()).encode().hex().encode()
    s.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n")
    buf = b""
    while b"AGREE_UNIX_FD\r\n" not in buf:
        if b"ERROR" in buf or b"REJECTED" in buf:
            sys.exit("manager_call: authentication refused: %r" % buf)
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("manager_call: the manager closed the connection")
        buf += chunk
    s.sendall(call(path, method, args))
    buf = read_exactly(s, b"", 16)
    kind = buf[1]
    body_len, _serial, fields_len = struct.unpack_from("<III", buf, 4)
    start = 16 + fields_len + (-(16 + fields_len) % 8)
    buf = read_exactly(s, buf, start + body_len)
    body = buf[start:start + body_len]
    text = body[4:4 + struct.unpack_from("<I", body, 0)[0]].decode() if body_len >= 4 else ""
    if kind == 3:
        sys.exit("manager_call: %s: %s" % (error_name(buf, 16 + fields_len), text))
    print(text)


main()
