# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet_report action plugin, run for real by ansible-playbook (the callback: tests/unit/plugins/callback).

Every host uses the local connection; the node_audit results are fakes set per host with
set_fact from a host variable, so the action sees exactly what a registered audit would hold.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml

from ansible_collections.ringrift.cluster.tests.helpers import (
    ANSIBLE_PLAYBOOK, REPO, ansible_env, ansible_playbook, free_port, only, write_inventory, write_play as play,
)

VOTERS = ["vast-1", "nebius-1", "vast-2"]
EXAMPLE_INVENTORY = os.path.join(REPO, "inventory", "example.distributed_hosts.yml")
SSH_ERROR = "Failed to connect to the host via ssh: ssh: connect to host 203.0.113.7 port 40022: Connection timed out"


def node_audit(diagnosis, pid=None, missing_module=None, last_error=None):
    alive = diagnosis in ("healthy", "busy")
    return {
        "changed": False, "failed": False, "diagnosis": diagnosis, "listening": alive,
        "pid": pid, "port": 8770, "missing_module": missing_module, "last_error": last_error,
        "service": {"manager": "supervisor", "installed": True, "state": "RUNNING" if alive else "BACKOFF"},
        "gpu": {"diagnosis": "ok", "summary": "8x NVIDIA GeForce RTX 4090", "count": 8},
        "msg": diagnosis,
    }


def host(provider, voter, fake=None):
    hv = {"ringrift_provider": provider, "ringrift_is_voter": voter, "ringrift_p2p_voters": VOTERS,
          "ringrift_gpu_count": 8, "ringrift_gpu_model": "RTX 4090"}
    if fake is not None:
        hv["fake_audit"] = fake
    return hv


HOSTS = {
    "vast-1": host("vast", True, node_audit("healthy", pid=4242)),
    "vast-2": host("vast", True, {"unreachable": True, "changed": False, "msg": SSH_ERROR}),
    "nebius-1": host("nebius", True, node_audit(
        "crashed", missing_module="psutil", last_error="ModuleNotFoundError: No module named 'psutil'")),
    "runpod-1": host("runpod", False, node_audit("busy", pid=77)),
    # Never got an audit result at all (dropped out of the play before the audit).
    "runpod-2": host("runpod", False),
}


SET_FAKE = {"name": "Fake node_audit result", "ansible.builtin.set_fact": {"fleet_audit_node": "{{ fake_audit }}"},
            "when": "fake_audit is defined"}


def report_task(report_dir, **args):
    args = dict({"report_dir": str(report_dir)}, **args)
    return {"name": "Write the fleet report", "ringrift.cluster.fleet_report": args,
            "run_once": True, "register": "fleet_report"}


# --------------------------------------------------------------------------- action plugin

@pytest.fixture(scope="module")
def audit_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("fleet")
    inventory = write_inventory(tmp_path / "hosts.yml", HOSTS)
    reports = tmp_path / "reports"
    dump = tmp_path / "registered.json"
    playbook = play(tmp_path, [
        SET_FAKE,
        report_task(reports, inventory_source="hosts.yml"),
        {"name": "Keep what the task returned", "ansible.builtin.copy": {
            "dest": str(dump), "mode": "0644", "content": "{{ fleet_report | to_json }}"},
         "run_once": True},
    ])
    proc = ansible_playbook(tmp_path, inventory, playbook)
    assert proc.returncode == 0, proc.stdout
    with open(only(str(reports / "fleet-audit-*.json"))) as f:
        data = json.load(f)
    with open(only(str(reports / "fleet-audit-*.md"))) as f:
        md = f.read()
    with open(str(dump)) as f:
        registered = json.load(f)
    return {"report": data, "md": md, "registered": registered, "reports": reports, "tmp": tmp_path}


def test_action_report_header(audit_run):
    r = audit_run["report"]
    assert (r["schema_version"], r["kind"], r["inventory_source"]) == (3, "audit", "hosts.yml")
    assert "dry_run" not in r
    json_path = only(str(audit_run["reports"] / "fleet-audit-*.json"))
    stamp = r["generated_at"].replace("-", "").replace(":", "")
    assert os.path.basename(json_path) == "fleet-audit-%s.json" % stamp


def test_action_hosts(audit_run):
    hosts = dict((h["name"], h) for h in audit_run["report"]["hosts"])
    assert sorted(hosts) == sorted(HOSTS)
    assert [h["name"] for h in audit_run["report"]["hosts"]] == ["nebius-1", "runpod-1", "runpod-2", "vast-1", "vast-2"]
    v1 = hosts["vast-1"]
    assert (v1["diagnosis"], v1["alive"], v1["pid"], v1["voter"], v1["provider"]) == ("healthy", True, 4242, True, "vast")
    assert (v1["gpu"], v1["gpu_expected"], v1["service_state"]) == ("8x NVIDIA GeForce RTX 4090", "8x RTX 4090", "RUNNING")
    v2 = hosts["vast-2"]
    assert (v2["diagnosis"], v2["reachable"], v2["alive"]) == ("unreachable", False, False)
    assert v2["last_error"] == SSH_ERROR
    n1 = hosts["nebius-1"]
    assert (n1["diagnosis"], n1["missing_module"]) == ("crashed", "psutil")
    assert n1["last_error"] == "ModuleNotFoundError: No module named 'psutil'"
    assert (hosts["runpod-1"]["diagnosis"], hosts["runpod-1"]["alive"], hosts["runpod-1"]["voter"]) == ("busy", True, False)
    assert (hosts["runpod-2"]["diagnosis"], hosts["runpod-2"]["reachable"]) == ("unreachable", False)


def test_action_summary_and_providers(audit_run):
    r = audit_run["report"]
    s = r["summary"]
    assert (s["total"], s["healthy"], s["rate"]) == (5, 2, 0.4)
    assert (s["crashed_missing_deps"], s["not_started"], s["unreachable"]) == (1, 0, 2)
    assert r["providers"] == {
        "nebius": {"total": 1, "healthy": 0, "rate": 0.0, "hosts": ["nebius-1"]},
        "runpod": {"total": 2, "healthy": 1, "rate": 0.5, "hosts": ["runpod-1", "runpod-2"]},
        "vast": {"total": 2, "healthy": 1, "rate": 0.5, "hosts": ["vast-1", "vast-2"]},
    }


def test_action_quorum_from_inventory_voters(audit_run):
    assert audit_run["report"]["quorum"] == {
        "voters": VOTERS,
        "duplicate_voters": [],
        "healthy_voters": ["vast-1"],
        "down_voters": ["nebius-1", "vast-2"],
        "not_audited": [],
        "required": 2,
        "ok": False,
        "at_risk": True,
        "margin": -1,
    }


def test_action_root_causes_and_recommendations(audit_run):
    r = audit_run["report"]
    assert r["root_causes"]["crashed"]["missing_modules"] == {"psutil": ["nebius-1"]}
    assert r["root_causes"]["unreachable"]["hosts"] == ["runpod-2", "vast-2"]
    assert r["root_causes"]["busy"]["hosts"] == ["runpod-1"]
    assert [(x["fix"], x["command"]) for x in r["recommendations"]] == [
        ("deps", "ansible-playbook ringrift.cluster.site --tags deps --limit nebius-1"),
        ("unreachable", "ansible runpod-2,vast-2 -m ansible.builtin.ping"),
    ]


def test_recommended_playbooks_resolve_outside_the_checkout(audit_run, tmp_path):
    """The commands name the playbooks by FQCN: they run from any directory, as from an installed collection.

    ``playbooks/site.yml`` resolves only from the repository root; ``ringrift.cluster.site`` through the
    collections path (here this checkout's ansible.cfg; for an installed collection, its install path).
    """
    commands = [shlex.split(x["command"]) for x in audit_run["report"]["recommendations"]]
    playbooks = sorted(set(argv[1] for argv in commands if argv[0] == "ansible-playbook"))
    assert playbooks == ["ringrift.cluster.site"]
    for name in playbooks + ["ringrift.cluster.audit"]:
        proc = subprocess.run([ANSIBLE_PLAYBOOK, name, "--list-tasks", "-i", EXAMPLE_INVENTORY],
                              cwd=str(tmp_path), env=ansible_env(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout
        assert "/playbooks/%s.yml\n" % name.rsplit(".", 1)[1] in proc.stdout


def test_action_markdown_and_registered_result(audit_run):
    md, reg = audit_run["md"], audit_run["registered"]
    assert "- **2 of 5** P2P nodes healthy (40%)." in md
    assert "- Voter quorum: **LOST** (1 of 3 voters alive, 2 required)." in md
    assert "`ModuleNotFoundError: No module named 'psutil'` on nebius-1" in md
    assert reg["changed"] is False
    assert reg["markdown"] == md
    assert reg["quorum"] == audit_run["report"]["quorum"]
    assert reg["summary"] == audit_run["report"]["summary"]
    assert reg["json_path"] == only(str(audit_run["reports"] / "fleet-audit-*.json"))
    assert reg["md_path"] == only(str(audit_run["reports"] / "fleet-audit-*.md"))


def test_action_writes_no_dry_run_report_outside_check_mode(audit_run):
    assert not os.path.exists(str(audit_run["tmp"] / "dry-run-reports"))


def test_action_explicit_voters_quorum_and_check_mode(tmp_path):
    """Explicit voters and quorum_size win over the inventory; the report is written under --check too."""
    inventory = write_inventory(tmp_path / "hosts.yml", HOSTS)
    reports = tmp_path / "reports"
    playbook = play(tmp_path, [SET_FAKE, report_task(reports, voters=["vast-1", "runpod-1", "nebius-1"], quorum_size=2,
                                                     playbook="playbooks/repair.yml")])
    proc = ansible_playbook(tmp_path, inventory, playbook, "--check")
    assert proc.returncode == 0, proc.stdout
    with open(only(str(reports / "fleet-audit-*.json"))) as f:
        r = json.load(f)
    q = r["quorum"]
    assert q["voters"] == ["vast-1", "runpod-1", "nebius-1"]
    assert (q["healthy_voters"], q["required"], q["ok"], q["margin"]) == (["vast-1", "runpod-1"], 2, True, 0)
    assert r["recommendations"][0]["command"] == "ansible-playbook playbooks/repair.yml --tags deps --limit nebius-1"
    # The fake audits are not node_audit tasks and nothing would change: no dry-run report.
    assert glob.glob(str(tmp_path / "dry-run-reports" / "*")) == []


def test_action_quorum_size_zero_fails_the_task(tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", HOSTS)
    reports = tmp_path / "reports"
    playbook = play(tmp_path, [SET_FAKE, report_task(reports, quorum_size=0)])
    proc = ansible_playbook(tmp_path, inventory, playbook)
    assert proc.returncode != 0
    assert "fleet_report: quorum_size (ringrift_quorum_size) is 0, below a strict majority of the 3 p2p_voters (2)" \
        in proc.stdout
    assert not reports.exists()


def test_action_write_false_and_bad_argument(tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", {"vast-1": HOSTS["vast-1"]})
    reports = tmp_path / "reports"
    dump = tmp_path / "registered.json"
    playbook = play(tmp_path, [
        SET_FAKE,
        report_task(reports, write=False),
        {"ansible.builtin.copy": {"dest": str(dump), "mode": "0644", "content": "{{ fleet_report | to_json }}"}},
    ])
    proc = ansible_playbook(tmp_path, inventory, playbook)
    assert proc.returncode == 0, proc.stdout
    assert not reports.exists()
    with open(str(dump)) as f:
        reg = json.load(f)
    assert "json_path" not in reg
    assert reg["summary"]["healthy"] == 1
    playbook = play(tmp_path, [report_task(reports, kind="weekly")], name="bad.yml")
    proc = ansible_playbook(tmp_path, inventory, playbook)
    assert proc.returncode != 0
    assert "fleet_report: " in proc.stdout and "kind" in proc.stdout


# --------------------------------------------------------------------------- extra formats, floor, voter checks

def test_action_junit_metrics_floor_and_duplicate_voters(tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", HOSTS)
    reports = tmp_path / "reports"
    dump = tmp_path / "registered.json"
    playbook = play(tmp_path, [
        SET_FAKE,
        report_task(reports, voters=VOTERS + ["vast-1"], extra_formats=["junit", "prometheus"], min_healthy_share="0.5"),
        {"ansible.builtin.copy": {"dest": str(dump), "mode": "0644", "content": "{{ fleet_report | to_json }}"},
         "run_once": True},
    ])
    proc = ansible_playbook(tmp_path, inventory, playbook)
    assert proc.returncode == 0, proc.stdout
    assert "fleet_report: p2p_voters lists vast-1 more than once; each voter counts once" in proc.stdout
    with open(str(dump)) as f:
        reg = json.load(f)
    # 2 of 5 alive: below the 0.5 floor.
    assert (reg["healthy_share_ok"], reg["summary"]["min_healthy_share"]) == (False, 0.5)
    assert reg["quorum"]["voters"] == VOTERS and reg["quorum"]["duplicate_voters"] == ["vast-1"]
    assert reg["junit_path"] == only(str(reports / "fleet-audit-*.junit.xml"))
    assert reg["metrics_path"] == str(reports / "fleet-audit.prom")
    with open(reg["json_path"]) as f:
        report = json.load(f)
    root = ET.parse(reg["junit_path"]).getroot()
    assert [c.get("name") for c in root.iter("testcase")] == [h["name"] for h in report["hosts"]]
    assert int(root.get("failures")) == report["summary"]["total"] - report["summary"]["healthy"] == 3
    with open(reg["metrics_path"]) as f:
        metrics = f.read()
    assert "ringrift_fleet_healthy_share_floor 0.5\n" in metrics
    assert "ringrift_fleet_healthy_share 0.4\n" in metrics


@pytest.mark.parametrize("args, message", [
    ({"voters": ["vast-1", 5]}, "fleet_report: p2p_voters entry 1 must be a host name (a non-empty string), got int 5"),
    ({"quorum_size": 4}, "fleet_report: quorum_size (ringrift_quorum_size) is 4 but p2p_voters lists 3 distinct voter(s)"),
    ({"quorum_size": "two"}, "fleet_report: quorum_size (ringrift_quorum_size) must be an integer, got str 'two'"),
    ({"min_healthy_share": 80}, "fleet_report: min_healthy_share (audit_min_healthy_share) must be between 0 and 1"),
    ({"extra_formats": ["csv"]}, "fleet_report: "),
])
def test_action_refuses_bad_voters_sizes_and_floors(tmp_path, args, message):
    inventory = write_inventory(tmp_path / "hosts.yml", HOSTS)
    reports = tmp_path / "reports"
    proc = ansible_playbook(tmp_path, inventory, play(tmp_path, [SET_FAKE, report_task(reports, **args)]))
    assert proc.returncode != 0
    assert message in proc.stdout
    assert not reports.exists()


# --------------------------------------------------------------------------- audit.yml pass-through

@pytest.fixture(scope="module")
def audit_inventory(tmp_path_factory):
    """One local node whose daemon port nothing listens on: never_started, 0 of 1 healthy."""
    tmp_path = tmp_path_factory.mktemp("audit-yml")
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "children": {"p2p_enabled": {"hosts": {"node-a": {"ringrift_provider": "local", "ringrift_p2p_port": free_port()}}}},
    }}))
    return str(path)


@pytest.mark.parametrize("floor, formats, rc", [("0.5", "junit,prometheus", 2), ("0", "", 0)])
def test_audit_playbook_by_fqcn_writes_formats_and_fails_below_the_floor(tmp_path, audit_inventory, floor, formats, rc):
    reports = tmp_path / "reports"
    extra = ["-e", "audit_min_healthy_share=%s" % floor, "-e", "audit_fail_on_quorum_loss=false"]
    if formats:
        extra += ["-e", "audit_report_formats=%s" % formats]
    proc = ansible_playbook(tmp_path, audit_inventory, "ringrift.cluster.audit", *extra, RINGRIFT_REPORT_DIR=str(reports))
    assert proc.returncode == rc, proc.stdout
    report_path = only(str(reports / "fleet-audit-*.json"))
    with open(report_path) as f:
        report = json.load(f)
    assert [(h["name"], h["alive"]) for h in report["hosts"]] == [("node-a", False)]
    assert report["summary"]["min_healthy_share"] == float(floor)
    written = sorted(os.path.basename(p) for p in glob.glob(str(reports / "*")))
    if formats:
        assert "Fail when the healthy share is below audit_min_healthy_share" in proc.stdout
        assert "0 of 1 nodes healthy (0.0), below audit_min_healthy_share 0.5" in proc.stdout
        base = os.path.basename(report_path)[:-len(".json")]
        assert written == [base + ".json", base + ".junit.xml", base + ".md", "fleet-audit.prom"]
    else:
        assert len(written) == 2
