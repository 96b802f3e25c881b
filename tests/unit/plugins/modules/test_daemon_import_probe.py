# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""daemon_import_probe: the entry point's import closure, with the service's interpreter,
directory and environment; the action plugin's mapping rules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import sys
import time

import pytest

from ansible_collections.ringrift.cluster.plugins.action.daemon_import_probe import distribution_for, failure_message
from ansible_collections.ringrift.cluster.plugins.modules.daemon_import_probe import probe, read_env_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
STAND_IN = os.path.join(REPO, "tests", "fixtures", "ai-service")
PYTHON = sys.executable


@pytest.fixture
def service(tmp_path):
    """A copy of the stand-in daemon's service directory."""
    target = tmp_path / "ai-service"
    shutil.copytree(STAND_IN, str(target))
    return str(target)


def test_stand_in_imports_with_pythonpath(service):
    result = probe(PYTHON, "scripts/p2p_orchestrator.py", service, {"PYTHONPATH": service}, None, 60)
    assert result["ok"] is True, result
    assert result["missing_module"] is None


def test_without_pythonpath_the_checkout_module_is_missing(service):
    """The real daemon's first failure: its own `scripts` package, which no pip install provides."""
    result = probe(PYTHON, "scripts/p2p_orchestrator.py", service, {}, None, 60)
    assert result["ok"] is False
    assert result["missing_module"] == "scripts"
    assert result["checkout_module"] is True
    assert "No module named 'scripts'" in result["error"]


def test_a_missing_third_party_module_is_named(service):
    script = os.path.join(service, "scripts", "p2p_orchestrator.py")
    with open(script) as handle:
        text = handle.read()
    with open(script, "w") as handle:
        handle.write(text.replace("import pydantic\n", "import pydantic\nimport ringrift_probe_absent_pkg.sub\n", 1))
    result = probe(PYTHON, "scripts/p2p_orchestrator.py", service, {"PYTHONPATH": service}, None, 60)
    assert (result["ok"], result["missing_module"], result["checkout_module"]) == (False, "ringrift_probe_absent_pkg", False)


def test_main_block_does_not_run(tmp_path):
    (tmp_path / "entry.py").write_text("import sys\nif __name__ == '__main__':\n    sys.exit(3)\nopen('imported', 'w').close()\n")
    result = probe(PYTHON, "entry.py", str(tmp_path), {}, None, 30)
    assert result["ok"] is True
    assert (tmp_path / "imported").exists()


def test_environment_file_and_sys_path_are_the_services(tmp_path):
    (tmp_path / "node.conf").write_text("# c\nRINGRIFT_NODE_ID='n-1'\nPLAIN=v\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "entry.py").write_text(
        "import os, sys\nassert os.environ['RINGRIFT_NODE_ID'] == 'n-1', os.environ\n"
        "assert os.environ['PLAIN'] == 'v'\nassert sys.path[0].endswith('/bin'), sys.path\n"
        "assert os.getcwd() == %r\n" % str(tmp_path))
    result = probe(PYTHON, "bin/entry.py", str(tmp_path), {}, str(tmp_path / "node.conf"), 30)
    assert result["ok"] is True, result


def test_total_deadline_kills_a_hanging_import(tmp_path):
    (tmp_path / "entry.py").write_text("import subprocess, time\nsubprocess.Popen(['sleep', '60'])\ntime.sleep(60)\n")
    started = time.monotonic()
    result = probe(PYTHON, "entry.py", str(tmp_path), {}, None, 2)
    assert time.monotonic() - started < 10
    assert result["ok"] is False and "did not finish within 2" in result["error"]


def test_missing_interpreter_or_script_is_reported(tmp_path):
    assert "does not exist" in probe("/nonexistent/python", "x.py", str(tmp_path), {}, None, 5)["error"]
    assert "entry point" in probe(PYTHON, "x.py", str(tmp_path), {}, None, 5)["error"]


def test_read_env_file_quotes(tmp_path):
    (tmp_path / "e").write_text("A='1'\nB=\"2\"\nC=3\n\n# x\n")
    assert read_env_file(str(tmp_path / "e")) == {"A": "1", "B": "2", "C": "3"}
    assert read_env_file(str(tmp_path / "none")) == {}


@pytest.mark.parametrize("module, expected", [
    ("yaml", "PyYAML"),
    ("google.protobuf", "protobuf"),
    ("google.protobuf.internal", "protobuf"),
    ("pydantic.v1", "pydantic"),
    ("reqeusts", None),
    (None, None),
])
def test_distribution_only_from_the_table(module, expected):
    table = {"yaml": "PyYAML", "google.protobuf": "protobuf", "pydantic": "pydantic"}
    if module == "google.protobuf.internal":
        # Only the full name or its top-level package: google alone is not in the table.
        assert distribution_for(module, table) is None
        return
    assert distribution_for(module, table) == expected


def test_failure_messages_name_the_fix():
    checkout = failure_message({"missing_module": "scripts", "checkout_module": True, "error": "e"}, "s", "/srv/ai-service")
    assert "PYTHONPATH" in checkout and "/srv/ai-service" in checkout and "nothing was installed" in checkout
    unknown = failure_message({"missing_module": "reqeusts", "checkout_module": False, "error": "e"},
                              "python_deps_module_distributions", "/srv")
    assert "python_deps_module_distributions" in unknown and "'reqeusts: <distribution>'" in unknown
    assert "nothing is guessed" in unknown


def test_the_probe_command_line_does_not_name_the_daemon(tmp_path):
    """A daemon starting with --kill-duplicates kills what names p2p_orchestrator; the probe must not."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "p2p_orchestrator.py").write_text(
        "with open('cmdline', 'wb') as out, open('/proc/self/cmdline', 'rb') as me:\n    out.write(me.read())\n")
    result = probe(PYTHON, "scripts/p2p_orchestrator.py", str(tmp_path), {}, None, 30)
    assert result["ok"] is True, result
    assert b"p2p_orchestrator" not in (tmp_path / "cmdline").read_bytes()


def test_a_probe_killed_by_a_signal_runs_once_more(tmp_path):
    (tmp_path / "entry.py").write_text(
        "import os, signal\nif not os.path.exists('killed-once'):\n"
        "    open('killed-once', 'w').close()\n    os.kill(os.getpid(), signal.SIGTERM)\n")
    result = probe(PYTHON, "entry.py", str(tmp_path), {}, None, 30)
    assert (result["ok"], result["attempts"]) == (True, 2), result


def test_the_probe_leaves_no_bytecode_behind(service):
    """No root-owned __pycache__ in the daemon's tree, and nothing written by a --check run."""
    result = probe(PYTHON, "scripts/p2p_orchestrator.py", service, {"PYTHONPATH": service}, None, 60)
    assert result["ok"] is True, result
    caches = [root for root, dirs, files in os.walk(service) if os.path.basename(root) == "__pycache__"]
    assert caches == []
