# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for ringrift.cluster.daemon_import_probe: probe, install a known distribution, probe again.

The loop lives on the controller so that installs go through the pip module Ansible
ships (venv handling, check mode, extra args) instead of a pip call of our own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

_PROBE_ARGS = ("python", "script", "workdir", "environment", "env_file", "timeout")


def distribution_for(module_name, distributions):
    """The distribution a mapping names for a module (full dotted name first, then its top level); None if none."""
    if not module_name:
        return None
    table = dict((str(k), str(v)) for k, v in (distributions or {}).items())
    if module_name in table:
        return table[module_name]
    return table.get(module_name.split(".", 1)[0])


def failure_message(probe, distributions_setting, workdir):
    """Why the import failed, and what would fix it, for one probe result that is not ok."""
    missing = probe.get("missing_module")
    if missing and probe.get("checkout_module"):
        return ("the daemon cannot import %s, which is part of the checkout %s: it must run with working directory "
                "and PYTHONPATH %s (the unit/program of ringrift.cluster.p2p_service sets both); no package is "
                "missing, nothing was installed (%s)" % (missing, workdir, workdir, probe.get("error")))
    if missing:
        return ("the daemon cannot import %s and no known mapping names the distribution that provides it; nothing "
                "is guessed from a module name (a look-alike package is how supply-chain attacks land): add "
                "'%s: <distribution>' to %s, or the distribution to python_deps_packages (%s)"
                % (missing, missing.split(".", 1)[0], distributions_setting, probe.get("error")))
    return "the daemon's entry point fails at import: %s" % (probe.get("error") or "no result")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(_PROBE_ARGS + ("distributions", "rounds", "virtualenv", "pip_extra_args", "distributions_setting"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        rounds = int(args.get("rounds", 3))
        distributions = args.get("distributions") or {}
        setting = args.pop("distributions_setting", None) or "python_deps_module_distributions"
        probe_args = dict((k, args[k]) for k in _PROBE_ARGS if k in args)
        added = []
        added_modules = []
        probes = 0
        probe = {}
        while True:
            probes += 1
            probe = self._execute_module(module_name="ringrift.cluster.daemon_import_probe", module_args=probe_args,
                                         task_vars=task_vars)
            if probe.get("failed") and "ok" not in probe:
                return probe
            probe.update(added=list(added), added_modules=list(added_modules), rounds=probes, changed=bool(added))
            if probe["ok"]:
                if added:
                    probe["msg"] = "the entry point imports after installing %s" % ", ".join(added)
                else:
                    probe["msg"] = "the entry point imports"
                result.update(probe)
                return result
            dist = None if probe.get("checkout_module") else distribution_for(probe.get("missing_module"), distributions)
            if dist is None:
                result.update(probe, failed=True, msg=failure_message(probe, setting, args.get("workdir")))
                return result
            if dist in added:
                result.update(probe, failed=True,
                              msg="installed %s for %s, but the import still fails: %s" % (dist, probe["missing_module"], probe.get("error")))
                return result
            if len(added) >= rounds:
                result.update(probe, failed=True,
                              msg="gave up after installing %s (python_deps_probe_rounds=%d): %s still missing"
                                  % (", ".join(added), rounds, probe["missing_module"]))
                return result
            if self._play_context.check_mode:
                result.update(probe, changed=True, added=added + [dist],
                              msg="check mode: %s is missing; %s would be installed and the import probed again"
                                  % (probe["missing_module"], dist))
                return result
            pip_args = {"name": [dist]}
            if args.get("virtualenv"):
                pip_args["virtualenv"] = args["virtualenv"]
            else:
                pip_args["executable"] = None
            if args.get("pip_extra_args"):
                pip_args["extra_args"] = args["pip_extra_args"]
            pip_args = dict((k, v) for k, v in pip_args.items() if v is not None)
            installed = self._execute_module(module_name="ansible.builtin.pip", module_args=pip_args, task_vars=task_vars)
            if installed.get("failed"):
                result.update(probe, failed=True, added=added,
                              msg="installing %s for the missing module %s failed: %s"
                                  % (dist, probe["missing_module"], installed.get("msg") or installed.get("stderr")))
                return result
            added.append(dist)
            added_modules.append(probe["missing_module"])
