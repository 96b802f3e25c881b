# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/p2p_watchdog/files/p2p_watchdog.py: the check the p2p_watchdog role ships to nodes.

The script is imported by path (it is a role file, not a plugin). Its decision logic is
tested as a pure function, the probe against real loopback sockets (an answering server, a
listener that never answers like a SIGSTOPped daemon, a server that drips bytes), and one
check end to end with a fake service manager. The role's own argument check and settings
template run through a real ansible-playbook on localhost (no host is changed).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.ringrift.cluster.tests.helpers import ANSIBLE_PLAYBOOK, ansible_env, free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(REPO, "roles", "p2p_watchdog")
SCRIPT = os.path.join(ROLE, "files", "p2p_watchdog.py")


def _load_script():
    spec = importlib.util.spec_from_file_location("p2p_watchdog_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wd = _load_script()


def settings(tmp_path=None, **overrides):
    base = tmp_path or "/nonexistent"
    config = {
        "port": 8770, "probe_host": "127.0.0.1", "health_path": "/health", "service_name": "ringrift-p2p",
        "manager": "systemd", "supervisor_config": "/etc/supervisor/supervisord.conf",
        "interval": 30, "failures": 3, "cooldown": 300, "start_grace": 120, "probe_timeout": 5.0,
        "restart_timeout": 90, "log_file": "%s/log/watchdog.log" % base, "log_max_bytes": 1048576,
        "state_file": "%s/state/watchdog-state.json" % base,
    }
    config.update(overrides)
    return config


def state(pid=None, failures=0, last_restart=None):
    return {"pid": pid, "failures": failures, "last_restart": last_restart}


# --------------------------------------------------------------------------- decide

NOW = 1000000.0
OLD = 3600.0  # seconds: well past the start grace


def test_healthy_daemon_resets_the_count_and_logs_nothing():
    action, new, message = wd.decide(state(42, 0), 42, OLD, True, "HTTP/1.1 200 OK", NOW, settings())
    assert (action, new, message) == ("healthy", state(42, 0), None)


def test_recovery_after_failures_is_logged_once():
    action, new, message = wd.decide(state(42, 2), 42, OLD, True, "HTTP/1.1 200 OK", NOW, settings())
    assert action == "healthy" and new["failures"] == 0
    assert message.startswith("recovered: pid 42") and "2 failed probe(s)" in message


def test_no_main_pid_is_the_managers_business_not_a_failure():
    action, new, message = wd.decide(state(42, 2, NOW - 5), None, None, False, "", NOW, settings())
    assert action == "not_running" and message is None
    assert new == state(None, 0, NOW - 5), "the last restart (cool-down) survives, the count does not"


def test_failures_count_up_to_the_threshold_then_restart():
    config = settings(failures=3)
    current = state()
    actions = []
    for dummy in range(3):
        action, current, message = wd.decide(current, 42, OLD, False, "no answer within 5s", NOW, config)
        actions.append(action)
    assert actions == ["failure", "failure", "restart"]
    assert current == state(42, 0, NOW)
    assert message.startswith("restart: pid 42 failed /health on port 8770 3 time(s) in a row (no answer within 5s)")
    assert message.endswith("; systemctl restart ringrift-p2p.service")


def test_one_failure_is_enough_when_the_threshold_is_one():
    action, new, dummy = wd.decide(state(), 42, OLD, False, "Connection refused", NOW, settings(failures=1))
    assert action == "restart" and new["last_restart"] == NOW


def test_a_daemon_within_its_start_grace_is_left_alone():
    config = settings(failures=1, start_grace=120)
    action, new, message = wd.decide(state(42, 0), 42, 30.0, False, "Connection refused", NOW, config)
    assert action == "grace" and new["failures"] == 0
    assert message == "grace: pid 42 is 30s old (start grace 120s), not a failure: Connection refused"
    # Just past the grace, the same probe counts.
    assert wd.decide(state(42, 0), 42, 120.0, False, "Connection refused", NOW, config)[0] == "restart"


def test_an_unknown_age_is_not_taken_as_young():
    assert wd.decide(state(42, 2), 42, None, False, "x", NOW, settings())[0] == "restart"


def test_a_new_pid_starts_a_new_count():
    action, new, dummy = wd.decide(state(41, 2), 42, OLD, False, "x", NOW, settings(failures=3))
    assert action == "failure" and new == state(42, 1)


def test_cool_down_holds_the_restart_but_keeps_counting():
    config = settings(failures=2, cooldown=300)
    action, new, message = wd.decide(state(42, 1, NOW - 100), 42, OLD, False, "x", NOW, config)
    assert action == "cooldown" and new == state(42, 2, NOW - 100)
    assert message.startswith("cooldown: pid 42") and "(100s ago)" in message
    # Still failing when the cool-down is over: restart at once.
    action, new, dummy = wd.decide(new, 42, OLD, False, "x", NOW + 200, config)
    assert action == "restart" and new == state(42, 0, NOW + 200)


def test_a_clock_stepped_back_ends_the_cool_down():
    action, dummy, dummy2 = wd.decide(state(42, 5, NOW + 3600), 42, OLD, False, "x", NOW, settings(failures=2))
    assert action == "restart"


def test_zero_cool_down_never_holds():
    assert wd.decide(state(42, 5, NOW), 42, OLD, False, "x", NOW, settings(failures=2, cooldown=0))[0] == "restart"


def test_supervisor_restart_command():
    config = settings(manager="supervisor", failures=1)
    dummy, dummy2, message = wd.decide(state(), 42, OLD, False, "x", NOW, config)
    assert message.endswith("; supervisorctl -c /etc/supervisor/supervisord.conf restart ringrift-p2p")


# --------------------------------------------------------------------------- probe (loopback)

def _serve(handler):
    """A loopback listener whose every connection is given to handler(conn) in a thread."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def accept_loop():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, dummy = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=handler, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    return server, stop


@pytest.fixture
def serve():
    opened = []

    def start(handler):
        server, stop = _serve(handler)
        opened.append((server, stop))
        return server.getsockname()[1]

    yield start
    for server, stop in opened:
        stop.set()
        server.close()


def _answer(status):
    def handler(conn, stop):
        with conn:
            conn.recv(4096)
            conn.sendall(("HTTP/1.1 %s\r\nContent-Type: application/json\r\n\r\n{}" % status).encode())
    return handler


def test_probe_accepts_an_http_answer(serve):
    port = serve(_answer("200 OK"))
    assert wd.probe("127.0.0.1", port, "/health", 2.0) == (True, "HTTP/1.1 200 OK")


def test_probe_counts_any_http_status_as_an_answer(serve):
    port = serve(_answer("503 Service Unavailable"))
    assert wd.probe("127.0.0.1", port, "/health", 2.0) == (True, "HTTP/1.1 503 Service Unavailable")


def test_probe_sends_the_health_path(serve):
    seen = []

    def handler(conn, stop):
        with conn:
            seen.append(conn.recv(4096))
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n")
    port = serve(handler)
    assert wd.probe("127.0.0.1", port, "/health", 2.0)[0]
    assert seen[0].startswith(b"GET /health HTTP/1.0\r\n")


def test_probe_of_a_listener_that_never_answers_fails_within_its_deadline():
    # What a SIGSTOPped or blocked daemon looks like: the kernel completes the handshake
    # (the socket listens), nobody ever reads or writes.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        started = time.monotonic()
        ok, detail = wd.probe("127.0.0.1", listener.getsockname()[1], "/health", 0.5)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert (ok, detail) == (False, "no answer within 0.5s")
    assert 0.4 < elapsed < 1.5


def test_probe_deadline_is_total_not_per_read(serve):
    # One byte every 0.2 s, never a full line: every single read succeeds in time.
    def handler(conn, stop):
        with conn:
            conn.recv(4096)
            for dummy in range(50):
                if stop.is_set():
                    return
                try:
                    conn.sendall(b"H")
                except OSError:
                    return
                time.sleep(0.2)
    port = serve(handler)
    started = time.monotonic()
    ok, detail = wd.probe("127.0.0.1", port, "/health", 1.0)
    elapsed = time.monotonic() - started
    assert (ok, detail) == (False, "no answer within 1s")
    assert elapsed < 2.0


def test_probe_of_a_closed_port_fails():
    ok, detail = wd.probe("127.0.0.1", free_port(), "/health", 1.0)
    assert not ok and "refused" in detail.lower()


def test_probe_rejects_an_answer_that_is_not_http(serve):
    def handler(conn, stop):
        with conn:
            conn.recv(4096)
            conn.sendall(b"SSH-2.0-OpenSSH\r\n")
    port = serve(handler)
    ok, detail = wd.probe("127.0.0.1", port, "/health", 1.0)
    assert not ok and detail.startswith("not an HTTP answer")


def test_probe_of_a_connection_closed_without_answer_fails(serve):
    def handler(conn, stop):
        conn.recv(4096)
        conn.close()
    port = serve(handler)
    assert wd.probe("127.0.0.1", port, "/health", 1.0) == (False, "connection closed before an HTTP answer")


# --------------------------------------------------------------------------- manager and /proc

def _runner(answers, calls=None):
    def run(argv, timeout):
        if calls is not None:
            calls.append((list(argv), timeout))
        return answers[argv[1] if argv[0] == "systemctl" else argv[3]]
    return run


@pytest.mark.parametrize("answer, expected", [
    ((0, "1234"), 1234),
    ((0, "0"), None),                          # systemd: unit not running
    ((1, "ringrift-p2p: ERROR (no such process)"), None),
    ((None, "systemctl did not finish within 10s"), None),
    ((0, ""), None),
])
def test_main_pid(answer, expected):
    assert wd.main_pid(settings(), _runner({"show": answer})) == expected


def test_main_pid_asks_supervisorctl_with_its_config():
    calls = []
    assert wd.main_pid(settings(manager="supervisor"), _runner({"pid": (0, "77\n")}, calls)) == 77
    assert calls == [(["supervisorctl", "-c", "/etc/supervisor/supervisord.conf", "pid", "ringrift-p2p"], 10)]


def test_run_command_has_a_deadline():
    started = time.monotonic()
    rc, output = wd.run_command([sys.executable, "-c", "import time; time.sleep(10)"], 0.5)
    assert rc is None and "did not finish within 0.5s" in output
    assert time.monotonic() - started < 5


def test_process_age_from_proc(tmp_path):
    (tmp_path / "uptime").write_text("5000.00 100.00\n")
    (tmp_path / "42").mkdir()
    # comm with a space and a ')' in it; starttime (field 22) = 400000 ticks.
    fields = ["S"] + ["0"] * 18 + ["400000"] + ["0"] * 10
    (tmp_path / "42" / "stat").write_text("42 (p2p (x) y) %s\n" % " ".join(fields))
    expected = 5000.0 - 400000 / float(os.sysconf("SC_CLK_TCK"))
    assert wd.process_age(42, str(tmp_path)) == pytest.approx(max(0.0, expected))
    assert wd.process_age(43, str(tmp_path)) is None


def test_process_age_of_this_process_is_small_and_positive():
    age = wd.process_age(os.getpid())
    assert age is not None and 0 <= age < 24 * 3600


# --------------------------------------------------------------------------- settings file

def _write(tmp_path, config):
    path = tmp_path / "watchdog.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_load_config_accepts_the_full_settings(tmp_path):
    assert wd.load_config(_write(tmp_path, settings())) == settings()


@pytest.mark.parametrize("change, words", [
    ({"port": 0}, "'port' must be at least 1"),
    ({"port": 70000}, "port 70000 must be 1..65535"),
    ({"port": "8770"}, "'port' must be a number"),
    ({"failures": True}, "'failures' must be a number"),
    ({"interval": 2.5}, "'interval' must be a number"),
    ({"manager": "runit"}, "manager 'runit' must be one of systemd, supervisor"),
    ({"service_name": "ringrift p2p"}, "service_name 'ringrift p2p' must be a unit name"),
    ({"log_file": "relative/watchdog.log"}, "log_file 'relative/watchdog.log' must be an absolute path"),
    ({"health_path": "/health\n"}, "health_path '/health\\n' must be an absolute path"),
    ({"probe_timeout": 30}, "probe_timeout 30.0 must be shorter than interval 30"),
    ({"probe_host": "-oProxy"}, "probe_host '-oProxy' must be a host name"),
])
def test_load_config_names_the_bad_field(tmp_path, change, words):
    with pytest.raises(wd.ConfigError) as err:
        wd.load_config(_write(tmp_path, settings(**change)))
    assert words in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_load_config_requires_every_setting(tmp_path):
    config = settings()
    del config["cooldown"]
    with pytest.raises(wd.ConfigError, match="setting 'cooldown' is missing"):
        wd.load_config(_write(tmp_path, config))


def test_load_config_of_a_broken_file(tmp_path):
    path = tmp_path / "watchdog.json"
    path.write_text("{not json")
    with pytest.raises(wd.ConfigError, match="cannot read settings"):
        wd.load_config(str(path))


# --------------------------------------------------------------------------- state and log

def test_state_file_is_private_and_round_trips(tmp_path):
    path = str(tmp_path / "state" / "watchdog-state.json")
    wd.save_state(path, state(42, 2, NOW))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert wd.load_state(path) == state(42, 2, NOW)
    assert os.listdir(str(tmp_path / "state")) == ["watchdog-state.json"], "no temporary file left behind"


@pytest.mark.parametrize("content", ["", "[]", "{bad", '{"pid": "42", "failures": -1, "last_restart": true}'])
def test_unreadable_state_starts_fresh(tmp_path, content):
    path = tmp_path / "s.json"
    path.write_text(content)
    assert wd.load_state(str(path)) == state()


def test_log_lines_are_timestamped(tmp_path):
    path = str(tmp_path / "log" / "watchdog.log")
    wd.log_line(path, "first", NOW, 0)
    wd.log_line(path, "second", NOW + 1, 0)
    with open(path) as handle:
        lines = handle.read().splitlines()
    assert len(lines) == 2
    assert re.match(r"^1970-01-12T13:46:40Z ringrift-p2p-watchdog\[\d+\]: first$", lines[0])
    assert re.match(r"^1970-01-12T13:46:41Z ringrift-p2p-watchdog\[\d+\]: second$", lines[1])


def test_log_moves_to_dot_one_past_its_size(tmp_path):
    path = str(tmp_path / "watchdog.log")
    wd.log_line(path, "first", NOW, 40)  # one line is longer than 40 bytes
    wd.log_line(path, "second", NOW, 40)
    wd.log_line(path, "third", NOW, 40)
    with open(path + ".1") as handle:
        assert handle.read().splitlines()[-1].endswith(": second"), "only one old copy is kept"
    with open(path) as handle:
        assert [line.rsplit(": ", 1)[1] for line in handle.read().splitlines()] == ["third"]


# --------------------------------------------------------------------------- one check end to end

class FakeManager:
    """systemctl / supervisorctl stand-in: a main PID that a restart replaces."""

    def __init__(self, pid, restart_answer=(0, "")):
        self.pid = pid
        self.restart_answer = restart_answer
        self.calls = []

    def __call__(self, argv, timeout):
        self.calls.append(list(argv))
        if "restart" in argv:
            if self.restart_answer[0] == 0:
                self.pid += 1
            return self.restart_answer
        return 0, str(self.pid)


def _log(config):
    with open(config["log_file"]) as handle:
        return handle.read().splitlines()


def _hung(host, port, path, timeout):
    return False, "no answer within 5s"


def _old(pid):
    return OLD


def test_check_once_restarts_after_consecutive_failures_and_then_cools_down(tmp_path):
    config = settings(str(tmp_path), failures=2, cooldown=300)
    manager = FakeManager(100)

    assert wd.check_once(config, NOW, manager, _hung, _old) == "failure"
    assert wd.check_once(config, NOW + 30, manager, _hung, _old) == "restart"
    assert ["systemctl", "restart", "ringrift-p2p.service"] in manager.calls
    lines = _log(config)
    assert lines[-2].split(": ", 1)[1].startswith("restart: pid 100 failed /health")
    assert lines[-1].endswith("restart done: pid 100 -> 101")
    assert wd.load_state(config["state_file"]) == state(101, 0, NOW + 30)
    assert stat.S_IMODE(os.stat(config["state_file"]).st_mode) == 0o600

    # The new daemon hangs too, right away: counted, but held back by the cool-down.
    restarts = manager.calls.count(["systemctl", "restart", "ringrift-p2p.service"])
    assert wd.check_once(config, NOW + 60, manager, _hung, _old) == "failure"
    assert wd.check_once(config, NOW + 90, manager, _hung, _old) == "cooldown"
    assert manager.calls.count(["systemctl", "restart", "ringrift-p2p.service"]) == restarts
    # After the cool-down, the next failure restarts.
    assert wd.check_once(config, NOW + 30 + 301, manager, _hung, _old) == "restart"


def test_check_once_leaves_a_young_daemon_alone(tmp_path):
    config = settings(str(tmp_path), failures=1, start_grace=120)
    manager = FakeManager(100)
    for offset in range(0, 100, 10):
        action = wd.check_once(config, NOW + offset, manager, lambda *a: (False, "Connection refused"), lambda pid: 5.0 + offset)
        assert action == "grace"
    assert not [call for call in manager.calls if "restart" in call]
    assert all(": grace: pid 100 is " in line for line in _log(config))


def test_check_once_logs_a_failed_restart(tmp_path):
    config = settings(str(tmp_path), failures=1, manager="supervisor")
    manager = FakeManager(100, restart_answer=(7, "ringrift-p2p: ERROR (spawn error)"))
    assert wd.check_once(config, NOW, manager, lambda *a: (False, "x"), lambda pid: OLD) == "restart"
    assert _log(config)[-1].endswith("restart FAILED (rc 7): pid 100 -> 100: ringrift-p2p: ERROR (spawn error)")
    # The cool-down holds after a failed restart as well: no restart storm.
    assert wd.load_state(config["state_file"])["last_restart"] == NOW


def test_the_restart_is_recorded_before_it_runs(tmp_path):
    # A watchdog killed during a long restart (the manager waiting out its stop timeout)
    # must still find the cool-down on its next start.
    config = settings(str(tmp_path), failures=1)
    seen = []

    class Recording(FakeManager):
        def __call__(self, argv, timeout):
            if "restart" in argv:
                seen.append(wd.load_state(config["state_file"]))
            return FakeManager.__call__(self, argv, timeout)

    assert wd.check_once(config, NOW, Recording(100), _hung, _old) == "restart"
    assert seen == [state(100, 0, NOW)]


def test_check_once_does_not_probe_without_a_main_pid(tmp_path):
    config = settings(str(tmp_path))

    def must_not_probe(*args):
        raise AssertionError("probed a daemon the manager does not run")
    assert wd.check_once(config, NOW, FakeManager(0), must_not_probe, lambda pid: OLD) == "not_running"
    assert not os.path.exists(config["log_file"])


def test_healthy_checks_write_nothing(tmp_path):
    config = settings(str(tmp_path))
    wd.save_state(config["state_file"], state(100, 0))
    before = os.stat(config["state_file"]).st_mtime_ns
    time.sleep(0.01)
    assert wd.check_once(config, NOW, FakeManager(100), lambda *a: (True, "HTTP/1.1 200 OK"), lambda pid: OLD) == "healthy"
    assert os.stat(config["state_file"]).st_mtime_ns == before
    assert not os.path.exists(config["log_file"])


def test_script_once_mode_refuses_a_bad_settings_file(tmp_path):
    path = _write(tmp_path, settings(manager="runit"))
    proc = subprocess.run([sys.executable, SCRIPT, "--config", path, "--once"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30, check=False)
    assert proc.returncode == 2
    assert b"manager 'runit' must be one of systemd, supervisor" in proc.stderr


# --------------------------------------------------------------------------- the role (real ansible-playbook, localhost)

def _playbook(tmp_path, body, extra_vars):
    playbook = tmp_path / "play.yml"
    playbook.write_text(body)
    env = ansible_env(ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
                      RINGRIFT_REPORT_DIR=str(tmp_path / "reports"))
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", json.dumps(extra_vars), str(playbook)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO, env=env, timeout=300, check=False)


ROLE_PLAY = """
- hosts: all
  gather_facts: false
  roles:
    - ringrift.cluster.p2p_watchdog
"""


@pytest.mark.parametrize("bad, words", [
    ({"p2p_watchdog_failures": 0}, "p2p_watchdog_failures '0' must be a whole number, at least 1"),
    ({"p2p_watchdog_probe_timeout": 30}, "p2p_watchdog_probe_timeout 30 must be shorter than p2p_watchdog_interval 30"),
    ({"p2p_watchdog_log_file": "/var/log/ring rift.log"}, "p2p_watchdog_log_file '/var/log/ring rift.log' must be an absolute path"),
    ({"p2p_watchdog_name": "ringrift-p2p"}, "p2p_watchdog_name 'ringrift-p2p' must differ"),
])
def test_role_refuses_bad_settings_before_writing_anything(tmp_path, bad, words):
    proc = _playbook(tmp_path, ROLE_PLAY, bad)
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode != 0, out
    assert "p2p_watchdog on localhost: invalid settings, nothing written" in out
    assert words in out, out
    assert "Read the name of PID 1" not in out, "the role went on after a failed check"


def test_role_refuses_a_bad_contract_value_before_writing_anything(tmp_path):
    """The daemon's own settings (port, ...) are the contract's, validated there for every role."""
    proc = _playbook(tmp_path, ROLE_PLAY, {"ringrift_p2p_port": 99999})
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode != 0, out
    assert "localhost: invalid daemon settings, nothing written" in out
    assert "ringrift_p2p_port '99999' must be an integer 1..65535" in out, out
    assert "Read the name of PID 1" not in out, "the role went on after a failed check"


@pytest.mark.parametrize("bad, words", [
    ({"p2p_watchdog_interval": "ten"}, "argument 'p2p_watchdog_interval' is of type str and we were unable to convert to int"),
    ({"p2p_watchdog_service_manager": "runit"}, "value of p2p_watchdog_service_manager must be one of: auto, systemd, supervisor"),
])
def test_role_argument_spec_refuses_wrong_types_and_choices(tmp_path, bad, words):
    proc = _playbook(tmp_path, ROLE_PLAY, bad)
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode != 0 and "Validation of arguments failed" in out and words in out, out
    assert "Read the name of PID 1" not in out


def test_role_settings_template_is_what_the_script_reads(tmp_path):
    dest = tmp_path / "watchdog.json"
    body = """
- hosts: all
  gather_facts: false
  vars_files: [%s, %s]
  vars:
    p2p_watchdog__manager: supervisor
  roles:
    - role: ringrift.cluster.p2p_contract
      p2p_contract_expand_home: false
  tasks:
    - name: Render the settings the role writes
      ansible.builtin.copy:
        content: "{{ lookup('ansible.builtin.template', '%s') }}"
        dest: %s
        mode: "0600"
""" % (os.path.join(ROLE, "defaults", "main.yml"), os.path.join(ROLE, "vars", "main.yml"),
       os.path.join(ROLE, "templates", "watchdog.json.j2"), dest)
    proc = _playbook(tmp_path, body, {"ringrift_p2p_port": 8790, "p2p_watchdog_probe_timeout": 2.5})
    assert proc.returncode == 0, proc.stdout.decode("utf-8", "replace")
    config = wd.load_config(str(dest))
    assert config == settings(
        # The start grace is the contract's (ringrift_p2p_start_grace, 180 s by default).
        port=8790, manager="supervisor", probe_timeout=2.5, start_grace=180, log_file="/var/log/ringrift/watchdog.log",
        state_file="/var/lib/ringrift/watchdog-state.json")
