# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The converge stamp: what a successful site.yml converge left on a node, and a re-check of it.

Stdlib only, Python 3.8+. A full converge runs about 65 module calls per node even when
nothing changes. After one that succeeded, ``site.yml`` writes a stamp on the node:

* the controller's fingerprint of every input of the roles (variables, token, collection code);
* checksum, mode and owner of every file the roles manage;
* the daemon's interpreter and the modules it must import;
* the exact ``p2p_listener`` check that passed (which names the unit/program and its manager);
* the GPU check that passed, if the node has GPUs.

The next run re-checks all of it in one module call (:func:`verify`). Only when every part
still holds is the node left alone; any difference (settings, a file edited by hand, a
package gone, the daemon down, the unit disabled, a GPU missing) sends the node through
the full converge. The stamp is a record of what was verified, not a promise: every part
except the fingerprint is checked against the live node on each run.

No secret can be derived from the stamp or from what the modules show. The fingerprint is a
plain SHA-256 over inputs that include the cluster token, and node.conf (a managed file) holds
the token: with everything else about a node known (inventory, collection code), a plain hash
of either would let whoever reads it confirm a token guess offline. So neither is stored or
shown. Both are kept as HMAC-SHA256 under a random 32-byte key that only this node has
(``converge-stamp.key`` next to the stamp, root-only, created with the first stamp): a token
change still changes both digests, but checking a guess needs the key, and whoever can read
the key can read node.conf itself. A key on the node rather than on the controller keeps the
fast path working from any controller (CI, each operator) without sharing a secret.

Public API (used by the ``converge_stamp`` and ``converge_stamp_info`` modules):

* :func:`node_key` - the node's stamp key (created on first use by the writer)
* :func:`keyed_digest` - HMAC-SHA256 under that key, the only form of a digest the stamp holds
* :func:`file_record` - keyed checksum, mode and owner of one file
* :func:`build_stamp` - the stamp dict from what the roles report
* :func:`write_stamp` - write it atomically, only when it differs
* :func:`read_stamp` - load and validate a stamp file
* :func:`verify` - re-check a stamp against the node
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import hashlib
import hmac
import json
import os
import re
import stat
import tempfile

from ansible_collections.ringrift.cluster.plugins.module_utils import nvidia_smi, p2p_proc, python_imports, service_manager

# 2: fingerprint and file checksums keyed with the node's stamp key (1 held them as plain SHA-256).
FORMAT = 2
OLD_FORMATS = (1,)
DEFAULT_PATH = "/var/lib/ringrift/converge-stamp.json"
KEY_NAME = "converge-stamp.key"
# World-readable: see write_stamp().
STAMP_MODE = 0o644
KEY_BYTES = 32
DIGEST_PREFIX = "hmac-sha256:"
# The listener check names the unit/program and its (resolved) manager.
SERVICE_MANAGERS = ("systemd", "supervisor", "none")
# Keys of a stamp that describe the node; converged_at is only when it was last written.
CONTENT_KEYS = ("format", "fingerprint", "files", "python", "listener", "gpu")
LISTENER_KEYS = ("port", "bind_address", "node_id", "cmdline_regex", "check_port_in_cmdline",
                 "health_path", "health_timeout", "service_name", "service_manager", "log_path", "start_grace", "service_dir",
                 "python", "script")
GPU_KEYS = ("executable", "expected_count", "expected_model", "timeout", "check_torch", "python", "fail_on_mismatch")
# Seconds each command of the re-check may take (the import probe, systemctl): the import probe
# loads the daemon's dependencies, torch among them, which takes tens of seconds on a cold cache.
CHECK_COMMAND_TIMEOUT = 60
_IMPORT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class StampError(ValueError):
    """A stamp that cannot be built or read; the message names the field."""


def key_path_for(stamp_path):
    """Where the stamp key of the stamp at ``stamp_path`` lives: ``converge-stamp.key`` in the same directory."""
    return os.path.join(os.path.dirname(stamp_path), KEY_NAME)


def _read_key(path):
    """The key at ``path``; None when there is none. Raises StampError when it is not safe to use."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise StampError("%s: cannot open the stamp key: %s" % (path, exc.strerror))
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise StampError("%s: the stamp key is not a regular file" % path)
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise StampError("%s: the stamp key has mode %04o owner %d; it must be %d's alone (0600)" % (
                path, stat.S_IMODE(info.st_mode), info.st_uid, os.geteuid()))
        key = os.read(handle, KEY_BYTES + 1)
    finally:
        os.close(handle)
    if len(key) != KEY_BYTES:
        raise StampError("%s: the stamp key is not %d bytes" % (path, KEY_BYTES))
    return key


def _new_key(path):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    handle, temp = tempfile.mkstemp(prefix=".converge-stamp-key.", dir=directory)  # mode 0600
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(os.urandom(KEY_BYTES))
        os.rename(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return _read_key(path)


def node_key(path, create=False):
    """The node's stamp key at ``path`` (bytes).

    With ``create`` (the writer), a missing key, or one that is not safe to use (readable by
    others, wrong owner or size), is replaced by a new random one: digests under the old key no
    longer match, so the stamp is rewritten. Without it (the re-check, read-only) a missing or
    unsafe key raises StampError.
    """
    _absolute(path)
    try:
        key = _read_key(path)
    except StampError:
        if not create:
            raise
        os.unlink(path)
        key = None
    if key is None:
        if not create:
            raise StampError("no stamp key at %s" % path)
        key = _new_key(path)
    return key


def keyed_digest(key, data):
    """``hmac-sha256:<hex>`` of ``data`` (str or bytes) under the node's stamp key."""
    _require(isinstance(key, bytes) and len(key) == KEY_BYTES, "the stamp key must be %d bytes" % KEY_BYTES)
    if not isinstance(data, bytes):
        data = data.encode("utf-8")
    return DIGEST_PREFIX + hmac.new(key, data, hashlib.sha256).hexdigest()


def _keyed_file_digest(key, path):
    mac = hmac.new(key, digestmod=hashlib.sha256)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            mac.update(block)
    return DIGEST_PREFIX + mac.hexdigest()


def file_record(path, key):
    """``{"exists", "digest", "mode", "uid", "gid"}`` of a file; a missing one is ``{"exists": False}``.

    ``digest`` is the keyed digest of the content (:func:`keyed_digest`), never a plain hash: a
    managed file can hold the cluster token. Something that is not a regular file, or a file
    that cannot be read, is ``{"exists": True, "error": why}``: never equal to a record of a
    readable file, and refused by :func:`build_stamp`.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return {"exists": False}
        return {"exists": True, "error": "cannot stat: %s" % exc.strerror}
    if not stat.S_ISREG(info.st_mode):
        return {"exists": True, "error": "not a regular file"}
    try:
        digest = _keyed_file_digest(key, path)
    except (IOError, OSError) as exc:
        return {"exists": True, "error": "cannot read: %s" % exc.strerror}
    return {
        "exists": True,
        "digest": digest,
        "mode": "%04o" % (info.st_mode & 0o7777),
        "uid": info.st_uid,
        "gid": info.st_gid,
    }


def _require(condition, message):
    if not condition:
        raise StampError(message)


def build_stamp(fingerprint, files, python, imports, listener, gpu=None, key=None, file_reader=None):
    """The stamp content (without ``converged_at``) from what the roles report.

    :arg fingerprint: the controller's fingerprint of the roles' inputs (``converge_fingerprint`` filter);
        only its keyed digest is kept.
    :arg files: absolute paths of the files the roles manage; each is read now.
    :arg python: the daemon's interpreter (absolute path).
    :arg imports: module names the daemon imports.
    :arg listener: the ``p2p_listener`` options of the check that passed (keys of ``LISTENER_KEYS``),
        with ``service_manager`` resolved (systemd, supervisor or none, not auto).
    :arg gpu: the ``nvidia_gpu_info`` options of the GPU check that passed, or None (no GPU check).
    :arg key: the node's stamp key (:func:`node_key`).
    :arg file_reader: ``file_reader(path) -> record`` (default: :func:`file_record` under ``key``).
    """
    _require(isinstance(key, bytes) and len(key) == KEY_BYTES, "the stamp key must be %d bytes" % KEY_BYTES)
    _require(isinstance(fingerprint, str) and fingerprint, "fingerprint must be a non-empty string")
    _require(isinstance(files, (list, tuple)), "files must be a list of absolute paths")
    for path in files:
        _require(isinstance(path, str) and os.path.isabs(path), "files: %r is not an absolute path" % (path,))
    _require(isinstance(python, str) and os.path.isabs(python), "python: %r is not an absolute path" % (python,))
    _require(isinstance(imports, (list, tuple)), "imports must be a list of module names")
    for name in imports:
        _require(isinstance(name, str) and _IMPORT_NAME_RE.match(name), "imports: %r is not a module name" % (name,))
    _require(isinstance(listener, dict), "listener must be a dict of p2p_listener options")
    unknown = sorted(set(listener) - set(LISTENER_KEYS))
    _require(not unknown, "listener: unknown option(s) %s" % ", ".join(unknown))
    _require(listener.get("port") is not None, "listener.port is required")
    _require(listener.get("service_manager") in SERVICE_MANAGERS, "listener.service_manager must be one of %s (resolved), got %r" % (
        ", ".join(SERVICE_MANAGERS), listener.get("service_manager")))
    _require(isinstance(listener.get("service_name"), str) and listener.get("service_name"),
             "listener.service_name must be a unit or program name")
    try:
        # The same validation p2p_listener applies, so a stamp never holds a check that cannot run.
        p2p_proc.validate_params(dict(listener))
    except ValueError as exc:
        raise StampError("listener: %s" % exc)
    if gpu is not None:
        _require(isinstance(gpu, dict), "gpu must be a dict of nvidia_gpu_info options or null")
        unknown = sorted(set(gpu) - set(GPU_KEYS))
        _require(not unknown, "gpu: unknown option(s) %s" % ", ".join(unknown))
        _require(isinstance(gpu.get("executable"), str) and gpu.get("executable"), "gpu.executable is required")
    if file_reader is None:
        def file_reader(path):
            return file_record(path, key)
    records = dict((path, file_reader(path)) for path in sorted(set(files)))
    for path, record in records.items():
        _require("error" not in record, "files: %s %s" % (path, record.get("error")))
    return {
        "format": FORMAT,
        "fingerprint": keyed_digest(key, fingerprint),
        "files": records,
        "python": {"interpreter": python, "imports": sorted(set(imports))},
        "listener": dict((key, listener[key]) for key in LISTENER_KEYS if listener.get(key) is not None),
        "gpu": None if gpu is None else dict((key, gpu[key]) for key in GPU_KEYS if gpu.get(key) is not None),
    }


def content(stamp):
    """The part of a stamp that describes the node (everything but when it was written)."""
    return dict((key, stamp.get(key)) for key in CONTENT_KEYS)


def _absolute(path):
    _require(isinstance(path, str) and os.path.isabs(path), "the stamp path must be absolute, got %r" % (path,))


def read_stamp(path):
    """The stamp at ``path``; None when there is none. Raises StampError when it is unreadable."""
    _absolute(path)
    try:
        with open(path, "r") as handle:
            data = json.load(handle)
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == 2:
            return None
        raise StampError("%s: cannot read: %s" % (path, exc))
    except ValueError as exc:
        raise StampError("%s: not JSON: %s" % (path, exc))
    if not isinstance(data, dict) or data.get("format") not in (FORMAT,) + OLD_FORMATS:
        raise StampError("%s: not a format-%d converge stamp" % (path, FORMAT))
    return data


def write_stamp(path, stamp, now=None, check_mode=False):
    """Write ``stamp`` (plus ``converged_at``) unless the file already holds the same content.

    The file is replaced atomically, mode 0644: the audit reads ``converged_at`` without root
    (a ``ubuntu`` login), and what it holds is no secret: every digest is keyed with the node's
    root-only stamp key, the rest names files and settings as the world-readable unit does.
    Returns ``(changed, written)`` where ``written`` is the stamp now in effect.
    """
    _absolute(path)
    try:
        current = read_stamp(path)
    except StampError:
        current = None
    if current is not None and content(current) == content(stamp):
        if stat.S_IMODE(os.stat(path).st_mode) == STAMP_MODE:
            return False, current
        if not check_mode:
            os.chmod(path, STAMP_MODE)
        return True, current
    written = dict(content(stamp))
    written["converged_at"] = (now or datetime.datetime.utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ")
    if check_mode:
        return True, written
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    handle, temp = tempfile.mkstemp(prefix=".converge-stamp.", dir=directory)
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(written, out, indent=2, sort_keys=True)
            out.write("\n")
        os.chmod(temp, STAMP_MODE)
        os.rename(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return True, written


# --------------------------------------------------------------------------- re-check

def _check_files(stamp, file_reader):
    reasons = []
    for path, recorded in sorted((stamp.get("files") or {}).items()):
        now = file_reader(path)
        if now == recorded:
            continue
        if now.get("error"):
            reasons.append("%s %s" % (path, now["error"]))
        elif recorded.get("exists") and not now.get("exists"):
            reasons.append("%s is gone" % path)
        elif not recorded.get("exists"):
            reasons.append("%s appeared" % path)
        elif now.get("digest") != recorded.get("digest"):
            reasons.append("%s changed since the last converge" % path)
        else:
            reasons.append("%s has mode %s owner %s:%s, converged as %s %s:%s" % (
                path, now.get("mode"), now.get("uid"), now.get("gid"), recorded.get("mode"), recorded.get("uid"), recorded.get("gid")))
    return reasons


def _check_imports(stamp, runner):
    python = (stamp.get("python") or {}).get("interpreter")
    imports = (stamp.get("python") or {}).get("imports") or []
    if not imports:
        return []
    result = python_imports.check_imports(python, imports, runner)
    if result["error"]:
        return [result["error"]]
    return ["%s cannot import %s (%s)" % (python, name, result["missing"][name]) for name in sorted(result["missing"])]


def _check_service(stamp, runner):
    listener = stamp.get("listener") or {}
    if listener.get("service_manager") != "systemd":
        # supervisor: autostart lives in the program file (a managed file); the listener
        # check below asks supervisorctl for the program's PID.
        return []
    unit = service_manager.systemd_unit(listener.get("service_name"))
    view = service_manager.read_service("systemd", listener.get("service_name"), runner=runner)
    reasons = []
    if view["rc"] != 0:
        reasons.append("systemctl show %s failed (rc=%s): %s" % (unit, view["rc"], view["detail"][:200]))
    else:
        if view["unit_file_state"] != "enabled":
            reasons.append("%s is %s, not enabled (it would not start on boot)" % (unit, view["unit_file_state"] or "unknown"))
        if view["need_daemon_reload"]:
            reasons.append("%s changed on disk and systemd has not reloaded it" % unit)
    return reasons


def _check_listener(stamp, runner, inspect):
    options = dict(stamp.get("listener") or {})
    options.update({"state": "listening", "timeout": 0, "fail_on_mismatch": False})
    try:
        result = inspect(options, runner=runner)
    except ValueError as exc:
        return ["the recorded listener check is invalid: %s" % exc], None
    reasons = []
    if not result.get("state_ok"):
        reasons.append("the daemon is %s: %s" % (result.get("diagnosis"), result.get("msg")))
    elif result.get("service_manager") not in (None, "none") and not result.get("managed_pid"):
        # p2p_listener only warns when the manager cannot name its main PID; here that is not good enough.
        reasons.append("%s could not confirm it runs %s (main PID unknown)" % (
            result.get("service_manager"), options.get("service_name")))
    return reasons, result


def _check_gpu(stamp, gpu_runner):
    gpu = stamp.get("gpu")
    if not gpu:
        return [], [], None
    try:
        verdict = gpu_runner(gpu)
    except ValueError as exc:
        return ["the recorded GPU check is invalid: %s" % exc], [], None
    if verdict["diagnosis"] == "ok":
        return [], [], verdict
    text = "GPU check: %s: %s" % (verdict["diagnosis"], verdict["msg"])
    if gpu.get("fail_on_mismatch", True):
        return [text], [], verdict
    # cuda_check_fail_on_mismatch: false converged with a warning; the fast path warns too.
    return [], [text], verdict


def gpu_check(run, which):
    """``gpu_runner`` for :func:`verify`: :func:`nvidia_smi.check_gpus` with the recorded options.

    The same check ``nvidia_gpu_info`` ran at converge time (same code, same verdict), under the
    recorded ``timeout`` as its total deadline; the versions are not read (they decide nothing).

    :arg run: ``run(argv, seconds) -> (rc, stdout, stderr, timed_out)`` (:func:`nvidia_smi.run_bounded`).
    :arg which: ``which(executable) -> absolute path or None``.
    """
    def check(gpu):
        return nvidia_smi.check_gpus(
            which,
            executable=gpu["executable"],
            expected_count=gpu.get("expected_count"),
            expected_model=gpu.get("expected_model"),
            check_torch=bool(gpu.get("check_torch")),
            python=gpu.get("python") or "python3",
            timeout=gpu.get("timeout") or nvidia_smi.DEFAULT_TIMEOUT,
            read_versions=False,
            run=run,
        )
    return check


def verify(path, fingerprint, runner, gpu_runner, inspect=p2p_proc.inspect, file_reader=None):
    """Re-check the stamp at ``path`` against the node.

    :arg fingerprint: the controller's fingerprint for this run (compared through its keyed digest).
    :arg runner: ``runner(argv) -> (rc, stdout, stderr)``.
    :arg gpu_runner: ``gpu_runner(gpu_options) -> nvidia_smi.check_gpus()`` result (see :func:`gpu_check`).
    :arg file_reader: ``file_reader(path) -> record`` (default: :func:`file_record` under the node's key).
    :returns: dict with ``converged`` (bool), ``reasons`` (why not, each a sentence),
        ``warnings``, ``converged_at``, ``listener`` (the p2p_listener result or None), ``gpu``.
    """
    result = {"converged": False, "reasons": [], "warnings": [], "converged_at": None,
              "stamp_path": path, "listener": None, "gpu": None}
    try:
        stamp = read_stamp(path)
    except StampError as exc:
        result["reasons"].append("unreadable converge stamp: %s" % exc)
        return result
    if stamp is None:
        result["reasons"].append("no converge stamp at %s (not converged by site.yml yet)" % path)
        return result
    result["converged_at"] = stamp.get("converged_at")
    if stamp.get("format") != FORMAT:
        result["reasons"].append("the converge stamp at %s is format %s, from before its digests were keyed; "
                                 "a full converge rewrites it" % (path, stamp.get("format")))
        return result
    try:
        key = node_key(key_path_for(path))
    except StampError as exc:
        result["reasons"].append("cannot check the converge stamp: %s" % exc)
        return result
    if file_reader is None:
        def file_reader(file_path):
            return file_record(file_path, key)
    reasons = result["reasons"]
    if not hmac.compare_digest(str(stamp.get("fingerprint") or ""), keyed_digest(key, fingerprint)):
        reasons.append("settings or collection code changed since the last converge (%s)" % (stamp.get("converged_at") or "?"))
    reasons.extend(_check_files(stamp, file_reader))
    reasons.extend(_check_imports(stamp, runner))
    reasons.extend(_check_service(stamp, runner))
    listener_reasons, result["listener"] = _check_listener(stamp, runner, inspect)
    reasons.extend(listener_reasons)
    gpu_reasons, gpu_warnings, result["gpu"] = _check_gpu(stamp, gpu_runner)
    reasons.extend(gpu_reasons)
    result["warnings"].extend(gpu_warnings)
    result["converged"] = not reasons
    return result
