# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ringrift.cluster.converge_fingerprint."""

from __future__ import annotations

DOCUMENTATION = r"""
name: converge_fingerprint
short_description: One hash of everything a converge of a host depends on, taken on the controller
version_added: 0.2.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Hashes (SHA-256) the given settings, canonical JSON with sorted keys, together with a digest of this collection's
    own roles, plugins and playbooks (documentation files, C(*.md) and C(*.rst), left out), so that changing a variable,
    a token or the collection's code changes the result.
  - C(playbooks/site.yml) compares it with the one in the node's converge stamp (M(ringrift.cluster.converge_stamp_info))
    to decide whether the node can skip the roles.
  - The result is a plain hash. It does not reveal the settings, but when they include a secret (the cluster token, or the
    token file's checksum) and everything else is known (inventory, collection code), it confirms a guess of that secret
    offline. Treat it as a secret - C(site.yml) sets it under C(no_log) and passes it only to the C(no_log) option
    C(fingerprint) of M(ringrift.cluster.converge_stamp) and M(ringrift.cluster.converge_stamp_info), which store and show
    nothing but its HMAC-SHA256 under a random key only the node has.
options:
  _input:
    description:
      - The settings of one host, such as every variable named C(ringrift_*), C(python_deps_*), C(cuda_check_*),
        C(p2p_daemon_*), C(p2p_service_*), C(p2p_verify_*), with their values.
      - Values must be JSON-like (strings, numbers, booleans, null, lists, mappings); anything else is hashed as its text.
    type: dict
    required: true
  with_code:
    description: Include the digest of the collection's roles, plugins and playbooks.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Fingerprint this host's converge settings
  ansible.builtin.set_fact:
    site_fingerprint: >-
      {{ dict(names | zip(query('ansible.builtin.vars', *names))) | ringrift.cluster.converge_fingerprint }}
  vars:
    names: "{{ query('ansible.builtin.varnames', '^(ringrift|p2p_daemon|p2p_service)_') }}"
"""

RETURN = r"""
_value:
  description: C(sha256:) followed by 64 hex digits.
  type: str
  sample: sha256:0b4f5e8a0c3f1e0e6e4a9f4c8f1d9f2a7c6b5d4e3f2a1b0c9d8e7f6a5b4c3d2e
"""

import functools
import hashlib
import json
import os
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# plugins/filter/<this file> -> the collection root.
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CODE_DIRS = ("roles", "plugins", "playbooks")
CODE_FILES = ("galaxy.yml", "MANIFEST.json", "meta/runtime.yml")
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".md", ".rst")


def _code_files(root):
    for name in CODE_FILES:
        if os.path.isfile(os.path.join(root, name)):
            yield name
    for top in CODE_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
            for filename in sorted(filenames):
                # Byte code and documentation do not change what a converge does.
                if filename.endswith(SKIPPED_SUFFIXES) or filename.startswith("."):
                    continue
                yield os.path.relpath(os.path.join(dirpath, filename), root)


@functools.lru_cache(maxsize=4)
def code_digest(root=COLLECTION_ROOT):
    """SHA-256 over the relative path and content of every role, plugin and playbook file."""
    digest = hashlib.sha256()
    for relative in _code_files(root):
        digest.update(relative.encode("utf-8") + b"\0")
        with open(os.path.join(root, relative), "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def _plain(value):
    # A set has no order: sort it, or the text would change with the hash seed.
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=lambda item: json.dumps(item, sort_keys=True, default=str))
    # Anything else that is not JSON-like (a tagged or lazy template type) is hashed as its text.
    return str(value)


def converge_fingerprint(settings, with_code=True):
    """``sha256:<hex>`` of the settings (canonical JSON) and, by default, of the collection's code."""
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError("converge_fingerprint: input must be a mapping of settings, got %s" % type(settings).__name__)
    payload = {"settings": dict(settings), "code": code_digest() if with_code else None}
    try:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_plain, ensure_ascii=True)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("converge_fingerprint: cannot serialise the settings: %s" % exc)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


class FilterModule:
    def filters(self):
        return {"converge_fingerprint": converge_fingerprint}
