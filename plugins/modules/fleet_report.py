#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: fleet_report
short_description: Write the fleet audit report (JSON and Markdown) on the controller
version_added: 0.1.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Collects the registered C(ringrift.cluster.node_audit) result of every host of the play (unreachable
    hosts included, when the audit task used C(ignore_unreachable)), with the inventory's C(ringrift_*)
    facts, and aggregates them per provider, per root cause and for the voter quorum.
  - Writes C(fleet-audit-<UTC timestamp>.json) and C(.md) (or C(dry-run-...) for O(kind=dry_run)) under
    O(report_dir) on the controller. The JSON schema is documented in C(docs/report-schema.md).
  - Runs on the controller only (action plugin); run it once per play (C(run_once)).
  - It writes the report in check mode too, because the report is the point of a dry run and it changes nothing
    on the managed nodes. It always returns C(changed=false).
options:
  hosts:
    description: Hosts to report on. Defaults to every host of the play, including unreachable ones.
    type: list
    elements: str
  result_var:
    description: Name of the variable holding each host's registered C(node_audit) result.
    type: str
    default: fleet_audit_node
  voters:
    description:
      - The C(p2p_voters) list. Defaults to the inventory's C(ringrift_p2p_voters), else the members of
        group C(p2p_voters).
    type: list
    elements: str
  quorum_size:
    description:
      - Voters that must be alive for leader election. Defaults to a strict majority of O(voters).
    type: int
  report_dir:
    description: Directory on the controller for the report files, created when missing.
    type: str
    default: reports
  kind:
    description: C(audit) for the fleet report, C(dry_run) for the check-mode report.
    type: str
    default: audit
    choices: [audit, dry_run]
  inventory_source:
    description: Where the inventory came from, printed in the report header.
    type: str
  playbook:
    description: Playbook path used in the recommended commands.
    type: str
    default: playbooks/site.yml
  write:
    description: Write the files. C(false) only returns the aggregates.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Writes the report on the controller in check mode as well; managed nodes are never touched.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: ringrift.cluster.node_audit
"""

EXAMPLES = r"""
- name: Inspect every node in one module call
  ringrift.cluster.node_audit:
    node_id: "{{ inventory_hostname }}"
  register: fleet_audit_node
  ignore_unreachable: true

- name: Write the fleet report
  ringrift.cluster.fleet_report:
    report_dir: reports
  run_once: true
  delegate_to: localhost
  register: fleet_report

- name: Gate automation on the voter quorum
  ansible.builtin.fail:
    msg: "Voter quorum lost: {{ fleet_report.quorum.healthy_voters | length }} of {{ fleet_report.quorum.required }}"
  when: not fleet_report.quorum.ok
  run_once: true
"""

RETURN = r"""
json_path:
  description: Path of the JSON report.
  returned: when O(write=true)
  type: str
  sample: /home/operator/ringrift/reports/fleet-audit-20261128T120000Z.json
md_path:
  description: Path of the Markdown report.
  returned: when O(write=true)
  type: str
  sample: /home/operator/ringrift/reports/fleet-audit-20261128T120000Z.md
summary:
  description: Fleet-wide counts.
  returned: always
  type: dict
  sample: {"total": 26, "healthy": 6, "rate": 0.231, "crashed_missing_deps": 2, "not_started": 18, "unreachable": 0}
quorum:
  description: Voter quorum.
  returned: always
  type: dict
  contains:
    voters:
      description: The C(p2p_voters) list.
      type: list
      elements: str
    healthy_voters:
      description: Voters whose daemon is alive (C(healthy) or C(busy)).
      type: list
      elements: str
    required:
      description: Voters needed for leader election.
      type: int
    ok:
      description: Whether enough voters are alive.
      type: bool
    at_risk:
      description: Whether the quorum is lost or one more voter loss would break it.
      type: bool
recommendations:
  description: Commands that fix what is broken, grouped by fix.
  returned: always
  type: list
  elements: dict
hosts:
  description: One record per host (see C(docs/report-schema.md)).
  returned: always
  type: list
  elements: dict
markdown:
  description: The Markdown report text.
  returned: always
  type: str
"""
