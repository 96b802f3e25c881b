# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin behind ringrift.cluster.fleet_report: all its work, on the controller.

The logic lives in ``plugins/plugin_utils/fleet_report.py`` (records, report, files) and
``plugins/plugin_utils/quorum.py`` (voters, quorum); ``plugins/modules/fleet_report.py`` only
documents the action.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.ringrift.cluster.plugins.plugin_utils import fleet_report
from ansible_collections.ringrift.cluster.plugins.plugin_utils import quorum

ARGUMENT_SPEC = {
    "hosts": {"type": "list", "elements": "str"},
    "result_var": {"type": "str", "default": "fleet_audit_node"},
    # Elements are checked by plugin_utils.quorum: a number must not silently become a voter name.
    "voters": {"type": "list"},
    # Validated by plugin_utils.quorum (integer, majority..voters), with the variable's name.
    "quorum_size": {"type": "raw"},
    "report_dir": {"type": "str", "default": "reports"},
    "kind": {"type": "str", "default": "audit", "choices": ["audit", "dry_run"]},
    "inventory_source": {"type": "str"},
    "playbook": {"type": "str", "default": fleet_report.SITE_PLAYBOOK},
    "write": {"type": "bool", "default": True},
    "extra_formats": {"type": "list", "elements": "str", "default": [], "choices": list(fleet_report.EXTRA_FORMATS)},
    "min_healthy_share": {"type": "raw", "default": 0},
}


class ActionModule(ActionBase):
    """Collect every play host's audit result and write the fleet report."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail("fleet_report: " + "; ".join(validation.error_messages))
        args = validation.validated_parameters

        hostvars = task_vars.get("hostvars", {})
        hosts = args["hosts"] or task_vars.get("ansible_play_hosts_all") or []
        records = []
        for name in hosts:
            facts = hostvars.get(name, {})
            records.append(fleet_report.host_record(name, facts, facts.get(args["result_var"])))

        voters = args["voters"]
        if voters is None:
            # The size comes from the task (audit.yml passes ringrift_quorum_size), not from a host's vars.
            voters = quorum.declared(hostvars, hosts)[0] or list(task_vars.get("groups", {}).get("p2p_voters", []))
        try:
            quorum_status = quorum.status(records, voters, args["quorum_size"], "quorum_size (ringrift_quorum_size)")
            report = fleet_report.build_report(
                records, quorum_status, kind=args["kind"], inventory_source=args["inventory_source"],
                playbook=args["playbook"],
                min_healthy_share=fleet_report.healthy_share_floor(args["min_healthy_share"],
                                                                   "min_healthy_share (audit_min_healthy_share)"))
        except ValueError as exc:
            raise AnsibleActionFail("fleet_report: %s" % exc)
        warning = quorum.duplicate_warning(quorum_status["duplicate_voters"])
        if warning:
            result.setdefault("warnings", []).append("fleet_report: %s" % warning)

        result.update(changed=False, summary=report["summary"], quorum=report["quorum"],
                      recommendations=report["recommendations"], hosts=report["hosts"],
                      healthy_share_ok=report["summary"]["healthy_share_ok"],
                      markdown=fleet_report.render_markdown(report))
        if args["write"]:
            report_dir = os.path.abspath(os.path.expanduser(args["report_dir"]))
            try:
                result.update(fleet_report.write_report(report, report_dir, extra_formats=args["extra_formats"]))
            except OSError as exc:
                raise AnsibleActionFail("fleet_report: cannot write the report under %s: %s" % (report_dir, exc))
        return result
