# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live tests of ringrift.cluster.p2p_listener on this machine, loopback only.

Every case runs the module for real through ``ansible localhost -m ringrift.cluster.p2p_listener``
(one through ``ansible-playbook``) against real processes: the stand-in daemon
(tests/fixtures/ai-service/scripts/p2p_orchestrator.py), decoys, squatters and small HTTP
servers, all bound to 127.0.0.1 or ::1 on free ephemeral ports and killed afterwards.
"""

from __future__ import absolute_import, division, print_function

import getpass
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ansible_collections.ringrift.cluster.tests.helpers import (
    ANSIBLE, ANSIBLE_PLAYBOOK, PYTHON, REPO, STANDIN, STANDIN_ENV, ansible_env, free_port, stop, wait_listening,
    wait_port_free,
)

__metaclass__ = type

MODULE = "ringrift.cluster.p2p_listener"

pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and os.path.exists("/proc/net/tcp") and os.path.exists(ANSIBLE)),
    reason="needs Linux /proc and ansible next to this interpreter")

SERVER_SCRIPT = textwrap.dedent('''\
    """Tiny HTTP server answering GET with a fixed status and JSON body (test helper)."""
    import json
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    HOST, PORT, STATUS, NODE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    BODY = json.dumps({"healthy": STATUS < 300, "node_id": NODE}).encode()


    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(STATUS)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args):
            pass


    HTTPServer((HOST, PORT), Handler).serve_forever()
    ''')

SQUATTER_SCRIPT = textwrap.dedent('''\
    """Holds a TCP port in LISTEN and never answers (test helper)."""
    import socket
    import sys
    import time

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((sys.argv[1], int(sys.argv[2])))
    sock.listen(16)
    time.sleep(600)
    ''')

BLOCK_PSUTIL = textwrap.dedent('''\
    """sitecustomize: make `import psutil` fail as if psutil were not installed (test helper)."""
    import sys


    class _Missing(object):
        def find_spec(self, name, path=None, target=None):
            if name == "psutil" or name.startswith("psutil."):
                raise ModuleNotFoundError("No module named %r" % name, name=name)
            return None


    sys.meta_path.insert(0, _Missing())
    ''')


# --------------------------------------------------------------------------- helpers

def standin_argv(port, host="127.0.0.1", node_id="it-node", extra=()):
    argv = [PYTHON, STANDIN]
    if node_id is not None:
        argv += ["--node-id", node_id]
    return argv + ["--host", host, "--port", str(port), "--peers", "http://127.0.0.1:1,http://127.0.0.1:2"] + list(extra)


def run_module(tmp_path, check=False, run_timeout=180, **args):
    """Run the module through `ansible localhost`; return (rc, result dict)."""
    argv = [ANSIBLE, "localhost", "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=%s" % PYTHON,
            "-m", MODULE, "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, cwd=REPO, env=ansible_env(tmp_path, ANSIBLE_DEPRECATION_WARNINGS="0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=run_timeout, check=False)
    match = re.search(r"^localhost \| (SUCCESS|FAILED!) => ", proc.stdout, re.MULTILINE)
    assert match, "no module result in output:\nSTDOUT:\n%s\nSTDERR:\n%s" % (proc.stdout, proc.stderr)
    result, _end = json.JSONDecoder().raw_decode(proc.stdout[match.end():])
    assert (match.group(1) == "SUCCESS") == (proc.returncode == 0), proc.stdout
    return proc.returncode, result


# --------------------------------------------------------------------------- cases

def test_standin_listening_is_found_with_its_pid_and_health(tmp_path, procs):
    port = free_port()
    log = str(tmp_path / "p2p.log")
    daemon = procs(standin_argv(port), log_path=log)
    wait_listening(daemon, "127.0.0.1", port)
    decoy = procs([PYTHON, "-c", "import time; time.sleep(120)", "scripts/p2p_orchestrator.py", "--port", str(port)])

    rc, result = run_module(tmp_path, port=port, node_id="it-node", check_port_in_cmdline=True,
                            health_path="/health", health_timeout=5, log_path=log)
    assert rc == 0, result
    assert "failed" not in result or result["failed"] is False
    assert result["changed"] is False
    assert result["listening"] is True
    assert result["pid"] == daemon.pid
    assert result["pid"] != decoy.pid
    assert result["owner_pids"] == [daemon.pid]
    assert result["diagnosis"] == "healthy"
    assert result["owner_matches"] is True
    assert result["cmdline"] == standin_argv(port)
    assert os.path.basename(result["exe"]).startswith("python")
    assert result["user"] == getpass.getuser()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", result["started_at"])
    assert 0 <= result["uptime_seconds"] < 300
    assert [(a["address"], a["port"], a["family"], a["pid"]) for a in result["addresses"]] == [("127.0.0.1", port, "ipv4", daemon.pid)]
    assert result["health"]["status"] == 200
    assert result["health"]["url"] == "http://127.0.0.1:%d/health" % port
    assert result["health"]["json"]["node_id"] == "it-node"
    assert result["health"]["json"]["active_peers"] == 2
    assert result["health"]["json"]["version"] == "stand-in"
    assert result["health"]["json"]["role"] == "follower"

    rc, checked = run_module(tmp_path, check=True, port=port, health_path="/health")
    assert rc == 0
    assert checked["pid"] == daemon.pid
    assert checked["diagnosis"] == "healthy"


def test_standin_on_ipv6_loopback(tmp_path, procs):
    port = free_port("::1")
    daemon = procs(standin_argv(port, host="::1"))
    wait_listening(daemon, "::1", port)
    rc, result = run_module(tmp_path, port=port, health_path="/health", node_id="it-node")
    assert rc == 0, result
    assert result["pid"] == daemon.pid
    assert [(a["address"], a["family"]) for a in result["addresses"]] == [("::1", "ipv6")]
    assert result["health"]["url"] == "http://[::1]:%d/health" % port
    assert result["diagnosis"] == "healthy"
    rc, bound = run_module(tmp_path, port=port, bind_address="127.0.0.1")
    assert rc != 0
    assert bound["listening"] is False


def test_busy_standin_is_alive_not_failed(tmp_path, procs):
    port = free_port()
    daemon = procs(standin_argv(port), env={"RINGRIFT_FAKE_BUSY": "1"})
    wait_listening(daemon, "127.0.0.1", port)
    rc, result = run_module(tmp_path, port=port, health_path="/health")
    assert rc == 0, result
    assert result["diagnosis"] == "busy"
    assert result["health"]["healthy"] is False
    assert result["pid"] == daemon.pid


def test_decoy_with_daemon_name_that_listens_nowhere_is_not_running(tmp_path, procs):
    port = free_port()
    decoy = procs([PYTHON, "-c", "import time; time.sleep(120)", "scripts/p2p_orchestrator.py", "--node-id", "it-node",
                   "--port", str(port)])
    shell = procs(["/bin/sh", "-c", "sleep 120; echo p2p_orchestrator --port %d" % port])
    time.sleep(0.3)
    assert decoy.poll() is None and shell.poll() is None
    rc, result = run_module(tmp_path, port=port, node_id="it-node", health_path="/health")
    assert rc != 0
    assert result["listening"] is False
    assert result["pid"] is None
    assert result["diagnosis"] == "not_listening"
    assert result["msg"] == "nothing listens on port %d" % port
    rc, never = run_module(tmp_path, port=port, log_path=str(tmp_path / "no-such.log"))
    assert rc != 0
    assert never["diagnosis"] == "never_started"
    assert decoy.poll() is None  # still there, still not counted


def test_crash_on_missing_module_is_read_from_the_log(tmp_path, procs):
    port = free_port()
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCK_PSUTIL)
    log = str(tmp_path / "p2p.log")
    crashed = procs(standin_argv(port), log_path=log, env={"PYTHONPATH": str(blocker) + ":" + STANDIN_ENV["PYTHONPATH"]})
    assert crashed.wait(timeout=30) == 1
    with open(log) as handle:
        assert "ModuleNotFoundError: No module named 'psutil'" in handle.read()
    rc, result = run_module(tmp_path, port=port, log_path=log)
    assert rc != 0
    assert result["diagnosis"] == "crashed"
    assert result["missing_module"] == "psutil"
    assert result["error_kind"] == "missing_module"
    assert result["last_error"] == "ModuleNotFoundError: No module named 'psutil'"
    assert result["log_excerpt"][-1] == "ModuleNotFoundError: No module named 'psutil'"
    assert any("import psutil" in line for line in result["log_excerpt"])


def test_crash_without_node_id_is_read_from_the_log(tmp_path, procs):
    port = free_port()
    log = str(tmp_path / "p2p.log")
    config = tmp_path / "etc-ringrift"
    config.mkdir()
    crashed = procs(standin_argv(port, node_id=None), log_path=log, env={"RINGRIFT_CONFIG_DIR": str(config)})
    assert crashed.wait(timeout=30) == 1
    rc, result = run_module(tmp_path, port=port, log_path=log)
    assert rc != 0
    assert result["diagnosis"] == "crashed"
    assert result["error_kind"] == "node_id_missing"
    assert "Could not auto-detect node-id" in result["last_error"]
    # the node id file is enough to start
    (config / "node-id").write_text("from-file\n")
    daemon = procs(standin_argv(port, node_id=None), env={"RINGRIFT_CONFIG_DIR": str(config)})
    wait_listening(daemon, "127.0.0.1", port)
    rc, result = run_module(tmp_path, port=port, health_path="/health", node_id="from-file", cmdline_regex="p2p_orchestrator")
    assert rc != 0  # --node-id is not on the command line, so the owner does not prove its identity
    assert result["diagnosis"] == "wrong_owner"
    rc, result = run_module(tmp_path, port=port, health_path="/health")
    assert rc == 0
    assert result["health"]["json"]["node_id"] == "from-file"


def test_port_squatter_is_wrong_owner(tmp_path, procs):
    port = free_port()
    script = tmp_path / "squatter.py"
    script.write_text(SQUATTER_SCRIPT)
    squatter = procs([PYTHON, str(script), "127.0.0.1", str(port)])
    wait_listening(squatter, "127.0.0.1", port)
    log = str(tmp_path / "p2p.log")
    loser = procs(standin_argv(port), log_path=log)
    assert loser.wait(timeout=30) == 1
    with open(log) as handle:
        assert "Address already in use" in handle.read()

    rc, result = run_module(tmp_path, port=port, health_path="/health", log_path=log)
    assert rc != 0
    assert result["diagnosis"] == "wrong_owner"
    assert result["listening"] is True
    assert result["pid"] == squatter.pid
    assert result["cmdline"] == [PYTHON, str(script), "127.0.0.1", str(port)]
    assert result["owner_matches"] is False
    assert result["health"] is None
    assert "pid %d" % squatter.pid in result["msg"]

    rc, report = run_module(tmp_path, port=port, fail_on_mismatch=False)
    assert rc == 0
    assert report["state_ok"] is False
    assert report["diagnosis"] == "wrong_owner"


def test_state_absent_fails_while_listening_and_succeeds_after_exit(tmp_path, procs):
    port = free_port()
    log = str(tmp_path / "p2p.log")
    daemon = procs(standin_argv(port), log_path=log)
    wait_listening(daemon, "127.0.0.1", port)
    rc, held = run_module(tmp_path, port=port, state="absent")
    assert rc != 0
    assert held["listening"] is True
    assert held["pid"] == daemon.pid
    assert held["msg"].startswith("port %d is not free: pid %d" % (port, daemon.pid))

    stop(daemon)
    assert daemon.returncode == 0  # clean SIGTERM shutdown
    wait_port_free("127.0.0.1", port)
    rc, free = run_module(tmp_path, port=port, state="absent", log_path=log)
    assert rc == 0, free
    assert free["listening"] is False
    assert free["pid"] is None
    assert free["diagnosis"] == "not_listening"
    assert any("shutting down" in line for line in free["log_excerpt"])
    rc, gone = run_module(tmp_path, port=port)
    assert rc != 0
    assert gone["diagnosis"] == "not_listening"


@pytest.mark.parametrize("status, rc_ok, diagnosis", [(200, True, "healthy"), (500, False, "health_failed")])
def test_health_against_real_http_listener(tmp_path, procs, status, rc_ok, diagnosis):
    port = free_port()
    script = tmp_path / "health_server.py"
    script.write_text(SERVER_SCRIPT)
    server = procs([PYTHON, str(script), "127.0.0.1", str(port), str(status), "web-1"])
    wait_listening(server, "127.0.0.1", port)
    rc, result = run_module(tmp_path, port=port, cmdline_regex=r"health_server\.py", health_path="/health", health_timeout=5)
    assert (rc == 0) is rc_ok, result
    assert result["pid"] == server.pid
    assert result["diagnosis"] == diagnosis
    assert result["health"]["status"] == status
    assert result["health"]["ok"] is rc_ok
    assert result["health"]["json"] == {"healthy": status < 300, "node_id": "web-1"}


def test_health_timeout_against_silent_listener(tmp_path, procs):
    port = free_port()
    script = tmp_path / "p2p_orchestrator_hung.py"
    script.write_text(SQUATTER_SCRIPT)
    hung = procs([PYTHON, str(script), "127.0.0.1", str(port)])
    wait_listening(hung, "127.0.0.1", port)
    rc, result = run_module(tmp_path, port=port, health_path="/health", health_timeout=1)
    assert rc != 0
    assert result["pid"] == hung.pid
    assert result["owner_matches"] is True
    assert result["diagnosis"] == "health_failed"
    assert result["health"]["error"].startswith("timed out")


def test_timeout_polls_until_a_late_daemon_listens(tmp_path, procs):
    port = free_port()
    late = {}

    def start_late():
        late["proc"] = procs(standin_argv(port))

    timer = threading.Timer(2.5, start_late)
    timer.start()
    try:
        rc, result = run_module(tmp_path, port=port, health_path="/health", timeout=30)
    finally:
        timer.cancel()
        timer.join()
    assert rc == 0, json.dumps(result)
    assert result["pid"] == late["proc"].pid
    assert result["diagnosis"] == "healthy"
    assert result["attempts"] > 1
    assert result["waited_seconds"] >= 1.0


def test_timeout_expires_when_nothing_comes(tmp_path):
    port = free_port()
    started = time.time()
    rc, result = run_module(tmp_path, port=port, timeout=2)
    assert rc != 0
    assert result["attempts"] >= 4
    assert result["waited_seconds"] >= 2.0
    assert time.time() - started >= 2.0
    assert result["msg"].endswith("(after waiting 2.0s)")


def test_playbook_audit_registers_result(tmp_path, procs):
    port = free_port()
    daemon = procs(standin_argv(port, node_id="pb-node"))
    wait_listening(daemon, "127.0.0.1", port)
    playbook = tmp_path / "audit.yml"
    playbook.write_text(textwrap.dedent('''\
        - name: Audit the P2P listener
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Check the listener
              ringrift.cluster.p2p_listener:
                port: {port}
                node_id: pb-node
                health_path: /health
                fail_on_mismatch: false
              register: p2p
            - name: Check the free neighbour port
              ringrift.cluster.p2p_listener:
                port: {free}
                state: absent
              register: free
            - name: Results are what the node says
              ansible.builtin.assert:
                that:
                  - p2p.pid == {pid}
                  - p2p.diagnosis == 'healthy'
                  - p2p.health.json.node_id == 'pb-node'
                  - not p2p.changed
                  - free.state_ok
                  - not free.listening
        ''').format(port=port, pid=daemon.pid, free=free_port()))
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % PYTHON,
                           str(playbook)], cwd=REPO, env=ansible_env(tmp_path, ANSIBLE_DEPRECATION_WARNINGS="0"),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout
    assert re.search(r"localhost\s+: ok=3\s+changed=0\s+unreachable=0\s+failed=0", proc.stdout), proc.stdout


# --------------------------------------------------------------------------- hardening (issue 13)

DRIP_SCRIPT = textwrap.dedent('''\
    """Accepts HTTP requests and answers one byte every half second, for a minute (test helper)."""
    import socket
    import sys
    import threading
    import time

    ANSWER = b"HTTP/1.1 200 OK\\r\\nContent-Length: 100\\r\\n\\r\\n" + b" " * 100


    def drip(conn):
        try:
            conn.recv(4096)
            for index in range(len(ANSWER)):
                conn.sendall(ANSWER[index:index + 1])
                time.sleep(0.5)
        except OSError:
            pass
        finally:
            conn.close()


    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((sys.argv[1], int(sys.argv[2])))
    sock.listen(16)
    while True:
        conn, _addr = sock.accept()
        threading.Thread(target=drip, args=(conn,), daemon=True).start()
    ''')

REUSEPORT_SCRIPT = textwrap.dedent('''\
    """Listens with SO_REUSEPORT on HOST:PORT and never answers (test helper)."""
    import socket
    import sys
    import time

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((sys.argv[1], int(sys.argv[2])))
    sock.listen(16)
    time.sleep(600)
    ''')

THREADS_ONLY_SCRIPT = textwrap.dedent('''\
    """Listens, then lets its main thread exit while another thread keeps the process (test helper)."""
    import ctypes
    import socket
    import sys
    import threading
    import time

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((sys.argv[1], int(sys.argv[2])))
    sock.listen(16)
    threading.Thread(target=time.sleep, args=(600,)).start()
    ctypes.CDLL(None).pthread_exit(None)  # ctypes drops the GIL first; only the main thread ends
    ''')


def test_dripping_health_server_is_cut_off_at_health_timeout(tmp_path, procs):
    port = free_port()
    script = tmp_path / "p2p_orchestrator_drip.py"
    script.write_text(DRIP_SCRIPT)
    drip = procs([PYTHON, str(script), "127.0.0.1", str(port)])
    wait_listening(drip, "127.0.0.1", port)
    rc, result = run_module(tmp_path, port=port, health_path="/health", health_timeout=2)
    assert rc != 0
    assert result["pid"] == drip.pid
    assert result["diagnosis"] == "health_failed"
    assert result["health"]["error"] == "timed out after 2.0s (whole request)"
    assert result["health"]["elapsed"] < 3.0  # a per-read timeout would wait for all 150 bytes: 75 s
    assert result["waited_seconds"] < 4.0


def test_second_program_with_so_reuseport_is_port_shared(tmp_path, procs):
    port = free_port()
    script = tmp_path / "reuseport.py"
    script.write_text(REUSEPORT_SCRIPT)
    daemon = procs([PYTHON, str(script), "127.0.0.1", str(port), "p2p_orchestrator", "--node-id", "it-node"])
    wait_listening(daemon, "127.0.0.1", port)
    intruder = procs([PYTHON, str(script), "127.0.0.1", str(port), "intruder"])
    deadline = time.time() + 10
    rc, result = run_module(tmp_path, port=port, node_id="it-node")
    while len(result["owner_pids"]) < 2 and time.time() < deadline:  # the intruder may still be starting
        time.sleep(0.2)
        rc, result = run_module(tmp_path, port=port, node_id="it-node")
    assert intruder.poll() is None
    assert rc != 0
    assert result["diagnosis"] == "port_shared", result["msg"]
    assert result["pid"] == daemon.pid
    assert sorted(result["owner_pids"]) == sorted([daemon.pid, intruder.pid])
    assert [o["pid"] for o in result["other_owners"]] == [intruder.pid]
    assert result["other_owners"][0]["cmdline"][-1] == "intruder"
    assert [(a["address"], a["port"]) for a in result["addresses"]] == [("127.0.0.1", port), ("127.0.0.1", port)]


def test_python_and_script_options_against_the_standin(tmp_path, procs):
    port = free_port()
    checkout = os.path.dirname(os.path.dirname(STANDIN))
    relative = [PYTHON, "scripts/p2p_orchestrator.py"] + standin_argv(port)[2:]
    daemon = procs(relative, cwd=checkout)
    wait_listening(daemon, "127.0.0.1", port)
    rc, result = run_module(tmp_path, port=port, node_id="it-node", python=PYTHON, script=STANDIN, health_path="/health")
    assert rc == 0, result
    assert result["diagnosis"] == "healthy"
    assert result["cwd"] == os.path.realpath(checkout)
    rc, result = run_module(tmp_path, port=port, python=PYTHON, script="scripts/p2p_orchestrator.py")
    assert rc == 0, result
    rc, other = run_module(tmp_path, port=port, script=str(tmp_path / "scripts" / "p2p_orchestrator.py"))
    assert rc != 0
    assert other["diagnosis"] == "wrong_owner"
    assert other["owner_problem"].startswith("script is %s" % os.path.realpath(STANDIN))
    # The venv's python is a symlink to the system one: the same binary started without the venv must not pass.
    system = os.path.realpath(PYTHON)
    assert system != PYTHON
    squatter = tmp_path / "p2p_orchestrator_plain.py"
    squatter.write_text(SQUATTER_SCRIPT)  # stdlib only: the system python lacks the daemon's packages
    plain_port = free_port()
    plain = procs([system, str(squatter), "127.0.0.1", str(plain_port)])
    wait_listening(plain, "127.0.0.1", plain_port)
    rc, bare = run_module(tmp_path, port=plain_port, python=PYTHON)
    assert rc != 0
    assert bare["diagnosis"] == "wrong_owner"
    assert bare["owner_problem"].startswith("started as %s, expected %s" % (system, PYTHON))
    rc, same = run_module(tmp_path, port=plain_port, python=system)
    assert rc == 0, same


def test_daemon_on_a_specific_loopback_address_is_probed_there(tmp_path, procs):
    port = free_port("127.0.0.2")
    daemon = procs(standin_argv(port, host="127.0.0.2"))
    wait_listening(daemon, "127.0.0.2", port)
    rc, result = run_module(tmp_path, port=port, node_id="it-node", health_path="/health")
    assert rc == 0, result
    assert result["health"]["url"] == "http://127.0.0.2:%d/health" % port
    assert result["diagnosis"] == "healthy"


def test_daemon_whose_main_thread_exited_is_still_its_owner(tmp_path, procs):
    port = free_port()
    script = tmp_path / "p2p_orchestrator_threads.py"
    script.write_text(THREADS_ONLY_SCRIPT)
    argv = [PYTHON, str(script), "127.0.0.1", str(port), "--node-id", "it-node"]
    daemon = procs(argv)
    wait_listening(daemon, "127.0.0.1", port)
    deadline = time.time() + 10
    while time.time() < deadline:  # wait until the main thread is gone
        with open("/proc/%d/stat" % daemon.pid) as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.1)
    assert daemon.poll() is None  # the process lives on
    rc, result = run_module(tmp_path, port=port, node_id="it-node", script=str(script))
    assert rc == 0, result
    assert result["diagnosis"] == "healthy"
    assert result["pid"] == daemon.pid
    assert result["cmdline"] == argv
