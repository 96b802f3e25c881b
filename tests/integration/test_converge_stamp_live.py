# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live tests of ringrift.cluster.converge_stamp and converge_stamp_info on this machine, loopback only.

Every case runs the modules for real through ``ansible localhost -m ...`` against the stand-in
daemon (tests/fixtures/ai-service/scripts/p2p_orchestrator.py) bound to 127.0.0.1 on a free
ephemeral port, with the stamp and the managed files under the test's tmp_path.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import stat
import subprocess
import sys

import pytest

from ansible_collections.ringrift.cluster.tests.helpers import (
    ANSIBLE, PYTHON, REPO, STANDIN, ansible_env, free_port, stop, wait_listening, wait_port_free,
)

__metaclass__ = type

STAMP = "ringrift.cluster.converge_stamp"
STAMP_INFO = "ringrift.cluster.converge_stamp_info"
NODE_ID = "stamp-node"

pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and os.path.exists("/proc/net/tcp") and os.path.exists(ANSIBLE)),
    reason="needs Linux /proc and ansible next to this interpreter")


# --------------------------------------------------------------------------- helpers

@pytest.fixture
def daemon(procs, tmp_path):
    """The stand-in daemon on 127.0.0.1 and a free port: (process, port)."""
    port = free_port()
    proc = procs([PYTHON, STANDIN, "--node-id", NODE_ID, "--host", "127.0.0.1", "--port", str(port),
                  "--peers", "http://127.0.0.1:1"], log_path=str(tmp_path / "p2p.log"))
    wait_listening(proc, "127.0.0.1", port)
    return proc, port


def run_module(tmp_path, module, args, check=False, diff=False):
    """Run a module through `ansible localhost`; return (rc, result dict)."""
    argv = [ANSIBLE, "localhost", "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=%s" % PYTHON,
            "-m", module, "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    proc = subprocess.run(argv, cwd=REPO, env=ansible_env(tmp_path, ANSIBLE_DEPRECATION_WARNINGS="0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=180, check=False)
    match = re.search(r"^localhost \| (SUCCESS|CHANGED|FAILED!) => ", proc.stdout, re.MULTILINE)
    assert match, "no module result in output:\nSTDOUT:\n%s\nSTDERR:\n%s" % (proc.stdout, proc.stderr)
    result, _end = json.JSONDecoder().raw_decode(proc.stdout[match.end():])
    assert (match.group(1) == "FAILED!") == (proc.returncode != 0), proc.stdout
    assert (match.group(1) == "CHANGED") == bool(result.get("changed")), proc.stdout
    return proc.returncode, result


class Node(object):
    """Stamp arguments for the daemon on ``port``, with one managed file under tmp_path."""

    def __init__(self, tmp_path, port):
        self.tmp_path = tmp_path
        self.port = port
        self.path = str(tmp_path / "state" / "stamp.json")
        self.managed = str(tmp_path / "node.conf")
        with open(self.managed, "w") as handle:
            handle.write("node_id=%s\n" % NODE_ID)
        os.chmod(self.managed, 0o600)
        self.listener = {"port": port, "node_id": NODE_ID, "health_path": "/health", "service_name": "ringrift-p2p",
                         "service_manager": "none", "cmdline_regex": "p2p_orchestrator"}

    def write_args(self, **overrides):
        args = {"path": self.path, "fingerprint": "sha256:test", "files": [self.managed], "python": PYTHON,
                "imports": ["json"], "listener": self.listener}
        args.update(overrides)
        return args

    def write(self, **overrides):
        return run_module(self.tmp_path, STAMP, self.write_args(**overrides))

    def info(self, fingerprint="sha256:test", path=None):
        rc, result = run_module(self.tmp_path, STAMP_INFO, {"path": path or self.path, "fingerprint": fingerprint})
        assert rc == 0, result  # read-only, never fails because of what it finds
        assert result["changed"] is False
        return result


# --------------------------------------------------------------------------- cases

def test_write_is_idempotent_and_the_node_verifies_converged(tmp_path, daemon):
    proc, port = daemon
    node = Node(tmp_path, port)

    rc, first = node.write()
    assert rc == 0, first
    assert first["changed"] is True
    assert first["path"] == node.path
    stamp = first["stamp"]
    # Stored only as an HMAC under the node's key: never the value itself.
    assert stamp["fingerprint"].startswith("hmac-sha256:")
    assert stamp["format"] == 2
    assert list(stamp["files"]) == [node.managed]
    assert stamp["files"][node.managed]["exists"] is True
    assert stamp["files"][node.managed]["mode"] == "0600"
    assert stamp["python"] == {"interpreter": PYTHON, "imports": ["json"]}
    assert stamp["listener"] == node.listener
    assert stamp["gpu"] is None
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", stamp["converged_at"])
    assert stat.S_IMODE(os.stat(node.path).st_mode) == 0o644  # readable without root (the audit of a sudo login)
    with open(node.path) as handle:
        assert json.load(handle) == stamp

    rc, second = node.write()
    assert rc == 0, second
    assert second["changed"] is False
    assert second["stamp"] == stamp  # same converged_at: the file was left alone

    result = node.info()
    assert result["converged"] is True, result["reasons"]
    assert result["reasons"] == []
    assert result["converged_at"] == stamp["converged_at"]
    assert result["stamp_path"] == node.path
    assert result["msg"] == "converged at %s; every recorded check holds" % stamp["converged_at"]
    assert result["listener"]["diagnosis"] == "healthy"
    assert result["listener"]["pid"] == proc.pid
    assert result["listener"]["health"]["json"]["node_id"] == NODE_ID
    assert result["gpu"] is None


def test_info_reports_what_no_longer_holds(tmp_path, daemon):
    proc, port = daemon
    node = Node(tmp_path, port)
    rc, written = node.write()
    assert rc == 0 and written["changed"] is True, written
    assert node.info()["converged"] is True

    other = node.info(fingerprint="sha256:other")
    assert other["converged"] is False
    assert other["reasons"] == ["settings or collection code changed since the last converge (%s)"
                                % written["stamp"]["converged_at"]]
    assert other["msg"] == other["reasons"][0]

    with open(node.managed, "a") as handle:
        handle.write("edited=by-hand\n")
    edited = node.info()
    assert edited["converged"] is False
    assert edited["reasons"] == ["%s changed since the last converge" % node.managed]

    stop(proc)
    wait_port_free("127.0.0.1", port)
    down = node.info()
    assert down["converged"] is False
    assert down["reasons"] == [
        "%s changed since the last converge" % node.managed,
        "the daemon is not_listening: nothing listens on port %d" % port,
    ]
    assert down["listener"]["diagnosis"] == "not_listening"
    assert down["listener"]["pid"] is None
    assert down["msg"] == "; ".join(down["reasons"])


def test_info_runs_the_real_import_check(tmp_path, daemon):
    _proc, port = daemon
    node = Node(tmp_path, port)
    rc, written = node.write(imports=["json", "no_such_module_xyz"])
    assert rc == 0, written
    assert written["stamp"]["python"]["imports"] == ["json", "no_such_module_xyz"]
    result = node.info()
    assert result["converged"] is False
    assert result["reasons"] == [
        "%s cannot import no_such_module_xyz (ModuleNotFoundError: No module named 'no_such_module_xyz')" % PYTHON]


def test_wrong_node_id_is_not_converged(tmp_path, daemon):
    _proc, port = daemon
    node = Node(tmp_path, port)
    rc, written = node.write(listener=dict(node.listener, node_id="someone-else"))
    assert rc == 0, written
    result = node.info()
    assert result["converged"] is False
    assert len(result["reasons"]) == 1
    assert result["reasons"][0].startswith("the daemon is wrong_owner: ")
    assert "--node-id is %s, expected someone-else" % NODE_ID in result["reasons"][0]


def test_check_mode_and_diff_write_nothing(tmp_path, daemon):
    _proc, port = daemon
    node = Node(tmp_path, port)
    rc, result = run_module(tmp_path, STAMP, node.write_args(), check=True, diff=True)
    assert rc == 0, result
    assert result["changed"] is True
    assert result["stamp"]["fingerprint"].startswith("hmac-sha256:")
    assert not os.path.exists(os.path.dirname(node.path))
    assert node.info()["reasons"] == ["no converge stamp at %s (not converged by site.yml yet)" % node.path]


def test_state_absent_removes_the_stamp(tmp_path, daemon):
    _proc, port = daemon
    node = Node(tmp_path, port)
    rc, written = node.write()
    assert rc == 0 and os.path.isfile(node.path), written

    rc, checked = run_module(tmp_path, STAMP, {"path": node.path, "state": "absent"}, check=True)
    assert rc == 0
    assert checked["changed"] is True
    assert os.path.isfile(node.path)  # check mode keeps it

    rc, removed = run_module(tmp_path, STAMP, {"path": node.path, "state": "absent"})
    assert rc == 0, removed
    assert removed["changed"] is True
    assert removed["stamp"] is None
    assert not os.path.exists(node.path)

    rc, again = run_module(tmp_path, STAMP, {"path": node.path, "state": "absent"})
    assert rc == 0
    assert again["changed"] is False

    result = node.info()
    assert result["converged"] is False
    assert result["reasons"] == ["no converge stamp at %s (not converged by site.yml yet)" % node.path]
    assert result["converged_at"] is None
    assert result["listener"] is None


def test_invalid_stamp_arguments_fail_naming_the_field(tmp_path):
    node = Node(tmp_path, free_port())
    rc, result = node.write(listener=dict(node.listener, service_manager="auto"))
    assert rc != 0
    assert "listener.service_manager must be one of systemd, supervisor, none (resolved), got 'auto'" in result["msg"]
    rc, result = node.write(files=["relative/node.conf"])
    assert rc != 0
    assert "files: 'relative/node.conf' is not an absolute path" in result["msg"]
    rc, result = run_module(tmp_path, STAMP, {"path": node.path, "fingerprint": "sha256:test"})
    assert rc != 0
    assert "python" in result["msg"] and "listener" in result["msg"]
    assert not os.path.exists(node.path)


def test_node_audit_reports_when_the_node_last_converged(tmp_path, daemon):
    proc, port = daemon
    node = Node(tmp_path, port)
    audit_args = {"port": port, "node_id": NODE_ID, "service_manager": "none", "stamp_path": node.path,
                  "log_path": str(tmp_path / "p2p.log")}
    rc, before = run_module(tmp_path, "ringrift.cluster.node_audit", audit_args)
    assert rc == 0, before
    assert before["diagnosis"] == "healthy" and before["last_converged_at"] is None

    rc, written = node.write()
    assert rc == 0, written
    rc, after = run_module(tmp_path, "ringrift.cluster.node_audit", audit_args)
    assert rc == 0, after
    assert after["last_converged_at"] == written["stamp"]["converged_at"]

    with open(node.path, "w") as handle:
        handle.write("not json")
    rc, broken = run_module(tmp_path, "ringrift.cluster.node_audit", audit_args)
    assert rc == 0, broken
    # An unreadable stamp is no evidence of a converge (the module warns and goes on).
    assert broken["diagnosis"] == "healthy" and broken["last_converged_at"] is None
