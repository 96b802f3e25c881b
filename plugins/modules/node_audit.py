#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: node_audit
short_description: Everything the fleet report needs from one node, in one module call
version_added: 0.1.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Runs the C(ringrift.cluster.p2p_listener) inspection in report-only mode (the port, its owner's real PID and
    command line, the service manager's main PID, the health endpoint, the daemon's log) and adds what the fleet
    report shows next to it, the service manager's view of the unit or program and a GPU summary from C(nvidia-smi).
  - One call per host keeps an audit of the whole fleet at about one round of module calls.
  - Never fails because of what it finds; the findings are in RV(diagnosis). Read-only.
  - On a node the collection cannot manage (not Linux, such as macOS, or no C(/proc/net/tcp) or C(tcp6)) it looks
    no further and returns RV(diagnosis=unsupported_os) with the reason in RV(unsupported_reason), never
    C(never_started), because without C(/proc) no socket can be traced to its process.
options:
  health_path:
    description: HTTP path of the daemon's health endpoint; empty to skip the health check.
    type: str
    default: /health
  log_path:
    description: The daemon's log file, read for the last error.
    type: path
    default: /var/log/ringrift/p2p.log
  gpu:
    description: Whether the node has an NVIDIA GPU to summarize (the inventory's C(ringrift_nvidia_gpu)).
    type: bool
    default: false
  expected_gpu_count:
    description: GPU count the inventory expects; omitted or V(0), the count is not compared (no GPU at all is still a C(count_mismatch)).
    type: int
  expected_gpu_model:
    description: GPU model the inventory expects, such as C(RTX 4090).
    type: str
  nvidia_smi:
    description: C(nvidia-smi) executable name or path.
    type: str
    default: nvidia-smi
  gpu_timeout:
    description:
      - Seconds the whole GPU check may take (the C(nvidia-smi) query). A hung C(nvidia-smi), typical of a GPU that fell
        off the bus, is killed then and reported as C(driver_unreachable), so one bad node does not stall the audit.
      - Must be above 0.
    type: int
    default: 10
  stamp_path:
    description: The converge stamp C(playbooks/site.yml) leaves after a successful converge (M(ringrift.cluster.converge_stamp)).
    type: path
    default: /var/lib/ringrift/converge-stamp.json
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ringrift.cluster.daemon_run
  - ringrift.cluster.listener_options
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - Run with C(become) to see the owner of a port held by another user; without it the diagnosis may be
    C(owner_unknown).
seealso:
  - module: ringrift.cluster.p2p_listener
  - module: ringrift.cluster.nvidia_gpu_info
  - module: ringrift.cluster.fleet_report
"""

EXAMPLES = r"""
- name: Inspect the node for the fleet report
  ringrift.cluster.node_audit:
    node_id: "{{ inventory_hostname }}"
    service_manager: auto
    gpu: "{{ ringrift_nvidia_gpu | default(false) }}"
    expected_gpu_count: "{{ ringrift_gpu_count | default(omit) }}"
    expected_gpu_model: "{{ ringrift_gpu_model | default(omit, true) }}"
  register: fleet_audit_node
  ignore_unreachable: true
"""

RETURN = r"""
diagnosis:
  description:
    - C(healthy), C(busy), C(starting), C(not_listening), C(never_started), C(crashed), C(wrong_owner), C(unmanaged),
      C(owner_unknown), C(health_failed) or C(port_shared), as defined by C(ringrift.cluster.p2p_listener).
    - C(unsupported_os) on a node the collection cannot manage (see RV(unsupported_reason)); nothing else was inspected.
  returned: always
  type: str
  sample: crashed
unsupported_reason:
  description: "Why the node is C(unsupported_os), such as C(Darwin: the collection manages Linux nodes only ...); null otherwise."
  returned: always
  type: str
  sample: "Darwin: the collection manages Linux nodes only (it reads /proc and runs the daemon under systemd or supervisor)"
listening:
  description: Whether a LISTEN socket exists on the port.
  returned: always
  type: bool
pid:
  description: PID that holds the port.
  returned: always
  type: int
  sample: 4242
other_owners:
  description: Other programs listening on the port (C(port_shared)), as RV(ringrift.cluster.p2p_listener#module:other_owners).
  returned: always
  type: list
  elements: dict
cmdline:
  description: Command line of the port's owner.
  returned: always
  type: list
  elements: str
missing_module:
  description: Python module named by the last C(ModuleNotFoundError) in the log.
  returned: always
  type: str
  sample: psutil
error_kind:
  description:
    - Kind of RV(last_error), as RV(ringrift.cluster.p2p_listener#module:error_kind) (C(missing_module), C(checkout_import),
      C(missing_dependencies), C(node_id_missing), C(address_in_use), C(exception)); null when none.
  returned: always
  type: str
  sample: missing_module
last_error:
  description: Last error line found in the daemon's log.
  returned: always
  type: str
  sample: "ModuleNotFoundError: No module named 'psutil'"
last_converged_at:
  description:
    - When C(playbooks/site.yml) last converged the node successfully (UTC, from its converge stamp).
    - Null when the node has no stamp, that is it was never converged by C(site.yml) (since 0.2.0), or the stamp is unreadable.
  returned: always
  type: str
  sample: "2026-11-29T05:02:11Z"
health:
  description: The health check's answer (status, ok, json, error).
  returned: always
  type: dict
service:
  description: The service manager's view of the daemon.
  returned: always
  type: dict
  contains:
    manager:
      description: C(systemd), C(supervisor) or C(none).
      type: str
    installed:
      description: Whether the unit or program is known to the manager.
      type: bool
    state:
      description: Manager's state, such as C(active/running), C(activating/auto-restart), C(RUNNING), C(BACKOFF).
      type: str
    restarts:
      description: Restarts counted by systemd (C(NRestarts)); null under supervisor.
      type: int
    main_pid:
      description: Main PID according to the manager (0 when not running).
      type: int
gpu:
  description:
    - GPU summary when O(gpu=true), else null.
    - The verdict of the same check as M(ringrift.cluster.nvidia_gpu_info) and the converge stamp's re-check (without torch),
      so the three agree on a node.
  returned: always
  type: dict
  contains:
    diagnosis:
      description:
        - C(ok), C(no_nvidia_smi), C(driver_unreachable), C(count_mismatch), C(model_mismatch) or C(error).
        - C(count_mismatch) when the driver answers but the node has fewer usable GPUs than it should, including
          C(No devices were found) and a GPU that fell off the bus.
        - C(driver_unreachable) also when nvidia-smi did not answer within O(gpu_timeout).
      type: str
    summary:
      description:
        - Short text for the report, such as C(8x NVIDIA GeForce RTX 4090, driver 550.54.15), C(no GPU),
          C(driver unreachable), C(nvidia-smi timed out) or C(no nvidia-smi).
      type: str
    count:
      description: GPUs reported by nvidia-smi.
      type: int
    msg:
      description: Why the diagnosis is not C(ok).
      type: str
"""

import copy

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ringrift.cluster.plugins.module_utils import (
    converge_stamp, nvidia_smi, p2p_proc, p2p_sockets, service_manager)

# An audit is one quick call per host: the GPU check gets less time than a converge's (30 s).
DEFAULT_GPU_TIMEOUT = 10
# The node is not one the collection can manage (not Linux: no /proc, systemd or supervisor).
UNSUPPORTED_OS = "unsupported_os"


def last_converged_at(module, path):
    """When site.yml last converged the node, from its converge stamp; None without one."""
    try:
        stamp = converge_stamp.read_stamp(path)
    except converge_stamp.StampError as exc:
        module.warn("converge stamp: %s" % exc)
        return None
    return stamp.get("converged_at") if stamp else None


def gpu_view(module, executable, expected_count, expected_model, timeout):
    """The nvidia_gpu_info check (nvidia_smi.check_gpus) under a total deadline, as the report shows it."""
    try:
        check = nvidia_smi.check_gpus(lambda name: nvidia_smi.find_executable(module, name), executable=executable,
                                      expected_count=expected_count, expected_model=expected_model,
                                      timeout=timeout, read_versions=False)
    except ValueError as exc:
        module.fail_json(msg="node_audit: %s" % exc)
    if not check["present"]:
        summary = "no nvidia-smi"
    elif not check["driver_ok"]:
        summary = "nvidia-smi timed out" if check["driver_failure_kind"] == "timeout" else "driver unreachable"
    elif check["gpus"]:
        names = sorted(set(g.get("name") or "?" for g in check["gpus"]))
        summary = "%dx %s" % (check["count"], "/".join(names))
        if check["driver_version"]:
            summary += ", driver %s" % check["driver_version"]
    else:
        summary = "no GPU"
    return {"diagnosis": check["diagnosis"], "msg": check["msg"], "count": check["count"], "summary": summary}


# The options shared with p2p_listener come from one place; the audit's own defaults follow.
ARGUMENT_SPEC = dict(
    copy.deepcopy(p2p_proc.LISTENER_ARGUMENT_SPEC),
    health_path=dict(type="str", default="/health"),
    log_path=dict(type="path", default="/var/log/ringrift/p2p.log"),
    gpu=dict(type="bool", default=False),
    expected_gpu_count=dict(type="int"),
    expected_gpu_model=dict(type="str"),
    nvidia_smi=dict(type="str", default="nvidia-smi"),
    gpu_timeout=dict(type="int", default=DEFAULT_GPU_TIMEOUT),
    stamp_path=dict(type="path", default=converge_stamp.DEFAULT_PATH),
)


def unsupported_result(port, reason):
    """The whole result for a node the collection cannot manage: nothing inspected, every key present."""
    result = p2p_proc.blank_result(port)
    result.pop("warnings")
    result.update(diagnosis=UNSUPPORTED_OS, unsupported_reason=reason, service_manager="none", msg=reason,
                  service=service_manager.summary(service_manager.read_service("none")),
                  gpu=None, last_converged_at=None)
    return result


def audit(module, params, proc_root="/proc", system=None, runner=None):
    """The module's result for this node (``changed``, ``failed`` and the final ``msg`` aside).

    ``proc_root``, ``system`` (``platform.system()``) and ``runner`` (``runner(argv) -> (rc, stdout,
    stderr)``, default :func:`service_manager.bounded_runner`) are for tests: a node without
    ``<proc_root>/net/tcp{,6}`` or not Linux is ``unsupported_os`` before anything reads ``/proc``.
    """
    reason = p2p_sockets.unsupported_os(proc_root, system)
    if reason:
        return unsupported_result(params["port"], reason)
    manager = params["service_manager"]
    if manager == "auto":
        manager = service_manager.detect_service_manager(proc_root)
    runner = runner or service_manager.bounded_runner()

    try:
        result = p2p_proc.inspect({
            "port": params["port"],
            "node_id": params["node_id"],
            "cmdline_regex": params["cmdline_regex"],
            "python": params["python"],
            "script": params["script"],
            "health_path": params["health_path"] or None,
            "health_timeout": params["health_timeout"],
            "service_name": params["service_name"],
            "service_manager": manager,
            "log_path": params["log_path"],
            "start_grace": params["start_grace"],
            "service_dir": params["service_dir"],
            "state": "listening",
            "fail_on_mismatch": False,
            "proc_root": proc_root,
        }, runner=runner)
    except ValueError as exc:
        module.fail_json(msg="node_audit: %s" % exc)

    for warning in result.pop("warnings", []):
        module.warn(warning)
    result["unsupported_reason"] = None
    result["gpu"] = None
    if params["gpu"]:
        result["gpu"] = gpu_view(module, params["nvidia_smi"], params["expected_gpu_count"], params["expected_gpu_model"],
                                 params["gpu_timeout"])
    result["last_converged_at"] = last_converged_at(module, params["stamp_path"])
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = audit(module, module.params)
    result["changed"] = False
    result["failed"] = False
    result["msg"] = "%s: %s" % (result.get("diagnosis"), result.get("msg") or "")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
