# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/p2p_log.py: the error of the daemon's newest run."""

from __future__ import absolute_import, division, print_function

import os
import time

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_log

from p2p_fakes import TRACEBACK_LOG, write

__metaclass__ = type


def test_diagnose_log_traceback_missing_module(tmp_path):
    result = p2p_log.diagnose_log(write(tmp_path, "p2p.log", TRACEBACK_LOG))
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
    result = p2p_log.diagnose_log(write(tmp_path, "p2p.log", text))
    assert result["error_kind"] == "exception"
    assert result["last_error"] == "RuntimeError: giving up after bind failure"
    assert result["missing_module"] is None


def test_diagnose_log_aiohttp_bind_error_is_address_in_use(tmp_path):
    text = """\
Traceback (most recent call last):
  File "x.py", line 1, in <module>
OSError: [Errno 98] error while attempting to bind on address ('0.0.0.0', 8770): address already in use
"""
    result = p2p_log.diagnose_log(write(tmp_path, "p2p.log", text))
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
    result = p2p_log.diagnose_log(write(tmp_path, "p2p.log", text))
    assert result["error_kind"] == kind
    assert result["missing_modules"] == modules
    assert result["missing_module"] == (modules[0] if modules else None)
    assert result["last_error"]


def test_diagnose_log_clean_missing_and_tail(tmp_path):
    clean = "\n".join("2025-01-31 08:00:%02d INFO [p2p] GET /health" % i for i in range(50)) + "\n"
    result = p2p_log.diagnose_log(write(tmp_path, "clean.log", clean))
    assert result["last_error"] is None
    assert result["error_kind"] is None
    assert len(result["excerpt"]) == 20
    assert result["excerpt"][-1].endswith("08:00:49 INFO [p2p] GET /health")
    absent = p2p_log.diagnose_log(str(tmp_path / "nope.log"))
    assert absent["exists"] is False
    assert absent["excerpt"] == []
    # an old error outside the tail is not seen; the cut first line is dropped
    old = TRACEBACK_LOG + clean
    tail = p2p_log.diagnose_log(write(tmp_path, "old.log", old), tail_bytes=len(clean) + 5)
    assert tail["last_error"] is None
    assert tail["excerpt"][0] != ""
    assert p2p_log.diagnose_log(write(tmp_path, "old2.log", old))["missing_module"] == "psutil"


MARK = p2p_log.START_MARKER
MISSING_PSUTIL = """Traceback (most recent call last):
  File "/root/ringrift/ai-service/scripts/p2p_orchestrator.py", line 12, in <module>
    import psutil
ModuleNotFoundError: No module named 'psutil'
"""


def mark(epoch):
    return "%s %s ringrift-p2p\n" % (MARK, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)))


# --------------------------------------------------------------------------- runs of the log

def test_traceback_followed_by_a_later_start_is_history(tmp_path):
    now = time.time()
    text = mark(now - 600) + MISSING_PSUTIL + mark(now - 300) + "INFO node listening\nINFO shutting down\n"
    (tmp_path / "p2p.log").write_text(text)
    result = p2p_log.diagnose_log(str(tmp_path / "p2p.log"))
    assert result["runs"] == 2
    assert result["last_error"] is None and result["missing_module"] is None
    assert result["previous_run"]["missing_module"] == "psutil"
    assert result["excerpt"] == ["INFO node listening", "INFO shutting down"]


def test_log_without_markers_is_one_run(tmp_path):
    (tmp_path / "p2p.log").write_text("INFO start\n" + MISSING_PSUTIL)
    result = p2p_log.diagnose_log(str(tmp_path / "p2p.log"))
    assert result["runs"] == 0 and result["missing_module"] == "psutil" and result["ends_with_error"] is True


def test_terminal_escapes_are_stripped(tmp_path):
    (tmp_path / "p2p.log").write_text(mark(time.time()) + "\x1b[31mModuleNotFoundError: No module named 'yaml'\x1b[0m\x07\n")
    result = p2p_log.diagnose_log(str(tmp_path / "p2p.log"))
    assert result["last_error"] == "ModuleNotFoundError: No module named 'yaml'"
    assert result["excerpt"] == ["ModuleNotFoundError: No module named 'yaml'"]


def test_checkout_module_is_not_a_missing_package(tmp_path):
    service = tmp_path / "ai-service"
    (service / "scripts").mkdir(parents=True)
    (tmp_path / "p2p.log").write_text(mark(time.time()) + "ModuleNotFoundError: No module named 'scripts'\n")
    result = p2p_log.diagnose_log(str(tmp_path / "p2p.log"), service_dir=str(service))
    assert result["error_kind"] == "checkout_import" and result["missing_module"] == "scripts"
    plain = p2p_log.diagnose_log(str(tmp_path / "p2p.log"), service_dir=str(tmp_path / "elsewhere"))
    assert plain["error_kind"] == "missing_module"


def test_fifo_and_devices_are_refused_not_read(tmp_path):
    fifo = tmp_path / "fifo.log"
    os.mkfifo(str(fifo))
    started = time.monotonic()
    result = p2p_log.diagnose_log(str(fifo))
    assert time.monotonic() - started < 2
    assert result["exists"] is True and result["readable"] is False
    assert "not a regular file" in result["read_error"]
    zero = p2p_log.diagnose_log("/dev/zero", tail_bytes=1024)
    assert zero["readable"] is False and "not a regular file" in zero["read_error"]


def test_tail_bytes_bound_what_is_read(tmp_path):
    (tmp_path / "big.log").write_text("x" * 100000 + "\nModuleNotFoundError: No module named 'yaml'\n")
    result = p2p_log.diagnose_log(str(tmp_path / "big.log"), tail_bytes=200)
    assert result["missing_module"] == "yaml" and result["size"] > 100000
