# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dry_run_report callback (enabled in the repository's ansible.cfg), run for real by ansible-playbook.

Every host uses the local connection (one an unreachable SSH port on loopback); a play that would
change a file shows what the callback records in check mode, and that it records nothing otherwise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import shutil

import pytest

from ansible_collections.ringrift.cluster.tests.helpers import (
    ansible_playbook, only, write_inventory, write_play as play,
)

VOTERS = ["vast-1", "nebius-1", "vast-2"]


def host(provider, voter):
    return {"ringrift_provider": provider, "ringrift_is_voter": voter, "ringrift_p2p_voters": VOTERS,
            "ringrift_gpu_count": 8, "ringrift_gpu_model": "RTX 4090"}


COPY_TASK = {"name": "Write the marker file", "ansible.builtin.copy": {
    "content": "hello\n", "dest": "{{ marker_dir }}/marker-{{ inventory_hostname }}.txt", "mode": "0644"}}


def callback_run(tmp_path, *extra):
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    inventory = write_inventory(tmp_path / "hosts.yml", {
        "vast-1": host("vast", True),
        "nebius-1": host("nebius", True),
    })
    playbook = play(tmp_path, [COPY_TASK], name="tiny.yml")
    reports = tmp_path / "reports"
    proc = ansible_playbook(tmp_path, inventory, playbook, "-e", "marker_dir=%s" % marker_dir, *extra,
                            RINGRIFT_REPORT_DIR=str(reports))
    assert proc.returncode == 0, proc.stdout
    return proc, marker_dir, reports


def test_callback_writes_dry_run_report_in_check_mode(tmp_path):
    proc, marker_dir, reports = callback_run(tmp_path, "--check")
    assert os.listdir(str(marker_dir)) == []
    json_path = only(str(reports / "dry-run-*.json"))
    md_path = only(str(reports / "dry-run-*.md"))
    assert "Dry-run report (nothing was changed): %s and %s" % (json_path, md_path) in proc.stdout
    with open(json_path) as f:
        r = json.load(f)
    assert (r["schema_version"], r["kind"]) == (3, "dry_run")
    dry = r["dry_run"]
    assert dry["playbook"] == "tiny.yml"
    assert dry["would_change_tasks"] == 2
    assert dry["audited"] == []
    assert sorted(dry["hosts"]) == ["nebius-1", "vast-1"]
    assert dry["hosts"]["vast-1"] == [{
        "stage": "play",
        "task": "Write the marker file",
        "action": "ansible.builtin.copy",
        "why": "ansible.builtin.copy would change dest=%s/marker-vast-1.txt" % marker_dir,
    }]
    # No audit ran: no host records, no claim about health.
    assert r["hosts"] == [] and r["summary"]["total"] == 0
    with open(md_path) as f:
        md = f.read()
    assert md.startswith("# Fleet dry-run report\n")
    assert "| vast-1 | play | Write the marker file | ansible.builtin.copy would change dest=%s/marker-vast-1.txt |" \
        % marker_dir in md
    assert "LOST" not in md


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client to fail a connection")
def test_callback_records_unreachable_audit_in_check_mode(tmp_path):
    """An unreachable host of a node_audit task lands in the dry-run report as `unreachable`."""
    inventory = write_inventory(tmp_path / "hosts.yml", {
        "vast-2": dict(host("vast", True), ansible_connection="ssh", ansible_host="127.0.0.1", ansible_port=1,
                       ansible_ssh_args="-o ConnectTimeout=5"),
    })
    playbook = play(tmp_path, [{"name": "Audit", "ringrift.cluster.node_audit": {"node_id": "vast-2"},
                                "ignore_unreachable": True}], name="audit.yml")
    reports = tmp_path / "reports"
    proc = ansible_playbook(tmp_path, inventory, playbook, "--check", RINGRIFT_REPORT_DIR=str(reports))
    assert proc.returncode == 0, proc.stdout
    with open(only(str(reports / "dry-run-*.json"))) as f:
        r = json.load(f)
    assert r["dry_run"]["audited"] == ["vast-2"]
    (rec,) = r["hosts"]
    assert (rec["name"], rec["provider"], rec["diagnosis"], rec["reachable"]) == ("vast-2", "vast", "unreachable", False)
    assert "127.0.0.1" in rec["last_error"]
    q = r["quorum"]
    assert (q["healthy_voters"], q["down_voters"], q["not_audited"]) == ([], VOTERS, ["vast-1", "nebius-1"])


def test_callback_writes_nothing_without_check(tmp_path):
    dummy, marker_dir, reports = callback_run(tmp_path)
    assert sorted(os.listdir(str(marker_dir))) == ["marker-nebius-1.txt", "marker-vast-1.txt"]
    assert glob.glob(str(reports / "dry-run-*")) == []


# --------------------------------------------------------------------------- stdout stays the stdout callback's

@pytest.mark.parametrize("check", [False, True])
def test_json_stdout_callback_output_is_one_json_document(tmp_path, check):
    """Regression: profile_tasks (ansible.cfg) and the dry-run callback printed around the JSON on stdout."""
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    inventory = write_inventory(tmp_path / "hosts.yml", {"vast-1": host("vast", True)})
    playbook = play(tmp_path, [COPY_TASK], name="tiny.yml")
    reports = tmp_path / "reports"
    proc = ansible_playbook(tmp_path, inventory, playbook, "-e", "marker_dir=%s" % marker_dir,
                            *(["--check"] if check else []), RINGRIFT_REPORT_DIR=str(reports),
                            ANSIBLE_STDOUT_CALLBACK="json", split_stderr=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["stats"]["vast-1"]["changed"] == 1
    if check:
        # The report was written and said so, on stderr.
        json_path = only(str(reports / "dry-run-*.json"))
        assert "Dry-run report (nothing was changed): %s" % json_path in proc.stderr
    else:
        assert not reports.exists()
