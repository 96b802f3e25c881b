# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ringrift.cluster.p2p_contract_of."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: p2p_contract_of
short_description: The RingRift P2P daemon's contract of another host, from its host variables
version_added: 0.3.0
description:
  - Resolves the contract (see the C(ringrift.cluster.p2p_contract) filter) of the named host from its host
    variables (inventory, host and group vars, facts), for plays that must know other hosts' daemons, such as the
    quorum guard of C(site.yml), which asks every voter, including voters outside C(--limit).
  - Paths starting with C(~) stay unexpanded.
options:
  _input:
    description: The inventory name of the host.
    type: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Port of every voter's daemon
  ansible.builtin.debug:
    msg: "{{ (item | ringrift.cluster.p2p_contract_of(hostvars)).port }}"
  loop: "{{ groups['p2p_voters'] }}"
"""

RETURN = r"""
_value:
  description: The contract, as the C(ringrift.cluster.p2p_contract) filter returns it.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.ringrift.cluster.plugins.filter.p2p_contract import p2p_contract
from ansible_collections.ringrift.cluster.plugins.plugin_utils.p2p_contract import SETTINGS


def p2p_contract_of(host, hostvars):
    """The contract of another host from its host variables (inventory, host/group vars, facts).

    For a play that must know other hosts' daemons (the quorum guard asks every voter),
    including hosts outside ``--limit`` that never resolved their own; ``~`` stays unexpanded.
    """
    if host not in hostvars:
        raise AnsibleFilterError("p2p_contract_of: %s is not in the inventory" % host)
    variables = hostvars[host]
    settings = dict((name, variables.get(name)) for name in SETTINGS if name in variables)
    return p2p_contract(settings, host, ansible_host=variables.get("ansible_host"),
                        ansible_user=variables.get("ansible_user"))


class FilterModule(object):
    def filters(self):
        return {"p2p_contract_of": p2p_contract_of}
