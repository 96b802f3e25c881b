# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWX/AAP: the execution environment definition and a run the way AWX runs a job.

- `ansible-builder create` (offline: it only writes the build context) on
  execution-environment.yml, with the collection tarball `make build` would make.
- `ansible_runner.run` with a private data directory in a temporary directory, like an AWX
  job, runs playbooks/audit.yml against localhost (ansible_connection=local, no daemon on the
  port): the report lands in the runner's artifacts, its summary in the job's artifact data
  (set_stats), and the alert reaches a webhook receiver on 127.0.0.1 without the URL showing
  up anywhere under the artifacts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import threading

import pytest
import yaml

from ansible_collections.ringrift.cluster.tests.helpers import BIN, REPO, ansible_env

EE_FILES = ("execution-environment.yml", "requirements.yml", "requirements.txt", "bindep.txt")


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def test_runtime_dependencies_are_one_list_without_test_only_collections():
    galaxy = load(os.path.join(REPO, "galaxy.yml"))["dependencies"]
    wanted = dict((c["name"], c["version"]) for c in load(os.path.join(REPO, "requirements.yml"))["collections"])
    assert galaxy == wanted
    assert "community.docker" not in galaxy
    assert load(os.path.join(REPO, "meta", "execution-environment.yml"))["dependencies"] == {
        "python": "requirements.txt", "system": "bindep.txt"}


def test_ansible_builder_create_writes_the_expected_context(tmp_path):
    for name in EE_FILES:
        shutil.copy(os.path.join(REPO, name), str(tmp_path / name))
    dist = tmp_path / "build" / "dist"
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(dist), REPO],
                   check=True, capture_output=True, text=True, timeout=300)
    tarball = glob.glob(str(dist / "ringrift-cluster-*.tar.gz"))
    assert len(tarball) == 1
    with tarfile.open(tarball[0]) as tar:
        names = set(tar.getnames())
    # What ansible-builder's introspection reads from the installed collection.
    assert {"meta/execution-environment.yml", "requirements.txt", "bindep.txt", "requirements.yml"} <= names
    assert "execution-environment.yml" not in names

    proc = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-f", "execution-environment.yml",
                           "--context", str(tmp_path / "ctx"), "--output-filename", "Containerfile"],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = tmp_path / "ctx" / "_build"
    galaxy = load(str(build / "requirements.yml"))
    assert [c["name"] for c in galaxy["collections"]] == ["ansible.posix", "community.general"]
    assert "PyYAML>=5.1" in (build / "requirements.txt").read_text().splitlines()
    assert "openssh-client [platform:dpkg]" in (build / "bindep.txt").read_text().splitlines()
    assert (build / "collections" / os.path.basename(tarball[0])).is_file()
    containerfile = (tmp_path / "ctx" / "Containerfile").read_text()
    assert "ansible-core==2.19.14" in containerfile and "ansible-runner==2.4.3" in containerfile
    assert "ansible-galaxy collection install --offline --collections-path /usr/share/ansible/collections " \
           "/build/collections/ringrift-cluster-*.tar.gz" in containerfile
    assert containerfile.index("requirements.yml") < containerfile.index("/build/collections/ringrift-cluster-")


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies = []


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.server.bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_audit(tmp_path, monkeypatch, host_vars=""):
    """audit.yml through ansible_runner.run, alerting to a loopback receiver: (run, artifacts, bodies, token, port)."""
    ansible_runner = pytest.importorskip("ansible_runner")
    monkeypatch.delenv("RINGRIFT_REPORT_DIR", raising=False)
    # ansible_runner.run starts ansible-playbook with this process's environment.
    for name, value in ansible_env().items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    token = "T0ken" + secrets.token_hex(12)
    port = free_port()
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts").write_text(
        "[p2p_enabled]\nlocalhost ansible_connection=local ansible_python_interpreter=%s ringrift_p2p_port=%d %s\n"
        % (sys.executable, port, host_vars))
    try:
        run = ansible_runner.run(
            private_data_dir=str(tmp_path), project_dir=REPO, playbook="playbooks/audit.yml", ident="job1",
            extravars={"fleet_alert_webhook_url": "http://127.0.0.1:%d/hook/%s" % (receiver.server_address[1], token),
                       "fleet_alert_state_file": str(tmp_path / "alert-state.json")},
            quiet=True, timeout=300)
    finally:
        receiver.shutdown()
        receiver.server_close()
    artifacts = tmp_path / "artifacts" / "job1"
    for root, _dirs, files in os.walk(str(artifacts)):
        for name in files:
            with open(os.path.join(root, name), errors="replace") as handle:
                assert token not in handle.read(), "webhook URL leaked into %s" % os.path.join(root, name)
    return run, artifacts, receiver.bodies, port


def test_ansible_runner_audit_puts_the_report_in_the_artifacts_and_alerts(tmp_path, monkeypatch):
    run, artifacts, bodies, port = run_audit(tmp_path, monkeypatch)
    stdout = (artifacts / "stdout").read_text()
    assert run.rc == 0, stdout

    reports = sorted(glob.glob(str(artifacts / "reports" / "fleet-audit-*.json")))
    assert len(reports) == 1 and glob.glob(str(artifacts / "reports" / "fleet-audit-*.md")), stdout
    report = json.loads(open(reports[0]).read())
    host = report["hosts"][0]
    assert host["name"] == "localhost" and host["port"] == port and host["alive"] is False
    if not os.path.exists("/var/log/ringrift/p2p.log"):
        assert host["diagnosis"] == "never_started"

    stats = [e for e in run.events if e.get("event") == "playbook_on_stats"]
    published = stats[0]["event_data"]["artifact_data"]["ringrift_fleet_report"]
    assert published["summary"]["total"] == 1 and published["json_path"] == reports[0]

    assert [b["event"] for b in bodies] == ["degraded"]
    assert bodies[0]["conditions"] == ["healthy_share_low"]
    assert bodies[0]["nodes_by_diagnosis"] == {host["diagnosis"]: ["localhost"]}


def test_audit_alerts_on_the_run_that_loses_quorum_and_still_fails(tmp_path, monkeypatch):
    # The quorum check fails every host; a play after it would never run.
    run, artifacts, bodies, dummy = run_audit(tmp_path, monkeypatch, "ringrift_p2p_voters='[\"localhost\"]'")
    stdout = (artifacts / "stdout").read_text()
    assert run.rc != 0 and "Voter quorum lost" in stdout, stdout
    assert [b["event"] for b in bodies] == ["degraded"]
    assert bodies[0]["conditions"] == ["quorum_lost", "healthy_share_low"]
    assert bodies[0]["quorum"]["down_voters"] == ["localhost"]


def test_awx_inventory_source_reads_the_file_named_by_the_environment(tmp_path):
    source = os.path.join(REPO, "inventory", "awx.distributed_hosts.yml")
    fleet = os.path.join(REPO, "tests", "unit", "plugins", "inventory", "fixtures", "fleet.yaml")
    env = ansible_env(RINGRIFT_DISTRIBUTED_HOSTS=fleet)
    proc = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", source, "--list"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "nebius-backbone-1" in json.loads(proc.stdout)["_meta"]["hostvars"]
    env.pop("RINGRIFT_DISTRIBUTED_HOSTS")
    proc = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", source, "--list"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "inventory/${RINGRIFT_DISTRIBUTED_HOSTS}: cannot read distributed_hosts file" in proc.stdout + proc.stderr
