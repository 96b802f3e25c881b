# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The RingRift P2P daemon's contract: one home for what every role and playbook must agree on.

Node id, port, addresses, peers, where the service lives, the interpreter, the command
line, the environment, the service name, the log file and the settings files are all
derived here, once, from the ``ringrift_*`` settings (which the inventory plugin fills
from ``distributed_hosts.yaml``). Controller-side only: :func:`resolve_vars` reads a host's
settings from its variables and :func:`resolve` derives the contract; the
``ringrift.cluster.p2p_contract`` lookup (a host's own variables) and the ``p2p_contract_of``
filter (another host's ``hostvars``) call the first, the ``p2p_contract`` filter the second.
The ``p2p_contract`` role publishes the result as the fact ``p2p_contract_daemon``, and every
role and playbook reads that fact (the audit resolves it through the lookup, without a task).

How the real daemon must be started (read in its own unit file and run here): working
directory the service directory (``ai-service``), ``PYTHONPATH`` that directory (the
script imports ``scripts.*`` before it fixes ``sys.path``), ``--advertise-host`` (without it
the daemon waits ~90 s for a Tailscale address), ``--ringrift-path`` the directory above
the service directory, and ``--kill-duplicates``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath

from ansible_collections.ringrift.cluster.plugins.module_utils.p2p_log import START_MARKER
from ansible_collections.ringrift.cluster.plugins.module_utils.validate import is_valid, problem

# setting -> (kind, default, description). A default of None is derived (see resolve()).
SETTINGS = {
    "ringrift_node_id": ("node_id", None, "the daemon's --node-id (default: inventory_hostname)"),
    "ringrift_p2p_port": ("port", 8770, "TCP port the daemon listens on (--port)"),
    "ringrift_p2p_bind_host": ("host", "0.0.0.0", "address the daemon binds (--host)"),
    "ringrift_advertise_host": ("host", None, "address peers use to reach this node (--advertise-host; default: ansible_host)"),
    "ringrift_p2p_peers": ("peer_url", [], "peer URLs http(s)://host:port for --peers (this node itself is dropped)"),
    "ringrift_path": ("path", "/opt/ringrift/ai-service", "the service directory holding scripts/p2p_orchestrator.py (may start with ~)"),
    "ringrift_venv_path": ("path", None, "the venv the daemon runs from (default: <ringrift_path>/venv)"),
    "ringrift_p2p_python": ("abs_path", None, "the daemon's interpreter (default: <venv>/bin/python)"),
    "ringrift_p2p_script": ("rel_path", "scripts/p2p_orchestrator.py", "the entry point, relative to the service directory"),
    "ringrift_p2p_user": ("user", None, "the user the daemon runs as (default: ansible_user, else root)"),
    "ringrift_p2p_service_name": ("service_name", "ringrift-p2p", "systemd unit / supervisor program name"),
    "ringrift_p2p_log_file": ("abs_path", "/var/log/ringrift/p2p.log", "the daemon's log file"),
    "ringrift_config_dir": ("abs_path", "/etc/ringrift", "directory of node-id and node.conf"),
    "ringrift_p2p_health_path": ("abs_path", "/health", "HTTP path of the daemon's health answer"),
    "ringrift_p2p_extra_args": ("word", [], "more arguments appended to the daemon's command line"),
    "ringrift_p2p_start_grace": ("seconds", 180, "seconds a started daemon may take to listen before it counts as broken"),
    "ringrift_p2p_kill_duplicates": ("bool", True, "pass --kill-duplicates (as the daemon's own unit does)"),
    "p2p_daemon_git_repo": ("git_url", "", "clone this repository (empty: the checkout must already be there)"),
    "p2p_daemon_git_subdir": ("rel_path_or_empty", "ai-service", "the service directory inside the repository"),
}

LIST_SETTINGS = ("ringrift_p2p_peers", "ringrift_p2p_extra_args")

# Settings each role used to declare on its own; a value set for one of them would now be
# ignored silently, so it is an error that names the one setting that replaced it.
LEGACY = {
    "p2p_daemon_node_id": "ringrift_node_id", "p2p_service_node_id": "ringrift_node_id",
    "p2p_verify_node_id": "ringrift_node_id",
    "p2p_daemon_port": "ringrift_p2p_port", "p2p_service_port": "ringrift_p2p_port", "p2p_verify_port": "ringrift_p2p_port",
    "p2p_daemon_bind_host": "ringrift_p2p_bind_host", "p2p_service_bind_host": "ringrift_p2p_bind_host",
    "p2p_daemon_advertise_host": "ringrift_advertise_host", "p2p_service_advertise_host": "ringrift_advertise_host",
    "p2p_daemon_peers": "ringrift_p2p_peers", "p2p_service_peers": "ringrift_p2p_peers",
    "p2p_daemon_checkout_path": "ringrift_path", "p2p_service_checkout_path": "ringrift_path",
    "python_deps_checkout_path": "ringrift_path",
    "p2p_service_venv_path": "ringrift_venv_path", "python_deps_venv_path": "ringrift_venv_path",
    "p2p_service_venv_dirname": "ringrift_venv_path", "python_deps_venv_dirname": "ringrift_venv_path",
    "p2p_service_python": "ringrift_p2p_python",
    "p2p_daemon_service_user": "ringrift_p2p_user", "p2p_service_user": "ringrift_p2p_user",
    "p2p_service_name": "ringrift_p2p_service_name", "p2p_verify_service_name": "ringrift_p2p_service_name",
    "p2p_service_log_file": "ringrift_p2p_log_file", "p2p_verify_log_path": "ringrift_p2p_log_file",
    "p2p_daemon_config_dir": "ringrift_config_dir", "p2p_service_env_file": "ringrift_config_dir",
    "p2p_service_node_id_file": "ringrift_config_dir",
    "p2p_verify_health_path": "ringrift_p2p_health_path",
    "p2p_service_extra_args": "ringrift_p2p_extra_args",
    "python_deps_create_venv": "ringrift_p2p_python (the interpreter to install into; outside a venv it is used as it is)",
    "python_deps_import_names": "python_deps_module_distributions (module -> distribution)",
    "p2p_watchdog_become": "nothing: every role escalates with sudo exactly where it needs root, when the login user is not root",
}

_OWN_HOSTS = ("localhost", "127.0.0.1", "::1")


def resolve_vars(variables, host, template=None, expand_home=False):
    """The contract of ``host`` from its variables: the settings of :data:`SETTINGS` defined
    there, ``ansible_host``, ``ansible_user``, the fact ``user_id`` (the login user) and, with
    ``expand_home``, the fact ``user_dir`` (the login user's home, for ``~`` paths; without it they
    stay unexpanded).

    :arg variables: a mapping of the host's variables (a lookup's ``variables``, ``hostvars[host]``).
    :arg template: ``template(value) -> value``, applied to each value read (default: as it is).
    :raises ContractError: as :func:`resolve`; any name of :data:`LEGACY` defined is one of its problems.
    """
    def read(name, default=None):
        if name not in variables:
            return default
        value = variables[name]
        return template(value) if template else value

    settings = dict((name, read(name)) for name in SETTINGS if name in variables)
    facts = read("ansible_facts", {}) or {}
    # Without the fact, ~ paths stay as they are (paths_expanded false) rather than guessed.
    home = (facts.get("user_dir") or None) if expand_home else None
    return resolve(settings, host, home=home, ansible_host=read("ansible_host"), ansible_user=read("ansible_user"),
                   legacy=[name for name in LEGACY if name in variables], login_user=facts.get("user_id"))


class ContractError(ValueError):
    """Invalid settings; the message names the host and every bad field."""


def _check_scalar(name, kind, value):
    if kind == "seconds":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 86400
        return None if ok else "%s %r must be a whole number of seconds 0..86400" % (name, value)
    if kind == "bool":
        return None if isinstance(value, bool) else "%s %r must be true or false" % (name, value)
    if kind == "rel_path":
        ok = is_valid("abs_path", "/" + value) if isinstance(value, str) else False
        ok = ok and not value.startswith("/") and ".." not in value.split("/")
        return None if ok else "%s %r must be a path relative to the service directory, without '..'" % (name, value)
    if kind == "rel_path_or_empty":
        return None if value == "" else _check_scalar(name, "rel_path", value)
    if kind == "git_url":
        ok = isinstance(value, str) and (value == "" or (not value.startswith("-") and is_valid("env_value", value) and " " not in value))
        return None if ok else "%s %r must be a repository URL or path (no spaces, not starting with '-')" % (name, value)
    if kind == "port" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return problem(kind, value, name)


def _strip_url(url):
    return url.rstrip("/")


def _url_host_port(url):
    rest = url.split("://", 1)[1]
    host, port = rest.rsplit(":", 1)
    return host.strip("[]").lower(), int(port)


def _expand(path, home):
    if home is None or not path.startswith("~"):
        return path
    if path == "~":
        return home
    return home.rstrip("/") + path[1:]


def resolve(settings, host, home=None, ansible_host=None, ansible_user=None, legacy=(), login_user=None):
    """The daemon's contract for one host.

    :arg settings: ``{setting: value}`` for the names in :data:`SETTINGS` (missing or None: default).
    :arg host: ``inventory_hostname``, named in every message.
    :arg home: the login user's home on the node; paths starting with ``~`` are expanded with it
        (``None``: left as they are, for callers that never touch the node's files).
    :arg legacy: names of variables that are defined for the host; any name of :data:`LEGACY`
        among them is an error naming the setting that replaced it.
    :arg login_user: the user Ansible logs in as, as the node reports it (``ansible_facts.user_id``);
        default ``ansible_user``, else ``root`` (a connection without a user: Docker, a root login).
    :raises ContractError: naming the host and every invalid field, before anything is written.
    """
    problems = []
    for old in sorted(set(legacy or ()) & set(LEGACY)):
        problems.append("%s is no longer read: set %s instead (one setting for every role)" % (old, LEGACY[old]))
    values = {}
    for name, (kind, default, dummy) in SETTINGS.items():
        value = settings.get(name)
        if value is None or (name in LIST_SETTINGS and value == ""):
            value = list(default) if isinstance(default, list) else default
        if name in LIST_SETTINGS:
            if isinstance(value, str):
                value = [item.strip() for item in value.split(",")]
            if not isinstance(value, (list, tuple)):
                problems.append("%s must be a list" % name)
                value = []
            value = [item for item in value if item != ""]
            for item in value:
                bad = problem(kind, item, name + " item") if isinstance(item, str) else "%s item %r must be a string" % (name, item)
                if bad:
                    problems.append(bad)
        elif value is not None:
            bad = _check_scalar(name, kind, value)
            if bad:
                problems.append(bad)
        values[name] = value

    node_id = values["ringrift_node_id"] if values["ringrift_node_id"] is not None else host
    if values["ringrift_node_id"] is None:
        bad = problem("node_id", node_id, "ringrift_node_id (default: the inventory host name)")
        if bad:
            problems.append(bad)
    advertise = values["ringrift_advertise_host"] or ansible_host or host
    if values["ringrift_advertise_host"] is None:
        bad = problem("host", advertise, "ringrift_advertise_host (default: ansible_host)")
        if bad:
            problems.append(bad)
    login = login_user or ansible_user or "root"
    bad = problem("user", login, "the login user (ansible_user)")
    if bad:
        problems.append(bad)
    user = values["ringrift_p2p_user"] or login
    if values["ringrift_p2p_user"] is None and not bad:
        bad = problem("user", user, "ringrift_p2p_user (default: the login user)")
        if bad:
            problems.append(bad)
    service_dir = values["ringrift_path"]
    subdir = values["p2p_daemon_git_subdir"]
    repo = values["p2p_daemon_git_repo"]
    if repo and isinstance(service_dir, str) and isinstance(subdir, str) and subdir:
        if not service_dir.rstrip("/").endswith("/" + subdir):
            problems.append("ringrift_path %r must end with p2p_daemon_git_subdir %r: the repository is cloned above it "
                            "(set p2p_daemon_git_subdir to '' when the daemon is at the repository root)" % (service_dir, subdir))
    if problems:
        raise ContractError("%s: invalid daemon settings, nothing written: %s" % (host, "; ".join(problems)))

    service_dir = _expand(service_dir.rstrip("/") or "/", home)
    if repo and subdir:
        repo_dir = service_dir[:-(len(subdir) + 1)]
    elif repo:
        repo_dir = service_dir
    else:
        repo_dir = None
    venv = _expand(values["ringrift_venv_path"], home) if values["ringrift_venv_path"] else service_dir + "/venv"
    python = values["ringrift_p2p_python"] or venv + "/bin/python"
    script = values["ringrift_p2p_script"]
    port = int(values["ringrift_p2p_port"])

    own = set(name.lower() for name in (node_id, host, advertise, ansible_host or host) + _OWN_HOSTS)
    peers = []
    for url in values["ringrift_p2p_peers"]:
        url = _strip_url(url)
        peer_host, peer_port = _url_host_port(url)
        if peer_host in own and peer_port == port:
            continue
        if url not in peers:
            peers.append(url)

    argv = [python, script, "--node-id", node_id, "--host", values["ringrift_p2p_bind_host"], "--port", str(port),
            "--advertise-host", advertise, "--ringrift-path", posixpath.dirname(service_dir) or "/"]
    if peers:
        argv += ["--peers", ",".join(peers)]
    if values["ringrift_p2p_kill_duplicates"]:
        argv.append("--kill-duplicates")
    argv += list(values["ringrift_p2p_extra_args"])

    config_dir = values["ringrift_config_dir"].rstrip("/")
    return {
        "host": host,
        "node_id": node_id,
        "port": port,
        "bind_host": values["ringrift_p2p_bind_host"],
        "advertise_host": advertise,
        "peers": peers,
        "user": user,
        "login_user": login,
        # What needs root (packages, /etc, units, the stamp) escalates with sudo from any other
        # login; a root login never calls sudo (many container images have none).
        "become_root": login != "root",
        # What the daemon owns (checkout, venv, its files in the tree, the import probe) is done
        # as the daemon's user; escalation only when that is not the login user.
        "become_daemon": user != login,
        "service_dir": service_dir,
        "repo_dir": repo_dir,
        "git_repo": repo,
        "venv": venv,
        "python": python,
        "script": script,
        "script_path": service_dir + "/" + script,
        "workdir": service_dir,
        # The daemon's own modules (scripts.*, app.*) import from the service directory.
        "environment": {"PYTHONPATH": service_dir, "PYTHONUNBUFFERED": "1"},
        "argv": argv,
        "service_name": values["ringrift_p2p_service_name"],
        "log_file": values["ringrift_p2p_log_file"],
        "log_dir": posixpath.dirname(values["ringrift_p2p_log_file"]),
        "config_dir": config_dir,
        "env_file": config_dir + "/node.conf",
        "node_id_file": config_dir + "/node-id",
        # The real daemon reads its voters from here (without it: "No voter nodes configured").
        "fleet_file": service_dir + "/config/distributed_hosts.yaml",
        "health_path": values["ringrift_p2p_health_path"],
        "start_grace": values["ringrift_p2p_start_grace"],
        "start_marker": START_MARKER,
        "paths_expanded": home is not None or not any(
            str(v).startswith("~") for v in (values["ringrift_path"], values["ringrift_venv_path"] or "")),
    }
