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
    module's C(diagnosis) (C(healthy) and C(busy) are alive, anything else, C(starting) included, is not).
  - A voter that is down already may always be restarted. A live voter may only be restarted when the
    other live voters are still a quorum without it.
  - Quorum is a strict majority of the distinct O(voters) unless O(quorum_size) sets it explicitly.
  - A voter listed more than once counts once, with a warning.
  - The rules live in C(plugins/plugin_utils/quorum.py), shared with C(ringrift.cluster.fleet_report).
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
    description: The whole C(p2p_voters) list; every entry must be a host name (string).
    type: list
    elements: str
    required: true
  quorum_size:
    description:
      - Explicit quorum size (usually C(ringrift_quorum_size)); a strict majority when omitted, V(null) or empty.
      - Must be an integer from a strict majority of the distinct voters up to their number; anything else fails
        the task with an error naming C(ringrift_quorum_size).
    type: int
"""

EXAMPLES = r"""
- name: Refuse to restart a voter that quorum cannot spare
  ansible.builtin.set_fact:
    restart_decision: "{{ alive_by_voter | ringrift.cluster.quorum_decision(inventory_hostname, groups['p2p_voters']) }}"
"""

RETURN = r"""
_value:
  description:
    - C(allowed) (bool), C(reason) (str), C(others_alive) (int), C(required) (int) and C(duplicate_voters)
      (list of names listed more than once).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.ringrift.cluster.plugins.plugin_utils import quorum

display = Display()


def quorum_decision(alive_by_voter, voter, voters, quorum_size=None):
    """See DOCUMENTATION."""
    try:
        decision = quorum.decision(voter, alive_by_voter, voters, quorum_size)
    except quorum.QuorumError as exc:
        raise AnsibleFilterError("quorum_decision: %s" % exc)
    warning = quorum.duplicate_warning(decision["duplicate_voters"])
    if warning:
        display.warning("quorum_decision: %s" % warning)
    return decision


class FilterModule:
    def filters(self):
        return {"quorum_decision": quorum_decision}
