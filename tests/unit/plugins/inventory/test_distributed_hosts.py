# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the ringrift.cluster.distributed_hosts inventory plugin.

The plugin is driven through its real entry points (verify_file + parse with a real
InventoryData and DataLoader), and through ansible-inventory as a subprocess.
Every address in the fixtures is a documentation-only placeholder; nothing is contacted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
FLEET_SOURCE = os.path.join(FIXTURES, 'fleet.distributed_hosts.yml')
FLEET_DATA = os.path.join(FIXTURES, 'fleet.yaml')
SHARED_EXAMPLE = os.path.join(os.path.dirname(REPO), 'shared', 'fixtures', 'distributed_hosts.example.yaml')
ANSIBLE_INVENTORY = os.path.join(os.path.dirname(sys.executable), 'ansible-inventory')

from ansible.errors import AnsibleError, AnsibleParserError  # noqa: E402
from ansible.inventory.data import InventoryData  # noqa: E402
from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.plugins.loader import inventory_loader  # noqa: E402

from ansible_collections.ringrift.cluster.plugins.plugin_utils import distributed_hosts as dh  # noqa: E402
from ansible_collections.ringrift.cluster.tests.helpers import ansible_env  # noqa: E402

PLUGIN = 'ringrift.cluster.distributed_hosts'


class Recorder(object):
    """Stands in for the plugin's Display: records warnings, swallows the rest."""

    def __init__(self):
        self.warnings = []

    def warning(self, msg, *args, **kwargs):
        self.warnings.append(msg)

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def load_plugin():
    """The plugin as Ansible's plugin loader loads it, with its option definitions.

    By FQCN when Ansible's collection finder is installed (as in the CLI); under plain
    pytest ``ansible_collections`` is importable through sys.path only (tests/unit/conftest.py)
    and installing the finder afterwards would break other test modules, so the loader
    then finds the plugin in its directory - the same class and options either way.
    The CLI path by FQCN is covered by the ansible-inventory tests below.
    """
    plugin = None
    if any(type(finder).__name__ == '_AnsibleCollectionFinder' for finder in sys.meta_path):
        plugin = inventory_loader.get(PLUGIN)
    if plugin is None:
        inventory_loader.add_directory(os.path.join(REPO, 'plugins', 'inventory'))
        plugin = inventory_loader.get('distributed_hosts')
        assert plugin is not None, 'cannot load the inventory plugin'
        plugin._redirected_names.append(PLUGIN)  # sources name it by FQCN  pylint: disable=protected-access
    plugin.display = Recorder()
    return plugin


def plugin_module(plugin):
    return sys.modules[type(plugin).__module__]


def parse(source, cache=True, inventory=None, loader=None):
    plugin = load_plugin()
    inventory = inventory if inventory is not None else InventoryData()
    assert plugin.verify_file(source)
    plugin.parse(inventory, loader or DataLoader(), source, cache=cache)
    return inventory, plugin


def write_source(tmp_path, data_text=None, name='test.distributed_hosts.yml', data_name='hosts.yaml', **options):
    """Write a data file (if data_text is given) and a source pointing at it; return the source path."""
    if data_text is not None:
        (tmp_path / data_name).write_text(textwrap.dedent(data_text))
    config = {'plugin': PLUGIN, 'path': options.pop('path', data_name)}
    config.update(options)
    source = tmp_path / name
    source.write_text(yaml.safe_dump(config))
    return str(source)


def hostvars(inventory, name):
    return inventory.get_host(name).get_vars()


def members(inventory, group):
    return sorted(h.name for h in inventory.groups[group].get_hosts())


@pytest.fixture(scope='module')
def fleet():
    inventory, plugin = parse(FLEET_SOURCE)
    return inventory, plugin.display.warnings


MINIMAL = '''
    p2p_voters: [node-a]
    hosts:
      node-a:
        ssh_host: 192.0.2.10
        status: ready
      node-b:
        ssh_host: 192.0.2.11
        status: ready
'''


# --------------------------------------------------------------------------- verify_file

@pytest.mark.parametrize('name, accepted', [
    ('cluster.distributed_hosts.yml', True),
    ('distributed_hosts.yaml', True),
    ('x-distributed_hosts.yaml', True),
    ('hosts.yml', False),
    ('distributed_hosts.json', False),
    ('distributed_hosts.yml.bak', False),
])
def test_verify_file_by_name(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text('plugin: %s\n' % PLUGIN)
    assert load_plugin().verify_file(str(path)) is accepted


def test_verify_file_missing(tmp_path):
    assert not load_plugin().verify_file(str(tmp_path / 'absent.distributed_hosts.yml'))


# --------------------------------------------------------------------------- groups

ACTIVE = sorted([
    'mac-studio', 'local-mac', 'tunnel-box', 'vast-29129529', 'vast-voter-1', 'vast-vm-1', 'runpod-h100', 'vultr-a100-20gb',
    'nebius-backbone-1', 'nebius-h100-2', 'nebius-amd-1', 'aws-proxy', 'hetzner-cpu1', 'lambda-gpu-1',
])


def test_default_statuses_leave_out_inactive_hosts(fleet):
    inventory, dummy = fleet
    assert sorted(inventory.hosts) == ACTIVE
    for inactive in ('hetzner-old', 'vultr-gone', 'runpod-off', 'aws-archived'):
        assert inactive not in inventory.hosts


@pytest.mark.parametrize('group, expected', [
    ('vast', ['vast-29129529', 'vast-vm-1', 'vast-voter-1']),
    ('runpod', ['runpod-h100']),
    ('vultr', ['vultr-a100-20gb']),
    ('nebius', ['nebius-amd-1', 'nebius-backbone-1', 'nebius-h100-2']),
    ('hetzner', ['hetzner-cpu1', 'tunnel-box']),
    ('aws', ['aws-proxy']),
    ('local', ['local-mac', 'mac-studio']),
    ('unknown_provider', ['lambda-gpu-1']),
    ('containerized', ['runpod-h100', 'vast-29129529', 'vast-voter-1']),
    ('p2p_voters', ['hetzner-cpu1', 'nebius-backbone-1', 'vast-voter-1', 'vultr-a100-20gb']),
    ('p2p_enabled', ['hetzner-cpu1', 'mac-studio', 'nebius-backbone-1', 'runpod-h100', 'vast-29129529', 'vast-voter-1', 'vultr-a100-20gb']),
    ('gpu', ['nebius-backbone-1', 'nebius-h100-2', 'runpod-h100', 'vast-29129529', 'vast-vm-1', 'vast-voter-1', 'vultr-a100-20gb']),
    ('cpu_only', ['aws-proxy', 'hetzner-cpu1', 'local-mac', 'tunnel-box']),
    ('role_coordinator', ['local-mac', 'mac-studio']),
    ('role_nn_training_primary', ['vast-voter-1']),
    ('role_gpu_selfplay', ['nebius-amd-1', 'runpod-h100', 'vultr-a100-20gb']),
    ('status_ready', ['aws-proxy', 'hetzner-cpu1', 'lambda-gpu-1', 'local-mac', 'mac-studio', 'nebius-amd-1', 'nebius-backbone-1',
                      'runpod-h100', 'vast-29129529', 'vast-voter-1', 'vultr-a100-20gb']),
    ('status_pending_setup', ['nebius-h100-2']),
    ('status_needs_setup', ['tunnel-box']),
    ('status_proxy_only', ['vast-vm-1']),
])
def test_groups(fleet, group, expected):
    inventory, dummy = fleet
    assert members(inventory, group) == expected


def test_vm_or_metal_is_the_complement_of_containerized(fleet):
    inventory, dummy = fleet
    assert sorted(members(inventory, 'vm_or_metal') + members(inventory, 'containerized')) == ACTIVE
    assert not set(members(inventory, 'vm_or_metal')) & set(members(inventory, 'containerized'))


def test_other_accelerators_and_unknown_gpus_are_in_neither_gpu_group(fleet):
    inventory, dummy = fleet
    for name in ('mac-studio', 'nebius-amd-1', 'lambda-gpu-1'):
        assert name not in members(inventory, 'gpu')
        assert name not in members(inventory, 'cpu_only')


def test_fixed_groups_exist_even_when_empty(tmp_path):
    inventory, dummy = parse(write_source(tmp_path, MINIMAL, provider_prefixes={'node': 'hetzner'}))
    for group in ('vast', 'runpod', 'vultr', 'nebius', 'hetzner', 'aws', 'local', 'gpu', 'cpu_only', 'containerized', 'vm_or_metal',
                  'p2p_voters', 'p2p_enabled'):
        assert group in inventory.groups
    assert 'unknown_provider' not in inventory.groups
    assert members(inventory, 'hetzner') == ['node-a', 'node-b']


def test_warnings(fleet):
    dummy, warnings = fleet
    text = '\n'.join(warnings)
    assert 'p2p_voter' in text and 'vast-29129529' in text
    assert 'unknown_provider' in text and 'lambda-gpu-1' in text
    assert 'advertise' in text and 'vast-voter-1' in text
    assert [w for w in warnings if '"gpu" value is not recognised' in w] == [
        '%s: "gpu" value is not recognised as an NVIDIA or other known accelerator; host is in neither "gpu" nor "cpu_only" '
        '(extend nvidia_gpu_patterns if it is NVIDIA) (host: lambda-gpu-1)' % FLEET_DATA]
    assert all(FLEET_DATA in w for w in warnings)


# --------------------------------------------------------------------------- host variables

def test_connection_vars(fleet):
    inventory, dummy = fleet
    v = hostvars(inventory, 'vast-29129529')
    assert v['ansible_host'] == 'ssh6.vast.example'
    assert v['ansible_port'] == 19528
    assert v['ansible_user'] == 'root'
    assert v['ansible_ssh_private_key_file'] == '~/.ssh/id_cluster'
    assert 'ansible_connection' not in v
    assert v['ansible_ssh_common_args'] == '-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=~/.ssh/ringrift_known_hosts'
    v = hostvars(inventory, 'nebius-backbone-1')
    assert v['ansible_port'] == 22  # default


def test_local_connection_only_for_local_loopback_on_port_22(fleet):
    inventory, dummy = fleet
    assert hostvars(inventory, 'local-mac')['ansible_connection'] == 'local'
    assert 'ansible_ssh_private_key_file' not in hostvars(inventory, 'local-mac')
    tunnel = hostvars(inventory, 'tunnel-box')  # loopback on port 2222: an SSH tunnel
    assert 'ansible_connection' not in tunnel
    assert tunnel['ansible_port'] == 2222
    assert 'ansible_connection' not in hostvars(inventory, 'mac-studio')  # coordinator, but a real address


def test_ssh_proxy_gives_proxy_command(fleet):
    inventory, dummy = fleet
    v = hostvars(inventory, 'nebius-h100-2')
    assert v['ansible_ssh_common_args'] == PROXY_VIA_BACKBONE
    assert v['ringrift_ssh_proxy'] == 'nebius-backbone-1'
    assert v['ansible_host'] == '192.0.2.8'
    # What Ansible's ssh connection does with it: shlex-split into ssh arguments; the host key options
    # first (OpenSSH keeps the first value of an option), the jump's ssh with the same ones.
    assert shlex.split(v['ansible_ssh_common_args']) == [
        '-o', 'StrictHostKeyChecking=accept-new', '-o', 'UserKnownHostsFile=~/.ssh/ringrift_known_hosts',
        '-o', "ProxyCommand=ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new "
              "-o UserKnownHostsFile=~/.ssh/ringrift_known_hosts -W '[%h]:%p' -p 22 -i ~/.ssh/id_cluster ubuntu@203.0.113.47"]


def test_proxy_command_quoting():
    args = dh.proxy_command_args('203.0.113.5', 2200, "o'neil", '/keys/my key%1')
    option, value = shlex.split(args)
    assert option == '-o' and value.startswith('ProxyCommand=')
    words = shlex.split(value[len('ProxyCommand='):])  # what the shell does after ssh expands %-tokens
    assert words == ['ssh', '-o', 'BatchMode=yes', '-W', '[%h]:%p', '-p', '2200', '-i', '/keys/my key%%1', "o'neil@203.0.113.5"]
    assert dh.proxy_command_args('198.51.100.1', 22) == '-o ProxyCommand="ssh -o BatchMode=yes -W \'[%h]:%p\' -p 22 198.51.100.1"'
    tilde = shlex.split(shlex.split(dh.proxy_command_args('198.51.100.1', 22, 'u', '~/my keys/k'))[1][len('ProxyCommand='):])
    assert tilde[8] == '~/my keys/k'


def test_derived_vars_of_a_voter(fleet):
    inventory, dummy = fleet
    v = hostvars(inventory, 'nebius-backbone-1')
    assert v['ringrift_provider'] == 'nebius'
    assert v['ringrift_containerized'] is False
    assert v['ringrift_path'] == '~/ringrift/ai-service'
    assert v['ringrift_venv_path'] == '~/ringrift/ai-service/venv'
    assert v['ringrift_gpu_count'] == 1
    assert v['ringrift_gpu_model'] == 'L40S'
    assert v['ringrift_gpu_vram_gb'] == 48
    assert v['ringrift_nvidia_gpu'] is True
    assert v['ringrift_is_voter'] is True
    assert v['ringrift_p2p_voters'] == ['nebius-backbone-1', 'hetzner-cpu1', 'vultr-a100-20gb', 'vast-voter-1']
    assert v['ringrift_p2p_enabled'] is True
    assert v['ringrift_p2p_port'] == 8770
    assert v['ringrift_advertise_host'] == 'backbone.example'  # p2p_public_host wins over ssh_host
    # Every voter but itself, in list order; vast-voter-1 has no advertise host.
    assert v['ringrift_p2p_peers'] == ['http://198.51.100.150:8770', 'http://203.0.113.164:8771']
    assert v['ringrift_role'] == 'backbone'
    assert v['ringrift_status'] == 'ready'
    assert v['ringrift_ssh_proxy'] is None


def test_derived_vars_of_a_container_gpu_host(fleet):
    inventory, dummy = fleet
    v = hostvars(inventory, 'vast-29129529')
    assert v['ringrift_provider'] == 'vast'
    assert v['ringrift_containerized'] is True
    assert (v['ringrift_gpu_count'], v['ringrift_gpu_model'], v['ringrift_nvidia_gpu']) == (8, 'RTX 4090', True)
    assert v['ringrift_gpu_vram_gb'] == 192
    assert v['ringrift_is_voter'] is False  # per-host p2p_voter: true is ignored
    assert v['ringrift_advertise_host'] is None  # ssh6.vast.example is a shared gateway
    assert v['ringrift_p2p_peers'] == [
        'http://backbone.example:8770', 'http://198.51.100.150:8770', 'http://203.0.113.164:8771']


def test_derived_vars_misc(fleet):
    inventory, dummy = fleet
    v = hostvars(inventory, 'vast-voter-1')
    assert v['ringrift_venv_path'] is None  # venv_activate: ":"
    assert v['ringrift_is_voter'] is True
    assert (v['ringrift_gpu_count'], v['ringrift_gpu_model']) == (2, 'RTX 5090')
    assert v['ringrift_role'] == 'nn-training/primary'  # raw; only the group name is sanitized
    v = hostvars(inventory, 'vast-vm-1')
    assert v['ringrift_containerized'] is False  # is_container: false wins over provider vast
    assert v['ringrift_gpu_vram_gb'] is None
    assert v['ringrift_path'] is None and v['ringrift_venv_path'] is None
    v = hostvars(inventory, 'nebius-h100-2')
    assert (v['ringrift_gpu_count'], v['ringrift_gpu_model']) == (1, 'H100 SXM')
    assert v['ringrift_p2p_enabled'] is False  # no key
    v = hostvars(inventory, 'runpod-h100')
    assert v['ringrift_advertise_host'] == '192.0.2.165'  # public_ip
    v = hostvars(inventory, 'vultr-a100-20gb')
    assert v['ringrift_p2p_port'] == 8771 and v['ringrift_nvidia_gpu'] is True
    assert v['ringrift_advertise_host'] == '203.0.113.164'  # ssh_host
    v = hostvars(inventory, 'mac-studio')
    assert (v['ringrift_gpu_count'], v['ringrift_gpu_model'], v['ringrift_nvidia_gpu']) == (1, 'M3 Max/Ultra (MPS)', False)
    assert v['ringrift_provider'] == 'local'
    assert v['ringrift_advertise_host'] == '198.51.100.7'  # tailscale_ip only with prefer_tailscale
    v = hostvars(inventory, 'local-mac')
    assert (v['ringrift_gpu_count'], v['ringrift_gpu_model'], v['ringrift_nvidia_gpu']) == (0, None, False)
    assert v['ringrift_advertise_host'] is None  # localhost
    assert hostvars(inventory, 'tunnel-box')['ringrift_provider'] == 'hetzner'  # explicit provider key
    assert hostvars(inventory, 'lambda-gpu-1')['ringrift_provider'] == 'unknown'
    assert hostvars(inventory, 'nebius-amd-1')['ringrift_gpu_count'] == 8


def test_host_config_keeps_every_raw_key(fleet):
    inventory, dummy = fleet
    with open(FLEET_DATA) as handle:
        raw = yaml.load(handle, Loader=yaml.BaseLoader)['hosts']  # BaseLoader: every scalar a string
    for name in ACTIVE:
        config = hostvars(inventory, name)['ringrift_host_config']
        assert sorted(config) == sorted(raw[name]), name
    runpod = hostvars(inventory, 'runpod-h100')['ringrift_host_config']
    assert runpod['api_token'] == 'not-a-real-token'  # secrets stay (playbooks must not print them)
    assert runpod['ssh_port'] == 30755
    hetzner = hostvars(inventory, 'hetzner-cpu1')['ringrift_host_config']
    assert hetzner['last_seen'] == '2025-12-01'  # YAML dates stay strings
    assert hetzner['custom_unknown_key'] == {'nested': [1, 2]}
    assert hostvars(inventory, 'vast-29129529')['ringrift_host_config']['vast_instance_id'] == '29129529'


# --------------------------------------------------------------------------- options

def test_include_statuses(tmp_path):
    inventory, dummy = parse(write_source(tmp_path, path=FLEET_DATA, include_statuses=['offline', 'retired']))
    assert sorted(inventory.hosts) == ['hetzner-old', 'runpod-off']
    assert members(inventory, 'status_offline') == ['runpod-off']


def test_exclude_statuses_empty_gives_every_host(tmp_path):
    inventory, dummy = parse(write_source(tmp_path, path=FLEET_DATA, exclude_statuses=[]))
    assert sorted(inventory.hosts) == sorted(ACTIVE + ['hetzner-old', 'vultr-gone', 'runpod-off', 'aws-archived'])
    assert members(inventory, 'status_terminated') == ['vultr-gone']
    assert members(inventory, 'status_archived') == ['aws-archived']


def test_exclude_statuses_custom(tmp_path):
    inventory, dummy = parse(write_source(tmp_path, path=FLEET_DATA, exclude_statuses=['ready', 'pending_setup']))
    assert sorted(inventory.hosts) == sorted(['tunnel-box', 'vast-vm-1', 'hetzner-old', 'vultr-gone', 'runpod-off', 'aws-archived'])


def test_no_warnings_about_hosts_left_out_by_status(tmp_path):
    text = MINIMAL + """
      mystery-old: {ssh_host: 192.0.2.12, status: retired, p2p_voter: true, gpu: Mystery 1}
    """
    inventory, plugin = parse(write_source(tmp_path, text, provider_prefixes={'node': 'aws'}))
    assert 'mystery-old' not in inventory.hosts
    assert not [w for w in plugin.display.warnings if 'mystery-old' in w]


def test_filtered_out_voter_stays_a_peer(tmp_path):
    text = MINIMAL.replace('ssh_host: 192.0.2.10\n        status: ready', 'ssh_host: 192.0.2.10\n        status: offline')
    inventory, plugin = parse(write_source(tmp_path, text, provider_prefixes={'node': 'hetzner'}))
    assert sorted(inventory.hosts) == ['node-b']
    assert hostvars(inventory, 'node-b')['ringrift_p2p_peers'] == ['http://192.0.2.10:8770']
    assert any('inactive status' in w and 'node-a' in w for w in plugin.display.warnings)


def test_prefer_tailscale(tmp_path):
    inventory, dummy = parse(write_source(tmp_path, path=FLEET_DATA, prefer_tailscale=True))
    assert hostvars(inventory, 'mac-studio')['ringrift_advertise_host'] == '198.51.100.77'
    assert hostvars(inventory, 'nebius-backbone-1')['ringrift_advertise_host'] == 'backbone.example'  # has no tailscale_ip


def test_provider_prefixes_and_container_providers(tmp_path):
    source = write_source(tmp_path, path=FLEET_DATA, provider_prefixes={'lambda': 'lambda', 'vast': ''},
                          container_providers=['lambda'])
    inventory, plugin = parse(source)
    assert members(inventory, 'lambda') == ['lambda-gpu-1']
    assert hostvars(inventory, 'lambda-gpu-1')['ringrift_provider'] == 'lambda'
    assert members(inventory, 'containerized') == ['lambda-gpu-1']
    assert members(inventory, 'unknown_provider') == ['vast-29129529', 'vast-vm-1', 'vast-voter-1']
    assert members(inventory, 'vast') == []


def test_prefix_needs_a_boundary(tmp_path):
    text = '''
        hosts:
          awsome-box: {ssh_host: 192.0.2.20, status: ready}
          aws1: {ssh_host: 192.0.2.21, status: ready}
          AWS-upper: {ssh_host: 192.0.2.22, status: ready}
    '''
    inventory, dummy = parse(write_source(tmp_path, text))
    assert members(inventory, 'aws') == ['AWS-upper', 'aws1']
    assert members(inventory, 'unknown_provider') == ['awsome-box']


def test_nvidia_gpu_patterns(tmp_path):
    inventory, plugin = parse(write_source(tmp_path, path=FLEET_DATA, nvidia_gpu_patterns=['^Mystery']))
    assert 'lambda-gpu-1' in members(inventory, 'gpu')
    assert not any('not recognised' in w for w in plugin.display.warnings)


def test_ssh_gateway_patterns(tmp_path):
    inventory, dummy = parse(write_source(tmp_path, path=FLEET_DATA, ssh_gateway_patterns=[r'^203\.0\.113\.']))
    assert hostvars(inventory, 'vast-29129529')['ringrift_advertise_host'] == 'ssh6.vast.example'
    assert hostvars(inventory, 'vultr-a100-20gb')['ringrift_advertise_host'] is None


def test_absolute_and_expanded_paths(tmp_path, monkeypatch):
    inventory, dummy = parse(write_source(tmp_path, path=FLEET_DATA))
    assert sorted(inventory.hosts) == ACTIVE
    monkeypatch.setenv('RINGRIFT_TEST_FIXTURES', FIXTURES)
    inventory, dummy = parse(write_source(tmp_path, path='${RINGRIFT_TEST_FIXTURES}/fleet.yaml'))
    assert sorted(inventory.hosts) == ACTIVE


def test_vault_encrypted_data_file(tmp_path):
    from ansible.parsing.vault import VaultLib, VaultSecret  # pylint: disable=import-outside-toplevel
    secrets = [('default', VaultSecret(b'not-a-real-vault-password'))]
    (tmp_path / 'hosts.yaml').write_bytes(VaultLib(secrets).encrypt(textwrap.dedent(MINIMAL).encode()))
    loader = DataLoader()
    loader.set_vault_secrets(secrets)
    inventory, dummy = parse(write_source(tmp_path, provider_prefixes={'node': 'aws'}), loader=loader)
    assert sorted(inventory.hosts) == ['node-a', 'node-b']


# --------------------------------------------------------------------------- bad input

def parse_error(source):
    with pytest.raises(AnsibleParserError) as info:
        parse(source)
    return str(info.value)


def test_missing_file(tmp_path):
    message = parse_error(write_source(tmp_path, path='absent.yaml'))
    assert str(tmp_path / 'absent.yaml') in message
    assert 'cannot read' in message and 'config/README.md' in message


def test_data_file_given_as_source(tmp_path):
    data = tmp_path / 'distributed_hosts.yaml'
    data.write_text(textwrap.dedent(MINIMAL))
    plugin = load_plugin()
    assert plugin.verify_file(str(data))  # the name matches ...
    with pytest.raises(AnsibleParserError) as info:  # ... but it is data, not a source: say so
        plugin.parse(InventoryData(), DataLoader(), str(data))
    assert 'is a distributed_hosts data file, not an inventory source' in str(info.value)


def test_unreadable_file(tmp_path):
    (tmp_path / 'dir.yaml').mkdir()  # a directory: unreadable as a file, even as root
    message = parse_error(write_source(tmp_path, path='dir.yaml'))
    assert str(tmp_path / 'dir.yaml') in message and 'cannot read' in message


def test_yaml_syntax_error_names_the_line(tmp_path):
    source = write_source(tmp_path, '''
        hosts:
          node-a:
            ssh_host: 192.0.2.10
            status: [ready
          node-b: {}
    ''')
    message = parse_error(source)
    assert str(tmp_path / 'hosts.yaml') in message
    assert 'YAML syntax error at line' in message


@pytest.mark.parametrize('text, expected', [
    ('', 'empty'),
    ('- a\n- b\n', 'top level must be a mapping'),
    ('p2p_voters: []\n', 'no "hosts" section'),
    ('hosts: [a, b]\n', '"hosts" (line 1) must be a mapping'),
    ('hosts:\n', '"hosts" (line 1) must be a mapping of host name to host entry, found nothing (null)'),
    ('hosts: {}\np2p_voters: node-a\n', '"p2p_voters" must be a list'),
    ('hosts: {}\nhosts: {}\n', 'appears more than once (lines 1, 2)'),
])
def test_file_level_errors(tmp_path, text, expected):
    (tmp_path / 'hosts.yaml').write_text(text)
    for strict in (True, False):
        message = parse_error(write_source(tmp_path, strict=strict))
        assert str(tmp_path / 'hosts.yaml') in message
        assert expected in message


NAME_RULE = "must be a name of letters, digits, '.', '_' and '-' not starting with '.' or '-'"
HOST_RULE = "must be a host name or IP address (no spaces, not starting with '-')"
PATH_RULE = 'must be an absolute path or ~/..., without spaces, quotes, % or $'


def shown(name):
    """How messages name a host: quoted, or as repr when it holds a newline or a quote."""
    return "'%s'" % name if name.isprintable() and "'" not in name else repr(name)


HOST_ERRORS = [
    # (entry text for host "bad-host" or a whole hosts item, host, field, message part)
    ('  bad-host: just a string\n', 'bad-host', "field 'entry'", 'must be a mapping'),
    ('  bad-host:\n', 'bad-host', "field 'entry'", 'must be a mapping'),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_port: "22"}\n', 'bad-host', "field 'ssh_port'", 'integer port in 1..65535'),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_port: 0}\n', 'bad-host', "field 'ssh_port'", 'integer port in 1..65535'),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_port: 70000}\n', 'bad-host', "field 'ssh_port'", 'integer port'),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_port: true}\n', 'bad-host', "field 'ssh_port'", 'integer port'),
    ('  bad-host: {ssh_host: 192.0.2.40, p2p_port: 8770.5}\n', 'bad-host', "field 'p2p_port'", 'integer port'),
    ('  bad-host: {ssh_host: 192.0.2.40, p2p_port: 65536}\n', 'bad-host', "field 'p2p_port'", 'integer port'),
    ('  "bad host": {ssh_host: 192.0.2.40}\n', 'bad host', "field 'name'", NAME_RULE),
    ('  "gpu/1": {ssh_host: 192.0.2.40}\n', 'gpu/1', "field 'name'", NAME_RULE),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_proxy: nowhere}\n', 'bad-host', "field 'ssh_proxy'", '"nowhere" is not a host'),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_proxy: bad-host}\n', 'bad-host', "field 'ssh_proxy'", 'its own proxy'),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_proxy: node-c}\n  node-c: {ssh_host: 192.0.2.41, ssh_proxy: node-a}\n',
     'bad-host', "field 'ssh_proxy'", 'chained proxies'),
    ('  bad-host: {ssh_host: 192.0.2.40, p2p_enabled: "yes please"}\n', 'bad-host', "field 'p2p_enabled'", 'true or false'),
    ('  bad-host: {ssh_host: [192.0.2.40]}\n', 'bad-host', "field 'ssh_host'", 'must be a string'),
    ('  bad-host: {ssh_host: 192.0.2.40, gpu_vram_gb: lots}\n', 'bad-host', "field 'gpu_vram_gb'", 'number'),
    ('  bad-host: {ssh_host: 192.0.2.40, gpu: [A100]}\n', 'bad-host', "field 'gpu'", 'must be a string'),
    # Whole-value checks (plugins/module_utils/validate.py): never a prefix, never a trailing newline.
    ('  "bad-host\\n": {ssh_host: 192.0.2.40}\n', 'bad-host\n', "field 'name'", NAME_RULE),
    ('  ".": {ssh_host: 192.0.2.40}\n', '.', "field 'name'", NAME_RULE),
    ('  "..": {ssh_host: 192.0.2.40}\n', '..', "field 'name'", NAME_RULE),
    ('  "-x": {ssh_host: 192.0.2.40}\n', '-x', "field 'name'", NAME_RULE),
    ('  "--help": {ssh_host: 192.0.2.40}\n', '--help', "field 'name'", NAME_RULE),
    ('  bad-host: {ssh_host: "-oProxyCommand=touch /tmp/x"}\n', 'bad-host', "field 'ssh_host'", HOST_RULE),
    ('  bad-host: {ssh_host: "192.0.2.40\\n"}\n', 'bad-host', "field 'ssh_host'", HOST_RULE),
    ('  bad-host: {ssh_host: 192.0.2.40, public_ip: "-oProxyCommand=x"}\n', 'bad-host', "field 'public_ip'", HOST_RULE),
    ('  bad-host: {ssh_host: 192.0.2.40, p2p_public_host: "--help"}\n', 'bad-host', "field 'p2p_public_host'", HOST_RULE),
    ('  bad-host: {ssh_host: 192.0.2.40, tailscale_ip: "198.51.100.1 -x"}\n', 'bad-host', "field 'tailscale_ip'", HOST_RULE),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_user: "-oProxyCommand=x"}\n', 'bad-host', "field 'ssh_user'", 'must be a login name'),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_user: "root\\n"}\n', 'bad-host', "field 'ssh_user'", 'must be a login name'),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_key: "-i"}\n', 'bad-host', "field 'ssh_key'", PATH_RULE),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_key: "~/my key"}\n', 'bad-host', "field 'ssh_key'", PATH_RULE),
    ('  bad-host: {ssh_host: 192.0.2.40, ringrift_path: ringrift/ai-service}\n', 'bad-host', "field 'ringrift_path'", PATH_RULE),
    ('  bad-host: {ssh_host: 192.0.2.40, venv_activate: \'source "/opt/my venv/bin/activate"\'}\n', 'bad-host',
     "field 'venv_activate'", "the venv path '/opt/my venv' must be an absolute path"),
    ('  bad-host: {ssh_host: 192.0.2.40, ssh_proxy: "node-a\\n"}\n', 'bad-host', "field 'ssh_proxy'", NAME_RULE),
    # Keys YAML reads as something other than text, reported before they are coerced.
    ('  010: {ssh_host: 192.0.2.40}\n', '010', "field 'name'", 'host name 010 is read by YAML as int (8)'),
    ('  1:30: {ssh_host: 192.0.2.40}\n', '1:30', "field 'name'", 'host name 1:30 is read by YAML as int (90)'),
    ('  bad-host: {ssh_host: 192.0.2.40, on: true}\n', 'bad-host', "field 'on'", 'key on is read by YAML as a boolean (True)'),
]


def _hosts_text(extra):
    return 'p2p_voters: [node-a]\nhosts:\n  node-a: {ssh_host: 192.0.2.10, status: ready}\n' + extra + \
        '  node-b: {ssh_host: 192.0.2.11, status: ready}\n'


@pytest.mark.parametrize('extra, host, field, part', HOST_ERRORS)
def test_host_level_errors_strict(tmp_path, extra, host, field, part):
    (tmp_path / 'hosts.yaml').write_text(_hosts_text(extra))
    inventory = InventoryData()
    with pytest.raises(AnsibleParserError) as info:
        parse(write_source(tmp_path, strict=True, provider_prefixes={'node': 'aws', 'bad': 'aws', 'gpu': 'aws'}), inventory=inventory)
    message = str(info.value)
    assert '%s:4' % (tmp_path / 'hosts.yaml') in message  # file and line of the host
    assert 'host %s' % shown(host) in message
    assert field in message
    assert part in message
    assert 'nothing was added' in message
    assert not inventory.hosts  # nothing half-applied


@pytest.mark.parametrize('extra, host, field, part', HOST_ERRORS)
def test_host_level_errors_not_strict_drop_only_that_host(tmp_path, extra, host, field, part):
    (tmp_path / 'hosts.yaml').write_text(_hosts_text(extra))
    inventory, plugin = parse(write_source(tmp_path, strict=False, provider_prefixes={'node': 'aws', 'bad': 'aws', 'gpu': 'aws'}))
    assert host not in inventory.hosts
    assert sorted(inventory.hosts) == ['node-a', 'node-b'] + (['node-c'] if 'node-c' in extra else [])
    warning = [w for w in plugin.display.warnings if 'host %s' % shown(host) in w]
    assert warning and field in warning[0] and part in warning[0] and 'host dropped' in warning[0]
    assert str(tmp_path / 'hosts.yaml') in warning[0]


def test_duplicate_host_reports_both_lines(tmp_path):
    (tmp_path / 'hosts.yaml').write_text(
        'hosts:\n'
        '  node-a:\n'
        '    ssh_host: 192.0.2.10\n'
        '  node-b:\n'
        '    ssh_host: 192.0.2.11\n'
        '  node-a:\n'
        '    ssh_host: 192.0.2.12\n')
    message = parse_error(write_source(tmp_path, strict=True))
    assert "host 'node-a'" in message and "field 'name'" in message
    assert 'lines 2, 6' in message and str(tmp_path / 'hosts.yaml') in message
    inventory, plugin = parse(write_source(tmp_path, strict=False))
    assert sorted(inventory.hosts) == ['node-b']


def test_duplicate_field_in_an_entry(tmp_path):
    (tmp_path / 'hosts.yaml').write_text(
        'hosts:\n'
        '  node-a:\n'
        '    ssh_port: 22\n'
        '    ssh_host: 192.0.2.10\n'
        '    ssh_port: 2222\n')
    message = parse_error(write_source(tmp_path, strict=True))
    assert "host 'node-a'" in message and "field 'ssh_port'" in message and 'lines 3, 5' in message


def test_voter_that_is_not_a_host(tmp_path):
    (tmp_path / 'hosts.yaml').write_text(textwrap.dedent(MINIMAL).replace('[node-a]', '[node-a, ghost]'))
    message = parse_error(write_source(tmp_path, strict=True))
    assert "field 'p2p_voters'" in message and 'voter "ghost" is not a host' in message
    inventory, plugin = parse(write_source(tmp_path, strict=False))
    assert sorted(inventory.hosts) == ['node-a', 'node-b']
    assert hostvars(inventory, 'node-b')['ringrift_p2p_voters'] == ['node-a']
    assert any('ghost' in w and 'entry ignored' in w for w in plugin.display.warnings)
    (tmp_path / 'hosts.yaml').write_text(textwrap.dedent(MINIMAL).replace('[node-a]', '[node-a, [not, a, name]]'))
    message = parse_error(write_source(tmp_path, strict=True))
    assert "field 'p2p_voters'" in message and 'entry 2 must be a host name, found a list' in message


def test_strict_reports_every_problem_at_once(tmp_path):
    (tmp_path / 'hosts.yaml').write_text(_hosts_text(HOST_ERRORS[2][0] + '  "x y": {}\n'))
    message = parse_error(write_source(tmp_path, strict=True))
    assert '2 problems' in message and "host 'bad-host'" in message and "host 'x y'" in message


def test_unknown_keys_and_sections_are_tolerated(tmp_path):
    text = '''
        some_future_section: {anything: [1, 2, 3]}
        hosts:
          aws-1: {ssh_host: 192.0.2.10, brand_new_key: {x: 1}, status: ready}
    '''
    inventory, plugin = parse(write_source(tmp_path, text, strict=True))
    assert hostvars(inventory, 'aws-1')['ringrift_host_config']['brand_new_key'] == {'x': 1}


def test_dependent_of_a_dropped_proxy_is_dropped_too(tmp_path):
    text = '''
        hosts:
          aws-jump: {ssh_host: 192.0.2.10, ssh_port: 0}
          aws-inner: {ssh_host: 192.0.2.11, ssh_proxy: aws-jump}
          aws-other: {ssh_host: 192.0.2.12}
    '''
    inventory, plugin = parse(write_source(tmp_path, text, strict=False))
    assert sorted(inventory.hosts) == ['aws-other']
    assert any("host 'aws-inner'" in w and 'dropped' in w for w in plugin.display.warnings)


# --------------------------------------------------------------------------- constructable

def test_compose_groups_keyed_groups(tmp_path):
    source = write_source(
        tmp_path, path=FLEET_DATA, strict=True,
        compose={'ansible_python_interpreter': "ringrift_venv_path ~ '/bin/python' if ringrift_venv_path else '/usr/bin/python3'",
                 'gpu_total': 'ringrift_gpu_count * 10'},
        groups={'big_gpu': 'ringrift_gpu_count >= 8', 'composed_sees_compose': 'gpu_total | int >= 80'},
        keyed_groups=[{'key': 'ringrift_provider', 'prefix': 'provider'},
                      {'key': "ringrift_host_config.region | default('none')", 'prefix': 'region'}])
    inventory, dummy = parse(source)
    assert hostvars(inventory, 'nebius-backbone-1')['ansible_python_interpreter'] == '~/ringrift/ai-service/venv/bin/python'
    assert hostvars(inventory, 'aws-proxy')['ansible_python_interpreter'] == '/usr/bin/python3'
    assert hostvars(inventory, 'vast-29129529')['gpu_total'] == 80
    assert members(inventory, 'big_gpu') == ['nebius-amd-1', 'vast-29129529']
    assert members(inventory, 'composed_sees_compose') == ['nebius-amd-1', 'vast-29129529']
    assert members(inventory, 'provider_vast') == ['vast-29129529', 'vast-vm-1', 'vast-voter-1']
    assert members(inventory, 'region_ewr') == ['vultr-a100-20gb']
    assert 'mac-studio' in members(inventory, 'region_none')


def test_constructable_sees_inventory_hostname(tmp_path):
    source = write_source(tmp_path, path=FLEET_DATA, strict=True, compose={'node_id': "inventory_hostname | upper"},
                          groups={'backbones': "'backbone' in inventory_hostname"})
    inventory, dummy = parse(source)
    assert hostvars(inventory, 'aws-proxy')['node_id'] == 'AWS-PROXY'
    assert members(inventory, 'backbones') == ['nebius-backbone-1']


def test_constructable_strict_false_skips_failing_expressions(tmp_path):
    source = write_source(tmp_path, path=FLEET_DATA, strict=False,
                          compose={'broken': 'no_such_var.attr'}, groups={'broken_group': 'no_such_var > 1'},
                          keyed_groups=[{'key': 'no_such_var', 'prefix': 'k'}])
    inventory, dummy = parse(source)
    assert sorted(inventory.hosts) == ACTIVE
    assert 'broken' not in hostvars(inventory, 'aws-proxy')
    assert 'broken_group' not in inventory.groups
    assert not [group for group in inventory.groups if group.startswith('k_')]


@pytest.mark.parametrize('option', [
    {'compose': {'broken': 'no_such_var.attr'}},
    {'groups': {'broken_group': 'no_such_var > 1'}},
    {'keyed_groups': [{'key': 'no_such_var', 'prefix': 'k'}]},
])
def test_constructable_strict_true_fails_and_rolls_back(tmp_path, option):
    inventory = InventoryData()
    inventory.add_host('pre-existing')
    with pytest.raises(AnsibleError):
        parse(write_source(tmp_path, path=FLEET_DATA, strict=True, **option), inventory=inventory)
    assert sorted(inventory.hosts) == ['pre-existing']
    assert 'vast' not in inventory.groups and 'gpu' not in inventory.groups


def test_no_templar_without_constructed_options(tmp_path, monkeypatch):
    plugin = load_plugin()
    calls = []
    monkeypatch.setattr(type(plugin), '_set_composite_vars', lambda *a, **k: calls.append(a))
    monkeypatch.setattr(type(plugin), '_add_host_to_composed_groups', lambda *a, **k: calls.append(a))
    monkeypatch.setattr(type(plugin), '_add_host_to_keyed_groups', lambda *a, **k: calls.append(a))
    plugin.parse(InventoryData(), DataLoader(), FLEET_SOURCE, cache=True)
    assert calls == []


def test_documented_examples_work(tmp_path):
    examples = [block for block in plugin_module(load_plugin()).EXAMPLES.split('\n\n') if 'plugin:' in block]
    assert len(examples) == 3
    for index, block in enumerate(examples):
        config = yaml.safe_load(block)
        config['path'] = FLEET_DATA
        if 'cache_connection' in config:
            config['cache_connection'] = str(tmp_path / 'cache')
            config['cache_plugin'] = 'jsonfile'  # the FQCN needs the CLI's collection loader
        source = write_source(tmp_path, name='example%d.distributed_hosts.yml' % index, **config)
        inventory, dummy = parse(source)
        assert len(inventory.hosts) >= len(ACTIVE)


# --------------------------------------------------------------------------- caching

def _cache_source(tmp_path, data_text):
    return write_source(tmp_path, data_text, cache=True, cache_plugin='jsonfile',
                        cache_connection=str(tmp_path / 'cache'), provider_prefixes={'node': 'aws'})


def _counting_loader(monkeypatch, plugin):
    module = plugin_module(plugin)
    real = module.load_document
    calls = []

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)
    monkeypatch.setattr(module, 'load_document', counting)
    return calls


def _cached_parse(source, monkeypatch, cache=True):
    plugin = load_plugin()
    calls = _counting_loader(monkeypatch, plugin)
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), source, cache=cache)
    try:
        plugin.update_cache_if_changed()  # what InventoryManager does after parse
    except AttributeError:  # ... and ignores when the plugin has no cache this time
        pass
    return inventory, plugin, calls


def test_cache_hit_skips_parsing_and_content_change_invalidates(tmp_path, monkeypatch):
    source = _cache_source(tmp_path, MINIMAL)
    inventory, plugin, calls = _cached_parse(source, monkeypatch)
    assert len(calls) == 1 and sorted(inventory.hosts) == ['node-a', 'node-b']
    key_prefix = plugin.get_cache_key(source)
    assert any(name.startswith(key_prefix) or key_prefix in name for name in os.listdir(str(tmp_path / 'cache')))

    inventory, plugin, calls = _cached_parse(source, monkeypatch)  # new plugin instance: from the jsonfile cache
    assert calls == [] and sorted(inventory.hosts) == ['node-a', 'node-b']
    assert hostvars(inventory, 'node-b')['ringrift_p2p_peers'] == ['http://192.0.2.10:8770']

    (tmp_path / 'hosts.yaml').write_text(textwrap.dedent(MINIMAL) + '  node-c:\n    ssh_host: 192.0.2.12\n')
    inventory, plugin, calls = _cached_parse(source, monkeypatch)
    assert len(calls) == 1 and sorted(inventory.hosts) == ['node-a', 'node-b', 'node-c']

    inventory, plugin, calls = _cached_parse(source, monkeypatch)
    assert calls == [] and sorted(inventory.hosts) == ['node-a', 'node-b', 'node-c']


def test_cache_refresh_and_cache_off(tmp_path, monkeypatch):
    source = _cache_source(tmp_path, MINIMAL)
    _cached_parse(source, monkeypatch)
    dummy, dummy, calls = _cached_parse(source, monkeypatch, cache=False)  # --flush-cache / refresh: re-read and update
    assert len(calls) == 1
    dummy, dummy, calls = _cached_parse(source, monkeypatch)
    assert calls == []
    nocache = write_source(tmp_path, name='off.distributed_hosts.yml', cache=False, provider_prefixes={'node': 'aws'})
    for dummy in range(2):
        dummy, dummy, calls = _cached_parse(nocache, monkeypatch)
        assert len(calls) == 1


def test_cache_key_includes_path_and_content(tmp_path, monkeypatch):
    source = _cache_source(tmp_path, MINIMAL)
    dummy, plugin, dummy = _cached_parse(source, monkeypatch)
    keys = list(plugin._cache.keys())  # pylint: disable=protected-access
    assert len(keys) == 1 and keys[0].startswith(plugin.get_cache_key(source) + '_')
    (tmp_path / 'hosts.yaml').write_text(textwrap.dedent(MINIMAL) + '\n# a comment changes the content\n')
    dummy, plugin, calls = _cached_parse(source, monkeypatch)
    assert len(calls) == 1
    other_key = list(plugin._cache.keys())[0]  # pylint: disable=protected-access
    assert other_key != keys[0] and other_key.startswith(plugin.get_cache_key(source) + '_')
    other_source = write_source(tmp_path, name='other.distributed_hosts.yml', cache=True, cache_plugin='jsonfile',
                                cache_connection=str(tmp_path / 'cache'), provider_prefixes={'node': 'aws'})
    dummy, plugin, calls = _cached_parse(other_source, monkeypatch)  # same data file, another source: its own key
    assert len(calls) == 1
    assert len(os.listdir(str(tmp_path / 'cache'))) == 3


# --------------------------------------------------------------------------- module_utils

@pytest.mark.parametrize('value, expected', [
    ('8x RTX 4090', (8, 'RTX 4090', 'nvidia')),
    ('2x RTX 5090', (2, 'RTX 5090', 'nvidia')),
    ('H100 SXM', (1, 'H100 SXM', 'nvidia')),
    ('H100 PCIe', (1, 'H100 PCIe', 'nvidia')),
    ('H200', (1, 'H200', 'nvidia')),
    ('B200', (1, 'B200', 'nvidia')),
    ('GH200', (1, 'GH200', 'nvidia')),
    ('A100D-20C (vGPU)', (1, 'A100D-20C (vGPU)', 'nvidia')),
    ('A100 PCIe', (1, 'A100 PCIe', 'nvidia')),
    ('A40', (1, 'A40', 'nvidia')),
    ('A10', (1, 'A10', 'nvidia')),
    ('L40S', (1, 'L40S', 'nvidia')),
    ('4 x L4', (4, 'L4', 'nvidia')),
    ('T4', (1, 'T4', 'nvidia')),
    ('V100', (1, 'V100', 'nvidia')),
    ('P100', (1, 'P100', 'nvidia')),
    ('GTX 1080 Ti', (1, 'GTX 1080 Ti', 'nvidia')),
    ('Tesla M60', (1, 'Tesla M60', 'nvidia')),
    ('Quadro RTX 6000', (1, 'Quadro RTX 6000', 'nvidia')),
    ('NVIDIA GeForce RTX 3090', (1, 'NVIDIA GeForce RTX 3090', 'nvidia')),
    ('M3 Max/Ultra (MPS)', (1, 'M3 Max/Ultra (MPS)', 'other')),
    ('Apple M2 Ultra', (1, 'Apple M2 Ultra', 'other')),
    ('8x AMD MI300X', (8, 'AMD MI300X', 'other')),
    ('MI250', (1, 'MI250', 'other')),
    ('Radeon RX 7900 XTX', (1, 'Radeon RX 7900 XTX', 'other')),
    ('Intel Arc A770', (1, 'Intel Arc A770', 'other')),
    ('Mystery Accelerator 9000', (1, 'Mystery Accelerator 9000', 'unknown')),
    ('none', (0, None, 'none')),
    ('None', (0, None, 'none')),
    ('', (0, None, 'none')),
    (None, (0, None, 'none')),
    ('0x H100', (0, None, 'none')),
])
def test_classify_gpu(value, expected):
    assert dh.classify_gpu(value) == expected


@pytest.mark.parametrize('value, expected', [
    ('source ~/ringrift/ai-service/venv/bin/activate', ('~/ringrift/ai-service/venv', True)),
    ('. /opt/venv/bin/activate', ('/opt/venv', True)),
    ('source "/path with space/venv/bin/activate"', ('/path with space/venv', True)),
    ('/opt/venv/bin/activate', ('/opt/venv', True)),
    (':', (None, True)),
    ('', (None, True)),
    (None, (None, True)),
    ('conda activate ringrift', (None, False)),
])
def test_venv_path(value, expected):
    assert dh.venv_path(value) == expected


def test_peer_url_and_loopback():
    assert dh.peer_url('203.0.113.5', 8770) == 'http://203.0.113.5:8770'
    assert dh.peer_url('2001:db8::1', 8770) == 'http://[2001:db8::1]:8770'
    for address in ('localhost', '127.0.0.1', '127.1.2.3', '::1', 'LOCALHOST'):
        assert dh.is_loopback(address)
    for address in ('198.51.100.7', 'backbone.example', None, ''):
        assert not dh.is_loopback(address)


def test_build_model_from_plain_dict():
    """The pure API the demo generator and report code use: dict in, model out."""
    data = yaml.safe_load(textwrap.dedent(MINIMAL))
    model = dh.build_model(dh.document_from_data(data, 'demo'), {'provider_prefixes': {'node': 'vultr'}})
    assert sorted(model['hosts']) == ['node-a', 'node-b']
    assert model['hosts']['node-b']['groups'][:2] == ['vultr', 'vm_or_metal']
    assert model['hosts']['node-a']['vars']['ringrift_is_voter'] is True
    assert model['problems'] == [] and model['excluded'] == {} and model['dropped'] == []
    with pytest.raises(dh.DocumentError):
        dh.document_from_data({'nohosts': 1}, 'demo')


def test_load_document_lines(tmp_path):
    document = dh.load_document(open(FLEET_DATA, 'rb').read(), FLEET_DATA)
    assert document['host_lines']['mac-studio'] == 19
    assert document['duplicate_hosts'] == {} and document['duplicate_fields'] == {}
    json.dumps(document)  # JSON-safe: cacheable by any cache plugin


# --------------------------------------------------------------------------- ansible-inventory

def _run_inventory(source, *args):
    env = ansible_env()
    proc = subprocess.run([ANSIBLE_INVENTORY, '-i', source] + list(args), cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert 'Unable to parse' not in proc.stderr, proc.stderr
    return proc.stdout, proc.stderr


def _untrusted_to_str(value):
    """ansible-core 2.19 writes strings that are not trusted templates as {"__ansible_unsafe": "..."}."""
    if isinstance(value, dict):
        if list(value) == ['__ansible_unsafe']:
            return value['__ansible_unsafe']
        return dict((k, _untrusted_to_str(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_untrusted_to_str(v) for v in value]
    return value


def _graph_groups(output):
    groups = {}
    current = None
    for line in output.splitlines():
        stripped = re.sub(r'^[\s|-]*', '', line)
        if stripped.startswith('@'):
            current = stripped[1:].rstrip(':')
            groups.setdefault(current, [])
        elif stripped and current:
            groups[current].append(stripped)
    return groups


@pytest.mark.skipif(not os.path.exists(SHARED_EXAMPLE), reason='shared example fixture %s absent (not part of this repo)' % SHARED_EXAMPLE)
def test_ansible_inventory_graph_shared_example():
    output, dummy = _run_inventory('inventory/example.distributed_hosts.yml', '--graph')
    groups = _graph_groups(output)
    assert sorted(groups['p2p_voters']) == ['hetzner-cpu1', 'hetzner-cpu2', 'nebius-backbone-1', 'nebius-h100-3', 'vultr-a100-20gb']
    assert sorted(groups['local']) == ['local-mac', 'mac-studio']
    assert sorted(groups['containerized']) == ['runpod-a100-storage-1', 'runpod-h100', 'vast-28918742', 'vast-29128352', 'vast-29129529']
    assert sorted(groups['cpu_only']) == ['aws-proxy', 'hetzner-cpu1', 'hetzner-cpu2', 'local-mac']
    assert 'mac-studio' not in groups['gpu'] and 'nebius-h100-2' in groups['gpu'] and len(groups['gpu']) == 9
    assert groups['status_pending_setup'] == ['nebius-h100-2']
    for group in ('vast', 'runpod', 'vultr', 'nebius', 'hetzner', 'aws', 'vm_or_metal', 'p2p_enabled', 'role_coordinator'):
        assert groups[group], group
    assert 'unknown_provider' not in groups


def test_ansible_inventory_graph_own_fixture():
    output, stderr = _run_inventory(os.path.relpath(FLEET_SOURCE, REPO), '--graph')
    groups = _graph_groups(output)
    assert sorted(groups['p2p_voters']) == ['hetzner-cpu1', 'nebius-backbone-1', 'vast-voter-1', 'vultr-a100-20gb']
    assert groups['unknown_provider'] == ['lambda-gpu-1']
    assert sorted(groups['local']) == ['local-mac', 'mac-studio']
    assert 'hetzner-old' not in output
    assert 'lambda-gpu-1' in stderr  # warnings go to stderr


def test_ansible_inventory_list_own_fixture():
    output, dummy = _run_inventory(os.path.relpath(FLEET_SOURCE, REPO), '--list')
    data = json.loads(output)
    assert data['_meta'].get('profile', 'inventory_legacy') == 'inventory_legacy'
    hostvars_ = _untrusted_to_str(data['_meta']['hostvars'])
    assert sorted(hostvars_) == ACTIVE
    assert hostvars_['nebius-h100-2']['ansible_ssh_common_args'] == PROXY_VIA_BACKBONE
    assert hostvars_['vast-29129529']['ansible_ssh_common_args'] == HOST_KEYS
    assert hostvars_['vast-29129529']['ringrift_p2p_peers'] == [
        'http://backbone.example:8770', 'http://198.51.100.150:8770', 'http://203.0.113.164:8771']


# --------------------------------------------------------------------------- hardening: providers, names, statuses

@pytest.mark.parametrize('provider, group', [
    ('gpu', 'gpu'), ('p2p_voters', 'p2p_voters'), ('p2p-enabled', 'p2p_enabled'), ('containerized', 'containerized'),
    ('cpu_only', 'cpu_only'), ('vm_or_metal', 'vm_or_metal'), ('unknown_provider', 'unknown_provider'), ('all', 'all'),
    ('ungrouped', 'ungrouped'), ('role_backbone', 'role_backbone'), ('status_ready', 'status_ready'),
])
def test_provider_named_like_a_fixed_group_is_refused(tmp_path, provider, group):
    # node-b is neither a voter nor p2p_enabled nor a GPU host: its provider must not make it one.
    text = MINIMAL.replace('ssh_host: 192.0.2.11\n', 'ssh_host: 192.0.2.11\n        provider: %s\n' % provider)
    message = parse_error(write_source(tmp_path, text, strict=True, provider_prefixes={'node': 'aws'}))
    assert "%s:7: host 'node-b': field 'provider': provider \"%s\" would be group \"%s\"" % (tmp_path / 'hosts.yaml', provider, group) \
        in message
    inventory, plugin = parse(write_source(tmp_path, text, strict=False, provider_prefixes={'node': 'aws'}))
    assert sorted(inventory.hosts) == ['node-a', 'node-b']
    assert members(inventory, 'unknown_provider') == ['node-b']
    assert hostvars(inventory, 'node-b')['ringrift_provider'] == 'unknown'
    assert members(inventory, 'p2p_voters') == ['node-a']
    # Exactly the groups its own settings give it: no GPU, no role, status ready, no p2p_enabled key.
    assert sorted(group.name for group in inventory.get_host('node-b').get_groups()) == [
        'cpu_only', 'status_ready', 'unknown_provider', 'vm_or_metal']
    warning = [w for w in plugin.display.warnings if "field 'provider'" in w]
    assert len(warning) == 1 and str(tmp_path / 'hosts.yaml') in warning[0] and "host 'node-b'" in warning[0]
    assert warning[0].endswith('; host kept with provider "unknown" (group unknown_provider)')


def test_provider_with_a_bad_shape_goes_to_unknown_provider(tmp_path):
    text = MINIMAL.replace('ssh_host: 192.0.2.11\n', 'ssh_host: 192.0.2.11\n        provider: "vast\\n"\n')
    message = parse_error(write_source(tmp_path, text, strict=True, provider_prefixes={'node': 'aws'}))
    assert "host 'node-b': field 'provider': provider 'vast\\n' must be a provider name" in message
    inventory, dummy = parse(write_source(tmp_path, text, strict=False, provider_prefixes={'node': 'aws'}))
    assert members(inventory, 'unknown_provider') == ['node-b'] and members(inventory, 'vast') == []


def test_provider_prefixes_option_cannot_name_a_fixed_group(tmp_path):
    message = parse_error(write_source(tmp_path, MINIMAL, provider_prefixes={'node': 'p2p_voters'}))
    assert 'option provider_prefixes: prefix "node": provider "p2p_voters" would be group "p2p_voters"' in message


def test_yaml_integer_host_names_do_not_collapse(tmp_path):
    # YAML 1.1: 010 is octal 8, so "010" and "8" were one host (the last), without a duplicate warning.
    text = MINIMAL + '      010: {ssh_host: 192.0.2.12, status: ready}\n      8: {ssh_host: 192.0.2.13, status: ready}\n'
    message = parse_error(write_source(tmp_path, text, strict=True, provider_prefixes={'node': 'aws'}))
    assert '2 problems' in message
    assert "hosts.yaml:10: host '010': field 'name': host name 010 is read by YAML as int (8), not as the text \"010\": " \
        "quote it ('010')" in message
    assert "hosts.yaml:11: host '8': field 'name': host name 8 is read by YAML as int (8)" in message
    inventory, plugin = parse(write_source(tmp_path, text, strict=False, provider_prefixes={'node': 'aws'}))
    assert sorted(inventory.hosts) == ['node-a', 'node-b']
    assert len([w for w in plugin.display.warnings if 'read by YAML as int (8)' in w and 'host dropped' in w]) == 2
    quoted = MINIMAL + "      '010': {ssh_host: 192.0.2.12, status: ready}\n      '8': {ssh_host: 192.0.2.13, status: ready}\n"
    inventory, dummy = parse(write_source(tmp_path, quoted, strict=True, provider_prefixes={'node': 'aws', '0': 'aws', '8': 'aws'}))
    assert sorted(inventory.hosts) == ['010', '8', 'node-a', 'node-b']


def test_non_string_keys_survive_a_cache_round_trip(tmp_path, monkeypatch):
    # A JSON cache writes the key 8 as "8": the check must not depend on whether the parse came from the cache.
    source = write_source(tmp_path, MINIMAL + '      8: {ssh_host: 192.0.2.13}\n', cache=True, cache_plugin='jsonfile',
                          cache_connection=str(tmp_path / 'cache'), provider_prefixes={'node': 'aws'}, strict=False)
    for dummy in range(2):
        inventory, plugin, calls = _cached_parse(source, monkeypatch)
        assert sorted(inventory.hosts) == ['node-a', 'node-b']
        assert any("host '8'" in w and 'read by YAML as int (8)' in w for w in plugin.display.warnings)
    assert calls == []  # the second parse was a cache hit


def test_build_model_from_dict_with_integer_host_name():
    document = dh.document_from_data({'hosts': {8: {'ssh_host': '192.0.2.13'}, 'node-a': {1: 'x', 'ssh_host': '192.0.2.10'}}})
    json.dumps(document)
    model = dh.build_model(document)
    assert model['hosts'] == {}
    assert [(p['host'], p['field'], p['message']) for p in model['problems']] == [
        ('8', 'name', 'host name must be a string, found int (8)'),
        ('node-a', '1', 'key must be a string, found int (1)')]


@pytest.mark.parametrize('status', ['raedy', ' ready', 'ready ', 'terminted'])
def test_unknown_status_is_left_out_with_a_warning(tmp_path, status):
    text = MINIMAL + "      node-c: {ssh_host: 192.0.2.12, status: '%s'}\n" % status
    inventory, plugin = parse(write_source(tmp_path, text, strict=True, provider_prefixes={'node': 'aws'}))
    assert sorted(inventory.hosts) == ['node-a', 'node-b']
    warning = [w for w in plugin.display.warnings if 'not a known status' in w]
    assert warning == ['%s: status "%s" is not a known status (%s); host left out as inactive: correct it, or name it in '
                       'include_statuses (host: node-c)' % (tmp_path / 'hosts.yaml', status, ', '.join(dh.KNOWN_STATUSES))]
    assert not any(group.startswith('status_') and group != 'status_ready' for group in inventory.groups)
    # Named in include_statuses: wanted, so added and not warned about.
    inventory, plugin = parse(write_source(tmp_path, text, include_statuses=['ready', status], provider_prefixes={'node': 'aws'}))
    assert sorted(inventory.hosts) == ['node-a', 'node-b', 'node-c']
    assert not any('not a known status' in w for w in plugin.display.warnings)


def test_known_statuses_need_no_warning_and_case_is_ignored(tmp_path):
    text = MINIMAL + ''.join("      node-%d: {ssh_host: 192.0.2.%d, status: %s}\n" % (i, 20 + i, status)
                             for i, status in enumerate(dh.KNOWN_STATUSES + ('Ready', 'OFFLINE')))
    inventory, plugin = parse(write_source(tmp_path, text, strict=True, provider_prefixes={'node': 'aws'}))
    assert not any('not a known status' in w for w in plugin.display.warnings)
    assert sorted(inventory.hosts) == sorted(['node-a', 'node-b', 'node-0', 'node-3', 'node-4', 'node-5', 'node-8'])


# --------------------------------------------------------------------------- hardening: aliases

def _alias_bomb(levels, width=9):
    names = 'abcdefghijklmnop'
    lines = ['a: &a [%s]' % ','.join(['x'] * width)]
    for level in range(1, levels):
        lines.append('%s: &%s [%s]' % (names[level], names[level], ','.join(['*' + names[level - 1]] * width)))
    lines += ['hosts:', '  aws-1: {ssh_host: 192.0.2.10, x: *%s}' % names[levels - 1], '']
    return '\n'.join(lines)


def test_alias_bomb_is_refused_before_it_expands():
    text = _alias_bomb(9)  # 9**9 strings once expanded, in under 400 bytes
    assert len(text) < 400
    with pytest.raises(dh.DocumentError) as info:
        dh.load_document(text, '/cfg/distributed_hosts.yaml')
    assert str(info.value).startswith('/cfg/distributed_hosts.yaml: YAML aliases (*name) expand the ')
    assert 'more than %d added by aliases' % dh.MAX_ALIAS_NODES in str(info.value)


def test_alias_bomb_through_the_plugin(tmp_path):
    # 10**6 nodes once expanded: over the bound, yet small enough to walk if the bound were missing.
    (tmp_path / 'hosts.yaml').write_text(_alias_bomb(6, width=10))
    for strict in (True, False):
        message = parse_error(write_source(tmp_path, strict=strict))
        assert '%s: YAML aliases (*name) expand the ' % (tmp_path / 'hosts.yaml') in message


def test_recursive_alias_is_refused():
    with pytest.raises(dh.DocumentError) as info:
        dh.load_document('hosts:\n  aws-1: &me {ssh_host: 192.0.2.10, again: *me}\n', 'f.yaml')
    assert 'f.yaml: the YAML anchor (&name) at line 2 is used by an alias (*name) inside itself' in str(info.value)


def test_ordinary_anchors_and_merges_still_work(tmp_path):
    text = '''
        defaults: &defaults {ssh_user: root, ssh_key: ~/.ssh/id_cluster, status: ready, tags: &tags [a, b, c]}
        hosts:
          aws-1: {<<: *defaults, ssh_host: 192.0.2.10, tags: *tags}
          aws-2: {<<: *defaults, ssh_host: 192.0.2.11, ssh_user: ubuntu}
    '''
    inventory, dummy = parse(write_source(tmp_path, text, strict=True))
    assert hostvars(inventory, 'aws-1')['ansible_user'] == 'root'
    assert hostvars(inventory, 'aws-2')['ansible_user'] == 'ubuntu'
    assert hostvars(inventory, 'aws-1')['ringrift_host_config']['tags'] == ['a', 'b', 'c']


# --------------------------------------------------------------------------- hardening: the data file

def test_fifo_as_data_file_fails_instead_of_hanging(tmp_path):
    import signal  # pylint: disable=import-outside-toplevel
    os.mkfifo(str(tmp_path / 'fifo.yaml'))  # no writer: a plain open() blocks forever

    def hang(signum, frame):
        raise AssertionError('parse blocked on the FIFO')
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(10)
    try:
        message = parse_error(write_source(tmp_path, path='fifo.yaml'))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert message == '%s: cannot read distributed_hosts file: it is a FIFO (named pipe), not a regular file' % (tmp_path / 'fifo.yaml')


def test_device_as_data_file_is_refused(tmp_path):
    message = parse_error(write_source(tmp_path, path=os.devnull))
    assert message == '%s: cannot read distributed_hosts file: it is a character device, not a regular file' % os.devnull


def test_symlink_to_a_regular_file_is_fine(tmp_path):
    (tmp_path / 'real.yaml').write_text(textwrap.dedent(MINIMAL))
    os.symlink(str(tmp_path / 'real.yaml'), str(tmp_path / 'link.yaml'))
    inventory, dummy = parse(write_source(tmp_path, path='link.yaml', provider_prefixes={'node': 'aws'}))
    assert sorted(inventory.hosts) == ['node-a', 'node-b']


def test_oversized_data_file_is_refused(tmp_path):
    module = plugin_module(load_plugin())
    with open(str(tmp_path / 'huge.yaml'), 'wb') as handle:
        handle.truncate(module.MAX_DATA_BYTES + 1)  # sparse: costs no disk
    message = parse_error(write_source(tmp_path, path='huge.yaml'))
    assert message == '%s: cannot read distributed_hosts file: it is %d bytes, more than the limit of %d' % (
        tmp_path / 'huge.yaml', module.MAX_DATA_BYTES + 1, module.MAX_DATA_BYTES)


VAULT_SECRETS_TEXT = MINIMAL + '''
      node-c:
        ssh_host: 192.0.2.12
        api_token: secret-4f1c9e-not-real
'''


def _vault_files(tmp_path):
    from ansible.parsing.vault import VaultLib, VaultSecret  # pylint: disable=import-outside-toplevel
    secrets = [('default', VaultSecret(b'not-a-real-vault-password'))]
    plain = textwrap.dedent(VAULT_SECRETS_TEXT).encode()
    (tmp_path / 'hosts.yaml').write_bytes(VaultLib(secrets).encrypt(plain))
    loader = DataLoader()
    loader.set_vault_secrets(secrets)
    return plain, loader


def _cache_files(directory):
    found = {}
    for root, dummy, files in os.walk(str(directory)):
        for name in files:
            with open(os.path.join(root, name), 'rb') as handle:
                found[name] = handle.read()
    return found


def test_vault_encrypted_data_is_never_cached(tmp_path, monkeypatch):
    plain, loader = _vault_files(tmp_path)
    source = _cache_source(tmp_path, None)
    for dummy in range(2):
        plugin = load_plugin()
        calls = _counting_loader(monkeypatch, plugin)
        inventory = InventoryData()
        plugin.parse(inventory, loader, source, cache=True)
        plugin.update_cache_if_changed()
        assert len(calls) == 1  # parsed every time: there is nothing cached to hit
        assert hostvars(inventory, 'node-c')['ringrift_host_config']['api_token'] == 'secret-4f1c9e-not-real'
    files = _cache_files(tmp_path / 'cache')
    assert not any(b'secret-4f1c9e' in content or b'192.0.2.12' in content for content in files.values())
    assert files == {}


def test_cache_entry_with_decrypted_vault_content_from_an_earlier_version_is_removed(tmp_path):
    import hashlib  # pylint: disable=import-outside-toplevel
    plain, loader = _vault_files(tmp_path)
    source = _cache_source(tmp_path, None)
    plugin = load_plugin()
    plugin.parse(InventoryData(), loader, source, cache=True)
    # What versions before this one wrote: the parsed, decrypted document, under a key made from it.
    data_path = str(tmp_path / 'hosts.yaml')
    legacy_key = '%s_%s' % (plugin.get_cache_key(source), hashlib.sha256(data_path.encode() + b'\0' + plain).hexdigest()[:20])
    plugin._cache._plugin.set(legacy_key, dh.load_document(plain, data_path))  # pylint: disable=protected-access
    assert any(b'secret-4f1c9e' in content for content in _cache_files(tmp_path / 'cache').values())
    plugin = load_plugin()
    plugin.parse(InventoryData(), loader, source, cache=True)
    plugin.update_cache_if_changed()
    assert not any(b'secret-4f1c9e' in content for content in _cache_files(tmp_path / 'cache').values())
    assert any('removed the inventory cache entry %s' % legacy_key in w for w in plugin.display.warnings)


# --------------------------------------------------------------------------- SSH connection variables, exactly

def _connection_vars(inventory, name):
    return dict((key, value) for key, value in hostvars(inventory, name).items() if key.startswith('ansible_'))


# Every host reached over SSH: trust on first use into the fleet's own known-hosts file.
HOST_KEYS = '-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=~/.ssh/ringrift_known_hosts'
# The jump host's ssh gets the same policy and file, inside the ProxyCommand.
PROXY_VIA_BACKBONE = ('-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=~/.ssh/ringrift_known_hosts '
                      '-o ProxyCommand="ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new '
                      '-o UserKnownHostsFile=~/.ssh/ringrift_known_hosts -W \'[%h]:%p\' -p 22 -i ~/.ssh/id_cluster ubuntu@203.0.113.47"')

# One host per connection shape: Vast's shared gateway with a high per-instance port, RunPod's mapped
# port, non-root users (ubuntu, ec2-user, operator), a coordinator on a real address, localhost,
# and (own fixture) a loopback tunnel port and a host reached through an ssh_proxy jump host.
SHARED_CONNECTIONS = {
    'vast-29129529': {'ansible_host': 'ssh6.vast.example', 'ansible_port': 19528, 'ansible_user': 'root',
                      'ansible_ssh_private_key_file': '~/.ssh/id_cluster', 'ansible_ssh_common_args': HOST_KEYS},
    'vast-29128352': {'ansible_host': 'ssh9.vast.example', 'ansible_port': 18352, 'ansible_user': 'root',
                      'ansible_ssh_private_key_file': '~/.ssh/id_cluster', 'ansible_ssh_common_args': HOST_KEYS},
    'runpod-h100': {'ansible_host': '192.0.2.65', 'ansible_port': 30755, 'ansible_user': 'root',
                    'ansible_ssh_private_key_file': '~/.runpod/ssh/RunPod-Key-Go', 'ansible_ssh_common_args': HOST_KEYS},
    'nebius-backbone-1': {'ansible_host': '203.0.113.47', 'ansible_port': 22, 'ansible_user': 'ubuntu',
                          'ansible_ssh_private_key_file': '~/.ssh/id_cluster', 'ansible_ssh_common_args': HOST_KEYS},
    # The shared file only says "requires ProxyJump" in a note; without an ssh_proxy key there is no proxy.
    'nebius-h100-2': {'ansible_host': '10.0.0.8', 'ansible_port': 22, 'ansible_user': 'ubuntu',
                      'ansible_ssh_private_key_file': '~/.ssh/id_cluster', 'ansible_ssh_common_args': HOST_KEYS},
    'aws-proxy': {'ansible_host': '198.51.100.95', 'ansible_port': 22, 'ansible_user': 'ec2-user',
                  'ansible_ssh_private_key_file': '~/.ssh/proxy-key.pem', 'ansible_ssh_common_args': HOST_KEYS},
    'mac-studio': {'ansible_host': '198.51.100.7', 'ansible_port': 22, 'ansible_user': 'operator',
                   'ansible_ssh_private_key_file': '~/.ssh/id_cluster', 'ansible_ssh_common_args': HOST_KEYS},
    # ansible_connection local: no ssh, no ssh options.
    'local-mac': {'ansible_host': 'localhost', 'ansible_port': 22, 'ansible_user': 'operator', 'ansible_connection': 'local'},
}
OWN_CONNECTIONS = {
    'vast-29129529': SHARED_CONNECTIONS['vast-29129529'],
    'vast-voter-1': {'ansible_host': 'ssh9.vast.example', 'ansible_port': 18352, 'ansible_user': 'root',
                     'ansible_ssh_common_args': HOST_KEYS},
    'nebius-h100-2': {'ansible_host': '192.0.2.8', 'ansible_port': 22, 'ansible_user': 'ubuntu',
                      'ansible_ssh_private_key_file': '~/.ssh/id_cluster', 'ansible_ssh_common_args': PROXY_VIA_BACKBONE},
    'nebius-backbone-1': SHARED_CONNECTIONS['nebius-backbone-1'],
    'aws-proxy': SHARED_CONNECTIONS['aws-proxy'],
    'local-mac': {'ansible_host': 'localhost', 'ansible_port': 22, 'ansible_user': 'operator', 'ansible_connection': 'local'},
    'tunnel-box': {'ansible_host': '127.0.0.1', 'ansible_port': 2222, 'ansible_user': 'root', 'ansible_ssh_common_args': HOST_KEYS},
    'lambda-gpu-1': {'ansible_host': '203.0.113.90', 'ansible_port': 22, 'ansible_user': 'ubuntu',
                     'ansible_ssh_common_args': HOST_KEYS},
}


@pytest.mark.parametrize('name', sorted(OWN_CONNECTIONS))
def test_connection_vars_exact_own_fixture(fleet, name):
    inventory, dummy = fleet
    assert _connection_vars(inventory, name) == OWN_CONNECTIONS[name]


needs_shared_example = pytest.mark.skipif(not os.path.exists(SHARED_EXAMPLE),
                                          reason='shared example fixture %s absent (not part of this repo)' % SHARED_EXAMPLE)


@needs_shared_example
def test_connection_vars_exact_shared_example(tmp_path):
    inventory, plugin = parse(write_source(tmp_path, path=SHARED_EXAMPLE, strict=True))
    for name, expected in SHARED_CONNECTIONS.items():
        assert _connection_vars(inventory, name) == expected, name
    assert not plugin.display.warnings


@needs_shared_example
def test_connection_vars_shared_example_with_its_jump_host(tmp_path):
    # What the note of nebius-h100-2 asks for, written as the key the plugin reads.
    with open(SHARED_EXAMPLE) as handle:
        text = handle.read()
    marker = '    ssh_host: 10.0.0.8\n'
    assert text.count(marker) == 1
    (tmp_path / 'hosts.yaml').write_text(text.replace(marker, marker + '    ssh_proxy: nebius-backbone-1\n'))
    inventory, dummy = parse(write_source(tmp_path, strict=True))
    assert _connection_vars(inventory, 'nebius-h100-2') == dict(SHARED_CONNECTIONS['nebius-h100-2'],
                                                                ansible_ssh_common_args=PROXY_VIA_BACKBONE)
    assert hostvars(inventory, 'nebius-h100-2')['ringrift_ssh_proxy'] == 'nebius-backbone-1'


def test_proxy_command_uses_the_proxy_port_user_and_key(tmp_path):
    text = '''
        hosts:
          aws-jump: {ssh_host: 198.51.100.20, ssh_port: 2201, ssh_user: ec2-user, ssh_key: /keys/jump.pem, status: ready}
          aws-inner: {ssh_host: 10.1.2.3, ssh_port: 2222, ssh_user: ubuntu, ssh_key: ~/.ssh/inner, ssh_proxy: aws-jump}
          aws-v6: {ssh_host: "2001:db8::5", ssh_proxy: aws-jump}
    '''
    inventory, dummy = parse(write_source(tmp_path, text, strict=True))
    jump = ('-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=~/.ssh/ringrift_known_hosts '
            '-o ProxyCommand="ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=~/.ssh/ringrift_known_hosts '
            '-W \'[%h]:%p\' -p 2201 -i /keys/jump.pem ec2-user@198.51.100.20"')
    assert _connection_vars(inventory, 'aws-inner') == {
        'ansible_host': '10.1.2.3', 'ansible_port': 2222, 'ansible_user': 'ubuntu', 'ansible_ssh_private_key_file': '~/.ssh/inner',
        'ansible_ssh_common_args': jump}
    assert _connection_vars(inventory, 'aws-v6') == {'ansible_host': '2001:db8::5', 'ansible_port': 22, 'ansible_ssh_common_args': jump}


SSH = '/usr/bin/ssh'


@pytest.mark.skipif(not os.path.exists(SSH), reason='OpenSSH client %s absent' % SSH)
@pytest.mark.parametrize('target, port', [('10.1.2.3', 2222), ('2001:db8::5', 22), ('inner.example', 22)])
def test_proxy_command_as_openssh_runs_it(tmp_path, target, port):
    """Real OpenSSH expands the ProxyCommand (%h, %p, %%) and runs it with $SHELL -c. The proxy's
    ``ssh`` is a stand-in on PATH that records its arguments, so nothing is contacted."""
    record = tmp_path / 'argv.json'
    fake = tmp_path / 'bin' / 'ssh'
    fake.parent.mkdir()
    fake.write_text('#!%s\nimport json, sys\njson.dump(sys.argv[1:], open(%r, "w"))\n' % (sys.executable, str(record)))
    fake.chmod(0o755)
    (tmp_path / 'home').mkdir()
    args = dh.ssh_common_args('~/.ssh/ringrift_known_hosts', proxy=('198.51.100.20', 2201, 'ec2-user', '~/.ssh/my key%1'))
    # What Ansible's ssh connection does with ansible_ssh_common_args, then the outer ssh itself.
    command = [SSH, '-F', os.devnull, '-o', 'BatchMode=yes', '-o', 'UserKnownHostsFile=' + os.devnull,
               '-o', 'ConnectTimeout=5'] + shlex.split(args) + ['-p', str(port), 'ubuntu@' + target, 'true']
    env = dict(os.environ, PATH='%s:%s' % (fake.parent, os.environ.get('PATH', '/usr/bin:/bin')), SHELL='/bin/sh',
               HOME=str(tmp_path / 'home'))
    proc = subprocess.run(command, env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=20, check=False)
    assert proc.returncode == 255  # the stand-in answers nothing
    with open(str(record)) as handle:
        argv = json.load(handle)
    # /bin/sh leaves the ~ after "=" to ssh, which expands it in UserKnownHostsFile itself.
    assert argv == ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=accept-new', '-o', 'UserKnownHostsFile=~/.ssh/ringrift_known_hosts',
                    '-W', '[%s]:%d' % (target, port), '-p', '2201',
                    '-i', str(tmp_path / 'home' / '.ssh' / 'my key%1'), 'ec2-user@198.51.100.20']


def test_documented_limits_are_the_coded_ones():
    """The plugin's details live in docs/inventory.md (its DOCUMENTATION points there)."""
    module = plugin_module(load_plugin())
    assert 'docs/inventory.md' in module.DOCUMENTATION
    with open(os.path.join(REPO, 'docs', 'inventory.md')) as handle:
        doc = ' '.join(handle.read().split())
    assert 'of at most %d MiB' % (module.MAX_DATA_BYTES >> 20) in doc
    assert 'may add at most %d nodes' % dh.MAX_ALIAS_NODES in doc
    assert 'Known statuses (case-insensitive): %s;' % ', '.join('`%s`' % s for s in dh.KNOWN_STATUSES) in doc
    assert 'except inactive ones (%s)' % ', '.join('`%s`' % s for s in dh.INACTIVE_STATUSES) in doc


# --------------------------------------------------------------------------- hosts the collection cannot manage

MAC_STUDIO_REASON = ('macOS (gpu "M3 Max/Ultra (MPS)" is an Apple GPU): the collection manages Linux nodes only '
                     '(it reads /proc and runs the daemon under systemd or supervisor)')
LOCAL_MAC_REASON = ('macOS (ringrift_path "/Users/operator/Development/RingRift/ai-service" is under /Users/): the collection '
                    'manages Linux nodes only (it reads /proc and runs the daemon under systemd or supervisor)')


@needs_shared_example
def test_shared_example_macs_are_unsupported_os(tmp_path):
    inventory, plugin = parse(write_source(tmp_path, path=SHARED_EXAMPLE, strict=True))
    assert members(inventory, 'unsupported_os') == ['local-mac', 'mac-studio']
    assert hostvars(inventory, 'mac-studio')['ringrift_os_family'] == 'darwin'
    assert hostvars(inventory, 'mac-studio')['ringrift_unsupported_os'] == MAC_STUDIO_REASON
    assert hostvars(inventory, 'local-mac')['ringrift_unsupported_os'] == LOCAL_MAC_REASON
    for name in set(inventory.hosts) - {'mac-studio', 'local-mac'}:
        assert hostvars(inventory, name)['ringrift_os_family'] == 'linux', name
        assert hostvars(inventory, name)['ringrift_unsupported_os'] is None, name
    # mac-studio is a P2P node: site.yml targets p2p_enabled, so this is the host it must leave out.
    assert 'mac-studio' in members(inventory, 'p2p_enabled')
    assert not plugin.display.warnings


def test_own_fixture_unsupported_os_group(fleet):
    inventory, dummy = fleet
    assert members(inventory, 'unsupported_os') == ['local-mac', 'mac-studio']


@pytest.mark.parametrize('entry, family, reason', [
    # An explicit os key wins over every guess, both ways.
    ('{ssh_host: 192.0.2.30, gpu: M2 Ultra (MPS), os: Linux}', 'linux', None),
    ('{ssh_host: 192.0.2.30, ringrift_path: /Users/op/ai-service, os: ubuntu}', 'linux', None),
    ('{ssh_host: 192.0.2.30, os: macOS}', 'darwin', 'macOS (os "macOS")'),
    ('{ssh_host: 192.0.2.30, os: windows}', 'windows', 'windows (os "windows")'),
    # Guesses: an Apple GPU, a node path under /Users/ (ringrift_path or the venv).
    ('{ssh_host: 192.0.2.30, gpu: Apple M1}', 'darwin', 'macOS (gpu "Apple M1" is an Apple GPU)'),
    ('{ssh_host: 192.0.2.30, gpu: M4 Max}', 'darwin', 'macOS (gpu "M4 Max" is an Apple GPU)'),
    ('{ssh_host: 192.0.2.30, venv_activate: source /Users/op/venv/bin/activate}', 'darwin',
     'macOS (venv_activate "/Users/op/venv" is under /Users/)'),
    # Not macOS: NVIDIA names that share letters with Apple's, and ~ paths (could be any home).
    ('{ssh_host: 192.0.2.30, gpu: Tesla M60}', 'linux', None),
    ('{ssh_host: 192.0.2.30, gpu: 8x RTX 4090, ringrift_path: ~/ringrift/ai-service}', 'linux', None),
    ('{ssh_host: 192.0.2.30, gpu: MI300X}', 'linux', None),
    ('{ssh_host: 192.0.2.30, ssh_key: /Users/op/.ssh/id_cluster}', 'linux', None),  # the controller's path
])
def test_os_family_and_unsupported_reason(tmp_path, entry, family, reason):
    inventory, plugin = parse(write_source(tmp_path, 'hosts:\n  node-a: %s\n' % entry, strict=True))
    v = hostvars(inventory, 'node-a')
    assert v['ringrift_os_family'] == family
    if reason is None:
        assert v['ringrift_unsupported_os'] is None
        assert members(inventory, 'unsupported_os') == []
    else:
        assert v['ringrift_unsupported_os'] == reason + (': the collection manages Linux nodes only (it reads /proc and runs '
                                                         'the daemon under systemd or supervisor)')
        assert members(inventory, 'unsupported_os') == ['node-a']


@pytest.mark.parametrize('value, message', [
    ('linx', 'unknown operating system "linx": one of '),
    ('5', "must be a string, found int (5)"),
])
def test_unknown_os_value_is_a_problem_naming_file_host_and_field(tmp_path, value, message):
    text = 'hosts:\n  node-a: {ssh_host: 192.0.2.30}\n  node-b: {ssh_host: 192.0.2.31, os: %s}\n' % value
    error = parse_error(write_source(tmp_path, text, strict=True))
    assert "%s:3: host 'node-b': field 'os': %s" % (tmp_path / 'hosts.yaml', message) in error
    inventory, plugin = parse(write_source(tmp_path, text, strict=False))
    assert sorted(inventory.hosts) == ['node-a']  # dropped, not guessed


def test_unsupported_os_group_exists_when_empty(tmp_path):
    inventory, dummy = parse(write_source(tmp_path, MINIMAL, strict=True))
    assert 'unsupported_os' in inventory.groups and members(inventory, 'unsupported_os') == []


# --------------------------------------------------------------------------- host keys

def test_known_hosts_file_option_reaches_every_ssh_argument(tmp_path):
    text = '''
        hosts:
          aws-jump: {ssh_host: 198.51.100.20, ssh_user: ec2-user}
          aws-inner: {ssh_host: 10.1.2.3, ssh_proxy: aws-jump}
          local-box: {ssh_host: 127.0.0.1}
    '''
    inventory, dummy = parse(write_source(tmp_path, text, strict=True, known_hosts_file='/srv/fleet/known_hosts'))
    assert hostvars(inventory, 'aws-jump')['ansible_ssh_common_args'] == (
        '-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/srv/fleet/known_hosts')
    assert hostvars(inventory, 'aws-inner')['ansible_ssh_common_args'] == (
        '-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/srv/fleet/known_hosts -o ProxyCommand="ssh -o BatchMode=yes '
        '-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/srv/fleet/known_hosts -W \'[%h]:%p\' -p 22 ec2-user@198.51.100.20"')
    assert hostvars(inventory, 'local-box')['ansible_connection'] == 'local'
    assert 'ansible_ssh_common_args' not in hostvars(inventory, 'local-box')


@pytest.mark.parametrize('value', ['relative/known_hosts', '~/my known_hosts', '/tmp/%h_hosts', '$HOME/x', ''])
def test_bad_known_hosts_file_option_is_an_error(tmp_path, value):
    message = parse_error(write_source(tmp_path, MINIMAL, known_hosts_file=value))
    assert 'option known_hosts_file: ' in message and 'known_hosts_file' in message.split('option known_hosts_file: ', 1)[1]


def test_ansible_cfg_does_not_switch_host_key_checking_off():
    """host_key_checking = False would put -o StrictHostKeyChecking=no ahead of the inventory's
    accept-new, and OpenSSH keeps the first value: the fleet would accept any key."""
    import configparser  # pylint: disable=import-outside-toplevel
    config = configparser.ConfigParser(interpolation=None)
    config.read(os.path.join(REPO, 'ansible.cfg'))
    for section in config.sections():
        value = config.get(section, 'host_key_checking', fallback='true')
        assert value.strip().lower() not in ('false', 'no', '0', 'off'), section
    assert 'StrictHostKeyChecking=no' not in config.get('ssh_connection', 'ssh_args', fallback='')
