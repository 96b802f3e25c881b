# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils/nvidia_smi.py on the sample outputs in tests/fixtures/nvidia-smi/samples."""

from __future__ import absolute_import, division, print_function

import os
import time

import pytest

from ansible_collections.ringrift.cluster.plugins.module_utils import nvidia_smi as ns

__metaclass__ = type

SAMPLES = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'fixtures', 'nvidia-smi', 'samples')


def sample(name):
    with open(os.path.join(SAMPLES, name)) as handle:
        return handle.read()


# --- CSV query -------------------------------------------------------------

def test_query_args_are_the_documented_command():
    assert ns.query_args() == [
        '--query-gpu=index,name,uuid,memory.total,memory.used,utilization.gpu,temperature.gpu,driver_version,pci.bus_id',
        '--format=csv,noheader,nounits',
    ]


def test_eight_rtx_4090_rows():
    gpus, bad = ns.parse_query_csv(sample('query-8x-rtx4090.csv'))
    assert bad == []
    assert [g['index'] for g in gpus] == list(range(8))
    assert set(g['name'] for g in gpus) == set(['NVIDIA GeForce RTX 4090'])
    first = gpus[0]
    assert first == {
        'index': 0,
        'name': 'NVIDIA GeForce RTX 4090',
        'uuid': 'GPU-3f0e8b6c-2a1d-4c5e-9f7a-1b2c3d4e5f60',
        'memory_total_mib': 24564,
        'memory_used_mib': 21877,
        'utilization_pct': 98,
        'temperature_c': 71,
        'driver_version': '550.54.15',
        'pci_bus_id': '00000000:01:00.0',
    }
    assert gpus[7]['memory_used_mib'] == 1
    assert gpus[7]['pci_bus_id'] == '00000000:E1:00.0'
    assert len(set(g['uuid'] for g in gpus)) == 8


def test_h100_sxm_rows():
    gpus, bad = ns.parse_query_csv(sample('query-8x-h100-sxm.csv'))
    assert bad == []
    assert len(gpus) == 8
    assert gpus[3]['name'] == 'NVIDIA H100 80GB HBM3'
    assert gpus[3]['memory_total_mib'] == 81559
    assert gpus[3]['pci_bus_id'] == '00000000:5D:00.0'


def test_placeholders_and_ragged_whitespace():
    gpus, bad = ns.parse_query_csv(sample('query-a100-na-fields.csv'))
    assert bad == []
    assert len(gpus) == 4
    assert gpus[0]['utilization_pct'] is None          # [N/A]
    assert gpus[1]['memory_used_mib'] is None          # [Not Supported]
    assert gpus[1]['temperature_c'] is None            # [N/A]
    assert gpus[1]['name'] == 'NVIDIA A100-SXM4-80GB'  # no spaces after the commas
    assert gpus[2]['index'] == 2                       # padded on both sides
    assert gpus[2]['name'] == 'NVIDIA A100-SXM4-80GB'
    assert gpus[2]['pci_bus_id'] == '00000000:47:00.0'
    assert gpus[2]['memory_total_mib'] == 81920
    assert gpus[3]['uuid'] is None


def test_vgpu_row():
    gpus, bad = ns.parse_query_csv(sample('query-vgpu-a100d-20c.csv'))
    assert bad == []
    assert len(gpus) == 1
    assert gpus[0]['name'] == 'GRID A100D-20C'
    assert gpus[0]['memory_total_mib'] == 20480
    assert gpus[0]['temperature_c'] is None
    assert gpus[0]['driver_version'] == '535.161.07'


def test_mixed_workstation_rows():
    gpus, bad = ns.parse_query_csv(sample('query-workstation-mixed.csv'))
    assert bad == []
    assert [g['name'] for g in gpus] == ['NVIDIA RTX A6000', 'NVIDIA L40S', 'NVIDIA A40']
    assert [g['memory_total_mib'] for g in gpus] == [49140, 46068, 46068]


def test_gpu_fallen_off_the_bus_is_a_bad_line_not_a_gpu():
    gpus, bad = ns.parse_query_csv(sample('query-gpu-lost.txt'))
    assert [g['index'] for g in gpus] == [0, 1, 2, 3, 4, 6, 7]
    assert bad == ['Unable to determine the device handle for GPU0000:A1:00.0: Unknown Error']


@pytest.mark.parametrize('text', ['', '\n', '   \n\n'])
def test_empty_output(text):
    assert ns.parse_query_csv(text) == ([], [])


@pytest.mark.parametrize('text', [
    'hello world',
    'a, b, c',
    'x, NVIDIA GeForce RTX 4090, GPU-1, 24564, 1, 0, 30, 550.54.15, 00000000:01:00.0',
    'index, name, uuid, memory.total [MiB], memory.used [MiB], utilization.gpu [%], temperature.gpu, driver_version, pci.bus_id',
    '\x00\x01\x02',
    '0, NVIDIA A40, GPU-truncated',
    '0, NVIDIA A40, GPU-a, 46068, 0, 0, 30, 535.183.01, 00000000:01:00.0, extra',
])
def test_garbage_is_not_a_gpu(text):
    gpus, bad = ns.parse_query_csv(text)
    assert gpus == []
    assert bad == [text.strip()]


def test_driver_failure_text_is_not_parsed_as_gpus():
    gpus, bad = ns.parse_query_csv(sample('fail-no-driver-rc9.txt'))
    assert gpus == []
    assert len(bad) == 1


def test_rows_come_back_in_index_order():
    text = '1, NVIDIA A40, GPU-b, 46068, 0, 0, 30, 535.183.01, 00000000:41:00.0\n' \
           '0, NVIDIA A40, GPU-a, 46068, 0, 0, 30, 535.183.01, 00000000:01:00.0\n'
    gpus, dummy = ns.parse_query_csv(text)
    assert [g['uuid'] for g in gpus] == ['GPU-a', 'GPU-b']


@pytest.mark.parametrize('raw,kind,expected', [
    (' 24564 ', 'int', 24564),
    ('24564 MiB', 'int', 24564),
    ('35 %', 'int', 35),
    ('[N/A]', 'int', None),
    ('[Not Supported]', 'int', None),
    ('[Unknown Error]', 'int', None),
    ('[Insufficient Permissions]', 'str', None),
    ('N/A', 'str', None),
    ('', 'str', None),
    ('abc', 'int', None),
    ('71.5', 'float', 71.5),
    (' NVIDIA L40S ', 'str', 'NVIDIA L40S'),
])
def test_parse_value(raw, kind, expected):
    assert ns.parse_value(raw, kind) == expected


# --- versions --------------------------------------------------------------

@pytest.mark.parametrize('name,driver,cuda', [
    ('smi-550-rtx4090.txt', '550.54.15', '12.4'),
    ('smi-535-a100.txt', '535.104.05', '12.2'),
    ('smi-470-legacy.txt', '470.82.01', '11.4'),
    ('smi-cuda-na.txt', '550.54.15', None),
])
def test_versions_from_the_banner(name, driver, cuda):
    assert ns.parse_header_versions(sample(name)) == (driver, cuda)


def test_banner_without_padding():
    line = '| NVIDIA-SMI 570.133.07 Driver Version: 570.133.07 CUDA Version: 12.8|'
    assert ns.parse_header_versions(line) == ('570.133.07', '12.8')


@pytest.mark.parametrize('text', ['', 'No devices were found', sample('smi-q-h100.txt'), sample('fail-no-driver-rc9.txt')])
def test_no_banner(text):
    assert ns.parse_header_versions(text) == (None, None)


@pytest.mark.parametrize('name,driver,cuda', [
    ('smi-q-h100.txt', '550.90.07', '12.4'),
    ('smi-q-vgpu.txt', '535.161.07', '12.2'),
])
def test_versions_from_q(name, driver, cuda):
    assert ns.parse_q_versions(sample(name)) == (driver, cuda)


@pytest.mark.parametrize('text', ['', sample('smi-550-rtx4090.txt'), 'CUDA Version : N/A\n'])
def test_no_cuda_in_q(text):
    assert ns.parse_q_versions(text)[1] is None


# --- failure classification ------------------------------------------------

@pytest.mark.parametrize('name,rc,kind', [
    ('fail-no-driver-rc9.txt', 9, 'communication_failure'),
    ('fail-version-mismatch-rc18.txt', 18, 'version_mismatch'),
    ('fail-nvml-unknown-rc255.txt', 255, 'nvml_init_failed'),
    ('fail-libnvidia-ml-missing-rc12.txt', 12, 'library_missing'),
])
def test_driver_failures(name, rc, kind):
    text = sample(name)
    diagnosis, got_kind, first = ns.classify_failure(rc, text)
    assert diagnosis == 'driver_unreachable'
    assert got_kind == kind
    assert first == text.strip().splitlines()[0]
    assert ns.driver_failure_hint(kind) != ns.driver_failure_hint('unknown')


def test_no_driver_message_exact():
    diagnosis, kind, first = ns.classify_failure(9, sample('fail-no-driver-rc9.txt'))
    assert first == ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
                     "Make sure that the latest NVIDIA driver is installed and running.")


def test_driver_failure_on_stderr():
    assert ns.classify_failure(18, '', sample('fail-version-mismatch-rc18.txt'))[0] == 'driver_unreachable'


def test_rc_9_without_text_is_still_driver_unreachable():
    assert ns.classify_failure(9, '', '') == ('driver_unreachable', 'communication_failure', None)


def test_no_devices():
    assert ns.classify_failure(6, sample('fail-no-devices-rc6.txt')) == ('ok', 'no_devices', 'No devices were found')


@pytest.mark.parametrize('rc,text', [
    (0, sample('query-8x-rtx4090.csv')),
    (15, sample('query-gpu-lost.txt')),
    (2, 'Field "foo" is not a valid field to query.'),
    (0, ''),
])
def test_not_a_driver_failure(rc, text):
    assert ns.classify_failure(rc, text) == (None, None, None)


# --- model matching --------------------------------------------------------

@pytest.mark.parametrize('text,tokens', [
    ('NVIDIA GeForce RTX 4090', ['RTX', '4090']),
    ('NVIDIA A100-SXM4-80GB', ['A100', 'SXM4', '80GB']),
    ('A100D-20C (vGPU)', ['A100D', '20C']),
    ('GRID A100D-20C', ['A100D', '20C']),
    ('  h100   sxm ', ['H100', 'SXM']),
    ('Tesla V100-SXM2-16GB', ['V100', 'SXM2', '16GB']),
    ('', []),
    (None, []),
])
def test_model_tokens(text, tokens):
    assert ns.model_tokens(text) == tokens


@pytest.mark.parametrize('expected,reported', [
    ('RTX 4090', 'NVIDIA GeForce RTX 4090'),
    ('rtx 4090', 'NVIDIA GeForce RTX 4090'),
    ('RTX4090', 'NVIDIA GeForce RTX 4090'),
    ('GeForce RTX 4090', 'NVIDIA GeForce RTX 4090'),
    ('4090', 'NVIDIA GeForce RTX 4090'),
    ('RTX 5090', 'NVIDIA GeForce RTX 5090'),
    ('H100', 'NVIDIA H100 80GB HBM3'),
    ('H100 80GB', 'NVIDIA H100 80GB HBM3'),
    ('H100 PCIe', 'NVIDIA H100 PCIe'),
    ('A100', 'NVIDIA A100-SXM4-80GB'),
    ('A100 SXM', 'NVIDIA A100-SXM4-80GB'),
    ('A100-SXM4-80GB', 'NVIDIA A100-SXM4-80GB'),
    ('A100 80GB', 'NVIDIA A100 80GB PCIe'),
    ('A100D-20C (vGPU)', 'GRID A100D-20C'),
    ('A100D-20C', 'GRID A100D-20C'),
    ('RTX A6000', 'NVIDIA RTX A6000'),
    ('A6000', 'NVIDIA RTX A6000'),
    ('L40S', 'NVIDIA L40S'),
    ('A40', 'NVIDIA A40'),
    ('RTX 6000 Ada', 'NVIDIA RTX 6000 Ada Generation'),
    ('', 'NVIDIA A40'),
])
def test_model_matches(expected, reported):
    ok, note = ns.match_model(expected, reported)
    assert ok, note


def test_h100_sxm_matches_the_sxm_part_with_an_advisory_note():
    ok, note = ns.match_model('H100 SXM', 'NVIDIA H100 80GB HBM3')
    assert ok is True
    assert 'SXM' in note and 'not checked' in note


def test_exact_match_has_no_note():
    assert ns.match_model('RTX 4090', 'NVIDIA GeForce RTX 4090') == (True, None)


@pytest.mark.parametrize('expected,reported', [
    ('RTX 4090', 'NVIDIA GeForce RTX 4080'),
    ('RTX 4090', 'NVIDIA GeForce RTX 5090'),
    ('RTX 5090', 'NVIDIA GeForce RTX 4090'),
    ('A40', 'NVIDIA RTX A4000'),
    ('A40', 'NVIDIA L40S'),
    ('L40', 'NVIDIA L40S'),
    ('L40S', 'NVIDIA L40'),
    ('A100', 'GRID A100D-20C'),
    ('A100D-20C (vGPU)', 'GRID A100D-40C'),
    ('H100 SXM', 'NVIDIA H100 PCIe'),
    ('H100 SXM', 'NVIDIA H100 NVL'),
    ('H100 PCIe', 'NVIDIA H100 80GB HBM3 SXM5'),
    ('A100 SXM', 'NVIDIA A100 80GB PCIe'),
    ('H100', 'NVIDIA A100-SXM4-80GB'),
    ('A100 80GB', 'NVIDIA A100-SXM4-40GB'),
    ('RTX A6000', 'NVIDIA A40'),
    ('RTX 4090', ''),
])
def test_model_mismatches(expected, reported):
    ok, note = ns.match_model(expected, reported)
    assert ok is False
    assert 'missing' in note


# --- torch probe -----------------------------------------------------------

def test_torch_probe_output():
    out = '{"python": "/v/bin/python", "version": "2.3.1+cu121", "cuda_version": "12.1", ' \
          '"available": true, "device_count": 2, "names": ["NVIDIA GeForce RTX 5090", "NVIDIA GeForce RTX 5090"]}\n'
    torch = ns.parse_torch_probe(0, out)
    assert torch == {
        'python': '/v/bin/python', 'version': '2.3.1+cu121', 'cuda_version': '12.1', 'available': True,
        'device_count': 2, 'names': ['NVIDIA GeForce RTX 5090'] * 2, 'error': None,
    }


def test_torch_probe_import_error():
    torch = ns.parse_torch_probe(0, '{"python": "/v/bin/python", "error": "ModuleNotFoundError: No module named \'torch\'"}')
    assert torch['available'] is False
    assert torch['device_count'] == 0
    assert 'ModuleNotFoundError' in torch['error']


@pytest.mark.parametrize('rc,out,err', [
    (127, '', '/v/bin/python: No such file or directory'),
    (1, 'Traceback...', ''),
    (0, '{not json', ''),
    (124, '', ''),
])
def test_torch_probe_broken(rc, out, err):
    torch = ns.parse_torch_probe(rc, out, err)
    assert torch['error'].startswith('torch probe failed (rc=%d)' % rc)
    assert torch['available'] is False


def test_torch_probe_json_with_nonzero_exit_is_an_error():
    torch = ns.parse_torch_probe(1, '{"available": true, "device_count": 2, "names": ["a", "b"]}')
    assert torch['available'] is True
    assert torch['error'] == 'torch probe exited with rc=1'


def test_torch_probe_is_valid_python():
    compile(ns.TORCH_PROBE, '<probe>', 'exec')


# --- diagnosis -------------------------------------------------------------

def _gpus(name='NVIDIA GeForce RTX 4090', count=8):
    return [{'index': i, 'name': name} for i in range(count)]


def test_diagnose_ok():
    out = ns.diagnose(True, True, _gpus(), expected_count=8, expected_model='RTX 4090')
    assert out['diagnosis'] == 'ok'
    assert out['count'] == 8 and out['count_matches'] is True and out['model_matches'] is True
    assert out['msg'] == '8 x NVIDIA GeForce RTX 4090'


def test_diagnose_without_expectations():
    out = ns.diagnose(True, True, _gpus(count=2))
    assert out['diagnosis'] == 'ok'
    assert out['count_matches'] is None and out['model_matches'] is None


def test_diagnose_no_smi():
    out = ns.diagnose(False, False, [], expected_count=8)
    assert out['diagnosis'] == 'no_nvidia_smi'
    assert out['count_matches'] is None


def test_diagnose_driver_unreachable_beats_count():
    out = ns.diagnose(True, False, [], expected_count=8, driver_failure='NVIDIA-SMI has failed')
    assert out['diagnosis'] == 'driver_unreachable'
    assert 'NVIDIA-SMI has failed' in out['msg']


def test_diagnose_count_mismatch():
    out = ns.diagnose(True, True, _gpus(count=2), expected_count=8, expected_model='RTX 4090')
    assert out['diagnosis'] == 'count_mismatch'
    assert out['msg'] == 'nvidia-smi reports 2 GPU(s), the inventory expects 8'
    assert out['model_matches'] is True


def test_diagnose_zero_gpus_without_expectation():
    out = ns.diagnose(True, True, [])
    assert out['diagnosis'] == 'count_mismatch'
    assert out['msg'] == 'nvidia-smi reports no GPU'


def test_diagnose_model_mismatch():
    out = ns.diagnose(True, True, _gpus('NVIDIA GeForce RTX 4080'), expected_count=8, expected_model='RTX 4090')
    assert out['diagnosis'] == 'model_mismatch'
    assert out['model_matches'] is False
    assert '4090' in out['msg']


def test_diagnose_one_odd_gpu_is_a_model_mismatch():
    gpus = _gpus(count=3) + [{'index': 3, 'name': 'NVIDIA GeForce RTX 3090'}]
    assert ns.diagnose(True, True, gpus, expected_model='RTX 4090')['diagnosis'] == 'model_mismatch'


def test_diagnose_bad_lines_with_right_count_are_an_error():
    out = ns.diagnose(True, True, _gpus(), expected_count=8, bad_lines=['Some garbage nvidia-smi printed'])
    assert out['diagnosis'] == 'error'
    assert out['msg'] == 'nvidia-smi reported errors: Some garbage nvidia-smi printed'


LOST = 'Unable to determine the device handle for GPU0000:A1:00.0: Unknown Error'


@pytest.mark.parametrize('count,expected', [(7, None), (8, 8), (7, 0)])
def test_diagnose_a_lost_gpu_is_a_count_mismatch_whatever_the_inventory_says(count, expected):
    # A GPU nvidia-smi cannot reach is a missing GPU: the same verdict with or without an expected count.
    out = ns.diagnose(True, True, _gpus(count=count), expected_count=expected, bad_lines=[LOST])
    assert out['diagnosis'] == 'count_mismatch'
    assert out['msg'] == 'nvidia-smi reports %d GPU(s) and cannot reach 1 more (nvidia-smi also said: %s)' % (count, LOST)


def test_diagnose_expected_count_zero_is_not_compared():
    assert ns.diagnose(True, True, [], expected_count=0)['diagnosis'] == 'count_mismatch'
    out = ns.diagnose(True, True, _gpus(count=2), expected_count=0)
    assert out['diagnosis'] == 'ok' and out['count_matches'] is None


@pytest.mark.parametrize('bad', [-1, '8', True, 2.5])
def test_diagnose_refuses_a_bad_expected_count(bad):
    with pytest.raises(ValueError, match='expected_count'):
        ns.diagnose(True, True, [], expected_count=bad)


def test_diagnose_bad_lines_with_wrong_count_are_a_count_mismatch():
    out = ns.diagnose(True, True, _gpus(count=7), expected_count=8, bad_lines=['Unable to determine the device handle'])
    assert out['diagnosis'] == 'count_mismatch'
    assert 'Unable to determine' in out['msg']


def test_diagnose_error_beats_count():
    out = ns.diagnose(True, True, [], expected_count=8, error='nvidia-smi --query-gpu failed (rc=2)')
    assert out['diagnosis'] == 'error'


@pytest.mark.parametrize('torch,diagnosis', [
    ({'available': True, 'device_count': 8, 'error': None}, 'ok'),
    ({'available': True, 'device_count': 4, 'error': None}, 'torch_mismatch'),
    ({'available': False, 'device_count': 0, 'error': None}, 'torch_mismatch'),
    ({'available': False, 'device_count': 0, 'error': 'ModuleNotFoundError'}, 'torch_mismatch'),
])
def test_diagnose_torch(torch, diagnosis):
    assert ns.diagnose(True, True, _gpus(), expected_count=8, torch=torch)['diagnosis'] == diagnosis


def test_diagnose_model_note_survives_ok():
    out = ns.diagnose(True, True, _gpus('NVIDIA H100 80GB HBM3'), expected_count=8, expected_model='H100 SXM')
    assert out['diagnosis'] == 'ok'
    assert 'not checked' in out['model_note']
    assert 'not checked' in out['msg']


def test_every_diagnosis_is_listed():
    assert set(ns.DIAGNOSES) == set(['ok', 'no_nvidia_smi', 'driver_unreachable', 'count_mismatch',
                                     'model_mismatch', 'torch_mismatch', 'error'])


# --- check_gpus: one check, one total deadline -------------------------------

DOUBLE = os.path.join(os.path.dirname(SAMPLES), 'nvidia-smi')


class FakeClock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class TimedRunner(object):
    """run(argv, seconds): each command takes `cost` seconds of the fake clock, or times out at its share."""

    def __init__(self, clock, answers, cost):
        self.clock = clock
        self.answers = list(answers)
        self.cost = cost
        self.calls = []

    def __call__(self, argv, seconds):
        self.calls.append((list(argv), seconds))
        answer = self.answers.pop(0)
        if self.cost > seconds:
            self.clock.now += seconds + ns.REAP_GRACE
            return ns.TIMED_OUT_RC, '', '', True
        self.clock.now += self.cost
        return answer


def which_smi(executable):
    return '/usr/bin/nvidia-smi' if executable == 'nvidia-smi' else None


TORCH_8 = '{"python": "/venv/bin/python", "available": true, "device_count": 8, "names": []}\n'


def test_check_gpus_ok_reads_the_versions_with_what_is_left():
    clock = FakeClock()
    run = TimedRunner(clock, [(0, sample('query-8x-rtx4090.csv'), '', False), (0, sample('smi-550-rtx4090.txt'), '', False)], 1.0)
    res = ns.check_gpus(which_smi, expected_count=8, expected_model='RTX 4090', timeout=10, run=run, clock=clock)
    assert res['diagnosis'] == 'ok', res['msg']
    assert res['driver_version'] == '550.54.15' and res['cuda_version'] == '12.4'
    assert [argv[1:] for argv, _s in run.calls] == [ns.query_args(), []]
    assert run.calls[0][1] == 10 - ns.REAP_GRACE
    assert run.calls[1][1] == 9 - ns.REAP_GRACE  # the same deadline, less what the query took
    assert 'driver_version' not in res['gpus'][0]


def test_check_gpus_one_deadline_covers_every_command():
    # Each command would finish within its own `timeout`; together they would not. The check stops at the
    # total: the torch probe gets what the query left, the versions get nothing and stay null.
    clock = FakeClock()
    run = TimedRunner(clock, [(0, sample('query-8x-rtx4090.csv'), '', False), (0, TORCH_8, '', False),
                              (0, sample('smi-550-rtx4090.txt'), '', False)], 4.0)
    res = ns.check_gpus(which_smi, expected_count=8, check_torch=True, python='/venv/bin/python', timeout=10,
                        run=run, clock=clock)
    assert clock.now - 1000.0 <= 10
    assert [seconds for _argv, seconds in run.calls] == [9.5, 5.5, 1.5]  # one budget, shrinking
    assert res['diagnosis'] == 'ok', res['msg']
    assert res['torch']['device_count'] == 8
    assert res['cuda_version'] is None
    assert run.calls[2][0] == ['/usr/bin/nvidia-smi']  # the banner timed out; no time left for -q


def test_check_gpus_torch_past_the_deadline_is_a_torch_mismatch():
    clock = FakeClock()
    run = TimedRunner(clock, [(0, sample('query-8x-rtx4090.csv'), '', False), (0, TORCH_8, '', False)], 6.0)
    res = ns.check_gpus(which_smi, expected_count=8, check_torch=True, timeout=10, read_versions=False,
                        run=run, clock=clock)
    assert res['diagnosis'] == 'torch_mismatch'
    assert 'timed out: the GPU check has 10 s in all' in res['msg']
    assert clock.now - 1000.0 <= 10


def test_check_gpus_hung_query_is_driver_unreachable_with_the_hint():
    clock = FakeClock()
    run = TimedRunner(clock, [(0, '', '', False)], 3600)
    res = ns.check_gpus(which_smi, expected_count=8, timeout=9, run=run, clock=clock)
    assert res['diagnosis'] == 'driver_unreachable'
    assert res['driver_failure_kind'] == 'timeout'
    assert res['msg'] == ('nvidia-smi cannot reach the NVIDIA driver: nvidia-smi did not answer within 9 s (%s)'
                          % ns.driver_failure_hint('timeout'))
    assert len(run.calls) == 1 and clock.now - 1000.0 <= 9


@pytest.mark.parametrize('answer,diagnosis', [
    ((6, 'No devices were found\n', ''), 'count_mismatch'),
    ((15, 'GPU-LOST', ''), 'count_mismatch'),
    ((9, 'NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver.\n', ''), 'driver_unreachable'),
    ((2, '', 'Unknown option\n'), 'error'),
])
@pytest.mark.parametrize('expected_count', [None, 0, 8])
def test_check_gpus_verdicts_do_not_depend_on_the_expected_count(answer, diagnosis, expected_count):
    rc, out, err = answer
    out = sample('query-gpu-lost.txt') if out == 'GPU-LOST' else out
    res = ns.check_gpus(which_smi, expected_count=expected_count, read_versions=False,
                        run=lambda argv, seconds: (rc, out, err, False))
    assert res['diagnosis'] == diagnosis, res['msg']


def test_check_gpus_without_nvidia_smi_runs_nothing():
    def run(argv, seconds):
        raise AssertionError('ran %r' % argv)
    res = ns.check_gpus(lambda name: None, run=run)
    assert res['diagnosis'] == 'no_nvidia_smi' and res['present'] is False


@pytest.mark.parametrize('kwargs,message', [
    ({'timeout': 0}, 'timeout must be a number of seconds above 0'),
    ({'timeout': True}, 'timeout must be'),
    ({'expected_count': -2}, 'expected_count must be 0 or more'),
])
def test_check_gpus_refuses_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ns.check_gpus(which_smi, run=lambda argv, seconds: (0, '', '', False), **kwargs)


# --- run_bounded on the nvidia-smi test double ----------------------------------

def _double_env(monkeypatch, scenario, hang_seconds=15):
    monkeypatch.setenv('RINGRIFT_NVIDIA_SMI_SCENARIO', scenario)
    monkeypatch.setenv('RINGRIFT_NVIDIA_SMI_HANG_SECONDS', str(hang_seconds))


def test_run_bounded_answers(monkeypatch):
    _double_env(monkeypatch, '2x L40S')
    rc, out, err, timed_out = ns.run_bounded([DOUBLE, '--query-gpu=index,name', '--format=csv,noheader'], 20)
    assert (rc, out, err, timed_out) == (0, '0, NVIDIA L40S\n1, NVIDIA L40S\n', '', False)


def test_run_bounded_missing_command():
    rc, out, err, timed_out = ns.run_bounded(['/nonexistent/nvidia-smi'], 5)
    assert rc == 127 and timed_out is False and 'nonexistent' in err


@pytest.mark.parametrize('scenario', ['hang', 'hang-unkillable'])
def test_run_bounded_returns_on_time_whatever_the_command_does(monkeypatch, scenario):
    # hang ignores SIGTERM; hang-unkillable also leaves a process holding the pipes that no group kill reaches
    # (as a process stuck in the driver would): neither may hold the caller past its deadline.
    _double_env(monkeypatch, scenario)
    started = time.monotonic()
    rc, dummy_out, dummy_err, timed_out = ns.run_bounded([DOUBLE] + ns.query_args(), 1.0)
    elapsed = time.monotonic() - started
    assert timed_out is True and rc == ns.TIMED_OUT_RC
    assert elapsed < 1.0 + ns.REAP_GRACE + 0.5, elapsed


def test_run_bounded_with_no_time_left_runs_nothing():
    assert ns.run_bounded(['/nonexistent/nvidia-smi'], 0) == (ns.TIMED_OUT_RC, '', '', True)
