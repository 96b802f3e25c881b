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
  - A host the inventory marks C(unsupported_os) (C(ringrift_unsupported_os)) whose audit task was skipped or
    produced nothing is reported as C(unsupported_os) with that reason, not as unreachable; it is counted apart
    and left out of the healthy share.
  - Writes C(fleet-audit-<UTC timestamp>.json) and C(.md) (or C(dry-run-...) for O(kind=dry_run)) under
    O(report_dir) on the controller, and with O(extra_formats) JUnit XML and Prometheus metrics next to them.
    The JSON schema and both extra formats are documented in C(docs/report-schema.md).
  - Every value in the Markdown is escaped for where it lands (table cell, code span, code block, text; HTML
    escaped), and every argument of a recommended command is shell-quoted.
  - Runs on the controller only, in its action plugin (with C(plugins/plugin_utils/fleet_report.py) and
    C(plugins/plugin_utils/quorum.py)); like M(ansible.builtin.template), this module file only documents it.
    Run it once per play (C(run_once)). It opens no connection, so it needs no C(delegate_to) (with one it
    works the same).
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
      - Every entry must be a host name (string); a name listed twice counts once, with a warning.
    type: list
    elements: str
  quorum_size:
    description:
      - Voters that must be alive for leader election (C(ringrift_quorum_size) in C(audit.yml)). Defaults to a
        strict majority of the distinct O(voters).
      - Must be an integer from that majority up to the number of distinct voters; anything else fails the task.
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
    description:
      - Playbook used in the recommended repair commands. The default, the collection's playbook by its
        fully qualified name, works from this repository's checkout and from an installed collection alike.
    type: str
    default: ringrift.cluster.site
  extra_formats:
    description:
      - Also write V(junit) (C(<prefix>-<UTC timestamp>.junit.xml), one test case per node) and/or V(prometheus)
        (C(<prefix>.prom), text exposition format for node_exporter's textfile collector, replaced on each run).
    type: list
    elements: str
    choices: [junit, prometheus]
    default: []
  min_healthy_share:
    description:
      - Floor for the share of nodes whose daemon is alive, from V(0) (off) to V(1). RV(healthy_share_ok) is false
        below it; C(audit.yml) fails on that (C(audit_min_healthy_share)).
    type: float
    default: 0
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
  register: fleet_report

- name: Write JUnit XML and Prometheus metrics as well, and flag a fleet below 80% healthy
  ringrift.cluster.fleet_report:
    extra_formats: [junit, prometheus]
    min_healthy_share: 0.8
  run_once: true
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
junit_path:
  description: Path of the JUnit XML report.
  returned: when O(write=true) and O(extra_formats) has V(junit)
  type: str
  sample: /home/operator/ringrift/reports/fleet-audit-20261128T120000Z.junit.xml
metrics_path:
  description: Path of the Prometheus metrics file.
  returned: when O(write=true) and O(extra_formats) has V(prometheus)
  type: str
  sample: /home/operator/ringrift/reports/fleet-audit.prom
healthy_share_ok:
  description: Whether the healthy share is at least O(min_healthy_share) (always true when it is 0).
  returned: always
  type: bool
summary:
  description: Fleet-wide counts.
  returned: always
  type: dict
  sample: {"total": 26, "managed": 26, "healthy": 6, "rate": 0.231, "crashed_missing_deps": 2, "crashed_checkout_import": 0,
           "not_started": 18, "starting": 0, "unreachable": 0, "unsupported_os": 0, "min_healthy_share": 0.0,
           "healthy_share_ok": true}
quorum:
  description: Voter quorum.
  returned: always
  type: dict
  contains:
    voters:
      description: The C(p2p_voters) list.
      type: list
      elements: str
    duplicate_voters:
      description: Names listed more than once in the voter list (each counts once).
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
