# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests ``ringrift.cluster.valid`` and ``ringrift.cluster.whole_match``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: valid
short_description: whole-value check of a setting against one of the collection's value kinds
version_added: 0.3.0
description:
  - True when the value is a string whose whole text (never a prefix, never with a trailing
    newline) has the shape of the named kind, for example C(node_id), C(host), C(port), C(user),
    C(path), C(abs_path), C(service_name), C(word), C(peer_url), C(env_name), C(env_value),
    C(module_name), C(requirement), C(program), C(ssh_user), C(provider).
  - The same patterns are used by the inventory plugin and the modules
    (C(plugins/module_utils/validate.py)).
  - The companion test C(ringrift.cluster.whole_match) takes a regular expression and applies
    it with C(re.fullmatch).
options:
  _input:
    description: The value to check.
    type: raw
    required: true
  kind:
    description: Name of the value kind.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse a node id with a newline in it
  ansible.builtin.assert:
    that: p2p_node_id is ringrift.cluster.valid('node_id')
"""

RETURN = r"""
_value:
  description: Whether the value is valid.
  type: bool
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.ringrift.cluster.plugins.module_utils.validate import is_valid, whole_match


def valid(value, kind):
    if isinstance(value, int) and not isinstance(value, bool) and kind == "port":
        value = str(value)
    try:
        return is_valid(kind, value)
    except KeyError as exc:
        raise AnsibleFilterError(str(exc))


class TestModule(object):
    def tests(self):
        return {"valid": valid, "whole_match": whole_match}
