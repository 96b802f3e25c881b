# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the listener verdict about the daemon's current run (p2p_listener, node_audit)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  start_grace:
    description:
      - Seconds a daemon started by its service manager may take to listen. While the manager's main PID is
        younger than this, does not listen and its current run logged no fatal error, RV(diagnosis) is
        V(starting) rather than V(not_listening) or V(crashed).
      - A young run that follows a run which died with an error, and has not yet lived as long as that one,
        is a crash loop and V(crashed).
    type: float
    default: 180
  service_dir:
    description:
      - The daemon's service directory (working directory, C(PYTHONPATH)). A missing module whose top-level
        package lives there (C(scripts), C(app)) is RV(error_kind=checkout_import); the daemon was started
        without C(PYTHONPATH), no package is missing.
    type: path
"""
