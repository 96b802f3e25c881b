# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ringrift.cluster.p2p_contract lookup as a play uses it: templated settings, play vars, facts, bad input.

The audit resolves the contract through this lookup as a play variable; the p2p_contract role
publishes the same lookup as a fact. Both must read the host's own variables, template them,
and fail naming host and field.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import subprocess
import sys

from ansible_collections.ringrift.cluster.tests.helpers import ANSIBLE_PLAYBOOK, ansible_env

PLAY = """
- hosts: nodes
  gather_facts: false
  vars:
    p2p_contract_daemon: "{{ lookup('ringrift.cluster.p2p_contract') }}"
  tasks:
    - name: Show what the audit would read
      ansible.builtin.debug:
        msg: "CONTRACT {{ {'host': inventory_hostname, 'port': p2p_contract_daemon.port, 'node_id': p2p_contract_daemon.node_id,
                          'service_dir': p2p_contract_daemon.service_dir, 'login_user': p2p_contract_daemon.login_user,
                          'advertise_host': p2p_contract_daemon.advertise_host} | to_json }}"

- hosts: nodes
  gather_facts: false
  roles:
    - role: ringrift.cluster.p2p_contract
  tasks:
    - name: Show what the role published
      ansible.builtin.debug:
        msg: "ROLE {{ {'host': inventory_hostname, 'port': p2p_contract_daemon.port, 'service_dir': p2p_contract_daemon.service_dir,
                      'paths_expanded': p2p_contract_daemon.paths_expanded} | to_json }}"
"""


def _run(tmp_path, inventory):
    (tmp_path / "play.yml").write_text(PLAY)
    local = "ansible_connection: local\n    ansible_python_interpreter: " + sys.executable
    (tmp_path / "inventory.yml").write_text(inventory.replace("ansible_connection: local", local))
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                          env=ansible_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=180, check=False)
    return proc.returncode, proc.stdout


def _said(out, word):
    """{host: what it said} for each debug line starting with ``word`` (hosts answer in any order)."""
    said = [json.loads(line.split(word + " ", 1)[1].rstrip('"').replace('\\"', '"'))
            for line in out.splitlines() if '"msg": "%s ' % word in line]
    return dict((item.pop("host"), item) for item in said)


def test_a_play_var_lookup_reads_each_hosts_templated_settings(tmp_path):
    rc, out = _run(tmp_path, """
nodes:
  vars:
    ansible_connection: local
    base_port: 8700
  hosts:
    node-a:
      ringrift_p2p_port: "{{ base_port + 71 }}"
      ringrift_path: "~/ringrift/ai-service"
      ansible_host: 192.0.2.10
      ansible_user: ubuntu
    node-b:
      ringrift_node_id: gpu-b
""")
    assert rc == 0, out
    assert _said(out, "CONTRACT") == {
        "node-a": {"port": 8771, "node_id": "node-a", "service_dir": "~/ringrift/ai-service", "login_user": "ubuntu",
                   "advertise_host": "192.0.2.10"},
        "node-b": {"port": 8770, "node_id": "gpu-b", "service_dir": "/opt/ringrift/ai-service", "login_user": "root",
                   "advertise_host": "node-b"},
    }
    # The role gathers the login user's home and expands ~ with it.
    role = _said(out, "ROLE")["node-a"]
    assert role["port"] == 8771 and role["paths_expanded"] is True
    assert not role["service_dir"].startswith("~") and role["service_dir"].endswith("/ringrift/ai-service")


def test_bad_and_retired_settings_fail_naming_host_and_field(tmp_path):
    rc, out = _run(tmp_path, """
nodes:
  vars:
    ansible_connection: local
  hosts:
    node-a:
      ringrift_p2p_port: 99999
    node-b:
      p2p_service_port: 8771
""")
    assert rc != 0, out
    assert "node-a: invalid daemon settings, nothing written: ringrift_p2p_port" in out
    assert "node-b: invalid daemon settings, nothing written: p2p_service_port is no longer read: set ringrift_p2p_port" in out
    assert not _said(out, "CONTRACT")
