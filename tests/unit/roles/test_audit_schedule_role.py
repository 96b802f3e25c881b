# -*- coding: utf-8 -*-
# Copyright: RingRift maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/audit_schedule and ringrift.cluster.audit_schedule_units.

The role runs with ansible-playbook against localhost, writing into a temporary unit
directory (audit_schedule_activate: false, so no systemctl) or a temporary cron file;
the written units are checked line by line and with `systemd-analyze verify` when the
machine has it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ringrift.cluster.plugins.filter import audit_schedule_units as asu_mod

from ansible_collections.ringrift.cluster.tests.helpers import ansible_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
units = asu_mod.FilterModule().filters()["audit_schedule_units"]

PLAYBOOK = """\
- name: Schedule the audit
  hosts: localhost
  gather_facts: false
  roles:
    - role: ringrift.cluster.audit_schedule
"""


def settings(**over):
    base = {"name": "ringrift-audit", "interval_minutes": 30, "timeout_minutes": 20,
            "ansible_playbook": ANSIBLE_PLAYBOOK, "playbook": "ringrift.cluster.audit",
            "inventory": "inventory/cluster.distributed_hosts.yml", "working_dir": REPO, "user": "ringrift",
            "environment": {"RINGRIFT_REPORT_DIR": "/var/lib/ringrift/reports", "NOTE": 'say "100%" \\ done'},
            "extra_args": ["-e", "@/etc/ringrift/alerts.yml"]}
    base.update(over)
    return base


def test_filter_is_exposed_under_its_name():
    assert asu_mod.FilterModule().filters() == {"audit_schedule_units": asu_mod.audit_schedule_units}


def test_service_and_timer_text():
    out = units(settings())
    lines = out["service"].splitlines()
    assert "Type=oneshot" in lines and "User=ringrift" in lines and "WorkingDirectory=%s" % REPO in lines
    assert ('ExecStart=%s -i inventory/cluster.distributed_hosts.yml ringrift.cluster.audit -e @/etc/ringrift/alerts.yml'
            % ANSIBLE_PLAYBOOK) in lines
    assert "TimeoutStartSec=20min" in lines
    # sorted, quoted, '%' doubled for systemd's specifiers, quote and backslash escaped
    assert lines.index('Environment="NOTE=say \\"100%%\\" \\\\ done"') < lines.index(
        'Environment="RINGRIFT_REPORT_DIR=/var/lib/ringrift/reports"')
    timer = out["timer"].splitlines()
    assert "OnUnitActiveSec=30min" in timer and "Unit=ringrift-audit.service" in timer
    assert "WantedBy=timers.target" in timer and "OnActiveSec=1min" in timer


@pytest.mark.parametrize("interval, minute, hour", [(30, "*/30", "*"), (1, "*", "*"), (15, "*/15", "*"),
                                                    (60, "0", "*"), (360, "0", "*/6")])
def test_cron_fields(interval, minute, hour):
    cron = units(settings(interval_minutes=interval))["cron"]
    assert (cron["minute"], cron["hour"], cron["day"], cron["month"], cron["weekday"]) == (minute, hour, "*", "*", "*")


@pytest.mark.parametrize("interval", [7, 45, 90, 1000])
def test_intervals_without_cron_form(interval):
    assert units(settings(interval_minutes=interval))["cron"] is None


def test_cron_job_quotes_env_and_escapes_percent():
    job = units(settings())["cron"]["job"]
    assert job == ("cd %s && env NOTE='say \"100\\%%\" \\ done' RINGRIFT_REPORT_DIR='/var/lib/ringrift/reports' "
                   "timeout 20m %s -i inventory/cluster.distributed_hosts.yml ringrift.cluster.audit "
                   "-e @/etc/ringrift/alerts.yml" % (REPO, ANSIBLE_PLAYBOOK))


@pytest.mark.parametrize("over, words", [
    ({"user": "root\nExecStartPre=/bin/sh"}, "audit_schedule_user"),
    ({"working_dir": "relative/dir"}, "audit_schedule_working_dir"),
    ({"ansible_playbook": "ansible-playbook"}, "audit_schedule_ansible_playbook"),
    ({"extra_args": ["-e", "x=1 y=2"]}, r"audit_schedule_extra_args\[1\]"),
    ({"extra_args": "-e x=1"}, "audit_schedule_extra_args must be a list"),
    ({"environment": {"BAD-NAME": "x"}}, "audit_schedule_environment key"),
    ({"environment": {"A": "it's"}}, r"audit_schedule_environment\[A\]"),
    ({"environment": {"A": "one\ntwo"}}, r"audit_schedule_environment\[A\]"),
    ({"interval_minutes": 0}, "audit_schedule_interval_minutes must be an integer from 1 to 1440"),
    ({"timeout_minutes": "20"}, "audit_schedule_timeout_minutes"),
    ({"name": "../evil"}, "audit_schedule_name"),
    ({"inventory": "a b"}, "audit_schedule_inventory"),
])
def test_bad_settings_are_refused_naming_them(over, words):
    with pytest.raises(AnsibleFilterError, match="audit_schedule_units: " + words):
        units(settings(**over))


# --------------------------------------------------------------------------- the role, through ansible-playbook

def run_role(tmp_path, variables, *args):
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "inventory").write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = ansible_env(tmp_path, RINGRIFT_REPORT_DIR=str(tmp_path / "reports"))
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory"), "-e", "@" + str(tmp_path / "vars.json"),
                           str(tmp_path / "play.yml")] + list(args),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def role_vars(tmp_path, **over):
    base = {"audit_schedule_working_dir": REPO, "audit_schedule_user": getpass.getuser(),
            "audit_schedule_ansible_playbook": ANSIBLE_PLAYBOOK,
            "audit_schedule_environment": {"RINGRIFT_REPORT_DIR": str(tmp_path / "reports")},
            "audit_schedule_unit_dir": str(tmp_path / "units"), "audit_schedule_activate": False,
            "audit_schedule_cron_file": str(tmp_path / "cron.d" / "ringrift-audit")}
    base.update(over)
    return base


def test_role_writes_systemd_units_idempotently_and_removes_them(tmp_path):
    (tmp_path / "units").mkdir()
    variables = role_vars(tmp_path, audit_schedule_method="systemd", audit_schedule_interval_minutes=15)

    rc, out = run_role(tmp_path, variables, "--check")
    assert rc == 0, out
    assert os.listdir(str(tmp_path / "units")) == [], "check mode wrote a unit"

    rc, out = run_role(tmp_path, variables)
    assert rc == 0, out
    service = (tmp_path / "units" / "ringrift-audit.service").read_text()
    timer = (tmp_path / "units" / "ringrift-audit.timer").read_text()
    assert service == units(settings(
        interval_minutes=15, user=getpass.getuser(), inventory="", extra_args=[],
        environment={"RINGRIFT_REPORT_DIR": str(tmp_path / "reports")}))["service"]
    assert "ExecStart=%s ringrift.cluster.audit\n" % ANSIBLE_PLAYBOOK in service
    assert "OnUnitActiveSec=15min" in timer
    assert oct((tmp_path / "units" / "ringrift-audit.timer").stat().st_mode & 0o777) == "0o644"

    analyze = shutil.which("systemd-analyze")
    if analyze:
        proc = subprocess.run([analyze, "verify", str(tmp_path / "units" / "ringrift-audit.service"),
                               str(tmp_path / "units" / "ringrift-audit.timer")],
                              capture_output=True, text=True, timeout=60, check=False)
        problems = [line for line in (proc.stdout + proc.stderr).splitlines() if "ringrift-audit" in line]
        assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr

    rc, out = run_role(tmp_path, variables)
    assert rc == 0 and "changed=0" in out, out

    rc, out = run_role(tmp_path, dict(variables, audit_schedule_state="absent"))
    assert rc == 0, out
    assert os.listdir(str(tmp_path / "units")) == []


def test_role_writes_the_cron_entry(tmp_path, monkeypatch):
    (tmp_path / "cron.d").mkdir()
    if not shutil.which("crontab"):
        # ansible.builtin.cron insists that a crontab binary exists even with an absolute cron_file,
        # which it writes itself. This one records any call, and the test fails if there is one.
        (tmp_path / "bin").mkdir()
        shim = tmp_path / "bin" / "crontab"
        shim.write_text("#!/bin/sh\necho \"$@\" >> %s\nexit 1\n" % (tmp_path / "crontab-called"))
        shim.chmod(0o755)
        monkeypatch.setenv("PATH", "%s:%s" % (tmp_path / "bin", os.environ["PATH"]))
    variables = role_vars(tmp_path, audit_schedule_method="cron", audit_schedule_extra_args=["--limit", "vast"])
    rc, out = run_role(tmp_path, variables)
    assert rc == 0, out
    lines = (tmp_path / "cron.d" / "ringrift-audit").read_text().splitlines()
    assert "#Ansible: ringrift-audit" in lines
    entry = lines[lines.index("#Ansible: ringrift-audit") + 1]
    assert entry == ("*/30 * * * * %s cd %s && env RINGRIFT_REPORT_DIR='%s' timeout 20m %s ringrift.cluster.audit"
                     " --limit vast" % (getpass.getuser(), REPO, tmp_path / "reports", ANSIBLE_PLAYBOOK))
    rc, out = run_role(tmp_path, variables)
    assert rc == 0 and "changed=0" in out, out
    rc, out = run_role(tmp_path, dict(variables, audit_schedule_state="absent"))
    assert rc == 0, out
    assert not (tmp_path / "cron.d" / "ringrift-audit").exists() or \
        "ringrift-audit" not in (tmp_path / "cron.d" / "ringrift-audit").read_text()
    assert not (tmp_path / "crontab-called").exists(), "the user's crontab was touched"


def test_role_refuses_bad_settings_before_writing(tmp_path):
    (tmp_path / "units").mkdir()
    rc, out = run_role(tmp_path, role_vars(tmp_path, audit_schedule_method="systemd",
                                           audit_schedule_user="root\nExecStartPre=/bin/sh"))
    assert rc != 0 and "audit_schedule_user" in out
    assert os.listdir(str(tmp_path / "units")) == []
    rc, out = run_role(tmp_path, role_vars(tmp_path, audit_schedule_method="cron", audit_schedule_interval_minutes=45))
    assert rc != 0 and "has no cron form" in out
