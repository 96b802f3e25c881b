# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ringrift.cluster.fleet_alert_decision."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_alert_decision
short_description: Decide whether a fleet report warrants an alert, and build the message for each webhook kind
version_added: 0.3.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Input is the fleet report, as returned by C(ringrift.cluster.fleet_report) or read from its JSON file
    (see C(docs/report-schema.md)); it needs C(summary), C(quorum) and C(hosts), and uses C(recommendations),
    C(generated_at), C(json_path) and C(md_path) when present.
  - The fleet is C(degraded) when the voter quorum is lost (C(quorum.ok) false with voters required) or when
    fewer than O(min_healthy_share) of the audited nodes are alive (C(healthy) or C(busy)); otherwise C(ok).
  - The decision compares that state (status and the list of conditions) with O(previous_state), the content
    of the state file the previous alert left. An alert is due when they differ and either side is degraded;
    event C(degraded) (was ok), C(changed) (still degraded, other conditions) or C(recovered) (now ok).
    With no previous state, an ok fleet sends nothing; a degraded one alerts.
  - The returned C(state) is what the state file must hold afterwards; C(state_changed) says whether it differs
    from O(previous_state). It changes only on a transition, so a steady fleet rewrites nothing.
  - Webhook URLs never pass through this filter, so its result is safe to show.
options:
  _input:
    description: The fleet report.
    type: dict
    required: true
  previous_state:
    description:
      - The state file's text (JSON), or an already parsed mapping; empty or null when there is no state file.
    type: raw
  min_healthy_share:
    description: The fleet is degraded below this share of alive nodes (0 to 1). 0 disables this condition.
    type: float
    default: 0.5
  state_file:
    description: Path of the state file, only used to name it in error messages.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Decide whether to alert
  ansible.builtin.set_fact:
    alert: "{{ fleet_report | ringrift.cluster.fleet_alert_decision(state_text, min_healthy_share=0.6) }}"

- name: Post the Slack message when one is due
  ansible.builtin.uri:
    url: "{{ vault_slack_webhook_url }}"
    method: POST
    body_format: json
    body: "{{ alert.payloads.slack }}"
  when: alert.send
  no_log: true
"""

RETURN = r"""
_value:
  description:
    - C(send) (bool) whether an alert is due; C(event) (C(degraded), C(changed), C(recovered) or null);
      C(status) (C(ok) or C(degraded)); C(conditions) (list of C(quorum_lost), C(healthy_share_low));
      C(previous_status) (C(ok), C(degraded) or null without previous state);
      C(reason) (one sentence on why an alert is or is not due); C(summary_line) (str);
      C(nodes_by_diagnosis) (diagnosis to host names, alive diagnoses left out);
      C(commands) (the report's recommended commands); C(text) (the message as plain text);
      C(state) (dict for the state file); C(state_changed) (bool);
      C(payloads) (C(slack), C(discord) and C(webhook) request bodies).
  type: dict
"""

import json
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.ringrift.cluster.plugins.plugin_utils import fleet_report

STATE_VERSION = 1
# Hard limits of the receivers: Discord rejects content over 2000 characters; Slack
# truncates text beyond 40000 but recommends staying under 4000.
DISCORD_LIMIT = 2000
SLACK_LIMIT = 3900
NAMES_PER_DIAGNOSIS = 12
TITLES = {
    "degraded": "RingRift fleet DEGRADED",
    "changed": "RingRift fleet still DEGRADED, conditions changed",
    "recovered": "RingRift fleet RECOVERED",
}
CONDITION_WORDS = {
    "quorum_lost": "voter quorum lost",
    "healthy_share_low": "healthy share below threshold",
}


def _fail(msg):
    raise AnsibleFilterError("fleet_alert_decision: " + msg)


def _parse_state(previous_state, state_file):
    where = " in %s" % state_file if state_file else ""
    if previous_state is None or previous_state == "":
        return None
    if isinstance(previous_state, Mapping):
        state = dict(previous_state)
    elif isinstance(previous_state, str):
        if not previous_state.strip():
            return None
        try:
            state = json.loads(previous_state)
        except ValueError as exc:
            _fail("the alert state%s is not JSON (%s); delete the file to start over" % (where, exc))
    else:
        _fail("previous_state must be the state file's text or a mapping, got %s" % type(previous_state).__name__)
    if not isinstance(state, dict) or state.get("status") not in ("ok", "degraded") \
            or not isinstance(state.get("conditions"), list):
        _fail("the alert state%s has no valid 'status' (ok or degraded) and 'conditions' list;"
              " delete the file to start over" % where)
    return state


def _check_report(report):
    if not isinstance(report, Mapping):
        _fail("input must be the fleet report (a mapping), got %s" % type(report).__name__)
    for key, kind in (("summary", Mapping), ("quorum", Mapping), ("hosts", list)):
        if not isinstance(report.get(key), kind):
            _fail("the report has no '%s' %s: expected the result of ringrift.cluster.fleet_report or its JSON file"
                  % (key, "mapping" if kind is Mapping else "list"))
    for key in ("total", "healthy"):
        value = report["summary"].get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _fail("the report's summary.%s must be a non-negative integer, got %r" % (key, value))
    for i, host in enumerate(report["hosts"]):
        if not isinstance(host, Mapping) or not isinstance(host.get("name"), str) \
                or not isinstance(host.get("diagnosis"), str):
            _fail("the report's hosts[%d] needs a 'name' and a 'diagnosis'" % i)


def _summary_line(report):
    summary, quorum = report["summary"], report["quorum"]
    total, healthy = summary["total"], summary["healthy"]
    share = (100.0 * healthy / total) if total else 0.0
    line = "%d of %d nodes healthy (%.0f%%)" % (healthy, total, share)
    voters = quorum.get("voters") or []
    if quorum.get("required"):
        alive = quorum.get("healthy_voters") or []
        line += "; voter quorum %s: %d of %d voters alive, %d required" % (
            "met" if quorum.get("ok") else "LOST", len(alive), len(voters), quorum["required"])
        down = quorum.get("down_voters") or []
        if down:
            line += " (down: %s)" % ", ".join(down)
    return line


def _nodes_by_diagnosis(hosts):
    grouped = {}
    for host in hosts:
        if host["diagnosis"] in fleet_report.ALIVE:
            continue
        grouped.setdefault(host["diagnosis"], []).append(host["name"])
    order = dict((d, i) for i, d in enumerate(fleet_report.DIAGNOSES))
    return dict(sorted(grouped.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _names(names):
    shown = ", ".join(names[:NAMES_PER_DIAGNOSIS])
    if len(names) > NAMES_PER_DIAGNOSIS:
        shown += " and %d more" % (len(names) - NAMES_PER_DIAGNOSIS)
    return shown


def _cut(text, limit):
    if len(text) <= limit:
        return text
    tail = "\n... (cut; the full report has everything)"
    return text[:limit - len(tail)] + tail


def _message(title, reason, summary_line, by_diagnosis, commands, report, code):
    """Plain text; ``code`` wraps commands for Slack/Discord markdown (a backquote pair)."""
    lines = ["%s: %s" % (title, reason), summary_line]
    if by_diagnosis:
        lines.append("Nodes by diagnosis:")
        lines.extend("- %s (%d): %s" % (d, len(n), _names(n)) for d, n in by_diagnosis.items())
    if commands:
        lines.append("Recommended:")
        lines.extend("- %s%s%s" % (code, c, code) for c in commands)
    where = report.get("md_path") or report.get("json_path")
    if where:
        lines.append("Report: %s" % where)
    return "\n".join(lines)


def fleet_alert_decision(report, previous_state=None, min_healthy_share=0.5, state_file=""):
    """See DOCUMENTATION."""
    _check_report(report)
    try:
        threshold = float(min_healthy_share)
    except (TypeError, ValueError):
        threshold = -1.0
    if isinstance(min_healthy_share, bool) or not 0.0 <= threshold <= 1.0:
        _fail("min_healthy_share (fleet_alert_min_healthy_share) must be a number from 0 to 1, got %r" % (min_healthy_share,))
    previous = _parse_state(previous_state, state_file)

    summary, quorum = report["summary"], report["quorum"]
    conditions = []
    if quorum.get("required") and not quorum.get("ok"):
        conditions.append("quorum_lost")
    if summary["total"] and summary["healthy"] < threshold * summary["total"]:
        conditions.append("healthy_share_low")
    status = "degraded" if conditions else "ok"

    prev_status = previous["status"] if previous else None
    prev_conditions = sorted(previous["conditions"]) if previous else []
    if previous is None:
        event = "degraded" if conditions else None
    elif sorted(conditions) == prev_conditions and status == prev_status:
        event = None
    elif status == "degraded":
        event = "degraded" if prev_status == "ok" else "changed"
    else:
        event = "recovered"

    described = ", ".join(CONDITION_WORDS[c] for c in conditions)
    if event == "recovered":
        reason = "the fleet is back to ok (was: %s)" % ", ".join(CONDITION_WORDS.get(c, c) for c in prev_conditions)
    elif event:
        reason = described
    elif status == "degraded":
        reason = "still degraded (%s) as at the last alert" % described
    elif previous is None:
        reason = "the fleet is ok and no alert was ever sent"
    else:
        reason = "still ok since the last alert"

    if previous is not None and event is None:
        state = dict(previous)
    else:
        state = {
            "version": STATE_VERSION,
            "status": status,
            "conditions": conditions,
            "since": report.get("generated_at"),
            "summary_line": _summary_line(report),
        }

    summary_line = _summary_line(report)
    by_diagnosis = _nodes_by_diagnosis(report["hosts"])
    commands = [r["command"] for r in report.get("recommendations") or []
                if isinstance(r, Mapping) and isinstance(r.get("command"), str)]
    title = TITLES.get(event, "RingRift fleet %s" % status)
    text = _message(title, reason, summary_line, by_diagnosis, commands, report, "")
    markdown = _message(title, reason, summary_line, by_diagnosis, commands, report, "`")
    payloads = {
        "slack": {"text": _cut(markdown, SLACK_LIMIT)},
        "discord": {"content": _cut(markdown, DISCORD_LIMIT), "allowed_mentions": {"parse": []}},
        "webhook": {
            "source": "ringrift.cluster",
            "event": event,
            "status": status,
            "previous_status": prev_status,
            "conditions": conditions,
            "reason": reason,
            "summary_line": summary_line,
            "summary": dict(summary),
            "quorum": dict(quorum),
            "nodes_by_diagnosis": by_diagnosis,
            "recommendations": list(report.get("recommendations") or []),
            "generated_at": report.get("generated_at"),
            "report": {"json_path": report.get("json_path"), "md_path": report.get("md_path")},
            "text": text,
        },
    }
    return {
        "send": event is not None,
        "event": event,
        "status": status,
        "conditions": conditions,
        "previous_status": prev_status,
        "reason": reason,
        "summary_line": summary_line,
        "nodes_by_diagnosis": by_diagnosis,
        "commands": commands,
        "text": text,
        "state": state,
        "state_changed": state != previous,
        "payloads": payloads,
    }


class FilterModule:
    def filters(self):
        return {"fleet_alert_decision": fleet_alert_decision}
