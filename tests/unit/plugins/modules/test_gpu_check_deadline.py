# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The three callers of the GPU check, run as processes against the nvidia-smi test double.

nvidia_gpu_info, node_audit (audit.yml) and converge_stamp_info (site.yml's fast path) all run
nvidia_smi.check_gpus: on the same node they give the same verdict, and each returns within its
GPU deadline when nvidia-smi hangs (the double's ``hang`` scenario ignores SIGTERM, like nvidia-smi
on a wedged driver; ``hang-unkillable`` also leaves a process holding the output pipes).

Each elapsed time is compared with the same module's run on a healthy scenario in the same test,
so the module's own start-up cost (slow on a loaded machine) is not counted against the deadline.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.ringrift.cluster.tests.helpers import free_port

__metaclass__ = type

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))
DOUBLE = os.path.join(REPO, 'tests', 'fixtures', 'nvidia-smi', 'nvidia-smi')
MODULES = 'ansible_collections.ringrift.cluster.plugins.modules.'
HEALTHY = '8x RTX 4090'
# Longer than any deadline here, short enough that a process left behind by hang-unkillable soon goes.
HANG_SECONDS = 20
# Slack on top of a deadline: killing and reaping (nvidia_smi.REAP_GRACE is kept inside the deadline)
# plus scheduling noise on a shared 2-core machine.
SLACK = 1.0


def run_module(name, args, scenario):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.path.join(REPO, 'collections')
    env['RINGRIFT_NVIDIA_SMI_SCENARIO'] = scenario
    env['RINGRIFT_NVIDIA_SMI_HANG_SECONDS'] = str(HANG_SECONDS)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, '-m', MODULES + name, json.dumps({'ANSIBLE_MODULE_ARGS': args})],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
                          universal_newlines=True, timeout=HANG_SECONDS + 40, check=False)
    elapsed = time.monotonic() - started
    try:
        return json.loads(proc.stdout), elapsed
    except ValueError:
        raise AssertionError('%s printed no JSON (rc=%s): %s %s' % (name, proc.returncode, proc.stdout, proc.stderr))


def gpu_info(scenario, timeout, expected_count=8):
    result, elapsed = run_module('nvidia_gpu_info', {'executable': DOUBLE, 'expected_count': expected_count,
                                                     'timeout': timeout, 'fail_on_mismatch': False}, scenario)
    return result['diagnosis'], result, elapsed


def audit(tmp_path, scenario, timeout, expected_count=8):
    result, elapsed = run_module('node_audit', {
        'port': free_port(), 'service_manager': 'none', 'health_path': '', 'log_path': str(tmp_path / 'p2p.log'),
        'stamp_path': str(tmp_path / 'no-stamp.json'), 'gpu': True, 'nvidia_smi': DOUBLE,
        'expected_gpu_count': expected_count, 'gpu_timeout': timeout}, scenario)
    assert result.get('failed') is not True, result
    return result['gpu']['diagnosis'], result, elapsed


def converge_recheck(tmp_path, scenario, timeout, expected_count=8):
    stamp_path = str(tmp_path / 'state' / 'converge-stamp.json')
    if not os.path.exists(stamp_path):
        written, dummy = run_module('converge_stamp', {
            'path': stamp_path, 'fingerprint': 'sha256:' + '0' * 64, 'files': [], 'python': sys.executable,
            'imports': ['json'],
            'listener': {'port': free_port(), 'service_name': 'ringrift-p2p', 'service_manager': 'none',
                         'health_path': '/health'},
            'gpu': {'executable': DOUBLE, 'expected_count': expected_count, 'timeout': timeout,
                    'fail_on_mismatch': True}}, HEALTHY)
        assert written.get('failed') is not True, written
    result, elapsed = run_module('converge_stamp_info', {'path': stamp_path, 'fingerprint': 'sha256:' + '0' * 64},
                                 scenario)
    assert result.get('failed') is not True, result
    return result['gpu']['diagnosis'], result, elapsed


CALLERS = {
    'nvidia_gpu_info': lambda tmp_path, scenario, timeout, **kw: gpu_info(scenario, timeout, **kw),
    'node_audit': audit,
    'converge_stamp_info': converge_recheck,
}


@pytest.mark.parametrize('caller', sorted(CALLERS))
@pytest.mark.parametrize('scenario', ['hang', 'hang-unkillable'])
def test_each_caller_returns_within_its_gpu_deadline_when_nvidia_smi_hangs(tmp_path, caller, scenario):
    check = CALLERS[caller]
    deadline = 3
    diagnosis, dummy, baseline = check(tmp_path, HEALTHY, deadline)
    assert diagnosis == 'ok'
    diagnosis, result, elapsed = check(tmp_path, scenario, deadline)
    assert diagnosis == 'driver_unreachable', result
    assert elapsed - baseline < deadline + SLACK, (elapsed, baseline)


def test_the_deadline_is_total_not_per_command():
    # Every nvidia-smi call answers within the deadline (3 s of 4 s) but the query and the version banner
    # together would not (6 s): the check stops at the deadline and leaves the versions null.
    deadline = 4
    diagnosis, dummy, baseline = gpu_info(HEALTHY, deadline)
    assert diagnosis == 'ok'
    diagnosis, result, elapsed = gpu_info('slow:3:' + HEALTHY, deadline)
    assert diagnosis == 'ok', result['msg']
    assert result['cuda_version'] is None
    assert result['driver_version'] == '550.54.15'  # from the query rows
    assert elapsed - baseline < deadline + SLACK, (elapsed, baseline)


@pytest.mark.parametrize('scenario,expected_count,diagnosis', [
    ('no-devices', 8, 'count_mismatch'),
    ('no-devices', 0, 'count_mismatch'),
    ('gpu-lost', 8, 'count_mismatch'),
    ('gpu-lost', 0, 'count_mismatch'),
    ('no-driver', 8, 'driver_unreachable'),
    ('2x RTX 4090', 8, 'count_mismatch'),
    ('8x RTX 4090', 8, 'ok'),
])
def test_the_three_callers_agree(tmp_path, scenario, expected_count, diagnosis):
    verdicts = {}
    for caller in sorted(CALLERS):
        workdir = tmp_path / caller
        workdir.mkdir()
        verdicts[caller] = CALLERS[caller](workdir, scenario, 10, expected_count=expected_count)[0]
    assert verdicts == dict((caller, diagnosis) for caller in CALLERS)
