#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: daemon_import_probe
short_description: Prove that the daemon's entry point imports, with the service's own interpreter, directory and environment
version_added: 0.3.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Runs the daemon's entry point (C(scripts/p2p_orchestrator.py)) in an import-only mode; the script's module-level
    code runs (every top-level import, so its whole import closure) but its C(__main__) block does not, with exactly
    the interpreter, working directory and environment (C(PYTHONPATH), the daemon's environment file) that the
    service will use, and C(sys.path[0]) set as for C(python script.py).
  - Why not C(--help)? The real daemon runs its port check, supervisor claim, singleton lock and zombie killer
    (which runs C(lsof) and kills processes holding the port) before it parses its arguments.
  - Reports the module that failed to import and whether it is part of the checkout (then C(PYTHONPATH) or the
    working directory is wrong and no package is missing).
  - The action plugin of the same name installs the distribution of a missing module when a known mapping names it
    and probes again, a bounded number of times; it never guesses a distribution from a module name.
  - Every run is bounded by O(timeout) in total; the probe's process group is killed when it runs out.
options:
  python:
    description: The daemon's interpreter.
    type: path
    required: true
  script:
    description: The entry point, relative to O(workdir) or absolute.
    type: str
    required: true
  workdir:
    description: The service directory the daemon runs in.
    type: path
    required: true
  environment:
    description: Environment variables the service sets (for example C(PYTHONPATH)); they override O(env_file).
    type: dict
    default: {}
  env_file:
    description: The daemon's environment file (C(NAME='value') lines), read when it exists.
    type: path
  timeout:
    description: Seconds the probe may take in total.
    type: float
    default: 300
  distributions:
    description:
      - Module name to distribution, for the action plugin (C(yaml) to C(PyYAML)); the full dotted name is looked up
        first, then its top-level package.
    type: dict
    default: {}
  rounds:
    description: How many distributions the action plugin may install before it gives up.
    type: int
    default: 3
  virtualenv:
    description: The venv the action plugin installs into with M(ansible.builtin.pip); null installs for O(python) itself.
    type: path
  pip_extra_args:
    description: Extra arguments for pip.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The probe only imports; in check mode the action plugin reports what it would install and installs nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Prove the daemon's imports, installing known missing distributions
  ringrift.cluster.daemon_import_probe:
    python: /root/ringrift/ai-service/venv/bin/python
    script: scripts/p2p_orchestrator.py
    workdir: /root/ringrift/ai-service
    environment:
      PYTHONPATH: /root/ringrift/ai-service
    env_file: /etc/ringrift/node.conf
    virtualenv: /root/ringrift/ai-service/venv
    distributions:
      yaml: PyYAML
      pydantic: pydantic
"""

RETURN = r"""
ok:
  description: Whether the entry point imported.
  returned: always
  type: bool
missing_module:
  description: The module that could not be imported (C(ModuleNotFoundError.name)); null when none.
  returned: always
  type: str
  sample: pydantic
checkout_module:
  description: Whether RV(missing_module) is part of the checkout (a directory or C(.py) file in O(workdir) or C(PYTHONPATH)).
  returned: always
  type: bool
error:
  description: The exception that stopped the import, as C(Type - message); null when RV(ok).
  returned: always
  type: str
traceback:
  description: The end of the traceback; null when RV(ok).
  returned: always
  type: str
attempts:
  description: How many times the import ran (a run killed by a signal, not by an import error, is repeated once).
  returned: always
  type: int
elapsed:
  description: Seconds the probe ran.
  returned: always
  type: float
added:
  description: Distributions the action plugin installed to make the import work.
  returned: always
  type: list
  elements: str
added_modules:
  description: The missing modules those distributions were installed for, in the same order.
  returned: always
  type: list
  elements: str
rounds:
  description: How many probes the action plugin ran.
  returned: always
  type: int
"""

import json
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ringrift.cluster.plugins.module_utils.process import run_bounded

# Runs inside the daemon's interpreter: the script's module-level code, not its __main__ block.
# os._exit: the daemon may start threads or register atexit handlers at import time.
# The script's name reaches it through the environment, never the command line: a daemon
# starting at the same moment with --kill-duplicates kills every process whose command line
# names p2p_orchestrator, and the probe is no daemon.
_BOOT = r"""
import json, os, runpy, sys, traceback
script, out = os.environ.pop("RINGRIFT_IMPORT_PROBE_SCRIPT"), os.environ.pop("RINGRIFT_IMPORT_PROBE_RESULT")
sys.argv = [script]
sys.path[0] = os.path.dirname(os.path.abspath(script))
result = {"ok": True, "missing_module": None, "error": None, "traceback": None}
try:
    runpy.run_path(script, run_name="__ringrift_import_probe__")
except SystemExit as exc:
    if exc.code not in (0, None):
        result.update(ok=False, error="SystemExit(%r) while importing" % (exc.code,))
except BaseException as exc:
    result.update(ok=False, error="%s: %s" % (type(exc).__name__, exc), traceback=traceback.format_exc()[-4000:])
    if isinstance(exc, ImportError) and getattr(exc, "name", None):
        result["missing_module"] = exc.name
with open(out, "w") as handle:
    json.dump(result, handle)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
"""

OUTPUT_LIMIT = 4000


def read_env_file(path):
    """``NAME='value'`` / ``NAME=value`` lines of the daemon's environment file (as systemd and sh read them)."""
    env = {}
    if not path or not os.path.isfile(path):
        return env
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            name, value = line.split("=", 1)
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
                value = value[1:-1]
            env[name.strip()] = value
    return env


def is_checkout_module(name, workdir, environment):
    if not name:
        return False
    top = name.split(".", 1)[0]
    dirs = [workdir] + [d for d in (environment.get("PYTHONPATH") or "").split(":") if d]
    return any(os.path.isdir(os.path.join(d, top)) or os.path.isfile(os.path.join(d, top + ".py")) for d in dirs)


def probe(python, script, workdir, environment, env_file, timeout):
    started = time.monotonic()
    result = {"ok": False, "missing_module": None, "checkout_module": False, "error": None, "traceback": None,
              "output": None, "elapsed": 0.0, "python": python, "attempts": 0}
    if not os.path.isfile(python) or not os.access(python, os.X_OK):
        result["error"] = "interpreter %s does not exist or is not executable" % python
        return result
    if not os.path.isdir(workdir):
        result["error"] = "working directory %s does not exist" % workdir
        return result
    script_path = script if os.path.isabs(script) else os.path.join(workdir, script)
    if not os.path.isfile(script_path):
        result["error"] = "entry point %s does not exist" % script_path
        return result
    env = {"PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
           "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    # No .pyc files left behind by a probe (root-owned in the daemon's tree, or written by --check).
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(read_env_file(env_file))
    env.update(dict((str(k), str(v)) for k, v in (environment or {}).items()))
    fd, out_path = tempfile.mkstemp(prefix="ringrift-import-probe-", suffix=".json")
    os.close(fd)
    env.update(RINGRIFT_IMPORT_PROBE_SCRIPT=script, RINGRIFT_IMPORT_PROBE_RESULT=out_path)
    deadline = started + timeout
    try:
        # A probe killed by a signal (another program's doing, not an import error) is run once more.
        for attempt in (1, 2):
            result["attempts"] = attempt
            rc, out, err, timed_out = run_bounded([python, "-c", _BOOT], max(0.0, deadline - time.monotonic()),
                                                  env=env, cwd=workdir)
            result["output"] = (out + err)[-OUTPUT_LIMIT:]
            if timed_out:
                result["error"] = "the import did not finish within %ss (killed)" % timeout
                return result
            try:
                with open(out_path) as handle:
                    data = json.load(handle)
            except ValueError:
                data = None
            if data or rc >= 0:
                break
        if not data:
            result["error"] = "the interpreter exited with %s before reporting" % rc
            return result
        result.update(data)
        result["checkout_module"] = is_checkout_module(result["missing_module"], workdir, env)
        return result
    finally:
        os.unlink(out_path)
        result["elapsed"] = round(time.monotonic() - started, 3)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            python=dict(type="path", required=True),
            script=dict(type="str", required=True),
            workdir=dict(type="path", required=True),
            environment=dict(type="dict", default={}),
            env_file=dict(type="path"),
            timeout=dict(type="float", default=300),
            distributions=dict(type="dict", default={}),
            rounds=dict(type="int", default=3),
            virtualenv=dict(type="path"),
            pip_extra_args=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = probe(p["python"], p["script"], p["workdir"], p["environment"], p["env_file"], p["timeout"])
    result.update(changed=False, added=[], added_modules=[], rounds=1)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
