# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The log is read per run of the daemon, and a young daemon is `starting`, not broken.

Synthetic /proc trees hold just what the verdict reads: no sockets (nothing listens), the
service manager's main PID and its start time.
"""

from __future__ import absolute_import, division, print_function

import os
import time

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_log, p2p_proc

__metaclass__ = type

MARK = p2p_log.START_MARKER
TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
MISSING_PSUTIL = """Traceback (most recent call last):
  File "/root/ringrift/ai-service/scripts/p2p_orchestrator.py", line 12, in <module>
    import psutil
ModuleNotFoundError: No module named 'psutil'
"""


def mark(epoch):
    return "%s %s ringrift-p2p\n" % (MARK, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)))


def fake_proc(root, main_pid=None, age=None):
    """/proc with no listener and, optionally, one process that started ``age`` seconds ago."""
    ticks = os.sysconf("SC_CLK_TCK")
    btime = int(time.time()) - 100000
    os.makedirs(os.path.join(root, "net"), exist_ok=True)
    with open(os.path.join(root, "stat"), "w") as handle:
        handle.write("cpu  1 2 3 4\nbtime %d\n" % btime)
    for name in ("tcp", "tcp6"):
        with open(os.path.join(root, "net", name), "w") as handle:
            handle.write(TCP_HEADER)
    if main_pid:
        base = os.path.join(root, str(main_pid))
        os.makedirs(os.path.join(base, "fd"))
        start_ticks = int((time.time() - age - btime) * ticks)
        fields = ["S", "1"] + ["0"] * 17 + [str(start_ticks)] + ["0"] * 10
        with open(os.path.join(base, "stat"), "w") as handle:
            handle.write("%d (python) %s\n" % (main_pid, " ".join(fields)))
        with open(os.path.join(base, "cmdline"), "wb") as handle:
            handle.write(b"python\0scripts/p2p_orchestrator.py\0")
    return root


def systemd_says(main_pid):
    def runner(argv):
        if argv[:2] == ["systemctl", "show"]:
            return 0, "MainPID=%d\n" % main_pid, ""
        return 127, "", "not found"
    return runner


def inspect(tmp_path, log_text, main_pid=None, age=None, **extra):
    log = tmp_path / "p2p.log"
    if log_text is not None:
        log.write_text(log_text)
    params = {"proc_root": fake_proc(str(tmp_path / "proc"), main_pid, age), "log_path": str(log),
              "service_manager": "systemd" if main_pid is not None else "none"}
    params.update(extra)
    return p2p_proc.inspect(params, runner=systemd_says(main_pid or 0))


# --------------------------------------------------------------------------- starting vs crashed

def test_young_managed_daemon_without_error_is_starting(tmp_path):
    now = time.time()
    result = inspect(tmp_path, mark(now - 5) + "WARNING No advertise host; waiting\n", main_pid=4242, age=5)
    assert result["diagnosis"] == "starting", result["msg"]
    assert "started 5" in result["msg"] and result["state_ok"] is False


def test_starting_ends_with_the_grace_period(tmp_path):
    now = time.time()
    result = inspect(tmp_path, mark(now - 400) + "INFO waiting\n", main_pid=4242, age=400)
    assert result["diagnosis"] == "not_listening"


def test_young_daemon_whose_run_died_is_crashed(tmp_path):
    now = time.time()
    result = inspect(tmp_path, mark(now - 1) + MISSING_PSUTIL, main_pid=4242, age=1)
    assert (result["diagnosis"], result["missing_module"]) == ("crashed", "psutil")


def test_crash_loop_attempt_is_crashed_with_the_previous_error(tmp_path):
    now = time.time()
    text = mark(now - 12) + MISSING_PSUTIL + mark(now - 6) + MISSING_PSUTIL + mark(now - 0.3)
    result = inspect(tmp_path, text, main_pid=4242, age=0.3)
    assert result["diagnosis"] == "crashed", result["msg"]
    assert result["missing_module"] == "psutil" and "crash loop" in result["msg"]


def test_crash_loop_between_attempts_is_crashed_not_not_listening(tmp_path):
    """The manager says nothing runs (backoff, or the attempt already died) and the newest run has
    printed nothing after its start marker: the run before it is why (found racing in e2e)."""
    now = time.time()
    text = mark(now - 12) + MISSING_PSUTIL + mark(now - 6) + MISSING_PSUTIL + mark(now - 0.2)
    result = inspect(tmp_path, text, main_pid=0)
    assert (result["diagnosis"], result["missing_module"]) == ("crashed", "psutil"), result["msg"]
    assert "the newest attempt has printed nothing" in result["msg"]


def test_an_empty_newest_run_after_a_clean_stop_is_not_a_crash(tmp_path):
    now = time.time()
    text = mark(now - 60) + "INFO listening on 8770\nINFO shutting down\n" + mark(now - 1)
    result = inspect(tmp_path, text, main_pid=0)
    assert result["diagnosis"] == "not_listening", result["msg"]


def test_run_that_outlived_the_previous_crash_is_starting(tmp_path):
    """After a fix the new run gets past the point where the old one died: it is starting."""
    now = time.time()
    text = mark(now - 40) + MISSING_PSUTIL + mark(now - 35) + "INFO imports done\n"
    result = inspect(tmp_path, text, main_pid=4242, age=35)
    assert result["diagnosis"] == "starting", result["msg"]


def test_dead_daemon_reads_only_its_last_run(tmp_path):
    now = time.time()
    text = mark(now - 600) + MISSING_PSUTIL + mark(now - 300) + "INFO listening\nINFO shutting down\n"
    result = inspect(tmp_path, text)
    assert result["diagnosis"] == "not_listening" and result["last_error"] is None
    crashed = inspect(tmp_path, text + mark(now - 2) + MISSING_PSUTIL)
    assert crashed["diagnosis"] == "crashed" and crashed["missing_module"] == "psutil"


def test_checkout_import_says_pythonpath(tmp_path):
    service = tmp_path / "ai-service"
    (service / "scripts").mkdir(parents=True)
    result = inspect(tmp_path, mark(time.time() - 60) + "ModuleNotFoundError: No module named 'scripts'\n",
                     service_dir=str(service))
    assert result["diagnosis"] == "crashed" and result["error_kind"] == "checkout_import"
    assert "PYTHONPATH" in result["msg"]


@pytest.mark.parametrize("grace", [0, 10])
def test_start_grace_zero_turns_starting_off(tmp_path, grace):
    result = inspect(tmp_path, mark(time.time() - 5) + "INFO waiting\n", main_pid=4242, age=5, start_grace=grace)
    assert result["diagnosis"] == ("starting" if grace else "not_listening")
