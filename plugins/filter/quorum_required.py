# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ringrift.cluster.quorum_required."""

from __future__ import annotations

DOCUMENTATION = r"""
name: quorum_required
short_description: Number of P2P voters that must be alive for leader election
version_added: 0.1.0
author:
  - RingRift maintainers (@ringrift)
description:
  - A strict majority of the C(p2p_voters) list (3 of 5), unless O(quorum_size) sets it explicitly.
options:
  _input:
    description: The C(p2p_voters) list.
    type: list
    elements: str
    required: true
  quorum_size:
    description: Explicit quorum size.
    type: int
"""

EXAMPLES = r"""
- name: Show the quorum size
  ansible.builtin.debug:
    msg: "{{ groups['p2p_voters'] | ringrift.cluster.quorum_required }} voters needed"
"""

RETURN = r"""
_value:
  description: Voters needed.
  type: int
"""

from collections.abc import Sequence

from ansible.errors import AnsibleFilterError

from ansible_collections.ringrift.cluster.plugins.module_utils import fleet_report


def quorum_required(voters, quorum_size=None):
    """Voters needed for quorum: explicit size or a strict majority."""
    if isinstance(voters, (str, bytes)) or not isinstance(voters, Sequence):
        # len("a,b,c") would count characters.
        raise AnsibleFilterError("quorum_required: input must be the list of voters, got %s" % type(voters).__name__)
    try:
        return fleet_report.quorum_required(len(voters), quorum_size)
    except ValueError as exc:
        raise AnsibleFilterError("quorum_required: %s" % exc)


class FilterModule:
    def filters(self):
        return {"quorum_required": quorum_required}
