# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests ``ringrift.cluster.valid`` and ``ringrift.cluster.whole_match``.

One file holds both tests, so each is documented in its own file beside it (``valid.yml``,
``whole_match.yml``), as ansible-core documents its own tests: a DOCUMENTATION here would be
shown by ``ansible-doc`` for both names.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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
