# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Synthetic /proc trees, fake service-manager runners and loopback HTTP servers for the p2p_* tests."""

from __future__ import absolute_import, division, print_function

import json
import os
import socket
import struct
import threading
import time

import pytest

__metaclass__ = type


BTIME = 1700000000  # 2023-11-14T22:13:20Z
TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
TCP6_HEADER = ("  sl  local_address                         remote_address                        st tx_queue rx_queue"
               " tr tm->when retrnsmt   uid  timeout inode\n")


def hex_v4(address):
    return "%08X" % struct.unpack("<I", socket.inet_aton(address))[0]


def hex_v6(address):
    packed = socket.inet_pton(socket.AF_INET6, address)
    return "".join("%08X" % struct.unpack("<I", packed[i:i + 4])[0] for i in range(0, 16, 4))


class FakeProc(object):
    """A synthetic /proc: net/tcp, net/tcp6, stat and <pid>/{fd,cmdline,stat,status,exe,comm}."""

    def __init__(self, root):
        self.root = str(root)
        self.tcp = []
        self.tcp6 = []
        os.makedirs(self.root)
        self._write("stat", "cpu  1 2 3 4\nbtime %d\nprocesses 10\n" % BTIME)
        self.flush()

    def _write(self, rel, text, mode="w"):
        path = os.path.join(self.root, rel)
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, mode) as handle:
            handle.write(text)
        return path

    def add_socket(self, address, port, inode, state="0A", uid=0):
        if ":" in address:
            table, local, remote = self.tcp6, hex_v6(address), "0" * 32
        else:
            table, local, remote = self.tcp, hex_v4(address), "00000000"
        line = "%4d: %s:%04X %s:0000 %s 00000000:00000000 00:00000000 00000000 %5d        0 %d 1 0000000000000000 100 0 0 10 0\n" % (
            len(table), local, port, remote, state, uid, inode)
        table.append(line)
        self.flush()

    def flush(self):
        self._write("net/tcp", TCP_HEADER + "".join(self.tcp))
        self._write("net/tcp6", TCP6_HEADER + "".join(self.tcp6))

    def add_process(self, pid, cmdline, ppid=1, uid=0, starttime=25000, exe="/usr/bin/python3.11", sockets=(), comm=None, other_fds=True,
                    cwd=None, environ=None, state="S"):
        base = os.path.join(self.root, str(pid))
        os.makedirs(os.path.join(base, "fd"))
        self._write("%d/cmdline" % pid, b"\0".join(a.encode("utf-8") for a in cmdline) + b"\0" if cmdline else b"", mode="wb")
        if cwd:
            os.symlink(cwd, os.path.join(base, "cwd"))
        if environ is not None:
            self._write("%d/environ" % pid, b"".join(("%s=%s" % item).encode() + b"\0" for item in sorted(environ.items())), mode="wb")
        comm = comm or os.path.basename(cmdline[0])[:15]
        fields = [state, str(ppid)] + ["0"] * 17 + [str(starttime)] + ["0"] * 10
        self._write("%d/stat" % pid, "%d (%s) %s\n" % (pid, comm, " ".join(fields)))
        self._write("%d/comm" % pid, comm + "\n")
        self._write("%d/status" % pid, "Name:\t%s\nState:\tS (sleeping)\nPPid:\t%d\nUid:\t%d\t%d\t%d\t%d\nGid:\t0\t0\t0\t0\n" % (
            comm, ppid, uid, uid, uid, uid))
        if exe:
            os.symlink(exe, os.path.join(base, "exe"))
        fd = 0
        if other_fds:
            for target in ("/dev/null", "pipe:[777]", "anon_inode:[eventpoll]"):
                os.symlink(target, os.path.join(base, "fd", str(fd)))
                fd += 1
        for inode in sockets:
            os.symlink("socket:[%d]" % inode, os.path.join(base, "fd", str(fd)))
            fd += 1
        return base


DAEMON = ["/opt/venv/bin/python", "scripts/p2p_orchestrator.py", "--node-id", "gpu-01", "--host", "0.0.0.0", "--port", "8770",
          "--peers", "http://10.0.0.2:8770,http://10.0.0.3:8770"]


def params(proc, **kwargs):
    base = {"proc_root": proc.root}
    base.update(kwargs)
    return base


class FakeRunner(object):
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        return self.answers.get(" ".join(argv[:2]), (127, "", "not found"))


TRACEBACK_LOG = """\
2025-01-31 08:00:00,000 INFO [p2p] starting
Traceback (most recent call last):
  File "/opt/ringrift/ai-service/scripts/p2p_orchestrator.py", line 30, in <module>
    import psutil
ModuleNotFoundError: No module named 'psutil'
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def start_http_server(status=200, body=None, delay=0.0, host="127.0.0.1"):
    try:
        from http.server import BaseHTTPRequestHandler, HTTPServer
    except ImportError:  # pragma: no cover
        pytest.skip("python 3 only")

    payload = json.dumps(body if body is not None else {"healthy": True, "node_id": "gpu-01"}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if delay:
                threading.Event().wait(delay)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = HTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


def http_servers():
    """Generator behind the ``http_server`` fixtures: yields ``start(**kwargs) -> port``, then stops every server."""
    servers = []

    def start(**kwargs):
        server = start_http_server(**kwargs)
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class RawServer(object):
    """Loopback TCP server that answers every connection with ``reply(conn)`` in a thread."""

    def __init__(self, reply, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.reply = reply
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, dummy = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        try:
            conn.recv(4096)
            self.reply(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def drip(data, interval=0.1, limit=8.0):
    """Reply that sends ``data`` one byte every ``interval`` seconds (for at most ``limit`` seconds)."""
    def reply(conn, stop):
        started = time.time()
        for byte in data:
            if stop.is_set() or time.time() - started > limit:
                return
            conn.sendall(bytes([byte]))
            stop.wait(interval)
    return reply
