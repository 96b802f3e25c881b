# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ringrift.cluster.converge_fingerprint and its digest of the collection's code.

code_digest() is lru_cached per root, so every case that changes files builds its own
temporary collection root.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import hashlib
import json
import os
import re

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ringrift.cluster.plugins.filter import converge_fingerprint as cf_mod

converge_fingerprint = cf_mod.FilterModule().filters()["converge_fingerprint"]
FINGERPRINT_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

SETTINGS = {
    "ringrift_p2p_port": 8770,
    "ringrift_node_id": "nebius-h100-1",
    "p2p_daemon_env": {"RINGRIFT_LOG": "info", "OMP_NUM_THREADS": "8"},
    "python_deps_packages": ["aiohttp", "psutil", "pyyaml"],
    "cuda_check_expected_count": 8,
    "cuda_check_fail_on_mismatch": True,
    "p2p_service_token": "s3cr3t-token",
    "p2p_verify_health_timeout": 5.0,
    "ringrift_optional": None,
}


def fake_collection(root, files):
    for relative, text in files.items():
        path = os.path.join(str(root), relative)
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, "wb") as handle:
            handle.write(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(root)


BASE_FILES = {
    "galaxy.yml": "namespace: ringrift\nname: cluster\n",
    "meta/runtime.yml": "requires_ansible: '>=2.15'\n",
    "roles/p2p_daemon/tasks/main.yml": "- name: Start\n  ansible.builtin.command: /bin/true\n",
    "roles/p2p_daemon/defaults/main.yml": "p2p_daemon_port: 8770\n",
    "plugins/modules/converge_stamp.py": "print('module')\n",
    "playbooks/site.yml": "- hosts: all\n",
}


@pytest.fixture
def make_root(tmp_path):
    counter = [0]

    def make(files=None, extra=None):
        counter[0] += 1
        content = dict(BASE_FILES if files is None else files)
        content.update(extra or {})
        return fake_collection(tmp_path / ("root%d" % counter[0]), content)

    return make


# --------------------------------------------------------------------------- the filter

def test_filter_map_exposes_the_function():
    assert cf_mod.FilterModule().filters() == {"converge_fingerprint": cf_mod.converge_fingerprint}


def test_result_is_sha256_prefix_and_64_hex():
    assert FINGERPRINT_RE.match(converge_fingerprint(SETTINGS))
    assert FINGERPRINT_RE.match(converge_fingerprint(SETTINGS, with_code=False))
    assert FINGERPRINT_RE.match(converge_fingerprint({}))


def test_equal_input_in_any_key_order_gives_the_same_fingerprint():
    reordered = collections.OrderedDict()
    for key in reversed(sorted(SETTINGS)):
        value = SETTINGS[key]
        if isinstance(value, dict):
            value = collections.OrderedDict(reversed(sorted(value.items())))
        reordered[key] = value
    assert list(reordered) != list(SETTINGS)
    assert converge_fingerprint(reordered) == converge_fingerprint(SETTINGS)
    assert converge_fingerprint(reordered, with_code=False) == converge_fingerprint(dict(SETTINGS), with_code=False)
    # and repeated calls are stable
    assert converge_fingerprint(SETTINGS) == converge_fingerprint(json.loads(json.dumps(SETTINGS)))


def _variants():
    yield "int value", dict(SETTINGS, ringrift_p2p_port=8771)
    yield "str value", dict(SETTINGS, ringrift_node_id="nebius-h100-2")
    yield "token", dict(SETTINGS, p2p_service_token="s3cr3t-tokem")
    yield "nested dict value", dict(SETTINGS, p2p_daemon_env={"RINGRIFT_LOG": "debug", "OMP_NUM_THREADS": "8"})
    yield "list order", dict(SETTINGS, python_deps_packages=["psutil", "aiohttp", "pyyaml"])
    yield "list element", dict(SETTINGS, python_deps_packages=["aiohttp", "psutil"])
    yield "bool", dict(SETTINGS, cuda_check_fail_on_mismatch=False)
    yield "float", dict(SETTINGS, p2p_verify_health_timeout=5.5)
    yield "none to value", dict(SETTINGS, ringrift_optional="")
    yield "int to str", dict(SETTINGS, ringrift_p2p_port="8770")
    yield "new key", dict(SETTINGS, ringrift_extra=1)
    yield "renamed key", dict((("ringrift_port" if k == "ringrift_p2p_port" else k), v) for k, v in SETTINGS.items())
    removed = dict(SETTINGS)
    del removed["ringrift_optional"]
    yield "removed key with null value", removed


@pytest.mark.parametrize("with_code", [True, False])
def test_any_change_of_a_value_changes_the_fingerprint(with_code):
    base = converge_fingerprint(SETTINGS, with_code=with_code)
    seen = {base: "base"}
    for name, variant in _variants():
        fingerprint = converge_fingerprint(variant, with_code=with_code)
        assert fingerprint not in seen, "%s collides with %s" % (name, seen.get(fingerprint))
        seen[fingerprint] = name


def test_the_result_does_not_reveal_the_settings():
    fingerprint = converge_fingerprint(SETTINGS)
    assert "s3cr3t" not in fingerprint
    assert "nebius" not in fingerprint


def test_values_that_are_not_json_are_hashed_as_their_text():
    class Tagged(object):
        def __init__(self, text):
            self.text = text

        def __str__(self):
            return self.text

    assert converge_fingerprint({"a": Tagged("x")}, with_code=False) == converge_fingerprint({"a": "x"}, with_code=False)
    assert converge_fingerprint({"a": Tagged("x")}, with_code=False) != converge_fingerprint({"a": Tagged("y")}, with_code=False)


def test_accepts_any_mapping():
    class Vars(collections.abc.Mapping):
        def __init__(self, data):
            self.data = data

        def __getitem__(self, key):
            return self.data[key]

        def __iter__(self):
            return iter(self.data)

        def __len__(self):
            return len(self.data)

    assert converge_fingerprint(Vars(SETTINGS)) == converge_fingerprint(SETTINGS)


@pytest.mark.parametrize("value", [None, "ringrift_p2p_port=8770", ["ringrift_p2p_port", 8770], 8770, [("a", 1)]])
def test_non_mapping_input_is_a_filter_error(value):
    with pytest.raises(AnsibleFilterError) as err:
        converge_fingerprint(value)
    assert "input must be a mapping of settings, got %s" % type(value).__name__ in str(err.value)


def test_with_code_differs_from_without():
    assert converge_fingerprint(SETTINGS, with_code=True) != converge_fingerprint(SETTINGS, with_code=False)
    assert converge_fingerprint(SETTINGS) == converge_fingerprint(SETTINGS, with_code=True)  # the default


def test_without_code_is_the_hash_of_canonical_json():
    text = json.dumps({"settings": SETTINGS, "code": None}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert converge_fingerprint(SETTINGS, with_code=False) == "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def test_with_code_follows_the_code_digest(monkeypatch):
    monkeypatch.setattr(cf_mod, "code_digest", lambda: "a" * 64)
    first = converge_fingerprint(SETTINGS)
    monkeypatch.setattr(cf_mod, "code_digest", lambda: "b" * 64)
    second = converge_fingerprint(SETTINGS)
    assert first != second
    assert converge_fingerprint(SETTINGS, with_code=False) == converge_fingerprint(SETTINGS, with_code=False)


def test_non_ascii_settings_are_hashed():
    assert converge_fingerprint({"a": "Zürich"}, with_code=False) != converge_fingerprint({"a": "Zurich"}, with_code=False)


# --------------------------------------------------------------------------- code_digest

def test_code_digest_of_this_collection():
    digest = cf_mod.code_digest()
    assert re.match(r"^[0-9a-f]{64}$", digest)
    assert digest == cf_mod.code_digest(cf_mod.COLLECTION_ROOT)
    assert os.path.isfile(os.path.join(cf_mod.COLLECTION_ROOT, "plugins", "filter", "converge_fingerprint.py"))


def test_code_digest_is_the_same_for_equal_trees_in_different_roots(make_root):
    assert cf_mod.code_digest(root=make_root()) == cf_mod.code_digest(root=make_root())


def test_code_digest_changes_when_a_role_file_changes(make_root):
    base = cf_mod.code_digest(root=make_root())
    edited = make_root(extra={"roles/p2p_daemon/tasks/main.yml": "- name: Start\n  ansible.builtin.command: /bin/false\n"})
    assert cf_mod.code_digest(root=edited) != base


@pytest.mark.parametrize("extra", [
    {"roles/p2p_daemon/templates/unit.j2": "[Service]\n"},
    {"plugins/module_utils/new.py": "x = 1\n"},
    {"playbooks/other.yml": "- hosts: all\n"},
    {"galaxy.yml": "namespace: ringrift\nname: cluster\nversion: 0.3.0\n"},
    {"meta/runtime.yml": "requires_ansible: '>=2.16'\n"},
    {"MANIFEST.json": "{}\n"},
])
def test_code_digest_covers_roles_plugins_playbooks_and_metadata(make_root, extra):
    assert cf_mod.code_digest(root=make_root(extra=extra)) != cf_mod.code_digest(root=make_root())


def test_code_digest_depends_on_file_names_not_only_content(make_root):
    files = dict(BASE_FILES)
    files["roles/p2p_daemon/defaults/other.yml"] = files.pop("roles/p2p_daemon/defaults/main.yml")
    assert cf_mod.code_digest(root=make_root(files=files)) != cf_mod.code_digest(root=make_root())


def test_code_digest_ignores_bytecode_caches_and_hidden_files(make_root):
    base = cf_mod.code_digest(root=make_root())
    noisy = make_root(extra={
        "plugins/module_utils/__pycache__/converge_stamp.cpython-311.pyc": b"\x00\x01bytecode",
        "plugins/modules/__pycache__/converge_stamp.cpython-312.opt-1.pyc": b"\x00\x02",
        "plugins/modules/converge_stamp.pyc": b"\x00\x03",
        "plugins/modules/converge_stamp.pyo": b"\x00\x04",
        "roles/p2p_daemon/__pycache__/anything.txt": "whatever a tool leaves in a cache dir\n",
        "roles/p2p_daemon/tasks/.main.yml.swp": b"swap",
        "roles/.cache/x.yml": "cached\n",
    })
    assert cf_mod.code_digest(root=noisy) == base


def test_code_digest_ignores_what_is_outside_the_code_dirs(make_root):
    base = cf_mod.code_digest(root=make_root())
    other = make_root(extra={"tests/unit/test_x.py": "assert True\n", "docs/index.md": "# docs\n", "README.md": "hi\n"})
    assert cf_mod.code_digest(root=other) == base


def test_code_digest_of_an_empty_root(tmp_path):
    assert cf_mod.code_digest(root=str(tmp_path)) == hashlib.sha256().hexdigest()


def test_a_set_hashes_the_same_under_every_hash_seed():
    """A set's iteration order follows PYTHONHASHSEED; the fingerprint must not."""
    import subprocess
    import sys
    script = ("from ansible_collections.ringrift.cluster.plugins.filter.converge_fingerprint import converge_fingerprint;"
              "print(converge_fingerprint({'a': {'alpha', 'beta', 'gamma', 'delta'}}, with_code=False))")
    collections_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "collections")
    seen = set()
    for seed in ("0", "1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=os.path.abspath(collections_dir))
        seen.add(subprocess.run([sys.executable, "-c", script], env=env, text=True, capture_output=True, check=True).stdout)
    assert len(seen) == 1
    assert seen.pop().strip() == converge_fingerprint({"a": ["alpha", "beta", "delta", "gamma"]}, with_code=False)


def test_code_digest_ignores_documentation(tmp_path):
    root = tmp_path / "collection"
    (root / "roles" / "r" / "tasks").mkdir(parents=True)
    (root / "roles" / "r" / "tasks" / "main.yml").write_text("---\n")
    (root / "roles" / "r" / "README.md").write_text("old words\n")
    before = cf_mod.code_digest(root=str(root))
    (root / "roles" / "r" / "README.md").write_text("new words\n")
    (root / "roles" / "r" / "notes.rst").write_text("more\n")
    assert cf_mod.code_digest(root=str(root) + "/") == before
    (root / "roles" / "r" / "tasks" / "main.yml").write_text("---\n# changed\n")
    assert cf_mod.code_digest(root=str(root) + "//") != before
