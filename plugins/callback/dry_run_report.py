# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: dry_run_report
type: aggregate
short_description: Write a dry-run report when a playbook runs with --check
version_added: 0.1.0
author:
  - RingRift maintainers (@ringrift)
description:
  - In check mode only, records for every host the tasks that would change and why, and the findings of
    every C(ringrift.cluster.node_audit) task, then writes C(dry-run-<UTC timestamp>.json) and C(.md) in
    the fleet report format (see C(docs/report-schema.md)) when the playbook ends.
  - Outside check mode it does nothing.
  - Results of C(no_log) tasks are never copied; only the task name is kept.
  - It never writes to standard output, which belongs to the stdout callback (so that the output of
    C(ANSIBLE_STDOUT_CALLBACK=json) stays one JSON document). The line naming the report files and any
    warning go to standard error.
  - The voter quorum uses the first C(ringrift_p2p_voters) and C(ringrift_quorum_size) host variables found;
    an invalid size is warned about and the report uses a strict majority.
  - Needs enabling, for example C(callbacks_enabled = ringrift.cluster.dry_run_report) in C(ansible.cfg)
    (the collection's own C(ansible.cfg) does).
requirements:
  - enable in configuration
options:
  report_dir:
    description: Directory on the controller for the report files.
    type: str
    default: reports
    env:
      - name: RINGRIFT_REPORT_DIR
    ini:
      - section: ringrift
        key: report_dir
"""

import os

from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.ringrift.cluster.plugins.plugin_utils import fleet_report
from ansible_collections.ringrift.cluster.plugins.plugin_utils import quorum

AUDIT_ACTIONS = frozenset(("ringrift.cluster.node_audit", "node_audit"))
# Arguments that say what a task would touch, in the order worth quoting.
_TARGET_ARGS = ("dest", "path", "name", "unit", "src", "virtualenv", "state", "requirements")


class CallbackModule(CallbackBase):
    """Collects would-change tasks and audit findings in check mode."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "ringrift.cluster.dry_run_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._changes = {}
        self._audits = {}
        self._facts = {}
        self._playbook = None

    @staticmethod
    def _check_mode():
        return bool(context.CLIARGS.get("check"))

    def v2_playbook_on_start(self, playbook):
        self._playbook = os.path.basename(getattr(playbook, "_file_name", "") or "")

    def v2_runner_on_ok(self, result):
        if not self._check_mode():
            return
        task = result._task
        host = result._host
        self._facts.setdefault(host.name, host.get_vars())
        if task.action in AUDIT_ACTIONS:
            self._audits[host.name] = result._result
            return
        if result._result.get("changed"):
            self._changes.setdefault(host.name, []).append({
                "stage": task._role.get_name() if task._role else "play",
                "task": task.get_name(),
                "action": task.action,
                "why": self._why(task, result._result),
            })

    def v2_runner_on_unreachable(self, result):
        if self._check_mode():
            self._facts.setdefault(result._host.name, result._host.get_vars())
            self._audits[result._host.name] = {"unreachable": True, "msg": result._result.get("msg")}

    @staticmethod
    def _why(task, res):
        if task.no_log or res.get("censored"):
            return "details hidden (no_log)"
        diff = res.get("diff")
        if isinstance(diff, list):
            diff = diff[0] if diff else None
        if isinstance(diff, dict):
            before = diff.get("before_header") or diff.get("before")
            after = diff.get("after_header") or diff.get("after")
            if isinstance(before, dict) and isinstance(after, dict):
                keys = sorted(k for k in after if before.get(k) != after.get(k))
                if keys:
                    return "; ".join("%s: %s -> %s" % (k, before.get(k), after.get(k)) for k in keys[:4])
        if res.get("msg"):
            return " ".join(str(res["msg"]).split())[:200]
        targets = ["%s=%s" % (k, task.args[k]) for k in _TARGET_ARGS if k in task.args and isinstance(task.args[k], (str, int, bool))]
        if targets:
            return "%s would change %s" % (task.action, ", ".join(targets))
        return "%s reports a change" % task.action

    def v2_playbook_on_stats(self, stats):
        if not self._check_mode() or not (self._changes or self._audits):
            return
        # Hosts enter the fleet tables only with an audit finding; changes are listed for all.
        hosts = sorted(set(self._audits) | set(self._changes))
        records = [fleet_report.host_record(h, self._facts.get(h, {}), self._audits[h]) for h in sorted(self._audits)]
        voters, size = quorum.declared(self._facts, hosts)
        try:
            quorum_status = quorum.status(records, voters, size)
        except quorum.QuorumError as exc:
            # The dry run must still report what would change; a real run fails on this.
            self._display.warning("dry_run_report: %s; the report uses a strict majority" % exc)
            try:
                quorum_status = quorum.status(records, voters)
            except quorum.QuorumError:
                quorum_status = quorum.status(records, [])
        warning = quorum.duplicate_warning(quorum_status["duplicate_voters"])
        if warning:
            self._display.warning("dry_run_report: %s" % warning)
        report = fleet_report.build_report(
            records, quorum_status, kind="dry_run",
            dry_run={"playbook": self._playbook, "hosts": self._changes,
                     "would_change_tasks": sum(len(v) for v in self._changes.values()),
                     "audited": sorted(self._audits)})
        report_dir = os.path.abspath(os.path.expanduser(self.get_option("report_dir")))
        paths = fleet_report.write_report(report, report_dir)
        # stderr: stdout is the stdout callback's (a json stdout must stay one JSON document).
        self._display.display("Dry-run report (nothing was changed): %s and %s" % (paths["json_path"], paths["md_path"]),
                              stderr=True)
