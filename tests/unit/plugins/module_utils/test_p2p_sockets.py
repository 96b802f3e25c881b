# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/p2p_sockets.py on synthetic /proc trees."""

from __future__ import absolute_import, division, print_function

import errno
import os

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_proc, p2p_sockets

from p2p_fakes import DAEMON, TCP_HEADER, FakeProc, hex_v4, params

__metaclass__ = type


@pytest.fixture
def proc(tmp_path):
    return FakeProc(tmp_path / "proc")


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
    assert p2p_sockets._decode_hex_address(hex_addr) == expected


def test_decode_hex_address_rejects_bad_length():
    with pytest.raises(ValueError):
        p2p_sockets._decode_hex_address("0100")


@pytest.mark.parametrize("text, expected", [
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("[::1]", "::1"),
    ("0:0:0:0:0:0:0:1", "::1"),
    ("fe80::1%eth0", "fe80::1"),
    ("10.0.0.5", "10.0.0.5"),
])
def test_normalize_address(text, expected):
    assert p2p_sockets.normalize_address(text) == expected


def test_normalize_address_rejects_host_names():
    with pytest.raises(ValueError):
        p2p_sockets.normalize_address("localhost")


def test_parse_proc_net_tcp_keeps_listen_on_port_only():
    text = TCP_HEADER + "".join([
        "   0: 00000000:2242 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n",
        "   1: 0100007F:2242 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0 20 4 30 10 -1\n",
        "   2: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0\n",
        "   garbage line\n",
        "   3: ZZZZ:2242 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0 100 0 0 10 0\n",
    ])
    sockets = p2p_sockets.parse_proc_net_tcp(text, port=8770)
    assert sockets == [{"address": "0.0.0.0", "port": 8770, "family": "ipv4", "inode": 111, "uid": 0, "state": "0A"}]
    assert [s["inode"] for s in p2p_sockets.parse_proc_net_tcp(text)] == [111, 333]
    assert [s["inode"] for s in p2p_sockets.parse_proc_net_tcp(text, listen_only=False)] == [111, 222, 333]


# --------------------------------------------------------------------------- listeners

def test_listener_owner_found_through_fd_links_and_decoy_ignored(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_socket("127.0.0.1", 22, 5002)
    proc.add_process(100, DAEMON, sockets=[5001])
    proc.add_process(200, ["bash", "-c", "tail -f /var/log/ringrift/p2p.log | grep p2p_orchestrator"])
    proc.add_process(300, ["/usr/sbin/sshd", "-D"], sockets=[5002])
    found = p2p_sockets.find_listeners(8770, proc.root)
    assert found == [{"address": "0.0.0.0", "port": 8770, "family": "ipv4", "inode": 5001, "pid": 100, "pids": [100]}]


def test_listener_ipv6_dual_stack_and_bind_address(proc):
    proc.add_socket("127.0.0.1", 8770, 6001)
    proc.add_socket("::1", 8770, 6002)
    proc.add_socket("::ffff:10.0.0.5", 8770, 6003)
    proc.add_process(100, DAEMON, sockets=[6001, 6002, 6003])
    everything = p2p_sockets.find_listeners(8770, proc.root)
    assert [(item["address"], item["family"]) for item in everything] == [
        ("127.0.0.1", "ipv4"), ("::1", "ipv6"), ("::ffff:10.0.0.5", "ipv6")]
    assert [item["inode"] for item in p2p_sockets.find_listeners(8770, proc.root, bind_address="::1")] == [6002]
    assert [item["inode"] for item in p2p_sockets.find_listeners(8770, proc.root, bind_address="127.0.0.1")] == [6001]
    assert [item["inode"] for item in p2p_sockets.find_listeners(8770, proc.root, bind_address="10.0.0.5")] == [6003]
    assert p2p_sockets.find_listeners(8770, proc.root, bind_address="0.0.0.0") == []


def test_listener_ignores_non_listen_states(proc):
    proc.add_socket("127.0.0.1", 8770, 7001, state="01")  # ESTABLISHED
    proc.add_socket("127.0.0.1", 8770, 7002, state="06")  # TIME_WAIT
    proc.add_process(100, DAEMON, sockets=[7001])
    assert p2p_sockets.find_listeners(8770, proc.root) == []


def test_forked_workers_sharing_the_socket_report_the_parent(proc):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, DAEMON, sockets=[5001])
    proc.add_process(101, DAEMON, ppid=100, sockets=[5001])
    proc.add_process(102, DAEMON, ppid=101, sockets=[5001])
    found = p2p_sockets.find_listeners(8770, proc.root)
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

    monkeypatch.setattr(p2p_sockets.os, "listdir", listdir)
    scan = p2p_sockets.scan_listeners(8770, proc.root)
    assert scan["unreadable_fd_dirs"] == 1
    assert scan["listeners"][0]["pid"] is None
    assert scan["listeners"][0]["pids"] == []
    result = p2p_proc.inspect(params(proc))
    assert result["diagnosis"] == "owner_unknown"
    assert result["listening"] is True
    assert result["pid"] is None
    assert result["failed"] is True
    assert "the fds of 1 processes unreadable" in result["msg"]


def test_fd_links_unreadable_count_the_process(proc, monkeypatch):
    """Root without CAP_SYS_PTRACE (in a container) lists another uid's fd dir but reads no link."""
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, ["sleep", "100"])
    proc.add_process(4242, DAEMON, sockets=[5001])
    real_readlink = os.readlink
    blocked = os.path.join(proc.root, "4242")

    def readlink(path, *args, **kwargs):
        if str(path).startswith(blocked + os.sep) and "/fd/" in str(path):
            raise OSError(errno.EACCES, "Permission denied", path)
        return real_readlink(path, *args, **kwargs)

    monkeypatch.setattr(p2p_sockets.os, "readlink", readlink)
    scan = p2p_sockets.scan_listeners(8770, proc.root)
    assert scan["unreadable_fd_dirs"] == 1
    assert scan["listeners"][0]["pid"] is None
    result = p2p_proc.inspect(params(proc))
    assert result["diagnosis"] == "owner_unknown"
    assert "the fds of 1 processes unreadable" in result["msg"]


def test_fd_link_closed_during_the_scan_is_skipped(proc, monkeypatch):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(4242, DAEMON, sockets=[5001])
    real_readlink = os.readlink

    def readlink(path, *args, **kwargs):
        if str(path).endswith(os.sep + "0"):
            raise OSError(errno.ENOENT, "No such file or directory", path)
        return real_readlink(path, *args, **kwargs)

    monkeypatch.setattr(p2p_sockets.os, "readlink", readlink)
    scan = p2p_sockets.scan_listeners(8770, proc.root)
    assert scan["unreadable_fd_dirs"] == 0
    assert scan["listeners"][0]["pid"] == 4242


def test_missing_tcp6_file_is_tolerated(proc):
    os.remove(os.path.join(proc.root, "net", "tcp6"))
    proc.tcp.append("   0: %s:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9 1 0 100 0 0 10 0\n" % (
        hex_v4("0.0.0.0"), 8770))
    with open(os.path.join(proc.root, "net", "tcp"), "w") as handle:
        handle.write(TCP_HEADER + "".join(proc.tcp))
    assert [s["inode"] for s in p2p_sockets.read_listen_sockets(proc.root, port=8770)] == [9]


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
    assert p2p_sockets.addresses_overlap(left, right) is overlap
    assert p2p_sockets.addresses_overlap(right, left) is overlap  # symmetric


def test_unsupported_os_needs_linux_and_a_socket_table(tmp_path):
    assert p2p_sockets.unsupported_os(str(tmp_path), system="Darwin").startswith("Darwin: the collection manages Linux nodes only")
    assert p2p_sockets.unsupported_os(str(tmp_path), system="").startswith("an unknown operating system:")
    assert "is /proc mounted?" in p2p_sockets.unsupported_os(str(tmp_path), system="Linux")
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp6").write_text(TCP_HEADER)
    assert p2p_sockets.unsupported_os(str(tmp_path), system="Linux") is None
