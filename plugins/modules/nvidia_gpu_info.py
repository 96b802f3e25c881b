#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: nvidia_gpu_info
short_description: Read NVIDIA GPU, driver and CUDA facts from nvidia-smi and check them against the inventory
version_added: 0.1.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Runs C(nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.used,utilization.gpu,temperature.gpu,driver_version,pci.bus_id
    --format=csv,noheader,nounits) and returns one record per GPU.
  - "Reads the CUDA version (the highest CUDA version the driver supports) from the banner of a plain C(nvidia-smi) call
    (C(| NVIDIA-SMI 550.54.15  Driver Version: 550.54.15  CUDA Version: 12.4 |)), falling back to C(nvidia-smi -q)
    (C(CUDA Version : 12.4))."
  - Classifies the node in one RV(diagnosis) value; a missing C(nvidia-smi), a driver it cannot reach, a GPU count
    or model different from the inventory, or a PyTorch that does not see the GPUs fails the task unless
    O(fail_on_mismatch=false).
  - Read-only. Never changes anything, so it always reports C(changed=false) and runs fully in check mode.
options:
  executable:
    description:
      - Name or path of C(nvidia-smi).
      - A bare name is searched on E(PATH) and in C(/usr/bin) and C(/usr/local/nvidia/bin) (where NVIDIA container images put it).
    type: str
    default: nvidia-smi
  expected_count:
    description:
      - Number of GPUs the inventory says the node has (C(ringrift_gpu_count)).
      - When omitted or V(0) the count is not compared, but a node reporting no GPU at all (C(No devices were found))
        is still a C(count_mismatch), and so is a GPU that fell off the bus.
      - Must not be negative.
    type: int
  expected_model:
    description:
      - GPU model from the inventory (C(ringrift_gpu_model)), for example V(RTX 4090), V(H100 SXM), V(A100D-20C (vGPU\)), V(L40S).
      - "Match rule: both the expected model and every reported name are upper-cased; a parenthesised C(vGPU) marker, hyphens, spaces and other
        separators are dropped and the words C(NVIDIA), C(GeForce), C(GRID), C(vGPU), C(Tesla), C(GPU) are ignored. Every
        remaining token of the expected model must then be a whole token of the reported name, so C(A40) does not match
        C(NVIDIA RTX A4000) and C(L40) does not match C(NVIDIA L40S). A joined token (C(RTX4090)) also matches its split form."
      - "Form-factor tokens (C(SXM), C(SXM4), C(PCIe), C(NVL)) are compared only when the reported name carries one too:
        C(H100 SXM) matches C(NVIDIA H100 80GB HBM3) (the SXM part, whose name shows no form factor) with a note in
        RV(model_note), and does not match C(NVIDIA H100 PCIe). C(A100 SXM) matches C(NVIDIA A100-SXM4-80GB)."
      - Every GPU of the node must match.
    type: str
  timeout:
    description:
      - Seconds the whole check may take, every command together (the GPU query, the torch probe, the version banner
        and C(nvidia-smi -q)). A hanging C(nvidia-smi) usually means a GPU fell off the bus.
      - A command still running when its share is spent is killed with its process group, and the check returns in
        about O(timeout) seconds even when the process cannot be reaped (stuck in the driver). A timed-out GPU query is
        a C(driver_unreachable) with RV(driver_failure_kind=timeout); a timed-out torch probe a C(torch_mismatch).
      - The query and the torch probe run first; the versions get what is left and are null when nothing is.
      - Must be above 0.
    type: int
    default: 30
  fail_on_mismatch:
    description:
      - Fail the task when RV(diagnosis) is not C(ok). With V(false) the facts are returned and the task succeeds.
    type: bool
    default: true
  check_torch:
    description:
      - Also run O(python) with a small probe that imports C(torch) and reports C(torch.cuda.is_available), C(torch.cuda.device_count)
        and the device names; a count different from nvidia-smi, CUDA not available or C(torch) not importable is a C(torch_mismatch).
    type: bool
    default: false
  python:
    description:
      - Interpreter for O(check_torch), normally the service venv's C(bin/python). C(~) is expanded on the node.
    type: path
    default: python3
attributes:
  check_mode:
    support: full
    description: Runs the same read-only commands in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
    description: Needs C(nvidia-smi) from the NVIDIA driver (Linux).
notes:
  - The C(nvidia-smi) header reports the highest CUDA version the driver supports, not an installed toolkit.
  - The same check (same code, same verdict for the same node) runs in M(ringrift.cluster.node_audit) and in the
    converge stamp's re-check (M(ringrift.cluster.converge_stamp_info)).
seealso:
  - name: nvidia-smi documentation
    description: Query fields and output formats.
    link: https://docs.nvidia.com/deploy/nvidia-smi/index.html
"""

EXAMPLES = r"""
- name: Check the GPUs against the inventory
  ringrift.cluster.nvidia_gpu_info:
    expected_count: "{{ ringrift_gpu_count }}"
    expected_model: "{{ ringrift_gpu_model }}"
  register: gpu

- name: Collect facts without failing, PyTorch included
  ringrift.cluster.nvidia_gpu_info:
    expected_count: 8
    expected_model: RTX 4090
    check_torch: true
    python: ~/ringrift/venv/bin/python
    fail_on_mismatch: false
  register: gpu

- name: Show the diagnosis
  ansible.builtin.debug:
    msg: "{{ gpu.diagnosis }}: {{ gpu.msg }}"
"""

RETURN = r"""
present:
  description: Whether an C(nvidia-smi) executable was found.
  returned: always
  type: bool
  sample: true
executable:
  description: Path of the C(nvidia-smi) that was run, null when none was found.
  returned: always
  type: str
  sample: /usr/bin/nvidia-smi
driver_ok:
  description: Whether C(nvidia-smi) could talk to the driver (it answered the GPU query).
  returned: always
  type: bool
  sample: true
driver_error:
  description: First line of the driver failure message, null when the driver answered.
  returned: always
  type: str
  sample: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.
driver_failure_kind:
  description:
    - What kind of driver failure it was, null when none.
    - C(communication_failure), C(version_mismatch), C(library_missing), C(nvml_init_failed), C(driver_not_loaded),
      or C(timeout) (the GPU query hung past O(timeout), typical of a GPU that fell off the bus).
  returned: always
  type: str
  sample: communication_failure
driver_version:
  description: NVIDIA driver version, null when unknown.
  returned: always
  type: str
  sample: 550.54.15
cuda_version:
  description: Highest CUDA version the driver supports (from the C(nvidia-smi) banner or C(nvidia-smi -q)), null when unknown.
  returned: always
  type: str
  sample: "12.4"
gpus:
  description: One entry per GPU in index order. Values nvidia-smi prints as C([N/A]) or C([Not Supported]) are null.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: GPU index.
      type: int
      sample: 0
    name:
      description: Product name as reported.
      type: str
      sample: NVIDIA GeForce RTX 4090
    uuid:
      description: GPU UUID.
      type: str
      sample: GPU-9c4a7f1e-3b2d-8e6f-1a0c-5d7b9e2f4a61
    memory_total_mib:
      description: Total framebuffer memory in MiB.
      type: int
      sample: 24564
    memory_used_mib:
      description: Used framebuffer memory in MiB.
      type: int
      sample: 1
    utilization_pct:
      description: GPU utilisation in percent.
      type: int
      sample: 0
    temperature_c:
      description: Core temperature in degrees Celsius (null on vGPU guests).
      type: int
      sample: 32
    pci_bus_id:
      description: PCI bus id.
      type: str
      sample: "00000000:01:00.0"
query_errors:
  description:
    - "Lines of the GPU query output that are not GPU rows, such as C(Unable to determine the device handle for GPU0000:A1:00.0:
      Unknown Error) for a GPU that fell off the bus."
    - A lost-GPU line makes the diagnosis C(count_mismatch) (the node has fewer usable GPUs than it should), with or
      without O(expected_count); any other line makes it C(error) unless it already is C(count_mismatch) or worse.
  returned: always
  type: list
  elements: str
  sample: []
count:
  description: Number of GPUs nvidia-smi reported.
  returned: always
  type: int
  sample: 8
count_matches:
  description: Whether RV(count) equals O(expected_count); null when not compared.
  returned: always
  type: bool
  sample: true
model_matches:
  description: Whether every GPU name matches O(expected_model); null when not compared.
  returned: always
  type: bool
  sample: true
model_note:
  description: Why the model did not match, or which form-factor token could not be checked; null otherwise.
  returned: always
  type: str
  sample: "'H100 SXM' matches 'NVIDIA H100 80GB HBM3'; form factor SXM not shown in the name, not checked"
torch:
  description: PyTorch probe result when O(check_torch=true), else null.
  returned: always
  type: dict
  contains:
    python:
      description: Interpreter that ran the probe.
      type: str
    version:
      description: Version of C(torch) (its C(__version__) attribute).
      type: str
    cuda_version:
      description: C(torch.version.cuda), the CUDA version torch was built for.
      type: str
    available:
      description: What C(torch.cuda.is_available) returned (false when torch could not be imported).
      type: bool
    device_count:
      description: What C(torch.cuda.device_count) returned (0 when CUDA is not available).
      type: int
    names:
      description: C(torch.cuda.get_device_name) of every device, in index order.
      type: list
      elements: str
    error:
      description: Import or probe error, null when the probe worked.
      type: str
diagnosis:
  description:
    - One of C(ok), C(no_nvidia_smi), C(driver_unreachable), C(count_mismatch), C(model_mismatch), C(torch_mismatch), C(error).
    - When several apply the first in this order wins (after C(ok)); unparsable query lines count as C(error) after
      C(count_mismatch), a failed query as C(error) before it.
    - C(count_mismatch) is also the verdict for C(No devices were found) and for a GPU that fell off the bus (the driver
      answers, the node has fewer usable GPUs than it should).
  returned: always
  type: str
  sample: ok
msg:
  description: Human-readable summary of the diagnosis.
  returned: always
  type: str
  sample: 8 x NVIDIA GeForce RTX 4090
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ringrift.cluster.plugins.module_utils.nvidia_smi import DEFAULT_TIMEOUT, check_gpus, find_executable


def main():
    module = AnsibleModule(
        argument_spec=dict(
            executable=dict(type='str', default='nvidia-smi'),
            expected_count=dict(type='int'),
            expected_model=dict(type='str'),
            timeout=dict(type='int', default=DEFAULT_TIMEOUT),
            fail_on_mismatch=dict(type='bool', default=True),
            check_torch=dict(type='bool', default=False),
            python=dict(type='path', default='python3'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = check_gpus(
            lambda executable: find_executable(module, executable),
            executable=params['executable'],
            expected_count=params['expected_count'],
            expected_model=params['expected_model'],
            check_torch=params['check_torch'],
            python=params['python'],
            timeout=params['timeout'],
        )
    except ValueError as exc:
        module.fail_json(msg='nvidia_gpu_info: %s' % exc)
    result['changed'] = False
    if result['diagnosis'] != 'ok' and params['fail_on_mismatch']:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
