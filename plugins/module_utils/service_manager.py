# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the service manager (systemd or supervisor) says about the daemon's unit or program.

Stdlib only, Python 3.8+. One reader, :func:`read_service`, asks the manager and parses its
answer; ``p2p_proc`` (the main PID the port owner must be), ``node_audit`` (the report's
service view) and ``converge_stamp`` (unit enabled, no pending daemon-reload) all use it, so
the three cannot read the same manager differently. Every command runs through
:func:`bounded_runner` (one total deadline, ``process.run_bounded``).

Public API:

* :data:`SERVICE_MANAGERS` - the values of the modules' ``service_manager`` option
* :func:`bounded_runner` - ``runner(argv) -> (rc, stdout, stderr)`` with a deadline
* :func:`detect_service_manager` - ``auto`` resolved from PID 1
* :func:`read_service` - the unit's or program's state, installed flag, main PID, unit file state
* :func:`summary` - what a report shows of it
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_process, process

SERVICE_MANAGERS = ("auto", "systemd", "supervisor", "none")
DEFAULT_SERVICE_NAME = "ringrift-p2p"
# Seconds one systemctl/supervisorctl call may take; a manager that does not answer by then
# is "could not be asked", not a hung audit.
COMMAND_TIMEOUT = 10
# What a report shows of a service (node_audit's and p2p_listener's ``service``).
SUMMARY_KEYS = ("manager", "installed", "state", "restarts", "main_pid")
# The properties every caller needs, asked in one `systemctl show`.
SYSTEMD_PROPERTIES = ("LoadState", "ActiveState", "SubState", "NRestarts", "MainPID", "UnitFileState", "NeedDaemonReload")
# Where AnsibleModule.get_bin_path also looks: a become shell's PATH may lack the sbin directories.
_EXTRA_BIN_DIRS = ("/sbin", "/usr/sbin", "/usr/local/sbin")
_SUPERVISOR_STATE_RE = re.compile(r"^\S+\s+([A-Z]+)\b(?:.*\bpid (\d+))?")
_SUPERVISOR_STOPPED_RE = re.compile(r"\b(STOPPED|BACKOFF|EXITED|FATAL|UNKNOWN)\b")
# Program states that have a process whose pid `supervisorctl status` does not print.
_SUPERVISOR_STATES_WITH_PROCESS = ("STARTING", "STOPPING")
_SUPERVISOR_PID_RE = re.compile(r"\bpid\s+(\d+)")
_NO_SUCH_PROCESS_RE = re.compile(r"no such process", re.IGNORECASE)


def _which(name, paths=None):
    for directory in (paths or os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(os.pathsep)):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_binary(name):
    """Absolute path of the command ``name`` (``PATH`` plus the sbin directories); a path is kept as given."""
    if "/" in name:
        return name
    search = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    return _which(name, search + [d for d in _EXTRA_BIN_DIRS if d not in search])


def bounded_runner(seconds=COMMAND_TIMEOUT, run=process.run_bounded):
    """``runner(argv) -> (rc, stdout, stderr)`` that gives each command at most ``seconds``.

    The one runner of every module that runs a command on the node (``p2p_listener``, ``node_audit``,
    ``converge_stamp_info``, ``python_imports``) and the default of :func:`p2p_proc.inspect`. A command that is not
    installed is ``(127, '', '<name> not found on this host')``; one that runs out of time is
    ``(124, stdout, 'timed out after <seconds>s')``. ``LC_ALL=C`` and no pager, so the answers parse.
    """
    def runner(argv):
        binary = find_binary(argv[0])
        if binary is None:
            return 127, "", "%s not found on this host" % argv[0]
        env = dict(os.environ, LC_ALL="C", SYSTEMD_PAGER="")
        rc, out, err, timed_out = run([binary] + list(argv[1:]), seconds, env=env)
        if timed_out:
            return process.TIMED_OUT_RC, out, "timed out after %ss" % seconds
        return rc, out, err
    return runner


def detect_service_manager(proc_root="/proc"):
    """``systemd`` when ``/proc/1/comm`` is ``systemd``; ``supervisor`` when PID 1 is
    ``supervisord`` or ``supervisorctl`` is on ``PATH``; otherwise ``none``."""
    try:
        comm = p2p_process.read_text(os.path.join(proc_root, "1", "comm")).strip()
    except (IOError, OSError):
        comm = ""
    if comm == "systemd":
        return "systemd"
    if comm.startswith("supervisord") or _which("supervisorctl"):
        return "supervisor"
    return "none"


def systemd_unit(name):
    """The unit name systemctl is asked about: ``ringrift-p2p`` -> ``ringrift-p2p.service``."""
    return name if name.endswith(".service") else name + ".service"


def _pid_text(text):
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def _blank_view(manager):
    return {"manager": manager, "answered": False, "installed": False, "state": None, "restarts": None,
            "main_pid": None, "unit_file_state": None, "need_daemon_reload": None, "rc": None, "detail": ""}


def _read_systemd(view, name, run):
    rc, out, err = run(["systemctl", "show", systemd_unit(name)] + [arg for prop in SYSTEMD_PROPERTIES for arg in ("-p", prop)])
    props = dict(line.split("=", 1) for line in (out or "").splitlines() if "=" in line)
    main_pid = _pid_text(props.get("MainPID"))
    view["rc"] = rc
    view["answered"] = rc == 0
    view["installed"] = rc == 0 and props.get("LoadState") == "loaded"
    if rc != 0 or main_pid is None:
        view["detail"] = (err or out or "systemctl rc=%s" % rc).strip()
    else:
        view["main_pid"] = main_pid
        view["detail"] = "MainPID=%d" % main_pid
    if rc == 0:
        view["unit_file_state"] = props.get("UnitFileState") or None
        view["need_daemon_reload"] = props.get("NeedDaemonReload") == "yes" if "NeedDaemonReload" in props else None
    if view["installed"]:
        view["state"] = "%s/%s" % (props.get("ActiveState"), props.get("SubState"))
        view["restarts"] = int(props["NRestarts"]) if props.get("NRestarts", "").isdigit() else None
    return view


def _read_supervisor(view, name, run):
    # One `status` is the whole answer for a program that is RUNNING (it prints the pid) or has
    # no process (STOPPED, BACKOFF, EXITED, FATAL): each supervisorctl is a Python start on the
    # node, and an audit asks every node. STARTING and STOPPING have a process but print no
    # pid, so only then is supervisord asked for it.
    rc, out, err = run(["supervisorctl", "status", name])
    text = (out or "") + (err or "")
    view["rc"] = rc
    state = _SUPERVISOR_STATE_RE.search((out or err or "").strip())
    unknown = _NO_SUCH_PROCESS_RE.search(text)
    if state and not unknown:
        view["installed"] = True
        view["state"] = state.group(1)
    running = _SUPERVISOR_PID_RE.search(text)
    if running:
        view["main_pid"], view["detail"] = int(running.group(1)), text.strip()
    elif view["state"] in _SUPERVISOR_STATES_WITH_PROCESS:
        pid = _pid_text(run(["supervisorctl", "pid", name])[1])
        if pid is not None:
            view["main_pid"], view["detail"] = pid, "supervisorctl pid: %d" % pid
        else:
            view["detail"] = "%s; supervisorctl pid did not answer" % text.strip()
    elif unknown or (view["installed"] and _SUPERVISOR_STOPPED_RE.search(text)):
        view["main_pid"], view["detail"] = 0, text.strip()
    else:
        view["detail"] = text.strip() or "supervisorctl rc=%s" % rc
    view["answered"] = view["main_pid"] is not None
    return view


def read_service(manager, name=DEFAULT_SERVICE_NAME, runner=None, proc_root="/proc"):
    """The unit's or program's state according to its manager: the one reader of both managers.

    :arg manager: ``systemd``, ``supervisor``, ``auto`` (see :func:`detect_service_manager`) or ``none``.
    :arg name: systemd unit (``.service`` added when missing) or supervisor program name.
    :arg runner: ``runner(argv) -> (rc, stdout, stderr)`` (default: :func:`bounded_runner`).
    :returns: dict ``{manager, answered, installed, state, restarts, main_pid, unit_file_state,
        need_daemon_reload, rc, detail}``. ``main_pid`` is an int > 0 for the main PID, ``0`` when
        the manager says the service is not running (or does not know it), ``None`` when it could
        not be asked; ``state`` is ``ActiveState/SubState`` (systemd) or the program's state word
        (supervisor), ``None`` when not installed; ``restarts`` is systemd's ``NRestarts``;
        ``unit_file_state`` and ``need_daemon_reload`` are systemd's (``None`` under supervisor);
        ``detail`` is a short text (the raw answer or the error).
    """
    run = runner or bounded_runner()
    if manager == "auto":
        manager = detect_service_manager(proc_root)
    if manager in (None, "none"):
        view = _blank_view("none")
        view["detail"] = "no service manager"
        return view
    if manager == "systemd":
        return _read_systemd(_blank_view(manager), name, run)
    if manager == "supervisor":
        return _read_supervisor(_blank_view(manager), name, run)
    raise ValueError("unknown service manager %r" % (manager,))


def summary(view):
    """What a report shows of a :func:`read_service` view: ``{manager, installed, state, restarts,
    main_pid}``, ``main_pid`` None for a service the manager does not know."""
    shown = dict((key, view[key]) for key in SUMMARY_KEYS)
    if not view["installed"]:
        shown["main_pid"] = None
    return shown
