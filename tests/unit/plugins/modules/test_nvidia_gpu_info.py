# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the nvidia_gpu_info module as a process against the nvidia-smi test double.

Each test runs ``python -m ...nvidia_gpu_info '<json args>'`` (how ansible-core
lets a module be invoked directly) with the double's scenario in the
environment, so the module really executes nvidia-smi, parses what it prints
and classifies it.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys

import pytest

__metaclass__ = type

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))
FIXTURES = os.path.join(REPO, 'tests', 'fixtures', 'nvidia-smi')
DOUBLE = os.path.join(FIXTURES, 'nvidia-smi')
TORCH_STUB = os.path.join(FIXTURES, 'torch_stub')
MODULE = 'ansible_collections.ringrift.cluster.plugins.modules.nvidia_gpu_info'


def run_module(args, scenario=None, path_dirs=(), extra_env=None):
    env = dict(os.environ)
    env.pop('RINGRIFT_NVIDIA_SMI_SCENARIO', None)
    env['PYTHONPATH'] = os.path.join(REPO, 'collections')
    # Point the double at a scenario file that does not exist unless a scenario is given.
    env['RINGRIFT_NVIDIA_SMI_SCENARIO_FILE'] = os.path.join(FIXTURES, 'no-such-scenario-file')
    env['PATH'] = os.pathsep.join(list(path_dirs) + ['/usr/local/bin', '/bin'])
    if scenario is not None:
        env['RINGRIFT_NVIDIA_SMI_SCENARIO'] = scenario
    env.update(extra_env or {})
    proc = subprocess.run([sys.executable, '-m', MODULE, json.dumps({'ANSIBLE_MODULE_ARGS': args})],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
                          universal_newlines=True, timeout=120, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('module printed no JSON (rc=%s): %s %s' % (proc.returncode, proc.stdout, proc.stderr))
    return result


def with_double(**args):
    args.setdefault('executable', DOUBLE)
    return args


def test_eight_rtx_4090():
    res = run_module(with_double(expected_count=8, expected_model='RTX 4090'), '8x RTX 4090')
    assert res.get('failed') is not True, res['msg']
    assert res['changed'] is False
    assert res['present'] is True and res['driver_ok'] is True
    assert res['diagnosis'] == 'ok'
    assert res['count'] == 8 and res['count_matches'] is True and res['model_matches'] is True
    assert res['driver_version'] == '550.54.15'
    assert res['cuda_version'] == '12.4'
    assert [g['index'] for g in res['gpus']] == list(range(8))
    assert all(g['name'] == 'NVIDIA GeForce RTX 4090' and g['memory_total_mib'] == 24564 for g in res['gpus'])
    assert set(res['gpus'][0]) == set(['index', 'name', 'uuid', 'memory_total_mib', 'memory_used_mib',
                                       'utilization_pct', 'temperature_c', 'pci_bus_id'])
    assert res['torch'] is None
    assert res['query_errors'] == []


def test_count_mismatch_fails_by_default():
    res = run_module(with_double(expected_count=8, expected_model='RTX 5090'), '2x RTX 5090')
    assert res['failed'] is True
    assert res['diagnosis'] == 'count_mismatch'
    assert res['count'] == 2 and res['count_matches'] is False
    assert res['driver_version'] == '570.133.07' and res['cuda_version'] == '12.8'


def test_mismatch_without_fail_on_mismatch_returns_facts():
    res = run_module(with_double(expected_count=8, fail_on_mismatch=False), '2x RTX 5090')
    assert res.get('failed') is not True
    assert res['diagnosis'] == 'count_mismatch'


def test_model_mismatch():
    res = run_module(with_double(expected_count=1, expected_model='H100 SXM', fail_on_mismatch=False), 'H100 PCIe')
    assert res['gpus'][0]['name'] == 'NVIDIA H100 PCIe'
    assert res['diagnosis'] == 'model_mismatch'
    assert res['model_matches'] is False


def test_h100_sxm_inventory_matches_the_sxm_name():
    res = run_module(with_double(expected_count=1, expected_model='H100 SXM'), 'H100 SXM')
    assert res['diagnosis'] == 'ok', res['msg']
    assert res['gpus'][0]['name'] == 'NVIDIA H100 80GB HBM3'
    assert 'not checked' in res['model_note']


def test_vgpu():
    res = run_module(with_double(expected_count=1, expected_model='A100D-20C (vGPU)'), '1x A100D-20C (vGPU)')
    assert res['diagnosis'] == 'ok', res['msg']
    assert res['gpus'][0]['temperature_c'] is None
    assert res['cuda_version'] == '12.2'


def test_no_driver():
    res = run_module(with_double(expected_count=8), 'no-driver')
    assert res['failed'] is True
    assert res['diagnosis'] == 'driver_unreachable'
    assert res['present'] is True and res['driver_ok'] is False
    assert res['driver_failure_kind'] == 'communication_failure'
    assert res['driver_error'].startswith("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    assert res['gpus'] == [] and res['cuda_version'] is None


def test_version_mismatch():
    res = run_module(with_double(fail_on_mismatch=False), 'version-mismatch')
    assert res['diagnosis'] == 'driver_unreachable'
    assert res['driver_failure_kind'] == 'version_mismatch'


def test_no_devices():
    res = run_module(with_double(fail_on_mismatch=False), 'no-devices')
    assert res['driver_ok'] is True
    assert res['diagnosis'] == 'count_mismatch'
    assert res['count'] == 0


def test_gpu_lost():
    res = run_module(with_double(expected_count=8, fail_on_mismatch=False), 'gpu-lost')
    assert res['diagnosis'] == 'count_mismatch'
    assert res['count'] == 7
    assert res['query_errors'] == ['Unable to determine the device handle for GPU0000:A1:00.0: Unknown Error']


def test_gpu_lost_without_expected_count_is_a_count_mismatch():
    # A GPU that fell off the bus is a missing GPU, inventory count or not (node_audit and the converge
    # re-check say the same).
    res = run_module(with_double(fail_on_mismatch=False), 'gpu-lost')
    assert res['diagnosis'] == 'count_mismatch'
    assert res['msg'].startswith('nvidia-smi reports 7 GPU(s) and cannot reach 1 more')


def test_hung_nvidia_smi_times_out():
    res = run_module(with_double(timeout=1, fail_on_mismatch=False), 'hang')
    assert res['diagnosis'] == 'driver_unreachable'
    assert res['driver_failure_kind'] == 'timeout'


def test_no_scenario_is_an_error_not_ok():
    res = run_module(with_double(fail_on_mismatch=False))
    assert res['diagnosis'] == 'error'
    assert 'rc=99' in res['msg']


def test_not_installed(tmp_path):
    res = run_module({'fail_on_mismatch': False}, '8x RTX 4090', path_dirs=[str(tmp_path)])
    # /usr/bin/nvidia-smi does not exist on the test machine either
    if os.path.exists('/usr/bin/nvidia-smi') or os.path.exists('/usr/local/nvidia/bin/nvidia-smi'):
        pytest.skip('this machine has a real nvidia-smi')
    assert res['present'] is False
    assert res['diagnosis'] == 'no_nvidia_smi'
    assert res['executable'] is None


def test_missing_explicit_path():
    res = run_module({'executable': '/nonexistent/nvidia-smi', 'fail_on_mismatch': False}, '8x RTX 4090')
    assert res['diagnosis'] == 'no_nvidia_smi'


def test_found_on_path_by_name(tmp_path):
    link = tmp_path / 'nvidia-smi'
    link.symlink_to(DOUBLE)
    res = run_module({'expected_count': 2}, '2x L40S', path_dirs=[str(tmp_path)])
    assert res['diagnosis'] == 'ok'
    assert res['executable'] == str(link)


def test_torch_agrees():
    res = run_module(with_double(expected_count=2, check_torch=True, python=sys.executable), '2x RTX 5090',
                     path_dirs=[FIXTURES], extra_env={'PYTHONPATH': os.pathsep.join([os.path.join(REPO, 'collections'), TORCH_STUB])})
    assert res['diagnosis'] == 'ok', res['msg']
    assert res['torch']['available'] is True
    assert res['torch']['device_count'] == 2
    assert res['torch']['names'] == ['NVIDIA GeForce RTX 5090'] * 2


@pytest.mark.parametrize('torch_scenario', ['cpu-only', 'devices=1'])
def test_torch_disagrees(torch_scenario):
    res = run_module(with_double(expected_count=2, check_torch=True, python=sys.executable, fail_on_mismatch=False),
                     '2x RTX 5090', path_dirs=[FIXTURES],
                     extra_env={'PYTHONPATH': os.pathsep.join([os.path.join(REPO, 'collections'), TORCH_STUB]),
                                'RINGRIFT_TORCH_STUB_SCENARIO': torch_scenario})
    assert res['diagnosis'] == 'torch_mismatch'


def test_torch_missing():
    res = run_module(with_double(expected_count=2, check_torch=True, python=sys.executable, fail_on_mismatch=False),
                     '2x RTX 5090', extra_env={'PYTHONNOUSERSITE': '1'})
    if res['torch'] and res['torch']['error'] is None:
        pytest.skip('torch is importable here')
    assert res['diagnosis'] == 'torch_mismatch'
    assert 'torch' in res['torch']['error']


def test_check_mode_runs_the_same_checks():
    res = run_module(with_double(expected_count=8, _ansible_check_mode=True), '8x RTX 4090')
    assert res['diagnosis'] == 'ok'
    assert res['changed'] is False
