# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ringrift.cluster.fleet_alert_decision and fleet_alert_send_errors on reports built by fleet_report."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ringrift.cluster.plugins.filter import fleet_alert_decision as fad_mod
from ansible_collections.ringrift.cluster.plugins.filter import fleet_alert_send_errors as fse_mod
from ansible_collections.ringrift.cluster.plugins.plugin_utils import quorum
from ansible_collections.ringrift.cluster.plugins.plugin_utils import fleet_report
from ansible_collections.ringrift.cluster.plugins.plugin_utils import quorum

decide = fad_mod.FilterModule().filters()["fleet_alert_decision"]
send_errors = fse_mod.FilterModule().filters()["fleet_alert_send_errors"]

VOTERS = ["nebius-1", "nebius-2", "vultr-1"]


def report(diagnoses, voters=None, generated_at="2026-11-28T12:00:00Z"):
    """A real report (build_report) from host name -> diagnosis."""
    voters = VOTERS if voters is None else voters
    records = []
    for name, diagnosis in diagnoses.items():
        result = {"diagnosis": diagnosis}
        if diagnosis == "crashed":
            result["missing_module"] = "psutil"
        records.append(fleet_report.host_record(
            name, {"ringrift_provider": name.split("-")[0], "ringrift_is_voter": name in voters}, result))
    return fleet_report.build_report(records, quorum.status(records, voters), generated_at=generated_at)


HEALTHY = {"nebius-1": "healthy", "nebius-2": "healthy", "vultr-1": "busy", "vast-1": "healthy"}
QUORUM_LOST = {"nebius-1": "healthy", "nebius-2": "crashed", "vultr-1": "never_started", "vast-1": "healthy"}
# Quorum holds (2 of 3 voters) but 2 of 6 alive is under half.
SHARE_LOW = {"nebius-1": "healthy", "nebius-2": "healthy", "vultr-1": "never_started",
             "vast-1": "never_started", "vast-2": "crashed", "vast-3": "unreachable"}


def test_filters_are_exposed_under_their_names():
    assert fad_mod.FilterModule().filters() == {"fleet_alert_decision": fad_mod.fleet_alert_decision}
    assert fse_mod.FilterModule().filters() == {"fleet_alert_send_errors": fse_mod.fleet_alert_send_errors}


def test_quorum_loss_without_state_alerts_with_summary_nodes_and_commands():
    d = decide(report(QUORUM_LOST), "")
    assert d["send"] is True and d["event"] == "degraded" and d["status"] == "degraded"
    assert d["conditions"] == ["quorum_lost"]
    assert d["summary_line"] == ("2 of 4 nodes healthy (50%); voter quorum LOST: 1 of 3 voters alive, 2 required"
                                 " (down: nebius-2, vultr-1)")
    assert d["nodes_by_diagnosis"] == {"never_started": ["vultr-1"], "crashed": ["nebius-2"]}
    assert "ansible-playbook ringrift.cluster.site --tags deps --limit nebius-2" in d["commands"]
    assert "ansible-playbook ringrift.cluster.site --limit vultr-1" in d["commands"]
    slack = d["payloads"]["slack"]["text"]
    assert slack.startswith("RingRift fleet DEGRADED: voter quorum lost\n")
    assert "- crashed (1): nebius-2" in slack and "`ansible-playbook ringrift.cluster.site --limit vultr-1`" in slack
    assert d["payloads"]["discord"]["content"] == slack
    assert d["payloads"]["discord"]["allowed_mentions"] == {"parse": []}
    hook = d["payloads"]["webhook"]
    assert hook["event"] == "degraded" and hook["quorum"]["ok"] is False and hook["summary"]["healthy"] == 2
    assert hook["nodes_by_diagnosis"] == d["nodes_by_diagnosis"]
    assert d["state"]["status"] == "degraded" and d["state"]["since"] == "2026-11-28T12:00:00Z"
    assert d["state_changed"] is True
    json.dumps(d)  # the state file and the webhook body must serialise


def test_healthy_share_below_threshold_alerts_even_with_quorum():
    d = decide(report(SHARE_LOW), None, min_healthy_share=0.5)
    assert d["event"] == "degraded" and d["conditions"] == ["healthy_share_low"]
    assert decide(report(SHARE_LOW), None, min_healthy_share=0.3)["send"] is False
    assert decide(report(SHARE_LOW), None, min_healthy_share=0)["status"] == "ok"


def test_no_change_since_last_alert_sends_nothing_and_keeps_the_state():
    first = decide(report(QUORUM_LOST), "")
    state_text = json.dumps(first["state"])
    later = report(dict(QUORUM_LOST, **{"vultr-1": "unreachable"}), generated_at="2026-11-28T13:00:00Z")
    again = decide(later, state_text)
    assert again["send"] is False and again["event"] is None
    assert again["state"] == first["state"] and again["state_changed"] is False
    assert again["reason"] == "still degraded (voter quorum lost) as at the last alert"


def test_recovery_after_an_alert_sends_one_message():
    state = decide(report(QUORUM_LOST), "")["state"]
    d = decide(report(HEALTHY), state)
    assert d["send"] is True and d["event"] == "recovered" and d["status"] == "ok"
    assert d["payloads"]["slack"]["text"].startswith(
        "RingRift fleet RECOVERED: the fleet is back to ok (was: voter quorum lost)")
    assert d["nodes_by_diagnosis"] == {} and d["commands"] == []
    assert d["state"]["status"] == "ok" and d["state_changed"] is True
    steady = decide(report(HEALTHY), d["state"])
    assert steady["send"] is False and steady["state_changed"] is False


def test_ok_fleet_without_state_records_ok_but_sends_nothing():
    d = decide(report(HEALTHY), "")
    assert d["send"] is False and d["state"]["status"] == "ok" and d["state_changed"] is True


def test_other_conditions_while_degraded_send_a_changed_alert():
    state = decide(report(SHARE_LOW), "")["state"]
    worse = dict(SHARE_LOW, **{"nebius-2": "crashed"})
    d = decide(report(worse), state)
    assert d["event"] == "changed" and sorted(d["conditions"]) == ["healthy_share_low", "quorum_lost"]


def test_no_voters_means_no_quorum_condition():
    d = decide(report({"vast-1": "healthy"}, voters=[]), "")
    assert d["status"] == "ok" and "quorum" not in d["summary_line"]


def test_discord_content_is_cut_to_its_limit_and_long_lists_are_shortened():
    many = dict(("vast-%03d" % i, "never_started") for i in range(300))
    many.update({"nebius-1": "healthy"})
    d = decide(report(many, voters=["nebius-1"]), "")
    assert len(d["payloads"]["discord"]["content"]) <= 2000
    assert len(d["payloads"]["slack"]["text"]) <= 3900
    assert "and 288 more" in d["text"]
    assert d["payloads"]["webhook"]["nodes_by_diagnosis"]["never_started"][-1] == "vast-299"


@pytest.mark.parametrize("bad, words", [
    ([], "input must be the fleet report"),
    ({"summary": {"total": 1, "healthy": 1}, "hosts": []}, "no 'quorum' mapping"),
    ({"summary": {"total": "1", "healthy": 1}, "quorum": {}, "hosts": []}, "summary.total must be a non-negative integer"),
    ({"summary": {"total": 1, "healthy": 1}, "quorum": {}, "hosts": [{"name": "a"}]}, "hosts[0] needs"),
])
def test_bad_report_is_refused_with_the_field(bad, words):
    with pytest.raises(AnsibleFilterError, match=r"fleet_alert_decision: .*" + words.replace("[", r"\[").replace("]", r"\]")):
        decide(bad, "")


@pytest.mark.parametrize("share", [-0.1, 1.5, "half", True])
def test_bad_threshold_is_refused_naming_the_setting(share):
    with pytest.raises(AnsibleFilterError, match="fleet_alert_min_healthy_share"):
        decide(report(HEALTHY), "", min_healthy_share=share)


@pytest.mark.parametrize("state", ["{not json", '{"status": "broken", "conditions": []}', "[]"])
def test_corrupt_state_names_the_file(state):
    with pytest.raises(AnsibleFilterError, match="/tmp/x/fleet-alert.json.*delete the file"):
        decide(report(HEALTHY), state, state_file="/tmp/x/fleet-alert.json")


def test_send_errors_name_kind_and_status_only():
    results = [
        {"item": "slack", "status": 200, "url": "https://hooks.example/T/B/secret"},
        {"item": "discord", "status": 404, "msg": "Status code was 404: https://discord.example/api/webhooks/1/secret"},
        {"item": "webhook", "status": -1, "msg": "Request failed: <urlopen error https://hook.example/secret>"},
        {"item": "slack", "skipped": True},
    ]
    errors = send_errors(results, timeout=10)
    assert errors == ["discord: HTTP 404",
                      "webhook: no HTTP answer (connection refused, DNS or TLS failure or over 10 s)"]
    assert "secret" not in json.dumps(errors)
    with pytest.raises(AnsibleFilterError, match="results list"):
        send_errors({"results": []})
