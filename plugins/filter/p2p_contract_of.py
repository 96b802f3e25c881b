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
  - Paths starting with C(~) stay unexpanded. The login user is the host's fact C(user_id) when its facts are
    known, else its C(ansible_user); an old per-role setting defined for it fails as in the C(p2p_contract) filter.
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
from ansible_collections.ringrift.cluster.plugins.plugin_utils.p2p_contract import ContractError, resolve_vars


def p2p_contract_of(host, hostvars):
    """The contract of another host from its host variables (inventory, host/group vars, facts).

    For a play that must know other hosts' daemons (the quorum guard asks every voter),
    including hosts outside ``--limit`` that never resolved their own; ``~`` stays unexpanded.
    """
    if host not in hostvars:
        raise AnsibleFilterError("p2p_contract_of: %s is not in the inventory" % host)
    try:
        return resolve_vars(hostvars[host], str(host))
    except ContractError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"p2p_contract_of": p2p_contract_of}
