# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host keys on first use, against throwaway sshd servers on 127.0.0.1 (loopback only).

Two ``sshd`` processes (Debian's openssh-server) with host keys generated in a temporary
directory stand in for two fleet nodes; a third node is reached through the first as its
``ssh_proxy`` jump host. The inventory comes from the collection's own plugin and
``ansible -m ansible.builtin.ping`` runs with the repository's ansible.cfg, as an operator
would run it:

1. first run: every key is accepted and recorded in the fleet's known-hosts file;
2. the first node's sshd comes back with another host key: that node is UNREACHABLE with
   OpenSSH's "Host key for [127.0.0.1]:PORT has changed ... Host key verification failed",
   the node behind it (the same key, checked by the jump's own ssh) is UNREACHABLE too, and
   the second node still answers in the same run.

Skipped where ``/usr/sbin/sshd`` is not installed (``apt-get install openssh-server``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.ringrift.cluster.plugins.plugin_utils import fleet_report
from ansible_collections.ringrift.cluster.tests.helpers import BIN, REPO, ansible_env, free_port

SSHD = '/usr/sbin/sshd'
SSH = '/usr/bin/ssh'
SSH_KEYGEN = '/usr/bin/ssh-keygen'
START_DEADLINE = 10

pytestmark = [
    pytest.mark.skipif(not all(os.path.exists(p) for p in (SSHD, SSH, SSH_KEYGEN)),
                       reason='needs OpenSSH client and server (%s)' % SSHD),
    pytest.mark.skipif(not hasattr(os, 'geteuid') or os.geteuid() != 0,
                       reason='sshd logs a user in only when it runs as root'),
]


def keygen(path):
    subprocess.run([SSH_KEYGEN, '-q', '-t', 'ed25519', '-N', '', '-C', 'ringrift-test', '-f', str(path)],
                   check=True, timeout=30)
    return str(path)


class Sshd(object):
    """One sshd on 127.0.0.1:port with the given host key, logging in root with the test's client key."""

    def __init__(self, workdir, name, port, host_key, authorized_keys):
        self.config = workdir / ('%s_sshd_config' % name)
        self.log = workdir / ('%s_sshd.log' % name)
        self.port = port
        self.config.write_text(textwrap.dedent('''\
            ListenAddress 127.0.0.1
            Port %d
            HostKey %s
            PidFile %s
            AuthorizedKeysFile %s
            StrictModes no
            UsePAM no
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PubkeyAuthentication yes
            AllowTcpForwarding yes
            AcceptEnv LANG LC_*
            Subsystem sftp internal-sftp
            ''' % (port, host_key, workdir / ('%s.pid' % name), authorized_keys)))
        self.proc = None

    def start(self):
        # -D: stay in the foreground (so this test owns the process), -e: log to stderr.
        with open(str(self.log), 'ab') as log:
            self.proc = subprocess.Popen([SSHD, '-D', '-e', '-f', str(self.config)], stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError('sshd exited: %s' % self.log.read_text())
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError('sshd did not listen on 127.0.0.1:%d within %ss' % (self.port, START_DEADLINE))

    def stop(self):
        if self.proc is None:
            return
        # The listener and the per-connection children it forked (its own session).
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def fleet(tmp_path):
    if not os.path.isdir('/run/sshd'):
        os.makedirs('/run/sshd', 0o755)  # sshd's privilege separation directory (the package's unit makes it)
    client_key = keygen(tmp_path / 'id_client')
    authorized = tmp_path / 'authorized_keys'
    authorized.write_text(open(client_key + '.pub').read())
    ports = {'one': free_port(), 'two': free_port()}
    servers = dict((name, Sshd(tmp_path, name, port, keygen(tmp_path / ('host_key_%s' % name)), authorized))
                   for name, port in ports.items())
    known_hosts = tmp_path / 'ringrift_known_hosts'
    (tmp_path / 'hosts.yaml').write_text(textwrap.dedent('''\
        hosts:
          aws-one: {ssh_host: 127.0.0.1, ssh_port: %(one)d, ssh_user: root, ssh_key: %(key)s, status: ready}
          aws-two: {ssh_host: 127.0.0.1, ssh_port: %(two)d, ssh_user: root, ssh_key: %(key)s, status: ready}
          aws-inner: {ssh_host: 127.0.0.1, ssh_port: %(two)d, ssh_user: root, ssh_key: %(key)s, ssh_proxy: aws-one,
                      status: ready}
        ''' % dict(ports, key=client_key)))
    source = tmp_path / 'test.distributed_hosts.yml'
    source.write_text('plugin: ringrift.cluster.distributed_hosts\npath: hosts.yaml\nknown_hosts_file: %s\n' % known_hosts)
    (tmp_path / 'home').mkdir()
    state = {'tmp': tmp_path, 'servers': servers, 'ports': ports, 'known_hosts': str(known_hosts),
             'source': str(source), 'client_key': client_key, 'runs': 0}
    for server in servers.values():
        server.start()
    try:
        yield state
    finally:
        # Close the ControlPersist masters the runs left, then the servers.
        for socket_path in glob.glob(str(tmp_path / 'cp-*' / '*')):
            subprocess.run([SSH, '-o', 'ControlPath=%s' % socket_path, '-O', 'exit', 'unused'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False)
        for server in servers.values():
            server.stop()


def ping(state):
    """``ansible all -m ping`` with the repo's ansible.cfg; a fresh ControlPath directory per run,
    so that a master connection from the run before cannot skip the new key exchange."""
    state['runs'] += 1
    tmp = state['tmp']
    env = ansible_env(tmp, HOME=str(tmp / 'home'), ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp / ('cp-%d' % state['runs'])))
    env.pop('ANSIBLE_HOST_KEY_CHECKING', None)
    proc = subprocess.run([os.path.join(BIN, 'ansible'), 'all', '-i', state['source'], '-m', 'ansible.builtin.ping',
                           '-e', 'ansible_python_interpreter=%s' % sys.executable],
                          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120, check=False)
    # Each host's block: "NAME | STATUS => {...}" up to the next host's.
    starts = list(re.finditer(r'^(\S+) \| [A-Z]+!? =>', proc.stdout, re.M))
    blocks = dict((m.group(1), proc.stdout[m.start():starts[i + 1].start() if i + 1 < len(starts) else len(proc.stdout)])
                  for i, m in enumerate(starts))
    return proc, blocks


def recorded(state, port, known_hosts=None):
    known_hosts = known_hosts or state['known_hosts']
    if not os.path.exists(known_hosts):
        return False
    found = subprocess.run([SSH_KEYGEN, '-F', '[127.0.0.1]:%d' % port, '-f', known_hosts],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=10, check=False)
    return found.returncode == 0 and 'ssh-ed25519' in found.stdout


def test_first_use_is_recorded_and_a_changed_key_fails_only_that_host(fleet):
    # 1. First contact: every key accepted without a prompt and written to the fleet's file.
    assert not os.path.exists(fleet['known_hosts'])
    proc, lines = ping(fleet)
    assert proc.returncode == 0, proc.stdout
    for name in ('aws-one', 'aws-two', 'aws-inner'):
        assert lines[name].startswith('%s | SUCCESS' % name), proc.stdout
    assert recorded(fleet, fleet['ports']['one']) and recorded(fleet, fleet['ports']['two'])
    # Nothing went to the user's own known_hosts (ssh finds ~ in the password database, not in $HOME).
    own = os.path.join(pwd.getpwuid(os.getuid()).pw_dir, '.ssh', 'known_hosts')
    assert not recorded(fleet, fleet['ports']['one'], own) and not recorded(fleet, fleet['ports']['two'], own)

    # 2. The first node comes back with another host key (a replaced instance, or someone in between).
    server = fleet['servers']['one']
    server.stop()
    fresh_key = keygen(fleet['tmp'] / 'host_key_one_new')
    server.config.write_text(re.sub(r'^HostKey .*$', 'HostKey %s' % fresh_key, server.config.read_text(), flags=re.M))
    server.start()
    before = open(fleet['known_hosts']).read()
    proc, lines = ping(fleet)
    assert proc.returncode != 0
    one = lines['aws-one']
    assert one.startswith('aws-one | UNREACHABLE!'), proc.stdout
    assert 'Host key verification failed' in one
    assert 'Host key for [127.0.0.1]:%d has changed' % fleet['ports']['one'] in one
    # The host behind it fails too: its jump host's key is checked in the same file, with the same
    # policy. Its message cannot say why: with ControlPersist, OpenSSH sends the ProxyCommand's
    # stderr (the jump's "Host key verification failed") to /dev/null; the jump host's own line says it.
    inner = lines['aws-inner']
    assert inner.startswith('aws-inner | UNREACHABLE!'), proc.stdout
    assert 'Connection closed' in inner, inner
    # The other node in the same run is untouched.
    assert lines['aws-two'].startswith('aws-two | SUCCESS'), proc.stdout
    # The fleet report turns OpenSSH's banner into what to do, naming the address and the file.
    result = json.JSONDecoder().raw_decode(one.split('=>', 1)[1].strip())[0]
    # The host's variables as the audit's report action sees them (its known_hosts_file is not the default).
    inventory = subprocess.run([os.path.join(BIN, 'ansible-inventory'), '-i', fleet['source'], '--host', 'aws-one'],
                               cwd=REPO, env=ansible_env(fleet['tmp']), capture_output=True, text=True, timeout=120,
                               check=True)
    record = fleet_report.host_record('aws-one', json.loads(inventory.stdout), result)
    assert (record['diagnosis'], record['error_kind']) == ('unreachable', 'host_key_changed')
    assert "ssh-keygen -R '[127.0.0.1]:%d' -f %s)" % (fleet['ports']['one'], fleet['known_hosts']) in record['last_error']
    # The changed key was not written over the recorded one.
    assert open(fleet['known_hosts']).read() == before
