# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/module_utils/fleet_report.py on a fleet shaped like the real audit.

The fleet: 26 GPU nodes on five providers; 6 healthy, 18 whose daemon never started and
2 that crash-loop on a missing Python module (psutil, yaml). Five voters, two of them alive:
the voter quorum (3 of 5) is lost.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import fleet_report as fr

GENERATED_AT = "2026-11-28T12:00:00Z"
VOTERS = ["nebius-1", "nebius-2", "vultr-1", "vultr-2", "hetzner-1"]

# provider -> node count; names are <provider>-<n>
PROVIDERS = {"vast": 10, "runpod": 6, "nebius": 4, "vultr": 4, "hetzner": 2}
HEALTHY = {"nebius-1", "vultr-1", "runpod-1", "runpod-2", "vast-1", "vast-2"}
CRASHED = {"vast-3": "psutil", "vast-4": "yaml"}


def facts(name, provider=None, voter=None, gpu_count=8, gpu_model="RTX 4090"):
    """The inventory plugin's ringrift_* host variables."""
    return {
        "ringrift_provider": provider or name.rsplit("-", 1)[0],
        "ringrift_is_voter": name in VOTERS if voter is None else voter,
        "ringrift_p2p_voters": list(VOTERS),
        "ringrift_p2p_port": 8770,
        "ringrift_gpu_count": gpu_count,
        "ringrift_gpu_model": gpu_model,
        "ringrift_nvidia_gpu": bool(gpu_count),
    }


CONVERGED_AT = "2026-11-29T05:02:11Z"


def audit(diagnosis, pid=None, missing_module=None, last_error=None, manager="supervisor", state=None, converged_at=None):
    """A registered ringrift.cluster.node_audit result, as the module returns it."""
    alive = diagnosis in ("healthy", "busy")
    return {
        "changed": False,
        "failed": False,
        "diagnosis": diagnosis,
        "listening": alive,
        "pid": pid if alive else None,
        "cmdline": ["/opt/venv/bin/python", "scripts/p2p_orchestrator.py", "--port", "8770"] if alive else [],
        "port": 8770,
        "missing_module": missing_module,
        "missing_modules": [missing_module] if missing_module else [],
        "last_error": last_error,
        "health": {"status": 200, "ok": diagnosis == "healthy", "json": {"healthy": diagnosis == "healthy"}, "error": None}
        if alive else None,
        "service": {"manager": manager, "installed": diagnosis != "never_started", "state": state,
                    "restarts": None, "main_pid": pid if alive else 0},
        "gpu": {"diagnosis": "ok", "summary": "8x NVIDIA GeForce RTX 4090, driver 550.54.15", "count": 8, "msg": None},
        "last_converged_at": converged_at,
        "msg": "%s: ..." % diagnosis,
    }


def fleet_records():
    records = []
    pid = 4000
    for provider, count in PROVIDERS.items():
        for i in range(1, count + 1):
            name = "%s-%d" % (provider, i)
            if name in HEALTHY:
                pid += 1
                result = audit("healthy", pid=pid, state="RUNNING", converged_at=CONVERGED_AT)
            elif name in CRASHED:
                module = CRASHED[name]
                # Converged once, then a package vanished.
                result = audit("crashed", missing_module=module, state="BACKOFF", converged_at=CONVERGED_AT,
                               last_error="ModuleNotFoundError: No module named '%s'" % module)
            else:
                result = audit("never_started", manager="none")
            records.append(fr.host_record(name, facts(name), result))
    return records


NEVER_STARTED = sorted(
    ("%s-%d" % (p, i) for p, n in PROVIDERS.items() for i in range(1, n + 1)),
    key=lambda n: (n.rsplit("-", 1)[0], n),
)
NEVER_STARTED = [n for n in NEVER_STARTED if n not in HEALTHY and n not in CRASHED]


@pytest.fixture
def report():
    return fr.build_report(fleet_records(), VOTERS, generated_at=GENERATED_AT,
                           inventory_source="inventory/cluster.distributed_hosts.yml")


def rec(name, diagnosis, voter=False, **kw):
    """Minimal host record for quorum and recommendation tests."""
    r = fr.host_record(name, facts(name, voter=voter), audit(diagnosis, pid=100, **kw))
    assert r["diagnosis"] == diagnosis
    return r


# --------------------------------------------------------------------------- quorum_required

@pytest.mark.parametrize("voters, required", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)])
def test_quorum_required_is_a_strict_majority(voters, required):
    assert fr.quorum_required(voters) == required


def test_quorum_required_without_voters_requires_none():
    assert fr.quorum_required(0) == 0


@pytest.mark.parametrize("explicit, required", [(4, 4), ("2", 2), (1, 1), (7, 7)])
def test_quorum_required_explicit_size_wins(explicit, required):
    assert fr.quorum_required(5, explicit) == required


def test_quorum_required_empty_explicit_means_majority():
    assert fr.quorum_required(5, "") == 3
    assert fr.quorum_required(5, None) == 3


@pytest.mark.parametrize("explicit", [0, -1, "0"])
def test_quorum_required_below_one_is_refused(explicit):
    with pytest.raises(ValueError, match="at least 1"):
        fr.quorum_required(5, explicit)


# --------------------------------------------------------------------------- quorum_status

def test_quorum_lost_with_two_of_five_voters(report):
    q = fr.quorum_status(fleet_records(), VOTERS)
    assert q == report["quorum"]
    assert q == {
        "voters": VOTERS,
        "healthy_voters": ["nebius-1", "vultr-1"],
        "down_voters": ["nebius-2", "vultr-2", "hetzner-1"],
        "not_audited": [],
        "required": 3,
        "ok": False,
        "at_risk": True,
        "margin": -1,
    }


def test_quorum_busy_voter_counts_as_alive():
    records = [rec("a", "healthy", True), rec("b", "busy", True), rec("c", "healthy", True),
               rec("d", "crashed", True), rec("e", "never_started", True)]
    q = fr.quorum_status(records, ["a", "b", "c", "d", "e"])
    assert q["healthy_voters"] == ["a", "b", "c"]
    assert q["down_voters"] == ["d", "e"]
    assert (q["ok"], q["margin"], q["at_risk"]) == (True, 0, True)


def test_quorum_all_alive_is_not_at_risk():
    names = ["a", "b", "c", "d", "e"]
    q = fr.quorum_status([rec(n, "healthy", True) for n in names], names)
    assert (q["ok"], q["margin"], q["at_risk"], q["required"]) == (True, 2, False, 3)
    assert q["down_voters"] == []


def test_quorum_unreachable_and_unaudited_voters_are_down():
    records = [
        rec("a", "healthy", True),
        rec("b", "healthy", True),
        fr.host_record("c", facts("c", voter=True), {"unreachable": True, "msg": "ssh: connect to host c port 22: timed out"}),
    ]
    q = fr.quorum_status(records, ["a", "b", "c", "d"])
    assert q["healthy_voters"] == ["a", "b"]
    assert q["down_voters"] == ["c", "d"]
    assert q["not_audited"] == ["d"]
    assert (q["required"], q["ok"], q["margin"]) == (3, False, -1)


def test_quorum_explicit_size():
    records = [rec("a", "healthy", True), rec("b", "healthy", True), rec("c", "crashed", True)]
    q = fr.quorum_status(records, ["a", "b", "c", "d", "e"], explicit=2)
    assert (q["required"], q["ok"], q["margin"], q["at_risk"]) == (2, True, 0, True)
    q = fr.quorum_status(records, ["a", "b", "c", "d", "e"], explicit=1)
    assert (q["required"], q["ok"], q["margin"], q["at_risk"]) == (1, True, 1, False)


def test_quorum_explicit_size_zero_is_refused():
    with pytest.raises(ValueError):
        fr.quorum_status(fleet_records(), VOTERS, explicit=0)
    with pytest.raises(ValueError):
        fr.build_report(fleet_records(), VOTERS, quorum_size=0)


def test_quorum_without_voters_is_not_lost():
    q = fr.quorum_status([rec("a", "never_started")], [])
    assert (q["required"], q["ok"], q["at_risk"], q["margin"]) == (0, True, False, 0)
    # An explicit size without voters cannot be met.
    q = fr.quorum_status([rec("a", "healthy")], [], explicit=2)
    assert (q["required"], q["ok"], q["at_risk"]) == (2, False, True)


# --------------------------------------------------------------------------- quorum_decision

FIVE = ["v1", "v2", "v3", "v4", "v5"]


def test_decision_down_voter_is_always_allowed():
    # Quorum is lost already (1 of 5), restarting a dead voter cannot make it worse.
    d = fr.quorum_decision("v2", {"v1": True, "v2": False}, FIVE)
    assert d["allowed"] is True
    assert "down already" in d["reason"]
    assert (d["others_alive"], d["required"]) == (1, 3)


def test_decision_live_voter_allowed_with_a_majority_of_others():
    alive = {"v1": True, "v2": True, "v3": True, "v4": True, "v5": False}
    d = fr.quorum_decision("v1", alive, FIVE)
    assert d["allowed"] is True
    assert (d["others_alive"], d["required"]) == (3, 3)
    assert d["reason"] == "3 other voters alive (v2, v3, v4), 3 required"


def test_decision_live_voter_refused_when_three_of_five_alive():
    alive = {"v1": True, "v2": True, "v3": True, "v4": False, "v5": False}
    d = fr.quorum_decision("v1", alive, FIVE)
    assert d["allowed"] is False
    assert (d["others_alive"], d["required"]) == (2, 3)
    assert "would leave 2 live voters of 5 (3 required for quorum)" in d["reason"]


def test_decision_explicit_quorum_size():
    alive = {"v1": True, "v2": True, "v3": True}
    assert fr.quorum_decision("v1", alive, FIVE, explicit=2)["allowed"] is True
    assert fr.quorum_decision("v1", alive, FIVE, explicit=3)["allowed"] is False
    with pytest.raises(ValueError):
        fr.quorum_decision("v1", alive, FIVE, explicit=0)


def test_decision_non_voter_is_allowed():
    d = fr.quorum_decision("worker-9", {"v1": True}, FIVE)
    assert d["allowed"] is True
    assert d["reason"] == "worker-9 is not a voter"


# --------------------------------------------------------------------------- host_record

def test_host_record_healthy_every_field():
    r = fr.host_record("nebius-1", facts("nebius-1"), audit("healthy", pid=4242, state="RUNNING", converged_at=CONVERGED_AT))
    assert r == {
        "name": "nebius-1",
        "provider": "nebius",
        "voter": True,
        "reachable": True,
        "diagnosis": "healthy",
        "alive": True,
        "missing_module": None,
        "last_error": None,
        "listening": True,
        "pid": 4242,
        "port": 8770,
        "service_manager": "supervisor",
        "service_state": "RUNNING",
        "gpu_expected": "8x RTX 4090",
        "gpu": "8x NVIDIA GeForce RTX 4090, driver 550.54.15",
        "gpu_diagnosis": "ok",
        "health": {"status": 200, "ok": True, "json": {"healthy": True}, "error": None},
        "last_converged_at": CONVERGED_AT,
    }


def test_host_record_crashed_on_missing_module():
    r = fr.host_record("vast-3", facts("vast-3"), audit(
        "crashed", missing_module="psutil", last_error="ModuleNotFoundError: No module named 'psutil'", state="BACKOFF"))
    assert (r["diagnosis"], r["alive"], r["reachable"], r["voter"]) == ("crashed", False, True, False)
    assert r["missing_module"] == "psutil"
    assert r["last_error"] == "ModuleNotFoundError: No module named 'psutil'"
    assert (r["listening"], r["pid"], r["service_state"]) == (False, None, "BACKOFF")


def test_host_record_busy_is_alive():
    r = fr.host_record("runpod-1", facts("runpod-1"), audit("busy", pid=77))
    assert (r["diagnosis"], r["alive"]) == ("busy", True)


def test_host_record_unreachable_keeps_the_ssh_error_on_one_line():
    result = {"unreachable": True, "changed": False,
              "msg": "Failed to connect to the host via ssh:\n  ssh: connect to host 1.2.3.4 port 40022:\tConnection timed out"}
    r = fr.host_record("vast-9", facts("vast-9"), result)
    assert (r["reachable"], r["diagnosis"], r["alive"], r["listening"]) == (False, "unreachable", False, False)
    assert r["last_error"] == "Failed to connect to the host via ssh: ssh: connect to host 1.2.3.4 port 40022: Connection timed out"
    assert r["provider"] == "vast"
    assert r["gpu"] is None and r["gpu_expected"] == "8x RTX 4090"


def test_host_record_without_result_is_unreachable():
    for result in (None, {}):
        r = fr.host_record("gone-1", facts("gone-1", provider="aws"), result)
        assert (r["reachable"], r["diagnosis"], r["last_error"]) == (False, "unreachable", None)


def test_host_record_failed_module_keeps_its_message():
    result = {"failed": True, "changed": False, "msg": "/usr/bin/python3: not found", "rc": 127}
    r = fr.host_record("runpod-5", facts("runpod-5"), result)
    assert r["diagnosis"] == "unreachable"
    assert r["reachable"] is True
    assert r["last_error"] == "/usr/bin/python3: not found"


def test_host_record_result_without_diagnosis_is_not_listening():
    r = fr.host_record("vast-5", facts("vast-5"), {"changed": False, "listening": False})
    assert r["diagnosis"] == "not_listening"
    assert r["last_error"] is None


def test_host_record_long_message_is_cut():
    r = fr.host_record("vast-5", facts("vast-5"), {"unreachable": True, "msg": "x" * 500})
    assert len(r["last_error"]) == 200
    assert r["last_error"].endswith("...")


def test_host_record_defaults_from_facts():
    r = fr.host_record("h", {}, {"diagnosis": "never_started"})
    assert (r["provider"], r["voter"], r["port"], r["gpu_expected"], r["service_manager"]) == ("unknown", False, 8770, None, None)
    r = fr.host_record("h", {"ringrift_p2p_port": 9001, "ringrift_gpu_count": 2},
                       {"diagnosis": "never_started", "service_manager": "systemd"})
    assert (r["port"], r["gpu_expected"], r["service_manager"]) == (9001, "2x GPU", "systemd")
    r = fr.host_record("h", {"ringrift_p2p_port": 9001}, {"diagnosis": "healthy", "port": 8771})
    assert r["port"] == 8771


# --------------------------------------------------------------------------- recommend

def test_recommend_deps_for_missing_modules():
    records = [
        rec("vast-1", "crashed", missing_module="psutil", last_error="ModuleNotFoundError: No module named 'psutil'"),
        rec("vast-2", "crashed", missing_module="yaml", last_error="ModuleNotFoundError: No module named 'yaml'"),
    ]
    recs = fr.recommend(records)
    assert len(recs) == 1
    assert recs[0]["fix"] == "deps"
    assert recs[0]["hosts"] == ["vast-1", "vast-2"]
    assert recs[0]["command"] == "ansible-playbook playbooks/site.yml --tags deps --limit vast-1,vast-2"
    assert "missing Python module" in recs[0]["why"]


def test_recommend_every_fix_in_order():
    records = [
        fr.host_record("u1", {}, {"unreachable": True, "msg": "timeout"}),
        rec("o1", "owner_unknown"),
        rec("w1", "wrong_owner"),
        rec("h1", "health_failed"),
        rec("s1", "unmanaged"),
        rec("n1", "never_started"),
        rec("n2", "not_listening"),
        rec("c1", "crashed", last_error="RuntimeError: CUDA error"),
        rec("c2", "crashed", missing_module="psutil"),
        rec("ok1", "healthy"),
        rec("b1", "busy"),
    ]
    recs = fr.recommend(records, playbook="playbooks/other.yml")
    assert [r["fix"] for r in recs] == ["deps", "converge", "service", "verify", "wrong_owner", "become", "unreachable"]
    by_fix = dict((r["fix"], r) for r in recs)
    assert by_fix["deps"]["command"] == "ansible-playbook playbooks/other.yml --tags deps --limit c2"
    assert by_fix["converge"]["hosts"] == ["n1", "n2", "c1"]
    assert by_fix["converge"]["command"] == "ansible-playbook playbooks/other.yml --limit n1,n2,c1"
    assert by_fix["service"]["command"] == "ansible-playbook playbooks/other.yml --tags service,verify --limit s1"
    assert by_fix["verify"]["command"] == "ansible-playbook playbooks/other.yml --tags service,verify --limit h1"
    assert by_fix["wrong_owner"]["command"].startswith("ssh w1 ")
    assert by_fix["become"]["command"] == "ansible-playbook playbooks/audit.yml --become --limit o1"
    assert by_fix["unreachable"]["command"] == "ansible u1 -m ansible.builtin.ping"
    # Healthy and busy nodes need nothing.
    assert not any(h in r["hosts"] for r in recs for h in ("ok1", "b1"))


def test_recommend_nothing_for_a_healthy_fleet():
    assert fr.recommend([rec("a", "healthy"), rec("b", "busy")]) == []


# --------------------------------------------------------------------------- build_report

def test_report_header(report):
    assert report["schema_version"] == fr.SCHEMA_VERSION == 1
    assert report["kind"] == "audit"
    assert report["generated_at"] == GENERATED_AT
    assert report["inventory_source"] == "inventory/cluster.distributed_hosts.yml"
    assert "dry_run" not in report
    assert sorted(report) == sorted(["schema_version", "kind", "generated_at", "inventory_source", "summary",
                                     "providers", "quorum", "root_causes", "recommendations", "hosts"])


def test_report_summary(report):
    s = report["summary"]
    assert (s["total"], s["healthy"], s["rate"]) == (26, 6, 0.231)
    assert (s["crashed_missing_deps"], s["not_started"], s["unreachable"]) == (2, 18, 0)
    assert list(s["by_diagnosis"]) == list(fr.DIAGNOSES)
    assert s["by_diagnosis"]["healthy"] == 6
    assert s["by_diagnosis"]["never_started"] == 18
    assert s["by_diagnosis"]["crashed"] == 2
    assert sum(s["by_diagnosis"].values()) == 26


def test_report_providers(report):
    p = report["providers"]
    assert sorted(p) == ["hetzner", "nebius", "runpod", "vast", "vultr"]
    assert p["vast"] == {"total": 10, "healthy": 2, "rate": 0.2,
                         "hosts": sorted("vast-%d" % i for i in range(1, 11))}
    assert (p["runpod"]["total"], p["runpod"]["healthy"], p["runpod"]["rate"]) == (6, 2, 0.333)
    assert (p["nebius"]["healthy"], p["nebius"]["rate"]) == (1, 0.25)
    assert (p["hetzner"]["healthy"], p["hetzner"]["rate"]) == (0, 0.0)
    assert sum(x["total"] for x in p.values()) == 26


def test_report_root_causes(report):
    rc = report["root_causes"]
    assert sorted(rc) == ["crashed", "never_started"]
    assert rc["crashed"]["count"] == 2
    assert rc["crashed"]["hosts"] == ["vast-3", "vast-4"]
    assert rc["crashed"]["missing_modules"] == {"psutil": ["vast-3"], "yaml": ["vast-4"]}
    assert rc["crashed"]["description"].startswith("Daemon crash-loops")
    assert rc["never_started"]["count"] == 18
    assert rc["never_started"]["hosts"] == NEVER_STARTED
    assert "missing_modules" not in rc["never_started"]


def test_report_busy_is_a_root_cause_but_counts_healthy():
    r = fr.build_report([rec("runpod-1", "healthy"), rec("runpod-2", "busy")], [], generated_at=GENERATED_AT)
    assert r["summary"]["healthy"] == 2
    assert r["summary"]["rate"] == 1.0
    assert r["root_causes"]["busy"]["hosts"] == ["runpod-2"]
    assert r["providers"]["runpod"]["healthy"] == 2


def test_report_recommendations(report):
    recs = report["recommendations"]
    assert [r["fix"] for r in recs] == ["deps", "converge"]
    assert recs[0]["command"] == "ansible-playbook playbooks/site.yml --tags deps --limit vast-3,vast-4"
    assert recs[1]["hosts"] == NEVER_STARTED
    assert recs[1]["command"] == "ansible-playbook playbooks/site.yml --limit " + ",".join(NEVER_STARTED)


def test_report_hosts_sorted_by_provider_then_name(report):
    names = [h["name"] for h in report["hosts"]]
    assert len(names) == 26
    assert names[:2] == ["hetzner-1", "hetzner-2"]
    assert names == sorted(names, key=lambda n: (n.rsplit("-", 1)[0], n))
    assert all(h["diagnosis"] in fr.DIAGNOSES for h in report["hosts"])


def test_report_unreachable_counts():
    records = fleet_records()
    records[0] = fr.host_record(records[0]["name"], facts(records[0]["name"]), {"unreachable": True, "msg": "timeout"})
    r = fr.build_report(records, VOTERS, generated_at=GENERATED_AT)
    assert r["summary"]["unreachable"] == 1
    assert r["root_causes"]["unreachable"]["hosts"] == [records[0]["name"]]
    assert r["recommendations"][-1]["command"] == "ansible %s -m ansible.builtin.ping" % records[0]["name"]


def test_report_default_timestamp_and_dry_run_section():
    dry = {"playbook": "site.yml", "hosts": {}, "would_change_tasks": 0, "audited": []}
    r = fr.build_report([], [], kind="dry_run", dry_run=dry)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", r["generated_at"])
    assert r["dry_run"] == dry
    assert r["kind"] == "dry_run"
    assert (r["summary"]["total"], r["summary"]["rate"]) == (0, 0.0)
    assert r["providers"] == {} and r["hosts"] == [] and r["recommendations"] == []


def test_report_is_json_serializable(report):
    assert json.loads(json.dumps(report)) == report


# --------------------------------------------------------------------------- render_markdown

_PIPE = re.compile(r"(?<!\\)\|")


def table_rows(md, header_prefix):
    """Rows (cells) of every table whose header starts with ``header_prefix``, header included."""
    tables = []
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(header_prefix):
            rows = []
            for row in lines[i:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in _PIPE.split(row)[1:-1]])
            tables.append(rows)
    return tables


def test_markdown_summary(report):
    md = fr.render_markdown(report)
    assert md.startswith("# Fleet status report\n")
    assert "Generated 2026-11-28T12:00:00Z from `inventory/cluster.distributed_hosts.yml`." in md
    assert "- **6 of 26** P2P nodes healthy (23%)." in md
    assert "- 2 crashed on missing Python dependencies; 18 never started or not listening; 0 unreachable." in md
    assert "- Voter quorum: **LOST** (2 of 5 voters alive, 3 required)." in md
    assert md.endswith("\n") and not md.endswith("\n\n")


def test_markdown_one_table_per_provider(report):
    md = fr.render_markdown(report)
    headings = re.findall(r"^## (\w+): (\d+) of (\d+) healthy \((\d+)%\)$", md, re.M)
    assert headings == [("hetzner", "0", "2", "0"), ("nebius", "1", "4", "25"), ("runpod", "2", "6", "33"),
                        ("vast", "2", "10", "20"), ("vultr", "1", "4", "25")]
    tables = table_rows(md, "| node | GPU |")
    assert len(tables) == 5
    assert [len(t) - 2 for t in tables] == [2, 4, 6, 10, 4]
    for t in tables:
        assert t[0] == ["node", "GPU", "daemon running", "port 8770", "last error", "last converge", "status"]
    rows = dict((r[0], r) for t in tables for r in t[2:])
    # PIDs are handed out in PROVIDERS order: vast-1, vast-2, runpod-1, runpod-2, nebius-1 -> 4005.
    assert rows["nebius-1 (voter)"][1:] == ["8x NVIDIA GeForce RTX 4090, driver 550.54.15", "yes (pid 4005)",
                                            "listening", "-", CONVERGED_AT, "healthy"]
    assert rows["vast-3"][2:] == ["no", "free", "ModuleNotFoundError: No module named 'psutil'", CONVERGED_AT,
                                  "crashed (missing `psutil`)"]
    # Reached, no stamp: site.yml never converged it.
    assert rows["hetzner-1 (voter)"][-2:] == ["never", "**never_started**"]


def test_markdown_quorum_section(report):
    md = fr.render_markdown(report)
    assert "## Voter quorum" in md
    (voter_table,) = table_rows(md, "| voter | status |")
    assert voter_table[2:] == [["nebius-1", "healthy"], ["nebius-2", "**never_started**"], ["vultr-1", "healthy"],
                               ["vultr-2", "**never_started**"], ["hetzner-1", "**never_started**"]]
    assert "2 of 5 alive, 3 required: quorum **LOST**." in md


def test_markdown_quorum_met_but_at_risk_and_not_audited():
    records = [rec("a", "healthy", True), rec("b", "busy", True), rec("c", "crashed", True)]
    md = fr.render_markdown(fr.build_report(records, ["a", "b", "c", "d"], quorum_size=2, generated_at=GENERATED_AT))
    assert "- Voter quorum: **met** (2 of 4 voters alive, 2 required)." in md
    assert "2 of 4 alive, 2 required: quorum met, **one more loss breaks it**." in md
    assert "| d | not audited |" in md
    assert "| b | busy (alive) |" in md
    md = fr.render_markdown(fr.build_report(records, ["a", "b"], generated_at=GENERATED_AT))
    assert "2 of 2 alive, 2 required: quorum met, **one more loss breaks it**." in md
    md = fr.render_markdown(fr.build_report(records, ["a", "b"], quorum_size=1, generated_at=GENERATED_AT))
    assert "2 of 2 alive, 1 required: quorum met." in md


def test_markdown_root_causes_and_commands(report):
    md = fr.render_markdown(report)
    causes = md.split("## Root causes", 1)[1].split("## Recommended commands", 1)[0]
    assert "- **crashed** (2): Daemon crash-loops (last error in its log). Nodes: vast-3, vast-4." in causes
    assert "  - `ModuleNotFoundError: No module named 'psutil'` on vast-3" in causes
    assert "  - `ModuleNotFoundError: No module named 'yaml'` on vast-4" in causes
    assert "- **never_started** (18): Daemon never started (no unit, no log). Nodes: %s." % ", ".join(NEVER_STARTED) in causes
    # Causes follow DIAGNOSES order.
    assert causes.index("**never_started**") < causes.index("**crashed**")
    commands = md.split("## Recommended commands", 1)[1]
    assert "  ansible-playbook playbooks/site.yml --tags deps --limit vast-3,vast-4\n" in commands
    assert "  ansible-playbook playbooks/site.yml --limit %s\n" % ",".join(NEVER_STARTED) in commands
    assert commands.count("  ```") == 4


def test_markdown_pipes_and_newlines_in_errors_keep_the_table_shape():
    records = [
        rec("vast-1", "crashed", last_error="ValueError: a | b || c\nnext line"),
        fr.host_record("vast-2", facts("vast-2", voter=False), {"unreachable": True, "msg": "ssh | exit 255"}),
        fr.host_record("vast|3", facts("vast|3", provider="vast"), audit("healthy", pid=5)),
    ]
    md = fr.render_markdown(fr.build_report(records, [], generated_at=GENERATED_AT))
    (table,) = table_rows(md, "| node | GPU |")
    assert len(table) == 5
    assert all(len(row) == len(table[0]) == 7 for row in table)
    rows = dict((r[0], r) for r in table[2:])
    assert rows["vast-1"][4] == "ValueError: a \\| b \\|\\| c next line"
    assert rows["vast-2"][2:] == ["?", "?", "ssh \\| exit 255", "?", "**unreachable**"]
    assert "vast\\|3" in rows


def test_markdown_healthy_fleet():
    records = [rec("a", "healthy", True), rec("b", "healthy", True), rec("c", "healthy", True)]
    md = fr.render_markdown(fr.build_report(records, ["a", "b", "c"], generated_at=GENERATED_AT))
    assert "- **3 of 3** P2P nodes healthy (100%)." in md
    assert "None: every node is healthy." in md
    assert "Nothing to fix." in md
    assert "3 of 3 alive, 2 required: quorum met." in md


def test_markdown_no_voters_declared():
    md = fr.render_markdown(fr.build_report([rec("a", "healthy")], [], generated_at=GENERATED_AT))
    assert "- Voter quorum: no voters declared (`p2p_voters` is empty)." in md
    assert "LOST" not in md


def test_markdown_alive_without_pid_is_running():
    r = fr.host_record("a", {}, {"diagnosis": "busy", "listening": True})
    md = fr.render_markdown(fr.build_report([r], [], generated_at=GENERATED_AT))
    (table,) = table_rows(md, "| node | GPU |")
    assert table[2][2:4] == ["yes", "listening"]


def test_markdown_failed_module_is_unknown_not_free():
    r = fr.host_record("a", {}, {"failed": True, "msg": "no python"})
    md = fr.render_markdown(fr.build_report([r], [], generated_at=GENERATED_AT))
    (table,) = table_rows(md, "| node | GPU |")
    assert table[2][2:] == ["?", "?", "no python", "?", "**unreachable**"]


def test_markdown_dry_run():
    dry = {"playbook": "site.yml", "would_change_tasks": 2, "audited": ["vast-1"], "hosts": {
        "vast-1": [{"stage": "python_deps", "task": "Install requirements", "action": "ansible.builtin.pip",
                    "why": "ansible.builtin.pip would change requirements=/opt/ringrift/requirements.txt"}],
        "runpod-1": [{"stage": "p2p_service", "task": "Write unit", "action": "ansible.builtin.template",
                      "why": "details hidden (no_log)"}],
    }}
    records = [rec("vast-1", "crashed", True, missing_module="psutil")]
    report = fr.build_report(records, ["vast-1"], kind="dry_run", dry_run=dry, generated_at=GENERATED_AT)
    md = fr.render_markdown(report)
    assert md.startswith("# Fleet dry-run report\n")
    assert "## Would change (check mode: nothing was changed)" in md
    (table,) = table_rows(md, "| node | stage | task | why |")
    assert table[2:] == [
        ["runpod-1", "p2p_service", "Write unit", "details hidden (no_log)"],
        ["vast-1", "python_deps", "Install requirements",
         "ansible.builtin.pip would change requirements=/opt/ringrift/requirements.txt"],
    ]
    assert "- **0 of 1** P2P nodes healthy (0%)." in md
    assert "--tags deps --limit vast-1" in md


def test_markdown_dry_run_without_changes_or_audits():
    report = fr.build_report([], ["a", "b", "c"], kind="dry_run", generated_at=GENERATED_AT,
                             dry_run={"playbook": "x.yml", "hosts": {}, "would_change_tasks": 0, "audited": []})
    md = fr.render_markdown(report)
    assert "No task would change anything." in md
    assert "No node was audited in this run" in md
    # Nothing was audited: no claim about health, quorum or causes.
    for claim in ("LOST", "## Voter quorum", "every node is healthy", "## Root causes"):
        assert claim not in md


# --------------------------------------------------------------------------- write_report

def test_write_report_files_and_round_trip(report, tmp_path):
    target = tmp_path / "nested" / "reports"
    json_path, md_path = fr.write_report(report, str(target))
    assert json_path == os.path.join(str(target), "fleet-audit-20261128T120000Z.json")
    assert md_path == os.path.join(str(target), "fleet-audit-20261128T120000Z.md")
    with open(json_path) as f:
        assert json.load(f) == report
    with open(md_path) as f:
        assert f.read() == fr.render_markdown(report)
    assert sorted(os.listdir(str(target))) == ["fleet-audit-20261128T120000Z.json", "fleet-audit-20261128T120000Z.md"]


def test_write_report_dry_run_and_custom_prefix(tmp_path):
    report = fr.build_report([rec("a", "healthy")], [], kind="dry_run", generated_at="2026-01-02T03:04:05Z",
                             dry_run={"playbook": "site.yml", "hosts": {}, "would_change_tasks": 0, "audited": ["a"]})
    json_path, md_path = fr.write_report(report, str(tmp_path))
    assert os.path.basename(json_path) == "dry-run-20260102T030405Z.json"
    assert os.path.basename(md_path) == "dry-run-20260102T030405Z.md"
    with open(json_path) as f:
        assert json.load(f)["dry_run"]["audited"] == ["a"]
    json_path, dummy = fr.write_report(report, str(tmp_path), prefix="nightly")
    assert os.path.basename(json_path) == "nightly-20260102T030405Z.json"
