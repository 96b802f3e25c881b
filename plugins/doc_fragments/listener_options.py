# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the listener check shared by p2p_listener and node_audit (p2p_proc.LISTENER_ARGUMENT_SPEC)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  port:
    description: TCP port the daemon listens on.
    type: int
    default: 8770
  node_id:
    description:
      - Expected node id. The owner's command line must contain C(--node-id) with this value, and when
        O(health_path) is set the health answer's JSON C(node_id) must equal it.
    type: str
  cmdline_regex:
    description:
      - Python regular expression searched in the owner's command line (arguments joined with spaces).
      - An owner that does not match gives RV(diagnosis=wrong_owner).
    type: str
    default: p2p_orchestrator
  python:
    description:
      - Absolute path of the interpreter the service runs, for example C(/opt/ringrift/venv/bin/python).
      - The owner's executable (C(/proc/<pid>/exe)) must be the file this path resolves to, and its
        C(argv[0]), resolved the way the interpreter resolves it (relative to the process's working directory,
        or searched in its C(PATH)), must be this path or another name of the same binary in the same directory
        (C(venv/bin/python3) next to C(venv/bin/python)). A venv's python is a symlink to the system one, so a
        process started as C(/usr/bin/python3.11) has the same executable but not the venv, and gives RV(diagnosis=wrong_owner).
      - An executable or working directory that cannot be read (another user's process without root) gives
        RV(diagnosis=owner_unknown).
      - Unset skips the check.
    type: path
  script:
    description:
      - Path of the script the service runs, for example C(/opt/ringrift/ai-service/scripts/p2p_orchestrator.py).
      - The owner's script (its first argument after the interpreter's options; none for C(-c) or C(-m)) and this
        path are compared with symlinks resolved; a relative path, on either side, is taken relative to the
        process's working directory (C(/proc/<pid>/cwd)). A relative O(script) therefore only pins the script inside
        whatever directory the process runs in; an absolute one pins the checkout too.
      - Unset skips the check.
    type: str
  health_timeout:
    description:
      - Seconds the whole health request may take, connect, send and every read together (a server that
        sends one byte at a time cannot stretch it).
    type: float
    default: 5.0
  service_name:
    description: systemd unit (C(.service) is added when missing) or supervisor program name of the daemon.
    type: str
    default: ringrift-p2p
  service_manager:
    description:
      - Service manager whose main PID the owner must be (or descend from); otherwise RV(diagnosis=unmanaged).
      - V(systemd) asks C(systemctl show <service_name>.service) for C(MainPID) (and the unit's load, active and
        unit file state); V(supervisor) asks C(supervisorctl pid <service_name>) and C(supervisorctl status <service_name>).
        Each command may take 10 seconds; a manager that does not answer by then is reported in a warning and
        the owner is not compared.
      - V(auto) uses V(systemd) when C(/proc/1/comm) is C(systemd), V(supervisor) when PID 1 is
        C(supervisord) or C(supervisorctl) is on the path, and V(none) otherwise.
      - V(none), the default, skips the comparison and asks no manager; the audit playbooks pass V(auto).
      - When the manager says the service is not running (main PID 0) but a matching daemon holds the port,
        the diagnosis is V(unmanaged) too.
    type: str
    choices: [auto, systemd, supervisor, none]
    default: none
"""
