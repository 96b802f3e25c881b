# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ringrift.cluster.expand_home."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: expand_home
short_description: Expand a leading C(~) in a path with a given home directory
version_added: 0.1.0
description:
  - C(distributed_hosts.yaml) writes checkout and venv paths relative to the SSH user's home
    (C(~/ringrift/ai-service)). Unit files and environment files need absolute paths, and the
    home directory is only known on the node (C(ansible_facts.user_dir)).
  - Paths without a leading C(~) are returned unchanged; C(~other/x) forms are rejected because
    the controller cannot know another user's home.
options:
  _input:
    description: The path to expand.
    type: str
    required: true
  home:
    description: The home directory to substitute for C(~).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Absolute checkout path for the unit file
  ansible.builtin.set_fact:
    checkout: "{{ '~/ringrift/ai-service' | ringrift.cluster.expand_home(ansible_facts.user_dir) }}"
"""

RETURN = r"""
_value:
  description: The path with C(~) replaced by O(home).
  type: str
"""

from ansible.errors import AnsibleFilterError


def expand_home(path, home):
    """Return path with a leading '~' or '~/' replaced by home."""
    if path is None:
        return path
    path = str(path)
    if path == "~":
        return str(home)
    if path.startswith("~/"):
        return str(home).rstrip("/") + path[1:]
    if path.startswith("~"):
        raise AnsibleFilterError(
            "expand_home: %r names another user's home; write it as an absolute path" % path
        )
    return path


class FilterModule(object):
    def filters(self):
        return {"expand_home": expand_home}
