"""The main job end to end on a small simulated fleet (Docker, local images).

Runs `tools/demo.py up 5`: seeds every fault class of the real audit, audits,
repairs with site.yml, audits again. Asserts on the two JSON reports, and that
`site.yml --check` on the broken fleet changed nothing on any node.

Transport is the point here: every node is reached over SSH exactly as the generated
fleet file says (a gateway address with a port per node, a jump host named by
`ssh_proxy`, root logins and `ubuntu` logins with sudo, voters among both), through the
inventory plugin's own connection variables. `docker exec` is used only to seed faults
and to look at the nodes' state.
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


def _inventory():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    out = subprocess.run([os.path.join(os.path.dirname(PY), "ansible-inventory"), "-i",
                          os.path.join(WORK, "demo.distributed_hosts.yml"), "--list"],
                         cwd=REPO, env=env, text=True, capture_output=True, check=True, timeout=120).stdout
    # --list marks values Ansible treats as unsafe ({"__ansible_unsafe": value}); --host would not.
    return json.loads(out, object_hook=lambda d: d["__ansible_unsafe"] if set(d) == set(["__ansible_unsafe"]) else d)[
        "_meta"]["hostvars"]


def _load(path):
    with open(path) as f:
        return json.load(f)


def test_demo_exits_zero(demo):
    proc, dummy, summary = demo
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert summary["ok"] is True


def test_nodes_are_reached_over_ssh_as_the_fleet_file_says(demo):
    """Gateway, jump host, root and sudo logins, voters among both; nothing overridden by hand."""
    dummy, plan, dummy2 = demo
    assert plan["transport"] == "ssh"
    nodes = dict((n["name"], n) for n in plan["nodes"])
    hostvars = _inventory()
    gateway = [n for n in nodes.values() if n["provider"] == "vast"]
    assert len(gateway) >= 2 and len(set(n["published_port"] for n in gateway)) == len(gateway)
    behind_jump = [n for n in nodes.values() if n["proxy"]]
    assert behind_jump, "no node behind the jump host"
    voters = [nodes[v] for v in plan["voters"]]
    assert set(n["login"] for n in voters) == set(["root", "ubuntu"]), voters
    key = os.path.join(WORK, "ssh", "id_cluster")
    known = os.path.join(WORK, "ssh", "known_hosts")
    for name, node in nodes.items():
        hv = hostvars[name]
        assert "ansible_connection" not in hv, hv  # ssh: Ansible's default, from the plugin alone
        assert (hv["ansible_user"], hv["ansible_ssh_private_key_file"]) == (node["login"], key)
        assert hv["ansible_ssh_common_args"].startswith(
            "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s" % known), hv["ansible_ssh_common_args"]
        if node["proxy"]:
            jump = nodes[node["proxy"]]
            assert (hv["ansible_host"], hv["ansible_port"]) == (name, 22)
            assert "ProxyCommand=" in hv["ansible_ssh_common_args"]
            assert "-p %d -i %s %s@127.0.0.1" % (jump["published_port"], key, jump["login"]) in hv["ansible_ssh_common_args"]
        else:
            assert (hv["ansible_host"], hv["ansible_port"]) == ("127.0.0.1", node["published_port"])
            assert "ProxyCommand" not in hv["ansible_ssh_common_args"]
    with open(os.path.join(WORK, "first-contact.log")) as f:
        pinged = f.read()
    assert all("%s | SUCCESS" % name in pinged for name in nodes), pinged
    # Trust on first use: every node's host key is in the demo's own file now (hashed or not).
    with open(known) as f:
        assert len([line for line in f if line.strip()]) >= len(nodes)


def test_sudo_nodes_run_the_daemon_as_their_login_user(demo):
    """An `ubuntu` login: the daemon, its checkout and node.conf are ubuntu's; nothing lands under /root."""
    dummy, plan, summary = demo
    assert summary["ok"] is True
    sudo_nodes = [n for n in plan["nodes"] if n["login"] == "ubuntu"]
    assert sudo_nodes
    for node in sudo_nodes:
        name = node["name"]
        assert node["checkout"].startswith("/home/ubuntu/"), node
        pid = _main_pid(name)
        assert _node_sh(name, "stat -c %%U /proc/%d" % pid).stdout.strip() == "ubuntu"
        assert _node_sh(name, "systemctl show -p User --value ringrift-p2p").stdout.strip() == "ubuntu"
        assert _node_sh(name, "stat -c '%U %a' /etc/ringrift/node.conf").stdout.strip() == "ubuntu 600"
        owners = _node_sh(name, "find %s/venv %s/config -xdev ! -user ubuntu -print | head -5"
                          % (node["checkout"], node["checkout"])).stdout.strip()
        assert owners == "", "files in ubuntu's checkout not owned by ubuntu: %s" % owners
        assert _node_sh(name, "ls -A /root").stdout.split() == [".bashrc", ".profile", ".ssh"], \
            "the converge wrote under /root of a sudo node"
    # Root logins never call sudo: the container image has none, and those nodes converged.
    for node in plan["nodes"]:
        if node["login"] == "root" and node["kind"] == "container":
            assert _node_sh(node["name"], "command -v sudo").returncode != 0


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

    # The refused restart is remembered on the node: the unit is already up to date, so nothing
    # else would restart the daemon on its new settings.
    assert _node_sh(target, "test -f /var/lib/ringrift/ringrift-p2p.restart-pending").returncode == 0

    # With the other voter back, the same settings again (no new change): the pending restart proceeds.
    subprocess.run(["docker", "exec", "rr-" + other, "systemctl", "start", "ringrift-p2p"], check=True)
    proceeded = _site(["--limit", target, "--tags", "service,verify", "-e", "p2p_service_restart_sec=6"])
    assert proceeded.returncode == 0, proceeded.stdout[-4000:]
    assert "Quorum guard" not in proceeded.stdout
    assert "a restart deferred by an earlier run is still due" in proceeded.stdout, proceeded.stdout[-4000:]
    after = _main_pid(target)
    assert after > 0 and after != before, "the voter must have been restarted with its new settings"
    assert _node_sh(target, "test -e /var/lib/ringrift/ringrift-p2p.restart-pending").returncode != 0
