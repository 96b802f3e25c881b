#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: python_imports
short_description: Which modules an interpreter can import
version_added: 0.3.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Runs O(python) once, importing every module of O(names), and returns the version of each module that imported and
    why each other one did not.
  - The same check the converge stamp repeats on the next run (M(ringrift.cluster.converge_stamp_info)), so what
    C(python_deps) proved and what the fast path re-checks cannot drift apart.
  - Read-only; never fails because a module is missing (the caller decides); one total deadline O(timeout).
options:
  python:
    description: Absolute path of the interpreter, such as the daemon's venv C(bin/python).
    type: path
    required: true
  names:
    description: Module names to import (C(yaml), C(google.protobuf)).
    type: list
    elements: str
    required: true
  timeout:
    description: Seconds the whole check may take (importing torch from a cold cache is slow).
    type: float
    default: 120
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs the same check.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
"""

EXAMPLES = r"""
- name: Import the daemon's dependencies with its interpreter
  ringrift.cluster.python_imports:
    python: /home/ubuntu/ringrift/ai-service/venv/bin/python
    names: [aiohttp, psutil, yaml, pydantic]
  register: imports

- name: Fail naming what is missing
  ansible.builtin.fail:
    msg: "cannot import {{ imports.missing.keys() | join(', ') }}"
  when: imports.missing | length > 0
"""

RETURN = r"""
python:
  description: The interpreter as it names itself (C(sys.executable)), else O(python).
  returned: always
  type: str
ok:
  description: Each module that imported, with its C(__version__) (empty when it has none).
  returned: always
  type: dict
  sample: {yaml: "6.0.2", psutil: "6.1.0"}
missing:
  description: Each module that did not import, with the exception (or, when the check could not run, that reason).
  returned: always
  type: dict
  sample: {psutil: "ModuleNotFoundError: No module named 'psutil'"}
error:
  description: Why the check could not run at all (no interpreter, a crash, a timeout); null when it ran.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ringrift.cluster.plugins.module_utils import python_imports, service_manager, validate


def main():
    module = AnsibleModule(
        argument_spec=dict(
            python=dict(type="path", required=True),
            names=dict(type="list", elements="str", required=True),
            timeout=dict(type="float", default=120.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    bad = [validate.problem("module_name", name, "names") for name in params["names"]]
    bad = [why for why in bad if why]
    if validate.problem("abs_path", params["python"], "python"):
        bad.append(validate.problem("abs_path", params["python"], "python"))
    if params["timeout"] <= 0:
        bad.append("timeout must be more than 0 seconds")
    if bad:
        module.fail_json(msg="; ".join(bad))

    # The same runner as the converge stamp's re-check of these imports: one environment for both.
    runner = service_manager.bounded_runner(params["timeout"])
    result = python_imports.check_imports(params["python"], params["names"], runner)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
