# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/plugin_utils/quorum.py: the one home of the voter quorum rules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ringrift.cluster.plugins.plugin_utils import quorum

FIVE = ["v1", "v2", "v3", "v4", "v5"]


def rec(name, alive):
    return {"name": name, "alive": alive}


# --------------------------------------------------------------------------- voter_list

def test_voter_list_keeps_order_and_counts_a_duplicate_once():
    assert quorum.voter_list(["a", "b", "a", "c", "b", "a"]) == (["a", "b", "c"], ["a", "b"])
    assert quorum.voter_list(("a", "b")) == (["a", "b"], [])
    assert quorum.voter_list([]) == ([], [])


@pytest.mark.parametrize("voters, match", [
    ("a,b,c", "p2p_voters must be a list of host names, got str"),
    (None, "p2p_voters must be a list of host names, got null"),
    (5, "p2p_voters must be a list of host names, got int"),
    ({"a": 1}, "p2p_voters must be a list of host names, got dict"),
    (["a", 5], r"p2p_voters entry 1 must be a host name \(a non-empty string\), got int 5"),
    (["a", None], "p2p_voters entry 1 must be a host name .*got null None"),
    ([["a"]], "p2p_voters entry 0 .*got list"),
    (["a", " "], "p2p_voters entry 1 .*got str ' '"),
])
def test_voter_list_refuses_what_is_not_a_list_of_names(voters, match):
    with pytest.raises(quorum.QuorumError, match=match):
        quorum.voter_list(voters)


def test_quorum_error_is_a_value_error():
    assert issubclass(quorum.QuorumError, ValueError)


def test_duplicate_warning():
    assert quorum.duplicate_warning([]) is None
    assert quorum.duplicate_warning(["a", "b"]) == "p2p_voters lists a, b more than once; each voter counts once"


# --------------------------------------------------------------------------- required

@pytest.mark.parametrize("voters, needed", [(0, 0), (1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)])
def test_required_is_a_strict_majority(voters, needed):
    assert quorum.required(voters) == needed
    assert quorum.majority(voters) == needed


@pytest.mark.parametrize("size", [None, "", "  "])
def test_required_unset_means_majority(size):
    assert quorum.required(5, size) == 3


@pytest.mark.parametrize("size, needed", [(3, 3), (4, 4), (5, 5), ("4", 4), (" 5 ", 5), (4.0, 4), ("+3", 3)])
def test_required_explicit_size_from_majority_to_all(size, needed):
    assert quorum.required(5, size) == needed


@pytest.mark.parametrize("size, match", [
    (2, "ringrift_quorum_size is 2, below a strict majority of the 5 p2p_voters \\(3\\).*between 3 and 5"),
    (1, "below a strict majority"),
    (0, "below a strict majority"),
    (-1, "below a strict majority"),
    ("-3", "is -3, below a strict majority"),
    (6, "ringrift_quorum_size is 6 but p2p_voters lists 5 distinct voter\\(s\\): a quorum of 6 could never be met"),
    ("many", "ringrift_quorum_size must be an integer, got str 'many'"),
    ("3.5", "must be an integer, got str '3.5'"),
    (3.5, "must be an integer, got float 3.5"),
    (True, "must be an integer, got bool True"),
    ([3], "must be an integer, got list"),
    ("\u00b3", "must be an integer"),
])
def test_required_refuses_an_impossible_or_below_majority_size(size, match):
    with pytest.raises(quorum.QuorumError, match=match):
        quorum.required(5, size)


def test_required_explicit_size_without_voters_is_refused():
    with pytest.raises(quorum.QuorumError, match="ringrift_quorum_size is 2 but p2p_voters is empty"):
        quorum.required(0, 2)


def test_required_names_the_given_field():
    with pytest.raises(quorum.QuorumError, match=r"^quorum_size \(x\) is 9 "):
        quorum.required(5, 9, "quorum_size (x)")


# --------------------------------------------------------------------------- status

def test_status_lost_with_two_of_five():
    records = [rec("v1", True), rec("v2", False), rec("v3", True), rec("v4", False), rec("w1", True)]
    assert quorum.status(records, FIVE) == {
        "voters": FIVE,
        "duplicate_voters": [],
        "healthy_voters": ["v1", "v3"],
        "down_voters": ["v2", "v4", "v5"],
        "not_audited": ["v5"],
        "required": 3,
        "ok": False,
        "at_risk": True,
        "margin": -1,
    }


def test_status_a_voter_listed_twice_counts_once():
    """Regression: a duplicated live voter made 2 of 4 distinct voters look like a quorum of 3 of 5."""
    records = [rec("v1", True), rec("v2", True), rec("v3", False), rec("v4", False)]
    q = quorum.status(records, ["v1", "v2", "v3", "v4", "v1"])
    assert q["voters"] == ["v1", "v2", "v3", "v4"]
    assert q["duplicate_voters"] == ["v1"]
    assert q["healthy_voters"] == ["v1", "v2"]
    assert (q["required"], q["ok"], q["margin"]) == (3, False, -1)


def test_status_all_alive_is_not_at_risk_and_busy_counts():
    q = quorum.status([rec(n, True) for n in FIVE], FIVE)
    assert (q["ok"], q["margin"], q["at_risk"], q["down_voters"]) == (True, 2, False, [])


def test_status_explicit_size():
    records = [rec("v1", True), rec("v2", True), rec("v3", True), rec("v4", True)]
    q = quorum.status(records, FIVE, 4)
    assert (q["required"], q["ok"], q["margin"], q["at_risk"]) == (4, True, 0, True)
    q = quorum.status(records, FIVE, "5")
    assert (q["required"], q["ok"], q["margin"]) == (5, False, -1)


def test_status_without_voters_is_not_lost():
    q = quorum.status([rec("a", False)], [])
    assert (q["required"], q["ok"], q["at_risk"], q["margin"]) == (0, True, False, 0)


@pytest.mark.parametrize("voters, size", [(FIVE, 2), (FIVE, 6), (["v1", 7], None), ([], 2)])
def test_status_refuses_bad_input(voters, size):
    with pytest.raises(quorum.QuorumError):
        quorum.status([], voters, size)


# --------------------------------------------------------------------------- decision

def test_decision_down_voter_is_always_allowed():
    # Quorum is lost already (1 of 5): restarting a dead voter cannot make it worse.
    d = quorum.decision("v2", {"v1": True, "v2": False}, FIVE)
    assert d["allowed"] is True
    assert "down already" in d["reason"]
    assert (d["others_alive"], d["required"]) == (1, 3)


def test_decision_live_voter_allowed_with_a_majority_of_others():
    alive = {"v1": True, "v2": True, "v3": True, "v4": True, "v5": False}
    d = quorum.decision("v1", alive, FIVE)
    assert d == {"allowed": True, "reason": "3 other voters alive (v2, v3, v4), 3 required",
                 "others_alive": 3, "required": 3, "duplicate_voters": []}


def test_decision_live_voter_refused_when_three_of_five_alive():
    alive = {"v1": True, "v2": True, "v3": True, "v4": False, "v5": False}
    d = quorum.decision("v1", alive, FIVE)
    assert d["allowed"] is False
    assert d["reason"] == "restarting v1 would leave 2 live voters of 5 (3 required for quorum); skipped"


def test_decision_a_duplicated_voter_does_not_count_twice():
    """Regression: v2 listed twice counted as two live others, so v1's restart was allowed and broke quorum."""
    alive = {"v1": True, "v2": True, "v3": False, "v4": False, "v5": True}
    d = quorum.decision("v1", alive, ["v1", "v2", "v3", "v4", "v5", "v2"])
    assert (d["allowed"], d["others_alive"], d["required"]) == (False, 2, 3)
    assert d["duplicate_voters"] == ["v2"]


def test_decision_takes_diagnoses():
    alive = {"v1": "healthy", "v2": "busy", "v3": "healthy", "v4": "starting", "v5": "unreachable"}
    d = quorum.decision("v1", alive, FIVE)
    # busy counts; starting and unreachable do not.
    assert (d["allowed"], d["others_alive"]) == (False, 2)
    assert quorum.decision("v4", alive, FIVE)["allowed"] is True


def test_decision_explicit_quorum_size():
    alive = {"v1": True, "v2": True, "v3": True, "v4": True}
    assert quorum.decision("v1", alive, FIVE, 3)["allowed"] is True
    assert quorum.decision("v1", alive, FIVE, 4)["allowed"] is False
    with pytest.raises(quorum.QuorumError, match="below a strict majority"):
        quorum.decision("v1", alive, FIVE, 2)


def test_decision_non_voter_is_allowed():
    d = quorum.decision("worker-9", {"v1": True}, FIVE)
    assert (d["allowed"], d["reason"]) == (True, "worker-9 is not a voter")


@pytest.mark.parametrize("args, match", [
    ((5, {}, FIVE), "the voter to restart must be a host name"),
    (("v1", ["v1"], FIVE), "mapping"),
    (("v1", "v1=true", FIVE), "mapping"),
    (("v1", {"v2": 3}, FIVE), "the state of v2 must be a bool or a p2p_listener diagnosis, got int 3"),
    (("v1", {}, "v1,v2"), "p2p_voters must be a list"),
    (("v1", {}, ["v1", 2]), "p2p_voters entry 1"),
])
def test_decision_bad_input(args, match):
    with pytest.raises(quorum.QuorumError, match=match):
        quorum.decision(*args)


# --------------------------------------------------------------------------- declared

def test_declared_takes_the_first_host_with_a_voter_list_and_its_size():
    facts = {"a": {}, "b": {"ringrift_p2p_voters": [], "ringrift_quorum_size": 1},
             "c": {"ringrift_p2p_voters": ["v1", "v2", "v3"], "ringrift_quorum_size": 3},
             "d": {"ringrift_p2p_voters": ["other"]}}
    assert quorum.declared(facts, ["a", "b", "c", "d"]) == (["v1", "v2", "v3"], 3)
    assert quorum.declared(facts, ["d", "c"]) == (["other"], None)


def test_declared_without_a_voter_list_is_empty_and_leaves_the_fallback_to_the_caller():
    assert quorum.declared({"a": {"ringrift_quorum_size": 3}}, ["a", "missing"]) == ([], None)
    assert quorum.declared({}, []) == ([], None)
