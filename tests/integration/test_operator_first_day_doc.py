# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/operator-first-day.md cannot drift: its offline command blocks run as written.

Marker convention (in the Markdown source, invisible when rendered): a line holding only
``<!-- doc-test -->`` directly above a fenced ``bash`` block marks the block as runnable offline,
expected to exit 0; ``<!-- doc-test exit=N -->`` expects exit status N (4: Ansible's "hosts
unreachable", 2: a playbook with failed hosts). Blocks without a marker need what a test has
not got (a node to reach, an SSH key, a vault password typed in, an editor).

The marked blocks run in the order of the document, each in a fresh ``bash -e``, as an operator
on their first day runs them: ``HOME`` is a temporary directory, the working directory is
``~/ringrift-ops`` (the first block's ``cd``), ``PATH`` starts with this toolchain, no
ANSIBLE_* variable is set (the ``ansible.cfg`` the doc copies is the one that counts). The one
placeholder, ``/path/to/``, names the directory of a tarball built from this checkout. The
fleet file (``~/ringrift-ops/distributed_hosts.yaml``, the doc's inventory source's ``../``) holds the hosts the doc
names, every one on 127.0.0.1 at a port nothing listens on, so each connection is refused at
once and nothing outside loopback is contacted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re
import subprocess
import textwrap

import pytest
import yaml

from ansible_collections.ringrift.cluster.tests.helpers import BIN, REPO, free_port

DOC = os.path.join(REPO, "docs", "operator-first-day.md")
MARKER = re.compile(r"^\s*<!-- doc-test(?: exit=(\d+))? -->\s*$")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
PLACEHOLDER = "/path/to/"


def doc_blocks(path=DOC):
    """``[(line number, expected exit status, script)]`` for each marked block, in document order."""
    with open(path) as handle:
        lines = handle.read().splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        marker = MARKER.match(lines[index])
        if not marker:
            index += 1
            continue
        fence = FENCE.match(lines[index + 1]) if index + 1 < len(lines) else None
        assert fence and fence.group(2) == "bash", "%s:%d: doc-test marker not directly above a ```bash fence" % (
            path, index + 1)
        body = []
        end = index + 2
        while not FENCE.match(lines[end]):
            body.append(lines[end])
            end += 1
        blocks.append((index + 3, int(marker.group(1) or 0), textwrap.dedent("\n".join(body)) + "\n"))
        index = end + 1
    return blocks


def offline_fleet(port):
    """The doc's host names and groups, every host on 127.0.0.1:port (refused)."""
    hosts = {"vast-29129529": "root", "nebius-backbone-1": "ubuntu", "hetzner-cpu1": "root"}
    return yaml.safe_dump({
        "p2p_voters": list(hosts),
        "hosts": dict((name, {"ssh_host": "127.0.0.1", "ssh_port": port, "ssh_user": user, "status": "ready",
                              "ringrift_path": "~/ringrift/ai-service", "p2p_enabled": True})
                      for name, user in hosts.items()),
    }, default_flow_style=False)


@pytest.fixture(scope="module")
def operator(tmp_path_factory):
    """A home directory with the tarball, the fleet file and ~/.ssh; the environment of a fresh login shell."""
    home = tmp_path_factory.mktemp("home")
    dist = home / "dist"
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(dist), REPO],
                          cwd=str(home), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(glob.glob(str(dist / "ringrift-cluster-*.tar.gz"))) == 1
    (home / ".ssh").mkdir(mode=0o700)
    # Where the doc's inventory source looks: ../distributed_hosts.yaml from ~/ringrift-ops/inventory/.
    (home / "ringrift-ops").mkdir()
    (home / "ringrift-ops" / "distributed_hosts.yaml").write_text(offline_fleet(free_port()))
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_"))
    env.update(HOME=str(home), PATH=BIN + os.pathsep + "/usr/local/bin:/usr/bin:/bin", ANSIBLE_NOCOLOR="1",
               RINGRIFT_REPORT_DIR="")
    env.pop("RINGRIFT_REPORT_DIR")
    env.pop("VIRTUAL_ENV", None)
    return {"home": home, "dist": dist, "env": env}


def test_the_doc_has_runnable_blocks_for_each_offline_step():
    scripts = "".join(script for _line, _rc, script in doc_blocks())
    for command in ("ansible-galaxy collection install", "ansible-config dump", "ansible-doc -t inventory",
                    "ansible-inventory", "-m ansible.builtin.ping", "ringrift.cluster.audit",
                    "ringrift.cluster.site --check"):
        assert command in scripts, command


def test_every_marked_block_runs_as_written(operator):
    ops = operator["home"] / "ringrift-ops"
    ran = []
    for line, expected, script in doc_blocks():
        script = script.replace(PLACEHOLDER, str(operator["dist"]) + "/")
        proc = subprocess.run(["bash", "-e", "-c", script], cwd=str(ops), env=operator["env"], capture_output=True, text=True,
                              timeout=300, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode == expected, "docs/operator-first-day.md:%d exited %d, not %d:\n%s\n%s" % (
            line, proc.returncode, expected, script, output[-4000:])
        assert "DEPRECATION WARNING" not in output, "docs/operator-first-day.md:%d:\n%s" % (line, output[-4000:])
        ran.append((line, output))

    # What the steps left behind is what the doc says they leave.
    installed = ops / "collections" / "ansible_collections" / "ringrift" / "cluster"
    assert (installed / "MANIFEST.json").is_file()
    assert (operator["home"] / ".ansible" / "collections" / "ansible_collections" / "ringrift" / "cluster").is_dir()
    assert (ops / "ansible.cfg").read_text() == (installed / "docs" / "ansible.cfg.example").read_text()
    outputs = dict(ran)
    graph = [out for out in outputs.values() if "@p2p_voters:" in out]
    assert graph and "vast-29129529" in graph[0] and "@vast:" in graph[0], outputs
    # The audit wrote its report where the doc says: reports/ under the directory it ran from.
    assert glob.glob(str(ops / "reports" / "fleet-audit-*.json")) and glob.glob(str(ops / "reports" / "fleet-audit-*.md"))
    # The dry run's callback (enabled by the copied ansible.cfg) wrote its report too.
    assert glob.glob(str(ops / "reports" / "dry-run-*.json"))
