# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ringrift.cluster.quorum_decision."""

from __future__ import annotations

DOCUMENTATION = r"""
name: quorum_decision
short_description: Decide whether a P2P voter may be restarted without breaking quorum
version_added: 0.1.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Input is a mapping of voter name to whether its daemon is alive right now (from
    C(ringrift.cluster.p2p_listener) run against every voter just before), either as a boolean or as the
    module's C(diagnosis) (C(healthy) and C(busy) are alive, anything else is not).
  - A voter that is down already may always be restarted. A live voter may only be restarted when the
    other live voters are still a quorum without it.
  - Quorum is a strict majority of O(voters) unless O(quorum_size) sets it explicitly.
options:
  _input:
    description: Voter name to alive (bool) or to its C(p2p_listener) diagnosis.
    type: dict
    required: true
  voter:
    description: The voter about to be restarted.
    type: str
    required: true
  voters:
    description: The whole C(p2p_voters) list.
    type: list
    elements: str
    required: true
  quorum_size:
    description: Explicit quorum size; a strict majority when omitted.
    type: int
"""

EXAMPLES = r"""
- name: Refuse to restart a voter that quorum cannot spare
  ansible.builtin.set_fact:
    restart_decision: "{{ alive_by_voter | ringrift.cluster.quorum_decision(inventory_hostname, groups['p2p_voters']) }}"
"""

RETURN = r"""
_value:
  description: C(allowed) (bool), C(reason) (str), C(others_alive) (int), C(required) (int).
  type: dict
"""

from collections.abc import Sequence

from ansible.errors import AnsibleFilterError

from ansible_collections.ringrift.cluster.plugins.module_utils import fleet_report


def quorum_decision(alive_by_voter, voter, voters, quorum_size=None):
    """See DOCUMENTATION."""
    if not isinstance(alive_by_voter, dict):
        raise AnsibleFilterError("quorum_decision: input must be a mapping of voter to alive, got %s" % type(alive_by_voter).__name__)
    if isinstance(voters, (str, bytes)) or not isinstance(voters, Sequence):
        # list("a,b,c") would make voters of single characters.
        raise AnsibleFilterError("quorum_decision: voters must be a list of names, got %s" % type(voters).__name__)
    try:
        alive = dict((k, v in fleet_report.ALIVE if isinstance(v, str) else bool(v)) for k, v in alive_by_voter.items())
        return fleet_report.quorum_decision(voter, alive, list(voters), quorum_size)
    except ValueError as exc:
        raise AnsibleFilterError("quorum_decision: %s" % exc)


class FilterModule:
    def filters(self):
        return {"quorum_decision": quorum_decision}
