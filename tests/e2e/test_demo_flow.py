"""The main job end to end on a small simulated fleet (Docker, local images).

Runs `tools/demo.py up 5`: seeds every fault class of the real audit, audits,
repairs with site.yml, audits again. Asserts on the two JSON reports, and that
`site.yml --check` on the broken fleet changed nothing on any node.
Needs the Docker engine and the local images (`make images`); `make e2e` runs it.
"""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.path.join(REPO, "build", "demo")
PY = sys.executable


@pytest.fixture(scope="module")
def demo():
    if subprocess.run(["docker", "image", "inspect", "ringrift/vm:latest", "ringrift/container:latest"],
                      capture_output=True, check=False).returncode != 0:
        pytest.fail("local images missing: run `make images` first (make e2e does)")
    proc = subprocess.run([PY, "tools/demo.py", "up", "5", "--check-first"], cwd=REPO, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, timeout=1500)
    print(proc.stdout[-20000:])
    with open(os.path.join(WORK, "plan.json")) as f:
        plan = json.load(f)
    with open(os.path.join(WORK, "summary.json")) as f:
        summary = json.load(f)
    yield proc, plan, summary
    subprocess.run([PY, "tools/demo.py", "down"], cwd=REPO, check=False, timeout=300)


def _load(path):
    with open(path) as f:
        return json.load(f)


def test_demo_exits_zero(demo):
    proc, _, summary = demo
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert summary["ok"] is True


def test_first_audit_finds_each_seeded_fault(demo):
    _, plan, summary = demo
    before = {h["name"]: h for h in _load(summary["before"])["hosts"]}
    faults = {n["name"]: n["fault"] for n in plan["nodes"]}
    assert set(before) == set(faults)
    assert sorted(set(faults.values())) == ["crash_psutil", "crash_yaml", "decoy", "healthy"]
    for name, fault in faults.items():
        record = before[name]
        if fault == "healthy":
            assert record["diagnosis"] == "healthy", record
            assert record["pid"], record
        elif fault == "crash_psutil":
            assert (record["diagnosis"], record["missing_module"]) == ("crashed", "psutil"), record
        elif fault == "crash_yaml":
            assert (record["diagnosis"], record["missing_module"]) == ("crashed", "yaml"), record
        elif fault == "decoy":
            # A command line naming p2p_orchestrator is not a running daemon.
            assert record["diagnosis"] == "never_started", record
            assert record["listening"] is False and record["alive"] is False, record


def test_first_audit_reports_quorum_lost(demo):
    _, plan, summary = demo
    quorum = _load(summary["before"])["quorum"]
    assert quorum["voters"] == plan["voters"]
    assert quorum["ok"] is False
    assert len(quorum["healthy_voters"]) == quorum["required"] - 1


def test_check_mode_changed_nothing_and_reported(demo):
    _, _, summary = demo
    assert summary["check"]["listing_unchanged"] is True, summary["check"]
    dry = _load(summary["check"]["report"])
    assert dry["kind"] == "dry_run"
    assert dry["dry_run"]["would_change_tasks"] > 0
    assert set(h["name"] for h in dry["hosts"]) == set(h["name"] for h in _load(summary["before"])["hosts"])


def test_second_audit_all_healthy_quorum_met(demo):
    _, plan, summary = demo
    after = _load(summary["after"])
    assert [h["name"] for h in after["hosts"] if h["diagnosis"] != "healthy"] == []
    assert after["summary"]["healthy"] == len(plan["nodes"])
    assert after["quorum"]["ok"] is True
    assert sorted(after["quorum"]["healthy_voters"]) == sorted(plan["voters"])
