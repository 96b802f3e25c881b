# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ringrift.cluster.expand_home: ~ is the login user's home, and only that user's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ringrift.cluster.plugins.filter.expand_home import FilterModule, expand_home


@pytest.mark.parametrize("path, home, expected", [
    ("~", "/home/ubuntu", "/home/ubuntu"),
    ("~/ringrift/ai-service", "/home/ubuntu", "/home/ubuntu/ringrift/ai-service"),
    ("~/ringrift/ai-service", "/root/", "/root/ringrift/ai-service"),
    ("/workspace/ringrift/ai-service", "/root", "/workspace/ringrift/ai-service"),
    ("relative/dir", "/root", "relative/dir"),
    (None, "/root", None),
])
def test_expand_home(path, home, expected):
    assert expand_home(path, home) == expected


def test_another_users_home_is_refused():
    with pytest.raises(AnsibleFilterError, match="names another user's home"):
        expand_home("~operator/ringrift", "/root")


def test_filter_is_registered_under_its_name():
    assert FilterModule().filters()["expand_home"] is expand_home
