# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's DOCUMENTATION, EXAMPLES and RETURN is YAML that parses.

ansible-doc and ansible-test's validate-modules refuse a module whose documentation does not
parse (a plain scalar holding ': ' is a mapping to YAML), and then show nothing about it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import os

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..', 'plugins', 'modules'))
NAMES = sorted(n for n in os.listdir(MODULES) if n.endswith('.py') and n != '__init__.py')


def doc_strings(path):
    with open(path) as handle:
        tree = ast.parse(handle.read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ('DOCUMENTATION', 'EXAMPLES', 'RETURN'):
            found[node.targets[0].id] = node.value.value
    return found


@pytest.mark.parametrize('name', NAMES)
def test_module_documentation_parses(name):
    docs = doc_strings(os.path.join(MODULES, name))
    assert set(docs) == {'DOCUMENTATION', 'EXAMPLES', 'RETURN'}, name
    assert isinstance(yaml.safe_load(docs['DOCUMENTATION']), dict)
    assert isinstance(yaml.safe_load(docs['RETURN']), dict)
    list(yaml.safe_load_all(docs['EXAMPLES']))
