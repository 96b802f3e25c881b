# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by tests/unit and tests/integration.

Imported as ``ansible_collections.ringrift.cluster.tests.helpers`` (tests/conftest.py puts
``collections/``, whose ``ansible_collections/ringrift/cluster`` is this checkout, on sys.path).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import signal
import socket
import subprocess
import sys
import time

import yaml

# Imported through the collections/ symlink: the real checkout, as the tests' own paths name it.
REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
ANSIBLE_CFG = os.path.join(REPO, "ansible.cfg")
# The toolchain of the interpreter running the tests (ansible, ansible-playbook, ansible-inventory).
BIN = os.path.dirname(sys.executable)
PYTHON = os.path.join(BIN, "python")
ANSIBLE = os.path.join(BIN, "ansible")
ANSIBLE_PLAYBOOK = os.path.join(BIN, "ansible-playbook")


def ansible_env(tmp_path=None, **extra):
    """The environment of an Ansible subprocess run as an operator runs it from this checkout.

    This checkout's ``ansible.cfg`` (its collections_path resolves ``ringrift.cluster`` to the
    tree under test, and it enables the dry-run callback), no colour codes in the output, the
    toolchain of this interpreter first on PATH. With ``tmp_path``, Ansible's local and remote
    temporary files go under it rather than into the user's ``~/.ansible``. ``extra`` is set last
    (``RINGRIFT_REPORT_DIR``, ``ANSIBLE_TIMEOUT``, ...).
    """
    env = dict(os.environ, ANSIBLE_CONFIG=ANSIBLE_CFG, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = BIN + os.pathsep + os.environ.get("PATH", "")
    if tmp_path is not None:
        env["ANSIBLE_LOCAL_TEMP"] = os.path.join(str(tmp_path), "ansible-local")
        env["ANSIBLE_REMOTE_TEMP"] = os.path.join(str(tmp_path), "ansible-remote")
    env.update(extra)
    return env


# --------------------------------------------------------------------------- playbooks on localhost

def write_inventory(path, hosts):
    """A YAML inventory at ``path``: ``hosts`` (name -> variables), every one on the local connection."""
    inventory = {"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "hosts": hosts,
    }}
    path.write_text(yaml.safe_dump(inventory, default_flow_style=False))
    return str(path)


def write_play(tmp_path, tasks, name="play.yml"):
    """A playbook of one play on all hosts, without facts, running ``tasks``; returns its path."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump([{"name": "test", "hosts": "all", "gather_facts": False, "tasks": tasks}],
                                   default_flow_style=False, sort_keys=False))
    return str(path)


def ansible_playbook(tmp_path, inventory, playbook, *extra, **env_extra):
    """Run ansible-playbook from the repository root; stderr merged into stdout unless split_stderr=True.

    The dry-run callback's reports go to ``tmp_path/dry-run-reports`` unless ``RINGRIFT_REPORT_DIR`` is given.
    """
    split = env_extra.pop("split_stderr", False)
    env_extra.setdefault("RINGRIFT_REPORT_DIR", str(tmp_path / "dry-run-reports"))
    env = ansible_env(tmp_path, ANSIBLE_RETRY_FILES_ENABLED="0", **env_extra)
    cmd = [ANSIBLE_PLAYBOOK, "-i", inventory, playbook] + list(extra)
    return subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE if split else subprocess.STDOUT, check=False,
                          universal_newlines=True, timeout=300)


def only(pattern):
    """The one file matching ``pattern`` (fails when there are none or several)."""
    found = glob.glob(pattern)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- live processes on loopback

STANDIN = os.path.join(REPO, "tests", "fixtures", "ai-service", "scripts", "p2p_orchestrator.py")
# Started as the service starts it: PYTHONPATH the service directory (the stand-in, like the
# real daemon, imports its own package first) and an advertise host (no Tailscale wait).
STANDIN_ENV = {"PYTHONPATH": os.path.dirname(os.path.dirname(STANDIN)), "RINGRIFT_P2P_ADVERTISE_HOST": "127.0.0.1"}


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host="127.0.0.1"):
    """A port nothing listens on right now, on a loopback address (IPv4 or IPv6)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


def port_open(host, port):
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.settimeout(0.5)
    try:
        return sock.connect_ex((host, port)) == 0
    finally:
        sock.close()


def wait_listening(proc, host, port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("process %s exited with %s before listening on %s:%s" % (proc.args, proc.returncode, host, port))
        if port_open(host, port):
            return
        time.sleep(0.1)
    raise AssertionError("%s did not listen on %s:%s within %ss" % (proc.args, host, port, timeout))


def wait_port_free(host, port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not port_open(host, port):
            return
        time.sleep(0.1)
    raise AssertionError("port %s:%s still open after %ss" % (host, port, timeout))


def stop(proc):
    """Stop a process started in its own session by a test: SIGTERM to its group, then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session, started by this test
    except OSError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait(timeout=5)
