# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils/nvidia_smi.py on the sample outputs in tests/fixtures/nvidia-smi/samples."""

from __future__ import absolute_import, division, print_function

import os

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
    out = ns.diagnose(True, True, _gpus(), expected_count=8, bad_lines=['Unable to determine the device handle'])
    assert out['diagnosis'] == 'error'


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
