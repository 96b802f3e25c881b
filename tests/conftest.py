# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.ringrift.cluster`` importable from a checkout, for every test directory.

``collections/ansible_collections/ringrift/cluster`` is a symlink to the repository root, so the
shared test helpers import as ``ansible_collections.ringrift.cluster.tests.helpers``.
"""

from __future__ import absolute_import, division, print_function

import os
import sys

__metaclass__ = type

_COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
