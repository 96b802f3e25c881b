# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One bounded runner for every probe that starts a process on a node.

AnsibleModule.run_command has no deadline; a hung driver (nvidia-smi) or an import that
never returns (the daemon's entry point) must not stall a whole run. Stdlib only, Python 3.8+.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import subprocess

TIMED_OUT_RC = 124
# Seconds kept back from each command's share of the deadline to kill it and collect what it printed.
REAP_GRACE = 0.5


def _text(data):
    return (data or b'').decode('utf-8', 'replace')


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def run_bounded(argv, seconds, env=None, cwd=None):
    """Run C(argv) for at most C(seconds); return C((rc, stdout, stderr, timed_out)).

    Returns within C(seconds + REAP_GRACE) whatever the command does.  A hung
    nvidia-smi usually means a GPU fell off the bus; it may ignore SIGTERM,
    and a process stuck inside the kernel driver ignores even SIGKILL until
    the driver lets go.  So on expiry the command's whole process group gets
    SIGKILL, what it printed is collected for at most REAP_GRACE seconds, and
    a process that still holds on is left behind unreaped rather than waited
    for.  A command that cannot be started is C((127, '', why, False)).

    C(env) replaces the environment (default: this one with C(LC_ALL=C)); C(cwd) is the
    working directory.
    """
    if seconds <= 0:
        return TIMED_OUT_RC, '', '', True
    if env is None:
        env = dict(os.environ)
        env['LC_ALL'] = 'C'
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=cwd, close_fds=True, start_new_session=True)
    except (IOError, OSError) as exc:
        return 127, '', str(exc), False
    try:
        out, err = proc.communicate(timeout=seconds)
        return proc.returncode, _text(out), _text(err), False
    except subprocess.TimeoutExpired:
        pass
    _kill_group(proc)
    try:
        out, err = proc.communicate(timeout=REAP_GRACE)
    except subprocess.TimeoutExpired:
        out, err = b'', b''
        for pipe in (proc.stdout, proc.stderr):
            try:
                pipe.close()
            except (IOError, OSError):
                pass
    return TIMED_OUT_RC, _text(out), _text(err), True
