# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ringrift.cluster.converge_setting_pattern."""

from __future__ import annotations

DOCUMENTATION = r"""
name: converge_setting_pattern
short_description: The variable names a converge of a node depends on, as one regular expression
version_added: 0.3.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Returns a regular expression matching C(PREFIX_...) for each prefix given and C(ROLE_...) for every role of this
    collection that runs on the nodes, read from the collection itself (a role whose C(meta/main.yml) depends on
    C(ringrift.cluster.p2p_contract)). A new node role's settings are part of the fast path's fingerprint without
    anyone editing a list.
  - C(playbooks/site.yml) passes the result to the C(ansible.builtin.varnames) lookup and hashes those variables with
    C(ringrift.cluster.converge_fingerprint).
options:
  _input:
    description: Prefixes to include besides the roles' own, such as V(ringrift) (the contract's settings).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Fingerprint this host's converge settings
  ansible.builtin.set_fact:
    site_fingerprint: "{{ dict(names | zip(query('ansible.builtin.vars', *names))) | ringrift.cluster.converge_fingerprint }}"
  vars:
    names: "{{ query('ansible.builtin.varnames', ['ringrift'] | ringrift.cluster.converge_setting_pattern) }}"
"""

RETURN = r"""
_value:
  description: A regular expression matching the names of the settings.
  type: str
  sample: ^(ringrift|cuda_check|p2p_daemon|p2p_service|p2p_verify|p2p_watchdog|python_deps)_.
"""

import os
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.yaml import yaml_load

# plugins/filter/<this file> -> the collection root.
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTRACT_ROLE = "ringrift.cluster.p2p_contract"


def node_roles(root=COLLECTION_ROOT):
    """Roles that run on the nodes: those that depend on the daemon's contract."""
    found = []
    roles_dir = os.path.join(root, "roles")
    for name in sorted(os.listdir(roles_dir)):
        meta = os.path.join(roles_dir, name, "meta", "main.yml")
        if not os.path.isfile(meta):
            continue
        with open(meta) as handle:
            data = yaml_load(handle) or {}
        for dependency in data.get("dependencies") or []:
            role = dependency.get("role") if isinstance(dependency, dict) else dependency
            if role == CONTRACT_ROLE:
                found.append(name)
                break
    return found


def converge_setting_pattern(prefixes, root=COLLECTION_ROOT):
    if not isinstance(prefixes, (list, tuple)) or not all(isinstance(p, str) and re.match(r"^[a-z][a-z0-9_]*$", p) for p in prefixes):
        raise AnsibleFilterError("converge_setting_pattern: the input must be a list of variable name prefixes, got %r" % (prefixes,))
    names = list(prefixes) + [role for role in node_roles(root) if role not in prefixes]
    return "^(%s)_." % "|".join(names)


class FilterModule(object):
    def filters(self):
        return {"converge_setting_pattern": converge_setting_pattern}
