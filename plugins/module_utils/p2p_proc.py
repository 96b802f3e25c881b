# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who really listens on a TCP port, read straight from ``/proc``.

Stdlib only, Python 3.8+. Nothing here trusts a process name search
(``pgrep``/``pidof``/``ps``) or a PID file: a port is "held" only when a LISTEN
socket for it is in ``/proc/net/tcp`` or ``/proc/net/tcp6`` and the owner is
the process whose ``/proc/<pid>/fd`` links to that socket's inode.

Every function that reads ``/proc`` takes ``proc_root`` (default ``/proc``) so
tests can point it at a synthetic tree.

Public API (reused by ``p2p_listener``, ``node_audit`` and roles):

* :func:`parse_proc_net_tcp` - LISTEN sockets of one ``/proc/net/tcp*`` file
* :func:`scan_listeners` / :func:`find_listeners` - LISTEN sockets on a port with owner PIDs
* :func:`process_info` - cmdline, exe, user, ppid, start time of one PID
* :func:`is_descendant` - ppid-chain walk
* :func:`detect_service_manager` / :func:`managed_main_pid` - systemd/supervisor main PID
* :func:`diagnose_log` - last error of a daemon log (tracebacks, missing modules, ...)
* :func:`check_health` - plain HTTP GET of the daemon's health endpoint
* :func:`inspect` - the complete ``p2p_listener`` result for one node
* :func:`unsupported_os` - why a node is not one this module can read (no Linux ``/proc``)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import ipaddress
import json
import math
import os
import platform
import pwd
import re
import shlex
import socket
import stat as stat_module
import struct
import subprocess
import time

from ansible_collections.ringrift.cluster.plugins.module_utils import validate

DEFAULT_PORT = 8770
DEFAULT_CMDLINE_REGEX = r"p2p_orchestrator"
DEFAULT_SERVICE_NAME = "ringrift-p2p"
DEFAULT_LOG_TAIL_BYTES = 65536
LOG_EXCERPT_LINES = 20
HEALTH_BODY_LIMIT = 65536
HEALTH_HEAD_LIMIT = 16384
POLL_INTERVAL = 0.5
# A started daemon may take this long to listen (the real one: 12 s with --advertise-host,
# about 100 s without it, longer on a busy machine) before "not listening" means broken.
DEFAULT_START_GRACE = 180
# The unit and the supervisor program write this line (and a UTC time) into the log just
# before each start of the daemon: the log diagnosis reads only what the current run wrote.
START_MARKER = "==> ringrift.cluster: daemon start"

TCP_LISTEN = "0A"

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

SERVICE_MANAGERS = ("auto", "systemd", "supervisor", "none")

_SOCKET_LINK_RE = re.compile(r"^socket:\[(\d+)\]$")
_MISSING_MODULE_RE = re.compile(r"No module named ['\"]?([A-Za-z_][\w.]*)['\"]?")
_EXCEPTION_LINE_RE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure|Fault))(?::\s*(.*))?$")
_FATAL_DEPS_RE = re.compile(r"FATAL: Missing critical dependencies\W*(.*)$", re.IGNORECASE)
_NODE_ID_RE = re.compile(r"Could not auto-detect node-id", re.IGNORECASE)
_ADDR_IN_USE_RE = re.compile(r"Address already in use", re.IGNORECASE)
_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*([A-Za-z_][\w.\-]*)")
_NAME_TOKEN_RE = re.compile(r"[A-Za-z_][\w.\-]*")
# CSI / OSC / two-character terminal escape sequences (colour codes in daemon logs).
_ESCAPE_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_MARKER_TIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})Z")
_DEPS_STOPWORDS = frozenset(("pip", "install", "please", "run", "and", "missing", "modules", "module", "packages", "package", "r", "requirements.txt"))


# --------------------------------------------------------------------------- addresses

def _decode_hex_address(hex_addr):
    """Decode the hex address of ``/proc/net/tcp*``.

    The kernel prints the address as 32-bit words in host byte order (little-endian
    on every platform this runs on): 8 hex digits for IPv4, 32 for IPv6.

    Returns ``(address_text, family)`` with family ``ipv4`` or ``ipv6``; IPv6 addresses
    are written compressed (``::``, ``::1``, ``::ffff:127.0.0.1``).
    """
    hex_addr = hex_addr.strip()
    if len(hex_addr) == 8:
        packed = struct.pack("<I", int(hex_addr, 16))
        return socket.inet_ntop(socket.AF_INET, packed), "ipv4"
    if len(hex_addr) == 32:
        packed = b"".join(struct.pack("<I", int(hex_addr[i:i + 8], 16)) for i in range(0, 32, 8))
        ip = ipaddress.IPv6Address(packed)
        if ip.ipv4_mapped is not None:  # same text on every Python version
            return "::ffff:%s" % ip.ipv4_mapped, "ipv6"
        return str(ip), "ipv6"
    raise ValueError("unexpected address length in /proc/net/tcp: %r" % hex_addr)


def normalize_address(address):
    """Canonical text of an IP literal (IPv4-mapped IPv6 becomes its IPv4 form).

    ``'::ffff:127.0.0.1'`` -> ``'127.0.0.1'``; ``'0:0::1'`` -> ``'::1'``. Raises ``ValueError``
    for something that is not an IP literal (host names are not resolved).
    """
    text = str(address).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "%" in text:  # scope id (fe80::1%eth0) is not part of the socket table
        text = text.split("%", 1)[0]
    ip = ipaddress.ip_address(text)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


# --------------------------------------------------------------------------- sockets

def parse_proc_net_tcp(text, port=None, listen_only=True):
    """Parse the content of ``/proc/net/tcp`` or ``/proc/net/tcp6``.

    :arg text: file content (header line included).
    :arg port: only sockets whose local port equals it (``None``: all).
    :arg listen_only: only sockets in state ``0A`` (LISTEN).
    :returns: list of dicts ``{address, port, family, inode, uid, state}`` (address as text,
        see :func:`_decode_hex_address`; inode and uid as int; state the raw hex code).
        Malformed lines are skipped.
    """
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, state = fields[1], fields[3].upper()
        if listen_only and state != TCP_LISTEN:
            continue
        try:
            hex_addr, hex_port = local.rsplit(":", 1)
            local_port = int(hex_port, 16)
            if port is not None and local_port != int(port):
                continue
            address, family = _decode_hex_address(hex_addr)
            uid = int(fields[7])
            inode = int(fields[9])
        except ValueError:
            continue
        sockets.append({"address": address, "port": local_port, "family": family, "inode": inode, "uid": uid, "state": state})
    return sockets


def _read_text(path, limit=None):
    with open(path, "rb") as handle:
        data = handle.read() if limit is None else handle.read(limit)
    return data.decode("utf-8", "replace")


def read_listen_sockets(proc_root="/proc", port=None):
    """LISTEN sockets of ``<proc_root>/net/tcp`` and ``<proc_root>/net/tcp6``.

    A missing file (no IPv6 in the kernel) is skipped. Returns the list of
    :func:`parse_proc_net_tcp`, IPv4 first.
    """
    sockets = []
    for name in ("tcp", "tcp6"):
        path = os.path.join(proc_root, "net", name)
        try:
            text = _read_text(path)
        except (IOError, OSError):
            continue
        sockets.extend(parse_proc_net_tcp(text, port=port))
    return sockets


def _pid_dirs(proc_root):
    try:
        names = os.listdir(proc_root)
    except (IOError, OSError):
        return []
    return sorted(int(name) for name in names if name.isdigit())


def _fd_socket_inodes(fd_dir):
    """Socket inodes linked from one ``fd`` directory; raises ``OSError`` when it cannot be listed."""
    inodes = set()
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except (IOError, OSError):
            continue
        match = _SOCKET_LINK_RE.match(target)
        if match:
            inodes.add(int(match.group(1)))
    return inodes


def _thread_ids(pid, proc_root):
    """Thread ids of ``pid`` other than ``pid`` itself (``[]`` when unreadable)."""
    try:
        names = os.listdir(os.path.join(proc_root, str(pid), "task"))
    except (IOError, OSError):
        return []
    return sorted(int(name) for name in names if name.isdigit() and int(name) != int(pid))


def socket_owners(inodes, proc_root="/proc"):
    """Map socket inodes to the PIDs holding them, through ``/proc/<pid>/fd/*`` links.

    When the thread-group leader has exited while other threads still run, its
    ``/proc/<pid>/fd`` is empty (root) or unreadable (others) although the process still
    holds its sockets: for inodes not found in any ``/proc/<pid>/fd``, the
    ``/proc/<pid>/task/<tid>/fd`` of such processes are read too (owner: ``pid``).

    :arg inodes: iterable of socket inode numbers to look for.
    :returns: ``(owners, unreadable)``: ``owners`` maps each found inode to the sorted list
        of PIDs with an fd linking to ``socket:[inode]``; ``unreadable`` counts
        ``/proc/<pid>/fd`` directories that could not be listed (permission) and whose
        threads did not show the socket either. Processes that exit during the scan are
        skipped silently.
    """
    wanted = set(int(i) for i in inodes)
    owners = {}
    if not wanted:
        return owners, 0
    unreadable = set()
    empty = []
    for pid in _pid_dirs(proc_root):
        try:
            found = _fd_socket_inodes(os.path.join(proc_root, str(pid), "fd"))
        except (IOError, OSError) as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                unreadable.add(pid)
            continue
        if not found:
            empty.append(pid)
        for inode in found & wanted:
            owners.setdefault(inode, []).append(pid)
    if wanted - set(owners):
        for pid in sorted(unreadable) + empty:
            for tid in _thread_ids(pid, proc_root):
                try:
                    found = _fd_socket_inodes(os.path.join(proc_root, str(pid), "task", str(tid), "fd"))
                except (IOError, OSError):
                    continue
                unreadable.discard(pid)
                for inode in found & wanted:
                    if pid not in owners.setdefault(inode, []):
                        owners[inode].append(pid)
                break  # the threads of one process share one fd table
    return dict((inode, sorted(pids)) for inode, pids in owners.items()), len(unreadable)


def _primary_pid(pids, proc_root):
    """The holder that is not a descendant of another holder (the parent of forked workers)."""
    if not pids:
        return None
    holders = set(pids)
    for pid in sorted(pids):
        info = _read_stat(pid, proc_root)
        ppid = info["ppid"] if info else None
        seen = set()
        is_child = False
        while ppid and ppid not in seen:
            if ppid in holders:
                is_child = True
                break
            seen.add(ppid)
            parent = _read_stat(ppid, proc_root)
            ppid = parent["ppid"] if parent else None
        if not is_child:
            return pid
    return sorted(pids)[0]


def addresses_overlap(first, second):
    """True when a socket bound to ``first`` and one bound to ``second`` (same port) cannot both
    be bound without ``SO_REUSEPORT``: equal addresses, or a wildcard that covers the other.

    ``0.0.0.0`` covers every IPv4 address; ``::`` covers every address (a dual-stack socket,
    the Linux default, also takes IPv4). IPv4-mapped IPv6 compares as IPv4.
    """
    first, second = normalize_address(first), normalize_address(second)
    if first == second or "::" in (first, second):
        return True
    if "0.0.0.0" in (first, second):
        return "." in first and "." in second
    return False


def scan_listeners(port, proc_root="/proc", bind_address=None, match="exact"):
    """LISTEN sockets on ``port`` and who holds them.

    :arg port: TCP port.
    :arg proc_root: root of the proc file system.
    :arg bind_address: when set, only sockets bound to this address (IPv4-mapped IPv6
        compares equal to its IPv4 form). Must be an IP literal (``ValueError`` otherwise).
    :arg match: how ``bind_address`` selects sockets: ``exact`` (bound to exactly this
        address; ``0.0.0.0`` and ``::`` mean the wildcard socket only) or ``overlap``
        (every socket that keeps ``bind_address:port`` from being bound, see
        :func:`addresses_overlap`: a wildcard listener holds a specific address too).
    :returns: dict ``{listeners, unreadable_fd_dirs}``; ``listeners`` is a list of dicts
        ``{address, port, family, inode, pid, pids}`` where ``pid`` is the primary holder
        (``None`` when no readable ``/proc/<pid>/fd`` links to the socket) and ``pids`` every holder.
    """
    if match not in ("exact", "overlap"):
        raise ValueError("match must be exact or overlap, got %r" % (match,))
    wanted_address = normalize_address(bind_address) if bind_address not in (None, "") else None
    sockets = read_listen_sockets(proc_root, port=port)
    if wanted_address is not None:
        if match == "exact":
            sockets = [s for s in sockets if normalize_address(s["address"]) == wanted_address]
        else:
            sockets = [s for s in sockets if addresses_overlap(s["address"], wanted_address)]
    owners, unreadable = socket_owners([s["inode"] for s in sockets], proc_root)
    listeners = []
    for sock in sockets:
        pids = owners.get(sock["inode"], [])
        listeners.append({
            "address": sock["address"],
            "port": sock["port"],
            "family": sock["family"],
            "inode": sock["inode"],
            "pid": _primary_pid(pids, proc_root),
            "pids": sorted(pids),
        })
    return {"listeners": listeners, "unreadable_fd_dirs": unreadable}


def find_listeners(port, proc_root="/proc", bind_address=None, match="exact"):
    """Shortcut for ``scan_listeners(...)['listeners']``: list of ``{address, port, family, inode, pid, pids}``."""
    return scan_listeners(port, proc_root=proc_root, bind_address=bind_address, match=match)["listeners"]


# --------------------------------------------------------------------------- processes

def _read_stat(pid, proc_root="/proc"):
    """Fields of ``/proc/<pid>/stat`` we use: ``{comm, state, ppid, starttime}`` or ``None``."""
    try:
        text = _read_text(os.path.join(proc_root, str(pid), "stat"))
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
        text = _read_text(os.path.join(proc_root, "stat"))
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
        text = _read_text(os.path.join(proc_root, str(pid), "status"))
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


def read_cmdline(pid, proc_root="/proc"):
    """``/proc/<pid>/cmdline`` as a list of arguments (``[]`` for kernel threads/zombies, ``None`` when gone)."""
    return _read_cmdline_file(os.path.join(proc_root, str(pid), "cmdline"))


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
    stat = _read_stat(pid, proc_root)
    cmdline = _read_cmdline_file(os.path.join(base, "cmdline"))
    exe = _readlink(os.path.join(base, "exe"))
    cwd = _readlink(os.path.join(base, "cwd"))
    leader_exited = False
    if not cmdline and exe is None and stat is not None and stat["state"] == "Z":
        for tid in _thread_ids(pid, proc_root):
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
    stat = _read_stat(pid, proc_root)
    while stat is not None and stat["ppid"] > 0 and stat["ppid"] not in seen and len(chain) < limit:
        chain.append(stat["ppid"])
        seen.add(stat["ppid"])
        stat = _read_stat(stat["ppid"], proc_root)
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


# --------------------------------------------------------------------------- service managers

def _default_runner(argv, timeout=10):
    """Run ``argv``; return ``(rc, stdout, stderr)``; a missing binary is ``(127, '', why)``."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except (IOError, OSError) as exc:
        return 127, "", str(exc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return 124, out.decode("utf-8", "replace"), "timed out after %ss" % timeout
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _which(name, paths=None):
    for directory in (paths or os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(os.pathsep)):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def detect_service_manager(proc_root="/proc"):
    """``systemd`` when ``/proc/1/comm`` is ``systemd``; ``supervisor`` when PID 1 is
    ``supervisord`` or ``supervisorctl`` is on ``PATH``; otherwise ``none``."""
    try:
        comm = _read_text(os.path.join(proc_root, "1", "comm")).strip()
    except (IOError, OSError):
        comm = ""
    if comm == "systemd":
        return "systemd"
    if comm.startswith("supervisord") or _which("supervisorctl"):
        return "supervisor"
    return "none"


def unsupported_os(proc_root="/proc", system=None):
    """Why this node is not one the collection can manage, or None when it is.

    Everything here reads the socket table in ``<proc_root>/net/tcp`` / ``tcp6`` and the
    daemon runs under systemd or supervisor: Linux only. On another system (macOS has no
    ``/proc``) an audit would find no socket and call the daemon ``never_started``.
    ``system`` is ``platform.system()`` (default: this machine's), given in tests.
    """
    system = platform.system() if system is None else system
    if system != "Linux":
        return ("%s: the collection manages Linux nodes only (it reads /proc and runs the daemon under "
                "systemd or supervisor)" % (system or "an unknown operating system"))
    tables = [os.path.join(proc_root, "net", name) for name in ("tcp", "tcp6")]
    if not any(os.path.exists(path) for path in tables):
        return ("no %s or %s: without /proc no socket can be traced to its process (is /proc mounted?)"
                % tuple(tables))
    return None


def _parse_pid_text(text):
    text = (text or "").strip()
    if text.isdigit():
        return int(text)
    return None


def managed_main_pid(manager, service_name=DEFAULT_SERVICE_NAME, runner=None, proc_root="/proc"):
    """Main PID of the service as its manager sees it.

    :arg manager: ``systemd``, ``supervisor``, ``auto`` (see :func:`detect_service_manager`) or ``none``.
    :arg service_name: systemd unit / supervisor program name.
    :arg runner: callable ``runner(argv) -> (rc, stdout, stderr)`` (default: subprocess);
        pass ``AnsibleModule.run_command``-like wrappers or fakes in tests.
    :returns: ``(pid, detail)``: ``pid`` is an int > 0 for the main PID, ``0`` when the manager
        says the service is not running (or does not know it), ``None`` when the manager
        could not be asked (or ``manager`` is ``none``); ``detail`` is a short text (the raw
        answer or the error).
    """
    run = runner or _default_runner
    if manager == "auto":
        manager = detect_service_manager(proc_root)
    if manager in (None, "none"):
        return None, "no service manager"
    if manager == "systemd":
        rc, out, err = run(["systemctl", "show", "-p", "MainPID", "--value", service_name])
        pid = _parse_pid_text(out)
        if rc != 0 or pid is None:
            return None, (err or out or "systemctl rc=%s" % rc).strip()
        return pid, "MainPID=%d" % pid
    if manager == "supervisor":
        rc, out, err = run(["supervisorctl", "pid", service_name])
        pid = _parse_pid_text(out)
        if pid is not None:
            return pid, "supervisorctl pid: %d" % pid
        rc, out, err = run(["supervisorctl", "status", service_name])
        text = (out or "") + (err or "")
        match = re.search(r"\bpid\s+(\d+)", text)
        if match:
            return int(match.group(1)), text.strip()
        if re.search(r"\b(STOPPED|STARTING|BACKOFF|STOPPING|EXITED|FATAL|UNKNOWN)\b", text) or \
                re.search(r"no such process", text, re.IGNORECASE):
            return 0, text.strip()
        return None, (text.strip() or "supervisorctl rc=%s" % rc)
    raise ValueError("unknown service manager %r" % (manager,))


# --------------------------------------------------------------------------- logs

def strip_escapes(text):
    """``text`` without terminal escape sequences and other control characters but tab."""
    text = _ESCAPE_RE.sub("", text)
    return "".join(ch for ch in text if ch == "\t" or ord(ch) >= 32 and ord(ch) != 127)


def _tail_lines(path, tail_bytes):
    """The last ``tail_bytes`` of a regular file as lines, escape sequences stripped.

    Only a regular file is read (a FIFO would block, ``/dev/zero`` never ends): the file is
    opened non-blocking and checked with ``fstat`` on the open descriptor, so a path swapped
    after the check is refused too; at most ``tail_bytes`` are read whatever the file claims.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        info = os.fstat(fd)
        if not stat_module.S_ISREG(info.st_mode):
            raise IOError(errno.EINVAL, "not a regular file")
        size = info.st_size
        start = max(0, size - int(tail_bytes))
        os.lseek(fd, start, os.SEEK_SET)
        chunks = []
        remaining = int(tail_bytes)
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    lines = [strip_escapes(line) for line in text.splitlines()]
    if start > 0 and lines:
        lines = lines[1:]  # first line is cut
    return lines, size


def _marker_epoch(line):
    found = _MARKER_TIME_RE.search(line[line.index(START_MARKER) + len(START_MARKER):])
    if not found:
        return None
    try:
        moment = datetime.datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return (moment - datetime.datetime(1970, 1, 1)).total_seconds()


def split_runs(lines):
    """The log cut into runs of the daemon at the start markers, oldest first.

    Each run is ``{lines, started_epoch}``; lines before the first marker (a log written
    before the collection managed the daemon, or cut by the tail) form a run of their own
    with ``started_epoch`` ``None``.
    """
    runs = [{"lines": [], "started_epoch": None, "marked": False}]
    for line in lines:
        if START_MARKER in line:
            runs.append({"lines": [], "started_epoch": _marker_epoch(line), "marked": True})
        else:
            runs[-1]["lines"].append(line)
    if len(runs) > 1 and not runs[0]["lines"]:
        runs.pop(0)
    return runs


def _ends_with_error(lines, events):
    """Whether the run's output stops at its last error (a fatal traceback is the last thing a dying Python prints)."""
    if not events:
        return False
    tail = [line for line in lines[events[-1]["line"] + 1:] if line.strip()]
    return not tail


def _deps_from_fatal(lines, index):
    """Module names listed with ``FATAL: Missing critical dependencies`` (same line or bullets below)."""
    names = []
    match = _FATAL_DEPS_RE.search(lines[index])
    rest = match.group(1) if match else ""
    for token in _NAME_TOKEN_RE.findall(rest):
        if token.lower() not in _DEPS_STOPWORDS and token not in names:
            names.append(token)
    for line in lines[index + 1:index + 21]:
        bullet = _BULLET_RE.match(line)
        if not bullet:
            if line.strip():
                break
            continue
        token = bullet.group(1).rstrip(".,:;")
        if token.lower() not in _DEPS_STOPWORDS and token not in names:
            names.append(token)
    return names


def _traceback_end(lines, index):
    """Index and text of the exception line ending the traceback that starts at ``index``."""
    for pos in range(index + 1, len(lines)):
        line = lines[pos]
        if not line.strip() or line[:1] in (" ", "\t"):
            continue
        if line.startswith("Traceback (most recent call last)"):
            return None, None
        return pos, line.strip()
    return None, None


def find_log_errors(lines):
    """Error events in log lines, oldest first.

    Each event is ``{line, kind, text, modules}`` with ``kind`` one of ``missing_module``,
    ``missing_dependencies``, ``node_id_missing``, ``address_in_use``, ``exception``.
    A Python traceback yields one event for its final exception line.
    """
    events = []
    consumed = set()
    for index, line in enumerate(lines):
        if "Traceback (most recent call last)" in line:
            pos, text = _traceback_end(lines, index)
            if pos is None:
                continue
            consumed.add(pos)
            events.append(_classify_error(pos, text))
            continue
        if index in consumed:
            continue
        if _FATAL_DEPS_RE.search(line):
            events.append({"line": index, "kind": "missing_dependencies", "text": line.strip(), "modules": _deps_from_fatal(lines, index)})
        elif _NODE_ID_RE.search(line):
            events.append({"line": index, "kind": "node_id_missing", "text": line.strip(), "modules": []})
        elif _ADDR_IN_USE_RE.search(line):
            events.append({"line": index, "kind": "address_in_use", "text": line.strip(), "modules": []})
        elif _MISSING_MODULE_RE.search(line) and re.search(r"(ModuleNotFoundError|ImportError)", line):
            events.append(_classify_error(index, line.strip()))
    events.sort(key=lambda e: e["line"])
    return events


def _classify_error(index, text):
    missing = _MISSING_MODULE_RE.search(text)
    if missing and ("ModuleNotFoundError" in text or "ImportError" in text):
        return {"line": index, "kind": "missing_module", "text": text, "modules": [missing.group(1)]}
    if _ADDR_IN_USE_RE.search(text):
        return {"line": index, "kind": "address_in_use", "text": text, "modules": []}
    if _NODE_ID_RE.search(text):
        return {"line": index, "kind": "node_id_missing", "text": text, "modules": []}
    if _FATAL_DEPS_RE.search(text):
        return {"line": index, "kind": "missing_dependencies", "text": text, "modules": []}
    return {"line": index, "kind": "exception", "text": text, "modules": []}


def checkout_module(name, service_dir):
    """Whether the top-level package of module ``name`` is part of the daemon's own checkout."""
    if not name or not service_dir:
        return False
    top = name.split(".", 1)[0]
    return os.path.isdir(os.path.join(service_dir, top)) or os.path.isfile(os.path.join(service_dir, top + ".py"))


def diagnose_log(path, tail_bytes=DEFAULT_LOG_TAIL_BYTES, excerpt_lines=LOG_EXCERPT_LINES, service_dir=None):
    """Read the end of a daemon log and find the error of the daemon's most recent run.

    The log is cut into runs at the start markers the unit and the supervisor program
    write (:data:`START_MARKER`): only the newest run counts, so a traceback followed by a
    later start is history, not the cause. Recognised: the final exception line of a Python
    traceback (``ModuleNotFoundError: No module named 'psutil'`` gives
    ``missing_module='psutil'``), the real daemon's ``FATAL: Missing critical dependencies``
    (module names on the same line or as bullet lines below), ``Could not auto-detect
    node-id`` and ``Address already in use``. A missing module that is part of the checkout
    in ``service_dir`` (``scripts``, ``app``) is ``error_kind='checkout_import'``: the
    daemon runs without ``PYTHONPATH``/working directory, no package is missing.

    :returns: dict ``{path, exists, readable, size, runs, error_kind, last_error, missing_module,
        missing_modules, excerpt, read_error, ends_with_error, run_started_epoch,
        previous_run}``; ``excerpt`` is the newest run's last ``excerpt_lines`` lines; ``previous_run``
        describes the run before (``{error_kind, last_error, ends_with_error, started_epoch}``)
        or is ``None``.
    """
    result = {
        "path": path,
        "exists": False,
        "readable": False,
        "size": None,
        "runs": 0,
        "error_kind": None,
        "last_error": None,
        "missing_module": None,
        "missing_modules": [],
        "excerpt": [],
        "read_error": None,
        "ends_with_error": False,
        "run_started_epoch": None,
        "previous_run": None,
    }
    if not path:
        return result
    if not os.path.lexists(path):
        return result
    result["exists"] = True
    try:
        lines, size = _tail_lines(path, tail_bytes)
    except (IOError, OSError) as exc:
        result["read_error"] = exc.strerror or str(exc)
        return result
    result["readable"] = True
    result["size"] = size
    runs = split_runs(lines)
    result["runs"] = sum(1 for run in runs if run["marked"])
    current = runs[-1]
    result["excerpt"] = current["lines"][-excerpt_lines:] if excerpt_lines else []
    result["run_started_epoch"] = current["started_epoch"]
    summary = _run_errors(current["lines"], service_dir)
    result.update(summary)
    if len(runs) > 1:
        previous = runs[-2]
        prior = _run_errors(previous["lines"], service_dir)
        result["previous_run"] = {"error_kind": prior["error_kind"], "last_error": prior["last_error"],
                                  "missing_module": prior["missing_module"], "missing_modules": prior["missing_modules"],
                                  "ends_with_error": prior["ends_with_error"], "started_epoch": previous["started_epoch"]}
    return result


def _run_errors(lines, service_dir):
    found = {"error_kind": None, "last_error": None, "missing_module": None, "missing_modules": [], "ends_with_error": False}
    events = find_log_errors(lines)
    if events:
        last = events[-1]
        found["error_kind"] = last["kind"]
        found["last_error"] = last["text"]
        found["missing_modules"] = list(last["modules"])
        found["missing_module"] = last["modules"][0] if last["modules"] else None
        if last["kind"] == "missing_module" and checkout_module(found["missing_module"], service_dir):
            found["error_kind"] = "checkout_import"
        found["ends_with_error"] = _ends_with_error(lines, events)
    return found


# --------------------------------------------------------------------------- health

class _HealthError(Exception):
    """The health answer is unusable (too large, not HTTP); the text says why."""


def _remaining(deadline, clock):
    """Seconds left before ``deadline``; ``socket.timeout`` once it has passed."""
    left = deadline - clock()
    if left <= 0:
        raise socket.timeout("deadline passed")
    return left


def _parse_head(head):
    """Status code and lower-cased headers of an HTTP response head (bytes up to the blank line)."""
    lines = head.decode("iso-8859-1").split("\r\n")
    match = re.match(r"HTTP/\d(?:\.\d)? (\d{3})(?: |$)", lines[0])
    if not match:
        raise _HealthError("not an HTTP answer: %r" % lines[0][:80])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(match.group(1)), headers


def _dechunk(data):
    """Body of a complete ``Transfer-Encoding: chunked`` payload, ``None`` while incomplete."""
    body = bytearray()
    pos = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size_text = data[pos:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _HealthError("bad chunk size %r" % bytes(size_text[:20]))
        if size == 0:
            return bytes(body)
        start = line_end + 2
        if len(data) < start + size + 2:
            return None
        body += data[start:start + size]
        pos = start + size + 2


def _http_get(host, port, path, deadline, clock):
    """``(status, body bytes)`` of ``GET path``; every step (connect, send, each read) shares ``deadline``.

    A per-read timeout alone lets a server that sends one byte at a time hold the
    caller for as long as it likes; here the whole exchange ends at ``deadline``, and
    the head and body are bounded (``HEALTH_HEAD_LIMIT``, ``HEALTH_BODY_LIMIT``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(_remaining(deadline, clock))
        sock.connect((host, int(port)))
        host_header = "[%s]:%s" % (host, port) if ":" in host else "%s:%s" % (host, port)
        request = ("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                   "User-Agent: ringrift.cluster.p2p_listener\r\nConnection: close\r\n\r\n" % (path, host_header))
        sock.settimeout(_remaining(deadline, clock))
        sock.sendall(request.encode("ascii"))
        data = bytearray()
        head_end = -1
        status = headers = None
        while True:
            sock.settimeout(_remaining(deadline, clock))
            chunk = sock.recv(16384)
            eof = not chunk
            data += chunk
            if head_end < 0:
                head_end = data.find(b"\r\n\r\n")
                if head_end < 0:
                    if len(data) > HEALTH_HEAD_LIMIT:
                        raise _HealthError("response head longer than %d bytes" % HEALTH_HEAD_LIMIT)
                    if eof:
                        raise _HealthError("connection closed before the response head ended")
                    continue
                status, headers = _parse_head(bytes(data[:head_end]))
            raw = data[head_end + 4:]
            chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            if chunked:
                body = _dechunk(raw)
                if body is not None:
                    return status, body
            elif headers.get("content-length", "").isdigit():
                length = int(headers["content-length"])
                if length > HEALTH_BODY_LIMIT:
                    raise _HealthError("body of %d bytes is over the %d byte limit" % (length, HEALTH_BODY_LIMIT))
                if len(raw) >= length:
                    return status, bytes(raw[:length])
            elif eof:
                return status, bytes(raw)
            if len(raw) > HEALTH_BODY_LIMIT + (HEALTH_HEAD_LIMIT if chunked else 0):
                raise _HealthError("body over the %d byte limit" % HEALTH_BODY_LIMIT)
            if eof:
                raise _HealthError("connection closed before the body ended")
    finally:
        sock.close()


def check_health(host, port, path="/health", timeout=5.0, expected_node_id=None, clock=time.monotonic):
    """``GET http://<host>:<port><path>`` without proxies, within ``timeout`` seconds in total.

    ``timeout`` bounds the whole request (connect, send and every read together), not each
    read; the response head may hold ``HEALTH_HEAD_LIMIT`` bytes and the body ``HEALTH_BODY_LIMIT``.

    :returns: dict ``{url, status, ok, body, json, healthy, node_id, error, elapsed}``:
        ``ok`` is true for a 2xx answer whose JSON ``node_id`` equals ``expected_node_id``
        (when given); ``healthy`` is the JSON ``healthy`` field (``None`` when absent);
        ``error`` says why ``ok`` is false (``timed out``, ``connection refused``, ``HTTP 500``,
        ``node_id mismatch``, ``body ... over the ... byte limit``...); ``elapsed`` is seconds.
    """
    if not path.startswith("/"):
        path = "/" + path
    url_host = "[%s]" % host if ":" in host else host
    result = {
        "url": "http://%s:%s%s" % (url_host, port, path),
        "status": None,
        "ok": False,
        "body": None,
        "json": None,
        "healthy": None,
        "node_id": None,
        "error": None,
        "elapsed": None,
    }
    started = clock()
    try:
        status, body = _http_get(host, port, path, started + float(timeout), clock)
        result["status"] = status
        result["body"] = body.decode("utf-8", "replace")
    except socket.timeout:
        result["error"] = "timed out after %ss (whole request)" % timeout
    except _HealthError as exc:
        result["error"] = str(exc)
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.ECONNREFUSED:
            result["error"] = "connection refused"
        else:
            result["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        result["elapsed"] = round(clock() - started, 3)
    if result["body"] is not None:
        try:
            data = json.loads(result["body"])
        except ValueError:
            data = None
        result["json"] = data
        if isinstance(data, dict):
            if isinstance(data.get("healthy"), bool):
                result["healthy"] = data["healthy"]
            if data.get("node_id") is not None:
                result["node_id"] = str(data["node_id"])
    if result["error"] is None:
        if not 200 <= result["status"] < 300:
            result["error"] = "HTTP %s" % result["status"]
        elif expected_node_id is not None and result["node_id"] != str(expected_node_id):
            if result["node_id"] is None:
                result["error"] = "node_id mismatch: expected %s, health body has none" % expected_node_id
            else:
                result["error"] = "node_id mismatch: expected %s, got %s" % (expected_node_id, result["node_id"])
        else:
            result["ok"] = True
    return result


def health_host(listeners, bind_address=None):
    """Address to send the health request to.

    :arg listeners: the sockets of the process being checked, only its own: probing an
        address that another process holds would ask that process.
    :arg bind_address: when it names one specific address, that address.

    Otherwise: loopback of the family for a wildcard socket (``127.0.0.1`` for ``0.0.0.0``,
    ``::1`` for ``::``), else a loopback address the process is bound to, else the first
    specific address it is bound to.
    """
    if bind_address:
        wanted = normalize_address(bind_address)
        if wanted == "0.0.0.0":
            return "127.0.0.1"
        if wanted == "::":
            return "::1"
        return wanted
    addresses = [normalize_address(item["address"]) for item in listeners]
    if "0.0.0.0" in addresses:
        return "127.0.0.1"
    if "::" in addresses:
        return "::1"
    for address in addresses:
        if ipaddress.ip_address(address).is_loopback:
            return address
    return addresses[0] if addresses else "127.0.0.1"


# --------------------------------------------------------------------------- inspect

_PARAM_DEFAULTS = {
    "port": DEFAULT_PORT,
    "bind_address": None,
    "cmdline_regex": DEFAULT_CMDLINE_REGEX,
    "node_id": None,
    "check_port_in_cmdline": False,
    "python": None,
    "script": None,
    "health_path": None,
    "health_timeout": 5.0,
    "service_name": DEFAULT_SERVICE_NAME,
    "service_manager": "none",
    "log_path": None,
    "log_tail_bytes": DEFAULT_LOG_TAIL_BYTES,
    "start_grace": DEFAULT_START_GRACE,
    "service_dir": None,
    "timeout": 0,
    "state": "listening",
    "fail_on_mismatch": True,
    "proc_root": "/proc",
}

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
        found = cmdline_option(cmdline, "node-id")
        if found is None:
            return "wrong_owner", "no --node-id in command line (expected %s)" % params["node_id"]
        if found != str(params["node_id"]):
            return "wrong_owner", "--node-id is %s, expected %s" % (found, params["node_id"])
    if params.get("check_port_in_cmdline"):
        found = cmdline_option(cmdline, "port")
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
    main = process_info(main_pid, params["proc_root"]) if main_pid else None
    age = main["uptime_seconds"] if main else None
    young = main is not None and age is not None and age < params["start_grace"]
    log = diagnose_log(log_path, params["log_tail_bytes"], service_dir=params.get("service_dir")) if log_path else None
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
        chain = ancestors(pid, proc_root)
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
                "(%d fd dirs unreadable): its holder is outside this PID namespace (a container sharing the network namespace?) "
                "or is closing it" % (port, unreadable))
    return "port %s is in LISTEN but no readable /proc/<pid>/fd links to its socket (%d fd dirs unreadable; run with become)" % (
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
        groups.sort(key=lambda group: not is_descendant(group[0], managed, params["proc_root"]))
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
        if main_pid is not None and not is_descendant(chosen, main_pid, params["proc_root"]):
            result["diagnosis"] = "unmanaged"
            return "port %s is held by %s, not by %s main PID %s of %s or its children" % (
                port, holder, manager, main_pid, params["service_name"])
    if params.get("health_path"):
        own = [item for item in listeners if set(item["pids"]) & set(group)]
        host = health_host(own, params.get("bind_address"))
        health = check_health(host, port, params["health_path"], params["health_timeout"], params.get("node_id"))
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
        scan = scan_listeners(params["port"], params["proc_root"], params.get("bind_address"), match=match)
        infos = {}
        for item in scan["listeners"]:
            for pid in item["pids"]:
                if pid not in infos:
                    infos[pid] = process_info(pid, params["proc_root"])
        gone = set(pid for pid, info in infos.items() if info is None)
        if not gone:
            return scan, infos
    kept = []
    for item in scan["listeners"]:
        pids = [pid for pid in item["pids"] if pid not in gone]
        if item["pids"] and not pids:
            continue
        if item["pid"] in gone:
            item = dict(item, pid=_primary_pid(pids, params["proc_root"]))
        kept.append(dict(item, pids=pids))
    return dict(scan, listeners=kept), dict((pid, info) for pid, info in infos.items() if info is not None)


def _inspect_once(params, runner):
    result = _empty_result(params)
    manager = params.get("service_manager") or "none"
    if manager == "auto":
        manager = detect_service_manager(params["proc_root"])
    result["service_manager"] = manager
    if manager != "none":
        main_pid, detail = managed_main_pid(manager, params["service_name"], runner=runner, proc_root=params["proc_root"])
        result["managed_pid"] = main_pid
        if main_pid is None:
            result["warnings"].append("could not get the main PID of %s from %s (%s); not comparing owners" % (
                params["service_name"], manager, detail))
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


def _validate(params):
    merged = dict(_PARAM_DEFAULTS)
    merged.update(dict((key, value) for key, value in (params or {}).items() if value is not None))
    port = int(merged["port"])
    if not 0 < port < 65536:
        raise ValueError("port must be 1-65535, got %s" % port)
    merged["port"] = port
    if merged["state"] not in ("listening", "absent"):
        raise ValueError("state must be listening or absent, got %r" % merged["state"])
    if merged["service_manager"] not in SERVICE_MANAGERS:
        raise ValueError("service_manager must be one of %s, got %r" % (", ".join(SERVICE_MANAGERS), merged["service_manager"]))
    if merged.get("bind_address"):
        try:
            normalize_address(merged["bind_address"])
        except ValueError:
            raise ValueError("bind_address must be an IP address, got %r" % merged["bind_address"])
    try:
        re.compile(merged["cmdline_regex"])
    except re.error as exc:
        raise ValueError("cmdline_regex %r is not a valid regular expression: %s" % (merged["cmdline_regex"], exc))
    if merged["node_id"] is not None:
        merged["node_id"] = str(merged["node_id"])
    for field, kind in (("python", "abs_path"), ("script", "script_path"), ("health_path", "url_path")):
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
    :arg runner: ``runner(argv) -> (rc, stdout, stderr)`` for ``systemctl``/``supervisorctl``.
    :returns: dict with the keys documented in the module's RETURN (``listening``, ``pid``,
        ``cmdline``, ``exe``, ``user``, ``started_at``, ``uptime_seconds``, ``addresses``,
        ``owner_matches``, ``managed_pid``, ``service_manager``, ``health``, ``diagnosis``,
        ``missing_module``, ``last_error``, ``log_excerpt``, ``msg``, ``failed``, ``changed``...)
        plus ``warnings`` (list of text). It polls every 0.5 s until the asked state holds or
        ``timeout`` seconds passed. ``failed`` is true when the state does not hold and
        ``fail_on_mismatch`` is true.
    """
    params = _validate(params)
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
