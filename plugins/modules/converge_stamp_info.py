#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: converge_stamp_info
short_description: Re-check a node against what its last converge verified, in one module call
version_added: 0.2.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Reads the stamp M(ringrift.cluster.converge_stamp) wrote after the node's last successful converge and checks every
    part of it against the live node.
  - The fingerprint of the roles' inputs must equal O(fingerprint) (no variable, token or collection code changed). The
    stamp holds only its HMAC-SHA256 under the node's stamp key (see M(ringrift.cluster.converge_stamp)), so the two are
    compared through that; a missing or unsafe key (readable by others) means the node converges in full.
  - Every managed file must still have its checksum, mode and owner.
  - The daemon's interpreter must import every recorded module (a real import, as the daemon does).
  - Under systemd, the unit must be enabled and need no C(daemon-reload).
  - The daemon must pass the same M(ringrift.cluster.p2p_listener) check as at converge time (its real PID holds the
    port, it is the service manager's main PID or a child of it, its health endpoint answers).
  - The GPU check that passed must still pass. It is the same check as M(ringrift.cluster.nvidia_gpu_info) with the recorded
    options (nvidia-smi count and model, torch when it was checked), the recorded C(timeout) being the total deadline of
    every command it runs, so a hung C(nvidia-smi) cannot stall the run.
  - RV(converged) is true only when all of them hold; RV(reasons) says what does not. C(playbooks/site.yml) skips the
    roles on converged nodes and runs them in full on the others.
  - Read-only. Never fails because of what it finds.
options:
  path:
    description: Where the stamp lives on the node. Its key is C(converge-stamp.key) in the same directory.
    type: path
    default: /var/lib/ringrift/converge-stamp.json
  fingerprint:
    description:
      - Fingerprint of the roles' inputs for this host in this run (P(ringrift.cluster.converge_fingerprint#filter)).
      - Never shown (C(no_log)), as it is a plain hash over inputs that include the cluster token.
    type: str
    required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - Run with C(become) (as C(site.yml) does through the inventory's user) so the port owner and the stamp can be read.
seealso:
  - module: ringrift.cluster.converge_stamp
  - module: ringrift.cluster.p2p_listener
"""

EXAMPLES = r"""
- name: Check the node against its last converge
  ringrift.cluster.converge_stamp_info:
    fingerprint: "{{ site_fingerprint }}"
  register: site_stamp

- name: Say why the node needs a converge
  ansible.builtin.debug:
    msg: "{{ site_stamp.reasons | join('; ') }}"
  when: not site_stamp.converged
"""

RETURN = r"""
converged:
  description: Whether every part of the stamp still holds, so the roles would change nothing.
  returned: always
  type: bool
  sample: true
reasons:
  description: Why the node is not converged, one sentence each; empty when RV(converged) is true.
  returned: always
  type: list
  elements: str
  sample:
    - /etc/systemd/system/ringrift-p2p.service changed since the last converge
    - /root/ringrift/ai-service/venv/bin/python cannot import psutil (ModuleNotFoundError No module named 'psutil')
converged_at:
  description: When the stamp was last written (UTC), null without a stamp.
  returned: always
  type: str
  sample: "2026-11-29T05:02:11Z"
stamp_path:
  description: The stamp file that was read.
  returned: always
  type: str
  sample: /var/lib/ringrift/converge-stamp.json
listener:
  description: The M(ringrift.cluster.p2p_listener) result of the re-check; null without a stamp.
  returned: always
  type: dict
  sample: {diagnosis: healthy, pid: 4242, managed_pid: 4242, service_manager: systemd, state_ok: true}
gpu:
  description: The GPU re-check (C(diagnosis), C(msg), C(count)...), null when the stamp has no GPU check.
  returned: always
  type: dict
  sample: {diagnosis: ok, count: 8, count_matches: true, model_matches: true}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ringrift.cluster.plugins.module_utils import converge_stamp, nvidia_smi, service_manager


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default=converge_stamp.DEFAULT_PATH),
            fingerprint=dict(type="str", required=True, no_log=True),
        ),
        supports_check_mode=True,
    )

    # The same bounded runner as p2p_listener's, with room for the import probe (torch imports slowly).
    runner = service_manager.bounded_runner(converge_stamp.CHECK_COMMAND_TIMEOUT)

    def which(executable):
        return nvidia_smi.find_executable(module, executable)

    result = converge_stamp.verify(module.params["path"], module.params["fingerprint"], runner,
                                   converge_stamp.gpu_check(nvidia_smi.run_bounded, which))
    for warning in result.pop("warnings"):
        module.warn(warning)
    listener = result.get("listener")
    if listener:
        for warning in listener.pop("warnings", []):
            module.warn(warning)
    result["msg"] = "converged at %s; every recorded check holds" % result["converged_at"] if result["converged"] \
        else "; ".join(result["reasons"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
