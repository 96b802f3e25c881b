# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ringrift.cluster.python_imports as Ansible runs it: real interpreters, a venv that lacks a package, bad input."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import subprocess
import sys

from ansible_collections.ringrift.cluster.tests.helpers import ANSIBLE, ansible_env


def _run(tmp_path, args, check_mode=False):
    argv = [ANSIBLE, "localhost", "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
            "-m", "ringrift.cluster.python_imports", "-a", json.dumps(args), "-o"] + (["--check"] if check_mode else [])
    proc = subprocess.run(argv, env=ansible_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120, check=False)
    line = next(l for l in proc.stdout.splitlines() if l.startswith("localhost |"))
    return proc.returncode, json.loads(line.split("=>", 1)[1])


def test_a_fresh_venv_lacks_yaml_and_says_so(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    rc, result = _run(tmp_path, {"python": str(venv / "bin" / "python"), "names": ["json", "yaml"]})
    assert rc == 0 and result["changed"] is False, result
    assert result["python"] == str(venv / "bin" / "python")
    assert list(result["ok"]) == ["json"]
    assert result["missing"] == {"yaml": "ModuleNotFoundError: No module named 'yaml'"}
    assert result["error"] is None


def test_check_mode_runs_the_same_read_only_check(tmp_path):
    rc, result = _run(tmp_path, {"python": sys.executable, "names": ["yaml"]}, check_mode=True)
    assert rc == 0 and "yaml" in result["ok"] and result["missing"] == {}, result


def test_bad_names_and_relative_interpreters_are_refused_before_anything_runs(tmp_path):
    rc, result = _run(tmp_path, {"python": "venv/bin/python", "names": ["yaml; import os", "-c"]})
    assert rc != 0 and result["changed"] is False
    assert result["msg"] == ("names 'yaml; import os' must be a Python module name; names '-c' must be a Python module name; "
                             "python 'venv/bin/python' must be an absolute path without spaces, quotes, % or $"), result["msg"]


def test_an_interpreter_that_hangs_is_stopped_at_the_deadline(tmp_path):
    hang = tmp_path / "python"
    hang.write_text("#!/bin/sh\nsleep 60\n")
    hang.chmod(0o755)
    rc, result = _run(tmp_path, {"python": str(hang), "names": ["yaml"], "timeout": 1})
    assert rc == 0 and result["changed"] is False, result
    assert result["ok"] == {}
    assert "timed out after 1.0s" in result["error"], result["error"]
    assert result["missing"] == {"yaml": result["error"]}
