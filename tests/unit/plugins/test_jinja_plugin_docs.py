# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every Jinja test and filter of the collection has documentation of its own in ansible-doc.

A file that defines several tests or filters shows its one DOCUMENTATION for each of them:
``ansible-doc -t test ringrift.cluster.whole_match`` printed the docs of ``valid``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import json
import os
import subprocess

import pytest

from ansible_collections.ringrift.cluster.tests.helpers import BIN, REPO, ansible_env

# (kind, package, the class whose method lists the file's plugins)
KINDS = (("filter", "FilterModule", "filters"), ("test", "TestModule", "tests"))


def jinja_plugins():
    found = []
    for kind, cls, method in KINDS:
        for name in sorted(os.listdir(os.path.join(REPO, "plugins", kind))):
            if name.endswith(".py") and name != "__init__.py":
                module = importlib.import_module("ansible_collections.ringrift.cluster.plugins.%s.%s" % (kind, name[:-3]))
                found.extend((kind, plugin) for plugin in sorted(getattr(getattr(module, cls)(), method)()))
    return found


PLUGINS = jinja_plugins()


def test_both_tests_of_validate_py_are_found():
    assert {("test", "valid"), ("test", "whole_match")} <= set(PLUGINS)


@pytest.mark.parametrize("kind,name", PLUGINS)
def test_ansible_doc_shows_the_plugins_own_documentation(kind, name):
    proc = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", kind, "--json", "ringrift.cluster." + name],
                          cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "[ERROR]" not in proc.stderr and "[WARNING]" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)["ringrift.cluster." + name]
    assert doc["doc"]["name"] == name
    assert doc["doc"]["short_description"] and doc["examples"] and doc["return"]
