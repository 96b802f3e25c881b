# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The listener verdict: who really listens on the daemon's port, and if not, why.

Stdlib only, Python 3.8+. The facts come from focused modules, each with its own tests:

* ``p2p_sockets`` - LISTEN sockets of ``/proc/net/tcp*`` and the PIDs holding them
* ``p2p_process`` - what ``/proc/<pid>`` says about one process
* ``service_manager`` - what systemd or supervisor says about the unit or program (one reader)
* ``p2p_health`` - the daemon's health endpoint under a total deadline
* ``p2p_log`` - the error of the daemon's most recent run in its log

This module weighs them into one diagnosis. Public API (``p2p_listener``, ``node_audit``,
``converge_stamp``, the fleet report and the quorum guard):

* :data:`DIAGNOSES` / :data:`ALIVE_DIAGNOSES` - every verdict, and those that mean alive
* :data:`LISTENER_ARGUMENT_SPEC` - the options ``p2p_listener`` and ``node_audit`` share
* :func:`validate_params` - the options checked and completed with the defaults
* :func:`inspect` - the complete ``p2p_listener`` result for one node
* :func:`blank_result` - a result with every key and nothing found
* :func:`owner_groups` / :func:`script_argument` - how holders are grouped, which script a command line runs
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import re
import shlex
import time

from ansible_collections.ringrift.cluster.plugins.module_utils import (
    p2p_health, p2p_log, p2p_process, p2p_sockets, service_manager, validate)

DEFAULT_PORT = 8770
DEFAULT_CMDLINE_REGEX = r"p2p_orchestrator"
DEFAULT_HEALTH_TIMEOUT = 5.0
POLL_INTERVAL = 0.5
# A started daemon may take this long to listen (the real one: 12 s with --advertise-host,
# about 100 s without it, longer on a busy machine) before "not listening" means broken.
DEFAULT_START_GRACE = 180

DIAGNOSES = (
    "healthy",
    "busy",
    "starting",
    "not_listening",
    "never_started",
    "crashed",
    "wrong_owner",
    "owner_unknown",
    "unmanaged",
    "health_failed",
    "port_shared",
)
ALIVE_DIAGNOSES = ("healthy", "busy")

# The options p2p_listener and node_audit share, one declaration for both modules
# (documented in the doc fragments listener_options and daemon_run). Each module adds its own.
LISTENER_ARGUMENT_SPEC = dict(
    port=dict(type="int", default=DEFAULT_PORT),
    node_id=dict(type="str"),
    cmdline_regex=dict(type="str", default=DEFAULT_CMDLINE_REGEX),
    python=dict(type="path"),
    script=dict(type="str"),
    health_timeout=dict(type="float", default=DEFAULT_HEALTH_TIMEOUT),
    service_name=dict(type="str", default=service_manager.DEFAULT_SERVICE_NAME),
    service_manager=dict(type="str", default="none", choices=list(service_manager.SERVICE_MANAGERS)),
    start_grace=dict(type="float", default=DEFAULT_START_GRACE),
    service_dir=dict(type="path"),
)


# Every option of inspect(): the shared ones, then those only p2p_listener has (node_audit sets them itself).
_PARAM_DEFAULTS = dict((name, spec.get("default")) for name, spec in LISTENER_ARGUMENT_SPEC.items())
_PARAM_DEFAULTS.update({
    "bind_address": None,
    "check_port_in_cmdline": False,
    "health_path": None,
    "log_path": None,
    "log_tail_bytes": p2p_log.DEFAULT_LOG_TAIL_BYTES,
    "timeout": 0,
    "state": "listening",
    "fail_on_mismatch": True,
    "proc_root": "/proc",
})

# How often one check re-reads the socket table when a holder exits between the
# socket scan and the read of its /proc entry.
_SETTLE_SCANS = 3


def _cmdline_text(cmdline):
    return " ".join(shlex.quote(arg) for arg in (cmdline or []))


def _empty_result(params):
    return {
        "changed": False,
        "failed": False,
        "state": params["state"],
        "state_ok": False,
        "port": params["port"],
        "listening": False,
        "pid": None,
        "owner_pids": [],
        "other_owners": [],
        "cmdline": [],
        "exe": None,
        "cwd": None,
        "user": None,
        "ppid": None,
        "started_at": None,
        "uptime_seconds": None,
        "addresses": [],
        "unreadable_fd_dirs": 0,
        "owner_matches": None,
        "owner_problem": None,
        "managed_pid": None,
        "service_manager": None,
        "service": None,
        "health": None,
        "diagnosis": None,
        "error_kind": None,
        "missing_module": None,
        "missing_modules": [],
        "last_error": None,
        "log_excerpt": [],
        "attempts": 0,
        "waited_seconds": 0.0,
        "warnings": [],
        "msg": "",
    }


def blank_result(port, state="listening"):
    """A result with every key of :func:`inspect` and nothing found yet (diagnosis None)."""
    return _empty_result({"port": port, "state": state})


def _running_as_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _strip_deleted(link):
    """``/usr/bin/python3.11 (deleted)`` -> ``/usr/bin/python3.11`` (the file was replaced, say by a package upgrade)."""
    suffix = " (deleted)"
    return link[:-len(suffix)] if link and link.endswith(suffix) else link


def _environ_path(pid, proc_root):
    """``PATH`` of a process (``None`` when unreadable); nothing else of its environment is kept."""
    try:
        with open(os.path.join(proc_root, str(pid), "environ"), "rb") as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    for item in data.split(b"\0"):
        if item.startswith(b"PATH="):
            return item[5:].decode("utf-8", "replace")
    return None


def _invoked_path(info, proc_root):
    """Absolute path that ``argv[0]`` names, as the interpreter itself resolves it
    (relative to the process's cwd, or searched in its ``PATH``); ``None`` when unknown."""
    argv0 = (info.get("cmdline") or [""])[0]
    if not argv0:
        return None
    if "/" in argv0:
        if os.path.isabs(argv0):
            return os.path.normpath(argv0)
        cwd = info.get("cwd")
        return os.path.normpath(os.path.join(cwd, argv0)) if cwd else None
    search = _environ_path(info["pid"], proc_root)
    if search is None:
        return None
    for directory in search.split(os.pathsep):
        candidate = os.path.join(directory or ".", argv0)
        if not os.path.isabs(candidate):
            if not info.get("cwd"):
                continue
            candidate = os.path.join(info["cwd"], candidate)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.normpath(candidate)
    return None


def _interpreter_check(info, expected, proc_root):
    """``(diagnosis, problem)`` for the ``python`` option; ``(None, None)`` when it holds.

    The binary (``/proc/<pid>/exe``) must be the file ``expected`` resolves to, and
    ``argv[0]`` must name ``expected`` itself or another name for the same binary in the
    same directory (``venv/bin/python3`` next to ``venv/bin/python``): a venv's python is
    a symlink to the system one, so only ``argv[0]`` tells whether the venv is in use.
    """
    pid = info["pid"]
    exe = _strip_deleted(info.get("exe"))
    if exe is None:
        return "owner_unknown", "cannot read /proc/%s/exe to check the interpreter against %s%s" % (
            pid, expected, "" if _running_as_root() else " (run with become)")
    if exe != os.path.realpath(expected):
        return "wrong_owner", "interpreter is %s, expected %s (%s)" % (exe, expected, os.path.realpath(expected))
    invoked = _invoked_path(info, proc_root)
    if invoked is None:
        return "owner_unknown", "cannot tell which file argv[0] %r of pid %s names (cwd or PATH unreadable)" % (
            (info.get("cmdline") or [""])[0], pid)
    wanted = os.path.normpath(expected)
    if invoked == wanted:
        return None, None
    if os.path.dirname(invoked) == os.path.dirname(wanted) and os.path.realpath(invoked) == os.path.realpath(wanted):
        return None, None
    return "wrong_owner", "started as %s, expected %s (the same binary %s, but not the expected venv or install)" % (
        invoked, expected, exe)


def script_argument(cmdline):
    """The script a Python command line runs: the first argument after the interpreter's
    options (``-u``, ``-X opt``, ``-W arg``, ``--``); ``None`` for ``-c``/``-m`` or no script."""
    args = list(cmdline or [])[1:]
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return args[index + 1] if index + 1 < len(args) else None
        if arg[:2] in ("-c", "-m"):
            return None
        if arg in ("-X", "-W"):
            index += 2
            continue
        if arg.startswith("-") and arg != "-":
            index += 1
            continue
        return arg
    return None


def _script_check(info, expected):
    """``(diagnosis, problem)`` for the ``script`` option; ``(None, None)`` when it holds.

    Relative paths (the command line's and ``expected``) are taken from the process's
    working directory (``/proc/<pid>/cwd``); both sides are compared with symlinks resolved.
    """
    pid = info["pid"]
    found = script_argument(info.get("cmdline"))
    if found is None:
        return "wrong_owner", "runs no script (expected %s)" % expected
    cwd = info.get("cwd")
    if not (os.path.isabs(found) and os.path.isabs(expected)) and cwd is None:
        return "owner_unknown", "cannot read /proc/%s/cwd to resolve the script %s%s" % (
            pid, found, "" if _running_as_root() else " (run with become)")
    found_path = os.path.realpath(os.path.join(cwd or "/", found))
    wanted_path = os.path.realpath(os.path.join(cwd or "/", expected))
    if found_path != wanted_path:
        return "wrong_owner", "script is %s, expected %s" % (found_path, wanted_path)
    return None, None


def _owner_check(info, params):
    """``(diagnosis, problem)``: why an owner process is not the expected daemon, and
    whether that is proven (``wrong_owner``) or cannot be seen (``owner_unknown``);
    ``(None, None)`` when it is the daemon."""
    cmdline = (info.get("cmdline") or []) if info else []
    text = " ".join(cmdline)
    if not re.search(params["cmdline_regex"], text):
        return "wrong_owner", "command line does not match %r" % params["cmdline_regex"]
    if params.get("node_id") is not None:
        found = p2p_process.cmdline_option(cmdline, "node-id")
        if found is None:
            return "wrong_owner", "no --node-id in command line (expected %s)" % params["node_id"]
        if found != str(params["node_id"]):
            return "wrong_owner", "--node-id is %s, expected %s" % (found, params["node_id"])
    if params.get("check_port_in_cmdline"):
        found = p2p_process.cmdline_option(cmdline, "port")
        effective = found if found is not None else str(DEFAULT_PORT)
        if effective != str(params["port"]):
            return "wrong_owner", "--port is %s%s, expected %s" % (
                effective, "" if found is not None else " (default)", params["port"])
    if params.get("python"):
        verdict = _interpreter_check(info, params["python"], params["proc_root"])
        if verdict[0]:
            return verdict
    if params.get("script"):
        verdict = _script_check(info, params["script"])
        if verdict[0]:
            return verdict
    return None, None


def _describe_error(log):
    if log["error_kind"] == "checkout_import":
        return ("cannot import %s, which is part of the checkout: the daemon runs without PYTHONPATH / working "
                "directory set to its service directory (%s)" % (log["missing_module"], log["last_error"]))
    if log["missing_module"]:
        return "missing module %s (%s)" % (", ".join(log["missing_modules"]), log["last_error"])
    return log["last_error"]


def _copy_log(result, log):
    result["log_excerpt"] = log["excerpt"]
    result["last_error"] = log["last_error"]
    result["missing_module"] = log["missing_module"]
    result["missing_modules"] = log["missing_modules"]
    result["error_kind"] = log["error_kind"]


def _restart_after_crash(log, age):
    """Whether a young run is a crash loop's next attempt rather than a start in progress.

    The previous run ended with its error; a run that has not yet lived as long as that
    one did (start marker to start marker) has not shown that it gets further.
    """
    previous = log.get("previous_run")
    if not previous or not previous["ends_with_error"]:
        return False
    started, before = log.get("run_started_epoch"), previous.get("started_epoch")
    if started is None or before is None or age is None:
        return True
    return age < (started - before) + 2


def _not_listening(result, params):
    port = params["port"]
    log_path = params.get("log_path")
    diagnosis = "not_listening"
    why = "nothing listens on port %s" % port
    if params.get("bind_address"):
        why += " at %s" % params["bind_address"]
    main_pid = result.get("managed_pid")
    main = p2p_process.process_info(main_pid, params["proc_root"]) if main_pid else None
    age = main["uptime_seconds"] if main else None
    young = main is not None and age is not None and age < params["start_grace"]
    log = p2p_log.diagnose_log(log_path, params["log_tail_bytes"], service_dir=params.get("service_dir")) if log_path else None
    if log is not None:
        _copy_log(result, log)
    if young and log is not None and log["last_error"] and log["ends_with_error"]:
        diagnosis = "crashed"
        why += "; the current run (pid %s, %ss old) is dying: %s" % (main_pid, age, _describe_error(log))
    elif young and log is not None and _restart_after_crash(log, age):
        diagnosis = "crashed"
        previous = log["previous_run"]
        for key in ("error_kind", "last_error", "missing_module", "missing_modules"):
            result[key] = previous[key]
        why += "; crash loop: %s restarted it %ss ago after the previous run died: %s" % (
            result["service_manager"], age, _describe_error(previous))
    elif young:
        diagnosis = "starting"
        why = "%s main PID %s started %ss ago and does not listen on port %s yet (start grace %ss)" % (
            result["service_manager"], main_pid, age, port, params["start_grace"])
    elif log is not None:
        if not log["exists"]:
            diagnosis = "never_started"
            why += "; no log file %s (never started)" % log_path
        elif log["last_error"]:
            diagnosis = "crashed"
            why += "; crashed: %s" % _describe_error(log)
        elif log["run_lines"] == 0 and (log["previous_run"] or {}).get("ends_with_error"):
            # The manager was asked between a crash-loop attempt's start marker and its first
            # line (or the attempt died silently): the run before it says why it cannot start.
            diagnosis = "crashed"
            previous = log["previous_run"]
            for key in ("error_kind", "last_error", "missing_module", "missing_modules"):
                result[key] = previous[key]
            why += "; crash loop: the newest attempt has printed nothing, the run before it died: %s" % _describe_error(previous)
        elif log["read_error"]:
            why += "; cannot read log %s: %s" % (log_path, log["read_error"])
    if main_pid and diagnosis != "starting":
        if main is not None:
            why += "; %s main PID %s is running but does not listen" % (result["service_manager"], main_pid)
    result["diagnosis"] = diagnosis
    return why


def owner_groups(holders, managed_pid=None, proc_root="/proc"):
    """Holder PIDs grouped by the owner they belong to, in the order of ``holders``.

    A holder belongs to the group of the topmost holder on its ppid chain (forked
    workers sharing their parent's socket); every holder in the process tree of
    ``managed_pid`` (the service manager's main PID) is one group. Two groups mean two
    separate programs listen on the port (``SO_REUSEPORT``, or another bind address).
    """
    groups = []
    by_root = {}
    holder_set = set(holders)
    for pid in holders:
        chain = p2p_process.ancestors(pid, proc_root)
        if managed_pid and (pid == managed_pid or managed_pid in chain):
            root = ("managed", managed_pid)
        else:
            above = [parent for parent in chain if parent in holder_set]
            root = ("pid", above[-1] if above else pid)
        if root not in by_root:
            by_root[root] = []
            groups.append(by_root[root])
        by_root[root].append(pid)
    return groups


def _owner_unknown_msg(port, unreadable):
    if _running_as_root():
        return ("port %s is in LISTEN but no /proc/<pid>/fd or /proc/<pid>/task/<tid>/fd links to its socket, even as root "
                "(the fds of %d processes unreadable): its holder is outside this PID namespace (a container sharing the network namespace?) "
                "or is closing it" % (port, unreadable))
    return "port %s is in LISTEN but no readable /proc/<pid>/fd links to its socket (the fds of %d processes unreadable; run with become)" % (
        port, unreadable)


def _listening(result, params, listeners, infos):
    port = params["port"]
    owner_pids = []
    for item in listeners:
        for pid in item["pids"]:
            if pid not in owner_pids:
                owner_pids.append(pid)
    result["owner_pids"] = owner_pids
    primaries = [item["pid"] for item in listeners if item["pid"] is not None]
    if not primaries:
        result["diagnosis"] = "owner_unknown"
        return _owner_unknown_msg(port, result["unreadable_fd_dirs"])
    unseen = [item["address"] for item in listeners if item["pid"] is None]
    if unseen:
        result["warnings"].append("port %s also listens on %s with no visible owner" % (port, ", ".join(unseen)))
    managed = result["managed_pid"] if result["managed_pid"] else None
    groups = owner_groups(owner_pids, managed, params["proc_root"])
    if managed is not None:  # the managed tree first: it is the one that should hold the port
        groups.sort(key=lambda group: not p2p_process.is_descendant(group[0], managed, params["proc_root"]))
    checks = dict((pid, _owner_check(infos[pid], params)) for pid in owner_pids)
    chosen = None
    for group in groups:
        for pid in [p for p in primaries if p in group] + group:
            if checks[pid][0] is None:
                chosen = pid
                break
        if chosen is not None:
            break
    if chosen is None:
        chosen = primaries[0]
    group = [g for g in groups if chosen in g][0]
    info = infos[chosen]
    result["pid"] = chosen
    for key in ("cmdline", "exe", "cwd", "user", "ppid", "started_at", "uptime_seconds"):
        value = info.get(key)
        result[key] = value if value is not None or key != "cmdline" else []
    others = []
    for other in groups:
        if other is group:
            continue
        lead = [p for p in primaries if p in other] or other
        addresses = [item["address"] for item in listeners if set(item["pids"]) & set(other)]
        others.append({"pid": lead[0], "pids": list(other), "cmdline": infos[lead[0]].get("cmdline") or [], "addresses": addresses})
    result["other_owners"] = others
    diagnosis, problem = checks[chosen]
    result["owner_problem"] = problem
    result["owner_matches"] = None if diagnosis == "owner_unknown" else problem is None
    holder = "pid %s (%s)" % (chosen, _cmdline_text(result["cmdline"]) or "?")
    also = "".join("; also held by pid %s (%s) on %s" % (o["pid"], _cmdline_text(o["cmdline"]) or "?", ", ".join(o["addresses"]))
                   for o in others)
    if diagnosis is not None:
        result["diagnosis"] = diagnosis
        return "port %s is held by %s: %s%s" % (port, holder, problem, also)
    if others:
        result["diagnosis"] = "port_shared"
        return ("port %s is held by %s%s: %d separate processes listen on the port (SO_REUSEPORT or another address), "
                "so part of the connections reach a process that is not the daemon's" % (port, holder, also, len(groups)))
    manager = result["service_manager"]
    if manager not in (None, "none"):
        main_pid = result["managed_pid"]
        if main_pid == 0:
            result["diagnosis"] = "unmanaged"
            return "port %s is held by %s but %s says %s is not running (stray copy outside the service)" % (
                port, holder, manager, params["service_name"])
        if main_pid is not None and not p2p_process.is_descendant(chosen, main_pid, params["proc_root"]):
            result["diagnosis"] = "unmanaged"
            return "port %s is held by %s, not by %s main PID %s of %s or its children" % (
                port, holder, manager, main_pid, params["service_name"])
    if params.get("health_path"):
        own = [item for item in listeners if set(item["pids"]) & set(group)]
        host = p2p_health.health_host(own, params.get("bind_address"))
        health = p2p_health.check_health(host, port, params["health_path"], params["health_timeout"], params.get("node_id"))
        result["health"] = health
        if not health["ok"]:
            result["diagnosis"] = "health_failed"
            return "%s listens on port %s but %s failed: %s" % (holder, port, health["url"], health["error"])
        if health["healthy"] is False:
            result["diagnosis"] = "busy"
            return "%s listens on port %s and answers, reporting healthy=false (busy)" % (holder, port)
    result["diagnosis"] = "healthy"
    return "%s listens on port %s%s" % (holder, port, " and answers %s" % params["health_path"] if params.get("health_path") else "")


def _settled_scan(params):
    """Socket scan plus ``process_info`` of every holder, consistent with each other.

    A holder that exits between the socket scan and the read of its ``/proc`` entry
    would look like a process without a command line (a wrong owner): the scan is
    repeated; a holder still gone after ``_SETTLE_SCANS`` scans is dropped, and so is
    a socket whose every holder is gone (it is closing).
    """
    match = "overlap" if params["state"] == "absent" else "exact"
    for attempt in range(_SETTLE_SCANS):
        scan = p2p_sockets.scan_listeners(params["port"], params["proc_root"], params.get("bind_address"), match=match)
        infos = {}
        for item in scan["listeners"]:
            for pid in item["pids"]:
                if pid not in infos:
                    infos[pid] = p2p_process.process_info(pid, params["proc_root"])
        gone = set(pid for pid, info in infos.items() if info is None)
        if not gone:
            return scan, infos
    kept = []
    for item in scan["listeners"]:
        pids = [pid for pid in item["pids"] if pid not in gone]
        if item["pids"] and not pids:
            continue
        if item["pid"] in gone:
            item = dict(item, pid=p2p_sockets.primary_pid(pids, params["proc_root"]))
        kept.append(dict(item, pids=pids))
    return dict(scan, listeners=kept), dict((pid, info) for pid, info in infos.items() if info is not None)


def _inspect_once(params, runner):
    result = _empty_result(params)
    manager = params.get("service_manager") or "none"
    if manager == "auto":
        manager = service_manager.detect_service_manager(params["proc_root"])
    result["service_manager"] = manager
    # The manager is asked once per attempt: the owner check and the report's view read one answer.
    view = service_manager.read_service(manager, params["service_name"], runner=runner, proc_root=params["proc_root"])
    result["service"] = service_manager.summary(view)
    if manager != "none":
        result["managed_pid"] = view["main_pid"]
        if view["main_pid"] is None:
            result["warnings"].append("could not get the main PID of %s from %s (%s); not comparing owners" % (
                params["service_name"], manager, view["detail"]))
    scan, infos = _settled_scan(params)
    listeners = scan["listeners"]
    result["unreadable_fd_dirs"] = scan["unreadable_fd_dirs"]
    result["addresses"] = [{"address": i["address"], "port": i["port"], "family": i["family"], "inode": i["inode"], "pid": i["pid"]}
                           for i in listeners]
    result["listening"] = bool(listeners)
    if listeners:
        why = _listening(result, params, listeners, infos)
    else:
        why = _not_listening(result, params)
    if params["state"] == "absent":
        result["state_ok"] = not result["listening"]
    else:
        result["state_ok"] = result["diagnosis"] in ALIVE_DIAGNOSES
    result["msg"] = why
    return result


def validate_params(params):
    """``params`` checked and completed with the defaults of :func:`inspect`; ``ValueError`` names the bad field.

    ``converge_stamp`` applies it too, so a stamp never records a check that cannot run.
    """
    merged = dict(_PARAM_DEFAULTS)
    merged.update(dict((key, value) for key, value in (params or {}).items() if value is not None))
    port = int(merged["port"])
    if not 0 < port < 65536:
        raise ValueError("port must be 1-65535, got %s" % port)
    merged["port"] = port
    if merged["state"] not in ("listening", "absent"):
        raise ValueError("state must be listening or absent, got %r" % merged["state"])
    if merged["service_manager"] not in service_manager.SERVICE_MANAGERS:
        raise ValueError("service_manager must be one of %s, got %r" % (", ".join(service_manager.SERVICE_MANAGERS), merged["service_manager"]))
    if merged.get("bind_address"):
        try:
            p2p_sockets.normalize_address(merged["bind_address"])
        except ValueError:
            raise ValueError("bind_address must be an IP address, got %r" % merged["bind_address"])
    try:
        re.compile(merged["cmdline_regex"])
    except re.error as exc:
        raise ValueError("cmdline_regex %r is not a valid regular expression: %s" % (merged["cmdline_regex"], exc))
    if merged["node_id"] is not None:
        merged["node_id"] = str(merged["node_id"])
    # service_name reaches systemctl/supervisorctl argv: never an option ("-x"), never a pattern.
    for field, kind in (("python", "abs_path"), ("script", "script_path"), ("health_path", "url_path"),
                        ("service_name", "service_name")):
        if merged.get(field) not in (None, ""):
            why = validate.problem(kind, merged[field], field)
            if why:
                raise ValueError(why)
    merged["timeout"] = max(0.0, float(merged["timeout"]))
    merged["health_timeout"] = float(merged["health_timeout"])
    if math.isnan(merged["health_timeout"]) or merged["health_timeout"] <= 0:
        raise ValueError("health_timeout must be more than 0 seconds, got %s" % merged["health_timeout"])
    merged["log_tail_bytes"] = max(1, int(merged["log_tail_bytes"]))
    merged["start_grace"] = max(0.0, float(merged["start_grace"]))
    return merged


def inspect(params, runner=None, sleep=time.sleep, clock=time.monotonic):
    """The complete ``p2p_listener`` result for one node.

    :arg params: dict with the module options (``port``, ``bind_address``, ``cmdline_regex``,
        ``node_id``, ``check_port_in_cmdline``, ``health_path``, ``health_timeout``,
        ``service_name``, ``service_manager``, ``log_path``, ``log_tail_bytes``, ``timeout``,
        ``state``, ``fail_on_mismatch``, ``proc_root``); missing keys take the module defaults.
        Raises ``ValueError`` for invalid values.
    :arg runner: ``runner(argv) -> (rc, stdout, stderr)`` for ``systemctl``/``supervisorctl``
        (default: :func:`service_manager.bounded_runner`).
    :returns: dict with the keys documented in the module's RETURN (``listening``, ``pid``,
        ``cmdline``, ``exe``, ``user``, ``started_at``, ``uptime_seconds``, ``addresses``,
        ``owner_matches``, ``managed_pid``, ``service_manager``, ``health``, ``diagnosis``,
        ``missing_module``, ``last_error``, ``log_excerpt``, ``msg``, ``failed``, ``changed``...)
        plus ``warnings`` (list of text). It polls every 0.5 s until the asked state holds or
        ``timeout`` seconds passed. ``failed`` is true when the state does not hold and
        ``fail_on_mismatch`` is true.
    """
    params = validate_params(params)
    started = clock()
    deadline = started + params["timeout"]
    attempts = 0
    while True:
        attempts += 1
        result = _inspect_once(params, runner)
        now = clock()
        if result["state_ok"] or now >= deadline:
            break
        sleep(max(0.0, min(POLL_INTERVAL, deadline - now)))
    result["attempts"] = attempts
    result["waited_seconds"] = round(clock() - started, 3)
    if not result["state_ok"]:
        if params["state"] == "absent":
            result["msg"] = "port %s is not free: %s" % (params["port"], result["msg"])
        if params["timeout"] > 0:
            result["msg"] += " (after waiting %ss)" % params["timeout"]
        result["failed"] = bool(params["fail_on_mismatch"])
    return result
