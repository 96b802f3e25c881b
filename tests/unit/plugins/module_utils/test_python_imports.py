# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/python_imports: the one import check (python_deps proves it, the converge stamp re-checks it)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import subprocess
import sys

from ansible_collections.ringrift.cluster.plugins.module_utils import python_imports


def real_runner(argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_imports_and_versions_with_a_real_interpreter():
    result = python_imports.check_imports(sys.executable, ["json", "os.path", "no_such_module_xyz"], real_runner)
    assert result["error"] is None
    assert result["python"] == sys.executable
    assert result["ok"] == {"json": json.__version__, "os.path": ""}
    assert result["missing"] == {"no_such_module_xyz": "ModuleNotFoundError: No module named 'no_such_module_xyz'"}


def test_a_missing_interpreter_makes_every_name_missing_with_the_reason(tmp_path):
    gone = str(tmp_path / "venv" / "bin" / "python")
    result = python_imports.check_imports(gone, ["yaml", "psutil"], real_runner)
    reason = "the daemon's interpreter %s is missing" % gone
    assert (result["error"], result["ok"]) == (reason, {})
    assert result["missing"] == {"yaml": reason, "psutil": reason}


def test_an_interpreter_that_crashes_or_prints_something_else_is_an_error_not_a_pass():
    crashed = python_imports.check_imports(sys.executable, ["json"], lambda argv: (1, "", "Fatal Python error: init_fs_encoding"))
    assert crashed["error"] == "%s did not run the import check (rc=1): Fatal Python error: init_fs_encoding" % sys.executable
    assert crashed["missing"] == {"json": crashed["error"]}
    # rc 0 but not the script's JSON (a sitecustomize printing, a wrapper script): not trusted.
    for out in ("not json", '{"missing": {}}', "[1, 2]"):
        result = python_imports.check_imports(sys.executable, ["json"], lambda argv, out=out: (0, out, ""))
        assert result["error"].startswith("%s did not run the import check (rc=0)" % sys.executable), out
        assert result["ok"] == {}


def test_the_script_gets_the_names_as_one_json_argument():
    seen = []

    def runner(argv):
        seen.append(argv)
        return 0, json.dumps({"python": "/v/bin/python", "ok": {"a.b": "1"}, "missing": {}}), ""

    result = python_imports.check_imports(sys.executable, ["a.b"], runner)
    assert seen == [[sys.executable, "-c", python_imports.IMPORT_SCRIPT, '["a.b"]']]
    assert (result["python"], result["ok"], result["error"]) == ("/v/bin/python", {"a.b": "1"}, None)
