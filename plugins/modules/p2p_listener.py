#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module ringrift.cluster.p2p_listener."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: p2p_listener
short_description: Tell whether the RingRift P2P daemon really listens on its port, and if not, why
version_added: 0.1.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Reads the LISTEN sockets of the port from C(/proc/net/tcp) and C(/proc/net/tcp6) (IPv4, IPv6,
    dual-stack C(::), IPv4-mapped addresses), maps each socket inode to the process whose
    C(/proc/<pid>/fd) links to it, and reports that process (PID, command line, executable, user,
    parent, start time).
  - Never uses C(pgrep), C(pidof) or C(ps) and never trusts a PID file. A shell, a C(grep), a
    C(tail -f) or a stale PID whose command line mentions C(p2p_orchestrator) does not count as a
    running daemon; only the holder of the LISTEN socket does.
  - Checks that the holder is the expected daemon (O(cmdline_regex), O(node_id),
    O(check_port_in_cmdline), and with O(python) and O(script) the interpreter and the script it runs),
    optionally that it is the service manager's main PID or one of its children (O(service_manager)),
    and optionally that its health endpoint answers (O(health_path)).
  - Separate programs listening on the port (a second process with C(SO_REUSEPORT) on the same address,
    or another address on the same port) give RV(diagnosis=port_shared), since part of the connections
    reach a process that is not the daemon. Processes of one tree (forked workers, the service manager's main
    PID and its children) count as one program.
  - A holder that exits while it is being inspected is re-checked (the socket table is read again), so
    a daemon that just stopped is not blamed as a wrong owner. A daemon whose main thread has exited
    while other threads run is found through C(/proc/<pid>/task/<tid>/fd).
  - "When nothing listens, reads the end of the daemon log (O(log_path)) to tell a daemon that never
    started from one that crashed, and extracts the last error (Python traceback, missing module,
    C(FATAL: Missing critical dependencies), C(Could not auto-detect node-id), C(Address already in use))."
  - Read-only. It never starts, stops or changes anything, so check mode behaves like a normal run.
  - Sockets are read in the network namespace of the module process. Without root privileges the
    C(/proc/<pid>/fd) of other users' processes cannot be read; the owner of such a socket is then
    reported as RV(diagnosis=owner_unknown).
options:
  bind_address:
    description:
      - With O(state=listening), only consider a LISTEN socket bound to exactly this IP address (C(0.0.0.0)
        and C(::) mean the wildcard socket). IPv4-mapped IPv6 addresses compare equal to their IPv4 form.
      - With O(state=absent), every LISTEN socket that keeps this address and port from being bound counts, that is
        the same address, a wildcard (C(0.0.0.0) holds every IPv4 address, C(::) every address, as a
        dual-stack socket), or for a wildcard O(bind_address) any address of its family.
      - Unset means a socket on any address counts.
    type: str
  check_port_in_cmdline:
    description:
      - Require the owner's C(--port) argument to equal O(port) (no C(--port) means the daemon's default 8770).
    type: bool
    default: false
  health_path:
    description:
      - When set, C(GET http://<address>:<port><health_path>) is sent to the owner, where the address is
        C(127.0.0.1) for an IPv4 wildcard or loopback socket, C(::1) for C(::), or the specific address the
        socket is bound to (or O(bind_address)). No proxy is used.
      - The socket probed is one of the checked owner's own (never an address another process holds).
      - A 2xx answer is alive; JSON C(healthy=false) in a 2xx answer gives RV(diagnosis=busy) (alive, not a failure);
        a non-2xx answer, a timeout, a refused connection, a body over 64 KiB (or a head over 16 KiB) or a wrong
        C(node_id) gives RV(diagnosis=health_failed).
    type: str
  log_path:
    description:
      - Daemon log file, for example C(/var/log/ringrift/p2p.log). Used when nothing listens;
        no file gives RV(diagnosis=never_started), an error in its tail gives RV(diagnosis=crashed).
    type: path
  log_tail_bytes:
    description: How many bytes from the end of O(log_path) are read.
    type: int
    default: 65536
  timeout:
    description:
      - Seconds to keep polling (every 0.5 s) until the asked O(state) holds. V(0) checks once.
    type: float
    default: 0
  state:
    description:
      - V(listening) succeeds when the expected daemon holds the port and (with O(health_path)) answers
        (RV(diagnosis) V(healthy) or V(busy)).
      - V(absent) succeeds when nothing listens on the port; otherwise it fails and RV(diagnosis) says who holds it.
    type: str
    choices: [listening, absent]
    default: listening
  fail_on_mismatch:
    description:
      - Fail when the asked O(state) does not hold. V(false) only reports (for audits); RV(state_ok) then tells.
    type: bool
    default: true
  proc_root:
    description: Root of the proc file system. Meant for testing against a synthetic tree.
    type: path
    default: /proc
extends_documentation_fragment:
  - ringrift.cluster.daemon_run
  - ringrift.cluster.listener_options
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs the same checks.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
    description: Needs a Linux C(/proc) file system.
notes:
  - The module never reports C(changed).
seealso:
  - name: proc(5)
    description: C(/proc/net/tcp), C(/proc/<pid>/fd), C(/proc/<pid>/stat).
    link: https://man7.org/linux/man-pages/man5/proc.5.html
"""

EXAMPLES = r"""
- name: The daemon listens, is the systemd main PID and answers /health as this node
  ringrift.cluster.p2p_listener:
    port: "{{ ringrift_p2p_port }}"
    node_id: "{{ inventory_hostname }}"
    health_path: /health
    service_manager: auto
    log_path: /var/log/ringrift/p2p.log

- name: The daemon runs the venv's interpreter and the checkout's script
  ringrift.cluster.p2p_listener:
    node_id: "{{ inventory_hostname }}"
    python: /opt/ringrift/venv/bin/python
    script: /opt/ringrift/ai-service/scripts/p2p_orchestrator.py
    health_path: /health

- name: Wait up to 60 seconds after a restart
  ringrift.cluster.p2p_listener:
    health_path: /health
    timeout: 60

- name: Audit only, never fail
  ringrift.cluster.p2p_listener:
    health_path: /health
    service_manager: auto
    log_path: /var/log/ringrift/p2p.log
    fail_on_mismatch: false
  register: p2p

- name: Show why it is down
  ansible.builtin.debug:
    msg: "{{ p2p.diagnosis }}: {{ p2p.last_error | default('') }}"
  when: not p2p.state_ok

- name: The port is free before starting the service
  ringrift.cluster.p2p_listener:
    port: 8770
    state: absent
    timeout: 15
"""

RETURN = r"""
state:
  description: The asked O(state).
  returned: always
  type: str
  sample: listening
state_ok:
  description: Whether the asked O(state) holds (also when O(fail_on_mismatch=false)).
  returned: always
  type: bool
  sample: true
port:
  description: The checked port.
  returned: always
  type: int
  sample: 8770
listening:
  description: Whether any LISTEN socket exists on the port (on O(bind_address) when set), whoever holds it.
  returned: always
  type: bool
  sample: true
pid:
  description:
    - PID holding the LISTEN socket (the parent when forked workers share it); null when nothing listens or the owner is unknown.
    - When several programs hold the port, the one that is the expected daemon (the service manager's first).
  returned: always
  type: int
  sample: 41233
owner_pids:
  description: Every PID holding one of the port's LISTEN sockets.
  returned: always
  type: list
  elements: int
  sample: [41233]
other_owners:
  description:
    - The other programs that listen on the port, one entry per process tree, besides the one of RV(pid);
      empty when only one program listens. Not empty gives RV(diagnosis=port_shared) (or V(wrong_owner) when
      none of them is the daemon).
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: The program's first PID holding a socket (the parent of its forked workers).
      type: int
    pids:
      description: Every PID of that program holding a socket on the port.
      type: list
      elements: int
    cmdline:
      description: Command line of RV(other_owners[].pid).
      type: list
      elements: str
    addresses:
      description: Addresses of the sockets that program holds.
      type: list
      elements: str
  sample: [{pid: 5120, pids: [5120], cmdline: [/usr/bin/python3, /tmp/intruder.py], addresses: ["0.0.0.0"]}]
cmdline:
  description: Command line of RV(pid), one element per argument; empty when there is no owner.
  returned: always
  type: list
  elements: str
  sample: [/opt/ringrift/venv/bin/python, scripts/p2p_orchestrator.py, --node-id, gpu-01, --host, 0.0.0.0, --port, "8770"]
exe:
  description: Executable of RV(pid) (C(/proc/<pid>/exe)); null when unknown or unreadable.
  returned: always
  type: str
  sample: /usr/bin/python3.11
cwd:
  description: Working directory of RV(pid) (C(/proc/<pid>/cwd)); null when unknown or unreadable.
  returned: always
  type: str
  sample: /opt/ringrift/ai-service
user:
  description: Login name of the real UID of RV(pid) (the number when it has no passwd entry).
  returned: always
  type: str
  sample: ubuntu
ppid:
  description: Parent PID of RV(pid).
  returned: always
  type: int
  sample: 1
started_at:
  description: Start time of RV(pid), ISO 8601 UTC.
  returned: always
  type: str
  sample: "2025-01-31T08:15:02Z"
uptime_seconds:
  description: Seconds since RV(pid) started.
  returned: always
  type: float
  sample: 3621.4
addresses:
  description: The LISTEN sockets found on the port.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: Bound address (C(0.0.0.0), C(::), C(127.0.0.1), C(::ffff:10.0.0.5), ...).
      type: str
    port:
      description: Port.
      type: int
    family:
      description: C(ipv4) (from C(/proc/net/tcp)) or C(ipv6) (from C(/proc/net/tcp6)).
      type: str
    inode:
      description: Socket inode.
      type: int
    pid:
      description: PID holding the socket, null when unknown.
      type: int
  sample: [{address: "0.0.0.0", port: 8770, family: ipv4, inode: 912345, pid: 41233}]
unreadable_fd_dirs:
  description:
    - Number of processes whose C(/proc/<pid>/fd) directory could not be listed, or whose fd links
      could not be read (permissions; root in a container without C(CAP_SYS_PTRACE) reads no link
      of another user's process).
  returned: always
  type: int
  sample: 0
owner_matches:
  description:
    - Whether RV(pid) is the expected daemon (O(cmdline_regex), O(node_id), O(check_port_in_cmdline), O(python), O(script)).
    - Null when there is no known owner, or when a check could not be made (RV(diagnosis=owner_unknown)).
  returned: always
  type: bool
  sample: true
owner_problem:
  description: Why the owner does not match; null when it matches or there is no owner.
  returned: always
  type: str
  sample: "started as /usr/bin/python3.11, expected /opt/ringrift/venv/bin/python (the same binary /usr/bin/python3.11, but not the expected venv or install)"
managed_pid:
  description: Main PID reported by the service manager; 0 when it says the service is not running; null when not asked or unknown.
  returned: always
  type: int
  sample: 41233
service:
  description:
    - What the service manager said of the unit or program, in the same answer the owner check used
      (null before it was asked).
  returned: always
  type: dict
  contains:
    manager:
      description: C(systemd), C(supervisor) or C(none).
      type: str
    installed:
      description: Whether the unit or program is known to the manager.
      type: bool
    state:
      description: Manager's state, such as C(active/running), C(activating/auto-restart), C(RUNNING), C(STARTING).
      type: str
    restarts:
      description: Restarts counted by systemd (C(NRestarts)); null under supervisor.
      type: int
    main_pid:
      description: Main PID according to the manager (0 when not running, null when not installed or unknown).
      type: int
  sample: {manager: systemd, installed: true, state: active/running, restarts: 0, main_pid: 41233}
service_manager:
  description: Service manager used (O(service_manager) with V(auto) resolved).
  returned: always
  type: str
  sample: systemd
health:
  description: Result of the health request; null when O(health_path) is unset or no matching owner was found.
  returned: always
  type: dict
  contains:
    url:
      description: Requested URL.
      type: str
    status:
      description: HTTP status, null without an answer.
      type: int
    ok:
      description: 2xx answer with the expected node id.
      type: bool
    body:
      description: Answer body (at most 64 KiB; a longer one is an error).
      type: str
    json:
      description: Answer body parsed as JSON, null when it is not JSON.
      type: raw
    healthy:
      description: The JSON C(healthy) field, null when absent.
      type: bool
    node_id:
      description: The JSON C(node_id) field, null when absent.
      type: str
    error:
      description:
        - Why RV(health.ok) is false (C(timed out after 5.0s (whole request)), C(connection refused), C(HTTP 500),
          C(node_id mismatch ...), C(body over the 65536 byte limit), C(not an HTTP answer ...)).
      type: str
    elapsed:
      description: Seconds the request took.
      type: float
  sample: {url: "http://127.0.0.1:8770/health", status: 200, ok: true, healthy: true, node_id: gpu-01, error: null, elapsed: 0.004}
diagnosis:
  description:
    - V(healthy) the expected daemon holds the port (and answers when O(health_path) is set).
    - V(busy) it answers 2xx with C(healthy=false).
    - V(starting) the service manager's main PID is younger than O(start_grace), does not listen yet and its current
      run logged no fatal error.
    - V(not_listening) nothing listens.
    - V(never_started) nothing listens and O(log_path) does not exist.
    - V(crashed) nothing listens and the current run's log (after the last start marker) shows an error
      (see RV(last_error)), or a young run follows a run that died with an error (crash loop).
    - V(wrong_owner) another program (or the daemon with another node id or port) holds the port.
    - V(owner_unknown) the socket exists but no readable C(/proc/<pid>/fd) links to it (the message says to use
      C(become) only when the module does not run as root; as root the holder is outside the PID namespace),
      or O(python)/O(script) cannot be checked because the owner's C(exe) or C(cwd) cannot be read.
    - V(unmanaged) the daemon holds the port but is not the service manager's main PID or its child.
    - V(health_failed) the daemon holds the port but the health request failed.
    - V(port_shared) the daemon holds the port, but a separate program listens on it too (see RV(other_owners)).
  returned: always
  type: str
  sample: healthy
error_kind:
  description:
    - Kind of RV(last_error) (C(missing_module), C(checkout_import), C(missing_dependencies), C(node_id_missing),
      C(address_in_use), C(exception)).
    - V(checkout_import) is a missing module that is part of the checkout in O(service_dir); fix C(PYTHONPATH),
      not the packages.
  returned: always
  type: str
  sample: missing_module
missing_module:
  description: First module named by the log's last error (C(No module named 'psutil') gives C(psutil)); null when none.
  returned: always
  type: str
  sample: psutil
missing_modules:
  description: Every module named by the log's last error.
  returned: always
  type: list
  elements: str
  sample: [psutil]
last_error:
  description: The log's most recent error line (final line of a Python traceback, or the daemon's own error line); null when none or not read.
  returned: always
  type: str
  sample: "ModuleNotFoundError: No module named 'psutil'"
log_excerpt:
  description: Last 20 lines of O(log_path) when it was read (only when nothing listens).
  returned: always
  type: list
  elements: str
attempts:
  description: Number of checks made while polling for O(timeout).
  returned: always
  type: int
  sample: 1
waited_seconds:
  description: Seconds spent checking and polling.
  returned: always
  type: float
  sample: 0.012
msg:
  description: One line saying what holds the port, or why the asked state does not hold.
  returned: always
  type: str
  sample: "nothing listens on port 8770; crashed: missing module psutil (ModuleNotFoundError: No module named 'psutil')"
"""

import copy

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ringrift.cluster.plugins.module_utils import p2p_log, p2p_proc, service_manager

# The options shared with node_audit come from one place; the listener's own follow.
ARGUMENT_SPEC = dict(
    copy.deepcopy(p2p_proc.LISTENER_ARGUMENT_SPEC),
    bind_address=dict(type="str"),
    check_port_in_cmdline=dict(type="bool", default=False),
    health_path=dict(type="str"),
    log_path=dict(type="path"),
    log_tail_bytes=dict(type="int", default=p2p_log.DEFAULT_LOG_TAIL_BYTES),
    timeout=dict(type="float", default=0),
    state=dict(type="str", default="listening", choices=["listening", "absent"]),
    fail_on_mismatch=dict(type="bool", default=True),
    proc_root=dict(type="path", default="/proc"),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)

    try:
        result = p2p_proc.inspect(module.params, runner=service_manager.bounded_runner())
    except ValueError as exc:
        module.fail_json(msg=str(exc), changed=False)

    for warning in result.pop("warnings", []):
        module.warn(warning)
    result["changed"] = False
    if result.pop("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
