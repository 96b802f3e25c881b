# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which modules an interpreter can import: the one import check of the collection.

``python_deps`` (through the ``python_imports`` module) proves the daemon's packages import
after installing them, and the converge stamp re-checks the same list on the next run
(``converge_stamp``); both run :data:`IMPORT_SCRIPT` with the daemon's interpreter.
Stdlib only, Python 3.8+.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

# Imports every module named in argv[1] (a JSON list); prints the interpreter, the version of
# each module that imported ("" when it has none) and why each other one did not.
IMPORT_SCRIPT = (
    "import importlib, json, sys\n"
    "ok, missing = {}, {}\n"
    "for name in json.loads(sys.argv[1]):\n"
    "    try:\n"
    "        module = importlib.import_module(name)\n"
    "    except Exception as exc:\n"
    "        missing[name] = '%s: %s' % (type(exc).__name__, exc)\n"
    "    else:\n"
    "        ok[name] = str(getattr(module, '__version__', '') or '')\n"
    "print(json.dumps({'python': sys.executable, 'ok': ok, 'missing': missing}))\n"
)


def check_imports(python, names, runner):
    """``{'python', 'ok', 'missing', 'error'}`` for importing ``names`` with ``python``.

    :arg runner: ``runner(argv) -> (rc, stdout, stderr)``, bounded by the caller.
    ``error`` is None when the check ran; otherwise it says why it did not (no interpreter,
    a crash, output that is not the script's), and every name counts as missing with that reason.
    """
    names = list(names)
    result = {"python": python, "ok": {}, "missing": {}, "error": None}
    if not python or not os.path.isfile(python) or not os.access(python, os.X_OK):
        result["error"] = "the daemon's interpreter %s is missing" % python
    else:
        rc, out, err = runner([python, "-c", IMPORT_SCRIPT, json.dumps(names)])
        try:
            data = json.loads(out.strip().splitlines()[-1]) if rc == 0 else None
        except (ValueError, IndexError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("ok"), dict) or not isinstance(data.get("missing"), dict):
            result["error"] = "%s did not run the import check (rc=%s): %s" % (python, rc, (err or out or "").strip()[-200:])
        else:
            result.update(python=data.get("python") or python, ok=data["ok"], missing=data["missing"])
            return result
    result["missing"] = dict((name, result["error"]) for name in names)
    return result
