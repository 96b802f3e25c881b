# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""node_audit on a node the collection cannot manage: no /proc (macOS), or not Linux.

The module's logic (``node_audit.audit``) runs against a synthetic proc root and a given
``platform.system()``; a node without ``/proc/net/tcp`` must come back ``unsupported_os``
with its reason, never ``never_started``, and without asking any service manager.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.ringrift.cluster.plugins.modules import node_audit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))
# /proc/net/tcp with its header line and no socket.
TCP_HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'


class FakeModule(object):
    """What audit() uses of AnsibleModule; ``runner`` records every command audit() would run."""

    def __init__(self):
        self.commands = []
        self.warnings = []

    def runner(self, argv):
        self.commands.append(list(argv))
        return 1, '', 'not here'

    def warn(self, text):
        self.warnings.append(text)

    def fail_json(self, **kwargs):
        raise AssertionError('fail_json: %s' % kwargs)


def params(tmp_path, **overrides):
    values = dict((name, spec.get('default')) for name, spec in node_audit.ARGUMENT_SPEC.items())
    values.update(log_path=str(tmp_path / 'p2p.log'), stamp_path=str(tmp_path / 'converge-stamp.json'),
                  health_path=None, service_manager='auto')
    values.update(overrides)
    return values


def linux_proc(tmp_path):
    """A proc root with an empty socket table and nothing else (no PID 1: no service manager)."""
    root = tmp_path / 'proc'
    (root / 'net').mkdir(parents=True)
    (root / 'net' / 'tcp').write_text(TCP_HEADER)
    return str(root)


def documented_return_keys():
    return set(yaml.safe_load(node_audit.RETURN))


def test_node_without_proc_is_unsupported_os_not_never_started(tmp_path):
    module = FakeModule()
    empty_root = tmp_path / 'no-proc'
    empty_root.mkdir()
    result = node_audit.audit(module, params(tmp_path), proc_root=str(empty_root), system='Linux', runner=module.runner)
    assert result['diagnosis'] == 'unsupported_os'
    assert result['unsupported_reason'] == (
        'no %s/net/tcp or %s/net/tcp6: without /proc no socket can be traced to its process (is /proc mounted?)'
        % (empty_root, empty_root))
    assert result['msg'] == result['unsupported_reason']
    assert module.commands == []  # no systemctl, no supervisorctl, no nvidia-smi
    assert result['service'] == {'manager': 'none', 'installed': False, 'state': None, 'restarts': None, 'main_pid': None}
    assert result['listening'] is False and result['gpu'] is None and result['last_converged_at'] is None
    assert documented_return_keys() <= set(result)


def test_darwin_is_unsupported_os_even_with_a_proc_tree(tmp_path):
    module = FakeModule()
    result = node_audit.audit(module, params(tmp_path, gpu=True), proc_root=linux_proc(tmp_path), system='Darwin', runner=module.runner)
    assert result['diagnosis'] == 'unsupported_os'
    assert result['unsupported_reason'] == ('Darwin: the collection manages Linux nodes only (it reads /proc and runs '
                                            'the daemon under systemd or supervisor)')
    assert module.commands == []
    assert documented_return_keys() <= set(result)


def test_missing_proc_net_tcp_alone_is_enough_tcp6_counts(tmp_path):
    root = tmp_path / 'proc'
    (root / 'net').mkdir(parents=True)
    (root / 'net' / 'tcp6').write_text(TCP_HEADER)  # an IPv6-only socket table is still a socket table
    module = FakeModule()
    result = node_audit.audit(module, params(tmp_path), proc_root=str(root), system='Linux', runner=module.runner)
    assert result['diagnosis'] == 'never_started'


def test_linux_node_with_proc_is_audited_as_before(tmp_path):
    """The contrast: the same empty node with a socket table is a daemon that never started."""
    module = FakeModule()
    result = node_audit.audit(module, params(tmp_path), proc_root=linux_proc(tmp_path), system='Linux', runner=module.runner)
    assert result['diagnosis'] == 'never_started'
    assert result['unsupported_reason'] is None
    assert documented_return_keys() <= set(result)


@pytest.mark.skipif(not os.path.exists('/proc/net/tcp'), reason='needs a Linux /proc')
def test_module_process_on_this_linux_node_is_not_unsupported(tmp_path):
    """The module as Ansible runs it, on this (Linux) machine: the check reads the real /proc."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, 'collections'))
    args = {'port': 1, 'service_manager': 'none', 'health_path': '', 'log_path': str(tmp_path / 'p2p.log'),
            'stamp_path': str(tmp_path / 'stamp.json')}
    proc = subprocess.run([sys.executable, '-m', 'ansible_collections.ringrift.cluster.plugins.modules.node_audit',
                           json.dumps({'ANSIBLE_MODULE_ARGS': args})], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, cwd=str(tmp_path), universal_newlines=True, timeout=60, check=False)
    result = json.loads(proc.stdout)
    assert result['diagnosis'] == 'never_started', result
    assert result['unsupported_reason'] is None
