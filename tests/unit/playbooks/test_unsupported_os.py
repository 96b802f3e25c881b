# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml and audit.yml with a host the collection cannot manage (a Mac), through the inventory plugin.

Both hosts are ``local-*`` on a loopback address. The Linux one gets ``ansible_connection: local``;
the Mac gets SSH to a loopback port where nothing listens, so a play that contacted it would
fail there (unreachable) instead of touching this machine. site.yml is listed (``--list-hosts``)
and run limited to the Mac, where only its controller-side message may run; audit.yml runs for
real, read-only, on this machine for the Linux host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.ringrift.cluster.tests.helpers import BIN, REPO, ansible_env, free_port

MAC_REASON = ('macOS (gpu "M3 Max/Ultra (MPS)" is an Apple GPU): the collection manages Linux nodes only '
              '(it reads /proc and runs the daemon under systemd or supervisor)')


@pytest.fixture
def fleet(tmp_path):
    (tmp_path / 'hosts.yaml').write_text(textwrap.dedent('''
        p2p_voters: [local-linux]
        hosts:
          local-linux:
            ssh_host: localhost
            ringrift_path: %s/ai-service
            p2p_enabled: true
            p2p_port: %d
            status: ready
          local-mac:
            ssh_host: 127.0.0.1
            ssh_port: %d
            ringrift_path: ~/Development/RingRift/ai-service
            gpu: M3 Max/Ultra (MPS)
            p2p_enabled: true
            status: ready
    ''' % (tmp_path, free_port(), free_port())))
    source = tmp_path / 'test.distributed_hosts.yml'
    source.write_text('plugin: ringrift.cluster.distributed_hosts\npath: hosts.yaml\n')
    return str(source)


def playbook(tmp_path, source, name, *extra):
    env = ansible_env(tmp_path, ANSIBLE_TIMEOUT='5', RINGRIFT_REPORT_DIR=str(tmp_path / 'reports'))
    cmd = [os.path.join(BIN, 'ansible-playbook'), '-i', source, os.path.join(REPO, 'playbooks', name),
           '-e', 'ansible_python_interpreter=%s' % sys.executable] + list(extra)
    return subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300, check=False)


def plays_and_hosts(output):
    """``--list-hosts`` output -> [(play name, [hosts])]."""
    plays = []
    for block in re.split(r'\n\s*play #\d+ ', output)[1:]:
        name = re.match(r'\((.*?)\): (.*?)\s+TAGS', block).group(2)
        hosts = re.search(r'hosts \(\d+\):\n((?:\s+\S+\n?)*)', block)
        plays.append((name, hosts.group(1).split() if hosts else []))
    return plays


def test_site_yml_leaves_the_mac_out_of_every_converge_play(tmp_path, fleet):
    proc = playbook(tmp_path, fleet, 'site.yml', '--list-hosts')
    assert proc.returncode == 0, proc.stdout
    plays = plays_and_hosts(proc.stdout)
    assert plays[0] == ('Leave out the hosts the collection cannot manage', ['local-mac'])
    # The audit site.yml ends with (alert targets only) reports the Mac, without contacting it (below).
    converge = [(name, hosts) for name, hosts in plays[1:] if name != 'Audit the P2P fleet']
    assert len(converge) == 6, plays  # find, converge, restart x2, verify, summary
    for name, hosts in converge:
        assert 'local-mac' not in hosts, (name, proc.stdout)
    assert ('Find the nodes that are still converged', ['local-linux']) in plays
    assert ('Verify every daemon holds its port and answers', ['local-linux']) in plays


def test_site_yml_says_why_in_one_line(tmp_path, fleet):
    # Only the first play: --limit to the Mac, and every other play has no host to run on.
    proc = playbook(tmp_path, fleet, 'site.yml', '--limit', 'local-mac')
    assert proc.returncode == 0, proc.stdout
    assert '"msg": "local-mac: not converged, unsupported_os: %s"' % MAC_REASON.replace('"', '\\"') in proc.stdout
    # The one task that ran is the debug; the trailing audit's tasks (alert targets only) are all skipped.
    assert re.search(r'^local-mac\s+: ok=1\s+changed=0\s+unreachable=0\s+failed=0', proc.stdout, re.M), proc.stdout


def test_audit_counts_the_mac_as_unsupported_os_without_contacting_it(tmp_path, fleet):
    proc = playbook(tmp_path, fleet, 'audit.yml', '-e', 'audit_fail_on_quorum_loss=false')
    assert proc.returncode == 0, proc.stdout
    assert re.search(r'TASK \[Inspect the node in one module call.*?\n(?:.*\n)*?skipping: \[local-mac\]', proc.stdout), proc.stdout
    reports = [n for n in os.listdir(str(tmp_path / 'reports')) if n.endswith('.json')]
    with open(str(tmp_path / 'reports' / reports[0])) as handle:
        report = json.load(handle)
    hosts = dict((h['name'], h) for h in report['hosts'])
    assert hosts['local-mac']['diagnosis'] == 'unsupported_os'
    assert hosts['local-mac']['unsupported_reason'] == MAC_REASON
    assert hosts['local-linux']['diagnosis'] == 'never_started'  # nothing runs here: the Linux node is audited
    assert (report['summary']['unsupported_os'], report['summary']['managed'], report['summary']['total']) == (1, 1, 2)
    assert all('local-mac' not in r['hosts'] for r in report['recommendations'])
