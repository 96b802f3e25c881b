# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What converge_stamp and converge_stamp_info show (their JSON result, what -v prints) and store confirms no token guess.

The modules run as processes (``python -m ... '<json args>'``); the fingerprint comes from the real
converge_fingerprint filter over settings that hold the cluster token, as site.yml builds it.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import subprocess
import sys

from ansible_collections.ringrift.cluster.plugins.filter.converge_fingerprint import converge_fingerprint
from ansible_collections.ringrift.cluster.tests.helpers import free_port

__metaclass__ = type

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))
MODULES = 'ansible_collections.ringrift.cluster.plugins.modules.'
TOKEN = 'rr-cluster-token-fedcba9876543210'


def fingerprint(token):
    return converge_fingerprint({'inventory_hostname': 'n1', 'ringrift_p2p_port': 8770, 'p2p_daemon_auth_token': token,
                                 'token_file_sha256': hashlib.sha256(token.encode()).hexdigest()}, with_code=False)


def node_conf(token):
    return "NODE_ID=n1\nRINGRIFT_CLUSTER_AUTH_TOKEN='%s'\n" % token


def run_module(name, args):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, 'collections'))
    proc = subprocess.run([sys.executable, '-m', MODULES + name, json.dumps({'ANSIBLE_MODULE_ARGS': args})],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
                          universal_newlines=True, timeout=120, check=False)
    json.loads(proc.stdout)  # it answered
    return proc.stdout


def test_nothing_shown_or_stored_confirms_a_token_guess(tmp_path):
    conf = tmp_path / 'node.conf'
    conf.write_text(node_conf(TOKEN))
    os.chmod(str(conf), 0o600)
    stamp_path = str(tmp_path / 'state' / 'converge-stamp.json')
    listener = {'port': free_port(), 'service_name': 'ringrift-p2p', 'service_manager': 'none', 'health_path': '/health'}
    shown = run_module('converge_stamp', {'path': stamp_path, 'fingerprint': fingerprint(TOKEN), 'files': [str(conf)],
                                          'python': sys.executable, 'imports': ['json'], 'listener': listener})
    assert json.loads(shown)['changed'] is True, shown
    shown += run_module('converge_stamp_info', {'path': stamp_path, 'fingerprint': fingerprint(TOKEN)})
    with open(stamp_path) as handle:
        stored = handle.read()
    # What one computes from a right guess of the token plus what else is known of the node:
    guesses = [fingerprint(TOKEN), fingerprint(TOKEN).split(':', 1)[1], hashlib.sha256(node_conf(TOKEN).encode()).hexdigest(),
               hashlib.sha256(TOKEN.encode()).hexdigest(), TOKEN]
    for guess in guesses:
        assert guess not in shown
        assert guess not in stored


def test_the_recheck_still_sees_a_token_change(tmp_path):
    stamp_path = str(tmp_path / 'state' / 'converge-stamp.json')
    listener = {'port': free_port(), 'service_name': 'ringrift-p2p', 'service_manager': 'none', 'health_path': '/health'}
    run_module('converge_stamp', {'path': stamp_path, 'fingerprint': fingerprint(TOKEN), 'python': sys.executable,
                                  'listener': listener})
    same = json.loads(run_module('converge_stamp_info', {'path': stamp_path, 'fingerprint': fingerprint(TOKEN)}))
    rotated = json.loads(run_module('converge_stamp_info', {'path': stamp_path, 'fingerprint': fingerprint(TOKEN + 'x')}))
    changed = [r for r in rotated['reasons'] if r.startswith('settings or collection code changed')]
    assert not [r for r in same['reasons'] if r.startswith('settings or collection code changed')], same['reasons']
    assert len(changed) == 1, rotated['reasons']
