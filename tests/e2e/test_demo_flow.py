"""The main job end to end on a small simulated fleet (Docker, local images).

Runs `tools/demo.py up 5`: seeds every fault class of the real audit, audits,
repairs with site.yml, audits again. Asserts on the two JSON reports, and that
`site.yml --check` on the broken fleet changed nothing on any node.
Needs the Docker engine and the local images (`make images`); `make e2e` runs it.
"""

import json
import os
import re
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
    proc, dummy, summary = demo
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert summary["ok"] is True


def test_first_audit_finds_each_seeded_fault(demo):
    dummy, plan, summary = demo
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
        # Healthy and crashing nodes were converged once by site.yml; the others never were.
        assert (record["last_converged_at"] is not None) == (fault in ("healthy", "crash_psutil", "crash_yaml")), record


def test_first_audit_reports_quorum_lost(demo):
    dummy, plan, summary = demo
    quorum = _load(summary["before"])["quorum"]
    assert quorum["voters"] == plan["voters"]
    assert quorum["ok"] is False
    assert len(quorum["healthy_voters"]) == quorum["required"] - 1


def test_check_mode_changed_nothing_and_reported(demo):
    dummy, dummy2, summary = demo
    assert summary["check"]["listing_unchanged"] is True, summary["check"]
    dry = _load(summary["check"]["report"])
    assert dry["kind"] == "dry_run"
    assert dry["dry_run"]["would_change_tasks"] > 0
    assert set(h["name"] for h in dry["hosts"]) == set(h["name"] for h in _load(summary["before"])["hosts"])


def test_second_audit_all_healthy_quorum_met(demo):
    dummy, plan, summary = demo
    after = _load(summary["after"])
    assert [h["name"] for h in after["hosts"] if h["diagnosis"] != "healthy"] == []
    assert after["summary"]["healthy"] == len(plan["nodes"])
    assert [h["name"] for h in after["hosts"] if not h["last_converged_at"]] == []
    assert after["quorum"]["ok"] is True
    assert sorted(after["quorum"]["healthy_voters"]) == sorted(plan["voters"])


def _site(args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    return subprocess.run([os.path.join(os.path.dirname(PY), "ansible-playbook"), "-i",
                           os.path.join(WORK, "demo.distributed_hosts.yml"), "playbooks/site.yml"] + args,
                          cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          check=False, timeout=900)


def _main_pid(node):
    out = subprocess.run(["docker", "exec", "rr-" + node, "systemctl", "show", "-p", "MainPID", "--value", "ringrift-p2p"],
                         text=True, capture_output=True, check=True).stdout
    return int(out.strip())


RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _changed(proc):
    return dict((m.group(1), int(m.group(3))) for m in RECAP.finditer(proc.stdout) if m.group(1) != "localhost")


def _node_sh(node, script):
    return subprocess.run(["docker", "exec", "rr-" + node, "sh", "-c", script], text=True, capture_output=True, check=False)


# Runs before the quorum-guard test, which changes a voter's unit on purpose.
def test_rerun_on_healthy_fleet_takes_the_fast_path(demo):
    """After the repair, every node's converge stamp holds: the roles are skipped, nothing changes."""
    dummy, plan, summary = demo
    assert summary["ok"] is True
    rerun = _site([])
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    assert _changed(rerun) == dict((n["name"], 0) for n in plan["nodes"]), rerun.stdout[-4000:]
    count = len(plan["nodes"])
    assert "All %d targeted hosts converged (%d unchanged since their last converge" % (count, count) in rerun.stdout
    assert "converging:" not in rerun.stdout
    # The converge plays had no host left: no role task ran.
    assert "ringrift.cluster.python_deps :" not in rerun.stdout


def test_drift_sends_only_the_drifted_nodes_through_the_roles(demo):
    """A package removed by hand and a disabled unit: those two nodes converge in full, the rest stay on the fast path."""
    dummy, plan, dummy2 = demo
    container = next(n for n in plan["nodes"] if n["kind"] == "container")
    vm = next(n for n in plan["nodes"] if n["kind"] == "vm")
    venv_python = _node_sh(container["name"], "ls /root/ringrift/ai-service/venv/bin/python "
                                              "/workspace/ringrift/ai-service/venv/bin/python 2>/dev/null").stdout.split()[0]
    assert _node_sh(container["name"], "%s -m pip uninstall -q -y psutil" % venv_python).returncode == 0
    assert _node_sh(vm["name"], "systemctl disable -q ringrift-p2p").returncode == 0

    repair = _site([])
    assert repair.returncode == 0, repair.stdout[-4000:]
    assert "%s: converging: %s cannot import psutil" % (container["name"], venv_python) in repair.stdout, repair.stdout[-4000:]
    assert "%s: converging: ringrift-p2p.service is disabled" % vm["name"] in repair.stdout, repair.stdout[-4000:]
    changed = _changed(repair)
    drifted = set([container["name"], vm["name"]])
    assert all(changed[name] > 0 for name in drifted), changed
    assert all(changed[name] == 0 for name in changed if name not in drifted), changed
    # Repaired for real, not only re-stamped.
    assert _node_sh(container["name"], "%s -c 'import psutil'" % venv_python).returncode == 0
    assert _node_sh(vm["name"], "systemctl is-enabled ringrift-p2p").stdout.strip() == "enabled"

    again = _site([])
    assert again.returncode == 0, again.stdout[-4000:]
    assert set(_changed(again).values()) == set([0]) and "converging:" not in again.stdout, again.stdout[-4000:]


def test_quorum_guard_refuses_then_proceeds(demo):
    """A voter whose settings changed is restarted only while the other live voters are a quorum."""
    dummy, plan, summary = demo
    assert summary["ok"] is True
    vm_voters = [n["name"] for n in plan["nodes"] if n["voter"] and n["kind"] == "vm"]
    assert len(vm_voters) >= 2 and len(plan["voters"]) == 3
    target, other = vm_voters[:2]
    before = _main_pid(target)
    assert before > 0

    # Seed the refusal: another voter is down, so restarting the target would leave 1 of 3 alive.
    subprocess.run(["docker", "exec", "rr-" + other, "systemctl", "stop", "ringrift-p2p"], check=True)
    refused = _site(["--limit", target, "--tags", "service", "-e", "p2p_service_restart_sec=6"])
    assert refused.returncode == 0, refused.stdout[-4000:]
    assert "Quorum guard: restarting %s would leave 1 live voters of 3" % target in refused.stdout, refused.stdout[-4000:]
    assert _main_pid(target) == before, "the guard must not restart the voter"

    # With the other voter back, the same pending restart proceeds.
    subprocess.run(["docker", "exec", "rr-" + other, "systemctl", "start", "ringrift-p2p"], check=True)
    proceeded = _site(["--limit", target, "--tags", "service,verify", "-e", "p2p_service_restart_sec=7"])
    assert proceeded.returncode == 0, proceeded.stdout[-4000:]
    assert "Quorum guard" not in proceeded.stdout
    after = _main_pid(target)
    assert after > 0 and after != before, "the voter must have been restarted with its new settings"
