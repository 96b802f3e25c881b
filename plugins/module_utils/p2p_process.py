# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Process identity read straight from ``/proc/<pid>``: command line, executable, user,
parent and start time of one process, and its ppid chain.

Stdlib only, Python 3.8+. Every function takes ``proc_root`` (default ``/proc``) so tests
can point it at a synthetic tree.

Public API (used by ``p2p_sockets``, ``service_manager`` and the verdict in ``p2p_proc``):

* :func:`read_text` - a ``/proc`` file as text
* :func:`read_stat` - the fields of ``/proc/<pid>/stat`` the verdict uses
* :func:`thread_ids` - the other threads of a process
* :func:`process_info` - cmdline, exe, user, ppid, start time of one PID
* :func:`ancestors` / :func:`is_descendant` - ppid-chain walk
* :func:`cmdline_option` - the value of ``--name`` in a command line
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import pwd
import time


def read_text(path, limit=None):
    """A ``/proc`` file as text (at most ``limit`` bytes); raises ``OSError`` when it cannot be read."""
    with open(path, "rb") as handle:
        data = handle.read() if limit is None else handle.read(limit)
    return data.decode("utf-8", "replace")


def thread_ids(pid, proc_root):
    """Thread ids of ``pid`` other than ``pid`` itself (``[]`` when unreadable)."""
    try:
        names = os.listdir(os.path.join(proc_root, str(pid), "task"))
    except (IOError, OSError):
        return []
    return sorted(int(name) for name in names if name.isdigit() and int(name) != int(pid))


def read_stat(pid, proc_root="/proc"):
    """Fields of ``/proc/<pid>/stat`` we use: ``{comm, state, ppid, starttime}`` or ``None``."""
    try:
        text = read_text(os.path.join(proc_root, str(pid), "stat"))
    except (IOError, OSError):
        return None
    open_paren = text.find("(")
    close_paren = text.rfind(")")
    if open_paren < 0 or close_paren < open_paren:
        return None
    rest = text[close_paren + 1:].split()
    # rest[0] is field 3 (state); field N is rest[N - 3]
    if len(rest) < 20:
        return None
    try:
        return {
            "comm": text[open_paren + 1:close_paren],
            "state": rest[0],
            "ppid": int(rest[1]),
            "starttime": int(rest[19]),
        }
    except ValueError:
        return None


def boot_time(proc_root="/proc"):
    """``btime`` of ``/proc/stat`` (epoch seconds of boot) or ``None``."""
    try:
        text = read_text(os.path.join(proc_root, "stat"))
    except (IOError, OSError):
        return None
    for line in text.splitlines():
        if line.startswith("btime "):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def clock_ticks():
    """``SC_CLK_TCK`` (100 on Linux when it cannot be read)."""
    try:
        value = os.sysconf("SC_CLK_TCK")
        return value if value > 0 else 100
    except (AttributeError, ValueError, OSError):
        return 100


def iso_utc(epoch):
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SSZ`` (UTC), ``None`` stays ``None``."""
    if epoch is None:
        return None
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=int(epoch))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_uid(pid, proc_root):
    try:
        text = read_text(os.path.join(proc_root, str(pid), "status"))
    except (IOError, OSError):
        return None
    for line in text.splitlines():
        if line.startswith("Uid:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    return None


def user_name(uid):
    """Login name for ``uid`` (its decimal text when it has no passwd entry)."""
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _read_cmdline_file(path):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    if data.endswith(b"\0"):
        data = data[:-1]
    if not data:
        return []
    return [part.decode("utf-8", "replace") for part in data.split(b"\0")]


def _readlink(path):
    try:
        return os.readlink(path)
    except (IOError, OSError):
        return None


def process_info(pid, proc_root="/proc", now=None):
    """What ``/proc`` says about one process.

    A process whose main thread (the thread-group leader) has exited while other
    threads run has an empty ``cmdline`` and no ``exe``/``cwd`` in ``/proc/<pid>``; they
    are then read from a live thread, ``/proc/<pid>/task/<tid>`` (``leader_exited`` true).

    :returns: ``None`` when ``/proc/<pid>`` does not exist (or vanished while being read),
        else a dict ``{pid, ppid, comm, cmdline (list), exe, cwd, uid, user, started_at
        (ISO 8601 UTC), start_epoch, uptime_seconds, leader_exited}``. Fields that cannot be
        read (``exe`` of another user's process without privileges, ...) are ``None``.
    """
    pid = int(pid)
    base = os.path.join(proc_root, str(pid))
    if not os.path.isdir(base):
        return None
    stat = read_stat(pid, proc_root)
    cmdline = _read_cmdline_file(os.path.join(base, "cmdline"))
    exe = _readlink(os.path.join(base, "exe"))
    cwd = _readlink(os.path.join(base, "cwd"))
    leader_exited = False
    if not cmdline and exe is None and stat is not None and stat["state"] == "Z":
        for tid in thread_ids(pid, proc_root):
            task = os.path.join(base, "task", str(tid))
            task_cmdline = _read_cmdline_file(os.path.join(task, "cmdline"))
            if task_cmdline:
                leader_exited = True
                cmdline = task_cmdline
                exe = _readlink(os.path.join(task, "exe"))
                cwd = _readlink(os.path.join(task, "cwd"))
                break
    if cmdline is None and not os.path.isdir(base):
        return None  # exited while we read it
    uid = _read_uid(pid, proc_root)
    start_epoch = None
    uptime = None
    btime = boot_time(proc_root)
    if stat is not None and btime is not None:
        start_epoch = btime + float(stat["starttime"]) / clock_ticks()
        current = time.time() if now is None else now
        uptime = round(max(0.0, current - start_epoch), 1)
    return {
        "pid": pid,
        "ppid": stat["ppid"] if stat else None,
        "comm": stat["comm"] if stat else None,
        "cmdline": cmdline,
        "exe": exe,
        "cwd": cwd,
        "uid": uid,
        "user": user_name(uid),
        "start_epoch": start_epoch,
        "started_at": iso_utc(start_epoch),
        "uptime_seconds": uptime,
        "leader_exited": leader_exited,
    }


def ancestors(pid, proc_root="/proc", limit=512):
    """PIDs of the ppid chain of ``pid`` (parent first, stops at 0/1 loops or unreadable stat)."""
    chain = []
    seen = set([int(pid)])
    stat = read_stat(pid, proc_root)
    while stat is not None and stat["ppid"] > 0 and stat["ppid"] not in seen and len(chain) < limit:
        chain.append(stat["ppid"])
        seen.add(stat["ppid"])
        stat = read_stat(stat["ppid"], proc_root)
    return chain


def is_descendant(pid, ancestor, proc_root="/proc"):
    """True when ``pid`` equals ``ancestor`` or ``ancestor`` is on its ppid chain."""
    if pid is None or ancestor is None:
        return False
    if int(pid) == int(ancestor):
        return True
    return int(ancestor) in ancestors(pid, proc_root)


def cmdline_option(cmdline, name):
    """Value of ``--name VALUE`` or ``--name=VALUE`` in an argument list (last wins), else ``None``."""
    value = None
    flag = "--" + name
    args = list(cmdline or [])
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(flag + "="):
            value = arg[len(flag) + 1:]
    return value
