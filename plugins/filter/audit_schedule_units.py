# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ringrift.cluster.audit_schedule_units."""

from __future__ import annotations

DOCUMENTATION = r"""
name: audit_schedule_units
short_description: Render the systemd service and timer, or the cron schedule and command, of the scheduled fleet audit
version_added: 0.3.0
author:
  - RingRift maintainers (@ringrift)
description:
  - Input is the schedule's settings (the C(audit_schedule_*) role variables without the prefix). Every value is
    validated whole (C(plugins/module_utils/validate.py)) before it reaches a unit or a crontab line; a bad one
    fails naming the setting.
  - Returns the texts of C(<name>.service) (C(Type=oneshot), with C(TimeoutStartSec) as the run's total deadline) and
    C(<name>.timer) (first run a minute after the timer starts, then O(_input.interval_minutes) after the previous run
    started), and for cron the five schedule fields and the job's command (C(cd), C(env), C(timeout), the playbook).
  - Cron needs an interval that divides an hour (1 to 30 minutes, or 60) or whole hours dividing a day.
options:
  _input:
    description: The settings.
    type: dict
    required: true
    suboptions:
      name:
        description: Unit and cron job name.
        type: str
        required: true
      interval_minutes:
        description: Minutes between runs.
        type: int
        required: true
      timeout_minutes:
        description: Total deadline of one run, in minutes.
        type: int
        required: true
      ansible_playbook:
        description: Absolute path of C(ansible-playbook).
        type: str
        required: true
      playbook:
        description: Playbook to run, C(ringrift.cluster.audit) or a path relative to O(_input.working_dir).
        type: str
        required: true
      inventory:
        description: Inventory source for C(-i); empty keeps the C(ansible.cfg) default.
        type: str
      working_dir:
        description: Absolute working directory (a checkout, or the directory holding the C(ansible.cfg) to use).
        type: str
        required: true
      user:
        description: User the audit runs as.
        type: str
        required: true
      environment:
        description: Environment variable name to value.
        type: dict
      extra_args:
        description: Further C(ansible-playbook) arguments, each a plain word.
        type: list
        elements: str
"""

EXAMPLES = r"""
- name: Render the units
  ansible.builtin.set_fact:
    units: >-
      {{ {'name': 'ringrift-audit', 'interval_minutes': 30, 'timeout_minutes': 20,
          'ansible_playbook': '/opt/ringrift/.venv/bin/ansible-playbook', 'playbook': 'ringrift.cluster.audit',
          'inventory': 'inventory/cluster.distributed_hosts.yml', 'working_dir': '/srv/ringrift-cluster',
          'user': 'ringrift', 'environment': {'RINGRIFT_REPORT_DIR': '/var/lib/ringrift/reports'}}
         | ringrift.cluster.audit_schedule_units }}
"""

RETURN = r"""
_value:
  description:
    - C(service) and C(timer) (unit file texts), C(command) (the argument list), C(cron) (C(minute), C(hour), C(day),
      C(month), C(weekday), C(job)) or C(cron) null when the interval has no cron form.
  type: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.ringrift.cluster.plugins.module_utils import validate

PREFIX = "audit_schedule_"


def _fail(msg):
    raise AnsibleFilterError("audit_schedule_units: " + msg)


def _check(kind, value, key):
    message = validate.problem(kind, value, PREFIX + key)
    if message:
        _fail(message)


def _minutes(settings, key, top):
    value = settings.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        _fail("%s%s must be an integer from 1 to %d, got %r" % (PREFIX, key, top, value))
    return value


def _systemd_quote(text):
    """A double-quoted systemd value: backslash and quote escaped, '%' doubled (specifiers)."""
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")


def _cron_fields(interval):
    if interval < 60 and 60 % interval == 0:
        return {"minute": "*/%d" % interval if interval > 1 else "*", "hour": "*"}
    if interval % 60 == 0 and 1440 % interval == 0:
        hours = interval // 60
        return {"minute": "0", "hour": "*/%d" % hours if hours > 1 else "*"}
    return None


def audit_schedule_units(settings):
    """See DOCUMENTATION."""
    if not isinstance(settings, Mapping):
        _fail("input must be a mapping of settings, got %s" % type(settings).__name__)
    _check("service_name", settings.get("name"), "name")
    interval = _minutes(settings, "interval_minutes", 1440)
    timeout = _minutes(settings, "timeout_minutes", 1440)
    _check("abs_path", settings.get("ansible_playbook"), "ansible_playbook")
    _check("word", settings.get("playbook"), "playbook")
    inventory = settings.get("inventory") or ""
    if inventory:
        _check("word", inventory, "inventory")
    _check("abs_path", settings.get("working_dir"), "working_dir")
    _check("user", settings.get("user"), "user")
    environment = settings.get("environment") or {}
    if not isinstance(environment, Mapping):
        _fail("%senvironment must be a mapping of name to value, got %s" % (PREFIX, type(environment).__name__))
    env = []
    for key in sorted(environment):
        _check("env_name", key, "environment key")
        value = environment[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        _check("env_value", value, "environment[%s]" % key)
        env.append((key, value))
    extra = settings.get("extra_args") or []
    if isinstance(extra, (str, bytes)) or not isinstance(extra, list):
        _fail("%sextra_args must be a list of arguments, got %s" % (PREFIX, type(extra).__name__))
    for i, arg in enumerate(extra):
        _check("word", arg, "extra_args[%d]" % i)

    name = settings["name"]
    command = [settings["ansible_playbook"]]
    if inventory:
        command += ["-i", inventory]
    command += [settings["playbook"]] + list(extra)

    service = "\n".join([
        "# Managed by ringrift.cluster.audit_schedule: changes here are overwritten.",
        "[Unit]",
        "Description=RingRift fleet audit (%s)" % settings["playbook"],
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        "User=%s" % settings["user"],
        "WorkingDirectory=%s" % settings["working_dir"],
    ] + ["Environment=%s" % _systemd_quote("%s=%s" % kv) for kv in env] + [
        # A lost quorum exits 2: the unit then shows in `systemctl --failed`.
        "ExecStart=%s" % " ".join(command),
        "TimeoutStartSec=%dmin" % timeout,
        "",
    ])
    timer = "\n".join([
        "# Managed by ringrift.cluster.audit_schedule: changes here are overwritten.",
        "[Unit]",
        "Description=Run the RingRift fleet audit every %d minutes" % interval,
        "",
        "[Timer]",
        "OnActiveSec=1min",
        # Counted from the previous run's start; a run still going is not started twice.
        "OnUnitActiveSec=%dmin" % interval,
        "Unit=%s.service" % name,
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])

    cron = _cron_fields(interval)
    if cron is not None:
        # Single quotes are safe: env_value excludes them. cron turns a bare '%' into a newline.
        env_words = ["%s='%s'" % (k, v.replace("%", "\\%")) for k, v in env]
        job = "cd %s && env %stimeout %dm %s" % (
            settings["working_dir"], "".join(w + " " for w in env_words), timeout, " ".join(command))
        cron.update(day="*", month="*", weekday="*", job=job)
    return {"service": service, "timer": timer, "command": command, "cron": cron}


class FilterModule:
    def filters(self):
        return {"audit_schedule_units": audit_schedule_units}
