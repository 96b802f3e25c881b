# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the daemon's log says about its most recent run.

Stdlib only, Python 3.8+. The unit and the supervisor program write :data:`START_MARKER`
into the log before each start; the diagnosis reads only the run after the last marker.

Public API:

* :data:`START_MARKER` - the start line the unit and the supervisor program write
* :func:`strip_escapes` - a log line without terminal escape sequences
* :func:`split_runs` - the log cut into runs at the start markers
* :func:`find_log_errors` - error events of log lines (tracebacks, missing modules, ...)
* :func:`checkout_module` - whether a missing module is part of the daemon's checkout
* :func:`diagnose_log` - last error of a daemon log's newest run
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import os
import re
import stat as stat_module

DEFAULT_LOG_TAIL_BYTES = 65536
LOG_EXCERPT_LINES = 20
# The unit and the supervisor program write this line (and a UTC time) into the log just
# before each start of the daemon: the log diagnosis reads only what the current run wrote.
START_MARKER = "==> ringrift.cluster: daemon start"

_MISSING_MODULE_RE = re.compile(r"No module named ['\"]?([A-Za-z_][\w.]*)['\"]?")
_FATAL_DEPS_RE = re.compile(r"FATAL: Missing critical dependencies\W*(.*)$", re.IGNORECASE)
_NODE_ID_RE = re.compile(r"Could not auto-detect node-id", re.IGNORECASE)
_ADDR_IN_USE_RE = re.compile(r"Address already in use", re.IGNORECASE)
_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*([A-Za-z_][\w.\-]*)")
_NAME_TOKEN_RE = re.compile(r"[A-Za-z_][\w.\-]*")
# CSI / OSC / two-character terminal escape sequences (colour codes in daemon logs).
_ESCAPE_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_MARKER_TIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})Z")
_DEPS_STOPWORDS = frozenset(("pip", "install", "please", "run", "and", "missing", "modules", "module", "packages", "package", "r", "requirements.txt"))


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
        "run_lines": 0,
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
    result["run_lines"] = len(current["lines"])
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
