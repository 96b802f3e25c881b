#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: converge_stamp
short_description: Record on a node what a successful converge verified, for the next run's fast path
version_added: 0.2.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Writes a JSON stamp (mode 0644, so that the audit reads it without root, every digest in it keyed; replaced atomically)
    holding the controller's fingerprint of the roles' inputs,
    the checksum, mode and owner of every file the roles manage, the daemon's interpreter and the modules it must
    import, the service unit or program, the exact C(ringrift.cluster.p2p_listener) check that passed and the GPU
    check that passed.
  - C(playbooks/site.yml) writes it after a full converge of the host succeeded and its daemon verified healthy, and
    reads it back with M(ringrift.cluster.converge_stamp_info) on the next run. Nodes whose stamp still holds skip the
    roles; any difference sends the node through the full converge.
  - Writes only when the content differs from the stamp already there, so a converge that changed nothing reports no change.
  - Holds no secret, and nothing in it or in what the module shows lets one check a guess of one. The fingerprint is a plain
    hash over inputs that include the cluster token, and a managed file (C(node.conf)) holds the token, so neither the
    fingerprint nor a plain checksum of a file is stored or returned, only their HMAC-SHA256 under a random 32-byte key
    that only the node has (C(converge-stamp.key) next to O(path), mode 0600, created with the first stamp, replaced when
    it is readable by others). A token change still changes both digests; confirming a token guess needs the key, and
    whoever can read the key can read C(node.conf) itself. O(fingerprint) is a C(no_log) option, so it is not echoed either.
  - The files it records are read on the node when the stamp is written.
options:
  path:
    description:
      - Where the stamp lives on the node. Its key is C(converge-stamp.key) in the same directory.
    type: path
    default: /var/lib/ringrift/converge-stamp.json
  state:
    description:
      - C(present) writes the stamp; C(absent) removes it, so the next C(site.yml) run converges the node in full (the key
        stays).
    type: str
    choices: [present, absent]
    default: present
  fingerprint:
    description:
      - Fingerprint of the roles' inputs for this host, from the P(ringrift.cluster.converge_fingerprint#filter) filter.
      - Only its keyed digest is stored and returned; the value itself is never shown (C(no_log)).
      - Required with O(state=present).
    type: str
  files:
    description: Absolute paths of the files the roles manage (the roles' C(*_managed_files) facts).
    type: list
    elements: path
    default: []
  python:
    description: The daemon's interpreter, whose imports are re-checked. Required with O(state=present).
    type: path
  imports:
    description: Modules the daemon imports (the keys of the C(python_deps_import_result.ok) fact).
    type: list
    elements: str
    default: []
  listener:
    description:
      - The M(ringrift.cluster.p2p_listener) options of the health check that passed (the C(p2p_verify_listener) fact),
        that is C(port), C(bind_address), C(node_id), C(cmdline_regex), C(check_port_in_cmdline), C(health_path),
        C(health_timeout), C(service_name), C(service_manager), C(log_path). Required with O(state=present).
      - C(service_manager) must be the one the check resolved (C(systemd), C(supervisor) or C(none)), not C(auto);
        under systemd the next run also checks that the unit C(service_name) is enabled.
    type: dict
  gpu:
    description:
      - The M(ringrift.cluster.nvidia_gpu_info) options of the GPU check that passed (the C(cuda_check_options) fact), that is
        C(executable), C(expected_count), C(expected_model), C(timeout), C(check_torch), C(python), C(fail_on_mismatch).
      - Null when the host has no GPU check.
    type: dict
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
notes:
  - Write the stamp only after the whole converge of the host succeeded; a stamp written after a partial run (C(--tags))
    would let the fast path skip what that run did not do. C(site.yml) does this for you.
seealso:
  - module: ringrift.cluster.converge_stamp_info
  - plugin: ringrift.cluster.converge_fingerprint
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Record what this converge verified
  ringrift.cluster.converge_stamp:
    fingerprint: "{{ site_fingerprint }}"
    files: "{{ p2p_daemon_managed_files + p2p_service_managed_files }}"
    python: "{{ python_deps_import_result.python }}"
    imports: "{{ python_deps_import_result.ok.keys() | list }}"
    listener: "{{ p2p_verify_listener }}"

- name: Make the next site.yml run converge this node in full
  ringrift.cluster.converge_stamp:
    state: absent
"""

RETURN = r"""
path:
  description: The stamp file.
  returned: always
  type: str
  sample: /var/lib/ringrift/converge-stamp.json
stamp:
  description:
    - The stamp now in effect (would be, in check mode); null after O(state=absent).
    - C(fingerprint) and every C(files.*.digest) are HMAC-SHA256 under the node's stamp key, never plain hashes.
    - In check mode without a usable key the digests are taken under a throw-away key (no key is written).
  returned: always
  type: dict
  sample:
    format: 2
    fingerprint: hmac-sha256:5c1f...
    files:
      /etc/ringrift/node.conf: {exists: true, digest: hmac-sha256:9f86..., mode: "0600", uid: 0, gid: 0}
    python: {interpreter: /root/ringrift/ai-service/venv/bin/python, imports: [aiohttp, psutil, yaml]}
    listener: {port: 8770, node_id: nebius-h100-1, health_path: /health, service_manager: systemd}
    gpu: null
    converged_at: "2026-11-29T05:02:11Z"
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ringrift.cluster.plugins.module_utils import converge_stamp


def _dump(stamp):
    return "" if stamp is None else json.dumps(converge_stamp.content(stamp), indent=2, sort_keys=True) + "\n"


def _diff(path, before, after):
    return {"before": _dump(before), "after": _dump(after), "before_header": path, "after_header": path}


def _key(module, path):
    """The node's stamp key; created (or replaced when unsafe) unless in check mode."""
    key_path = converge_stamp.key_path_for(path)
    if not module.check_mode:
        return converge_stamp.node_key(key_path, create=True)
    try:
        return converge_stamp.node_key(key_path)
    except converge_stamp.StampError:
        # Nothing is written in check mode: digests under a throw-away key show what would change.
        return os.urandom(converge_stamp.KEY_BYTES)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default=converge_stamp.DEFAULT_PATH),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            fingerprint=dict(type="str", no_log=True),
            files=dict(type="list", elements="path", default=[]),
            python=dict(type="path"),
            imports=dict(type="list", elements="str", default=[]),
            listener=dict(type="dict"),
            gpu=dict(type="dict"),
        ),
        required_if=[("state", "present", ("fingerprint", "python", "listener"))],
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    try:
        before = converge_stamp.read_stamp(path)
    except converge_stamp.StampError:
        before = None

    if params["state"] == "absent":
        changed = os.path.lexists(path)
        if changed and not module.check_mode:
            os.unlink(path)
        result = dict(changed=changed, path=path, stamp=None)
        if module._diff:
            result["diff"] = _diff(path, before, None)
        module.exit_json(**result)

    try:
        key = _key(module, path)
        stamp = converge_stamp.build_stamp(
            params["fingerprint"], params["files"], params["python"], params["imports"],
            params["listener"], params["gpu"], key=key)
        changed, written = converge_stamp.write_stamp(path, stamp, check_mode=module.check_mode)
    except converge_stamp.StampError as exc:
        module.fail_json(msg="converge_stamp: %s" % exc, path=path)
    except (IOError, OSError) as exc:
        module.fail_json(msg="converge_stamp: cannot write %s: %s" % (path, exc), path=path)
    result = dict(changed=changed, path=path, stamp=written)
    if module._diff and changed:
        result["diff"] = _diff(path, before, written)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
