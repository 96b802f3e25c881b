# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/p2p_proc.py on synthetic /proc trees."""

from __future__ import absolute_import, division, print_function

import errno
import json
import os
import shutil
import socket
import struct
import threading
import time

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_proc

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


@pytest.fixture
def proc(tmp_path):
    return FakeProc(tmp_path / "proc")


def params(proc, **kwargs):
    base = {"proc_root": proc.root}
    base.update(kwargs)
    return base


# --------------------------------------------------------------------------- addresses

@pytest.mark.parametrize("hex_addr, expected", [
    ("0100007F", ("127.0.0.1", "ipv4")),
    ("00000000", ("0.0.0.0", "ipv4")),
    ("0500000A", ("10.0.0.5", "ipv4")),
    ("00000000000000000000000000000000", ("::", "ipv6")),
    ("00000000000000000000000001000000", ("::1", "ipv6")),
    ("0000000000000000FFFF00000100007F", ("::ffff:127.0.0.1", "ipv6")),
    ("B80D0120000000000000000001000000", ("2001:db8::1", "ipv6")),
])
def test_decode_hex_address_kernel_format(hex_addr, expected):
    assert p2p_proc._decode_hex_address(hex_addr) == expected


def test_decode_hex_address_rejects_bad_length():
    with pytest.raises(ValueError):
        p2p_proc._decode_hex_address("0100")


@pytest.mark.parametrize("text, expected", [
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("[::1]", "::1"),
    ("0:0:0:0:0:0:0:1", "::1"),
    ("fe80::1%eth0", "fe80::1"),
    ("10.0.0.5", "10.0.0.5"),
])
def test_normalize_address(text, expected):
    assert p2p_proc.normalize_address(text) == expected


def test_normalize_address_rejects_host_names():
    with pytest.raises(ValueError):
        p2p_proc.normalize_address("localhost")


def test_parse_proc_net_tcp_keeps_listen_on_port_only():
    text = TCP_HEADER + "".join([
        "   0: 00000000:2242 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n",
        "   1: 0100007F:2242 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0 20 4 30 10 -1\n",
        "   2: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0\n",
        "   garbage line\n",
        "   3: ZZZZ:2242 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0 100 0 0 10 0\n",
    ])
    sockets = p2p_proc.parse_proc_net_tcp(text, port=8770)
    assert sockets == [{"address": "0.0.0.0", "port": 8770, "family": "ipv4", "inode": 111, "uid": 0, "state": "0A"}]
    assert [s["inode"] for s in p2p_proc.parse_proc_net_tcp(text)] == [111, 333]
    assert [s["inode"] for s in p2p_proc.parse_proc_net_tcp(text, listen_only=False)] == [111, 222, 333]


# --------------------------------------------------------------------------- listeners

def test_listener_owner_found_through_fd_links_and_decoy_ignored(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_socket("127.0.0.1", 22, 5002)
    proc.add_process(100, DAEMON, sockets=[5001])
    proc.add_process(200, ["bash", "-c", "tail -f /var/log/ringrift/p2p.log | grep p2p_orchestrator"])
    proc.add_process(300, ["/usr/sbin/sshd", "-D"], sockets=[5002])
    found = p2p_proc.find_listeners(8770, proc.root)
    assert found == [{"address": "0.0.0.0", "port": 8770, "family": "ipv4", "inode": 5001, "pid": 100, "pids": [100]}]


def test_listener_ipv6_dual_stack_and_bind_address(proc):
    proc.add_socket("127.0.0.1", 8770, 6001)
    proc.add_socket("::1", 8770, 6002)
    proc.add_socket("::ffff:10.0.0.5", 8770, 6003)
    proc.add_process(100, DAEMON, sockets=[6001, 6002, 6003])
    everything = p2p_proc.find_listeners(8770, proc.root)
    assert [(item["address"], item["family"]) for item in everything] == [
        ("127.0.0.1", "ipv4"), ("::1", "ipv6"), ("::ffff:10.0.0.5", "ipv6")]
    assert [item["inode"] for item in p2p_proc.find_listeners(8770, proc.root, bind_address="::1")] == [6002]
    assert [item["inode"] for item in p2p_proc.find_listeners(8770, proc.root, bind_address="127.0.0.1")] == [6001]
    assert [item["inode"] for item in p2p_proc.find_listeners(8770, proc.root, bind_address="10.0.0.5")] == [6003]
    assert p2p_proc.find_listeners(8770, proc.root, bind_address="0.0.0.0") == []


def test_listener_ignores_non_listen_states(proc):
    proc.add_socket("127.0.0.1", 8770, 7001, state="01")  # ESTABLISHED
    proc.add_socket("127.0.0.1", 8770, 7002, state="06")  # TIME_WAIT
    proc.add_process(100, DAEMON, sockets=[7001])
    assert p2p_proc.find_listeners(8770, proc.root) == []


def test_forked_workers_sharing_the_socket_report_the_parent(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, DAEMON, sockets=[5001])
    proc.add_process(101, DAEMON, ppid=100, sockets=[5001])
    proc.add_process(102, DAEMON, ppid=101, sockets=[5001])
    found = p2p_proc.find_listeners(8770, proc.root)
    assert found[0]["pid"] == 100
    assert found[0]["pids"] == [100, 101, 102]


def test_unowned_socket_and_unreadable_fd_dirs_are_counted(proc, monkeypatch):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, ["sleep", "100"])
    proc.add_process(4242, DAEMON, sockets=[5001])
    real_listdir = os.listdir
    blocked = os.path.join(proc.root, "4242", "fd")

    def listdir(path):
        if str(path) == blocked:
            raise OSError(errno.EACCES, "Permission denied", path)
        return real_listdir(path)

    monkeypatch.setattr(p2p_proc.os, "listdir", listdir)
    scan = p2p_proc.scan_listeners(8770, proc.root)
    assert scan["unreadable_fd_dirs"] == 1
    assert scan["listeners"][0]["pid"] is None
    assert scan["listeners"][0]["pids"] == []
    result = p2p_proc.inspect(params(proc))
    assert result["diagnosis"] == "owner_unknown"
    assert result["listening"] is True
    assert result["pid"] is None
    assert result["failed"] is True
    assert "1 fd dirs unreadable" in result["msg"]


def test_missing_tcp6_file_is_tolerated(proc):
    os.remove(os.path.join(proc.root, "net", "tcp6"))
    proc.tcp.append("   0: %s:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9 1 0 100 0 0 10 0\n" % (
        hex_v4("0.0.0.0"), 8770))
    with open(os.path.join(proc.root, "net", "tcp"), "w") as handle:
        handle.write(TCP_HEADER + "".join(proc.tcp))
    assert [s["inode"] for s in p2p_proc.read_listen_sockets(proc.root, port=8770)] == [9]


# --------------------------------------------------------------------------- processes

def test_process_info_reads_cmdline_exe_user_ppid_start(proc):
    ticks = p2p_proc.clock_ticks()
    proc.add_process(100, DAEMON, ppid=77, uid=0, starttime=250 * ticks, comm="python (x) y")
    info = p2p_proc.process_info(100, proc.root, now=BTIME + 1000)
    assert info["pid"] == 100
    assert info["cmdline"] == DAEMON
    assert info["exe"] == "/usr/bin/python3.11"
    assert info["uid"] == 0
    assert info["user"] == "root"
    assert info["ppid"] == 77
    assert info["comm"] == "python (x) y"
    assert info["started_at"] == "2023-11-14T22:17:30Z"
    assert info["uptime_seconds"] == 750.0


def test_process_info_unknown_uid_and_unreadable_exe(proc):
    proc.add_process(100, ["/bin/sleep", "1000"], uid=54321, exe=None)
    info = p2p_proc.process_info(100, proc.root)
    assert info["user"] == "54321"
    assert info["exe"] is None
    assert p2p_proc.process_info(999, proc.root) is None


def test_cmdline_keeps_arguments_with_spaces_and_empty_cmdline(proc):
    proc.add_process(100, ["python", "-c", "import time; time.sleep(9)", "p2p_orchestrator"])
    assert p2p_proc.read_cmdline(100, proc.root) == ["python", "-c", "import time; time.sleep(9)", "p2p_orchestrator"]
    with open(os.path.join(proc.root, "100", "cmdline"), "wb"):
        pass
    assert p2p_proc.read_cmdline(100, proc.root) == []
    assert p2p_proc.read_cmdline(12345, proc.root) is None


def test_is_descendant_walks_ppid_chain(proc):
    proc.add_process(10, ["/usr/bin/supervisord"], ppid=1)
    proc.add_process(20, ["/bin/sh", "-c", "exec python"], ppid=10)
    proc.add_process(30, DAEMON, ppid=20)
    proc.add_process(40, DAEMON, ppid=1)
    assert p2p_proc.ancestors(30, proc.root) == [20, 10, 1]
    assert p2p_proc.is_descendant(30, 10, proc.root) is True
    assert p2p_proc.is_descendant(30, 30, proc.root) is True
    assert p2p_proc.is_descendant(40, 10, proc.root) is False
    assert p2p_proc.is_descendant(None, 10, proc.root) is False


@pytest.mark.parametrize("cmdline, name, expected", [
    (DAEMON, "node-id", "gpu-01"),
    (DAEMON, "port", "8770"),
    (["p", "--port=9000"], "port", "9000"),
    (["p", "--port", "1", "--port", "2"], "port", "2"),
    (["p", "--port"], "port", None),
    (["p", "--portal", "3"], "port", None),
])
def test_cmdline_option(cmdline, name, expected):
    assert p2p_proc.cmdline_option(cmdline, name) == expected


# --------------------------------------------------------------------------- service managers

class FakeRunner(object):
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        return self.answers.get(" ".join(argv[:2]), (127, "", "not found"))


def test_managed_main_pid_systemd():
    run = FakeRunner({"systemctl show": (0, "4321\n", "")})
    assert p2p_proc.managed_main_pid("systemd", "ringrift-p2p", runner=run) == (4321, "MainPID=4321")
    assert run.calls == [["systemctl", "show", "-p", "MainPID", "--value", "ringrift-p2p"]]
    assert p2p_proc.managed_main_pid("systemd", "x", runner=FakeRunner({"systemctl show": (0, "0\n", "")}))[0] == 0
    pid, detail = p2p_proc.managed_main_pid("systemd", "x", runner=FakeRunner({"systemctl show": (1, "", "System has not been booted with systemd")}))
    assert pid is None
    assert "not been booted" in detail


def test_managed_main_pid_supervisor_pid_and_status_fallback():
    assert p2p_proc.managed_main_pid("supervisor", "ringrift-p2p", runner=FakeRunner({"supervisorctl pid": (0, "555\n", "")}))[0] == 555
    running = FakeRunner({"supervisorctl pid": (1, "ERROR (no such process)\n", ""),
                          "supervisorctl status": (0, "ringrift-p2p   RUNNING   pid 777, uptime 0:03:12\n", "")})
    assert p2p_proc.managed_main_pid("supervisor", "ringrift-p2p", runner=running)[0] == 777
    assert running.calls[1] == ["supervisorctl", "status", "ringrift-p2p"]
    backoff = FakeRunner({"supervisorctl pid": (1, "", ""), "supervisorctl status": (3, "ringrift-p2p   BACKOFF   Exited too quickly\n", "")})
    assert p2p_proc.managed_main_pid("supervisor", "ringrift-p2p", runner=backoff)[0] == 0
    unknown = FakeRunner({"supervisorctl pid": (1, "", ""), "supervisorctl status": (4, "ringrift-p2p: ERROR (no such process)\n", "")})
    assert p2p_proc.managed_main_pid("supervisor", "ringrift-p2p", runner=unknown)[0] == 0
    down = FakeRunner({"supervisorctl pid": (2, "", ""),
                       "supervisorctl status": (2, "unix:///var/run/supervisor.sock no such file\n", "")})
    assert p2p_proc.managed_main_pid("supervisor", "ringrift-p2p", runner=down)[0] is None


def test_managed_main_pid_none_and_unknown():
    assert p2p_proc.managed_main_pid("none", "x", runner=FakeRunner({})) == (None, "no service manager")
    with pytest.raises(ValueError):
        p2p_proc.managed_main_pid("upstart", "x", runner=FakeRunner({}))


def test_detect_service_manager(proc, monkeypatch):
    proc.add_process(1, ["/sbin/init"], ppid=0, comm="systemd")
    assert p2p_proc.detect_service_manager(proc.root) == "systemd"
    with open(os.path.join(proc.root, "1", "comm"), "w") as handle:
        handle.write("supervisord\n")
    assert p2p_proc.detect_service_manager(proc.root) == "supervisor"
    with open(os.path.join(proc.root, "1", "comm"), "w") as handle:
        handle.write("bash\n")
    monkeypatch.setattr(p2p_proc, "_which", lambda name, paths=None: None)
    assert p2p_proc.detect_service_manager(proc.root) == "none"
    monkeypatch.setattr(p2p_proc, "_which", lambda name, paths=None: "/usr/bin/" + name)
    assert p2p_proc.detect_service_manager(proc.root) == "supervisor"


# --------------------------------------------------------------------------- logs

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


def test_diagnose_log_traceback_missing_module(tmp_path):
    result = p2p_proc.diagnose_log(write(tmp_path, "p2p.log", TRACEBACK_LOG))
    assert result["exists"] is True
    assert result["error_kind"] == "missing_module"
    assert result["last_error"] == "ModuleNotFoundError: No module named 'psutil'"
    assert result["missing_module"] == "psutil"
    assert result["missing_modules"] == ["psutil"]
    assert result["excerpt"][-1] == "ModuleNotFoundError: No module named 'psutil'"


def test_diagnose_log_takes_newest_error_and_final_line_of_chained_traceback(tmp_path):
    text = TRACEBACK_LOG + """\
2025-01-31 09:00:00,000 INFO [p2p] starting
Traceback (most recent call last):
  File "x.py", line 1, in <module>
    bind()
OSError: [Errno 98] error while attempting to bind on address ('0.0.0.0', 8770): address already in use

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "x.py", line 3, in <module>
    main()
RuntimeError: giving up after bind failure
"""
    result = p2p_proc.diagnose_log(write(tmp_path, "p2p.log", text))
    assert result["error_kind"] == "exception"
    assert result["last_error"] == "RuntimeError: giving up after bind failure"
    assert result["missing_module"] is None


def test_diagnose_log_aiohttp_bind_error_is_address_in_use(tmp_path):
    text = """\
Traceback (most recent call last):
  File "x.py", line 1, in <module>
OSError: [Errno 98] error while attempting to bind on address ('0.0.0.0', 8770): address already in use
"""
    result = p2p_proc.diagnose_log(write(tmp_path, "p2p.log", text))
    assert result["error_kind"] == "address_in_use"
    assert result["last_error"].startswith("OSError: [Errno 98]")


@pytest.mark.parametrize("text, kind, modules", [
    ("2025-01-31 INFO start\nFATAL: Missing critical dependencies: aiohttp, psutil\n", "missing_dependencies", ["aiohttp", "psutil"]),
    ("FATAL: Missing critical dependencies:\n  - aiohttp\n  - yaml\nInstall with: pip install -r requirements.txt\n",
     "missing_dependencies", ["aiohttp", "yaml"]),
    ("FATAL: Missing critical dependencies ['psutil']\n", "missing_dependencies", ["psutil"]),
    ("ERROR: Could not auto-detect node-id: pass --node-id\n", "node_id_missing", []),
    ("2025 ERROR [p2p] cannot bind 0.0.0.0:8770: [Errno 98] Address already in use\n", "address_in_use", []),
])
def test_diagnose_log_daemon_signatures(tmp_path, text, kind, modules):
    result = p2p_proc.diagnose_log(write(tmp_path, "p2p.log", text))
    assert result["error_kind"] == kind
    assert result["missing_modules"] == modules
    assert result["missing_module"] == (modules[0] if modules else None)
    assert result["last_error"]


def test_diagnose_log_clean_missing_and_tail(tmp_path):
    clean = "\n".join("2025-01-31 08:00:%02d INFO [p2p] GET /health" % i for i in range(50)) + "\n"
    result = p2p_proc.diagnose_log(write(tmp_path, "clean.log", clean))
    assert result["last_error"] is None
    assert result["error_kind"] is None
    assert len(result["excerpt"]) == 20
    assert result["excerpt"][-1].endswith("08:00:49 INFO [p2p] GET /health")
    absent = p2p_proc.diagnose_log(str(tmp_path / "nope.log"))
    assert absent["exists"] is False
    assert absent["excerpt"] == []
    # an old error outside the tail is not seen; the cut first line is dropped
    old = TRACEBACK_LOG + clean
    tail = p2p_proc.diagnose_log(write(tmp_path, "old.log", old), tail_bytes=len(clean) + 5)
    assert tail["last_error"] is None
    assert tail["excerpt"][0] != ""
    assert p2p_proc.diagnose_log(write(tmp_path, "old2.log", old))["missing_module"] == "psutil"


# --------------------------------------------------------------------------- health (loopback HTTP)

def _start_server(status=200, body=None, delay=0.0, host="127.0.0.1"):
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


@pytest.fixture
def http_server(request):
    servers = []

    def start(**kwargs):
        server = _start_server(**kwargs)
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_check_health_ok_and_node_id(http_server):
    port = http_server()
    ok = p2p_proc.check_health("127.0.0.1", port, "/health", 2.0, expected_node_id="gpu-01")
    assert ok["ok"] is True
    assert ok["status"] == 200
    assert ok["json"] == {"healthy": True, "node_id": "gpu-01"}
    assert ok["healthy"] is True
    assert ok["url"] == "http://127.0.0.1:%d/health" % port
    wrong = p2p_proc.check_health("127.0.0.1", port, "health", 2.0, expected_node_id="gpu-02")
    assert wrong["ok"] is False
    assert wrong["error"] == "node_id mismatch: expected gpu-02, got gpu-01"


def test_check_health_http_500_refused_and_timeout(http_server):
    failing = p2p_proc.check_health("127.0.0.1", http_server(status=500, body={"error": "boom"}), "/health", 2.0)
    assert failing["ok"] is False
    assert failing["status"] == 500
    assert failing["error"] == "HTTP 500"
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    refused = p2p_proc.check_health("127.0.0.1", port, "/health", 2.0)
    assert refused["ok"] is False
    assert refused["status"] is None
    assert refused["error"] == "connection refused"
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # accepts in the backlog, never answers
    try:
        slow = p2p_proc.check_health("127.0.0.1", silent.getsockname()[1], "/health", 0.3)
    finally:
        silent.close()
    assert slow["ok"] is False
    assert slow["error"].startswith("timed out")
    assert slow["elapsed"] >= 0.25


@pytest.mark.parametrize("addresses, bind_address, expected", [
    (["0.0.0.0"], None, "127.0.0.1"),
    (["::"], None, "::1"),
    (["::1"], None, "::1"),
    (["::ffff:127.0.0.1"], None, "127.0.0.1"),
    (["10.0.0.5"], None, "10.0.0.5"),
    (["10.0.0.5", "127.0.0.1"], None, "127.0.0.1"),
    (["0.0.0.0"], "0.0.0.0", "127.0.0.1"),
    (["::1", "127.0.0.1"], "::1", "::1"),
])
def test_health_host(addresses, bind_address, expected):
    assert p2p_proc.health_host([{"address": a} for a in addresses], bind_address) == expected


# --------------------------------------------------------------------------- inspect

def test_inspect_healthy_owner_without_health_check(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_socket("::", 8770, 5002)
    proc.add_process(100, DAEMON, sockets=[5001, 5002])
    proc.add_process(200, ["nohup", "python", "scripts/p2p_orchestrator.py"])  # decoy, holds nothing
    result = p2p_proc.inspect(params(proc, node_id="gpu-01", check_port_in_cmdline=True))
    assert result["failed"] is False
    assert result["state_ok"] is True
    assert result["diagnosis"] == "healthy"
    assert result["pid"] == 100
    assert result["owner_pids"] == [100]
    assert result["cmdline"] == DAEMON
    assert result["owner_matches"] is True
    assert result["changed"] is False
    assert [a["address"] for a in result["addresses"]] == ["0.0.0.0", "::"]
    assert result["addresses"][1] == {"address": "::", "port": 8770, "family": "ipv6", "inode": 5002, "pid": 100}
    assert result["health"] is None


def test_inspect_wrong_owner_reports_squatter(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(300, ["nginx: worker process"], sockets=[5001], exe="/usr/sbin/nginx")
    proc.add_process(200, ["python", "scripts/p2p_orchestrator.py"])  # decoy
    result = p2p_proc.inspect(params(proc))
    assert result["failed"] is True
    assert result["diagnosis"] == "wrong_owner"
    assert result["pid"] == 300
    assert result["cmdline"] == ["nginx: worker process"]
    assert result["exe"] == "/usr/sbin/nginx"
    assert result["owner_matches"] is False
    assert "pid 300" in result["msg"] and "does not match" in result["msg"]


def test_inspect_prefers_matching_owner_among_several(proc):
    proc.add_socket("127.0.0.1", 8770, 5001)
    proc.add_socket("::1", 8770, 5002)
    proc.add_process(300, ["/usr/bin/other"], sockets=[5001])
    proc.add_process(100, DAEMON, sockets=[5002])
    result = p2p_proc.inspect(params(proc))
    assert result["pid"] == 100
    assert result["owner_pids"] == [300, 100]
    # another program answers on 127.0.0.1: the port is shared, not healthy
    assert result["diagnosis"] == "port_shared"
    assert result["other_owners"] == [{"pid": 300, "pids": [300], "cmdline": ["/usr/bin/other"], "addresses": ["127.0.0.1"]}]
    assert "also held by pid 300" in result["msg"]
    bound = p2p_proc.inspect(params(proc, bind_address="::1"))
    assert bound["pid"] == 100
    assert bound["diagnosis"] == "healthy"


@pytest.mark.parametrize("extra, problem", [
    ({"node_id": "gpu-02"}, "--node-id is gpu-01, expected gpu-02"),
    ({"port": 9000, "check_port_in_cmdline": True}, "--port is 8770, expected 9000"),
])
def test_inspect_node_id_and_port_mismatch_is_wrong_owner(proc, extra, problem):
    port = extra.get("port", 8770)
    proc.add_socket("0.0.0.0", port, 5001)
    proc.add_process(100, DAEMON, sockets=[5001])
    result = p2p_proc.inspect(params(proc, **extra))
    assert result["diagnosis"] == "wrong_owner"
    assert result["owner_problem"] == problem
    assert result["pid"] == 100


def test_inspect_default_port_when_cmdline_has_none(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, ["python3", "scripts/p2p_orchestrator.py", "--node-id", "n"], sockets=[5001])
    assert p2p_proc.inspect(params(proc, check_port_in_cmdline=True))["diagnosis"] == "healthy"
    other = p2p_proc.inspect(params(proc, node_id="other"))
    assert other["diagnosis"] == "wrong_owner"
    assert other["owner_problem"] == "--node-id is n, expected other"
    both = p2p_proc.inspect(params(proc, port=8770, check_port_in_cmdline=True, node_id="n"))
    assert both["diagnosis"] == "healthy"


def test_inspect_no_node_id_in_cmdline_is_wrong_owner(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, ["python3", "scripts/p2p_orchestrator.py"], sockets=[5001])
    result = p2p_proc.inspect(params(proc, node_id="gpu-01"))
    assert result["diagnosis"] == "wrong_owner"
    assert result["owner_problem"] == "no --node-id in command line (expected gpu-01)"


def test_inspect_managed_child_is_fine_stray_copy_is_unmanaged(proc):
    proc.add_process(50, ["/bin/sh", "-c", "exec python scripts/p2p_orchestrator.py"], ppid=1)
    proc.add_process(51, DAEMON, ppid=50)  # managed copy, keeps failing to bind
    proc.add_process(90, DAEMON, ppid=1, sockets=[5001])  # nohup copy holding the port
    proc.add_socket("0.0.0.0", 8770, 5001)
    systemd = FakeRunner({"systemctl show": (0, "50\n", "")})
    stray = p2p_proc.inspect(params(proc, service_manager="systemd"), runner=systemd)
    assert stray["diagnosis"] == "unmanaged"
    assert stray["managed_pid"] == 50
    assert stray["pid"] == 90
    assert stray["service_manager"] == "systemd"
    assert stray["failed"] is True
    assert "main PID 50" in stray["msg"]
    # the managed child holding the port is fine
    managed = FakeRunner({"systemctl show": (0, "50\n", "")})
    proc.tcp = []
    proc.add_socket("0.0.0.0", 8770, 6001)
    os.symlink("socket:[6001]", os.path.join(proc.root, "51", "fd", "9"))
    ok = p2p_proc.inspect(params(proc, service_manager="systemd"), runner=managed)
    assert ok["pid"] == 51
    assert ok["diagnosis"] == "healthy"


def test_inspect_unit_not_running_but_daemon_listens_is_unmanaged(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(90, DAEMON, sockets=[5001])
    result = p2p_proc.inspect(params(proc, service_manager="supervisor"),
                              runner=FakeRunner({"supervisorctl pid": (0, "0\n", "")}))
    assert result["managed_pid"] == 0
    assert result["diagnosis"] == "unmanaged"
    assert "not running" in result["msg"]


def test_inspect_manager_unreachable_warns_and_skips(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(90, DAEMON, sockets=[5001])
    result = p2p_proc.inspect(params(proc, service_manager="systemd"), runner=FakeRunner({}))
    assert result["managed_pid"] is None
    assert result["diagnosis"] == "healthy"
    assert len(result["warnings"]) == 1 and "not comparing" in result["warnings"][0]


def test_inspect_auto_detects_systemd(proc):
    proc.add_process(1, ["/sbin/init"], ppid=0, comm="systemd")
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(90, DAEMON, sockets=[5001])
    run = FakeRunner({"systemctl show": (0, "90\n", "")})
    result = p2p_proc.inspect(params(proc, service_manager="auto"), runner=run)
    assert result["service_manager"] == "systemd"
    assert result["managed_pid"] == 90
    assert result["diagnosis"] == "healthy"


def test_inspect_not_listening_never_started_crashed(proc, tmp_path):
    proc.add_process(200, ["bash", "-c", "while true; do python scripts/p2p_orchestrator.py; done"])
    plain = p2p_proc.inspect(params(proc))
    assert plain["diagnosis"] == "not_listening"
    assert plain["listening"] is False
    assert plain["pid"] is None
    assert plain["failed"] is True
    assert plain["msg"] == "nothing listens on port 8770"
    never = p2p_proc.inspect(params(proc, log_path=str(tmp_path / "p2p.log")))
    assert never["diagnosis"] == "never_started"
    crashed = p2p_proc.inspect(params(proc, log_path=write(tmp_path, "p2p.log", TRACEBACK_LOG)))
    assert crashed["diagnosis"] == "crashed"
    assert crashed["missing_module"] == "psutil"
    assert crashed["last_error"] == "ModuleNotFoundError: No module named 'psutil'"
    assert crashed["log_excerpt"][-1] == "ModuleNotFoundError: No module named 'psutil'"
    assert "missing module psutil" in crashed["msg"]
    quiet = p2p_proc.inspect(params(proc, log_path=write(tmp_path, "ok.log", "2025 INFO [p2p] shutting down\n")))
    assert quiet["diagnosis"] == "not_listening"


def test_inspect_state_absent(proc):
    free = p2p_proc.inspect(params(proc, state="absent"))
    assert free["failed"] is False and free["state_ok"] is True
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, DAEMON, sockets=[5001])
    held = p2p_proc.inspect(params(proc, state="absent"))
    assert held["failed"] is True
    assert held["state_ok"] is False
    assert held["pid"] == 100
    assert held["msg"].startswith("port 8770 is not free: pid 100")


def test_inspect_fail_on_mismatch_false_only_reports(proc):
    result = p2p_proc.inspect(params(proc, fail_on_mismatch=False))
    assert result["failed"] is False
    assert result["state_ok"] is False
    assert result["diagnosis"] == "not_listening"


def test_inspect_timeout_polls_until_listening(proc):
    clock = {"now": 0.0}
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        clock["now"] += seconds
        if len(sleeps) == 3:
            proc.add_socket("0.0.0.0", 8770, 5001)
            proc.add_process(100, DAEMON, sockets=[5001])

    result = p2p_proc.inspect(params(proc, timeout=10), sleep=sleep, clock=lambda: clock["now"])
    assert result["diagnosis"] == "healthy"
    assert result["attempts"] == 4
    assert sleeps == [0.5, 0.5, 0.5]
    assert result["waited_seconds"] == 1.5


def test_inspect_timeout_expires(proc):
    clock = {"now": 0.0}

    def sleep(seconds):
        clock["now"] += seconds

    result = p2p_proc.inspect(params(proc, timeout=2), sleep=sleep, clock=lambda: clock["now"])
    assert result["failed"] is True
    assert result["attempts"] == 5
    assert result["msg"].endswith("(after waiting 2.0s)")


def test_inspect_health_healthy_busy_failed(proc, http_server):
    port = http_server(body={"healthy": True, "node_id": "gpu-01"})
    proc.add_socket("0.0.0.0", port, 5001)
    proc.add_process(100, DAEMON[:7] + [str(port)], sockets=[5001])
    ok = p2p_proc.inspect(params(proc, port=port, health_path="/health", node_id="gpu-01", health_timeout=2))
    assert ok["diagnosis"] == "healthy"
    assert ok["health"]["status"] == 200
    assert ok["health"]["url"] == "http://127.0.0.1:%d/health" % port
    no_node_id = p2p_proc.inspect(params(proc, port=port, health_path="/health", health_timeout=2, cmdline_regex="p2p"))
    assert no_node_id["diagnosis"] == "healthy"

    other_port = http_server(body={"healthy": True, "node_id": "gpu-09"})
    proc.add_socket("127.0.0.1", other_port, 5004)
    os.symlink("socket:[5004]", os.path.join(proc.root, "100", "fd", "19"))
    other = p2p_proc.inspect(params(proc, port=other_port, health_path="/health", node_id="gpu-01", health_timeout=2))
    assert other["owner_matches"] is True
    assert other["diagnosis"] == "health_failed"
    assert other["health"]["error"] == "node_id mismatch: expected gpu-01, got gpu-09"

    busy_port = http_server(body={"healthy": False, "node_id": "gpu-01"})
    proc.add_socket("127.0.0.1", busy_port, 5002)
    os.symlink("socket:[5002]", os.path.join(proc.root, "100", "fd", "20"))
    busy = p2p_proc.inspect(params(proc, port=busy_port, health_path="/health", health_timeout=2))
    assert busy["diagnosis"] == "busy"
    assert busy["failed"] is False
    assert busy["health"]["healthy"] is False

    bad_port = http_server(status=500, body={"healthy": True})
    proc.add_socket("127.0.0.1", bad_port, 5003)
    os.symlink("socket:[5003]", os.path.join(proc.root, "100", "fd", "21"))
    bad = p2p_proc.inspect(params(proc, port=bad_port, health_path="/health", health_timeout=2))
    assert bad["diagnosis"] == "health_failed"
    assert bad["failed"] is True
    assert bad["health"]["error"] == "HTTP 500"
    assert "HTTP 500" in bad["msg"]


@pytest.mark.parametrize("bad", [
    {"bind_address": "localhost"},
    {"cmdline_regex": "p2p(["},
    {"port": 70000},
    {"state": "running"},
    {"service_manager": "upstart"},
])
def test_inspect_rejects_invalid_params(proc, bad):
    with pytest.raises(ValueError):
        p2p_proc.inspect(params(proc, **bad))


# --------------------------------------------------------------------------- hardening (issue 13)

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


@pytest.fixture
def raw_server():
    servers = []

    def start(reply, host="127.0.0.1"):
        server = RawServer(reply, host)
        servers.append(server)
        return server.port

    yield start
    for server in servers:
        server.close()


def _drip(data, interval=0.1, limit=8.0):
    """Reply that sends ``data`` one byte every ``interval`` seconds (for at most ``limit`` seconds)."""
    def reply(conn, stop):
        started = time.time()
        for byte in data:
            if stop.is_set() or time.time() - started > limit:
                return
            conn.sendall(bytes([byte]))
            stop.wait(interval)
    return reply


@pytest.mark.parametrize("payload", [
    b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 200,  # the head never ends
    b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b" " * 200,  # the body trickles
])
def test_check_health_deadline_bounds_the_whole_request_not_each_read(raw_server, payload):
    port = raw_server(_drip(payload, interval=0.1))
    started = time.time()
    result = p2p_proc.check_health("127.0.0.1", port, "/health", 1.0)
    took = time.time() - started
    assert result["ok"] is False
    assert result["error"] == "timed out after 1.0s (whole request)"
    assert took < 1.8, took
    assert result["elapsed"] < 1.8


def test_check_health_bounds_the_body_and_the_head(raw_server):
    def huge_length(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n{")

    def endless(conn, stop):
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
        chunk = b"[" * 16384
        while not stop.is_set():
            conn.sendall(chunk)

    def long_head(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: a\r\n" * 5000)

    declared = p2p_proc.check_health("127.0.0.1", raw_server(huge_length), "/health", 5.0)
    assert declared["ok"] is False
    assert declared["error"] == "body of 10485760 bytes is over the 65536 byte limit"
    streamed = p2p_proc.check_health("127.0.0.1", raw_server(endless), "/health", 5.0)
    assert streamed["ok"] is False
    assert streamed["error"] == "body over the 65536 byte limit"
    assert streamed["elapsed"] < 4
    head = p2p_proc.check_health("127.0.0.1", raw_server(long_head), "/health", 5.0)
    assert head["error"] == "response head longer than 16384 bytes"


def test_check_health_reads_chunked_and_close_delimited_bodies(raw_server):
    body = json.dumps({"healthy": True, "node_id": "gpu-01"}).encode()

    def chunked(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (body[:10], body[10:]):
            conn.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        conn.sendall(b"0\r\n\r\n")
        stop.wait(5)  # keeps the connection open: the end is the last chunk, not EOF

    def close_delimited(conn, stop):
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + body)

    for reply in (chunked, close_delimited):
        result = p2p_proc.check_health("127.0.0.1", raw_server(reply), "/health", 2.0, expected_node_id="gpu-01")
        assert result["ok"] is True, result
        assert result["json"] == {"healthy": True, "node_id": "gpu-01"}
        assert result["elapsed"] < 1.5


def test_check_health_not_http(raw_server):
    def garbage(conn, stop):
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    result = p2p_proc.check_health("127.0.0.1", raw_server(garbage), "/health", 2.0)
    assert result["ok"] is False
    assert result["error"].startswith("not an HTTP answer")


@pytest.mark.parametrize("bad", [
    {"health_path": "/health HTTP/1.0\r\nX-Injected: 1"},
    {"health_timeout": 0},
    {"python": "venv/bin/python"},
    {"script": "-c"},
])
def test_inspect_rejects_invalid_hardening_params(proc, bad):
    with pytest.raises(ValueError):
        p2p_proc.inspect(params(proc, **bad))


# SO_REUSEPORT: several programs on one port

def test_two_programs_sharing_the_port_with_so_reuseport_is_port_shared(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_socket("0.0.0.0", 8770, 5002)  # a second socket on the same address: SO_REUSEPORT
    proc.add_process(100, DAEMON, sockets=[5001])
    proc.add_process(400, ["/usr/bin/python3", "/tmp/intruder.py"], sockets=[5002])
    result = p2p_proc.inspect(params(proc, node_id="gpu-01", fail_on_mismatch=False))
    assert result["diagnosis"] == "port_shared"
    assert result["state_ok"] is False
    assert result["pid"] == 100
    assert result["owner_matches"] is True
    assert result["owner_pids"] == [100, 400]
    assert result["other_owners"] == [{"pid": 400, "pids": [400], "cmdline": ["/usr/bin/python3", "/tmp/intruder.py"],
                                       "addresses": ["0.0.0.0"]}]
    assert "also held by pid 400 (/usr/bin/python3 /tmp/intruder.py) on 0.0.0.0" in result["msg"]
    assert "SO_REUSEPORT" in result["msg"]
    assert "port_shared" in p2p_proc.DIAGNOSES and "port_shared" not in p2p_proc.ALIVE_DIAGNOSES


def test_two_copies_of_the_daemon_sharing_the_port_is_port_shared_even_when_one_is_managed(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_socket("0.0.0.0", 8770, 5002)
    proc.add_process(90, DAEMON, ppid=1, sockets=[5001])  # a copy started by hand
    proc.add_process(100, DAEMON, ppid=1, sockets=[5002])  # the unit's main PID
    result = p2p_proc.inspect(params(proc, service_manager="systemd"), runner=FakeRunner({"systemctl show": (0, "100\n", "")}))
    assert result["diagnosis"] == "port_shared"
    assert result["pid"] == 100  # the managed one is reported, the stray is the other owner
    assert [o["pid"] for o in result["other_owners"]] == [90]


def test_one_service_tree_is_one_owner(proc):
    """Workers of the managed main PID (each with its own SO_REUSEPORT socket), and children
    that inherited the parent's socket, are the same service."""
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_socket("0.0.0.0", 8770, 5002)
    proc.add_socket("0.0.0.0", 8770, 5003)
    proc.add_process(50, ["/bin/sh", "-c", "exec p2p_orchestrator"], ppid=1)
    proc.add_process(51, DAEMON, ppid=50, sockets=[5001])
    proc.add_process(52, DAEMON, ppid=50, sockets=[5002])
    proc.add_process(53, DAEMON, ppid=52, sockets=[5002, 5003])
    result = p2p_proc.inspect(params(proc, service_manager="systemd"), runner=FakeRunner({"systemctl show": (0, "50\n", "")}))
    assert result["diagnosis"] == "healthy", result["msg"]
    assert result["other_owners"] == []
    assert p2p_proc.owner_groups([51, 52, 53], None, proc.root) == [[51], [52, 53]]
    assert p2p_proc.owner_groups([51, 52, 53], 50, proc.root) == [[51, 52, 53]]


def test_two_foreign_programs_are_wrong_owner_naming_both(proc):
    proc.add_socket("127.0.0.1", 8770, 5001)
    proc.add_socket("::1", 8770, 5002)
    proc.add_process(300, ["/usr/sbin/nginx"], sockets=[5001])
    proc.add_process(301, ["/usr/bin/socat", "TCP6-LISTEN:8770"], sockets=[5002])
    result = p2p_proc.inspect(params(proc))
    assert result["diagnosis"] == "wrong_owner"
    assert result["pid"] == 300
    assert "also held by pid 301" in result["msg"]


# python / script: the interpreter and the script the service runs

@pytest.fixture
def venv(tmp_path):
    """A system python, a venv whose python and python3 link to it, and a service checkout."""
    system = tmp_path / "usr" / "bin"
    system.mkdir(parents=True)
    real = system / "python3.11"
    real.write_text("#!binary\n")
    real.chmod(0o755)
    (system / "python3").symlink_to("python3.11")
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3").symlink_to(str(real))
    (bin_dir / "python").symlink_to("python3")
    checkout = tmp_path / "ai-service"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "scripts" / "p2p_orchestrator.py").write_text("# daemon\n")
    other = tmp_path / "old-checkout"
    (other / "scripts").mkdir(parents=True)
    (other / "scripts" / "p2p_orchestrator.py").write_text("# old daemon\n")
    return {"real": str(real), "system_python3": str(system / "python3"), "python": str(bin_dir / "python"),
            "python3": str(bin_dir / "python3"), "bin": str(bin_dir), "checkout": str(checkout), "other": str(other),
            "script": str(checkout / "scripts" / "p2p_orchestrator.py"), "root": str(tmp_path)}


ARGS = DAEMON[1:]


def _daemon_with(proc, argv0, venv, exe=None, cwd=None, environ=None, script=None):
    argv = [argv0] + ([script] if script else ARGS[:1]) + ARGS[1:]
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, argv, sockets=[5001], exe=venv["real"] if exe is None else exe, cwd=cwd or venv["checkout"],
                     environ=environ)


@pytest.mark.parametrize("argv0, environ, diagnosis, problem", [
    ("{python}", None, "healthy", None),
    ("{python3}", None, "healthy", None),  # another name of the same venv interpreter
    ("../venv/bin/python", None, "healthy", None),  # relative to the process's cwd (the checkout)
    ("python", {"PATH": "{bin}:/usr/bin"}, "healthy", None),  # found in the process's PATH, like the interpreter does
    ("{real}", None, "wrong_owner", "started as {real}, expected {python} (the same binary {real}, but not the expected venv or install)"),
    ("{system_python3}", None, "wrong_owner", "started as {system_python3}, expected {python}"),
    ("python", None, "owner_unknown", "cannot tell which file argv[0] 'python' of pid 100 names (cwd or PATH unreadable)"),
])
def test_python_option_checks_the_interpreter_and_the_venv(proc, venv, argv0, environ, diagnosis, problem):
    def fmt(text):
        return text.format(**venv)

    _daemon_with(proc, fmt(argv0), venv, environ=dict((k, fmt(v)) for k, v in (environ or {}).items()) if environ else None)
    result = p2p_proc.inspect(params(proc, python=venv["python"], fail_on_mismatch=False))
    assert result["diagnosis"] == diagnosis, result["msg"]
    if problem is None:
        assert result["owner_problem"] is None
    else:
        assert result["owner_problem"].startswith(fmt(problem))


def test_python_option_other_binary_or_unreadable_exe(proc, venv):
    _daemon_with(proc, venv["python"], venv, exe="/usr/bin/perl")
    other = p2p_proc.inspect(params(proc, python=venv["python"]))
    assert other["diagnosis"] == "wrong_owner"
    assert other["owner_problem"] == "interpreter is /usr/bin/perl, expected %s (%s)" % (venv["python"], venv["real"])
    os.remove(os.path.join(proc.root, "100", "exe"))
    unreadable = p2p_proc.inspect(params(proc, python=venv["python"]))
    assert unreadable["diagnosis"] == "owner_unknown"
    assert unreadable["owner_matches"] is None
    assert unreadable["owner_problem"].startswith("cannot read /proc/100/exe")
    # a package upgrade replaced the binary under the running process: still the same interpreter
    os.symlink(venv["real"] + " (deleted)", os.path.join(proc.root, "100", "exe"))
    assert p2p_proc.inspect(params(proc, python=venv["python"]))["diagnosis"] == "healthy"


def test_python_and_script_unset_keep_the_substring_match(proc, venv):
    _daemon_with(proc, "/usr/bin/perl", venv, script="/tmp/fake/p2p_orchestrator.py")
    assert p2p_proc.inspect(params(proc, node_id="gpu-01"))["diagnosis"] == "healthy"


@pytest.mark.parametrize("script_arg, expected, diagnosis", [
    ("scripts/p2p_orchestrator.py", "{script}", "healthy"),
    ("scripts/p2p_orchestrator.py", "scripts/p2p_orchestrator.py", "healthy"),
    ("{script}", "scripts/p2p_orchestrator.py", "healthy"),
    ("./scripts/../scripts/p2p_orchestrator.py", "{script}", "healthy"),
    ("{other}/scripts/p2p_orchestrator.py", "{script}", "wrong_owner"),
    ("/tmp/p2p_orchestrator.py", "{script}", "wrong_owner"),
])
def test_script_option_resolves_against_the_process_cwd(proc, venv, script_arg, expected, diagnosis):
    _daemon_with(proc, venv["python"], venv, script=script_arg.format(**venv))
    result = p2p_proc.inspect(params(proc, script=expected.format(**venv), python=venv["python"]))
    assert result["diagnosis"] == diagnosis, result["msg"]


def test_script_option_sees_through_a_checkout_symlink_and_a_wrong_cwd(proc, venv):
    link = os.path.join(venv["root"], "current")
    os.symlink(venv["checkout"], link)
    _daemon_with(proc, venv["python"], venv, cwd=venv["checkout"], script="scripts/p2p_orchestrator.py")
    assert p2p_proc.inspect(params(proc, script=os.path.join(link, "scripts", "p2p_orchestrator.py")))["diagnosis"] == "healthy"
    moved = p2p_proc.inspect(params(proc, script=os.path.join(venv["other"], "scripts", "p2p_orchestrator.py")))
    assert moved["diagnosis"] == "wrong_owner"
    assert moved["owner_problem"] == "script is %s, expected %s" % (
        venv["script"], os.path.join(venv["other"], "scripts", "p2p_orchestrator.py"))
    assert moved["cwd"] == venv["checkout"]


def test_script_option_rejects_a_decoy_that_only_names_the_daemon(proc, venv):
    decoy = [venv["python"], "-c", "import time; time.sleep(1e9)", "scripts/p2p_orchestrator.py", "--node-id", "gpu-01"]
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, decoy, sockets=[5001], exe=venv["real"], cwd=venv["checkout"])
    plain = p2p_proc.inspect(params(proc, node_id="gpu-01"))
    assert plain["diagnosis"] == "healthy"  # the substring match alone is fooled
    checked = p2p_proc.inspect(params(proc, node_id="gpu-01", script="scripts/p2p_orchestrator.py"))
    assert checked["diagnosis"] == "wrong_owner"
    assert checked["owner_problem"] == "runs no script (expected scripts/p2p_orchestrator.py)"


def test_script_option_needs_the_cwd_for_relative_paths(proc, venv):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, [venv["python"], "scripts/p2p_orchestrator.py"], sockets=[5001], exe=venv["real"])
    result = p2p_proc.inspect(params(proc, script=venv["script"]))
    assert result["diagnosis"] == "owner_unknown"
    assert result["owner_problem"].startswith("cannot read /proc/100/cwd")


@pytest.mark.parametrize("cmdline, expected", [
    (["python", "-u", "-X", "dev", "-W", "ignore", "s.py", "--x"], "s.py"),
    (["python", "-Xdev", "-OO", "s.py"], "s.py"),
    (["python", "--", "-s.py"], "-s.py"),
    (["python", "-c", "code", "s.py"], None),
    (["python", "-m", "pkg", "s.py"], None),
    (["python", "-mpkg"], None),
    (["python"], None),
])
def test_script_argument(cmdline, expected):
    assert p2p_proc.script_argument(cmdline) == expected


# addresses: probe the owner's own address; a wildcard holds every address for state=absent

def test_health_is_sent_to_the_address_the_daemon_is_bound_to(proc):
    server = _start_server(body={"healthy": True, "node_id": "gpu-01"}, host="127.0.0.2")
    try:
        port = server.server_address[1]
        proc.add_socket("127.0.0.2", port, 5001)
        proc.add_process(100, DAEMON[:7] + [str(port)], sockets=[5001])
        result = p2p_proc.inspect(params(proc, port=port, health_path="/health", node_id="gpu-01", health_timeout=2))
    finally:
        server.shutdown()
        server.server_close()
    assert result["health"]["url"] == "http://127.0.0.2:%d/health" % port
    assert result["diagnosis"] == "healthy", result["msg"]


@pytest.mark.parametrize("addresses, bind_address, expected", [
    (["127.0.0.2"], None, "127.0.0.2"),
    (["10.0.0.5", "127.0.0.3"], None, "127.0.0.3"),
    (["10.0.0.5", "::"], None, "::1"),
])
def test_health_host_uses_the_owners_addresses(addresses, bind_address, expected):
    assert p2p_proc.health_host([{"address": a} for a in addresses], bind_address) == expected


@pytest.mark.parametrize("left, right, overlap", [
    ("0.0.0.0", "10.0.0.5", True),
    ("::", "10.0.0.5", True),
    ("::", "::1", True),
    ("::ffff:10.0.0.5", "10.0.0.5", True),
    ("0.0.0.0", "::1", False),
    ("10.0.0.5", "127.0.0.1", False),
    ("::1", "fe80::1", False),
])
def test_addresses_overlap(left, right, overlap):
    assert p2p_proc.addresses_overlap(left, right) is overlap
    assert p2p_proc.addresses_overlap(right, left) is overlap  # symmetric


@pytest.mark.parametrize("wildcard, bind_address", [
    ("0.0.0.0", "10.0.0.5"), ("::", "10.0.0.5"), ("::", "::1"), ("10.0.0.5", "0.0.0.0"),
])
def test_state_absent_with_a_bind_address_sees_an_overlapping_listener(proc, wildcard, bind_address):
    proc.add_socket(wildcard, 8770, 5001)
    proc.add_process(100, DAEMON, sockets=[5001])
    held = p2p_proc.inspect(params(proc, state="absent", bind_address=bind_address))
    assert held["state_ok"] is False
    assert held["failed"] is True
    assert held["listening"] is True
    assert held["pid"] == 100
    assert held["msg"].startswith("port 8770 is not free: pid 100")
    # state=listening keeps the exact match: the daemon must be bound as configured
    assert p2p_proc.inspect(params(proc, bind_address=bind_address))["listening"] is False


def test_state_absent_with_a_bind_address_ignores_other_specific_addresses(proc):
    proc.add_socket("127.0.0.1", 8770, 5001)
    proc.add_process(100, DAEMON, sockets=[5001])
    free = p2p_proc.inspect(params(proc, state="absent", bind_address="10.0.0.5"))
    assert free["state_ok"] is True


# races and thread-group leaders

def test_holder_that_exits_after_the_socket_scan_is_gone_not_wrong_owner(proc, monkeypatch):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, DAEMON, sockets=[5001])
    real = p2p_proc.process_info
    calls = []

    def exits_first(pid, proc_root="/proc", now=None):
        calls.append(pid)
        if len(calls) == 1:  # the daemon exits right after the socket scan saw it
            proc.tcp = []
            proc.flush()
            shutil.rmtree(os.path.join(proc.root, "100"))
            return None
        return real(pid, proc_root, now)

    monkeypatch.setattr(p2p_proc, "process_info", exits_first)
    result = p2p_proc.inspect(params(proc))
    assert result["diagnosis"] == "not_listening", result["msg"]
    assert result["listening"] is False


def test_holder_that_exits_while_another_keeps_the_socket(proc, monkeypatch):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, DAEMON, sockets=[5001])
    proc.add_process(101, DAEMON, ppid=100, sockets=[5001])
    real = p2p_proc.process_info

    def parent_gone(pid, proc_root="/proc", now=None):
        return None if pid == 100 else real(pid, proc_root, now)

    monkeypatch.setattr(p2p_proc, "process_info", parent_gone)
    result = p2p_proc.inspect(params(proc))
    assert result["diagnosis"] == "healthy", result["msg"]
    assert result["pid"] == 101
    assert result["owner_pids"] == [101]


def _leader_exited(proc, pid, argv, inode, cwd="/srv/ai-service"):
    """A process whose main thread exited: leader zombie with an empty fd table, one live thread."""
    proc.add_process(pid, argv, exe=None, other_fds=False, state="Z")
    with open(os.path.join(proc.root, str(pid), "cmdline"), "wb"):
        pass
    task = os.path.join(proc.root, str(pid), "task")
    os.makedirs(os.path.join(task, str(pid), "fd"))
    thread = os.path.join(task, str(pid + 1))
    os.makedirs(os.path.join(thread, "fd"))
    with open(os.path.join(thread, "cmdline"), "wb") as handle:
        handle.write(b"\0".join(a.encode() for a in argv) + b"\0")
    os.symlink("/usr/bin/python3.11", os.path.join(thread, "exe"))
    os.symlink(cwd, os.path.join(thread, "cwd"))
    os.symlink("socket:[%d]" % inode, os.path.join(thread, "fd", "3"))


def test_daemon_whose_main_thread_exited_is_found_through_its_threads(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    _leader_exited(proc, 100, DAEMON, 5001)
    assert p2p_proc.find_listeners(8770, proc.root)[0]["pids"] == [100]
    info = p2p_proc.process_info(100, proc.root)
    assert info["leader_exited"] is True
    assert info["cmdline"] == DAEMON
    assert info["exe"] == "/usr/bin/python3.11"
    assert info["cwd"] == "/srv/ai-service"
    result = p2p_proc.inspect(params(proc, node_id="gpu-01", script="/srv/ai-service/scripts/p2p_orchestrator.py"))
    assert result["diagnosis"] == "healthy", result["msg"]
    assert result["pid"] == 100
    assert result["cmdline"] == DAEMON


@pytest.mark.parametrize("root, says_become", [(True, False), (False, True)])
def test_owner_unknown_says_become_only_when_not_root(proc, monkeypatch, root, says_become):
    proc.add_socket("0.0.0.0", 8770, 5001)  # nobody in this PID namespace holds it
    proc.add_process(100, ["sleep", "100"])
    monkeypatch.setattr(p2p_proc, "_running_as_root", lambda: root)
    result = p2p_proc.inspect(params(proc))
    assert result["diagnosis"] == "owner_unknown"
    assert ("become" in result["msg"]) is says_become
    if root:
        assert "even as root" in result["msg"] and "PID namespace" in result["msg"]
