# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who listens on a TCP port, read straight from ``/proc/net/tcp`` and ``/proc/net/tcp6``.

Stdlib only, Python 3.8+. Nothing here trusts a process name search
(``pgrep``/``pidof``/``ps``) or a PID file: a port is "held" only when a LISTEN
socket for it is in ``/proc/net/tcp`` or ``/proc/net/tcp6`` and the owner is
the process whose ``/proc/<pid>/fd`` links to that socket's inode.

Every function that reads ``/proc`` takes ``proc_root`` (default ``/proc``) so tests
can point it at a synthetic tree.

Public API:

* :func:`normalize_address` / :func:`addresses_overlap` - IP literals as the socket table writes them
* :func:`parse_proc_net_tcp` / :func:`read_listen_sockets` - LISTEN sockets of ``/proc/net/tcp*``
* :func:`socket_owners` - socket inodes to the PIDs holding them
* :func:`scan_listeners` / :func:`find_listeners` - LISTEN sockets on a port with owner PIDs
* :func:`primary_pid` - the holder that is not a child of another holder
* :func:`unsupported_os` - why a node is not one this module can read (no Linux ``/proc``)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import os
import platform
import re
import socket
import struct

from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_process

TCP_LISTEN = "0A"

_SOCKET_LINK_RE = re.compile(r"^socket:\[(\d+)\]$")


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


def read_listen_sockets(proc_root="/proc", port=None):
    """LISTEN sockets of ``<proc_root>/net/tcp`` and ``<proc_root>/net/tcp6``.

    A missing file (no IPv6 in the kernel) is skipped. Returns the list of
    :func:`parse_proc_net_tcp`, IPv4 first.
    """
    sockets = []
    for name in ("tcp", "tcp6"):
        path = os.path.join(proc_root, "net", name)
        try:
            text = p2p_process.read_text(path)
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
    """Socket inodes linked from one ``fd`` directory.

    Raises ``OSError`` when the directory cannot be listed, or when its links cannot be read for
    lack of permission: the kernel checks the same ptrace access for every fd of a process, so
    root without ``CAP_SYS_PTRACE`` (in a container) lists another user's ``fd`` directory but
    reads none of its links. A link that vanished meanwhile (the fd was closed) is skipped.
    """
    inodes = set()
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except (IOError, OSError) as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise
            continue
        match = _SOCKET_LINK_RE.match(target)
        if match:
            inodes.add(int(match.group(1)))
    return inodes


def socket_owners(inodes, proc_root="/proc"):
    """Map socket inodes to the PIDs holding them, through ``/proc/<pid>/fd/*`` links.

    When the thread-group leader has exited while other threads still run, its
    ``/proc/<pid>/fd`` is empty (root) or unreadable (others) although the process still
    holds its sockets: for inodes not found in any ``/proc/<pid>/fd``, the
    ``/proc/<pid>/task/<tid>/fd`` of such processes are read too (owner: ``pid``).

    :arg inodes: iterable of socket inode numbers to look for.
    :returns: ``(owners, unreadable)``: ``owners`` maps each found inode to the sorted list
        of PIDs with an fd linking to ``socket:[inode]``; ``unreadable`` counts the
        processes whose ``/proc/<pid>/fd`` could not be listed or whose links could not be
        read (permission) and whose threads did not show the socket either. Processes that exit during the scan are
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
            for tid in p2p_process.thread_ids(pid, proc_root):
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


def primary_pid(pids, proc_root):
    """The holder that is not a descendant of another holder (the parent of forked workers)."""
    if not pids:
        return None
    holders = set(pids)
    for pid in sorted(pids):
        info = p2p_process.read_stat(pid, proc_root)
        ppid = info["ppid"] if info else None
        seen = set()
        is_child = False
        while ppid and ppid not in seen:
            if ppid in holders:
                is_child = True
                break
            seen.add(ppid)
            parent = p2p_process.read_stat(ppid, proc_root)
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
            "pid": primary_pid(pids, proc_root),
            "pids": sorted(pids),
        })
    return {"listeners": listeners, "unreadable_fd_dirs": unreadable}


def find_listeners(port, proc_root="/proc", bind_address=None, match="exact"):
    """Shortcut for ``scan_listeners(...)['listeners']``: list of ``{address, port, family, inode, pid, pids}``."""
    return scan_listeners(port, proc_root=proc_root, bind_address=bind_address, match=match)["listeners"]


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
