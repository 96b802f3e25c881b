# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/fleet_alert end to end: ansible-playbook posts to a real HTTP receiver on 127.0.0.1.

The receiver records every request body; the role is fed synthetic reports built by
fleet_report.build_report. Every run is at -vvv and its whole output must not contain
the webhook URLs' secret path token.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.server
import json
import os
import secrets
import subprocess
import sys
import threading

import pytest

from ansible_collections.ringrift.cluster.plugins.plugin_utils import quorum

from ansible_collections.ringrift.cluster.tests.helpers import ANSIBLE_PLAYBOOK, ansible_env
from ansible_collections.ringrift.cluster.plugins.plugin_utils import fleet_report
from ansible_collections.ringrift.cluster.plugins.plugin_utils import quorum

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VOTERS = ["nebius-1", "nebius-2", "vultr-1"]
QUORUM_LOST = {"nebius-1": "healthy", "nebius-2": "crashed", "vultr-1": "never_started", "vast-1": "healthy"}
HEALTHY = {"nebius-1": "healthy", "nebius-2": "healthy", "vultr-1": "healthy", "vast-1": "busy"}

PLAYBOOK = """\
- name: Alert from a synthetic report
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the role
      ansible.builtin.import_role:
        name: ringrift.cluster.fleet_alert
"""


class Receiver(http.server.ThreadingHTTPServer):
    """Records (path, content type, JSON body); answers like the real services (Discord: 204)."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests = []
        self.refuse = set()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
        kind = self.path.split("/")[1]
        status = 404 if kind in self.server.refuse else (204 if kind == "discord" else 200)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def setup(tmp_path, receiver):
    token = "T0ken" + secrets.token_hex(12)
    base = "http://127.0.0.1:%d" % receiver.server_address[1]
    urls = {
        "fleet_alert_slack_url": base + "/slack/services/T000/B000/" + token,
        "fleet_alert_discord_url": base + "/discord/api/webhooks/42/" + token,
        "fleet_alert_webhook_url": base + "/webhook/" + token,
    }
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "inventory").write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    return {"tmp": tmp_path, "token": token, "urls": urls, "receiver": receiver}


def write_report(tmp, diagnoses, name):
    records = [fleet_report.host_record(n, {"ringrift_provider": n.split("-")[0], "ringrift_is_voter": n in VOTERS},
                                        {"diagnosis": d, "missing_module": "psutil" if d == "crashed" else None})
               for n, d in diagnoses.items()]
    report = fleet_report.build_report(records, quorum.status(records, VOTERS), generated_at="2026-11-28T12:00:00Z")
    path = tmp / name
    path.write_text(json.dumps(report))
    return path


def play(setup, report_path, *args, extra=None):
    tmp = setup["tmp"]
    variables = dict(setup["urls"], fleet_alert_report_file=str(report_path),
                     fleet_alert_state_file=str(tmp / "state" / "fleet-alert.json"))
    variables.update(extra or {})
    (tmp / "vars.json").write_text(json.dumps(variables))
    env = ansible_env(tmp, RINGRIFT_REPORT_DIR=str(tmp / "reports"))
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-vvv", "-i", str(tmp / "inventory"),
         "-e", "@" + str(tmp / "vars.json"), str(tmp / "play.yml")] + list(args),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    output = proc.stdout + proc.stderr
    assert setup["token"] not in output, "a webhook URL leaked into the output"
    return proc.returncode, output


def bodies(receiver):
    return dict((path.split("/")[1], (ctype, body)) for path, ctype, body in receiver.requests)


def test_loss_then_no_change_then_recovery(setup):
    tmp, receiver = setup["tmp"], setup["receiver"]
    lost = write_report(tmp, QUORUM_LOST, "lost.json")

    rc, out = play(setup, lost)
    assert rc == 0, out
    sent = bodies(receiver)
    assert sorted(sent) == ["discord", "slack", "webhook"] and len(receiver.requests) == 3
    assert all(ctype.startswith("application/json") for ctype, dummy in sent.values())
    slack = sent["slack"][1]["text"]
    assert slack.startswith("RingRift fleet DEGRADED: voter quorum lost\n2 of 4 nodes healthy (50%); voter quorum LOST")
    assert "- crashed (1): nebius-2" in slack and "- never_started (1): vultr-1" in slack
    assert "`ansible-playbook ringrift.cluster.site --tags deps --limit nebius-2`" in slack
    assert sent["discord"][1]["content"] == slack
    hook = sent["webhook"][1]
    assert hook["event"] == "degraded" and hook["conditions"] == ["quorum_lost"] and hook["quorum"]["ok"] is False
    assert hook["nodes_by_diagnosis"] == {"never_started": ["vultr-1"], "crashed": ["nebius-2"]}
    state = json.loads((tmp / "state" / "fleet-alert.json").read_text())
    assert state["status"] == "degraded" and state["conditions"] == ["quorum_lost"]
    assert oct((tmp / "state" / "fleet-alert.json").stat().st_mode & 0o777) == "0o600"

    rc, out = play(setup, lost)
    assert rc == 0, out
    assert len(receiver.requests) == 3, "no message when nothing changed"
    assert "changed=0" in out and "no message" in out

    rc, out = play(setup, write_report(tmp, HEALTHY, "healthy.json"))
    assert rc == 0, out
    assert len(receiver.requests) == 6
    recovered = bodies(receiver)
    assert recovered["slack"][1]["text"].startswith("RingRift fleet RECOVERED")
    assert recovered["webhook"][1]["event"] == "recovered" and recovered["webhook"][1]["status"] == "ok"
    assert json.loads((tmp / "state" / "fleet-alert.json").read_text())["status"] == "ok"


def test_check_mode_decides_and_says_but_sends_and_writes_nothing(setup):
    tmp, receiver = setup["tmp"], setup["receiver"]
    rc, out = play(setup, write_report(tmp, QUORUM_LOST, "lost.json"), "--check")
    assert rc == 0, out
    assert receiver.requests == []
    assert "check mode, would send degraded to slack, discord, webhook" in out
    assert not (tmp / "state").exists()


def test_report_passed_as_a_dict_and_one_target_only(setup):
    tmp, receiver = setup["tmp"], setup["receiver"]
    report = json.loads(write_report(tmp, QUORUM_LOST, "lost.json").read_text())
    rc, out = play(setup, "", extra={"fleet_alert_report": report, "fleet_alert_slack_url": "",
                                     "fleet_alert_discord_url": ""})
    assert rc == 0, out
    assert [r[0].split("/")[1] for r in receiver.requests] == ["webhook"]


def test_refused_alert_fails_without_the_url_and_keeps_the_state_for_a_retry(setup):
    tmp, receiver = setup["tmp"], setup["receiver"]
    receiver.refuse.add("slack")
    lost = write_report(tmp, QUORUM_LOST, "lost.json")
    rc, out = play(setup, lost)
    assert rc != 0
    assert "fleet_alert: the degraded alert was not delivered: slack: HTTP 404" in out
    assert not (tmp / "state" / "fleet-alert.json").exists()
    receiver.refuse.clear()
    rc, out = play(setup, lost)
    assert rc == 0, out
    assert [r[0].split("/")[1] for r in receiver.requests].count("slack") == 2


def test_unreachable_receiver_and_bad_url_fail_clearly(setup):
    tmp = setup["tmp"]
    lost = write_report(tmp, QUORUM_LOST, "lost.json")
    dead = "http://127.0.0.1:9/webhook/" + setup["token"]
    rc, out = play(setup, lost, extra={"fleet_alert_slack_url": "", "fleet_alert_discord_url": "",
                                       "fleet_alert_webhook_url": dead, "fleet_alert_timeout": 3})
    assert rc != 0 and "webhook: no HTTP answer" in out
    rc, out = play(setup, lost, extra={"fleet_alert_slack_url": "hooks.example/" + setup["token"]})
    assert rc != 0 and "fleet_alert_slack_url must start with https://" in out


def test_no_report_is_a_clear_error(setup):
    rc, out = play(setup, "")
    assert rc != 0 and "fleet_alert: no report to judge" in out
