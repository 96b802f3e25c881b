# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role's defaults and its argument spec say the same thing: one list of settings."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = sorted(name for name in os.listdir(os.path.join(REPO, "roles"))
               if os.path.isfile(os.path.join(REPO, "roles", name, "meta", "argument_specs.yml")))


def _load(role, *parts):
    path = os.path.join(REPO, "roles", role, *parts)
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def _options(role):
    """The options of every entry point (main, and tasks_from entry points such as p2p_contract's programs)."""
    merged = {}
    for entry in _load(role, "meta", "argument_specs.yml")["argument_specs"].values():
        merged.update(entry.get("options") or {})
    return merged


def test_every_role_has_an_argument_spec():
    assert set(ROLES) == set(os.listdir(os.path.join(REPO, "roles")))


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_spec_agree(role):
    defaults = _load(role, "defaults", "main.yml")
    options = _options(role)
    # A required setting has no default, so it is in the spec only.
    own = dict((k, v) for k, v in options.items() if k.startswith(role + "_") and not v.get("required"))
    assert sorted(defaults) == sorted(own), "defaults/main.yml and meta/argument_specs.yml list different settings"
    disagree = ["%s: %r in defaults/main.yml, %r in the argument spec" % (name, value, options[name].get("default", "<none>"))
                for name, value in defaults.items() if options[name].get("default", "<none>") != value]
    assert disagree == []


@pytest.mark.parametrize("role", ROLES)
def test_settings_carry_the_role_prefix_or_the_contract_namespace(role):
    options = _options(role)
    foreign = [name for name in options if not name.startswith(role + "_")
               and not (role == "p2p_contract" and (name.startswith("ringrift_") or name.startswith("p2p_daemon_git_")))]
    assert foreign == []
