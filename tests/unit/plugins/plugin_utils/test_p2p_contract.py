# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The daemon's contract: one home for node id, port, paths and the command line."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.ringrift.cluster.plugins.filter.p2p_contract import p2p_contract
from ansible_collections.ringrift.cluster.plugins.plugin_utils.p2p_contract import LEGACY, SETTINGS, ContractError, resolve

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def test_defaults_start_the_daemon_as_its_own_unit_does():
    d = resolve({"ringrift_path": "~/ringrift/ai-service"}, "vast-1", home="/root", ansible_host="198.51.100.4")
    assert d["service_dir"] == "/root/ringrift/ai-service"
    assert d["workdir"] == d["service_dir"]
    assert d["environment"]["PYTHONPATH"] == "/root/ringrift/ai-service"
    assert d["argv"] == ["/root/ringrift/ai-service/venv/bin/python", "scripts/p2p_orchestrator.py",
                         "--node-id", "vast-1", "--host", "0.0.0.0", "--port", "8770",
                         "--advertise-host", "198.51.100.4", "--ringrift-path", "/root/ringrift", "--kill-duplicates"]
    assert d["env_file"] == "/etc/ringrift/node.conf"
    assert d["fleet_file"] == "/root/ringrift/ai-service/config/distributed_hosts.yaml"
    assert d["log_file"] == "/var/log/ringrift/p2p.log" and d["service_name"] == "ringrift-p2p"
    assert d["user"] == "root" and d["port"] == 8770 and d["health_path"] == "/health"


def test_one_port_setting_reaches_every_consumer():
    d = resolve({"ringrift_p2p_port": 8771, "ringrift_p2p_peers": ["http://203.0.113.9:8771"]}, "h1", home="/root")
    assert d["port"] == 8771
    assert d["argv"][d["argv"].index("--port") + 1] == "8771"


def test_own_entries_are_dropped_from_peers_and_duplicates_merged():
    d = resolve({"ringrift_p2p_peers": ["http://h1:8770/", "http://localhost:8770", "http://203.0.113.9:8770",
                                        "http://203.0.113.9:8770/", "http://h1:9999"]}, "h1", home="/root")
    assert d["peers"] == ["http://203.0.113.9:8770", "http://h1:9999"]
    assert d["argv"][d["argv"].index("--peers") + 1] == "http://203.0.113.9:8770,http://h1:9999"


def test_home_none_leaves_tilde_paths_alone():
    d = resolve({"ringrift_path": "~/ringrift/ai-service"}, "h1")
    assert d["service_dir"] == "~/ringrift/ai-service" and d["paths_expanded"] is False


def test_git_layout_clones_the_repository_above_the_service_directory():
    d = resolve({"ringrift_path": "/home/ubuntu/ringrift/ai-service", "p2p_daemon_git_repo": "https://git.example/ringrift.git"},
                "h1", home="/home/ubuntu")
    assert d["repo_dir"] == "/home/ubuntu/ringrift"
    assert d["service_dir"] == "/home/ubuntu/ringrift/ai-service"
    root = resolve({"ringrift_path": "/srv/daemon", "p2p_daemon_git_repo": "https://git.example/d.git",
                    "p2p_daemon_git_subdir": ""}, "h1")
    assert root["repo_dir"] == "/srv/daemon"
    with pytest.raises(ContractError, match="must end with p2p_daemon_git_subdir 'ai-service'"):
        resolve({"ringrift_path": "/srv/daemon", "p2p_daemon_git_repo": "https://git.example/d.git"}, "h1")


@pytest.mark.parametrize("name, value, field", [
    ("ringrift_node_id", "vast-1\n", "ringrift_node_id"),
    ("ringrift_node_id", "-x", "ringrift_node_id"),
    ("ringrift_p2p_port", 70000, "ringrift_p2p_port"),
    ("ringrift_p2p_port", "8770\n", "ringrift_p2p_port"),
    ("ringrift_advertise_host", "-oProxyCommand=x", "ringrift_advertise_host"),
    ("ringrift_path", "/opt/a b", "ringrift_path"),
    ("ringrift_path", "relative/dir", "ringrift_path"),
    ("ringrift_p2p_extra_args", ["--ok", "bad\nExecStartPre=/bin/evil"], "ringrift_p2p_extra_args item"),
    ("ringrift_p2p_peers", ["http://h:8770\n"], "ringrift_p2p_peers item"),
    ("ringrift_p2p_script", "../../etc/passwd", "ringrift_p2p_script"),
    ("ringrift_p2p_user", "Root Admin", "ringrift_p2p_user"),
    ("p2p_daemon_git_repo", "--upload-pack=evil", "p2p_daemon_git_repo"),
    ("ringrift_p2p_start_grace", True, "ringrift_p2p_start_grace"),
])
def test_bad_values_fail_whole_naming_host_and_field(name, value, field):
    with pytest.raises(ContractError) as info:
        resolve({name: value}, "vast-7", home="/root")
    assert str(info.value).startswith("vast-7: invalid daemon settings, nothing written: ")
    assert field in str(info.value)


def test_derived_defaults_are_validated_too():
    with pytest.raises(ContractError, match="ringrift_node_id .*default: the inventory host name"):
        resolve({}, "bad name")
    with pytest.raises(ContractError, match=r"the login user \(ansible_user\)"):
        resolve({}, "h1", ansible_user="Not A User")
    with pytest.raises(ContractError, match="ringrift_p2p_user"):
        resolve({"ringrift_p2p_user": "-x"}, "h1")


def test_a_root_login_never_escalates():
    """Docker, no user, or root: nothing calls sudo (container images often have none)."""
    for kwargs in ({}, {"ansible_user": "root"}, {"login_user": "root", "ansible_user": "ubuntu"}):
        d = resolve({"ringrift_path": "~/ringrift/ai-service"}, "vast-1", home="/root", **kwargs)
        assert (d["login_user"], d["user"], d["become_root"], d["become_daemon"]) == ("root", "root", False, False), kwargs


def test_a_sudo_login_escalates_for_root_and_runs_the_daemon_as_itself():
    d = resolve({"ringrift_path": "~/ringrift/ai-service"}, "nebius-1", home="/home/ubuntu", ansible_user="ubuntu")
    assert (d["login_user"], d["user"], d["become_root"], d["become_daemon"]) == ("ubuntu", "ubuntu", True, False)
    assert d["service_dir"] == "/home/ubuntu/ringrift/ai-service"
    assert d["python"] == "/home/ubuntu/ringrift/ai-service/venv/bin/python"


def test_the_node_reported_login_user_wins_over_ansible_user():
    """ansible_facts.user_id is who Ansible really is on the node (ansible_user may be unset or mapped)."""
    d = resolve({}, "h1", ansible_user="root", login_user="ec2-user")
    assert (d["login_user"], d["user"], d["become_root"]) == ("ec2-user", "ec2-user", True)


def test_a_daemon_user_other_than_the_login_writes_its_own_files_as_itself():
    d = resolve({"ringrift_p2p_user": "ringrift"}, "h1", login_user="root")
    assert (d["user"], d["become_root"], d["become_daemon"]) == ("ringrift", False, True)
    d = resolve({"ringrift_p2p_user": "ringrift"}, "h1", login_user="ubuntu")
    assert (d["user"], d["become_root"], d["become_daemon"]) == ("ringrift", True, True)


def test_old_per_role_names_fail_naming_the_new_one():
    with pytest.raises(ContractError) as info:
        resolve({}, "h1", legacy=["p2p_service_port", "p2p_daemon_node_id", "p2p_service_restart_sec"])
    text = str(info.value)
    assert "p2p_service_port is no longer read: set ringrift_p2p_port" in text
    assert "p2p_daemon_node_id is no longer read: set ringrift_node_id" in text
    # A setting that still exists is not reported.
    assert "restart_sec" not in text


def test_every_problem_is_reported_at_once():
    with pytest.raises(ContractError) as info:
        resolve({"ringrift_p2p_port": 0, "ringrift_path": "x"}, "h1")
    assert "ringrift_p2p_port" in str(info.value) and "ringrift_path" in str(info.value)


def test_filter_wraps_errors_for_ansible():
    with pytest.raises(AnsibleFilterError, match="h1: invalid daemon settings"):
        p2p_contract({"ringrift_p2p_port": "x"}, "h1")
    assert p2p_contract({}, "h1", home="/root")["node_id"] == "h1"


def test_argument_spec_documents_every_setting_with_the_same_default():
    """The role's argument spec is the list users read; the defaults there are the resolver's."""
    with open(os.path.join(REPO, "roles", "p2p_contract", "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    assert set(SETTINGS) <= set(options)
    for name, (dummy, default, dummy2) in SETTINGS.items():
        assert options[name].get("default") == default, name


def test_no_role_still_declares_a_replaced_setting():
    for role in os.listdir(os.path.join(REPO, "roles")):
        path = os.path.join(REPO, "roles", role, "defaults", "main.yml")
        if os.path.exists(path):
            with open(path) as handle:
                declared = set((yaml.safe_load(handle) or {}).keys())
            assert not declared & set(LEGACY), (role, declared & set(LEGACY))


def test_contract_of_another_host_reads_its_host_variables():
    from ansible_collections.ringrift.cluster.plugins.filter.p2p_contract_of import p2p_contract_of
    hostvars = {"voter-2": {"ringrift_p2p_port": 8779, "ansible_host": "203.0.113.7", "ringrift_host_config": {"x": 1}}}
    other = p2p_contract_of("voter-2", hostvars)
    assert (other["port"], other["node_id"], other["advertise_host"]) == (8779, "voter-2", "203.0.113.7")
    with pytest.raises(AnsibleFilterError, match="not in the inventory"):
        p2p_contract_of("voter-9", hostvars)


def test_resolve_vars_reads_a_hosts_settings_facts_and_retired_names():
    from ansible_collections.ringrift.cluster.plugins.plugin_utils.p2p_contract import resolve_vars
    variables = {"ringrift_p2p_port": 8779, "ringrift_path": "~/ringrift/ai-service", "ansible_host": "203.0.113.7",
                 "ansible_user": "ubuntu", "ansible_facts": {"user_id": "ops", "user_dir": "/home/ops"},
                 "ringrift_gpu_count": 8, "unrelated": "x"}
    unexpanded = resolve_vars(variables, "h1")
    assert (unexpanded["port"], unexpanded["advertise_host"], unexpanded["login_user"]) == (8779, "203.0.113.7", "ops")
    assert (unexpanded["service_dir"], unexpanded["paths_expanded"]) == ("~/ringrift/ai-service", False)
    expanded = resolve_vars(variables, "h1", expand_home=True)
    assert (expanded["service_dir"], expanded["paths_expanded"]) == ("/home/ops/ringrift/ai-service", True)
    # Without the fact, ~ stays as it is rather than guessed.
    without_facts = dict(variables, ansible_facts={})
    assert resolve_vars(without_facts, "h1", expand_home=True)["service_dir"] == "~/ringrift/ai-service"
    assert resolve_vars(without_facts, "h1")["login_user"] == "ubuntu"
    seen = []
    resolve_vars(variables, "h1", template=lambda value: seen.append(value) or value)
    assert 8779 in seen and "x" not in seen
    with pytest.raises(ContractError, match="p2p_service_port is no longer read: set ringrift_p2p_port"):
        resolve_vars(dict(variables, p2p_service_port=1), "h1")
