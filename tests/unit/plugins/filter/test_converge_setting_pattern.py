# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ringrift.cluster.converge_setting_pattern: the fast path's setting names come from the roles themselves."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.ringrift.cluster.plugins.filter.converge_setting_pattern import (
    COLLECTION_ROOT, converge_setting_pattern, node_roles)


def test_the_node_roles_are_those_that_depend_on_the_contract():
    assert node_roles() == ["cuda_check", "p2p_daemon", "p2p_service", "p2p_verify", "p2p_watchdog", "python_deps"]
    # Controller-side roles and the contract itself are not node settings.
    for controller_role in ("fleet_alert", "audit_schedule", "p2p_contract"):
        assert os.path.isdir(os.path.join(COLLECTION_ROOT, "roles", controller_role))
        assert controller_role not in node_roles()


def test_a_new_node_role_is_in_the_pattern_without_editing_a_list(tmp_path):
    for role, depends in (("p2p_daemon", True), ("gpu_tuning", True), ("fleet_alert", False), ("docs_only", None)):
        meta = tmp_path / "roles" / role / "meta"
        meta.mkdir(parents=True)
        if depends is not None:
            deps = "  - role: ringrift.cluster.p2p_contract\n" if depends else "  []\n"
            (meta / "main.yml").write_text("---\ndependencies:\n" + deps)
    pattern = converge_setting_pattern(["ringrift"], root=str(tmp_path))
    assert pattern == "^(ringrift|gpu_tuning|p2p_daemon)_."
    assert re.match(pattern, "gpu_tuning_clock") and not re.match(pattern, "fleet_alert_slack_url")
    assert not re.match(pattern, "ringrift_") and re.match(pattern, "ringrift_p2p_port")


@pytest.mark.parametrize("bad", ["ringrift", ["Ringrift"], ["a|b"], [1]])
def test_bad_prefixes_are_refused(bad):
    with pytest.raises(AnsibleFilterError, match="list of variable name prefixes"):
        converge_setting_pattern(bad)
