# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/p2p_proc.py (the verdict) on synthetic /proc trees."""

from __future__ import absolute_import, division, print_function

import os
import shutil

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_proc, p2p_process, p2p_sockets

from p2p_fakes import DAEMON, TRACEBACK_LOG, FakeProc, FakeRunner, http_servers, params, start_http_server, write

__metaclass__ = type


@pytest.fixture
def proc(tmp_path):
    return FakeProc(tmp_path / "proc")


@pytest.fixture
def http_server():
    """``start(**kwargs) -> port`` of a loopback health server; all stop with the test."""
    yield from http_servers()


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
    systemd = FakeRunner({"systemctl show": (0, "MainPID=50\n", "")})
    stray = p2p_proc.inspect(params(proc, service_manager="systemd"), runner=systemd)
    assert stray["diagnosis"] == "unmanaged"
    assert stray["managed_pid"] == 50
    assert stray["pid"] == 90
    assert stray["service_manager"] == "systemd"
    assert stray["failed"] is True
    assert "main PID 50" in stray["msg"]
    # the managed child holding the port is fine
    managed = FakeRunner({"systemctl show": (0, "MainPID=50\n", "")})
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
                              runner=FakeRunner({"supervisorctl status": (3, "ringrift-p2p   STOPPED   Dec 01 10:00 AM\n", "")}))
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
    run = FakeRunner({"systemctl show": (0, "MainPID=90\n", "")})
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


@pytest.mark.parametrize("bad", [
    {"health_path": "/health HTTP/1.0\r\nX-Injected: 1"},
    {"health_timeout": 0},
    {"python": "venv/bin/python"},
    {"script": "-c"},
    # Would reach systemctl/supervisorctl as an option or a glob.
    {"service_name": "--all", "service_manager": "systemd"},
    {"service_name": "ringrift-*", "service_manager": "supervisor"},
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
    result = p2p_proc.inspect(params(proc, service_manager="systemd"), runner=FakeRunner({"systemctl show": (0, "MainPID=100\n", "")}))
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
    result = p2p_proc.inspect(params(proc, service_manager="systemd"), runner=FakeRunner({"systemctl show": (0, "MainPID=50\n", "")}))
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
    server = start_http_server(body={"healthy": True, "node_id": "gpu-01"}, host="127.0.0.2")
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
    real = p2p_process.process_info
    calls = []

    def exits_first(pid, proc_root="/proc", now=None):
        calls.append(pid)
        if len(calls) == 1:  # the daemon exits right after the socket scan saw it
            proc.tcp = []
            proc.flush()
            shutil.rmtree(os.path.join(proc.root, "100"))
            return None
        return real(pid, proc_root, now)

    monkeypatch.setattr(p2p_process, "process_info", exits_first)
    result = p2p_proc.inspect(params(proc))
    assert result["diagnosis"] == "not_listening", result["msg"]
    assert result["listening"] is False


def test_holder_that_exits_while_another_keeps_the_socket(proc, monkeypatch):
    proc.add_socket("0.0.0.0", 8770, 5001)
    proc.add_process(100, DAEMON, sockets=[5001])
    proc.add_process(101, DAEMON, ppid=100, sockets=[5001])
    real = p2p_process.process_info

    def parent_gone(pid, proc_root="/proc", now=None):
        return None if pid == 100 else real(pid, proc_root, now)

    monkeypatch.setattr(p2p_process, "process_info", parent_gone)
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
    assert p2p_sockets.find_listeners(8770, proc.root)[0]["pids"] == [100]
    info = p2p_process.process_info(100, proc.root)
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
