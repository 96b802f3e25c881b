# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ringrift.cluster.p2p_contract."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: p2p_contract
short_description: Resolve the RingRift P2P daemon's contract (node id, port, paths, command line) for one host
version_added: 0.3.0
description:
  - One home for what every role and playbook of the collection must agree on about the daemon, so that
    a port, a path or a flag is never written twice. This filter resolves the contract from settings given
    explicitly; the role C(ringrift.cluster.p2p_contract) and the C(ringrift.cluster.p2p_contract) lookup resolve
    the same contract from a host's own variables (the role publishes it as the fact C(p2p_contract_daemon));
    see that role's argument spec for the settings and their defaults.
  - Validates every setting as a whole value (no trailing newline, no leading C(-)) and fails naming the host
    and each bad field; a setting of the old per-role names (C(p2p_service_port), ...) fails naming the one
    that replaced it.
options:
  _input:
    description: Mapping of the C(ringrift_*) settings (and C(p2p_daemon_git_repo), C(p2p_daemon_git_subdir)) to their values.
    type: dict
    required: true
  host:
    description: C(inventory_hostname), named in every message.
    type: str
    required: true
  home:
    description: The login user's home on the node; expands a leading C(~). Null leaves C(~) paths as they are.
    type: str
  ansible_host:
    description: Default advertise host.
    type: str
  ansible_user:
    description: The connection's user; the login user when O(login_user) is not given.
    type: str
  login_user:
    description:
      - The user Ansible logs in as, as the node reports it (C(ansible_facts.user_id)); default O(ansible_user), else V(root).
      - The daemon runs as this user unless C(ringrift_p2p_user) says otherwise, and tasks that need root escalate
        (C(become_root)) only when it is not V(root).
    type: str
  legacy:
    description: Names of variables defined for the host; any old per-role setting among them is an error.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Resolve the contract
  ansible.builtin.set_fact:
    daemon: "{{ {'ringrift_p2p_port': 8771} | ringrift.cluster.p2p_contract(inventory_hostname, home=ansible_facts.user_dir) }}"
"""

RETURN = r"""
_value:
  description:
    - The contract, keys C(node_id), C(port), C(bind_host), C(advertise_host), C(peers), C(user), C(service_dir),
      C(repo_dir), C(git_repo), C(venv), C(python), C(script), C(script_path), C(workdir), C(environment), C(argv),
      C(service_name), C(log_file), C(log_dir), C(config_dir), C(env_file), C(node_id_file), C(fleet_file),
      C(health_path), C(start_grace), C(start_marker), C(paths_expanded), C(login_user),
      C(become_root) (tasks that need root escalate), C(become_daemon) (the daemon's own files are written as C(user)).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.ringrift.cluster.plugins.plugin_utils.p2p_contract import ContractError, resolve


def p2p_contract(settings, host, home=None, ansible_host=None, ansible_user=None, legacy=None, login_user=None):
    if not isinstance(settings, dict):
        raise AnsibleFilterError("p2p_contract: the settings must be a mapping, got %s" % type(settings).__name__)
    try:
        return resolve(dict(settings), str(host), home=home, ansible_host=ansible_host, ansible_user=ansible_user,
                       legacy=list(legacy or []), login_user=login_user)
    except ContractError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"p2p_contract": p2p_contract}
