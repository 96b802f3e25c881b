# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart the RingRift P2P daemon when it is alive but no longer answers /health.

``Restart=always`` (systemd) and ``autorestart`` (supervisor) only see a daemon that exits.
A daemon whose event loop is blocked keeps its PID and its LISTEN socket (the kernel even
completes TCP handshakes for it) but never answers. This script, shipped to every node by
the ``ringrift.cluster.p2p_watchdog`` role, probes ``GET <path>`` on the daemon's port and,
after N consecutive failures, restarts the daemon through its own service manager.

* ``--once``: one check (the systemd timer's oneshot service).
* ``--loop``: a check every ``interval`` seconds (a supervisor program in containers);
  the settings file is read again before every check.

A failure is: the manager names a main PID, and no HTTP status line came back from the
port within ``probe_timeout`` seconds in total (refused, reset, silence). Any HTTP status
counts as an answer: a daemon that says it is unhealthy is busy, not hung. Not failures:
no main PID (the manager itself handles exits), a main PID younger than ``start_grace``
(the real daemon takes 12-100 s to listen). After a restart, none for ``cooldown`` seconds.

Every action is one timestamped line in ``log_file``; the counters live in ``state_file``
(mode 0600). Stdlib only, Python 3.8+.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

__metaclass__ = type

# Settings file keys -> (type, minimum); every key is required (the role writes them all).
SETTINGS = {
    "port": (int, 1),
    "probe_host": (str, None),
    "health_path": (str, None),
    "service_name": (str, None),
    "manager": (str, None),
    "supervisor_config": (str, None),
    "interval": (int, 1),
    "failures": (int, 1),
    "cooldown": (int, 0),
    "start_grace": (int, 0),
    "probe_timeout": (float, 0.1),
    "restart_timeout": (int, 1),
    "log_file": (str, None),
    "log_max_bytes": (int, 0),
    "state_file": (str, None),
}
MANAGERS = ("systemd", "supervisor")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}")
_ABS_PATH = re.compile(r"/[A-Za-z0-9._/+@-]+")
_HOST = re.compile(r"[A-Za-z0-9_:][A-Za-z0-9._:%-]{0,252}")
# Longest status line read from the daemon; more is not needed to know that it answers.
_MAX_STATUS_LINE = 4096


class ConfigError(Exception):
    pass


def load_config(path):
    """Read and check the settings file the role wrote; ConfigError names the bad field."""
    try:
        with open(path) as handle:
            raw = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise ConfigError("%s: cannot read settings: %s" % (path, exc))
    if not isinstance(raw, dict):
        raise ConfigError("%s: settings must be a JSON object" % path)
    config = {}
    for key, (kind, minimum) in SETTINGS.items():
        if key not in raw:
            raise ConfigError("%s: setting %r is missing" % (path, key))
        value = raw[key]
        if kind is str:
            if not isinstance(value, str):
                raise ConfigError("%s: setting %r must be a string, not %r" % (path, key, value))
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
                raise ConfigError("%s: setting %r must be a number, not %r" % (path, key, value))
            value = kind(value)
            if value < minimum:
                raise ConfigError("%s: setting %r must be at least %s, not %s" % (path, key, minimum, value))
        config[key] = value
    problems = []
    if config["port"] > 65535:
        problems.append("port %d must be 1..65535" % config["port"])
    if config["manager"] not in MANAGERS:
        problems.append("manager %r must be one of %s" % (config["manager"], ", ".join(MANAGERS)))
    if not _NAME.fullmatch(config["service_name"]):
        problems.append("service_name %r must be a unit name" % config["service_name"])
    if not _HOST.fullmatch(config["probe_host"]):
        problems.append("probe_host %r must be a host name or address" % config["probe_host"])
    for key in ("health_path", "supervisor_config", "log_file", "state_file"):
        if not _ABS_PATH.fullmatch(config[key]):
            problems.append("%s %r must be an absolute path without spaces or quotes" % (key, config[key]))
    if config["probe_timeout"] >= config["interval"]:
        problems.append("probe_timeout %s must be shorter than interval %s" % (config["probe_timeout"], config["interval"]))
    if problems:
        raise ConfigError("%s: %s" % (path, "; ".join(problems)))
    return config


def probe(host, port, path, timeout, clock=time.monotonic, create_connection=socket.create_connection):
    """GET ``path``; (True, status line) when an HTTP status line arrives before ``timeout``
    seconds have passed in total (connect, send and every read together), else (False, why)."""
    deadline = clock() + timeout

    def remaining():
        left = deadline - clock()
        if left <= 0:
            raise socket.timeout()
        return left

    sock = None
    try:
        sock = create_connection((host, port), remaining())
        request = "GET %s HTTP/1.0\r\nHost: %s:%d\r\nUser-Agent: ringrift-p2p-watchdog\r\nConnection: close\r\n\r\n" % (
            path, host, port)
        sock.settimeout(remaining())
        sock.sendall(request.encode("ascii"))
        received = b""
        while b"\r\n" not in received and len(received) < _MAX_STATUS_LINE:
            sock.settimeout(remaining())
            chunk = sock.recv(_MAX_STATUS_LINE - len(received))
            if not chunk:
                return False, "connection closed before an HTTP answer"
            received += chunk
        status_line = received.split(b"\r\n", 1)[0].decode("latin-1")
        if re.match(r"HTTP/\d(\.\d)? \d{3}", status_line):
            return True, status_line.strip()
        return False, "not an HTTP answer: %r" % status_line[:80]
    except socket.timeout:
        return False, "no answer within %gs" % timeout
    except (IOError, OSError) as exc:
        return False, "%s" % (exc.strerror or exc)
    finally:
        if sock is not None:
            sock.close()


def run_command(argv, timeout):
    """(rc, output) of a command with a total deadline; rc None when it did not finish."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, "%s did not finish within %ss" % (argv[0], timeout)
    except (IOError, OSError) as exc:
        return None, "%s: %s" % (argv[0], exc)
    return proc.returncode, proc.stdout.decode("utf-8", "replace").strip()


def main_pid(config, run=run_command, timeout=10):
    """The manager's main PID of the daemon, or None when it names none (stopped, restarting)."""
    if config["manager"] == "systemd":
        argv = ["systemctl", "show", "--property=MainPID", "--value", config["service_name"] + ".service"]
    else:
        argv = ["supervisorctl", "-c", config["supervisor_config"], "pid", config["service_name"]]
    rc, output = run(argv, timeout)
    text = (output or "").strip()
    # supervisorctl pid exits non-zero for a stopped program and prints 0 or an error.
    if rc is None or not re.fullmatch(r"[0-9]+", text):
        return None
    pid = int(text)
    return pid if pid > 0 else None


def process_age(pid, proc_root="/proc"):
    """Seconds since ``pid`` started (from /proc), or None when it is gone."""
    try:
        with open(os.path.join(proc_root, "uptime")) as handle:
            uptime = float(handle.read().split()[0])
        with open(os.path.join(proc_root, str(pid), "stat")) as handle:
            stat = handle.read()
    except (IOError, OSError, ValueError, IndexError):
        return None
    # Field 22 (starttime, clock ticks since boot) counts from after the ')' closing comm.
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        start_ticks = int(fields[19])
    except (IndexError, ValueError):
        return None
    return max(0.0, uptime - start_ticks / float(os.sysconf("SC_CLK_TCK")))


def restart_argv(config):
    if config["manager"] == "systemd":
        return ["systemctl", "restart", config["service_name"] + ".service"]
    return ["supervisorctl", "-c", config["supervisor_config"], "restart", config["service_name"]]


def fresh_state():
    return {"pid": None, "failures": 0, "last_restart": None}


def decide(state, pid, age, probe_ok, probe_detail, now, config):
    """What to do about one observation. Pure: returns (action, new_state, message).

    action: ``healthy``, ``not_running``, ``grace``, ``failure`` (counted, below the
    threshold), ``cooldown`` (threshold reached, restart held back) or ``restart``.
    ``message`` is None when there is nothing worth a log line.
    """
    new = dict(fresh_state())
    new["last_restart"] = state.get("last_restart")
    if pid is None:
        return "not_running", new, None
    new["pid"] = pid
    # A new PID is a new daemon: what its predecessor did says nothing about it.
    failures = state.get("failures", 0) if state.get("pid") == pid else 0
    if probe_ok:
        message = None
        if failures:
            message = "recovered: pid %d answers %s again after %d failed probe(s) (%s)" % (
                pid, config["health_path"], failures, probe_detail)
        return "healthy", new, message
    if age is not None and age < config["start_grace"]:
        return "grace", new, "grace: pid %d is %.0fs old (start grace %ds), not a failure: %s" % (
            pid, age, config["start_grace"], probe_detail)
    failures += 1
    new["failures"] = failures
    what = "pid %d failed %s on port %d %d time(s) in a row (%s)" % (
        pid, config["health_path"], config["port"], failures, probe_detail)
    if failures < config["failures"]:
        return "failure", new, "failure %d/%d: %s" % (failures, config["failures"], what)
    last = state.get("last_restart")
    # A clock stepped back (last restart "in the future") ends the cool-down rather than extending it.
    if last is not None and 0 <= now - last < config["cooldown"]:
        return "cooldown", new, "cooldown: %s; restart held until %ds after the last one (%.0fs ago)" % (
            what, config["cooldown"], now - last)
    new["failures"] = 0
    new["last_restart"] = now
    return "restart", new, "restart: %s; %s" % (what, " ".join(restart_argv(config)))


def load_state(path):
    try:
        with open(path) as handle:
            raw = json.load(handle)
    except (IOError, OSError, ValueError):
        return fresh_state()
    state = fresh_state()
    if isinstance(raw, dict):
        if isinstance(raw.get("pid"), int) and not isinstance(raw.get("pid"), bool):
            state["pid"] = raw["pid"]
        if isinstance(raw.get("failures"), int) and not isinstance(raw.get("failures"), bool) and raw["failures"] >= 0:
            state["failures"] = raw["failures"]
        if isinstance(raw.get("last_restart"), (int, float)) and not isinstance(raw.get("last_restart"), bool):
            state["last_restart"] = float(raw["last_restart"])
    return state


def save_state(path, state):
    """Write the state atomically, readable by root only."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    handle, tmp = tempfile.mkstemp(prefix=".watchdog-", dir=directory)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w") as out:
            json.dump(state, out, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def log_line(path, message, now, max_bytes):
    """Append one timestamped line; past ``max_bytes`` the log moves to ``<log>.1`` first."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    try:
        if max_bytes and os.path.getsize(path) >= max_bytes:
            os.replace(path, path + ".1")
    except OSError:
        pass
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    with open(path, "a") as handle:
        handle.write("%s ringrift-p2p-watchdog[%d]: %s\n" % (stamp, os.getpid(), message))


def check_once(config, now=None, run=run_command, probe_fn=probe, age_fn=process_age):
    """One check: observe, decide, act, record. Returns the action taken."""
    now = time.time() if now is None else now
    state = load_state(config["state_file"])
    pid = main_pid(config, run)
    probe_ok, detail, age = False, "", None
    if pid is not None:
        probe_ok, detail = probe_fn(config["probe_host"], config["port"], config["health_path"], config["probe_timeout"])
        age = age_fn(pid)
    action, new_state, message = decide(state, pid, age, probe_ok, detail, now, config)
    if message:
        log_line(config["log_file"], message, now, config["log_max_bytes"])
    if action == "restart":
        # Recorded before the restart: a watchdog killed during it must still honour the cool-down.
        save_state(config["state_file"], new_state)
        rc, output = run(restart_argv(config), config["restart_timeout"])
        # supervisorctl reports some errors with rc 0 on older releases: read its words too.
        ok = rc == 0 and "ERROR" not in (output or "")
        after = main_pid(config, run)
        log_line(config["log_file"], "restart %s: pid %d -> %s%s" % (
            "done" if ok else "FAILED (rc %s)" % rc, pid, after if after is not None else "none",
            ": " + " ".join(output.split()) if output and not ok else ""), time.time(), config["log_max_bytes"])
        new_state["pid"] = after
    if new_state != state:
        save_state(config["state_file"], new_state)
    return action


def main(argv=None):
    parser = argparse.ArgumentParser(description="Restart the P2P daemon when it no longer answers its health check.")
    parser.add_argument("--config", required=True, help="settings file written by the p2p_watchdog role (JSON)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="one check (systemd timer)")
    mode.add_argument("--loop", action="store_true", help="a check every interval seconds (supervisor program)")
    args = parser.parse_args(argv)
    if args.once:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            sys.stderr.write("ringrift-p2p-watchdog: %s\n" % exc)
            return 2
        check_once(config)
        return 0
    config = None
    while True:
        started = time.monotonic()
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            # Keep watching with the last good settings; without any, exit (supervisor says FATAL).
            sys.stderr.write("ringrift-p2p-watchdog: %s\n" % exc)
            if config is None:
                return 2
        check_once(config)
        time.sleep(max(0.0, config["interval"] - (time.monotonic() - started)))


if __name__ == "__main__":
    sys.exit(main())
