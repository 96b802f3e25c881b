# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lookup ringrift.cluster.p2p_contract."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: p2p_contract
short_description: The RingRift P2P daemon's contract for the host being templated, from its own variables
version_added: 0.3.0
description:
  - Reads the host's C(ringrift_*) settings (and C(p2p_daemon_git_repo), C(p2p_daemon_git_subdir)),
    C(ansible_host), C(ansible_user) and the facts C(user_id) and C(user_dir), and resolves the daemon's
    contract from them (see the C(ringrift.cluster.p2p_contract) filter for its keys).
  - The role C(ringrift.cluster.p2p_contract) publishes this as the fact C(p2p_contract_daemon). A play that only
    reads the contract, such as C(ringrift.cluster.audit), sets it as a play variable from this lookup instead, so
    it is then resolved where the task that reads it is templated, in that host's worker, and the play runs no
    task per host for it.
  - Every setting is validated as a whole value; the lookup fails naming the host and each bad field, and names
    the one setting that replaced an old per-role setting (C(p2p_service_port), ...) that is still set.
options:
  expand_home:
    description:
      - Expand a leading C(~) in paths with the login user's home, the fact C(user_dir) (gather facts first;
        without the fact, paths stay as they are and the contract's C(paths_expanded) is false).
      - V(false) for plays that never open a path on the node with it.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Audit without a task per host for the contract
  hosts: p2p_enabled
  gather_facts: false
  vars:
    p2p_contract_daemon: "{{ lookup('ringrift.cluster.p2p_contract') }}"
  tasks:
    - name: Port of this host's daemon
      ansible.builtin.debug:
        msg: "{{ p2p_contract_daemon.port }}"
"""

RETURN = r"""
_raw:
  description: One element, the contract, as the C(ringrift.cluster.p2p_contract) filter returns it.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.ringrift.cluster.plugins.plugin_utils.p2p_contract import ContractError, resolve_vars


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if terms:
            raise AnsibleLookupError("p2p_contract takes no terms (the host is the one being templated), got %r" % (terms,))
        if not variables or "inventory_hostname" not in variables:
            raise AnsibleLookupError("p2p_contract needs a host's variables: use it in a play or task, not on its own")
        host = str(self._templar.template(variables["inventory_hostname"]))
        try:
            return [resolve_vars(variables, host, template=self._templar.template, expand_home=self.get_option("expand_home"))]
        except ContractError as exc:
            raise AnsibleLookupError(str(exc))
