# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ringrift.cluster.quorum_decision (the rules themselves: tests/unit/plugins/plugin_utils/test_quorum.py).

Called directly from their modules, and once through Jinja in a real playbook run so the
fully qualified filter names are proven to resolve from the checkout.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ringrift.cluster.plugins.filter import quorum_decision as qd_mod

from ansible_collections.ringrift.cluster.tests.helpers import ANSIBLE_PLAYBOOK, ansible_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
VOTERS = ["nebius-1", "nebius-2", "vultr-1", "vultr-2", "hetzner-1"]

quorum_decision = qd_mod.FilterModule().filters()["quorum_decision"]


def alive(*names):
    return dict((v, v in names) for v in VOTERS)


# --------------------------------------------------------------------------- quorum_decision

def test_filter_maps_are_exposed_under_their_names():
    assert qd_mod.FilterModule().filters() == {"quorum_decision": qd_mod.quorum_decision}


@pytest.mark.parametrize("up", [(), ("nebius-1",), ("nebius-1", "vultr-1", "vultr-2", "hetzner-1")])
def test_down_voter_is_always_allowed(up):
    d = quorum_decision(alive(*up), "nebius-2", VOTERS)
    assert d["allowed"] is True
    assert d["others_alive"] == len(up)
    assert d["required"] == 3
    assert "down already" in d["reason"]


def test_live_voter_allowed_with_a_majority_of_others_alive():
    d = quorum_decision(alive("nebius-1", "nebius-2", "vultr-1", "vultr-2"), "nebius-1", VOTERS)
    assert d == {
        "allowed": True,
        "reason": "3 other voters alive (nebius-2, vultr-1, vultr-2), 3 required",
        "others_alive": 3,
        "required": 3,
        "duplicate_voters": [],
    }


def test_five_voters_three_alive_a_live_one_is_refused():
    d = quorum_decision(alive("nebius-1", "vultr-1", "hetzner-1"), "vultr-1", VOTERS)
    assert d["allowed"] is False
    assert (d["others_alive"], d["required"]) == (2, 3)
    assert d["reason"] == "restarting vultr-1 would leave 2 live voters of 5 (3 required for quorum); skipped"


def test_explicit_quorum_size():
    state = alive("nebius-1", "vultr-1", "hetzner-1", "nebius-2")
    d = quorum_decision(state, "vultr-1", VOTERS, 3)
    assert (d["allowed"], d["required"]) == (True, 3)
    d = quorum_decision(state, "vultr-1", VOTERS, quorum_size=4)
    assert (d["allowed"], d["required"]) == (False, 4)
    # Templated values arrive as strings; none and "" mean a majority.
    assert quorum_decision(state, "vultr-1", VOTERS, "3")["allowed"] is True
    assert quorum_decision(state, "vultr-1", VOTERS, None)["required"] == 3
    assert quorum_decision(state, "vultr-1", VOTERS, "")["required"] == 3


def test_a_voter_listed_twice_counts_once_with_a_warning(monkeypatch):
    """Regression: nebius-2 listed twice counted as two live voters and let vultr-1 go down (2 of 5 left)."""
    warnings = []
    monkeypatch.setattr(qd_mod.display, "warning", warnings.append)
    d = quorum_decision(alive("nebius-2", "vultr-1", "hetzner-1"), "vultr-1", VOTERS + ["nebius-2"])
    assert (d["allowed"], d["others_alive"], d["duplicate_voters"]) == (False, 2, ["nebius-2"])
    assert warnings == ["quorum_decision: p2p_voters lists nebius-2 more than once; each voter counts once"]
    warnings[:] = []
    quorum_decision(alive(), "vultr-1", VOTERS)
    assert warnings == []


def test_diagnoses_as_input():
    state = {"nebius-1": "healthy", "nebius-2": "busy", "vultr-1": "healthy", "vultr-2": "crashed",
             "hetzner-1": "never_started"}
    # nebius-2 (busy) and vultr-1 (healthy) are the other live voters: 2 < 3.
    d = quorum_decision(state, "nebius-1", VOTERS)
    assert (d["allowed"], d["others_alive"]) == (False, 2)
    assert quorum_decision(state, "vultr-2", VOTERS)["allowed"] is True


def test_missing_voters_count_as_down():
    d = quorum_decision({"nebius-1": True, "vultr-1": True}, "nebius-1", VOTERS)
    assert (d["allowed"], d["others_alive"]) == (False, 1)


def test_non_voter_is_allowed():
    d = quorum_decision(alive(), "runpod-3", VOTERS)
    assert d["allowed"] is True
    assert d["reason"] == "runpod-3 is not a voter"


@pytest.mark.parametrize("args, match", [
    ((["nebius-1"], "nebius-1", VOTERS), "mapping"),
    (("nebius-1=true", "nebius-1", VOTERS), "mapping"),
    ((None, "nebius-1", VOTERS), "mapping"),
    (({"nebius-1": True}, "nebius-1", VOTERS, 0), "quorum_decision: ringrift_quorum_size is 0, below a strict majority"),
    (({"nebius-1": True}, "nebius-1", VOTERS, 2), "ringrift_quorum_size is 2, below a strict majority of the 5 p2p_voters"),
    (({"nebius-1": True}, "nebius-1", VOTERS, 6), "ringrift_quorum_size is 6 but p2p_voters lists 5 distinct"),
    (({"nebius-1": True}, "nebius-1", VOTERS, "many"), "quorum_decision: ringrift_quorum_size must be an integer"),
    (({"nebius-1": True}, "nebius-1", ["nebius-1", 7]), "quorum_decision: p2p_voters entry 1 must be a host name"),
    (({"nebius-1": True}, None, VOTERS), "the voter to restart must be a host name"),
    (({"nebius-1": True}, "nebius-1", "nebius-1,nebius-2,vultr-1"), "list"),
    (({"nebius-1": True}, "nebius-1", None), "list"),
])
def test_bad_input_raises_filter_error(args, match):
    with pytest.raises(AnsibleFilterError, match=match):
        quorum_decision(*args)


# --------------------------------------------------------------------------- through Jinja

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    voters: [nebius-1, nebius-2, vultr-1, vultr-2, hetzner-1]
    state: {nebius-1: true, nebius-2: false, vultr-1: true, vultr-2: false, hetzner-1: true}
  tasks:
    - name: Evaluate the filters by their fully qualified names
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0644"
        content: "{{ {
          'live': state | ringrift.cluster.quorum_decision('vultr-1', voters),
          'down': state | ringrift.cluster.quorum_decision('nebius-2', voters),
          'explicit': state | ringrift.cluster.quorum_decision('vultr-1', voters, quorum_size=2 + 1),
          'twice': state | ringrift.cluster.quorum_decision('vultr-1', voters + ['hetzner-1']),
        } | to_json }}"

    - name: A bad quorum size fails the task
      ansible.builtin.debug:
        msg: "{{ state | ringrift.cluster.quorum_decision('vultr-1', voters, quorum_size=2) }}"
      register: bad
      ignore_errors: true

    - name: Record the failure
      ansible.builtin.copy:
        dest: "{{ out }}.bad"
        mode: "0644"
        content: "{{ {'failed': bad.failed, 'msg': bad.msg} | to_json }}"
"""


def test_filters_resolve_by_fqcn_in_a_playbook(tmp_path):
    playbook = tmp_path / "filters.yml"
    playbook.write_text(PLAYBOOK)
    out = tmp_path / "out.json"
    env = ansible_env(ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
                      RINGRIFT_REPORT_DIR=str(tmp_path / "reports"))
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", "out=%s" % out, str(playbook)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout
    got = json.loads(out.read_text())
    assert got["live"] == {"allowed": False, "others_alive": 2, "required": 3, "duplicate_voters": [],
                           "reason": "restarting vultr-1 would leave 2 live voters of 5 (3 required for quorum); skipped"}
    assert got["down"]["allowed"] is True
    assert got["explicit"]["allowed"] is False and got["explicit"]["required"] == 3
    assert got["twice"]["others_alive"] == 2 and got["twice"]["duplicate_voters"] == ["hetzner-1"]
    assert "p2p_voters lists hetzner-1 more than once; each voter counts once" in proc.stdout
    bad = json.loads((tmp_path / "out.json.bad").read_text())
    assert bad["failed"] is True
    assert "ringrift_quorum_size is 2, below a strict majority of the 5 p2p_voters (3)" in bad["msg"]
