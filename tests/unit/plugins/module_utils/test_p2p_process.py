# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/p2p_process.py on synthetic /proc trees."""

from __future__ import absolute_import, division, print_function

import os

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_process

from p2p_fakes import BTIME, DAEMON, FakeProc

__metaclass__ = type


@pytest.fixture
def proc(tmp_path):
    return FakeProc(tmp_path / "proc")


# --------------------------------------------------------------------------- processes

def test_process_info_reads_cmdline_exe_user_ppid_start(proc):
    ticks = p2p_process.clock_ticks()
    proc.add_process(100, DAEMON, ppid=77, uid=0, starttime=250 * ticks, comm="python (x) y")
    info = p2p_process.process_info(100, proc.root, now=BTIME + 1000)
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
    info = p2p_process.process_info(100, proc.root)
    assert info["user"] == "54321"
    assert info["exe"] is None
    assert p2p_process.process_info(999, proc.root) is None


def test_cmdline_keeps_arguments_with_spaces_and_empty_cmdline(proc):
    proc.add_process(100, ["python", "-c", "import time; time.sleep(9)", "p2p_orchestrator"])
    assert p2p_process.process_info(100, proc.root)["cmdline"] == [
        "python", "-c", "import time; time.sleep(9)", "p2p_orchestrator"]
    with open(os.path.join(proc.root, "100", "cmdline"), "wb"):
        pass
    assert p2p_process.process_info(100, proc.root)["cmdline"] == []


def test_is_descendant_walks_ppid_chain(proc):
    proc.add_process(10, ["/usr/bin/supervisord"], ppid=1)
    proc.add_process(20, ["/bin/sh", "-c", "exec python"], ppid=10)
    proc.add_process(30, DAEMON, ppid=20)
    proc.add_process(40, DAEMON, ppid=1)
    assert p2p_process.ancestors(30, proc.root) == [20, 10, 1]
    assert p2p_process.is_descendant(30, 10, proc.root) is True
    assert p2p_process.is_descendant(30, 30, proc.root) is True
    assert p2p_process.is_descendant(40, 10, proc.root) is False
    assert p2p_process.is_descendant(None, 10, proc.root) is False


@pytest.mark.parametrize("cmdline, name, expected", [
    (DAEMON, "node-id", "gpu-01"),
    (DAEMON, "port", "8770"),
    (["p", "--port=9000"], "port", "9000"),
    (["p", "--port", "1", "--port", "2"], "port", "2"),
    (["p", "--port"], "port", None),
    (["p", "--portal", "3"], "port", None),
])
def test_cmdline_option(cmdline, name, expected):
    assert p2p_process.cmdline_option(cmdline, name) == expected
