# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""p2p_listener and node_audit declare their shared options once (p2p_proc.LISTENER_ARGUMENT_SPEC)
and document them once (the doc fragments listener_options and daemon_run)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
import yaml

from ansible_collections.ringrift.cluster.plugins.doc_fragments import daemon_run, listener_options
from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_proc
from ansible_collections.ringrift.cluster.plugins.modules import node_audit, p2p_listener

SHARED = p2p_proc.LISTENER_ARGUMENT_SPEC
MODULES = {"p2p_listener": p2p_listener, "node_audit": node_audit}


def fragment_options(fragment):
    return yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]


def documented_shared_options():
    options = dict(fragment_options(listener_options))
    options.update(fragment_options(daemon_run))
    return options


@pytest.mark.parametrize("name", sorted(MODULES))
def test_both_modules_take_the_shared_spec_unchanged(name):
    spec = MODULES[name].ARGUMENT_SPEC
    assert dict((key, spec[key]) for key in SHARED) == SHARED
    assert spec["service_manager"]["default"] == "none"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_document_the_shared_options_only_through_the_fragments(name):
    docs = yaml.safe_load(MODULES[name].DOCUMENTATION)
    assert not set(docs["options"]) & set(SHARED), "documented again in %s" % name
    assert {"ringrift.cluster.listener_options", "ringrift.cluster.daemon_run"} <= set(docs["extends_documentation_fragment"])


def test_the_fragments_document_exactly_the_shared_spec():
    documented = documented_shared_options()
    assert set(documented) == set(SHARED)
    for name, spec in SHARED.items():
        doc = documented[name]
        assert doc["type"] == spec["type"], name
        assert doc.get("default") == spec.get("default"), name
        assert doc.get("choices") == spec.get("choices"), name


def test_inspect_defaults_are_the_shared_defaults():
    params = p2p_proc.validate_params({})
    for name, spec in SHARED.items():
        assert params[name] == spec.get("default"), name
