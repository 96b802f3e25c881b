# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the live loopback tests; the plain helpers are in tests/helpers.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import threading

import pytest

from ansible_collections.ringrift.cluster.tests.helpers import REPO, STANDIN_ENV, stop


@pytest.fixture
def procs():
    """Start processes in their own session; all are stopped (SIGTERM, then SIGKILL) at teardown.

    ``procs(argv, log_path=None, env=None, cwd=None)``: the stand-in's environment (STANDIN_ENV, no
    RINGRIFT_NODE_ID or RINGRIFT_FAKE_BUSY from the caller's), plus ``env``; output appended to
    ``log_path``; working directory ``cwd``, else the repository root.
    """
    started = []
    lock = threading.Lock()

    def start(argv, log_path=None, env=None, cwd=None):
        full_env = dict(os.environ, **STANDIN_ENV)
        full_env.pop("RINGRIFT_NODE_ID", None)
        full_env.pop("RINGRIFT_FAKE_BUSY", None)
        full_env.update(env or {})
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=full_env, cwd=cwd or REPO, start_new_session=True)
        finally:
            if log_path:
                out.close()
        with lock:
            started.append(proc)
        return proc

    yield start
    for proc in started:
        stop(proc)
