# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin behind ringrift.cluster.fleet_report: runs on the controller."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.ringrift.cluster.plugins.module_utils import fleet_report

ARGUMENT_SPEC = {
    "hosts": {"type": "list", "elements": "str"},
    "result_var": {"type": "str", "default": "fleet_audit_node"},
    "voters": {"type": "list", "elements": "str"},
    "quorum_size": {"type": "int"},
    "report_dir": {"type": "str", "default": "reports"},
    "kind": {"type": "str", "default": "audit", "choices": ["audit", "dry_run"]},
    "inventory_source": {"type": "str"},
    "playbook": {"type": "str", "default": "playbooks/site.yml"},
    "write": {"type": "bool", "default": True},
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
            voters = list(task_vars.get("groups", {}).get("p2p_voters", []))
            for name in hosts:
                declared = hostvars.get(name, {}).get("ringrift_p2p_voters")
                if declared:
                    voters = list(declared)
                    break
        try:
            report = fleet_report.build_report(
                records, voters, kind=args["kind"], quorum_size=args["quorum_size"],
                inventory_source=args["inventory_source"], playbook=args["playbook"])
        except ValueError as exc:
            raise AnsibleActionFail("fleet_report: %s" % exc)

        result.update(changed=False, summary=report["summary"], quorum=report["quorum"],
                      recommendations=report["recommendations"], hosts=report["hosts"],
                      markdown=fleet_report.render_markdown(report))
        if args["write"]:
            report_dir = os.path.abspath(os.path.expanduser(args["report_dir"]))
            try:
                result["json_path"], result["md_path"] = fleet_report.write_report(report, report_dir)
            except OSError as exc:
                raise AnsibleActionFail("fleet_report: cannot write the report under %s: %s" % (report_dir, exc))
        return result
