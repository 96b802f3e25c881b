"""The collection against the REAL RingRift daemon, with default settings, on both node kinds.

`tools/demo.py fleet 2 --daemon real` starts one systemd VM node and one supervisor container
node of the simulated fleet, each carrying the real `ai-service` tree (the shared archive,
or RINGRIFT_AI_SERVICE: a directory, archive or git URL), and writes the fleet file in the
real format. Then, as an operator would: site.yml, audit, site.yml again, kill -9, --tags deps.
`make e2e-real` runs it; the Makefile skips it loudly when no real daemon is there, and CI
(`.ci/run`) requires it.
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
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _playbook(name, *args, timeout=1200):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), RINGRIFT_REPORT_DIR=os.path.join(WORK, "reports"))
    proc = subprocess.run([os.path.join(os.path.dirname(PY), "ansible-playbook"), "-i",
                           os.path.join(WORK, "demo.distributed_hosts.yml"), os.path.join("playbooks", name)] + list(args),
                          cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                          timeout=timeout)
    with open(os.path.join(WORK, "e2e-real-%s.log" % name.split(".")[0]), "a") as handle:
        handle.write(proc.stdout)
    return proc


def _changed(proc):
    return dict((m.group(1), int(m.group(3))) for m in RECAP.finditer(proc.stdout) if m.group(1) != "localhost")


def _node(name, script):
    return subprocess.run(["docker", "exec", "rr-" + name, "sh", "-c", script], text=True, capture_output=True, check=False,
                          timeout=120)


def _audit():
    proc = _playbook("audit.yml", "-e", "audit_fail_on_quorum_loss=false")
    assert proc.returncode == 0, proc.stdout[-4000:]
    reports = sorted(p for p in os.listdir(os.path.join(WORK, "reports")) if p.startswith("fleet-audit-") and p.endswith(".json"))
    with open(os.path.join(WORK, "reports", reports[-1])) as handle:
        report = json.load(handle)
    with open(os.path.join(WORK, "reports", reports[-1][:-5] + ".md")) as handle:
        markdown = handle.read()
    return report, markdown


def _wait_healthy(name, seconds=240):
    """The daemon holds its port under its manager and answers /health (the collection's own check)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    proc = subprocess.run([os.path.join(os.path.dirname(PY), "ansible"), "-i", os.path.join(WORK, "demo.distributed_hosts.yml"),
                           name, "-m", "ringrift.cluster.p2p_listener",
                           "-a", "port=8770 node_id=%s health_path=/health service_manager=auto timeout=%d" % (name, seconds),
                           "-o"], cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                          timeout=seconds + 120)
    return proc


@pytest.fixture(scope="module")
def fleet():
    if subprocess.run(["docker", "image", "inspect", "ringrift/vm:latest", "ringrift/container:latest"],
                      capture_output=True, check=False).returncode != 0:
        pytest.fail("local images missing: run `make images` first (make e2e-real does)")
    proc = subprocess.run([PY, "tools/demo.py", "fleet", "2", "--daemon", "real"], cwd=REPO, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:]
    with open(os.path.join(WORK, "plan.json")) as handle:
        plan = json.load(handle)
    yield plan
    subprocess.run([PY, "tools/demo.py", "down"], cwd=REPO, check=False, timeout=300)


@pytest.fixture(scope="module")
def converged(fleet):
    proc = _playbook("site.yml")
    print(proc.stdout[-6000:])
    return proc


def test_fleet_has_both_node_kinds_on_the_real_daemon(fleet):
    assert sorted(n["kind"] for n in fleet["nodes"]) == ["container", "vm"]
    for node in fleet["nodes"]:
        # The real tree, not the stand-in: its script is some 14,000 lines.
        out = _node(node["name"], "wc -l < %s/scripts/p2p_orchestrator.py" % node["checkout"]).stdout
        assert int(out.strip()) > 5000, out


def test_one_site_run_with_defaults_makes_both_healthy(fleet, converged):
    assert converged.returncode == 0, converged.stdout[-6000:]
    assert "All 2 targeted hosts converged" in converged.stdout
    for node in fleet["nodes"]:
        assert "%s: healthy, pid" % node["name"] in converged.stdout


def test_audit_says_healthy_with_quorum(fleet, converged):
    report, markdown = _audit()
    hosts = dict((h["name"], h) for h in report["hosts"])
    assert [h["diagnosis"] for h in hosts.values()] == ["healthy", "healthy"], report["hosts"]
    assert report["quorum"]["ok"] is True
    assert all(h["last_converged_at"] for h in hosts.values())
    assert "--tags deps" not in markdown


CLUSTER_STATUS = ("python3 -c \"import json, urllib.request; "
                  "print(urllib.request.urlopen('http://127.0.0.1:8770/api/cluster/status', timeout=20).read().decode())\"")


def test_audit_under_ansible_runner_lands_in_the_artifacts(fleet, converged, tmp_path, monkeypatch):
    """The way AWX runs it: ansible-runner, a private data directory, the fleet's inventory source."""
    import ansible_runner
    monkeypatch.delenv("RINGRIFT_REPORT_DIR", raising=False)
    monkeypatch.setenv("ANSIBLE_CONFIG", os.path.join(REPO, "ansible.cfg"))
    monkeypatch.setenv("PATH", os.path.dirname(PY) + os.pathsep + os.environ["PATH"])
    run = ansible_runner.run(private_data_dir=str(tmp_path), project_dir=REPO, playbook="playbooks/audit.yml",
                             inventory=os.path.join(WORK, "demo.distributed_hosts.yml"), ident="audit1",
                             quiet=True, timeout=600)
    artifacts = tmp_path / "artifacts" / "audit1"
    assert run.rc == 0, (artifacts / "stdout").read_text()[-4000:]
    reports = sorted((artifacts / "reports").glob("fleet-audit-*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert sorted(h["name"] for h in report["hosts"]) == sorted(n["name"] for n in fleet["nodes"])
    assert [h["diagnosis"] for h in report["hosts"]] == ["healthy", "healthy"], report["hosts"]
    published = [e for e in run.events if e.get("event") == "playbook_on_stats"][0]["event_data"]["artifact_data"]
    assert published["ringrift_fleet_report"]["quorum"]["ok"] is True


def test_daemon_reads_the_deployed_fleet_file(fleet, converged):
    """The very file the inventory read is in the daemon's tree, and the daemon took its voters from it."""
    with open(os.path.join(WORK, "distributed_hosts.yaml")) as handle:
        expected = handle.read()
    for node in fleet["nodes"]:
        deployed = _node(node["name"], "cat %s/config/distributed_hosts.yaml" % node["checkout"])
        assert deployed.returncode == 0 and deployed.stdout == expected
        status = _node(node["name"], CLUSTER_STATUS)
        assert status.returncode == 0, status.stderr
        cluster = json.loads(status.stdout)
        assert sorted(cluster["voter_node_ids"]) == sorted(fleet["voters"]), cluster
        assert cluster["voter_config_source"] == "config", cluster


def test_the_real_daemon_runs_as_the_sudo_login(fleet, converged):
    """The VM node is logged into as `ubuntu` with sudo: the real daemon runs as ubuntu from ubuntu's home."""
    node = next(n for n in fleet["nodes"] if n["kind"] == "vm")
    assert (node["login"], node["checkout"]) == ("ubuntu", "/home/ubuntu/ringrift/ai-service"), node
    pid = _node(node["name"], "systemctl show -p MainPID --value ringrift-p2p").stdout.strip()
    assert pid.isdigit() and pid != "0", pid
    assert _node(node["name"], "stat -c %U /proc/" + pid).stdout.strip() == "ubuntu"
    assert _node(node["name"], "stat -c '%U %a' /etc/ringrift/node.conf").stdout.strip() == "ubuntu 600"
    assert _node(node["name"], "find /home/ubuntu/ringrift -xdev ! -user ubuntu -print | head -3").stdout.strip() == ""


def test_lsof_was_installed_and_proven(fleet, converged):
    for node in fleet["nodes"]:
        assert _node(node["name"], "command -v lsof").returncode == 0


def test_second_run_takes_the_fast_path(fleet, converged):
    rerun = _playbook("site.yml")
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    assert _changed(rerun) == dict((n["name"], 0) for n in fleet["nodes"]), rerun.stdout[-4000:]
    assert "(2 unchanged since their last converge" in rerun.stdout


def test_kill_9_is_healed_by_the_manager(fleet, converged):
    for node in fleet["nodes"]:
        pid = _node(node["name"], "ss -Hltnp 'sport = :8770' | sed -n 's/.*pid=\\([0-9]*\\).*/\\1/p' | head -1").stdout.strip()
        assert pid.isdigit(), pid
        assert _node(node["name"], "kill -9 %s" % pid).returncode == 0
    for node in fleet["nodes"]:
        healed = _wait_healthy(node["name"])
        assert healed.returncode == 0 and '"diagnosis": "healthy"' in healed.stdout, healed.stdout[-3000:]
    report, dummy = _audit()
    assert [h["diagnosis"] for h in report["hosts"]] == ["healthy", "healthy"], report["hosts"]


def test_tags_deps_puts_back_a_lost_pydantic(fleet, converged):
    """pydantic removed from one node's venv; --tags deps with a package list that does not name it:
    the entry-point probe finds it, the built-in table names its distribution, it is installed."""
    node = next(n for n in fleet["nodes"] if n["kind"] == "container")
    venv_python = "%s/venv/bin/python" % node["checkout"]
    assert _node(node["name"], "%s -m pip uninstall -q -y pydantic" % venv_python).returncode == 0
    assert _node(node["name"], "%s -c 'import pydantic'" % venv_python).returncode != 0
    proc = _playbook("site.yml", "--tags", "deps", "--limit", node["name"],
                     "-e", '{"python_deps_packages": ["aiohttp", "psutil", "PyYAML"]}')
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "needed pydantic beyond python_deps_packages" in proc.stdout
    assert _node(node["name"], "%s -c 'import pydantic'" % venv_python).returncode == 0
    healed = _wait_healthy(node["name"])
    assert healed.returncode == 0 and '"diagnosis": "healthy"' in healed.stdout, healed.stdout[-3000:]
