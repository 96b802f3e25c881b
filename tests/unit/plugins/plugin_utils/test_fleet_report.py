# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for plugins/plugin_utils/fleet_report.py on a fleet shaped like the real audit.

The fleet: 26 GPU nodes on five providers; 6 healthy, 18 whose daemon never started and
2 that crash-loop on a missing Python module (psutil, yaml). Five voters, two of them alive:
the voter quorum (3 of 5) is lost.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shlex
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.ringrift.cluster.plugins.plugin_utils import fleet_report as fr
from ansible_collections.ringrift.cluster.plugins.plugin_utils import quorum

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


def build(records, voters, quorum_size=None, **kw):
    """build_report with the quorum computed as the action plugin does."""
    return fr.build_report(records, quorum.status(records, voters, quorum_size), **kw)


@pytest.fixture
def report():
    return build(fleet_records(), VOTERS, generated_at=GENERATED_AT,
                 inventory_source="inventory/cluster.distributed_hosts.yml")


def rec(name, diagnosis, voter=False, **kw):
    """Minimal host record for quorum and recommendation tests."""
    r = fr.host_record(name, facts(name, voter=voter), audit(diagnosis, pid=100, **kw))
    assert r["diagnosis"] == diagnosis
    return r


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
        "error_kind": None,
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
        "unsupported_reason": None,
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
    assert recs[0]["command"] == "ansible-playbook ringrift.cluster.site --tags deps --limit vast-1,vast-2"
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
    assert by_fix["wrong_owner"]["command"] == (
        "ansible w1 --become -m ringrift.cluster.p2p_listener"
        " -a 'port={{ ringrift_p2p_port | default(8770) }} fail_on_mismatch=false'")
    assert by_fix["become"]["command"] == "ansible-playbook ringrift.cluster.audit --become --limit o1"
    assert by_fix["unreachable"]["command"] == "ansible u1 -m ansible.builtin.ping"
    # Healthy and busy nodes need nothing.
    assert not any(h in r["hosts"] for r in recs for h in ("ok1", "b1"))


def test_recommend_nothing_for_a_healthy_fleet():
    assert fr.recommend([rec("a", "healthy"), rec("b", "busy")]) == []


# --------------------------------------------------------------------------- build_report

def test_report_header(report):
    assert report["schema_version"] == fr.SCHEMA_VERSION == 3
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
    r = build([rec("runpod-1", "healthy"), rec("runpod-2", "busy")], [], generated_at=GENERATED_AT)
    assert r["summary"]["healthy"] == 2
    assert r["summary"]["rate"] == 1.0
    assert r["root_causes"]["busy"]["hosts"] == ["runpod-2"]
    assert r["providers"]["runpod"]["healthy"] == 2


def test_report_recommendations(report):
    recs = report["recommendations"]
    assert [r["fix"] for r in recs] == ["deps", "converge"]
    assert recs[0]["command"] == "ansible-playbook ringrift.cluster.site --tags deps --limit vast-3,vast-4"
    assert recs[1]["hosts"] == NEVER_STARTED
    assert recs[1]["command"] == "ansible-playbook ringrift.cluster.site --limit " + ",".join(NEVER_STARTED)


def test_report_hosts_sorted_by_provider_then_name(report):
    names = [h["name"] for h in report["hosts"]]
    assert len(names) == 26
    assert names[:2] == ["hetzner-1", "hetzner-2"]
    assert names == sorted(names, key=lambda n: (n.rsplit("-", 1)[0], n))
    assert all(h["diagnosis"] in fr.DIAGNOSES for h in report["hosts"])


def test_report_unreachable_counts():
    records = fleet_records()
    records[0] = fr.host_record(records[0]["name"], facts(records[0]["name"]), {"unreachable": True, "msg": "timeout"})
    r = build(records, VOTERS, generated_at=GENERATED_AT)
    assert r["summary"]["unreachable"] == 1
    assert r["root_causes"]["unreachable"]["hosts"] == [records[0]["name"]]
    assert r["recommendations"][-1]["command"] == "ansible %s -m ansible.builtin.ping" % records[0]["name"]


def test_report_default_timestamp_and_dry_run_section():
    dry = {"playbook": "site.yml", "hosts": {}, "would_change_tasks": 0, "audited": []}
    r = build([], [], kind="dry_run", dry_run=dry)
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
    md = fr.render_markdown(build(records, ["a", "b", "c"], generated_at=GENERATED_AT))
    assert "- Voter quorum: **met** (2 of 3 voters alive, 2 required)." in md
    assert "2 of 3 alive, 2 required: quorum met, **one more loss breaks it**." in md
    assert "| b | busy (alive) |" in md
    md = fr.render_markdown(build(records, ["a", "b", "d"], generated_at=GENERATED_AT))
    assert "| d | not audited |" in md
    md = fr.render_markdown(build(records, ["a", "b", "c"], quorum_size=3, generated_at=GENERATED_AT))
    assert "2 of 3 alive, 3 required: quorum **LOST**." in md
    md = fr.render_markdown(build(records, ["a", "b", "c", "d", "e"], quorum_size=3, generated_at=GENERATED_AT))
    assert "2 of 5 alive, 3 required: quorum **LOST**." in md


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
    assert "  ansible-playbook ringrift.cluster.site --tags deps --limit vast-3,vast-4\n" in commands
    assert "  ansible-playbook ringrift.cluster.site --limit %s\n" % ",".join(NEVER_STARTED) in commands
    assert commands.count("  ```") == 4


def test_markdown_pipes_and_newlines_in_errors_keep_the_table_shape():
    records = [
        rec("vast-1", "crashed", last_error="ValueError: a | b || c\nnext line"),
        fr.host_record("vast-2", facts("vast-2", voter=False), {"unreachable": True, "msg": "ssh | exit 255"}),
        fr.host_record("vast|3", facts("vast|3", provider="vast"), audit("healthy", pid=5)),
    ]
    md = fr.render_markdown(build(records, [], generated_at=GENERATED_AT))
    (table,) = table_rows(md, "| node | GPU |")
    assert len(table) == 5
    assert all(len(row) == len(table[0]) == 7 for row in table)
    rows = dict((r[0], r) for r in table[2:])
    assert rows["vast-1"][4] == "ValueError: a \\| b \\|\\| c next line"
    assert rows["vast-2"][2:] == ["?", "?", "ssh \\| exit 255", "?", "**unreachable**"]
    assert "vast\\|3" in rows


def test_markdown_healthy_fleet():
    records = [rec("a", "healthy", True), rec("b", "healthy", True), rec("c", "healthy", True)]
    md = fr.render_markdown(build(records, ["a", "b", "c"], generated_at=GENERATED_AT))
    assert "- **3 of 3** P2P nodes healthy (100%)." in md
    assert "None: every node is healthy." in md
    assert "Nothing to fix." in md
    assert "3 of 3 alive, 2 required: quorum met." in md


def test_markdown_no_voters_declared():
    md = fr.render_markdown(build([rec("a", "healthy")], [], generated_at=GENERATED_AT))
    assert "- Voter quorum: no voters declared (`p2p_voters` is empty)." in md
    assert "LOST" not in md


def test_markdown_alive_without_pid_is_running():
    r = fr.host_record("a", {}, {"diagnosis": "busy", "listening": True})
    md = fr.render_markdown(build([r], [], generated_at=GENERATED_AT))
    (table,) = table_rows(md, "| node | GPU |")
    assert table[2][2:4] == ["yes", "listening"]


def test_markdown_failed_module_is_unknown_not_free():
    r = fr.host_record("a", {}, {"failed": True, "msg": "no python"})
    md = fr.render_markdown(build([r], [], generated_at=GENERATED_AT))
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
    report = build(records, ["vast-1"], kind="dry_run", dry_run=dry, generated_at=GENERATED_AT)
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
    report = build([], ["a", "b", "c"], kind="dry_run", generated_at=GENERATED_AT,
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
    paths = fr.write_report(report, str(target))
    assert sorted(paths) == ["json_path", "md_path"]
    json_path, md_path = paths["json_path"], paths["md_path"]
    assert json_path == os.path.join(str(target), "fleet-audit-20261128T120000Z.json")
    assert md_path == os.path.join(str(target), "fleet-audit-20261128T120000Z.md")
    with open(json_path) as f:
        assert json.load(f) == report
    with open(md_path) as f:
        assert f.read() == fr.render_markdown(report)
    assert sorted(os.listdir(str(target))) == ["fleet-audit-20261128T120000Z.json", "fleet-audit-20261128T120000Z.md"]


def test_write_report_dry_run_and_custom_prefix(tmp_path):
    report = build([rec("a", "healthy")], [], kind="dry_run", generated_at="2026-01-02T03:04:05Z",
                   dry_run={"playbook": "site.yml", "hosts": {}, "would_change_tasks": 0, "audited": ["a"]})
    paths = fr.write_report(report, str(tmp_path))
    json_path, md_path = paths["json_path"], paths["md_path"]
    assert os.path.basename(json_path) == "dry-run-20260102T030405Z.json"
    assert os.path.basename(md_path) == "dry-run-20260102T030405Z.md"
    with open(json_path) as f:
        assert json.load(f)["dry_run"]["audited"] == ["a"]
    json_path = fr.write_report(report, str(tmp_path), prefix="nightly")["json_path"]
    assert os.path.basename(json_path) == "nightly-20260102T030405Z.json"


# --------------------------------------------------------------------------- starting (issue 11)

def test_diagnoses_know_starting_once_before_unreachable():
    assert fr.DIAGNOSES.count("starting") == 1
    assert fr.DIAGNOSES[-1] == "unreachable"
    assert "starting" not in fr.ALIVE


def test_starting_is_counted_apart_and_only_re_audited():
    """Regression: `starting` had no count, no text and no place in the report's order."""
    records = [rec("vast-1", "starting"), rec("vast-2", "healthy"), rec("vast-3", "never_started")]
    r = build(records, [], generated_at=GENERATED_AT)
    s = r["summary"]
    assert (s["starting"], s["healthy"], s["not_started"], s["total"]) == (1, 1, 1, 3)
    assert s["by_diagnosis"]["starting"] == 1
    assert list(s["by_diagnosis"]) == list(fr.DIAGNOSES)
    assert r["root_causes"]["starting"]["description"].startswith("Daemon is starting")
    by_fix = dict((x["fix"], x) for x in r["recommendations"])
    assert sorted(by_fix) == ["converge", "wait"]
    assert by_fix["wait"]["hosts"] == ["vast-1"]
    # Waiting means auditing again: never a repair of the starting node.
    assert by_fix["wait"]["command"] == "ansible-playbook ringrift.cluster.audit --limit vast-1"
    assert "vast-1" not in by_fix["converge"]["hosts"]
    md = fr.render_markdown(r)
    assert "- 1 starting (within their start grace period, not listening yet): wait and audit again; not a fault." in md
    (table,) = table_rows(md, "| node | GPU |")
    row = dict((x[0], x) for x in table[2:])["vast-1"]
    assert (row[2], row[3], row[-1]) == ("starting", "free", "starting (wait)")


def test_port_shared_has_its_cause_and_the_owner_command():
    """A second program on the daemon's port (SO_REUSEPORT) is named, and the fix shows who it is."""
    r = build([rec("vast-1", "port_shared"), rec("vast-2", "healthy")], [], generated_at=GENERATED_AT)
    assert r["root_causes"]["port_shared"]["description"].startswith("Another program shares the P2P port")
    by_fix = dict((x["fix"], x) for x in r["recommendations"])
    assert by_fix["wrong_owner"]["hosts"] == ["vast-1"]
    assert r["summary"]["healthy"] == 1


def test_an_unknown_future_diagnosis_still_shows():
    r = build([fr.host_record("a", {}, {"diagnosis": "hibernating"})], [], generated_at=GENERATED_AT)
    assert r["summary"]["by_diagnosis"]["hibernating"] == 1
    assert "- **hibernating** (1): hibernating. Nodes: a." in fr.render_markdown(r)


# --------------------------------------------------------------------------- checkout_import (issue 11)

def checkout_crash(name, module="scripts"):
    result = audit("crashed", missing_module=module, last_error="ModuleNotFoundError: No module named '%s'" % module)
    result["error_kind"] = "checkout_import"
    return fr.host_record(name, facts(name), result)


def test_host_record_keeps_the_error_kind():
    assert checkout_crash("vast-5")["error_kind"] == "checkout_import"
    assert rec("vast-6", "crashed", missing_module="psutil")["error_kind"] is None


def test_checkout_import_recommends_the_service_stage_never_deps():
    """Regression: a missing `scripts` (the daemon's own checkout) was sent to --tags deps."""
    records = [checkout_crash("vast-5"), checkout_crash("vast-7", "app"), rec("vast-6", "crashed", missing_module="psutil")]
    r = build(records, [], generated_at=GENERATED_AT)
    by_fix = dict((x["fix"], x) for x in r["recommendations"])
    assert [x["fix"] for x in r["recommendations"]] == ["deps", "checkout"]
    assert by_fix["deps"]["hosts"] == ["vast-6"]
    assert by_fix["checkout"]["hosts"] == ["vast-5", "vast-7"]
    assert by_fix["checkout"]["command"] == "ansible-playbook ringrift.cluster.site --tags service,verify --limit vast-5,vast-7"
    assert "PYTHONPATH" in by_fix["checkout"]["why"] and "checkout" in by_fix["checkout"]["why"]
    assert (r["summary"]["crashed_missing_deps"], r["summary"]["crashed_checkout_import"]) == (1, 2)
    cause = r["root_causes"]["crashed"]
    assert cause["missing_modules"] == {"psutil": ["vast-6"]}
    assert cause["checkout_imports"] == {"app": ["vast-7"], "scripts": ["vast-5"]}
    md = fr.render_markdown(r)
    assert ("  - `ModuleNotFoundError: No module named 'scripts'` on vast-5: `scripts` is part of the daemon's own "
            "checkout, so the daemon runs with the wrong working directory or PYTHONPATH (not a missing dependency)") in md
    assert "- 2 crashed importing their own checkout (working directory or PYTHONPATH wrong" in md
    assert "crashed (checkout module `scripts` not importable: PYTHONPATH)" in md


def test_checkout_import_alone_never_recommends_deps():
    r = build([checkout_crash("vast-5")], [], generated_at=GENERATED_AT)
    assert [x["fix"] for x in r["recommendations"]] == ["checkout"]
    assert all("deps" not in x["command"] for x in r["recommendations"])


# --------------------------------------------------------------------------- commands: collection playbooks, quoting

def test_commands_name_the_collection_playbooks():
    recs = fr.recommend([rec("a", "never_started"), rec("b", "owner_unknown")])
    assert [x["command"] for x in recs] == ["ansible-playbook ringrift.cluster.site --limit a",
                                            "ansible-playbook ringrift.cluster.audit --become --limit b"]


HOSTILE_NAMES = ["vast-1;rm -rf ~", "$(id)", "a b", "`uname`", "it's", "x\ny"]


def test_commands_shell_quote_every_value():
    """Regression: host names went into the commands unquoted (`; rm -rf ~` ran as a second command)."""
    records = [rec(n, "never_started") for n in HOSTILE_NAMES] + [rec(n, "unreachable") for n in HOSTILE_NAMES[:2]]
    recs = dict((x["fix"], x) for x in fr.recommend(records, playbook="my playbooks/site.yml"))
    assert shlex.split(recs["converge"]["command"]) == [
        "ansible-playbook", "my playbooks/site.yml", "--limit", ",".join(HOSTILE_NAMES)]
    assert shlex.split(recs["unreachable"]["command"]) == [
        "ansible", "vast-1;rm -rf ~,$(id)", "-m", "ansible.builtin.ping"]


# --------------------------------------------------------------------------- Markdown escaping

def parse_markdown(md):
    # markdown-it-py (pinned in requirements-dev.lock): CommonMark plus GFM tables and strike-through.
    from markdown_it import MarkdownIt
    parser = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    return parser.parse(md), parser.render(md)


def hostile_report():
    evil = "<img src=x onerror=alert(1)>"
    records = [
        fr.host_record("vast-1\n```\n# pwned", facts("vast-1", provider="vast"), audit(
            "crashed", last_error="Traceback\n```\n<script>alert(1)</script>\n## Injected | col *x* _y_ [l](http://e.example)")),
        fr.host_record(evil, facts("v2", provider="vast"), audit("never_started", manager="none")),
        fr.host_record("run`pod`-1", facts("r1", provider="**prov** <b>"), audit(
            "crashed", missing_module="ps`util|x", last_error="ModuleNotFoundError: \x1b[31m<b>bold</b> &amp;")),
    ]
    dry = {"playbook": "site.yml", "would_change_tasks": 1, "audited": [], "hosts": {
        "vast-1\n| x | y |": [{"stage": "p2p_service", "task": "<i>task</i>\n```", "action": "copy",
                              "why": "before ~~strike~~ $x$ \\| after"}]}}
    return build(records, [evil, "vast-1\n```\n# pwned"], kind="dry_run", dry_run=dry, generated_at=GENERATED_AT,
                 inventory_source="inv`entory` <x>.yml")


def test_markdown_hostile_values_stay_inside_their_cells_and_spans():
    """Regression: a newline or code fence in a name or log line broke the document and HTML passed through."""
    report = hostile_report()
    md = fr.render_markdown(report)
    tokens, html = parse_markdown(md)
    # No value became markup: no raw HTML, no extra heading, emphasis, link or strike-through from a value.
    for forbidden in ("<script", "<img", "<b>", "<i>", "<a ", "<del>", "<em>", "<h1>pwned", "Injected</h2>"):
        assert forbidden not in html
    headings = ["".join(c.content for c in tokens[i + 1].children) for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["Fleet dry-run report", "Executive summary", "Would change (check mode: nothing was changed)",
                        "**prov** <b>: 0 of 1 healthy (0%)", "vast: 0 of 2 healthy (0%)", "Voter quorum",
                        "Root causes", "Recommended commands"]
    # Every table kept its shape: the header's cell count in every row.
    rows, current = [], None
    for t in tokens:
        if t.type == "table_open":
            current = []
            rows.append(current)
        elif t.type == "tr_open":
            current.append(0)
        elif t.type in ("th_open", "td_open"):
            current[-1] += 1
    assert [len(table) for table in rows] == [2, 2, 3, 3]   # dry run, two providers (1 and 2 nodes), 2 voters
    assert all(len(set(table)) == 1 for table in rows)
    # Values show literally.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\\x1b[31m&lt;b&gt;bold&lt;/b&gt; &amp;amp;" in html
    assert "<code>ps`util|x</code>" in html
    assert "<code>inv`entory` &lt;x&gt;.yml</code>" in html


def test_markdown_commands_in_fences_are_exact():
    report = hostile_report()
    tokens, dummy = parse_markdown(fr.render_markdown(report))
    fences = [t.content.rstrip("\n") for t in tokens if t.type == "fence"]
    assert fences == [x["command"] for x in report["recommendations"]]
    assert len(fences) == 2
    # A name holding a code fence cannot close the block around its command.
    assert any("```" in f for f in fences)


@pytest.mark.parametrize("value, expected", [
    ("plain never_started p2p_service", "plain never_started p2p_service"),
    ("_x_ *y* `z` [a](b) ~~s~~ $m$ a|b \\", "\\_x\\_ \\*y\\* \\`z\\` \\[a\\](b) \\~\\~s\\~\\~ \\$m\\$ a\\|b \\\\"),
    ("<b>&</b>", "&lt;b&gt;&amp;&lt;/b&gt;"),
    ("one\ntwo\r\nthree\tfour\u2028five", "one two three four five"),
    ("bell\x07 esc\x1b", "bell\\\\x07 esc\\\\x1b"),
    (42, "42"),
])
def test_md_text(value, expected):
    assert fr.md_text(value) == expected


@pytest.mark.parametrize("value, in_table, expected", [
    ("psutil", False, "`psutil`"),
    ("a`b", False, "``a`b``"),
    ("`edge", False, "`` `edge ``"),
    ("a|b", True, "`a\\|b`"),
    ("x\ny", False, "`x y`"),
])
def test_md_code(value, in_table, expected):
    assert fr.md_code(value, in_table=in_table) == expected


def test_md_fenced_fence_outlasts_the_content():
    assert fr.md_fenced("a\n````\nb", "  ") == ["  `````", "  a", "  ````", "  b", "  `````"]
    assert fr.md_fenced("ls") == ["```", "ls", "```"]


# --------------------------------------------------------------------------- healthy share floor (issue 14)

@pytest.mark.parametrize("floor, ok", [(0, True), (0.2, True), (0.23, True), (0.231, False), (0.5, False), (1, False)])
def test_healthy_share_floor(report, floor, ok):
    # 6 of 26 = 0.2307...: compared unrounded.
    r = build(fleet_records(), VOTERS, generated_at=GENERATED_AT, min_healthy_share=floor)
    assert (r["summary"]["min_healthy_share"], r["summary"]["healthy_share_ok"]) == (float(floor), ok)
    assert ("Healthy share floor" in fr.render_markdown(r)) is bool(floor)


def test_healthy_share_floor_default_is_off(report):
    assert (report["summary"]["min_healthy_share"], report["summary"]["healthy_share_ok"]) == (0.0, True)


@pytest.mark.parametrize("value, expected", [(None, 0.0), ("", 0.0), ("0.8", 0.8), (1, 1.0), (0, 0.0)])
def test_healthy_share_floor_values(value, expected):
    assert fr.healthy_share_floor(value) == expected


@pytest.mark.parametrize("value, match", [
    (80, "min_healthy_share must be between 0 and 1 \\(a share: 0.8 means 80%\\), got 80"),
    (-0.1, "between 0 and 1"),
    ("most", "min_healthy_share must be a number between 0 and 1, got str 'most'"),
    (True, "got bool True"),
    ([1], "got list"),
])
def test_healthy_share_floor_refuses(value, match):
    with pytest.raises(ValueError, match=match):
        fr.healthy_share_floor(value)


# --------------------------------------------------------------------------- JUnit XML (issue 14)

def junit_of(report):
    root = ET.fromstring(fr.render_junit(report).encode("utf-8"))
    assert root.tag == "testsuites"
    return root


def test_junit_one_case_per_node_matching_the_json(report):
    root = junit_of(report)
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == [h["name"] for h in report["hosts"]]
    s = report["summary"]
    failures = root.findall("./testsuite/testcase/failure")
    assert int(root.get("tests")) == s["total"] == 26
    assert int(root.get("failures")) == len(failures) == s["total"] - s["healthy"] - s["starting"] == 20
    assert int(root.get("skipped")) == 0
    for suite in root.findall("testsuite"):
        p = report["providers"][suite.get("name")]
        assert [c.get("name") for c in suite.findall("testcase")] == p["hosts"]
        assert int(suite.get("tests")) == p["total"]
        assert int(suite.get("failures")) == p["total"] - p["healthy"]
        assert suite.get("timestamp") == "2026-11-28T12:00:00"
    by_name = dict((c.get("name"), c) for c in cases)
    crashed = by_name["vast-3"].find("failure")
    assert crashed.get("type") == "crashed"
    assert crashed.get("message") == "crashed: ModuleNotFoundError: No module named 'psutil'"
    assert "fix: ansible-playbook ringrift.cluster.site --tags deps --limit vast-3,vast-4" in crashed.text
    never = by_name["hetzner-1"].find("failure")
    assert never.get("message") == "never_started: Daemon never started (no unit, no log)"
    assert list(by_name["nebius-1"]) == []


def test_junit_starting_is_skipped_and_hostile_text_parses():
    records = [rec("a", "starting"), rec("b", "busy"),
               rec("c\x00<\"&", "crashed", last_error="boom \x1b[31m\x00 ]]> </failure> \ud800")]
    r = build(records, [], generated_at=GENERATED_AT)
    root = junit_of(r)
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    by_name = dict((c.get("name"), c) for c in root.iter("testcase"))
    assert by_name["a"].find("skipped").get("message").startswith("starting: Daemon is starting")
    assert list(by_name["b"]) == []
    bad = by_name["c\\x00<\"&"].find("failure")
    assert bad.get("message") == "crashed: boom \\x1b[31m\\x00 ]]> </failure> \\ud800"


# --------------------------------------------------------------------------- Prometheus text format (issue 14)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def parse_prometheus(text):
    """A strict reader of the text exposition format (0.0.4): returns {name: {"help", "type", "samples"}}.

    Fails on: a missing final newline, a sample before its HELP and TYPE, a family that is
    split or repeated, a bad metric or label name, a bad escape, a duplicate series, a value
    that is not a float, a timestamp (the textfile collector refuses them).
    """
    assert text.endswith("\n")
    families, current = {}, None
    for line in text[:-1].split("\n"):
        assert line == line.strip() and line
        if line.startswith("# HELP "):
            name, dummy, help_text = line[7:].partition(" ")
            assert _METRIC_NAME.match(name) and name not in families
            assert "\n" not in help_text and not re.search(r"\\[^\\n]", help_text)
            current = families[name] = {"help": help_text, "type": None, "samples": {}}
            continue
        if line.startswith("# TYPE "):
            name, dummy, kind = line[7:].partition(" ")
            assert current is families.get(name) and current["type"] is None and not current["samples"]
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            current["type"] = kind
            continue
        assert not line.startswith("#")
        match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)\Z", line)
        assert match, line
        name, label_text, value = match.groups()
        assert current is not None and name in families and families[name] is current and current["type"] == "gauge"
        labels = []
        rest = (label_text or "{}")[1:-1]
        while rest:
            m = re.match(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|\Z)', rest)
            assert m, rest
            raw = m.group(2)
            unescaped = re.sub(r'\\([\\"n])', lambda e: "\n" if e.group(1) == "n" else e.group(1), raw)
            labels.append((m.group(1), unescaped))
            rest = rest[m.end():]
        key = tuple(sorted(labels))
        assert key not in current["samples"]
        current["samples"][key] = float(value)
    assert all(f["type"] and f["samples"] for f in families.values())
    return families


def test_prometheus_metrics_match_the_json(report):
    families = parse_prometheus(fr.render_prometheus(report))
    s, q = report["summary"], report["quorum"]

    def by(name, label):
        return dict((dict(k)[label], v) for k, v in families[name]["samples"].items())

    assert by("ringrift_fleet_healthy_nodes", "provider") == dict((p, v["healthy"]) for p, v in report["providers"].items())
    assert by("ringrift_fleet_nodes", "provider") == dict((p, v["total"]) for p, v in report["providers"].items())
    assert by("ringrift_fleet_diagnosis_nodes", "diagnosis") == s["by_diagnosis"]
    single = dict((n, f["samples"][()]) for n, f in families.items() if () in f["samples"])
    assert single == {
        "ringrift_fleet_report_timestamp_seconds": 1795867200.0,   # 2026-11-28T12:00:00Z
        "ringrift_fleet_healthy_share": s["rate"],
        "ringrift_fleet_healthy_share_floor": 0.0,
        "ringrift_fleet_voters": len(q["voters"]),
        "ringrift_fleet_voters_alive": len(q["healthy_voters"]),
        "ringrift_fleet_quorum_required": q["required"],
        "ringrift_fleet_quorum_ok": 0.0,
    }
    assert all(f["help"] for f in families.values())


def test_prometheus_label_values_are_escaped():
    name = 'evil"} 1\nfake_metric 2 \\'
    r = build([fr.host_record("a", {"ringrift_provider": name}, audit("healthy", pid=1))], ["a"], generated_at=GENERATED_AT)
    text = fr.render_prometheus(r)
    families = parse_prometheus(text)
    assert "fake_metric" not in families
    assert dict(list(families["ringrift_fleet_nodes"]["samples"])[0])["provider"] == name
    assert families["ringrift_fleet_quorum_ok"]["samples"][()] == 1.0


# --------------------------------------------------------------------------- write_report: extra formats

def test_write_report_extra_formats(report, tmp_path):
    paths = fr.write_report(report, str(tmp_path), extra_formats=["junit", "prometheus"])
    assert paths == {
        "json_path": str(tmp_path / "fleet-audit-20261128T120000Z.json"),
        "md_path": str(tmp_path / "fleet-audit-20261128T120000Z.md"),
        "junit_path": str(tmp_path / "fleet-audit-20261128T120000Z.junit.xml"),
        # One stable name: the textfile collector reads every *.prom in its directory.
        "metrics_path": str(tmp_path / "fleet-audit.prom"),
    }
    with open(paths["junit_path"]) as f:
        assert f.read() == fr.render_junit(report)
    later = dict(report, generated_at="2026-11-28T13:00:00Z")
    fr.write_report(later, str(tmp_path), extra_formats=["prometheus"])
    with open(paths["metrics_path"]) as f:
        assert f.read() == fr.render_prometheus(later)
    assert sorted(n for n in os.listdir(str(tmp_path)) if n.endswith(".prom")) == ["fleet-audit.prom"]
    assert not [n for n in os.listdir(str(tmp_path)) if n.startswith(".")]


def test_write_report_unknown_format_writes_nothing(report, tmp_path):
    with pytest.raises(ValueError, match="unknown report format"):
        fr.write_report(report, str(tmp_path / "r"), extra_formats=["csv"])
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- unsupported_os

MAC_REASON = ('macOS (gpu "M3 Max/Ultra (MPS)" is an Apple GPU): the collection manages Linux nodes only '
              '(it reads /proc and runs the daemon under systemd or supervisor)')
# What audit.yml registers for a host it skips (the inventory marks it unsupported_os).
SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}


def mac_facts():
    return dict(facts("mac-studio", provider="local", voter=False, gpu_count=1, gpu_model="M3 Max/Ultra (MPS)"),
                ringrift_unsupported_os=MAC_REASON, ringrift_nvidia_gpu=False)


def test_host_record_unsupported_os_from_the_inventory_is_never_never_started():
    for result in (SKIPPED, None):
        r = fr.host_record("mac-studio", mac_facts(), result)
        assert r["diagnosis"] == "unsupported_os"
        assert r["unsupported_reason"] == MAC_REASON
        assert r["reachable"] is False and r["alive"] is False  # not contacted
        assert r["last_error"] is None


def test_host_record_unsupported_os_from_the_node():
    result = dict(audit("never_started"), diagnosis="unsupported_os", service={"manager": "none"},
                  unsupported_reason="Darwin: the collection manages Linux nodes only (...)", msg="unsupported_os: ...")
    r = fr.host_record("odd-1", facts("odd-1", provider="aws"), result)
    assert (r["diagnosis"], r["reachable"], r["unsupported_reason"]) == (
        "unsupported_os", True, "Darwin: the collection manages Linux nodes only (...)")


def test_host_record_a_node_finding_beats_the_inventory_guess():
    # The inventory guessed wrong (set os: linux to stop it) and the node answered: its finding counts.
    r = fr.host_record("mac-studio", mac_facts(), audit("healthy", pid=9))
    assert r["diagnosis"] == "healthy" and r["unsupported_reason"] is None
    r = fr.host_record("mac-studio", mac_facts(), {"unreachable": True, "msg": "ssh: connect to host: timed out"})
    assert r["diagnosis"] == "unreachable"


@pytest.fixture
def mixed_report():
    records = [rec("local-1", "healthy"), rec("local-2", "never_started"), rec("nebius-1", "healthy", voter=True)]
    records.append(fr.host_record("mac-studio", mac_facts(), SKIPPED))
    return build(records, ["nebius-1"], generated_at=GENERATED_AT, min_healthy_share=1.0)


def test_report_counts_unsupported_os_separately(mixed_report):
    s = mixed_report["summary"]
    assert (s["total"], s["managed"], s["unsupported_os"], s["healthy"]) == (4, 3, 1, 2)
    assert s["rate"] == 0.667  # 2 of the 3 managed nodes, not 2 of 4
    assert s["by_diagnosis"]["unsupported_os"] == 1 and s["by_diagnosis"]["never_started"] == 1
    assert s["not_started"] == 1  # the Mac is not a daemon that never started
    assert mixed_report["providers"]["local"]["rate"] == 0.5
    cause = mixed_report["root_causes"]["unsupported_os"]
    assert cause["hosts"] == ["mac-studio"] and cause["reasons"] == {"mac-studio": MAC_REASON}
    assert cause["description"].startswith("Operating system the collection cannot manage")
    # No repair command names it: site.yml leaves it out.
    assert all("mac-studio" not in rec_["hosts"] for rec_ in mixed_report["recommendations"])
    assert [rec_["fix"] for rec_ in mixed_report["recommendations"]] == ["converge"]
    assert fr.DIAGNOSES[-2:] == ("unsupported_os", "unreachable")


def test_healthy_share_leaves_unsupported_os_out():
    records = [rec("vast-1", "healthy"), fr.host_record("mac-studio", mac_facts(), SKIPPED)]
    report = build(records, [], generated_at=GENERATED_AT, min_healthy_share=1.0)
    assert report["summary"]["rate"] == 1.0 and report["summary"]["healthy_share_ok"] is True


def test_markdown_and_junit_show_unsupported_os(mixed_report):
    md = fr.render_markdown(mixed_report)
    assert "- **2 of 3** P2P nodes healthy (67%)." in md
    assert ("- 1 on an operating system the collection cannot manage (not Linux, such as macOS): left out of the "
            "converge and of the count above.") in md
    assert "| mac-studio | 1x M3 Max/Ultra (MPS) | not managed | ? | - | not managed | unsupported OS (not managed) |" in md
    assert "  - mac-studio: macOS (gpu \"M3 Max/Ultra (MPS)\" is an Apple GPU): the collection manages Linux" in md
    root = ET.fromstring(fr.render_junit(mixed_report))
    case = [c for c in root.iter("testcase") if c.get("name") == "mac-studio"][0]
    assert case.find("failure") is None
    assert case.find("skipped").get("message") == "unsupported_os: " + MAC_REASON
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("4", "1", "1")


# --------------------------------------------------------------------------- refused SSH host keys

# What Ansible 2.19 registers when OpenSSH refuses a changed host key (accept-new, key recorded before).
HOST_KEY_CHANGED_MSG = (
    'Task failed: Data could not be sent to remote host "127.0.0.1". Make sure this host can be reached over ssh: '
    '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n'
    '@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n'
    '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n'
    'IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\r\n'
    'Someone could be eavesdropping on you right now (man-in-the-middle attack)!\r\n'
    'It is also possible that a host key has just been changed.\r\n'
    'Please contact your system administrator.\r\n'
    'Add correct host key in /root/.ssh/ringrift_known_hosts to get rid of this message.\r\n'
    'Offending ED25519 key in /root/.ssh/ringrift_known_hosts:1\r\n'
    'Host key for [203.0.113.7]:40022 has changed and you have requested strict checking.\r\n'
    'Host key verification failed.')


# The host's connection options as the inventory plugin writes them (known_hosts_file, then a jump).
SSH_ARGS = ("-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s -o ProxyCommand=\"ssh -o BatchMode=yes "
            "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s -W '[%%h]:%%p' -p 22 root@192.0.2.1\"")


def test_unreachable_on_a_changed_host_key_says_what_to_do():
    host = dict(facts("vast-9"), ansible_ssh_common_args=SSH_ARGS % ("~/.ssh/ringrift_known_hosts", "~/.ssh/ringrift_known_hosts"))
    r = fr.host_record("vast-9", host, {"unreachable": True, "changed": False, "msg": HOST_KEY_CHANGED_MSG})
    assert (r["diagnosis"], r["reachable"], r["error_kind"]) == ("unreachable", False, "host_key_changed")
    assert r["last_error"] == (
        "SSH host key of [203.0.113.7]:40022 differs from the one recorded in the fleet's known-hosts file "
        "~/.ssh/ringrift_known_hosts (the inventory's known_hosts_file): if the instance was replaced, remove the "
        "old key (ssh-keygen -R '[203.0.113.7]:40022' -f ~/.ssh/ringrift_known_hosts) and connect again; otherwise "
        "someone else answers at that address")


def test_a_changed_host_key_names_the_known_hosts_file_the_inventory_set():
    host = dict(facts("vast-9"), ansible_ssh_common_args=SSH_ARGS % ("/srv/awx/known_hosts", "/srv/awx/known_hosts"))
    r = fr.host_record("vast-9", host, {"unreachable": True, "msg": HOST_KEY_CHANGED_MSG})
    assert "ssh-keygen -R '[203.0.113.7]:40022' -f /srv/awx/known_hosts)" in r["last_error"]
    assert "ringrift_known_hosts" not in r["last_error"]


def test_a_changed_host_key_without_a_known_hosts_option_names_no_file():
    # A hand-written inventory: OpenSSH recorded the key in its default file, which ssh-keygen -R edits without -f.
    r = fr.host_record("vast-9", facts("vast-9"), {"unreachable": True, "msg": HOST_KEY_CHANGED_MSG})
    assert "(ssh-keygen -R '[203.0.113.7]:40022')" in r["last_error"] and " -f " not in r["last_error"]
    assert "your known-hosts file" in r["last_error"]


def test_unreachable_on_a_refused_host_key_without_the_changed_line():
    msg = "Failed to connect to the host via ssh: Host key verification failed."
    r = fr.host_record("vast-9", facts("vast-9"), {"unreachable": True, "msg": msg})
    assert r["error_kind"] == "host_key_rejected"
    assert r["last_error"] == "SSH refused the host key (Host key verification failed): " + msg


def test_other_ssh_failures_keep_their_message():
    r = fr.host_record("vast-9", facts("vast-9"), {"unreachable": True, "msg": "ssh: connect to host x port 22: No route"})
    assert (r["error_kind"], r["last_error"]) == (None, "ssh: connect to host x port 22: No route")
