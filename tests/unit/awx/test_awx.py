# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWX/AAP: the execution environment definition and a run the way AWX runs a job.

- `ansible-builder create` (offline: it only writes the build context) on a fresh copy of the
  checkout: it fails without the collection tarball `make build` makes, and with it writes a
  context on the base image docs/awx.md names, with microdnf (ee-minimal has no dnf).
- `ansible_runner.run` with a private data directory in a temporary directory, like an AWX
  job, runs playbooks/audit.yml against localhost (ansible_connection=local, no daemon on the
  port): the report lands in the runner's artifacts, its summary in the job's artifact data
  (set_stats), and the alert reaches a webhook receiver on 127.0.0.1 without the URL showing
  up anywhere under the artifacts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import glob
import http.server
import importlib.metadata
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import threading

import pytest
import yaml

from ansible_collections.ringrift.cluster.tests.helpers import BIN, REPO, ansible_env, free_port


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def read(path):
    with open(path) as handle:
        return handle.read()


def shipped_text():
    """The text of everything the collection runs: playbooks, roles, plugins."""
    texts = []
    for top in ("playbooks", "roles", "plugins"):
        for root, _dirs, files in os.walk(os.path.join(REPO, top)):
            texts.extend(read(os.path.join(root, name)) for name in files if name.endswith((".yml", ".py", ".j2")))
    return "\n".join(texts)


def test_runtime_dependencies_are_one_list_of_collections_the_collection_uses():
    galaxy = load(os.path.join(REPO, "galaxy.yml"))["dependencies"]
    wanted = dict((c["name"], c["version"]) for c in load(os.path.join(REPO, "requirements.yml"))["collections"])
    assert galaxy == wanted
    text = shipped_text()
    # A dependency the collection never calls costs every installer a download (ansible.posix was one).
    unused = [name for name in galaxy if name + "." not in text]
    assert not unused, unused
    assert "community.docker" not in galaxy and "ansible.posix" not in galaxy
    assert load(os.path.join(REPO, "meta", "execution-environment.yml"))["dependencies"] == {"system": "bindep.txt"}


def test_the_controller_code_needs_no_python_package_beyond_ansible_core():
    """Why the EE lists no Python packages: every import in plugins/ is stdlib, Ansible or an ansible-core dependency.

    ansible-builder drops PyYAML from any requirements.txt (its base images have it), so listing it did nothing.
    """
    provided = set(sys.stdlib_module_names) | {"ansible", "ansible_collections", "__future__"}
    distributions = importlib.metadata.packages_distributions()
    core = set(re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower() for req in importlib.metadata.requires("ansible-core"))
    provided |= set(module for module, dists in distributions.items() if any(d.lower() in core for d in dists))
    imported = {}
    for root, _dirs, files in os.walk(os.path.join(REPO, "plugins")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                for node in ast.walk(ast.parse(read(path), path)):
                    if isinstance(node, ast.Import):
                        modules = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom) and not node.level:
                        modules = [node.module]
                    else:
                        continue
                    for module in modules:
                        imported.setdefault(module.split(".")[0], os.path.relpath(path, REPO))
    assert "yaml" in imported
    missing = dict((module, path) for module, path in imported.items() if module not in provided)
    assert not missing, "imported but neither stdlib nor ansible-core's: %s" % missing


def fresh_checkout(dest):
    """The tracked and untracked-but-not-ignored files of this checkout (what a clone has), in ``dest``."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for name in names:
        if name and os.path.isfile(os.path.join(REPO, name)) and not name.startswith("collections/"):
            os.makedirs(os.path.dirname(os.path.join(str(dest), name)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), os.path.join(str(dest), name))
    return dest


def ansible_builder_create(checkout):
    return subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-f", "execution-environment.yml",
                           "--context", str(checkout / "build" / "ee"), "--output-filename", "Containerfile"],
                          cwd=str(checkout), env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)


def documented_base():
    """The EE base image docs/awx.md tells AWX users to build from (the build command's EE_BASE_IMAGE)."""
    found = re.findall(r"EE_BASE_IMAGE=(\S+)", read(os.path.join(REPO, "docs", "awx.md")))
    assert found, "docs/awx.md names no EE_BASE_IMAGE"
    return found[0]


def test_ansible_builder_create_fails_without_the_tarball(tmp_path):
    checkout = fresh_checkout(tmp_path / "clone")
    assert not glob.glob(str(checkout / "build" / "dist" / "*"))
    proc = ansible_builder_create(checkout)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "build/dist/requirements.yml does not exist" in proc.stdout + proc.stderr
    assert not (checkout / "build" / "ee" / "Containerfile").exists()


def test_ansible_builder_create_with_the_tarball_names_the_documented_base_and_microdnf(tmp_path):
    checkout = fresh_checkout(tmp_path / "clone")
    dist = checkout / "build" / "dist"
    # What `make build` does before its install check: the tarball, then the EE's requirements file.
    for argv in ([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(dist), "."],
                 [sys.executable, "tools/ee-requirements.py", "build/dist"]):
        proc = subprocess.run(argv, cwd=str(checkout), env=ansible_env(), capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    tarball = glob.glob(str(dist / "ringrift-cluster-*.tar.gz"))
    assert len(tarball) == 1
    with tarfile.open(tarball[0]) as tar:
        names = set(tar.getnames())
    # What ansible-builder's introspection reads from the installed collection.
    assert {"meta/execution-environment.yml", "bindep.txt"} <= names
    assert "execution-environment.yml" not in names

    proc = ansible_builder_create(checkout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No matches" not in proc.stdout + proc.stderr
    build = checkout / "build" / "ee" / "_build"
    image_path = "/build/collections/" + os.path.basename(tarball[0])
    assert load(str(build / "requirements.yml"))["collections"] == [{"name": image_path, "type": "file"}]
    assert (build / "collections" / os.path.basename(tarball[0])).is_file()
    containerfile = (checkout / "build" / "ee" / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="%s"' % documented_base() in containerfile
    assert 'ARG PKGMGR="/usr/bin/microdnf"' in containerfile
    assert "ansible-core==2.19.14" in containerfile and "ansible-runner==2.4.3" in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    # No Python requirements of its own: the EE's pip step introspects the installed collections only.
    assert not (build / "requirements.txt").exists()


def test_the_docs_name_the_version_galaxy_yml_builds():
    version = load(os.path.join(REPO, "galaxy.yml"))["version"]
    for doc in ("README.md", "docs/awx.md", "docs/operator-first-day.md"):
        text = read(os.path.join(REPO, doc))
        named = set(re.findall(r"ringrift-ee:([0-9][^\s`]*)", text)) | set(
            re.findall(r"ringrift-cluster-([0-9][0-9.]*[0-9])\.tar\.gz", text))
        assert named <= {version}, "%s names %s, galaxy.yml builds %s" % (doc, sorted(named), version)
    assert "ringrift-ee:%s" % version in read(os.path.join(REPO, "docs", "awx.md"))


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
