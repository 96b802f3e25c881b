# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/service_manager.py: the one reader of systemd and supervisor."""

from __future__ import absolute_import, division, print_function

import os
import sys

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import converge_stamp, process, service_manager
from ansible_collections.ringrift.cluster.plugins.modules import node_audit

from p2p_fakes import DAEMON, FakeProc, FakeRunner

__metaclass__ = type


@pytest.fixture
def proc(tmp_path):
    return FakeProc(tmp_path / "proc")


SYSTEMCTL_ARGV = ["systemctl", "show", "ringrift-p2p.service", "-p", "LoadState", "-p", "ActiveState", "-p", "SubState",
                  "-p", "NRestarts", "-p", "MainPID", "-p", "UnitFileState", "-p", "NeedDaemonReload"]
SUPERVISOR_STATUS_ARGV = ["supervisorctl", "status", "ringrift-p2p"]
SUPERVISOR_ARGVS = [SUPERVISOR_STATUS_ARGV, ["supervisorctl", "pid", "ringrift-p2p"]]
SYSTEMD_RUNNING = ("LoadState=loaded\nActiveState=active\nSubState=running\nNRestarts=3\nMainPID=4242\n"
                   "UnitFileState=enabled\nNeedDaemonReload=no\n")


def test_read_service_systemd_main_pid():
    run = FakeRunner({"systemctl show": (0, "MainPID=4321\n", "")})
    view = service_manager.read_service("systemd", "ringrift-p2p", runner=run)
    assert (view["main_pid"], view["detail"]) == (4321, "MainPID=4321")
    assert run.calls == [SYSTEMCTL_ARGV]
    assert service_manager.read_service("systemd", "x", runner=FakeRunner({"systemctl show": (0, "MainPID=0\n", "")}))["main_pid"] == 0
    view = service_manager.read_service("systemd", "x", runner=FakeRunner({"systemctl show": (1, "", "System has not been booted with systemd")}))
    assert view["main_pid"] is None
    assert "not been booted" in view["detail"]


def test_read_service_supervisor_asks_for_the_pid_only_when_status_cannot_show_it():
    starting = FakeRunner({"supervisorctl status": (0, "ringrift-p2p   STARTING\n", ""), "supervisorctl pid": (0, "555\n", "")})
    view = service_manager.read_service("supervisor", "ringrift-p2p", runner=starting)
    assert (view["state"], view["main_pid"], view["answered"]) == ("STARTING", 555, True)
    assert starting.calls == SUPERVISOR_ARGVS
    stopping = FakeRunner({"supervisorctl status": (0, "ringrift-p2p   STOPPING\n", ""), "supervisorctl pid": (2, "", "refused")})
    view = service_manager.read_service("supervisor", "ringrift-p2p", runner=stopping)
    assert (view["state"], view["main_pid"], view["answered"]) == ("STOPPING", None, False)
    assert "supervisorctl pid did not answer" in view["detail"]


def test_read_service_none_and_unknown():
    assert service_manager.read_service("none", "x", runner=FakeRunner({}))["detail"] == "no service manager"
    with pytest.raises(ValueError):
        service_manager.read_service("upstart", "x", runner=FakeRunner({}))


def test_detect_service_manager(proc, monkeypatch):
    proc.add_process(1, ["/sbin/init"], ppid=0, comm="systemd")
    assert service_manager.detect_service_manager(proc.root) == "systemd"
    with open(os.path.join(proc.root, "1", "comm"), "w") as handle:
        handle.write("supervisord\n")
    assert service_manager.detect_service_manager(proc.root) == "supervisor"
    with open(os.path.join(proc.root, "1", "comm"), "w") as handle:
        handle.write("bash\n")
    monkeypatch.setattr(service_manager, "_which", lambda name, paths=None: None)
    assert service_manager.detect_service_manager(proc.root) == "none"
    monkeypatch.setattr(service_manager, "_which", lambda name, paths=None: "/usr/bin/" + name)
    assert service_manager.detect_service_manager(proc.root) == "supervisor"


# --------------------------------------------------------------------------- read_service: the one reader

def test_read_service_systemd_running_unit():
    view = service_manager.read_service("systemd", "ringrift-p2p", runner=FakeRunner({"systemctl show": (0, SYSTEMD_RUNNING, "")}))
    assert view == {"manager": "systemd", "answered": True, "installed": True, "state": "active/running", "restarts": 3,
                    "main_pid": 4242, "unit_file_state": "enabled", "need_daemon_reload": False, "rc": 0, "detail": "MainPID=4242"}


def test_read_service_systemd_unknown_unit_and_no_systemd():
    unknown = service_manager.read_service("systemd", "x", runner=FakeRunner({"systemctl show": (
        0, "LoadState=not-found\nActiveState=inactive\nSubState=dead\nNRestarts=0\nMainPID=0\nUnitFileState=\n"
           "NeedDaemonReload=no\n", "")}))
    assert (unknown["installed"], unknown["state"], unknown["main_pid"], unknown["unit_file_state"]) == (False, None, 0, None)
    down = service_manager.read_service("systemd", "x", runner=FakeRunner({"systemctl show": (1, "", "System has not been booted\n")}))
    assert (down["answered"], down["installed"], down["main_pid"], down["rc"], down["detail"]) == (
        False, False, None, 1, "System has not been booted")
    assert down["need_daemon_reload"] is None and down["unit_file_state"] is None


def test_read_service_keeps_a_full_unit_name():
    run = FakeRunner({"systemctl show": (0, SYSTEMD_RUNNING, "")})
    service_manager.read_service("systemd", "ringrift-p2p.service", runner=run)
    assert run.calls == [SYSTEMCTL_ARGV]


@pytest.mark.parametrize("status, installed, state, main_pid", [
    ((0, "ringrift-p2p   RUNNING   pid 777, uptime 0:03:12\n", ""), True, "RUNNING", 777),
    ((3, "ringrift-p2p   STOPPED   Dec 01 10:00 AM\n", ""), True, "STOPPED", 0),
    ((3, "ringrift-p2p   BACKOFF   Exited too quickly\n", ""), True, "BACKOFF", 0),
    ((4, "ringrift-p2p: ERROR (no such process)\n", ""), False, None, 0),
    ((2, "unix:///var/run/supervisor.sock no such file\n", ""), False, None, None),
])
def test_read_service_supervisor(status, installed, state, main_pid):
    run = FakeRunner({"supervisorctl pid": (1, "", ""), "supervisorctl status": status})
    view = service_manager.read_service("supervisor", "ringrift-p2p", runner=run)
    assert (view["installed"], view["state"], view["main_pid"], view["restarts"]) == (installed, state, main_pid, None)
    # A RUNNING program prints its pid and the others have none: one supervisorctl is the answer.
    assert run.calls == [SUPERVISOR_STATUS_ARGV]


def test_read_service_none_asks_nothing():
    run = FakeRunner({})
    view = service_manager.read_service("none", "ringrift-p2p", runner=run)
    assert (view["manager"], view["installed"], view["main_pid"], view["detail"]) == ("none", False, None, "no service manager")
    assert run.calls == []


class AuditModule(object):
    """What node_audit.audit() uses of AnsibleModule."""

    def warn(self, text):
        raise AssertionError("unexpected warning: %s" % text)

    def fail_json(self, **kwargs):
        raise AssertionError("fail_json: %s" % kwargs)


def audit_params(tmp_path, **overrides):
    values = dict((name, spec.get("default")) for name, spec in node_audit.ARGUMENT_SPEC.items())
    values.update(log_path=str(tmp_path / "p2p.log"), stamp_path=str(tmp_path / "converge-stamp.json"), health_path=None)
    values.update(overrides)
    return values


def test_the_callers_use_the_one_reader_and_the_audit_asks_once(proc, tmp_path, monkeypatch):
    """p2p_proc (owner check and the audit's service view) and converge_stamp (unit enabled) read systemd the same way."""
    readers = []
    real = service_manager.read_service

    def spy(manager, name="ringrift-p2p", runner=None, proc_root="/proc"):
        readers.append(manager)
        return real(manager, name, runner=runner, proc_root=proc_root)

    monkeypatch.setattr(service_manager, "read_service", spy)
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(4242, DAEMON, sockets=[5001])
    proc.add_process(1, ["/sbin/init"], comm="systemd")
    run = FakeRunner({"systemctl show": (0, SYSTEMD_RUNNING, "")})

    audit = node_audit.audit(AuditModule(), audit_params(tmp_path, service_manager="auto"), proc_root=proc.root, system="Linux", runner=run)
    reasons = converge_stamp._check_service({"listener": {"service_manager": "systemd", "service_name": "ringrift-p2p"}}, run)

    assert readers == ["systemd", "systemd"]
    assert run.calls == [SYSTEMCTL_ARGV] * 2
    assert (audit["managed_pid"], audit["diagnosis"]) == (4242, "healthy")
    assert audit["service"] == {"manager": "systemd", "installed": True, "state": "active/running", "restarts": 3, "main_pid": 4242}
    assert reasons == []


def test_the_service_summary_hides_the_pid_of_a_program_the_manager_does_not_know():
    run = FakeRunner({"supervisorctl pid": (1, "", ""), "supervisorctl status": (4, "ringrift-p2p: ERROR (no such process)\n", "")})
    assert service_manager.summary(service_manager.read_service("supervisor", "ringrift-p2p", runner=run)) == {
        "manager": "supervisor", "installed": False, "state": None, "restarts": None, "main_pid": None}


# --------------------------------------------------------------------------- bounded_runner: the one runner

def test_bounded_runner_runs_with_c_locale_and_no_pager():
    seen = {}

    def run(argv, seconds, env=None):
        seen.update(argv=argv, seconds=seconds, env=env)
        return 0, "MainPID=1\n", "", False

    runner = service_manager.bounded_runner(7, run=run)
    assert runner([sys.executable, "-V"]) == (0, "MainPID=1\n", "")
    assert seen["argv"] == [sys.executable, "-V"] and seen["seconds"] == 7
    assert seen["env"]["LC_ALL"] == "C" and seen["env"]["SYSTEMD_PAGER"] == ""


def test_bounded_runner_missing_command_and_timeout():
    assert service_manager.bounded_runner()(["no-such-manager-ctl", "status"]) == (
        127, "", "no-such-manager-ctl not found on this host")
    late = service_manager.bounded_runner(3, run=lambda argv, seconds, env=None: (process.TIMED_OUT_RC, "part", "", True))
    assert late([sys.executable]) == (124, "part", "timed out after 3s")


def test_bounded_runner_really_runs_and_really_stops():
    assert service_manager.bounded_runner()([sys.executable, "-c", "print('up')"]) == (0, "up\n", "")
    rc, dummy_out, err = service_manager.bounded_runner(0.5)([sys.executable, "-c", "import time; time.sleep(30)"])
    assert (rc, err) == (124, "timed out after 0.5s")


def test_find_binary_also_searches_the_sbin_directories(tmp_path, monkeypatch):
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    tool = sbin / "fakectl"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(service_manager, "_EXTRA_BIN_DIRS", (str(sbin),))
    assert service_manager.find_binary("fakectl") == str(tool)
    assert service_manager.find_binary("/abs/fakectl") == "/abs/fakectl"
    assert service_manager.find_binary("missingctl") is None
